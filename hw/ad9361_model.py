"""Attribute state of a virtual ADALM-PLUTO: what its AD9361 driver and HDL cores accept.

:class:`PlutoModel` holds every attribute value of the Pluto's IIO context and applies the
rules a write must pass, with the driver's ranges (read from the context's ``*_available``
attributes, so a context of a Pluto with a widened tuning range works unchanged): LO
frequencies, the baseband sample rate (2.083-61.44 MS/s, down to 520.833 kS/s with the
AD9361's FIR filter decimating by 4), RF bandwidths, RX gain (integer dB, only in manual
gain mode; its range follows the LO as in the AD9361 gain tables) and TX attenuation
(-89.75..0 dB in 0.25 dB steps). A rejected write raises :class:`IioError` with
``EINVAL``; a write to a read-only attribute ``EIO`` (as sysfs answers root); reading an
attribute the real device could not read ("ERROR" in the context) ``EINVAL``.

It also emulates the HDL cores' register access through the ``direct_reg_access`` debug
attribute (``iio_device_reg_read``/``_write``): the DMA status register 0x80000088 of the
RX core (``cf-ad9361-lpc``, bit 2: overflow) and of the TX core
(``cf-ad9361-dds-core-lpc``, bit 0: underflow), cleared by writing ones, which is how
``iio_adi_xflow_check`` and :class:`hw.pluto.Pluto` detect gaps in the sample stream.

No sockets, no threads: the caller serializes access (:class:`hw.virtual_pluto.VirtualPluto`
holds one lock around the model and the sample path).
"""

from __future__ import annotations

import errno
import math
import re
from dataclasses import dataclass

from hw.iio_context import IioAttr, IioChannel, IioContext, IioDevice, IioError

PHY = "ad9361-phy"
RX_CORE = "cf-ad9361-lpc"
TX_CORE = "cf-ad9361-dds-core-lpc"

#: DMA status register of the AXI AD9361 cores, and its bits (write 1 to clear).
STATUS_REG = 0x80000088
TX_UNDERFLOW_BIT = 0x1
RX_OVERFLOW_BIT = 0x4

#: Lowest baseband rate without the AD9361 FIR filter (25 MHz / 12), samples/s.
MIN_RATE_NO_FIR = 2083333
MAX_RATE = 61440000
FPGA_RATE_FACTOR = 8  #: decimation/interpolation of the FPGA's optional filter

_READ_ONLY_NAMES = {"rssi", "rx_path_rates", "tx_path_rates", "data_available", "length_align_bytes", "input"}
_RANGE_RE = re.compile(r"^\[\s*(\S+)\s+(\S+)\s+(\S+)\s*\]$")


def parse_range(text: str) -> tuple[float, float, float] | None:
    """``"[min step max]"`` as floats, or None when ``text`` is a list of choices."""
    m = _RANGE_RE.match(text.strip())
    if not m:
        return None
    return float(m[1]), float(m[2]), float(m[3])


def rx_gain_range(lo_hz: float) -> tuple[int, int]:
    """RX gain range (dB) of the AD9361's full gain table for an LO frequency (Hz)."""
    if lo_hz <= 1.3e9:
        return -1, 73
    if lo_hz <= 4.0e9:
        return -3, 71
    return -10, 62


