"""Proximity-1 transmitter stage: user bytes -> user frames in Version-3 transfer frames -> IQ.

Data path
    Byte chunks from ``data`` go into a :class:`modem.acm.TransmitQueue` (selective-repeat ARQ:
    every byte stays there until the sink acknowledges it). Each user frame
    (:mod:`flowgraphs.userframes`, at most 2015 payload bytes) becomes the data field of one
    Version-3 transfer frame (frame sequence number = user frame number mod 256), sent as a PLTU
    by :class:`modem.prox1.Transmitter` at the data rate in force, BPSK NRZ-L at the link's
    sample rate (``[link] symbol_rate_hz * samples_per_symbol``; the samples per symbol of the
    Proximity-1 signal follow the data rate). Samples are scaled to a mean power of
    1 / samples_per_symbol, the convention of the channel stage's scenario model, so the channel
    applies the scenario's C/N0 and Es/N0 = C/N0 - 10 log10(symbol rate) at every data rate.
Data rate
    ``prox1.cmd`` messages from the ``prox1_adr`` stage carry the relay's decision and
    ``apply_at``, the stream sample from which it may take effect. A new rate starts at the next
    PLTU boundary: the stage sends the rest of the current one, starts a new transmitter at the
    new rate (with ``acquisition_bits`` of idle pattern first, for the receiver to lock) and tags
    the first sample of the new rate with ``prox1_rate`` (value: the rate in bit/s); the tag
    travels with the samples, so the receiver switches at exactly that sample. When the relay
    answers None (nothing fits, or it heard nothing), the stage goes to ``probe_rate`` (default
    the lowest rate allowed) and sends empty frames only (probes the relay can measure), holding
    the data.
Feedback
    ``prox1.ack`` (the sink's acknowledgments relayed) is applied at its ``apply_at`` like the
    commands; the stage runs at most ``lead_delays`` feedback delays (at least ``min_lead_s``
    scenario seconds) past the latest ``apply_at``, so decisions are applied one feedback delay
    after the frames they were made from; without feedback for ``feedback_timeout_s`` (wall
    time) it runs free.
End
    At the end of the scenario (``[link] duration_s``) or of the source's data it stops taking
    new data and goes on sending what it holds (lost frames again) until everything is
    acknowledged or the far end has reported ``drain_s`` scenario seconds past the end; then it
    reports done with the queue's accounting (bytes not acknowledged stay held, for the next
    pass: never counted as delivered).
SDLS
    With ``[security] sdls_key_file`` every user frame's payload is protected
    (:mod:`modem.sdls`, AES-256-GCM, the frame's seq and offset authenticated too) and flagged
    ``FLAG_SDLS``, as in the DVB-S2 tx; the sink verifies it. The 26 bytes of overhead per frame
    count against the Version-3 data field: ``payload_bytes`` may be at most 2015 - 26 = 1989.
"""

from __future__ import annotations

import heapq
import math
import struct
import time

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage
from flowgraphs.timebase import timebase

CODINGS = ("uncoded", "conv", "ldpc")
#: User-frame payload that fills a Version-3 data field (2043 octets - 28 octets of user frame).
MAX_PAYLOAD = 2015


def allowed_rates(sample_rate_hz: float, coding: str) -> list[int]:
    """Data rates whose symbol rate divides the sample rate at least twice (bit/s, ascending)."""
    from modem.prox1.config import DATA_RATES, Prox1Config

    out = []
    for r in DATA_RATES:
        try:
            Prox1Config(r, coding, sample_rate_hz=sample_rate_hz)
        except ValueError:
            continue
        out.append(r)
    return out


