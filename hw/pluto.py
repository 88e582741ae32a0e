"""ADALM-PLUTO (PlutoSDR) through pyadi-iio on the system libiio.

:class:`Pluto` wraps ``adi.Pluto`` (URI ``ip:HOST[:PORT]``, ``usb:BUS.DEV.IF`` or
auto-discovery) behind the :class:`hw.radio.Radio` interface:

- every setting is checked against the ranges the device itself reports (its
  ``*_available`` attributes: LO 325 MHz-3.8 GHz on an AD9363 as shipped, wider on a
  modified one) before anything is written, with errors that name the setting, the allowed
  range and the value; the sample rate goes down to 521 kS/s (pyadi-iio loads the AD9361's
  decimating FIR filter below 2.08 MS/s), TX attenuation is -89.75..0 dB;
- TX: complex baseband at unit scale is scaled to the DAC convention of +-2^14, samples
  whose I or Q exceed 1.0 are clipped and counted; streaming in fixed-size buffers (the last
  one padded by :meth:`Pluto.tx_flush`) or one cyclic burst;
- RX: 12-bit samples to complex64 at unit scale (ADC full scale = 1.0);
- gaps: the AXI cores' DMA status register (0x80000088: RX overflow bit 2, TX underflow bit
  0) is read after every buffer and cleared; each gap is counted in :attr:`Pluto.stats`,
  listed as a :class:`hw.radio.Gap` and warned about (or raised, ``on_gap="raise"``).

Works the same against :class:`hw.virtual_pluto.VirtualPluto`.
"""

from __future__ import annotations

import math
import re

import numpy as np

from hw.radio import ON_GAP, Gap, Radio, StreamStats, bench_frequency

TX_FULL_SCALE = 2**14  #: unit-scale TX amplitude in DAC words (pyadi-iio's convention)
RX_FULL_SCALE = 2**11  #: 12-bit ADC full scale
MIN_SAMPLE_RATE = 521_000  #: lowest rate pyadi-iio configures (FIR decimation by 4)
MAX_SAMPLE_RATE = 61_440_000  #: AD9361 maximum (the device reports less while its FIR decimates)
STATUS_REG = 0x80000088
RX_OVERFLOW = 0x4
TX_UNDERFLOW = 0x1
GAIN_MODES = ("manual", "slow_attack", "fast_attack", "hybrid")
_URI_RE = re.compile(r"^(ip:[^\s]+|usb:[0-9.]*|local:)$")


def _range(text: str, what: str) -> tuple[float, float]:
    m = re.match(r"^\s*\[\s*(\S+)\s+\S+\s+(\S+)\s*\]\s*$", text or "")
    if not m:
        raise RuntimeError(f"Pluto reported no usable range for {what}: {text!r}")
    return float(m[1]), float(m[2])


