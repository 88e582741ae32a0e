"""Proximity-1 receiver stage: IQ -> PLTUs -> user frames to the sink, frame reports to the bus.

Every IQ chunk goes through :meth:`modem.prox1.Receiver.push_samples` (carrier search or
tracking, timing, decoding, PLTU CRC). A ``prox1_rate`` tag from the transmitter marks the
first sample at a new data rate: the samples before it go to the current receiver, and a new
receiver for the new rate takes over at exactly that sample, starting at the carrier offset the
old one had reached (no new search). The data field of each good frame is one user frame
(:mod:`flowgraphs.userframes`); they go on ``frames`` to the sink: a message body is the stream
offset (u64, little-endian) reached, then the encoded user frames. Empty frames (the
transmitter's probes) carry no data.

On the bus, ``prox1.frames`` lists each PLTU found: good or bad, frame sequence number, Es/N0,
carrier offset, data rate and symbol rate, and the stream offset reached, for the relay's
Adaptive Data Rate (``prox1_adr``); when nothing is found it still says how far the stream has
come, at least every ``heartbeat_s`` scenario seconds. A gap in the input (a restarted stage, a lost message)
restarts the receiver with a carrier search at the new offset.
"""

from __future__ import annotations

import math
import struct

from flowgraphs import wire
from flowgraphs.stage import Param, Port, Stage
from flowgraphs.stages.prox1_tx import CODINGS, allowed_rates
from flowgraphs.timebase import timebase


class Prox1Rx(Stage):
    """Proximity-1 receiver stage; see the module notes."""

    TYPE = "prox1_rx"
    PARAMS = {
        "coding": Param("conv", str, "channel coding", choices=CODINGS),
        "data_rate": Param(
            32000, int, "data rate before the first prox1_rate tag", lo=1000, hi=2048000, unit="bit/s"
        ),
        "ldpc_iterations": Param(50, int, "maximum LDPC iterations", lo=1, hi=1000),
        "carrier_loop_hz": Param(
            40.0, float, "smallest carrier loop noise bandwidth", lo=1.0, hi=1e6, unit="Hz"
        ),
        "heartbeat_s": Param(
            5.0, float, "longest scenario time between prox1.frames messages", lo=0.001, unit="s"
        ),
    }
    INPUTS = {"iq": Port("iq", "received samples")}
    OUTPUTS = {"frames": Port("frames", "user frames with good CRC, in stream order")}

    check_params = staticmethod(lambda params, link: None)

    def setup(self) -> None:
        """Nothing to build until the first samples."""
        self.tb = timebase(self.spec.link)
        self.fs = self.tb.sample_rate_hz
        self.rates = allowed_rates(self.fs, self.p.coding)
        self.rate = self.p.data_rate
        self.rx = None
        self.next_offset = None
        self.resets = 0
        self.acquisitions = 0
        self.switches = 0
        self.good = 0
        self.bad = 0
        self.probes = 0
        self.uf_out = 0
        self.by_rate: dict[str, list[int]] = {}
        self.heartbeat = max(1, self.tb.samples(self.p.heartbeat_s))
        self.next_heartbeat = 0
        self.counters.update(good=0, bad=0, user_frames=0)

    def _new_receiver(self, frequency_hz=None):
        from modem.prox1 import Prox1Config, Receiver

        cfg = Prox1Config(self.rate, self.p.coding, sample_rate_hz=self.fs)
        return Receiver(cfg, ldpc_iterations=self.p.ldpc_iterations, frequency_hz=frequency_hz,
                        carrier_loop_hz=self.p.carrier_loop_hz)  # fmt: skip

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """Split the chunk at rate tags and feed the receivers."""
        x = chunk.samples
        off = chunk.offset
        if self.rx is None or gap or off != self.next_offset:
            if self.rx is not None:
                self.resets += 1
                self.log(f"input gap of {gap} samples at offset {off}: receiver restarts", "warning")
            self.rx = self._new_receiver()
        self.next_offset = off + x.size
        cuts = sorted((int(t.offset), int(t.value)) for t in chunk.tags if t.key == "prox1_rate")
        pos = 0
        for at, rate in cuts:
            k = min(max(at - off, 0), x.size)
            if k > pos:
                self._push(x[pos:k], off + k)
            pos = k
            if rate not in self.rates:
                self.counters["bad_tags"] = self.counters.get("bad_tags", 0) + 1
                continue
            f = self.rx.frequency_hz if self.rx is not None else math.nan
            self.rate = rate
            self.switches += 1
            self.rx = self._new_receiver(f if math.isfinite(f) and abs(f) <= 12e3 else None)
        if pos < x.size:
            self._push(x[pos:], off + x.size)

    def _push(self, x, end: int) -> None:
        locks = self.rx.locks
        frames, reports = self.rx.push_samples(x)
        if self.rx.locks != locks:
            self.acquisitions += self.rx.locks - locks
            self.log(
                f"carrier found at {self.rx.cfo_hz:.0f} Hz ({self.rate} bit/s), t = {self.tb.t_s(end):.1f} s"
            )
        for r in reports:
            if r.ok and self.rate != getattr(self, "_last_logged_rate", None):
                self._last_logged_rate = self.rate
                self.log(
                    f"first good frame at {self.rate} bit/s: Es/N0 {r.esn0_db:.1f} dB, {r.cfo_hz:.0f} Hz, "
                    f"t = {self.tb.t_s(end):.1f} s"
                )
        data = []
        for f in frames:
            if len(f) > 5:
                data.append(f[5:])
            else:
                self.probes += 1
        recs = []
        sr = self.rx.config.symbol_rate
        key = str(self.rate)
        for r in reports:
            c = self.by_rate.setdefault(key, [0, 0])
            c[0] += 1
            if r.ok:
                self.good += 1
                c[1] += 1
            else:
                self.bad += 1
            recs.append({"ok": bool(r.ok), "problem": r.problem, "sequence": r.sequence,
                         "esn0_db": float(r.esn0_db) if math.isfinite(r.esn0_db) else None,
                         "cfo_hz": float(r.cfo_hz) if math.isfinite(r.cfo_hz) else None,
                         "rate": int(self.rate), "symbol_rate_hz": sr, "end": int(end)})  # fmt: skip
        if data:
            body = struct.pack("<Q", end) + b"".join(data)
            self.uf_out += len(data)
            self.send_message("frames", wire.KIND_FRAMES, body)
        if recs or end >= self.next_heartbeat:
            # reports, or (at least every heartbeat_s of scenario) how far the stream has come, so
            # that the relay keeps pacing the transmitter and notices silence during an outage
            self.publish("prox1.frames", {"frames": recs, "end": int(end), "t_s": self.tb.t_s(end)})
            self.next_heartbeat = end + self.heartbeat
        self.counters.update(good=self.good, bad=self.bad, user_frames=self.uf_out)

    def summary(self) -> dict:
        """PLTUs found (good, bad) per data rate, rate switches, restarts."""
        if not hasattr(self, "tb"):
            return {}
        return {"good": self.good, "bad": self.bad, "probes": self.probes, "user_frames": self.uf_out,
                "by_rate": self.by_rate, "rate_switches": self.switches, "resets": self.resets,
                "acquisitions": self.acquisitions}  # fmt: skip


STAGE = Prox1Rx