class Prox1Tx(Stage):
    """Proximity-1 transmitter with the transmit queue; see the module notes."""

    TYPE = "prox1_tx"
    PARAMS = {
        "coding": Param("conv", str, "channel coding", choices=CODINGS),
        "data_rate": Param(
            32000, int, "data rate until the relay commands one", lo=1000, hi=2048000, unit="bit/s"
        ),
        "payload_bytes": Param(480, int, "user frame payload", lo=1, hi=MAX_PAYLOAD, unit="bytes"),
        "queue_bytes": Param(1 << 21, int, "transmit queue capacity", lo=1 << 12, unit="bytes"),
        "acquisition_bits": Param(2048, int, "idle bits sent after every rate change", lo=0, hi=1 << 20),
        "chunk_samples": Param(65536, int, "most samples per IQ message", lo=1024, hi=1 << 22),
        "lead_delays": Param(
            1.0, float, "run-ahead past the feedback's apply_at, in feedback delays", lo=0.0, hi=100.0
        ),
        "min_lead_s": Param(0.5, float, "smallest run-ahead, scenario seconds", lo=0.0, unit="s"),
        "feedback_timeout_s": Param(
            1.0, float, "wall time without feedback before running free", lo=0.01, unit="s"
        ),
        "drain_s": Param(
            60.0, float, "scenario seconds to resend lost frames after the end", lo=0.0, unit="s"
        ),
        "rto_min_s": Param(
            0.0, float, "smallest retransmission timeout, scenario s (0: 4 lead lengths)", lo=0.0, unit="s"
        ),
        "probe_rate": Param(
            0,
            int,
            "data rate of the probes while the relay hears nothing (0: the lowest allowed)",
            lo=0,
            hi=2048000,
            unit="bit/s",
        ),
        "offer_bps": Param(
            0.0,
            float,
            "take source data at most this fast, bit per stream second (0: as it comes)",
            lo=0.0,
            unit="bit/s",
        ),
    }
    INPUTS = {"data": Port("bytes", "user bytes (offset-stamped chunks) from a source")}
    OUTPUTS = {"iq": Port("iq", "BPSK NRZ-L baseband at the link's sample rate")}
    SUBSCRIBE = ("prox1.cmd", "prox1.ack")

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """The initial data rate (and the probe rate) must fit the link's sample rate."""
        fs = float(link["symbol_rate_hz"]) * int(link["samples_per_symbol"])
        rates = allowed_rates(fs, params["coding"])
        for key in ("data_rate", "probe_rate"):
            if key == "probe_rate" and params[key] == 0:
                continue
            if params[key] not in rates:
                shown = ", ".join(str(r) for r in rates) or "none"
                raise ConfigError(
                    f"key {key!r}: {params[key]} bit/s does not fit the sample rate {fs:g} Hz with "
                    f"{params['coding']} coding (a whole number >= 2 of samples per symbol); allowed: {shown}"
                )

    def setup(self) -> None:
        """Build the queue and the first transmitter."""
        from modem.acm import TransmitQueue

        self.tb = timebase(self.spec.link)
        self.fs = self.tb.sample_rate_hz
        self.rates = allowed_rates(self.fs, self.p.coding)
        self.amplitude = 1.0 / math.sqrt(self.link.samples_per_symbol)
        self.min_lead = max(1, self.tb.samples(self.p.min_lead_s))
        self.lead = self.min_lead
        rto_min = self.tb.samples(self.p.rto_min_s) if self.p.rto_min_s > 0 else 4 * self.min_lead
        self.queue = TransmitQueue(self.p.queue_bytes, self.p.payload_bytes, rto_min=rto_min)
        self.target = self.p.data_rate  # None: probe mode
        self.probe_rate = self.p.probe_rate or self.rates[0]
        self.rate = None
        self.tx = None
        self.tags: list = []
        self.pending: list = []  # heap of (apply_at, n, topic, body)
        self._n = 0
        self.latest_apply_at = 0  # before any feedback: run at most one lead ahead of the start
        self.rx_reached = 0  # stream offset of the latest feedback applied (the drain's clock)
        self.last_feedback = time.monotonic()
        self.free_running = False
        self.in_offset = 0
        self.backlog = bytearray()  # source bytes not yet offered to the queue
        self.offered = 0
        self.eod = False
        self.closed = False
        self.end_reason = ""
        self.switches = 0
        self.by_rate: dict[str, int] = {}
        self.probes = 0
        self.delays: list[int] = []
        self.stalls = 0
        self.rate_log: list[tuple[float, int]] = []
        self._setup_sdls()
        self.counters.update(frames=0, bytes_offered=0, bytes_acked=0, retransmitted=0, queue_bytes=0, rate=0)

    def _setup_sdls(self) -> None:
        """The frame protector of ``[security] sdls_key_file`` (None without one)."""
        from flowgraphs.frame_security import make_protector
        from modem.sdls import overhead_bytes

        self.protector = make_protector(self.spec, self.p.payload_bytes)
        if self.protector is not None and self.p.payload_bytes + overhead_bytes() > MAX_PAYLOAD:
            raise ConfigError(
                f"stage {self.spec.name!r}: key 'payload_bytes': with SDLS at most "
                f"{MAX_PAYLOAD - overhead_bytes()} (a Version-3 data field); got {self.p.payload_bytes}"
            )

    # -- inputs

    def wants_input(self, port: str) -> bool:
        """Read the source only while the queue has room and little is waiting to be offered."""
        return not self.closed and self.queue.room >= 1 << 16 and len(self.backlog) < 1 << 16

    def _offer(self, now: int) -> None:
        """Move source bytes into the queue.

        All of them, or (``offer_bps``) as many as the instrument would have produced by stream
        sample ``now``.
        """
        n = len(self.backlog)
        if self.p.offer_bps > 0:
            n = min(n, int(self.p.offer_bps / 8 * now / self.fs) - self.offered)
        if n > 0:
            taken = self.queue.offer(memoryview(self.backlog)[:n])
            del self.backlog[:taken]
            self.offered += taken

    def on_message(self, port: str, msg: wire.Message) -> None:
        """A chunk of user bytes, or the source's end of data."""
        if msg.kind == wire.KIND_JSON:
            if "eod" in msg.body:
                self.eod = True
            return
        if msg.kind != wire.KIND_BYTES or len(msg.body) < 8:
            self.wire_stats[port].count("malformed")
            return
        (offset,) = struct.unpack_from("<Q", msg.body)
        data = memoryview(msg.body)[8:]
        if offset + len(data) <= self.in_offset:
            return
        if offset > self.in_offset:
            self.log(f"source skipped bytes {self.in_offset}..{offset - 1}", "error")
            self.in_offset = offset
        data = data[self.in_offset - offset :]
        self.backlog += data
        self.in_offset += len(data)

    def on_bus(self, topic: str, body: dict) -> None:
        """Queue a command or acknowledgment until its ``apply_at``."""
        at = body.get("apply_at")
        if not isinstance(at, int):
            return
        self._n += 1
        heapq.heappush(self.pending, (at, self._n, topic, body))
        self.latest_apply_at = max(self.latest_apply_at, at)
        if isinstance(body.get("rx_offset"), int):
            self.lead = max(self.min_lead, int(self.p.lead_delays * (at - body["rx_offset"])))
        self.last_feedback = time.monotonic()
        self.free_running = False

    def _apply_feedback(self, now: int) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, _, topic, body = heapq.heappop(self.pending)
            if isinstance(body.get("rx_offset"), int):
                self.rx_reached = max(self.rx_reached, body["rx_offset"])
            if topic == "prox1.cmd":
                rate = body.get("rate")
                if rate is not None and rate not in self.rates:
                    self.counters["bad_commands"] = self.counters.get("bad_commands", 0) + 1
                    continue
                self.target = rate
                if isinstance(body.get("rx_offset"), int):
                    self.delays.append(now - body["rx_offset"])
            elif topic == "prox1.ack":
                self.queue.ack(body.get("cum", 0), body.get("sack", []), now=now)

    # -- output

    def _new_transmitter(self, rate: int):
        from modem.prox1 import Prox1Config, Transmitter

        cfg = Prox1Config(rate, self.p.coding, sample_rate_hz=self.fs)
        return Transmitter(cfg, frame_data_octets=2043, acquisition_bits=self.p.acquisition_bits,
                           amplitude=self.amplitude)  # fmt: skip

    def work(self) -> bool:
        """Send the next stretch of samples when the run-ahead limit and the output allow."""
        if self._finished or not self.output_ready("iq"):
            return False
        now = self.out_offset("iq")
        if now > self.latest_apply_at + self.lead:
            if time.monotonic() - self.last_feedback < self.p.feedback_timeout_s:
                return False
            if not self.free_running:
                self.free_running = True
                self.stalls += 1
        self._apply_feedback(now)
        end = self.tb.end_offset
        if not self.closed:
            self._offer(now)
        if not self.closed and end is not None and now >= end:
            self.closed, self.closed_at, self.end_reason = True, now, "end of scenario"
        elif not self.closed and self.eod and not self.backlog:
            self.closed, self.closed_at, self.end_reason = True, now, "end of data"
        if self.closed and (
            self.queue.empty or self.rx_reached >= self.closed_at + self.tb.samples(self.p.drain_s)
        ):
            self._report_done(now)
            return False
        want = self.target if self.target is not None else self.probe_rate
        cap = self.p.chunk_samples
        if want != self.rate:
            if self.tx is not None and self.tx.pending_samples:  # finish the PLTU in progress first
                return self._emit(self.tx.samples(min(cap, self.tx.pending_samples)))
            self.tx = self._new_transmitter(want)
            self.rate = want
            self.switches += 1
            self.tags.append(wire.Tag(now, "prox1_rate", int(want)))
            self.rate_log.append((self.tb.t_s(now), int(want)))
        if self.tx.queued_frames == 0:
            self._feed(now)
        cfg = self.tx.config
        sdls = self.protector.overhead if self.protector is not None else 0
        bits = 24 + 8 * (5 + 28 + self.p.payload_bytes + sdls + 4)
        n = max(4096, int(bits * float(cfg.symbol_rate_exact / cfg.data_rate)) * cfg.sps)
        return self._emit(self.tx.samples(min(n, cap)))

    def _feed(self, now: int) -> None:
        from flowgraphs.userframes import FLAG_SDLS, encode_user_frame, sdls_aad
        from modem.prox1.pltu import v3_frame

        if self.target is None:  # probe: an empty frame the relay can measure, no data
            self.tx.push_frame(v3_frame(b"", sequence=self.probes % 256, port=7))
            self.probes += 1
            return
        f = self.queue.next_frame(now)
        if f is None:
            return
        if self.protector is not None:
            payload = self.protector.protect(f.payload, header=sdls_aad(f.seq, f.offset))
            user = encode_user_frame(f.seq, f.offset, payload, FLAG_SDLS)
        else:
            user = encode_user_frame(f.seq, f.offset, f.payload)
        self.tx.push_frame(v3_frame(user, sequence=f.seq % 256))
        key = str(self.rate)
        self.by_rate[key] = self.by_rate.get(key, 0) + 1

    def _emit(self, x) -> bool:
        tags, self.tags = self.tags, []
        if not self.send_iq("iq", x, tags):
            self.tags = tags
            return False
        q = self.queue.stats
        self.counters.update(frames=sum(self.by_rate.values()), bytes_offered=q.bytes_offered,
                             bytes_acked=q.bytes_acked, retransmitted=q.frames_retransmitted,
                             queue_bytes=self.queue.held_bytes, rate=int(self.rate))  # fmt: skip
        return True

    def _report_done(self, now: int) -> None:
        q = self.queue
        self.finish(
            reason=self.end_reason,
            offset=now,
            t_s=self.tb.t_s(now),
            bytes_offered=q.stats.bytes_offered,
            bytes_acked=q.stats.bytes_acked,
            held_bytes=q.held_bytes,
        )

    def summary(self) -> dict:
        """Queue accounting, frames per data rate, rate switches, feedback delays."""
        if not hasattr(self, "queue"):
            return {}
        q = self.queue.stats
        to_s = self.tb.time_scale / self.fs
        d = self.delays
        out = {
            "bytes_offered": q.bytes_offered, "bytes_acked": q.bytes_acked,
            "held_bytes": self.queue.held_bytes, "frames_created": q.frames_created,
            "frames_sent": q.frames_sent,
            "frames_retransmitted": q.frames_retransmitted, "timeouts": q.timeouts,
            "frames_by_rate": self.by_rate, "rate_switches": self.switches, "rates": self.rate_log,
            "probes": self.probes, "samples": self.out_offset("iq"), "end_reason": self.end_reason,
            "feedback_stalls": self.stalls,
            "feedback_delay_s": {"mean": sum(d) / len(d) * to_s, "max": max(d) * to_s} if d else None,
        }  # fmt: skip
        if getattr(self, "protector", None) is not None:
            out["sdls"] = {
                "frames_protected": self.protector.frames_out,
                "bytes_protected": self.protector.bytes_in,
                "overhead_bytes_per_frame": self.protector.overhead,
                "next_seq": self.protector.next_seq,
            }
        return out


STAGE = Prox1Tx