@dataclass(frozen=True)
class FirConfig:
    """An AD9361 FIR filter configuration as written to ``filter_fir_config``.

    Attributes
    ----------
    rx_decimation, tx_interpolation : int
        1, 2 or 4.
    taps : int
        Coefficients per filter, a multiple of 16 up to 128.
    rx_gain_db, tx_gain_db : int
    """

    rx_decimation: int
    tx_interpolation: int
    taps: int
    rx_gain_db: int = 0
    tx_gain_db: int = 0

    @classmethod
    def parse(cls, text: str) -> FirConfig:
        """Parse the text format ("RX 3 GAIN -6 DEC 4", "TX 3 GAIN 0 INT 4", one "rx,tx" tap per line).

        Raises
        ------
        IioError
            EINVAL, with a message naming the offending line.
        """
        rx = tx = None
        taps = 0
        for line in text.replace("\x00", "").splitlines():
            words = line.split()
            if not words or line.lstrip().startswith("#"):
                continue
            head = words[0].upper()
            if head in ("RX", "TX"):
                try:
                    gain = int(words[words.index("GAIN") + 1])
                    factor = int(words[words.index("DEC" if head == "RX" else "INT") + 1])
                except (ValueError, IndexError):
                    raise IioError(errno.EINVAL, f"filter_fir_config: bad header line {line!r}") from None
                if factor not in (1, 2, 4):
                    raise IioError(
                        errno.EINVAL, f"filter_fir_config: {head} rate change must be 1, 2 or 4; got {factor}"
                    )
                if head == "RX":
                    rx = (gain, factor)
                else:
                    tx = (gain, factor)
                continue
            try:
                [int(v) for v in line.split(",")]
            except ValueError:
                raise IioError(errno.EINVAL, f"filter_fir_config: bad coefficient line {line!r}") from None
            taps += 1
        if rx is None or tx is None:
            raise IioError(
                errno.EINVAL, "filter_fir_config: needs an 'RX ... DEC n' and a 'TX ... INT n' line"
            )
        if taps == 0 or taps % 16 or taps > 128:
            raise IioError(
                errno.EINVAL, f"filter_fir_config: taps must be a multiple of 16 up to 128; got {taps}"
            )
        return cls(rx[1], tx[1], taps, rx[0], tx[0])


def _format_gain(db: float) -> str:
    """Gain as the AD9361 driver prints it: ``-10.250000 dB``."""
    return f"{db:.6f} dB"


def _parse_float(text: str, what: str) -> float:
    try:
        value = float(text.split()[0]) if text.split() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise IioError(errno.EINVAL, f"{what}: not a number: {text!r}")
    return value


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text.strip(), 0)
    except ValueError:
        raise IioError(errno.EINVAL, f"{what}: not an integer: {text!r}") from None


