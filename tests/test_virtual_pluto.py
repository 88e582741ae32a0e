"""The virtual Pluto against the real client stack: libiio 0.24's tools, pylibiio and pyadi-iio.

Nothing here talks to the server through our own code: iio_info/iio_attr (libiio-utils),
``adi.Pluto`` (pyadi-iio over pylibiio over the system libiio) and raw sockets for the
protocol's framing.
"""

import errno
import shutil
import socket
import subprocess

import adi
import numpy as np
import pytest

from hw.iio_context import IioContext
from hw.virtual_pluto import VirtualPluto
from modem.dvbs2.link import LinkConfig, Receiver, Transmitter


@pytest.fixture
def vp():
    with VirtualPluto(port=0) as v:
        yield v


def _close(sdr):
    """Destroy pyadi-iio's buffers before its context (libiio 0.x needs that order)."""
    sdr.tx_destroy_buffer()
    sdr.rx_destroy_buffer()


def _talk(port: int, *lines: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for line in lines:
            s.sendall(line)
        s.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_iio_info_sees_the_pluto_context(vp):
    assert shutil.which("iio_info"), "libiio-utils (iio_info) must be installed"
    out = subprocess.run(["iio_info", "-u", vp.uri], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ctx = IioContext.pluto()
    assert "IIO context created with network backend" in out.stdout
    assert "Backend version: 0.24" in out.stdout
    assert f"IIO context has {len(ctx.devices)} devices" in out.stdout
    assert "hw_model: Analog Devices PlutoSDR Rev.C (Z7010-AD9363A)" in out.stdout
    for dev in ctx.devices:
        assert f"{dev.id}: {dev.name}" in out.stdout
    assert "voltage0:  (input, index: 0, format: le:S12/16>>0)" in out.stdout
    assert "voltage0:  (output, index: 0, format: le:S16/16>>0)" in out.stdout
    # attribute values come from the server, current state included
    assert "attr  5: frequency value: 2450000000" in out.stdout
    assert "hardwaregain_available value: [-89.750000 0.250000 0.000000]" in out.stdout


def test_iio_attr_writes_and_the_driver_range_check(vp):
    base = ["iio_attr", "-u", vp.uri, "-o", "-c", "ad9361-phy", "altvoltage0", "frequency"]
    ok = subprocess.run([*base, "915000000"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.strip() == "915000000", ok.stdout + ok.stderr
    bad = subprocess.run([*base, "100000000"], capture_output=True, text=True, timeout=30)
    assert bad.returncode != 0 and "Invalid argument" in bad.stdout + bad.stderr
    back = subprocess.run(base, capture_output=True, text=True, timeout=30)
    assert back.stdout.strip() == "915000000"
    assert vp.model.rx_lo_hz == 915_000_000


def test_protocol_framing_on_a_raw_socket(vp):
    ctx = IioContext.pluto()
    out = _talk(
        vp.port,
        b"VERSION\r\n",
        b"PRINT\r\n",
        b"READ iio:device0 OUTPUT altvoltage1 frequency\r\n",
        b"FROB\r\n",
        b"READBUF iio:device3 4096\r\n",
        b"OPEN iio:device3 64 00000004\r\n",
        b"WRITE iio:device0 OUTPUT altvoltage1 frequency 11\r\n2500000000\x00",
        b"READ iio:device0 OUTPUT altvoltage1 frequency\r\n",
        b"GETTRIG iio:device3\r\n",
        b"EXIT\r\n",
    )
    head, n, rest = out.split(b"\n", 2)
    assert head == b"0.24.virtual"
    xml = ctx.xml.encode()
    assert int(n) == len(xml) and rest[: len(xml)] == xml and rest[len(xml) : len(xml) + 1] == b"\n"
    lines = iter(rest[len(xml) + 1 :].split(b"\n"))
    assert next(lines) == b"11" and next(lines) == b"2450000000\x00"
    assert int(next(lines)) == -errno.EINVAL  # unknown command
    assert int(next(lines)) == -errno.EBADF  # READBUF before OPEN
    assert int(next(lines)) == -errno.EINVAL  # mask bit 2 is not a scan element of the RX core
    assert int(next(lines)) == 11  # bytes written
    assert next(lines) == b"11" and next(lines) == b"2500000000\x00"
    assert int(next(lines)) == -errno.ENOENT


def test_readbuf_sends_mask_then_exactly_the_samples_asked_for(vp):
    out = _talk(
        vp.port,
        b"OPEN cf-ad9361-lpc 256 00000003\r\n",
        b"READBUF cf-ad9361-lpc 1024\r\n",
        b"READBUF cf-ad9361-lpc 1022\r\n",
        b"CLOSE cf-ad9361-lpc\r\n",
        b"CLOSE cf-ad9361-lpc\r\n",
    )
    assert out.startswith(b"0\n1024\n00000003\n")
    rest = out[len(b"0\n1024\n00000003\n") + 1024 :]
    # 1022 bytes = 255 whole samples of 4 bytes: 1020 bytes, then "0" ends the short transfer
    assert rest.startswith(b"1020\n00000003\n")
    rest = rest[len(b"1020\n00000003\n") + 1020 :]
    assert rest == f"0\n0\n{-errno.ENXIO}\n".encode()


def test_pyadi_configures_it_and_gets_driver_errors(vp):
    sdr = adi.Pluto(vp.uri)
    try:
        sdr.rx_lo = 435_000_000
        sdr.tx_lo = 3_800_000_000
        assert (sdr.rx_lo, sdr.tx_lo) == (435_000_000, 3_800_000_000)
        with pytest.raises(OSError) as e:
            sdr.rx_lo = 3_800_000_001
        assert e.value.errno == errno.EINVAL
        assert sdr.rx_lo == 435_000_000  # a rejected write changes nothing
        # below 2.083 MS/s pyadi-iio loads the AD9361 FIR filter (decimation 4) first
        sdr.sample_rate = 600_000
        assert sdr.sample_rate == 600_000
        assert sdr._get_iio_dev_attr_str("filter_fir_config") == "FIR Rx: 128,4 Tx: 128,4"
        sdr.sample_rate = 10_000_000
        assert sdr.sample_rate == 10_000_000
        with pytest.raises(OSError):  # without the FIR the driver stops at 25 MHz / 12
            sdr._set_iio_attr("out", "voltage_filter_fir_en", False, 0)
            sdr._set_iio_attr("voltage0", "sampling_frequency", False, 1_000_000)
        sdr.tx_hardwaregain_chan0 = -10.3
        assert sdr.tx_hardwaregain_chan0 == -10.25  # 0.25 dB steps
        for bad in (0.5, -90):
            with pytest.raises(OSError):
                sdr.tx_hardwaregain_chan0 = bad
        sdr.gain_control_mode_chan0 = "manual"
        sdr.rx_hardwaregain_chan0 = 70
        assert sdr.rx_hardwaregain_chan0 == 70
        with pytest.raises(OSError):  # at 435 MHz the gain table ends at 73 dB
            sdr.rx_hardwaregain_chan0 = 74
        with pytest.raises(OSError):
            sdr.gain_control_mode_chan0 = "turbo"
        with pytest.raises(OSError):
            sdr.rx_rf_bandwidth = 60_000_000
    finally:
        _close(sdr)


def _dvbs2_burst(nbytes: int, seed: int):
    cfg = LinkConfig(frame="short", pilots=True)
    payload = np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()
    iq = Transmitter(cfg).transmit(payload, "QPSK 1/2")
    return cfg, payload, iq


def _align(rx: np.ndarray, tx: np.ndarray) -> int:
    """Lag of ``tx`` in ``rx`` by FFT cross-correlation."""
    n = 1 << int(np.ceil(np.log2(rx.size + tx.size)))
    c = np.fft.ifft(np.fft.fft(rx, n) * np.conj(np.fft.fft(tx, n)))
    return int(np.argmax(np.abs(c[: rx.size])))


def test_dvbs2_burst_through_pyadi_and_back_decodes_to_the_bytes_sent(vp):
    cfg, payload, iq = _dvbs2_burst(2000, seed=7)
    sdr = adi.Pluto(vp.uri)
    try:
        sdr.sample_rate = 4_000_000
        sdr.rx_lo = sdr.tx_lo = 2_400_000_000
        sdr.gain_control_mode_chan0 = "manual"
        sdr.rx_hardwaregain_chan0 = 50
        sdr.tx_hardwaregain_chan0 = -10
        sdr.rx_buffer_size = 16384
        sdr.tx(iq * 2**13)  # DVB-S2 peaks ~0.8 of 2^13: well inside the DAC
        received = []
        while sum(r.size for r in received) < iq.size + 20000:
            received.append(sdr.rx())
    finally:
        _close(sdr)
    rx = np.concatenate(received).astype(np.complex64)
    assert rx.dtype == np.complex64 and np.abs(rx.real).max() <= 2048
    lag = _align(rx, iq)
    assert lag < 20000
    data, reports = Receiver(cfg).push_samples(rx[lag : lag + iq.size] / 2048)
    assert data == payload
    assert len(reports) == 3 and all(r.ok and r.name == "QPSK 1/2" for r in reports)
    assert vp.stats.tx_underflow_samples > 0  # the DAC ran dry after the burst, and it was counted


def test_digital_loopback_returns_the_dac_bits_exactly(vp):
    sdr = adi.Pluto(vp.uri)
    try:
        sdr.loopback = 1
        rng = np.random.default_rng(3)
        x = rng.integers(-(2**15), 2**15, 4096) + 1j * rng.integers(-(2**15), 2**15, 4096)
        sdr.rx_buffer_size = 4096
        sdr.tx(x)
        r = sdr.rx()
    finally:
        _close(sdr)
    # the AD9361 keeps the top 12 of the 16 DAC bits (arithmetic shift)
    np.testing.assert_array_equal(r.real, np.floor(x.real / 16))
    np.testing.assert_array_equal(r.imag, np.floor(x.imag / 16))


def test_cyclic_tx_repeats_the_burst(vp):
    sdr = adi.Pluto(vp.uri)
    try:
        sdr.tx_lo = sdr.rx_lo
        sdr.gain_control_mode_chan0 = "manual"
        sdr.rx_hardwaregain_chan0 = 40
        sdr.tx_hardwaregain_chan0 = 0
        burst = np.exp(2j * np.pi * np.arange(1000) * 3 / 1000) * 2**14 * np.linspace(0.2, 0.9, 1000)
        sdr.tx_cyclic_buffer = True
        sdr.tx(burst)
        sdr.rx_buffer_size = 5000
        r = sdr.rx()
        with pytest.raises(OSError):  # a cyclic buffer is pushed once
            sdr._txbuf.push()
    finally:
        _close(sdr)
    period = r[1000:2000]
    np.testing.assert_array_equal(r[2000:3000], period)
    np.testing.assert_array_equal(r[:1000], period)
    # pyadi-iio truncates to int16, the DAC keeps 12 bits, gain tx 0 + rx 40 - path loss 40 = 0 dB
    np.testing.assert_array_equal(period.real, np.trunc(burst.real).astype(np.int64) >> 4)
    np.testing.assert_array_equal(period.imag, np.trunc(burst.imag).astype(np.int64) >> 4)


def test_lo_difference_shifts_the_signal(vp):
    sdr = adi.Pluto(vp.uri)
    try:
        sdr.sample_rate = 4_000_000
        sdr.rx_lo = 2_400_000_000
        sdr.tx_lo = 2_400_250_000  # received 250 kHz above the RX LO
        sdr.gain_control_mode_chan0 = "manual"
        sdr.rx_hardwaregain_chan0 = 40
        sdr.tx_hardwaregain_chan0 = 0
        sdr.tx_cyclic_buffer = True
        sdr.tx(np.full(4000, 2**14 + 0j))  # DC at baseband
        sdr.rx_buffer_size = 8192
        r = sdr.rx()
        sdr.tx_destroy_buffer()
        sdr.tx_cyclic_buffer = False
        sdr.tx_lo = 2_420_000_000  # 20 MHz away: outside the 18 MHz RX filter
        sdr.tx_cyclic_buffer = True
        sdr.tx(np.full(4000, 2**14 + 0j))
        sdr.rx()
        far = sdr.rx()
    finally:
        _close(sdr)
    spec = np.abs(np.fft.fft(r))
    peak_hz = np.fft.fftfreq(r.size, 1 / 4e6)[np.argmax(spec)]
    assert abs(peak_hz - 250e3) < 4e6 / r.size
    assert np.abs(far).max() == 0


def test_agc_brings_a_weak_signal_to_the_target_level(vp):
    sdr = adi.Pluto(vp.uri)
    try:
        assert sdr.gain_control_mode_chan0 == "slow_attack"
        sdr.tx_lo = sdr.rx_lo  # the shipped context has TX at 2.45 GHz, RX at 2.4 GHz
        sdr.tx_hardwaregain_chan0 = -10  # the AGC must come down ~12 dB from the 71 dB it starts at
        sdr.tx_cyclic_buffer = True
        rng = np.random.default_rng(1)
        burst = (rng.normal(size=8192) + 1j * rng.normal(size=8192)) * 2**11
        sdr.tx(burst)
        sdr.rx_buffer_size = 8192
        for _ in range(30):
            r = sdr.rx()
        gain = sdr.rx_hardwaregain_chan0
    finally:
        _close(sdr)
    level_dbfs = 10 * np.log10(np.mean(np.abs(r / 2048) ** 2))
    assert abs(level_dbfs - (-12)) < 1.0
    dac_dbfs = 10 * np.log10(
        np.mean(np.abs(np.trunc(burst.real) // 16 + 1j * (np.trunc(burst.imag) // 16)) ** 2) / 2048**2
    )
    expected_gain = -12 - (dac_dbfs - 10 - vp.rf.path_loss_db)  # about 59 dB
    assert abs(gain - expected_gain) <= 1 and gain == vp.model.rx_gain_db


def test_awgn_channel_sets_the_es_n0_the_receiver_measures():
    from hw.virtual_channel import ChannelSpec

    cfg, payload, iq = _dvbs2_burst(3000, seed=9)
    scale = 2**13 / 2**15  # pyadi-iio words to DAC full scale
    spec = ChannelSpec(
        esn0_db=6.0,
        samples_per_symbol=2,
        signal_power=float(np.mean(np.abs(iq * scale) ** 2)),
        cfo_hz=0.0,
        seed=4,
    )
    with VirtualPluto(port=0, channel=spec.factory()) as v:
        sdr = adi.Pluto(v.uri)
        try:
            sdr.tx_lo = sdr.rx_lo
            sdr.gain_control_mode_chan0 = "manual"
            sdr.rx_hardwaregain_chan0 = 50  # - path loss 40 dB - TX 10 dB: 0 dB, RX level = DAC level
            sdr.rx_buffer_size = 1 << 16
            sdr.tx(iq * 2**13)
            rx = np.concatenate([sdr.rx() for _ in range(-(-iq.size // (1 << 16)))]).astype(np.complex64)
        finally:
            _close(sdr)
        assert v.stats.adc_clipped == 0
    data, reports = Receiver(cfg).push_samples(rx[: iq.size] / 2048)
    assert data == payload
    esn0 = [r.esn0_db for r in reports]
    assert len(esn0) == 4 and abs(np.mean(esn0) - 6.0) < 0.4, esn0


def test_cfo_channel_moves_a_tone():
    from hw.virtual_channel import ChannelSpec

    spec = ChannelSpec(cfo_hz=-150e3)
    with VirtualPluto(port=0, channel=spec.factory()) as v:
        sdr = adi.Pluto(v.uri)
        try:
            sdr.sample_rate = 3_000_000
            sdr.tx_lo = sdr.rx_lo
            sdr.tx_cyclic_buffer = True
            sdr.tx(np.full(3000, 2**14 + 0j))
            sdr.rx_buffer_size = 6000
            r = sdr.rx()
        finally:
            _close(sdr)
    peak_hz = np.fft.fftfreq(r.size, 1 / 3e6)[np.argmax(np.abs(np.fft.fft(r)))]
    assert peak_hz == pytest.approx(-150e3, abs=3e6 / r.size)
