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
Spill, journal and restart
    Bytes from the source first go to a data log (:mod:`flowgraphs.journal`: files in the
    stage's state folder, or memory without one) and enter the queue as it has room: during an
    outage longer than the queue holds, up to ``spill_bytes`` wait on disk (counted in
    ``spilled_bytes``) and the source keeps going. Every user frame cut, acknowledgment and
    stream position is journaled before it takes effect, so a transmitter killed with SIGKILL
    and restarted by the runner rebuilds its queue (same frame numbers, offsets and bytes),
    continues the IQ stream where it was, and asks the source (``tx.resume``) to send again
    from the last byte it holds. A chunk from beyond that byte is dropped and asked for again,
    never accepted with a hole.
SDLS
    With ``[security] sdls_key_file`` every user frame's payload is protected
    (:mod:`modem.sdls`, AES-256-GCM, the frame's seq and offset authenticated too); the SDLS
    sequence numbers are reserved in the state folder in blocks, so a restarted transmitter
    never reuses one.
End
    At the end of the scenario (``[link] duration_s``) or of the source's data it stops taking
    new data and starting new user frames, keeps sending lost frames again until every frame
    sent is acknowledged or ``drain_s`` scenario seconds have passed, and reports done with the
    queue's accounting: bytes never sent stay in the queue (for the next pass), not lost.
"""

from __future__ import annotations

import heapq
import os
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
        "spill_bytes": Param(
            8 << 20, int, "source bytes that may wait on disk when the queue is full", lo=0, unit="bytes"
        ),
    }
    INPUTS = {"data": Port("bytes", "user bytes (offset-stamped chunks) from a source")}
    OUTPUTS = {"iq": Port("iq", "shaped DVB-S2 baseband, samples_per_symbol per symbol")}
    SUBSCRIBE = ("acm.cmd", "acm.ack")
    RESUME_PERIOD_S = 0.2
    CONTROL_TOPICS = ("acm.cmd", "acm.ack")  # applied once and in order: replays refused, counted

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
        self._setup_journal()
        self._setup_sdls()
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
        self.in_offset = self.datalog.end  # next source byte expected
        self.fed = self.queue.stats.bytes_offered  # bytes of the log given to the queue
        self.spilled = 0
        self.spill_peak = 0
        self.dropped_ahead = 0
        self.resumes = 0
        self.last_resume = 0.0
        self.want_resume = self.restored
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
        if self.restored:
            self.set_out_offset("iq", self.journal.out_offset)
            if self.latest_apply_at is not None:
                self.latest_apply_at = self.journal.out_offset
            self.log(
                f"restored from the journal: {self.restored_bytes} bytes in "
                f"{len(self.journal.frames)} unacknowledged frames, {self.datalog.end - self.fed} bytes "
                f"waiting, stream offset {self.journal.out_offset}"
            )

    def _setup_journal(self) -> None:
        """Open the journal (restoring a killed predecessor's queue) or an in-memory log."""
        from flowgraphs.journal import MemoryLog, TxJournal, restore_queue

        self.journal = None
        self.restored = False
        self.restored_bytes = 0
        if self.spec.state_dir:
            self.journal = TxJournal(os.path.join(self.spec.state_dir, "tx"), restore=self.epoch > 0)
            self.datalog = self.journal.data
            if self.journal.restored:
                self.restored_bytes = restore_queue(self.queue, self.journal)
                self.restored = True
        else:
            self.datalog = MemoryLog()

    def _setup_sdls(self) -> None:
        """The frame protector of ``[security] sdls_key_file`` (None without one)."""
        from flowgraphs.frame_security import make_protector

        self.protector = make_protector(self.spec, self.p.payload_bytes)

    @property
    def spill_pending(self) -> int:
        """Source bytes in the data log not yet in the queue (the spill)."""
        return self.datalog.end - self.fed

    def cfg_modcod(self, name):
        """The MODCOD ``name`` (None: outage) as (Modcod, data field bytes)."""
        if name is None:
            return None
        spec = self.frame_spec(name, self.cfg.frame, self.cfg.pilots)
        return spec.modcod, spec.data_field_bits // 8

    # -- inputs

    def wants_input(self, port: str) -> bool:
        """Read the source while the data is open and the queue, or else the spill, has room.

        Without a spill (``spill_bytes`` = 0) the source is read only when everything read is in
        the queue and a whole frame fits; a chunk larger than the room waits in the log.
        """
        self._feed()
        if self.closed:
            return False
        pending = self.spill_pending
        if pending == 0 and self.queue.room >= self.p.payload_bytes:
            return True
        return pending < self.p.spill_bytes

    def _feed(self) -> None:
        """Move bytes from the data log into the queue as far as it has room."""
        while self.spill_pending and self.queue.room:
            data = self.datalog.read(self.fed, min(self.spill_pending, self.queue.room, 1 << 20))
            taken = self.queue.offer(data)
            self.fed += taken
            if not taken:
                break
        if self.journal is None:
            self.datalog.trim(self.fed)  # in memory the queue holds its own copy

    def _request_resume(self) -> None:
        """Ask the source to send again from ``in_offset`` (rate-limited)."""
        now = time.monotonic()
        if now - self.last_resume >= self.RESUME_PERIOD_S:
            self.last_resume = now
            self.resumes += 1
            self.publish("tx.resume", {"offset": self.in_offset})

    def on_message(self, port: str, msg: wire.Message) -> None:
        """A chunk of user bytes, or the source's end of data."""
        if msg.kind == wire.KIND_JSON:
            eod = msg.body.get("eod")
            if isinstance(eod, int) and not isinstance(eod, bool):
                if eod == self.in_offset:
                    self.eod = True
                    self.want_resume = False
                else:  # chunks before it went missing (a restart): not the end yet
                    self._request_resume()
            return
        if msg.kind != wire.KIND_BYTES or len(msg.body) < 8:
            self.wire_stats[port].count("malformed")
            return
        (offset,) = struct.unpack_from("<Q", msg.body)
        data = memoryview(msg.body)[8:]
        if offset + len(data) <= self.in_offset:
            self.counters["duplicate_bytes"] = self.counters.get("duplicate_bytes", 0) + len(data)
            return
        if offset > self.in_offset:  # a hole: the chunks before went to a predecessor of ours
            self.dropped_ahead += len(data)
            self.want_resume = True
            self._request_resume()
            return
        self.want_resume = False
        data = data[self.in_offset - offset :]
        self.datalog.append(data)
        self.in_offset += len(data)
        self._feed()
        waiting = min(len(data), self.spill_pending)
        self.spilled += waiting
        self.spill_peak = max(self.spill_peak, self.spill_pending)

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
                if self.journal is not None:
                    self.journal.ack(body.get("cum", 0))

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
        self._feed()
        if self.want_resume:
            self._request_resume()
        end = self.tb.end_offset
        if self.new_ok and end is not None and now >= end:
            self.closed, self.new_ok, self.closed_at, self.end_reason = True, False, now, "end of scenario"
        elif not self.closed and self.eod:
            self.closed, self.closed_at, self.end_reason = True, now, "end of data"
        if self.closed and (
            (self.new_ok and self.queue.empty and not self.spill_pending)
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
        from flowgraphs.userframes import FLAG_SDLS, encode_user_frame, sdls_aad

        tx = self.tx
        symbols = None
        name = "dummy"
        if self.current is not None:
            mc, cap = self.current
            while tx.pending_bytes < cap:
                f = self.queue.next_frame(now, new=self.new_ok)
                if f is None:
                    break
                if self.journal is not None and f.seq >= self.journal.next_seq:
                    self.journal.frame(f.seq, f.offset, len(f.payload))
                if self.protector is not None:
                    payload = self.protector.protect(f.payload, header=sdls_aad(f.seq, f.offset))
                    tx.push(encode_user_frame(f.seq, f.offset, payload, FLAG_SDLS))
                else:
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
        if self.journal is not None:
            self.journal.stream_offset(self.out_offset("iq"))
        self.symbols_out += symbols.size
        self.by_modcod[name] = self.by_modcod.get(name, 0) + 1
        q = self.queue.stats
        self.counters.update(
            frames=sum(self.by_modcod.values()),
            dummy=self.dummy_frames,
            bytes_offered=q.bytes_offered + self.spill_pending,
            bytes_acked=q.bytes_acked,
            retransmitted=q.frames_retransmitted,
            queue_bytes=self.queue.held_bytes,
            spill_bytes=self.spill_pending,
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
            bytes_offered=q.stats.bytes_offered + self.spill_pending,
            bytes_acked=q.stats.bytes_acked,
            held_bytes=q.held_bytes + self.spill_pending,
        )

    def _held_ranges(self, most: int = 512) -> list | None:
        """Stream byte ranges held (queue and spill), for the run's accounting; None if > ``most``."""
        from modem.acm import merge_ranges

        spans = self.queue.held_ranges()
        if self.spill_pending:
            q_end = self.in_offset - self.spill_pending  # the spill is the tail of what came in
            spans.append((q_end, self.in_offset))
        spans = merge_ranges(spans)
        return [list(r) for r in spans] if len(spans) <= most else None

    def summary(self) -> dict:
        """Queue accounting, frames by MODCOD, feedback delays."""
        if not hasattr(self, "queue"):
            return {}
        q = self.queue.stats
        d = np.asarray(self.delays, dtype=np.float64)
        to_s = self.tb.time_scale / self.tb.sample_rate_hz
        out = {
            "bytes_offered": q.bytes_offered + self.spill_pending,
            "bytes_acked": q.bytes_acked,
            "held_bytes": self.queue.held_bytes + self.spill_pending,
            "held_ranges": self._held_ranges(),
            "queue_held_bytes": self.queue.held_bytes,
            "spill_pending_bytes": self.spill_pending,
            "spilled_bytes": self.spilled,
            "spill_peak_bytes": self.spill_peak,
            "source_bytes_dropped_ahead": self.dropped_ahead,
            "resume_requests": self.resumes,
            "restored": self.restored,
            "restored_bytes": self.restored_bytes,
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
        if self.protector is not None:
            out["sdls"] = {
                "frames_protected": self.protector.frames_out,
                "bytes_protected": self.protector.bytes_in,
                "overhead_bytes_per_frame": self.protector.overhead,
                "next_seq": self.protector.next_seq,
            }
        return out

    def teardown(self) -> None:
        """Close the journal."""
        if getattr(self, "journal", None) is not None:
            self.journal.close()


STAGE = Tx