class PlutoModel:
    """Attribute values and write rules of a virtual ADALM-PLUTO.

    Parameters
    ----------
    context : IioContext
        A Pluto context (devices ``ad9361-phy``, ``cf-ad9361-lpc``, ``cf-ad9361-dds-core-lpc``).

    Attributes
    ----------
    rate_hz : int
        AD9361 baseband sample rate (RX and TX share it), samples/s.
    rx_lo_hz, tx_lo_hz : int
    rx_gain_db : float
        RX gain; in an AGC mode the sample path updates it (reads show the AGC's gain).
    tx_gain_db : float
        TX "hardwaregain" (attenuation, <= 0 dB).
    gain_mode : str
        "manual", "slow_attack", "fast_attack" or "hybrid".
    rx_bandwidth_hz, tx_bandwidth_hz : int
    loopback : int
        ``loopback`` debug attribute: 0 off, 1 digital (TX data straight to RX), 2 RF.
    rx_decimate8, tx_interpolate8 : bool
        The FPGA's optional filters (``rx_dec8_filter_en`` / ``tx_int8_filter_en`` in pyadi-iio).
    """

    def __init__(self, context: IioContext):
        self.context = context
        self.phy = self._require(PHY)
        self.rx_core = self._require(RX_CORE)
        self.tx_core = self._require(TX_CORE)
        self.values: dict[tuple, str | None] = {a.key: a.initial for _, _, a in context.all_attrs()}
        rx0 = self._chan(self.phy, "voltage0", False)
        tx0 = self._chan(self.phy, "voltage0", True)
        self.rate_hz = int(self._initial(rx0, "sampling_frequency"))
        self.rx_lo_hz = int(self._initial(self._chan(self.phy, "altvoltage0", True), "frequency"))
        self.tx_lo_hz = int(self._initial(self._chan(self.phy, "altvoltage1", True), "frequency"))
        self.rx_gain_db = _parse_float(self._initial(rx0, "hardwaregain"), "hardwaregain")
        self.tx_gain_db = _parse_float(self._initial(tx0, "hardwaregain"), "hardwaregain")
        self.gain_mode = self._initial(rx0, "gain_control_mode")
        self.rx_bandwidth_hz = int(self._initial(rx0, "rf_bandwidth"))
        self.tx_bandwidth_hz = int(self._initial(tx0, "rf_bandwidth"))
        self.fir: FirConfig | None = None
        self.fir_rx_enabled = False
        self.fir_tx_enabled = False
        self.loopback = 0
        self.rx_decimate8 = False
        self.tx_interpolate8 = False
        self.kernel_buffers = {d.id: 4 for d in context.devices}
        self.registers: dict[str, dict[int, int]] = {d.id: {} for d in context.devices}
        self.reg_selected: dict[str, int] = {d.id: 0 for d in context.devices}
        self.rate_listeners: list = []  # called with no argument after a sample-rate change

    # -- lookup ----------------------------------------------------------------------
    def _require(self, name: str) -> IioDevice:
        dev = self.context.device(name)
        if dev is None:
            raise ValueError(f"context has no device {name!r}: not an ADALM-PLUTO context")
        return dev

    @staticmethod
    def _chan(dev: IioDevice, chan_id: str, output: bool) -> IioChannel:
        chn = dev.channel(chan_id, output)
        if chn is None:
            raise ValueError(f"context: device {dev.name} has no {'output' if output else 'input'} {chan_id}")
        return chn

    @staticmethod
    def _initial(chn: IioChannel, name: str) -> str:
        attr = chn.attrs.get(name)
        if attr is None or attr.initial is None:
            raise ValueError(f"context: channel {chn.id} has no value for {name!r}")
        return attr.initial

    # -- derived values --------------------------------------------------------------
    @property
    def rx_fir_decimation(self) -> int:
        """Decimation of the AD9361 RX FIR filter (1 when disabled)."""
        return self.fir.rx_decimation if (self.fir and self.fir_rx_enabled) else 1

    def rate_range(self, decimation: int | None = None) -> tuple[int, int]:
        """Allowed baseband rates (samples/s) with the given FIR decimation (default: current)."""
        d = self.rx_fir_decimation if decimation is None else decimation
        lo = -(-MIN_RATE_NO_FIR // d)
        hi = MAX_RATE if d <= 2 else MAX_RATE * 2 // d
        return lo, hi

    @property
    def rx_rate_hz(self) -> float:
        """Sample rate of the RX stream (after the FPGA's optional decimation), samples/s."""
        return self.rate_hz / (FPGA_RATE_FACTOR if self.rx_decimate8 else 1)

    @property
    def tx_rate_hz(self) -> float:
        """Sample rate of the TX stream (before the FPGA's optional interpolation), samples/s."""
        return self.rate_hz / (FPGA_RATE_FACTOR if self.tx_interpolate8 else 1)

    def path_rates(self, tx: bool) -> str:
        """The ``rx_path_rates``/``tx_path_rates`` text: a clock chain consistent with the rate."""
        fir = self.rx_fir_decimation
        hb = 8
        while hb > 1 and self.rate_hz * fir * hb > 245760000 + 1:
            hb //= 2
        adc = self.rate_hz * fir * hb
        bbpll = adc
        while bbpll < 715000000:
            bbpll *= 2
        if tx:
            dac = adc // 2 if hb > 1 else adc
            t2 = dac
            t1 = t2 // 2 if hb >= 4 else t2
            tf = t1 // 2 if hb >= 8 else t1
            return f"BBPLL:{bbpll} DAC:{dac} T2:{t2} T1:{t1} TF:{tf} TXSAMP:{self.rate_hz}"
        r2 = adc // 2 if hb > 1 else adc
        r1 = r2 // 2 if hb >= 4 else r2
        rf = r1 // 2 if hb >= 8 else r1
        return f"BBPLL:{bbpll} ADC:{adc} R2:{r2} R1:{r1} RF:{rf} RXSAMP:{self.rate_hz}"

    # -- registers -------------------------------------------------------------------
    def set_status(self, dev_name: str, bits: int) -> None:
        """Set bits of a core's DMA status register (the sample path reports gaps here)."""
        dev = self.context.device(dev_name)
        regs = self.registers[dev.id]
        regs[STATUS_REG] = regs.get(STATUS_REG, 0) | bits

    def status(self, dev_name: str) -> int:
        """Current DMA status register of a core."""
        return self.registers[self.context.device(dev_name).id].get(STATUS_REG, 0)

    def _reg_access(self, dev: IioDevice, text: str) -> None:
        words = text.replace("\x00", " ").split()
        if not 1 <= len(words) <= 2:
            raise IioError(errno.EINVAL, f"direct_reg_access: expected 'ADDR' or 'ADDR VALUE'; got {text!r}")
        addr = _parse_int(words[0], "direct_reg_access address")
        self.reg_selected[dev.id] = addr
        if len(words) == 2:
            value = _parse_int(words[1], "direct_reg_access value")
            regs = self.registers[dev.id]
            if addr == STATUS_REG and dev.name in (RX_CORE, TX_CORE):
                regs[addr] = regs.get(addr, 0) & ~value  # write one to clear
            else:
                regs[addr] = value

    # -- reads -----------------------------------------------------------------------
    def read(self, dev: IioDevice, chn: IioChannel | None, attr: IioAttr) -> str:
        """The text an attribute read returns (without the trailing NUL).

        Raises
        ------
        IioError
            EINVAL for an attribute the device cannot read ("ERROR" in the context).
        """
        special = self._read_special(dev, chn, attr)
        if special is not None:
            return special
        value = self.values.get(attr.key)
        if value is None or value == "ERROR":
            raise IioError(errno.EINVAL, f"{dev.name}: attribute {attr.name} cannot be read")
        return value

    def _read_special(self, dev: IioDevice, chn: IioChannel | None, attr: IioAttr) -> str | None:
        name = attr.name
        if attr.kind == "debug":
            if name == "direct_reg_access":
                sel = self.reg_selected[dev.id]
                if sel == 0 and not self.registers[dev.id]:
                    return self.values.get(attr.key) or "0x0"
                return f"0x{self.registers[dev.id].get(sel, 0):X}"
            if name == "loopback" and dev is self.phy:
                return str(self.loopback)
            return None
        if dev is self.phy and attr.kind == "device":
            if name == "filter_fir_config":
                if self.fir is None:
                    return "FIR Rx: 0,0 Tx: 0,0"
                f = self.fir
                return f"FIR Rx: {f.taps},{f.rx_decimation} Tx: {f.taps},{f.tx_interpolation}"
            if name in ("rx_path_rates", "tx_path_rates"):
                return self.path_rates(tx=name.startswith("tx"))
            return None
        if chn is None:
            return None
        if dev is self.phy:
            if chn.id in ("altvoltage0", "altvoltage1") and name == "frequency":
                return str(self.rx_lo_hz if chn.id == "altvoltage0" else self.tx_lo_hz)
            if chn.id.startswith("voltage") and name == "sampling_frequency":
                return str(self.rate_hz)
            if chn.id.startswith("voltage") and name == "sampling_frequency_available":
                lo, hi = self.rate_range()
                return f"[{lo} 1 {hi}]"
            if chn.id == "voltage0" and name == "hardwaregain":
                return _format_gain(self.tx_gain_db if chn.output else self.rx_gain_db)
            if chn.id == "voltage0" and not chn.output and name == "hardwaregain_available":
                lo, hi = rx_gain_range(self.rx_lo_hz)
                return f"[{lo} 1 {hi}]"
            if chn.id == "voltage0" and not chn.output and name == "gain_control_mode":
                return self.gain_mode
            if chn.id.startswith("voltage") and name == "rf_bandwidth":
                return str(self.tx_bandwidth_hz if chn.output else self.rx_bandwidth_hz)
            if name in ("filter_fir_en", "voltage_filter_fir_en"):
                if chn.id == "out":
                    return str(int(self.fir_rx_enabled and self.fir_tx_enabled))
                return str(int(self.fir_tx_enabled if chn.output else self.fir_rx_enabled))
            return None
        if (dev is self.rx_core or dev is self.tx_core) and chn.scan is not None:
            rx = dev is self.rx_core
            if name == "sampling_frequency":
                return str(int(self.rx_rate_hz if rx else self.tx_rate_hz))
            if name == "sampling_frequency_available":
                return f"{self.rate_hz} {self.rate_hz // FPGA_RATE_FACTOR} "
        return None

    # -- writes ----------------------------------------------------------------------
    def write(self, dev: IioDevice, chn: IioChannel | None, attr: IioAttr, text: str) -> None:
        """Apply a write (``text`` as the client sent it, NUL-terminated or not).

        Raises
        ------
        IioError
            EINVAL for a value out of the device's range or malformed; EIO for a read-only
            attribute.
        """
        text = text.split("\x00", 1)[0].strip()
        name = attr.name
        if dev.name == "xadc" or name.endswith("_available") or name in _READ_ONLY_NAMES:
            raise IioError(errno.EIO, f"{dev.name}: attribute {name} is read-only")
        if attr.kind == "debug":
            if name == "direct_reg_access":
                self._reg_access(dev, text)
                return
            if name == "loopback" and dev is self.phy:
                value = _parse_int(text, "loopback")
                if value not in (0, 1, 2):
                    raise IioError(errno.EINVAL, f"loopback must be 0, 1 or 2; got {value}")
                self.loopback = value
                return
            self.values[attr.key] = text
            return
        if dev is self.phy and attr.kind == "device" and name == "filter_fir_config":
            self.fir = FirConfig.parse(text)
            return
        if chn is not None and self._write_channel(dev, chn, name, text):
            return
        self._write_generic(dev, chn, attr, text)

    def _write_channel(self, dev: IioDevice, chn: IioChannel, name: str, text: str) -> bool:
        if dev is self.phy:
            if chn.id in ("altvoltage0", "altvoltage1") and name == "frequency":
                value = _parse_int(text, f"{chn.name} frequency")
                self._check_range(chn, "frequency", value, "Hz")
                if chn.id == "altvoltage0":
                    self.rx_lo_hz = value
                    lo, hi = rx_gain_range(value)
                    self.rx_gain_db = min(max(self.rx_gain_db, lo), hi)
                else:
                    self.tx_lo_hz = value
                return True
            if chn.id.startswith("voltage") and name == "sampling_frequency":
                value = _parse_int(text.split(".")[0], "sampling_frequency")
                lo, hi = self.rate_range()
                if not lo <= value <= hi:
                    raise IioError(
                        errno.EINVAL, f"sampling_frequency must be in [{lo}, {hi}] samples/s; got {value}"
                    )
                self.rate_hz = value
                for listener in self.rate_listeners:
                    listener()
                return True
            if chn.id == "voltage0" and name == "hardwaregain":
                value = _parse_float(text, "hardwaregain")
                if chn.output:
                    if not -89.75 <= value <= 0.0:
                        raise IioError(
                            errno.EINVAL, f"TX hardwaregain must be in [-89.75, 0] dB; got {value}"
                        )
                    self.tx_gain_db = round(value * 4) / 4
                else:
                    if self.gain_mode != "manual":
                        raise IioError(
                            errno.EINVAL, f"RX hardwaregain is set by the AGC in mode {self.gain_mode}"
                        )
                    lo, hi = rx_gain_range(self.rx_lo_hz)
                    if not lo <= value <= hi:
                        raise IioError(
                            errno.EINVAL, f"RX hardwaregain must be in [{lo}, {hi}] dB; got {value}"
                        )
                    self.rx_gain_db = float(round(value))
                return True
            if chn.id == "voltage0" and not chn.output and name == "gain_control_mode":
                self._check_choice(chn, name, text)
                self.gain_mode = text
                return True
            if chn.id.startswith("voltage") and name == "rf_bandwidth":
                value = _parse_int(text, "rf_bandwidth")
                self._check_range(chn, name, value, "Hz")
                if chn.output:
                    self.tx_bandwidth_hz = value
                else:
                    self.rx_bandwidth_hz = value
                return True
            if name in ("filter_fir_en", "voltage_filter_fir_en"):
                on = bool(_parse_int(text, name))
                rx = chn.id == "out" or not chn.output
                tx = chn.id == "out" or chn.output
                if on:
                    if self.fir is None:
                        raise IioError(errno.EINVAL, "no FIR filter loaded (write filter_fir_config first)")
                    lo, hi = self.rate_range(self.fir.rx_decimation if rx else self.rx_fir_decimation)
                    if not lo <= self.rate_hz <= hi:
                        raise IioError(
                            errno.EINVAL, f"FIR rate change does not fit sample rate {self.rate_hz}"
                        )
                elif self.rate_hz < MIN_RATE_NO_FIR and rx:
                    raise IioError(errno.EINVAL, f"sample rate {self.rate_hz} needs the FIR filter")
                if rx:
                    self.fir_rx_enabled = on
                if tx:
                    self.fir_tx_enabled = on
                return True
            return False
        if (
            (dev is self.rx_core or dev is self.tx_core)
            and chn.scan is not None
            and name == "sampling_frequency"
        ):
            value = _parse_int(text.split(".")[0], "sampling_frequency")
            choices = (self.rate_hz, self.rate_hz // FPGA_RATE_FACTOR)
            if value not in choices:
                raise IioError(
                    errno.EINVAL,
                    f"{dev.name} sampling_frequency must be {choices[0]} or {choices[1]}; got {value}",
                )
            if dev is self.rx_core:
                self.rx_decimate8 = value != self.rate_hz
            else:
                self.tx_interpolate8 = value != self.rate_hz
            for listener in self.rate_listeners:
                listener()
            return True
        return False

    def _available(self, chn: IioChannel, name: str) -> str | None:
        avail = chn.attrs.get(name + "_available")
        if avail is None:
            return None
        return self._read_special(self._device_of(chn), chn, avail) or self.values.get(avail.key)

    def _device_of(self, chn: IioChannel) -> IioDevice:
        for dev in self.context.devices:
            if any(c is chn for c in dev.channels):
                return dev
        raise KeyError(chn.id)

    def _check_range(self, chn: IioChannel, name: str, value: float, unit: str) -> None:
        avail = self._available(chn, name)
        rng = parse_range(avail) if avail else None
        if rng and not rng[0] <= value <= rng[2]:
            raise IioError(
                errno.EINVAL, f"{name} must be in [{rng[0]:.0f}, {rng[2]:.0f}] {unit}; got {value}"
            )

    def _check_choice(self, chn: IioChannel, name: str, text: str) -> None:
        avail = self._available(chn, name)
        if avail and parse_range(avail) is None and text not in avail.split():
            raise IioError(errno.EINVAL, f"{name} must be one of {avail.strip()}; got {text!r}")

    def _write_generic(self, dev: IioDevice, chn: IioChannel | None, attr: IioAttr, text: str) -> None:
        if chn is not None:
            avail = self._available(chn, attr.name)
            if avail:
                rng = parse_range(avail)
                if rng is None:
                    self._check_choice(chn, attr.name, text)
                else:
                    self._check_range(chn, attr.name, _parse_float(text, attr.name), "")
        else:
            table = dev.attrs if attr.kind == "device" else dev.buffer_attrs
            avail = table.get(attr.name + "_available")
            if avail is not None and avail.initial:
                rng = parse_range(avail.initial)
                if rng is None and text not in avail.initial.split():
                    raise IioError(errno.EINVAL, f"{attr.name} must be one of {avail.initial}; got {text!r}")
                if rng is not None and not rng[0] <= _parse_float(text, attr.name) <= rng[2]:
                    raise IioError(
                        errno.EINVAL, f"{attr.name} must be in [{rng[0]:g}, {rng[2]:g}]; got {text}"
                    )
        self.values[attr.key] = text
