"""hw.pluto.Pluto (over pyadi-iio and libiio) against the virtual Pluto: validation, scaling, gaps."""

import socket

import numpy as np
import pytest

from hw.iio_context import IioContext
from hw.pluto import Pluto, check_uri, to_dac
from hw.radio import StreamGapError, StreamGapWarning, bench_frequency
from hw.virtual_pluto import VirtualPluto


@pytest.fixture
def vp():
    with VirtualPluto(port=0) as v:
        yield v


@pytest.fixture
def vp_rt():
    with VirtualPluto(port=0, realtime=True) as v:
        yield v


def test_uri_forms():
    assert check_uri(None) == "" and check_uri("ip:192.168.2.1") == "ip:192.168.2.1"
    assert check_uri("ip:127.0.0.1:30431") and check_uri("usb:1.5.5")
    for bad in ("192.168.2.1", "tcp:pluto", "ip:", "ip:a b"):
        with pytest.raises(ValueError, match="uri must be"):
            check_uri(bad)


def test_no_radio_at_the_uri_is_a_connection_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConnectionError, match=f"ip:127.0.0.1:{port}"):
        Pluto(f"ip:127.0.0.1:{port}")


def test_settings_are_checked_against_the_device_before_anything_is_written(vp):
    before = (vp.model.rate_hz, vp.model.rx_lo_hz, vp.model.tx_gain_db)
    cases = [
        (dict(sample_rate_hz=100e3), r"sample_rate_hz must be in \[521000, 6.144e\+07\] samples/s"),
        (dict(center_freq_hz=100e6), r"rx_lo_hz must be in \[3.25e\+08, 3.8e\+09\] Hz"),
        (dict(tx_lo_hz=4e9), r"tx_lo_hz must be in"),
        (dict(tx_gain_db=1.0), r"tx_gain_db must be in \[-89.75, 0\] dB"),
        (dict(rf_bandwidth_hz=50e6), r"tx_rf_bandwidth_hz must be in \[200000, 4e\+07\] Hz"),
        (dict(rx_gain_mode="auto"), "rx_gain_mode must be one of"),
        (dict(rx_gain_mode="manual"), "rx_gain_db is required"),
        (dict(rx_gain_db=20.0), "rx_gain_db needs rx_gain_mode=.manual."),
        (dict(buffer_size=3), "buffer_size must be an integer"),
        (dict(on_gap="ignore"), "on_gap must be one of"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            Pluto(vp.uri, **kwargs)
    with pytest.raises(TypeError, match="sample_rate_hz must be a number"):
        Pluto(vp.uri, sample_rate_hz="fast")
    assert (vp.model.rate_hz, vp.model.rx_lo_hz, vp.model.tx_gain_db) == before


def test_ranges_come_from_the_device():
    """A Pluto with the AD9364 tuning range (70 MHz-6 GHz) accepts what a stock AD9363 refuses."""
    xml = IioContext.pluto().xml.replace("[325000000 1 3800000000]", "[70000000 1 6000000000]")
    with VirtualPluto(port=0, context=IioContext(xml)) as wide:
        with Pluto(wide.uri, center_freq_hz=100e6) as p:
            assert p.rx_lo_hz == p.tx_lo_hz == 100e6
            assert p.rx_gain_range() == (-1, 73)


def test_configuration_reads_back(vp):
    with Pluto(vp.uri, link="uhf", sample_rate_hz=1e6, rx_gain_mode="manual", rx_gain_db=73) as p:
        assert p.center_freq_hz == bench_frequency("uhf") == 435e6
        assert p.sample_rate_hz == 1e6 and p.rf_bandwidth_hz == 1e6
        assert p.rx_gain_db == 73 and p.tx_gain_db == -10
        p.center_freq_hz = 2.4e9
        assert (p.rx_lo_hz, p.tx_lo_hz) == (2.4e9, 2.4e9)
        with pytest.raises(ValueError, match=r"rx_gain_db must be in \[-3, 71\] dB at 2.4e\+09 Hz"):
            p.rx_gain_db = 73
        p.rx_gain_mode = "fast_attack"
        with pytest.raises(ValueError, match="only be set in manual gain mode"):
            p.rx_gain_db = 10
        p.tx_gain_db = -20.5
        assert p.tx_gain_db == -20.5
    assert Pluto(vp.uri).center_freq_hz == 2.4e9  # the Ka bench plan by default


def test_to_dac_scales_rounds_and_counts_clipping():
    x = np.array([0.5 + 0.25j, 1.5 - 0.1j, -2 - 2j, 0.99999 + 1j])
    words, clipped = to_dac(x)
    np.testing.assert_array_equal(words, [8192 + 4096j, 16384 - 1638j, -16384 - 16384j, 16384 + 16384j])
    assert clipped == 2
    with pytest.raises(ValueError, match=r"finite; got \(nan\+0j\) at sample 2"):
        to_dac(np.array([0, 1j, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        to_dac(np.zeros((2, 2)))


def test_samples_go_out_and_come_back_exactly_in_digital_loopback(vp):
    rng = np.random.default_rng(11)
    x = (rng.uniform(-1.2, 1.2, 10000) + 1j * rng.uniform(-1.2, 1.2, 10000)).astype(np.complex64)
    with Pluto(vp.uri, buffer_size=1024) as p:
        p.loopback = 1
        p.tx(x[:3000])
        p.tx(x[3000:])
        p.tx_flush()
        sizes = rng.integers(1, 3000, 20)
        parts, have = [], 0
        for n in sizes:  # any chunking of rx() gives one continuous stream
            parts.append(p.rx(int(n)))
            have += int(n)
        got = np.concatenate(parts)
        stats = p.stats
    assert got.dtype == np.complex64
    words, clipped = to_dac(x)
    expect = (words.real.astype(np.int64) >> 4) / 2048 + 1j * ((words.imag.astype(np.int64) >> 4) / 2048)
    n = min(have, x.size)
    np.testing.assert_array_equal(got[:n], expect[:n].astype(np.complex64))
    assert stats.tx_clipped == clipped > 0
    assert stats.tx_samples == 10000 and stats.tx_padded == 240 and stats.tx_buffers == 10
    assert stats.rx_samples == have and stats.gaps == []


def test_rx_overflow_is_reported(vp_rt):
    import time

    with Pluto(vp_rt.uri, sample_rate_hz=2e6, buffer_size=4096, kernel_buffers=2, on_gap="count") as p:
        p.rx()
        p.on_gap = "warn"
        time.sleep(0.05)  # 100k samples come while only 2 buffers of 4096 wait
        with pytest.warns(StreamGapWarning, match="RX overflow"):
            p.rx(8192)
        assert p.stats.rx_overflows >= 1 and p.stats.gaps[-1].direction == "rx"
        p.on_gap = "raise"
        time.sleep(0.05)
        with pytest.raises(StreamGapError):
            p.rx()
    assert vp_rt.stats.rx_overflow_samples > 150_000


def test_a_steady_stream_has_no_gaps(vp):
    block = np.full(4096, 0.5 + 0.5j, dtype=np.complex64)
    with Pluto(vp.uri, buffer_size=4096, on_gap="raise") as p:
        for _ in range(3):  # keep the DAC queue three buffers ahead of the receiver
            p.tx(block)
        for _ in range(30):
            p.tx(block)
            p.rx()
        assert p.stats.gaps == [] and p.stats.rx_samples == 30 * 4096
    assert vp.stats.tx_underflow_samples == vp.stats.rx_overflow_samples == 0


def test_tx_underflow_is_reported(vp_rt):
    import time

    block = np.full(4096, 0.5 + 0.5j, dtype=np.complex64)
    with Pluto(vp_rt.uri, sample_rate_hz=2e6, buffer_size=4096, on_gap="count") as p:
        for _ in range(3):
            p.tx(block)
        time.sleep(0.05)  # 100k samples of DAC time: the three buffers run out
        p.tx(block)
        assert p.stats.tx_underflows >= 1 and p.stats.gaps[-1].kind == "underflow"
    assert vp_rt.stats.tx_underflow_samples > 50_000


def test_cyclic_burst(vp):
    burst = 0.5 * np.exp(2j * np.pi * np.arange(500) / 50)
    with Pluto(vp.uri, buffer_size=2000) as p:
        p.loopback = 1
        p.tx_cyclic(burst)
        with pytest.raises(RuntimeError, match="cyclic"):
            p.tx(burst)
        r = p.rx(2000)
        p.tx_stop()
        p.tx(np.zeros(2000))
    np.testing.assert_array_equal(r[:500], r[500:1000])
    np.testing.assert_array_equal(r[:500], r[1500:])
    assert np.max(np.abs(r)) == pytest.approx(0.5 * 16384 / 16 / 2048, abs=2 / 2048)


def test_short_buffers_continue_the_stream_without_padding(vp):
    rng = np.random.default_rng(4)
    x = (rng.uniform(-0.9, 0.9, 8000) + 1j * rng.uniform(-0.9, 0.9, 8000)).astype(np.complex64)
    with Pluto(vp.uri, buffer_size=2048) as p:
        p.loopback = 1
        p.tx(x[:1000])
        p.tx_flush(pad=False)  # the very first buffer is a short one
        p.tx(x[1000:5000])  # one whole buffer, 1952 held back
        p.tx_flush(pad=False)
        p.tx(x[5000:])
        p.tx_flush(pad=False)
        got = p.rx(8000)
        stats = p.stats
    words, _ = to_dac(x)
    expect = (words.real.astype(np.int64) >> 4) / 2048 + 1j * ((words.imag.astype(np.int64) >> 4) / 2048)
    np.testing.assert_array_equal(got, expect.astype(np.complex64))
    assert stats.tx_pushed == 8000 and stats.tx_padded == 0 and stats.tx_buffers == 5
