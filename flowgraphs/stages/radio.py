"""Radio stage: a PlutoSDR (through pyadi-iio) between the transmitter and the receiver.

Samples arriving on ``tx`` are transmitted (:meth:`hw.pluto.Pluto.tx`, scaled by ``tx_scale``
to the DAC's unit scale); received samples leave on ``rx`` (complex64 at ADC unit scale)
with their own stream offsets counted from the first RX sample. TX and RX may be one Pluto
(both ports connected, a cable or two antennas between its ports) or two radio stages on two
Plutos (``uri`` of each; connect only ``tx`` of one and only ``rx`` of the other).

``uri = "virtual"`` starts a :class:`hw.virtual_pluto.VirtualPluto` inside the stage (its
channel: ``virtual_esn0_db``, ``virtual_cfo_hz``; pace: ``virtual_realtime``), so a flowgraph
runs end to end on a machine without a radio, through the real pyadi-iio and libiio.

Gaps are reported, not hidden: an RX overflow advances the ``rx`` stream offset by one
sample (the number of samples lost is unknown to the host, so the receiver sees a gap and
resynchronizes) and publishes ``radio.gap``; a TX underflow (the DAC ran dry mid-stream)
is counted and published too.

TX samples go out in whole DMA buffers; with ``rx_pace = "free"``, when the input pauses
(0.1 s), what is held back goes out as a short buffer (a partial push: nothing is added to the
stream; the radio's DAC then runs dry until more comes, as it would anyway).

Pacing. ``rx_after_tx`` opens the RX stream just after the first TX buffer goes out, so the
received stream starts with the transmission. ``rx_pace = "tx"`` reads no more RX samples than
were transmitted (for a virtual Pluto that runs as fast as it is read); ``"free"`` reads as the
radio delivers them (a real Pluto, or a virtual one in real time).
"""

from __future__ import annotations

import queue
import threading
import time
import warnings

import numpy as np

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage


class Radio(Stage):
    """PlutoSDR stage; see the module notes."""

    TYPE = "radio"
    PARAMS = {
        "uri": Param("", str, "Pluto URI: ip:HOST[:PORT], usb:..., '' (auto-discovery) or 'virtual'"),
        "center_freq_hz": Param(
            0.0, float, "RX and TX LO (0: the bench plan of 'band')", lo=0.0, hi=7e9, unit="Hz"
        ),
        "band": Param(
            "ka", str, "bench frequency plan: ka (2.4 GHz) or uhf (435 MHz)", choices=("ka", "uhf")
        ),
        "rx_gain_mode": Param(
            "slow_attack", str, "RX gain control", choices=("manual", "slow_attack", "fast_attack", "hybrid")
        ),
        "rx_gain_db": Param(30.0, float, "RX gain in manual mode", lo=-10.0, hi=80.0, unit="dB"),
        "tx_gain_db": Param(-10.0, float, "TX hardwaregain (attenuation)", lo=-89.75, hi=0.0, unit="dB"),
        "tx_scale": Param(0.5, float, "amplitude of the unit-scale TX samples at the DAC", lo=0.0, hi=1.0),
        "buffer_size": Param(32768, int, "samples per DMA buffer", lo=1024, hi=1 << 22),
        "kernel_buffers": Param(4, int, "DMA buffers per direction", lo=1, hi=64),
        "rx": Param(True, bool, "receive (output 'rx')"),
        "tx": Param(True, bool, "transmit (input 'tx')"),
        "rx_after_tx": Param(True, bool, "open the RX stream after the first TX buffer"),
        "rx_pace": Param(
            "free", str, "RX reads: as delivered, or no more than transmitted", choices=("free", "tx")
        ),
        "virtual_realtime": Param(False, bool, "uri 'virtual': pace at the sample rate"),
        "virtual_esn0_db": Param(
            None, float, "uri 'virtual': AWGN Es/N0 (none: no noise)", lo=-30.0, hi=100.0, unit="dB"
        ),
        "virtual_cfo_hz": Param(0.0, float, "uri 'virtual': carrier offset", lo=-1e7, hi=1e7, unit="Hz"),
    }
    INPUTS = {"tx": Port("iq", "samples to transmit, unit scale")}
    OUTPUTS = {"rx": Port("iq", "received samples, ADC unit scale")}

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """The link's sample rate must be one a Pluto can run at."""
        rate = link["symbol_rate_hz"] * link["samples_per_symbol"]
        if not 521e3 <= rate <= 61.44e6:
            raise ConfigError(
                f"[link] symbol_rate_hz x samples_per_symbol = {rate:g} samples/s: "
                "a Pluto runs at 521e3..61.44e6"
            )
        if not (params["rx"] or params["tx"]):
            raise ConfigError("keys 'rx' and 'tx': a radio stage must receive, transmit or both")

    def setup(self) -> None:
        """Open the radio (starting a virtual one first for uri 'virtual')."""
        from hw.pluto import Pluto
        from hw.radio import bench_frequency

        lk = self.link
        self.rate = float(lk.symbol_rate_hz * lk.samples_per_symbol)
        self.virtual = None
        uri = self.p.uri
        if uri == "virtual":
            from hw.virtual_channel import ChannelSpec
            from hw.virtual_pluto import VirtualPluto

            spec = ChannelSpec(esn0_db=self.p.virtual_esn0_db, samples_per_symbol=lk.samples_per_symbol,
                               cfo_hz=self.p.virtual_cfo_hz, seed=int(lk.seed))  # fmt: skip
            self.virtual = VirtualPluto(
                port=0, channel=spec.factory(), realtime=self.p.virtual_realtime
            ).start()
            uri = self.virtual.uri
            self.log(f"virtual Pluto on {uri} ({spec.describe()})")
        freq = self.p.center_freq_hz or bench_frequency(self.p.band)
        gain = {"rx_gain_db": self.p.rx_gain_db} if self.p.rx_gain_mode == "manual" else {}
        self.radio = Pluto(uri or None, center_freq_hz=freq, sample_rate_hz=self.rate,
                           rx_gain_mode=self.p.rx_gain_mode, tx_gain_db=self.p.tx_gain_db,
                           buffer_size=self.p.buffer_size, kernel_buffers=self.p.kernel_buffers,
                           on_gap="count", **gain)  # fmt: skip
        self.log(f"Pluto {uri or 'auto'}: {self.rate / 1e6:g} MS/s at {freq / 1e6:g} MHz")
        self.rx_queue: queue.Queue = queue.Queue(maxsize=64)
        self.rx_on = self.p.rx and "rx" in self.spec.outputs and bool(self.spec.outputs["rx"])
        self.tx_on = self.p.tx and "tx" in self.spec.inputs
        self.rx_open = threading.Event()
        if self.rx_on and not (self.p.rx_after_tx and self.tx_on):
            self.rx_open.set()
        self.tx_gaps_seen = 0
        self.rx_gaps = 0
        self.rx_errors: list[str] = []
        self.last_tx = time.monotonic()
        self._reader = None
        if self.rx_on:
            self._reader = threading.Thread(target=self._read_loop, name=f"{self.name}-rx", daemon=True)
            self._reader.start()
        self.counters.update(tx_samples=0, rx_samples=0, tx_underflows=0, rx_overflows=0, tx_clipped=0)

    # -- TX

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """Transmit a chunk (blocks while the radio's TX buffers are full)."""
        if not self.tx_on:
            return
        r = self.radio
        buffers = r.stats.tx_buffers
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r.tx(chunk.samples * np.float32(self.p.tx_scale))
        self.last_tx = time.monotonic()
        if r.stats.tx_buffers > buffers:
            self.rx_open.set()
        self._account()

    def work(self) -> bool:
        """Forward received buffers; flush a partial TX buffer when the input has been idle."""
        did = False
        idle = time.monotonic() - self.last_tx > 0.1
        if self.tx_on and self.p.rx_pace == "free" and self.radio._tx_pending.size and idle:
            self.radio.tx_flush(pad=False)  # a short buffer: the stream goes on, nothing inserted
            self.rx_open.set()
            did = True
        while True:
            try:
                item = self.rx_queue.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, str):
                raise RuntimeError(f"RX failed: {item}")
            x, gap = item
            if gap:
                self.set_out_offset("rx", self.out_offset("rx") + 1)
                self.publish(
                    "radio.gap", {"direction": "rx", "kind": "overflow", "offset": self.out_offset("rx")}
                )
                self.log(f"RX overflow before stream offset {self.out_offset('rx')}: samples lost", "warning")
            if not self.send_iq("rx", x):
                return did
            did = True
        self._account()
        return did

    # -- RX (a thread: reading blocks for a buffer's duration)

    def _read_loop(self) -> None:
        r = self.radio
        n = self.p.buffer_size
        while not self.stopping:
            if not self.rx_open.wait(0.05):
                continue
            if self.p.rx_pace == "tx" and r.stats.rx_samples + n > r.stats.tx_pushed:
                time.sleep(0.002)
                continue
            gaps = r.stats.rx_overflows
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    x = r.rx(n)
            except Exception as e:  # reported through work() on the stage's own thread
                if not self.stopping:
                    self.rx_queue.put(f"{type(e).__name__}: {e}")
                return
            item = (x, r.stats.rx_overflows > gaps)
            while not self.stopping:
                try:
                    self.rx_queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue

    def _account(self) -> None:
        s = self.radio.stats
        if s.tx_underflows > self.tx_gaps_seen:
            self.tx_gaps_seen = s.tx_underflows
            self.publish("radio.gap", {"direction": "tx", "kind": "underflow", "samples_sent": s.tx_samples})
        self.counters.update(tx_samples=s.tx_samples, rx_samples=s.rx_samples, tx_underflows=s.tx_underflows,
                             rx_overflows=s.rx_overflows, tx_clipped=s.tx_clipped)  # fmt: skip

    def teardown(self) -> None:
        """Stop reading, release the radio (and the virtual one)."""
        self.request_stop()
        if self._reader is not None:
            self._reader.join(timeout=5)
        self.radio.close()
        if self.virtual is not None:
            self.virtual.stop()

    def summary(self) -> dict:
        """Samples moved and gaps, both directions."""
        s = self.radio.stats if hasattr(self, "radio") else None
        if s is None:
            return {}
        out = {"tx_samples": s.tx_samples, "rx_samples": s.rx_samples, "tx_buffers": s.tx_buffers,
               "rx_buffers": s.rx_buffers, "tx_underflows": s.tx_underflows, "rx_overflows": s.rx_overflows,
               "tx_clipped": s.tx_clipped, "tx_padded": s.tx_padded, "sample_rate_hz": self.rate}  # fmt: skip
        if self.virtual is not None:
            v = self.virtual.stats
            out["virtual"] = {
                "tx_underflow_samples": v.tx_underflow_samples,
                "rx_overflow_samples": v.rx_overflow_samples,
                "adc_clipped": v.adc_clipped,
            }
        return out


STAGE = Radio
