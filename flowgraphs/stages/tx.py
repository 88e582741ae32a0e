"""Transmitter stage: user bytes -> numbered user frames -> DVB-S2 PLFRAMEs -> shaped IQ.

Data path
    Byte chunks from ``data`` go into a :class:`modem.acm.TransmitQueue` (read only while it has
    room: the source waits otherwise). Before every PLFRAME the stage fills the DVB-S2
    transmitter's generic stream with user frames (:mod:`flowgraphs.userframes`), lost frames
    first, to one data field of the MODCOD in force, and sends the frame's samples on ``iq``,
    tagged with the stream offset and a ``plframe`` tag (PLS MODCOD, 0 for a dummy frame) at
    the centre of the frame's first symbol. With no MODCOD (the ACM's "outage") or no data it
    sends DUMMY PLFRAMEs: the carrier stays up and the receiver keeps measuring Es/N0.
Feedback
    ``acm.cmd`` (MODCOD decisions) and ``acm.ack`` (the sink's acknowledgments, relayed by the
    acm stage, the return link) carry ``apply_at``: the stream sample from which they may take
    effect (the rx offset they describe plus the feedback delay). They are applied before the
    first frame that starts at or after it, so the loop delay is set by the flowgraph, not by
    the speed of the processes. The stage runs at most ``lead_delays`` feedback delays (at least
    ``min_lead_frames`` QPSK frame lengths) past the latest ``apply_at``, which bounds the loop
    delay to between one and 1 + ``lead_delays`` feedback delays and leaves the receiver room to
    decode many frames at once; the delays applied are measured and reported. When no feedback
    comes for ``feedback_timeout_s`` (wall clock: a receiver restarting) it goes on without the
    limit until feedback resumes.
End
    At the end of the scenario (``[link] duration_s``) or of the source's data it stops taking
    new data and starting new user frames, keeps sending lost frames again until every frame
    sent is acknowledged or ``drain_s`` scenario seconds have passed, and reports done with the
    queue's accounting: bytes never sent stay in the queue (for the next pass), not lost.
"""

from __future__ import annotations

import heapq
import struct
import time

import numpy as np

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage
from flowgraphs.timebase import timebase

_QPSK_NORMAL_PILOTS = 33282  # longest PLFRAME, symbols