def _number(value, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number in {unit}; got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite ({unit}); got {value!r}")
    return v


def check_uri(uri: str | None) -> str:
    """Return ``uri`` ("" for auto-discovery) if it looks like a libiio URI for a Pluto.

    Raises
    ------
    ValueError
        Not ``ip:HOST[:PORT]``, ``usb:[BUS.DEV.IF]`` or empty/None.
    """
    if uri is None or uri == "":
        return ""
    if not isinstance(uri, str) or not _URI_RE.match(uri):
        raise ValueError(
            f"uri must be 'ip:HOST[:PORT]', 'usb:[BUS.DEV.IF]' or None (auto-discovery); got {uri!r}"
        )
    return uri


def to_dac(samples) -> tuple[np.ndarray, int]:
    """Unit-scale complex baseband -> complex values of DAC words (rounded, clipped at +-2^14).

    Returns
    -------
    (np.ndarray, int)
        complex128 array of whole numbers in [-2^14, 2^14] (what ``adi.Pluto.tx`` takes) and the
        number of samples whose I or Q was clipped.

    Raises
    ------
    ValueError, TypeError
        Not 1-D, not numeric, or not finite (the message gives the first bad sample index).
    """
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ValueError(f"samples must be a 1-D array; got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"samples must be complex numbers; got dtype {x.dtype}")
    x = x.astype(np.complex128, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"samples must be finite; got {x[i]} at sample {i}")
    re_, im = x.real, x.imag
    over = (np.abs(re_) > 1.0) | (np.abs(im) > 1.0)
    clipped = int(np.count_nonzero(over))
    out = np.empty(x.size, dtype=np.complex128)
    out.real = np.rint(np.clip(re_, -1.0, 1.0) * TX_FULL_SCALE)
    out.imag = np.rint(np.clip(im, -1.0, 1.0) * TX_FULL_SCALE)
    return out, clipped


def from_adc(raw) -> np.ndarray:
    """RX samples as pyadi-iio returns them (ADC words) -> complex64 at unit scale."""
    return (np.asarray(raw) / RX_FULL_SCALE).astype(np.complex64)


class Pluto(Radio):
    """An ADALM-PLUTO through pyadi-iio (see the module docstring).

    Parameters
    ----------
    uri : str or None
        ``"ip:192.168.2.1"``, ``"ip:127.0.0.1:30431"``, ``"usb:1.5.5"``; None or "" finds a
        Pluto (USB first, then ``ip:pluto.local``).
    center_freq_hz : float or None
        RX and TX LO (Hz); default the bench frequency of ``link``.
    link : {"ka", "uhf"}
        Which bench frequency plan to use when no frequency is given (2.4 GHz / 435 MHz).
    rx_lo_hz, tx_lo_hz : float or None
        Separate LOs (Hz), overriding ``center_freq_hz``.
    sample_rate_hz : float
        Baseband rate of RX and TX, 521e3..61.44e6 samples/s.
    rf_bandwidth_hz : float or None
        Analog filter bandwidth (Hz) of both paths; default the sample rate (clamped to the
        device's range).
    rx_gain_mode : {"manual", "slow_attack", "fast_attack", "hybrid"}
    rx_gain_db : float or None
        Manual RX gain (dB); required range from the device (e.g. -3..71 dB at 2.4 GHz).
    tx_gain_db : float
        TX attenuation as ``hardwaregain`` (dB), -89.75..0.
    buffer_size : int
        Samples per RX buffer and per streaming TX buffer.
    kernel_buffers : int
        DMA buffers the driver queues per direction (1..64).
    on_gap : {"warn", "raise", "count"}
        What a detected stream gap does beyond being counted.
    check_gaps : bool
        Read the DMA status registers after every buffer (two small transfers each).
    timeout_ms : int
        libiio I/O timeout.

    Raises
    ------
    ValueError, TypeError
        A setting out of the device's range or of the wrong type (nothing is written then;
        only the manual RX gain, whose range depends on the LO, is checked after tuning).
    ConnectionError
        No Pluto at ``uri``.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        center_freq_hz: float | None = None,
        link: str = "ka",
        rx_lo_hz: float | None = None,
        tx_lo_hz: float | None = None,
        sample_rate_hz: float = 2_000_000,
        rf_bandwidth_hz: float | None = None,
        rx_gain_mode: str = "slow_attack",
        rx_gain_db: float | None = None,
        tx_gain_db: float = -10.0,
        buffer_size: int = 65536,
        kernel_buffers: int = 4,
        on_gap: str = "warn",
        check_gaps: bool = True,
        timeout_ms: int = 5000,
    ):
        self.uri = check_uri(uri)
        if on_gap not in ON_GAP:
            raise ValueError(f"on_gap must be one of {', '.join(ON_GAP)}; got {on_gap!r}")
        for name, v, lo, hi in (
            ("buffer_size", buffer_size, 16, 1 << 24),
            ("kernel_buffers", kernel_buffers, 1, 64),
            ("timeout_ms", timeout_ms, 0, 600_000),
        ):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or not lo <= v <= hi:
                raise ValueError(f"{name} must be an integer in {lo}..{hi}; got {v!r}")
        if rx_gain_mode not in GAIN_MODES:
            raise ValueError(f"rx_gain_mode must be one of {', '.join(GAIN_MODES)}; got {rx_gain_mode!r}")
        if rx_gain_mode == "manual" and rx_gain_db is None:
            raise ValueError("rx_gain_db is required with rx_gain_mode='manual'")
        if rx_gain_mode != "manual" and rx_gain_db is not None:
            raise ValueError(f"rx_gain_db needs rx_gain_mode='manual'; got mode {rx_gain_mode!r}")
        center = (
            bench_frequency(link)
            if center_freq_hz is None
            else _number(center_freq_hz, "center_freq_hz", "Hz")
        )
        self.on_gap = on_gap
        self.check_gaps = bool(check_gaps)
        self.buffer_size = int(buffer_size)
        self.stats = StreamStats()
        self._tx_pending = np.zeros(0, dtype=np.complex128)
        self._tx_streaming = False
        self._tx_cyclic = False
        self._rx_left = np.zeros(0, dtype=np.complex64)
        self._rx_started = False

        import adi  # pyadi-iio (and libiio) load only when a radio is opened

        try:
            self._sdr = adi.Pluto(self.uri) if self.uri else adi.Pluto()
        except Exception as e:  # pyadi-iio raises a bare Exception("No device found")
            where = self.uri or "auto-discovery (USB, then ip:pluto.local)"
            raise ConnectionError(f"no PlutoSDR at {where}: {e}") from None
        sdr = self._sdr
        sdr.ctx.set_timeout(int(timeout_ms))
        self._ranges = self._read_ranges()
        # check everything before writing anything
        rate = self._check("sample_rate_hz", sample_rate_hz, "samples/s")
        rx_lo = self._check("rx_lo_hz", center if rx_lo_hz is None else rx_lo_hz, "Hz")
        tx_lo = self._check("tx_lo_hz", center if tx_lo_hz is None else tx_lo_hz, "Hz")
        tx_gain = self._check("tx_gain_db", tx_gain_db, "dB")
        bw = rf_bandwidth_hz
        if bw is None:
            lo, hi = self._ranges["rx_rf_bandwidth_hz"]
            lo2, hi2 = self._ranges["tx_rf_bandwidth_hz"]
            bw = min(max(rate, lo, lo2), hi, hi2)
        self._check("rx_rf_bandwidth_hz", bw, "Hz")
        self._check("tx_rf_bandwidth_hz", bw, "Hz")
        self._write("sample_rate", int(round(rate)), "sample_rate_hz")
        self._write("rx_lo", int(round(rx_lo)), "rx_lo_hz")
        self._write("tx_lo", int(round(tx_lo)), "tx_lo_hz")
        self._write("rx_rf_bandwidth", int(round(bw)), "rf_bandwidth_hz")
        self._write("tx_rf_bandwidth", int(round(bw)), "rf_bandwidth_hz")
        self._write("gain_control_mode_chan0", rx_gain_mode, "rx_gain_mode")
        if rx_gain_db is not None:
            self.rx_gain_db = rx_gain_db
        self._write("tx_hardwaregain_chan0", tx_gain, "tx_gain_db")
        sdr.rx_buffer_size = self.buffer_size
        sdr.rx_enabled_channels = [0]
        sdr.tx_enabled_channels = [0]
        sdr._rxadc.set_kernel_buffers_count(int(kernel_buffers))
        sdr._txdac.set_kernel_buffers_count(int(kernel_buffers))

    # -- ranges and settings --------------------------------------------------------------
    def _read_ranges(self) -> dict[str, tuple[float, float]]:
        phy = self._sdr._ctrl

        def attr(chan: str, output: bool, name: str) -> str:
            return phy.find_channel(chan, output).attrs[name].value

        lo = _range(attr("altvoltage0", True, "frequency_available"), "LO frequency")
        rate_max = _range(attr("voltage0", False, "sampling_frequency_available"), "sample rate")[1]
        return {
            "rx_lo_hz": lo,
            "tx_lo_hz": _range(attr("altvoltage1", True, "frequency_available"), "TX LO frequency"),
            "sample_rate_hz": (MIN_SAMPLE_RATE, max(rate_max, MAX_SAMPLE_RATE)),
            "rx_rf_bandwidth_hz": _range(attr("voltage0", False, "rf_bandwidth_available"), "RX bandwidth"),
            "tx_rf_bandwidth_hz": _range(attr("voltage0", True, "rf_bandwidth_available"), "TX bandwidth"),
            "tx_gain_db": _range(attr("voltage0", True, "hardwaregain_available"), "TX gain"),
        }

    def _check(self, name: str, value, unit: str) -> float:
        v = _number(value, name, unit)
        lo, hi = self._ranges[name]
        if not lo <= v <= hi:
            raise ValueError(f"{name} must be in [{lo:g}, {hi:g}] {unit} for this Pluto; got {value!r}")
        return v

    def _write(self, prop: str, value, name: str) -> None:
        try:
            setattr(self._sdr, prop, value)
        except OSError as e:
            raise ValueError(f"the Pluto rejected {name}={value!r}: {e.strerror or e}") from None

    def rx_gain_range(self) -> tuple[float, float]:
        """RX gain range (dB) at the current LO, as the device reports it."""
        text = self._sdr._ctrl.find_channel("voltage0", False).attrs["hardwaregain_available"].value
        return _range(text, "RX gain")

    @property
    def sample_rate_hz(self) -> float:
        """Baseband sample rate (samples/s) of RX and TX."""
        return float(self._sdr.sample_rate)

    @sample_rate_hz.setter
    def sample_rate_hz(self, value: float) -> None:
        self._write(
            "sample_rate", int(round(self._check("sample_rate_hz", value, "samples/s"))), "sample_rate_hz"
        )

    @property
    def rx_lo_hz(self) -> float:
        """RX LO (Hz)."""
        return float(self._sdr.rx_lo)

    @rx_lo_hz.setter
    def rx_lo_hz(self, value: float) -> None:
        self._write("rx_lo", int(round(self._check("rx_lo_hz", value, "Hz"))), "rx_lo_hz")

    @property
    def tx_lo_hz(self) -> float:
        """TX LO (Hz)."""
        return float(self._sdr.tx_lo)

    @tx_lo_hz.setter
    def tx_lo_hz(self, value: float) -> None:
        self._write("tx_lo", int(round(self._check("tx_lo_hz", value, "Hz"))), "tx_lo_hz")

    @property
    def center_freq_hz(self) -> float:
        """RX LO (Hz); setting it tunes RX and TX together."""
        return self.rx_lo_hz

    @center_freq_hz.setter
    def center_freq_hz(self, value: float) -> None:
        self._check("rx_lo_hz", value, "Hz")
        self._check("tx_lo_hz", value, "Hz")
        self.rx_lo_hz = value
        self.tx_lo_hz = value

    @property
    def rx_gain_mode(self) -> str:
        """RX gain control: "manual", "slow_attack", "fast_attack" or "hybrid"."""
        return self._sdr.gain_control_mode_chan0

    @rx_gain_mode.setter
    def rx_gain_mode(self, mode: str) -> None:
        if mode not in GAIN_MODES:
            raise ValueError(f"rx_gain_mode must be one of {', '.join(GAIN_MODES)}; got {mode!r}")
        self._write("gain_control_mode_chan0", mode, "rx_gain_mode")

    @property
    def rx_gain_db(self) -> float:
        """RX gain (dB): the manual setting, or what the AGC chose."""
        return float(self._sdr.rx_hardwaregain_chan0)

    @rx_gain_db.setter
    def rx_gain_db(self, value: float) -> None:
        v = _number(value, "rx_gain_db", "dB")
        if self.rx_gain_mode != "manual":
            raise ValueError(
                f"rx_gain_db can only be set in manual gain mode; the mode is {self.rx_gain_mode!r}"
            )
        lo, hi = self.rx_gain_range()
        if not lo <= v <= hi:
            raise ValueError(
                f"rx_gain_db must be in [{lo:g}, {hi:g}] dB at {self.rx_lo_hz:g} Hz; got {value!r}"
            )
        self._write("rx_hardwaregain_chan0", v, "rx_gain_db")

    @property
    def tx_gain_db(self) -> float:
        """TX hardwaregain (dB, -89.75..0: an attenuation)."""
        return float(self._sdr.tx_hardwaregain_chan0)

    @tx_gain_db.setter
    def tx_gain_db(self, value: float) -> None:
        self._write("tx_hardwaregain_chan0", self._check("tx_gain_db", value, "dB"), "tx_gain_db")

    @property
    def rf_bandwidth_hz(self) -> float:
        """RX analog bandwidth (Hz); setting it sets RX and TX."""
        return float(self._sdr.rx_rf_bandwidth)

    @rf_bandwidth_hz.setter
    def rf_bandwidth_hz(self, value: float) -> None:
        self._check("rx_rf_bandwidth_hz", value, "Hz")
        self._check("tx_rf_bandwidth_hz", value, "Hz")
        self._write("rx_rf_bandwidth", int(round(value)), "rf_bandwidth_hz")
        self._write("tx_rf_bandwidth", int(round(value)), "rf_bandwidth_hz")

    @property
    def loopback(self) -> int:
        """AD9361 loopback: 0 off, 1 digital (TX data straight back to RX), 2 RF."""
        return int(self._sdr.loopback)

    @loopback.setter
    def loopback(self, mode: int) -> None:
        if mode not in (0, 1, 2):
            raise ValueError(f"loopback must be 0 (off), 1 (digital) or 2 (RF); got {mode!r}")
        self._write("loopback", int(mode), "loopback")

    # -- gaps ------------------------------------------------------------------------------
    def _status(self, dev, bit: int) -> bool:
        """Read and clear one bit of a core's DMA status register."""
        value = dev.reg_read(STATUS_REG)
        if value & bit:
            dev.reg_write(STATUS_REG, value & bit)
            return True
        return False

    # -- TX --------------------------------------------------------------------------------
    def tx(self, samples) -> None:
        """Stream samples (unit scale); full buffers go out now, the rest waits for more or :meth:`tx_flush`.

        Raises
        ------
        ValueError, TypeError
            Bad samples (nothing is sent); see :func:`to_dac`.
        RuntimeError
            A cyclic burst is on the air (call :meth:`tx_stop` first).
        """
        if self._tx_cyclic:
            raise RuntimeError("a cyclic TX burst is running: call tx_stop() before streaming")
        words, clipped = to_dac(samples)
        self.stats.tx_clipped += clipped
        self.stats.tx_samples += words.size
        pending = np.concatenate([self._tx_pending, words]) if self._tx_pending.size else words
        n = self.buffer_size
        full = pending.size // n
        for i in range(full):
            self._push(pending[i * n : (i + 1) * n])
        self._tx_pending = pending[full * n :].copy()

    def _push(self, block: np.ndarray) -> None:
        sdr = self._sdr
        if block.size == self.buffer_size or not sdr._txbuf:
            if block.size != self.buffer_size:  # the first buffer is a short one: open it full size
                sdr.disable_dds()
                sdr._tx_buffer_size = self.buffer_size
                sdr._tx_init_channels()
                self._push_partial(block)
            else:
                sdr.tx(block)
        else:
            self._push_partial(block)
        self.stats.tx_buffers += 1
        self.stats.tx_pushed += block.size
        if not self.check_gaps:
            return
        if not self._tx_streaming:
            self._status(sdr._txdac, TX_UNDERFLOW)  # clear: the stream starts here
            self._tx_streaming = True
        elif self._status(sdr._txdac, TX_UNDERFLOW):
            self._report_gap(Gap("tx", self.stats.tx_pushed - block.size, "underflow"))

    def _push_partial(self, block: np.ndarray) -> None:
        """Push fewer samples than the DMA buffer holds (libiio's iio_buffer_push_partial)."""
        words = np.empty(2 * block.size, dtype=np.int16)
        words[0::2] = block.real
        words[1::2] = block.imag
        buf = self._sdr._txbuf
        buf.write(bytearray(words.tobytes()))
        buf.push(block.size)

    def tx_flush(self, pad: bool = True) -> None:
        """Send the held-back samples; the stream then ends (the next :meth:`tx` starts a new one).

        Parameters
        ----------
        pad : bool
            Fill the last buffer with zeros to full size (True), or push it short (libiio's
            partial push: nothing is added to the stream, which may continue afterwards).
        """
        if self._tx_pending.size:
            block = self._tx_pending
            if pad:
                fill = self.buffer_size - block.size
                self.stats.tx_padded += fill
                block = np.concatenate([block, np.zeros(fill, dtype=np.complex128)])
            self._push(block)
            self._tx_pending = np.zeros(0, dtype=np.complex128)
        if pad:
            self._tx_streaming = False

    def tx_cyclic(self, samples) -> None:
        """Transmit one burst over and over (a cyclic DMA buffer) until :meth:`tx_stop`."""
        words, clipped = to_dac(samples)
        if words.size < 16:
            raise ValueError(f"a cyclic burst needs at least 16 samples; got {words.size}")
        self.tx_stop()
        self.stats.tx_clipped += clipped
        self.stats.tx_samples += words.size
        self._sdr.tx_cyclic_buffer = True
        self._sdr.tx(words)
        self.stats.tx_buffers += 1
        self._tx_cyclic = True

    def tx_stop(self) -> None:
        """Stop transmitting: destroy the TX buffer (samples not yet sent are dropped)."""
        self._sdr.tx_destroy_buffer()
        self._sdr.tx_cyclic_buffer = False
        self._tx_cyclic = False
        self._tx_streaming = False
        self._tx_pending = np.zeros(0, dtype=np.complex128)

    # -- RX --------------------------------------------------------------------------------
    def _rx_buffer(self) -> np.ndarray:
        sdr = self._sdr
        if not self._rx_started:
            sdr._rx_init_channels()  # open the RX buffer now: the stream starts here
            if self.check_gaps:
                self._status(sdr._rxadc, RX_OVERFLOW)
            self._rx_started = True
        x = from_adc(sdr.rx())
        self.stats.rx_buffers += 1
        if self.check_gaps and self._status(sdr._rxadc, RX_OVERFLOW):
            self._report_gap(Gap("rx", self.stats.rx_samples + self._rx_left.size, "overflow"))
        return x

    def rx(self, n: int | None = None) -> np.ndarray:
        """The next ``n`` samples of the RX stream (default one buffer), complex64 at unit scale."""
        if n is None:
            n = self.buffer_size
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"n must be a non-negative integer number of samples; got {n!r}")
        parts = [self._rx_left]
        have = self._rx_left.size
        while have < n:
            x = self._rx_buffer()
            parts.append(x)
            have += x.size
        data = np.concatenate(parts) if len(parts) > 1 else parts[0]
        self._rx_left = data[n:]
        self.stats.rx_samples += n
        return data[:n]

    def rx_restart(self) -> None:
        """Drop the RX buffer: the next :meth:`rx` opens a fresh stream (no gap reported between)."""
        self._sdr.rx_destroy_buffer()
        self._rx_left = np.zeros(0, dtype=np.complex64)
        self._rx_started = False

    def close(self) -> None:
        """Destroy the buffers (before the context, which libiio 0.x needs) and release the radio."""
        sdr = getattr(self, "_sdr", None)
        if sdr is None:
            return
        sdr.tx_destroy_buffer()
        sdr.rx_destroy_buffer()
        sdr._ctx = None
        self._sdr = None