class Tx(Stage):
    """DVB-S2 transmitter with the transmit queue; see the module notes."""

    TYPE = "tx"
    PARAMS = {
        "modcod": Param("QPSK 1/4", str, "MODCOD until the ACM decides (also the fixed MODCOD without one)"),
        "payload_bytes": Param(4068, int, "user frame payload", lo=1, hi=65535, unit="bytes"),
        "queue_bytes": Param(1 << 21, int, "transmit queue capacity", lo=1 << 12, unit="bytes"),
        "lead_delays": Param(
            1.0, float, "run-ahead past the feedback's apply_at, in feedback delays", lo=0.0, hi=100.0
        ),
        "min_lead_frames": Param(4.0, float, "smallest run-ahead, in QPSK normal frames", lo=0.1, hi=1000.0),
        "feedback_timeout_s": Param(
            5.0, float, "wall time without feedback before running free", lo=0.01, unit="s"
        ),
        "startup_timeout_s": Param(
            60.0, float, "wall time to wait for the first feedback", lo=0.01, unit="s"
        ),
        "drain_s": Param(
            5.0, float, "scenario seconds to resend lost frames after the end", lo=0.0, unit="s"
        ),
        "rto_min_s": Param(
            0.0, float, "smallest retransmission timeout (0: 4 lead lengths)", lo=0.0, unit="s"
        ),
    }
    INPUTS = {"data": Port("bytes", "user bytes (offset-stamped chunks) from a source")}
    OUTPUTS = {"iq": Port("iq", "shaped DVB-S2 baseband, samples_per_symbol per symbol")}
    SUBSCRIBE = ("acm.cmd", "acm.ack")

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """The MODCOD must exist for the link's frame size."""
        from modem.dvbs2.modcod import frame_spec

        try:
            frame_spec(params["modcod"], link["frame"], link["pilots"])
        except ValueError as e:
            raise ConfigError(f"key 'modcod': {e}") from None
        if params["payload_bytes"] > params["queue_bytes"]:
            raise ConfigError(
                f"key 'payload_bytes': must not exceed queue_bytes ({params['queue_bytes']}); "
                f"got {params['payload_bytes']}"
            )
        if link["stream"] != "gs":
            raise ConfigError(
                "the tx stage sends user frames in a generic stream: [link] stream must be 'gs'"
            )

    def setup(self) -> None:
        """Build the transmitter and the queue."""
        from modem.acm import TransmitQueue
        from modem.dvbs2.link import LinkConfig, Transmitter
        from modem.dvbs2.modcod import frame_spec

        lk = self.link
        self.cfg = LinkConfig(
            frame=lk.frame,
            pilots=lk.pilots,
            gold_code=lk.gold_code,
            rolloff=lk.rolloff,
            sps=lk.samples_per_symbol,
        )
        self.tx = Transmitter(self.cfg)
        self.tb = timebase(self.spec.link)
        self.sps = lk.samples_per_symbol
        self.frame_spec = frame_spec
        self.min_lead = int(self.p.min_lead_frames * _QPSK_NORMAL_PILOTS * self.sps)
        self.lead = self.min_lead
        rto_min = self.tb.samples(self.p.rto_min_s) if self.p.rto_min_s > 0 else 4 * self.min_lead
        self.queue = TransmitQueue(self.p.queue_bytes, self.p.payload_bytes, rto_min=rto_min)
        self.current = self.cfg_modcod(self.p.modcod)
        self.pending: list = []  # heap of (apply_at, n, kind, body)
        self._n = 0
        # with a return link in the graph, wait for its feedback from the start (the receiver may
        # take seconds to start); without one, run free
        self.expect_feedback = any(v["type"] == "acm" for v in self.spec.peers.values())
        self.latest_apply_at: int | None = 0 if self.expect_feedback else None
        self.got_feedback = False
        self.last_feedback = time.monotonic()
        self.free_running = False
        self.in_offset = 0  # next source byte expected
        self.carry = bytearray()  # bytes of the last chunk read that did not fit in the queue yet
        self.eod = False
        self.closed = False  # no more data from the source (end of scenario or of the source)
        self.new_ok = True  # new user frames may start (False after the end of the scenario)
        self.end_reason = ""
        self.symbols_out = 0
        self.by_modcod: dict[str, int] = {}
        self.dummy_frames = 0
        self.delays: list[int] = []  # samples between a report's rx offset and its application
        self.stalls = 0
        self.counters.update(
            frames=0, dummy=0, bytes_offered=0, bytes_acked=0, retransmitted=0, queue_bytes=0
        )

    def cfg_modcod(self, name):
        """The MODCOD ``name`` (None: outage) as (Modcod, data field bytes)."""
        if name is None:
            return None
        spec = self.frame_spec(name, self.cfg.frame, self.cfg.pilots)
        return spec.modcod, spec.data_field_bits // 8

    # -- inputs

    def wants_input(self, port: str) -> bool:
        """Read the source while the data is open, the last chunk is all queued and a frame fits.

        Any ``queue_bytes`` >= ``payload_bytes`` makes progress: a chunk larger than the room
        waits in ``carry`` and goes into the queue as the room frees.
        """
        self._feed_carry()
        return not self.closed and not self.carry and self.queue.room >= self.p.payload_bytes

    def _feed_carry(self) -> None:
        """Move the rest of the last chunk into the queue as far as it has room."""
        if self.carry:
            taken = self.queue.offer(self.carry)
            del self.carry[:taken]

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
            self.counters["duplicate_bytes"] = self.counters.get("duplicate_bytes", 0) + len(data)
            return
        if offset > self.in_offset:
            self.log(
                f"source skipped bytes {self.in_offset}..{offset - 1}: a gap in the offered data", "error"
            )
            self.counters["source_gap_bytes"] = (
                self.counters.get("source_gap_bytes", 0) + offset - self.in_offset
            )
            self.in_offset = offset
        data = data[self.in_offset - offset :]
        taken = self.queue.offer(data)
        self.in_offset += len(data)
        if taken < len(data):  # a chunk larger than the room: the rest waits (no read until it is in)
            self.carry += data[taken:]

    def on_bus(self, topic: str, body: dict) -> None:
        """Queue a feedback message until its ``apply_at``."""
        at = body.get("apply_at")
        if not isinstance(at, int) or isinstance(at, bool):
            return
        if topic == "acm.ack":  # checked here: applied later, in work(), where an error would crash
            cum, sack = body.get("cum", 0), body.get("sack", [])
            ok = isinstance(cum, int) and isinstance(sack, list)
            pairs = all(isinstance(r, list) and len(r) == 2 for r in sack) if ok else False
            ok = pairs and all(type(x) is int for r in sack for x in r)
            if not ok:
                raise ValueError(f"acm.ack: 'cum' must be an int and 'sack' a list of [lo, hi]; got {body!r}")
        elif topic == "acm.cmd" and not isinstance(body.get("modcod"), str | None):
            raise ValueError(f"acm.cmd: 'modcod' must be a MODCOD name or null; got {body.get('modcod')!r}")
        self._n += 1
        heapq.heappush(self.pending, (at, self._n, topic, body))
        self.latest_apply_at = at if self.latest_apply_at is None else max(self.latest_apply_at, at)
        if isinstance(body.get("rx_offset"), int):  # the feedback delay, learnt from the messages
            delay = at - body["rx_offset"]
            self.lead = max(self.min_lead, int(self.p.lead_delays * delay))
            if self.p.rto_min_s <= 0:  # a frame's ack comes back within about 2 (delay + lead)
                self.queue.rto_min = max(self.queue.rto_min, 3.0 * (delay + self.lead))
                self.queue.rto = max(self.queue.rto, self.queue.rto_min)
        self.last_feedback = time.monotonic()
        self.got_feedback = True
        if self.free_running:
            self.free_running = False

    def _apply_feedback(self, now: int) -> None:
        while self.pending and self.pending[0][0] <= now:
            _, _, topic, body = heapq.heappop(self.pending)
            if topic == "acm.cmd":
                try:
                    self.current = self.cfg_modcod(body.get("modcod"))
                except ValueError:
                    self.counters["bad_commands"] = self.counters.get("bad_commands", 0) + 1
                    continue
                if isinstance(body.get("rx_offset"), int):
                    self.delays.append(now - body["rx_offset"])
            elif topic == "acm.ack":
                self.queue.ack(body.get("cum", 0), body.get("sack", []), now=now)

    # -- output

    def work(self) -> bool:
        """Send the next PLFRAME when the run-ahead limit and the output allow."""
        if self._finished or not self.output_ready("iq"):
            return False
        now = self.out_offset("iq")
        if self.latest_apply_at is not None and now > self.latest_apply_at + self.lead:
            timeout = self.p.feedback_timeout_s if self.got_feedback else self.p.startup_timeout_s
            if time.monotonic() - self.last_feedback < timeout:
                return False
            if not self.free_running:
                self.free_running = True
                self.stalls += 1
        self._apply_feedback(now)
        self._feed_carry()
        end = self.tb.end_offset
        if self.new_ok and end is not None and now >= end:
            self.closed, self.new_ok, self.closed_at, self.end_reason = True, False, now, "end of scenario"
        elif not self.closed and self.eod:
            self.closed, self.closed_at, self.end_reason = True, now, "end of data"
        if self.closed and (
            (self.new_ok and self.queue.empty)
            or (
                not self.new_ok
                and (not self.queue.in_flight or now >= self.closed_at + self.tb.samples(self.p.drain_s))
            )
        ):
            self._report_done(now)
            return False
        self._send_frame(now)
        return True

    def _send_frame(self, now: int) -> None:
        from flowgraphs.userframes import encode_user_frame

        tx = self.tx
        symbols = None
        name = "dummy"
        if self.current is not None:
            mc, cap = self.current
            while tx.pending_bytes < cap:
                f = self.queue.next_frame(now, new=self.new_ok)
                if f is None:
                    break
                tx.push(encode_user_frame(f.seq, f.offset, f.payload))
            if tx.pending_bytes:
                if tx.pending_bytes < cap:
                    tx.flush()
                symbols = tx.frames([mc])
                name = mc.name
        if symbols is None:
            symbols = tx.plframer.dummy()
            self.dummy_frames += 1
        pls = 0 if name == "dummy" else self.current[0].index
        tag_at = now + (self.cfg.span * self.sps) // 2  # first symbol's pulse centre
        samples = tx.modulate(symbols)
        tags = [wire.Tag(tag_at, "plframe", pls)]
        if not self.send_iq("iq", samples, tags):
            return
        self.symbols_out += symbols.size
        self.by_modcod[name] = self.by_modcod.get(name, 0) + 1
        q = self.queue.stats
        self.counters.update(
            frames=sum(self.by_modcod.values()),
            dummy=self.dummy_frames,
            bytes_offered=q.bytes_offered,
            bytes_acked=q.bytes_acked,
            retransmitted=q.frames_retransmitted,
            queue_bytes=self.queue.held_bytes,
            symbols=self.symbols_out,
        )
        self.publish(
            "tx.frames",
            {
                "offset": now,
                "samples": int(samples.size),
                "symbols": int(symbols.size),
                "modcod": name,
                "t_s": self.tb.t_s(now),
                "queue_bytes": self.queue.held_bytes,
                "offered": q.bytes_offered,
                "acked": q.bytes_acked,
                "retx_frames": q.frames_retransmitted,
            },
        )

    def _report_done(self, now: int) -> None:
        q = self.queue
        self.finish(
            reason=self.end_reason,
            offset=now,
            t_s=self.tb.t_s(now),
            end_offset=self.closed_at,
            bytes_offered=q.stats.bytes_offered,
            bytes_acked=q.stats.bytes_acked,
            held_bytes=q.held_bytes,
        )

    def summary(self) -> dict:
        """Queue accounting, frames by MODCOD, feedback delays."""
        if not hasattr(self, "queue"):
            return {}
        q = self.queue.stats
        d = np.asarray(self.delays, dtype=np.float64)
        to_s = self.tb.time_scale / self.tb.sample_rate_hz
        return {
            "bytes_offered": q.bytes_offered,
            "bytes_acked": q.bytes_acked,
            "held_bytes": self.queue.held_bytes,
            "carry_bytes": len(self.carry),
            "frames_created": q.frames_created,
            "frames_sent": q.frames_sent,
            "frames_retransmitted": q.frames_retransmitted,
            "bytes_retransmitted": q.bytes_retransmitted,
            "timeouts": q.timeouts,
            "losses_detected": q.losses_detected,
            "plframes": self.by_modcod,
            "dummy_frames": self.dummy_frames,
            "symbols": self.symbols_out,
            "samples": self.out_offset("iq"),
            "end_offset": getattr(self, "closed_at", None),
            "end_reason": self.end_reason,
            "feedback_stalls": self.stalls,
            "feedback_delay_s": {"mean": float(d.mean() * to_s), "max": float(d.max() * to_s)}
            if d.size
            else None,
            "payload_bytes": self.p.payload_bytes,
        }


STAGE = Tx
