"""Sink stage: user frames in, every byte checked against the source, delivery in order, acks out.

Each user frame's payload is compared with the source's pattern at the frame's stream offset
(:func:`flowgraphs.stages.source.make_pattern`): a mismatch is counted as corrupt and the frame
treated as never received (it is not acknowledged, so it comes again). Frames arrive in
transmission order but with holes (frames lost on the link) and repeats (retransmissions);
the sink buffers frames beyond a hole and delivers bytes strictly in order, so
``delivered_bytes`` is always a prefix of the offered stream.

With ``[security] sdls_key_file`` every frame must carry an SDLS-protected payload
(:mod:`flowgraphs.frame_security`): a frame that is unprotected (it fails as a bad SPI or MAC),
truncated, forged, replayed or too old is refused and counted by reason (``sdls`` in the
summary) before anything else looks at it, and never delivered.

The delivery state (next frame, bytes delivered, frames held beyond a hole, the SDLS window's
top) is kept in the stage's state folder (:class:`flowgraphs.journal.SinkState`) before each
acknowledgment goes out, so a sink killed with SIGKILL and restarted by the runner goes on
where it was: nothing it acknowledged is lost, nothing is delivered twice.

After each message it publishes ``sink.ack``: ``cum`` (every frame below it delivered),
``sack`` (up to ``ack_ranges`` ranges [lo, hi) of frames held beyond ``cum``), ``rx_offset``
(the stream sample the receiver had reached) and the byte counts.
"""

from __future__ import annotations

import os
import struct

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage


class Sink(Stage):
    """Verifying, reordering sink; see the module notes."""

    TYPE = "sink"
    PARAMS = {
        "verify": Param(True, bool, "compare every payload byte with the source's pattern"),
        "source": Param("", str, "source stage to verify against ('' : the graph's only source)"),
        "ack_ranges": Param(32, int, "selective-ack ranges per acknowledgment", lo=0, hi=4096),
        "output": Param("", str, "file to write the delivered bytes to ('' : none)"),
        "expect_bytes": Param(0, int, "report done once this many bytes are delivered (0: never)", lo=0),
    }
    INPUTS = {"frames": Port("frames", "user frames from a receiver")}

    def setup(self) -> None:
        """Find the source's pattern."""
        from flowgraphs.stages.source import make_pattern
        from flowgraphs.userframes import UserFrameParser

        self.pattern = None
        if self.p.verify:
            peers = self.spec.peers
            name = self.p.source
            if not name:
                sources = [n for n, v in peers.items() if v["type"] == "source"]
                if len(sources) != 1:
                    raise ConfigError(
                        f"stage {self.name!r}: key 'source': name the source to verify against "
                        f"(sources in the graph: {', '.join(sources) or 'none'})"
                    )
                name = sources[0]
            if name not in peers:
                raise ConfigError(f"stage {self.name!r}: key 'source': no stage {name!r}")
            self.pattern = make_pattern(peers[name]["params"], self.spec.link)
        self.parser = UserFrameParser()
        self.next_seq = 0
        self.delivered_bytes = 0
        self.held: dict[int, tuple[int, bytes]] = {}  # seq -> (offset, payload) beyond a hole
        self.held_bytes = 0
        self.duplicates = 0
        self.corrupt = 0
        self.offset_errors = 0
        self.frames_in = 0
        self.rx_offset = 0
        self.restored = False
        self.state = None
        floor = None
        if self.spec.state_dir:
            from flowgraphs.journal import SinkState

            self.state = SinkState(os.path.join(self.spec.state_dir, "sink"), restore=self.epoch > 0)
            st = self.state.state
            if st is not None:
                self.restored = True
                self.next_seq = int(st["next_seq"])
                self.delivered_bytes = int(st["delivered_bytes"])
                self.rx_offset = int(st["rx_offset"])
                self.duplicates, self.corrupt = int(st["duplicates"]), int(st["corrupt"])
                self.offset_errors, self.frames_in = int(st["offset_errors"]), int(st["frames_in"])
                floor = st.get("sdls_highest")
                self.held = {q: f for q, f in self.state.held.items() if q >= self.next_seq}
                self.held_bytes = sum(len(p) for _, p in self.held.values())
        from flowgraphs.frame_security import make_verifier

        self.verifier = make_verifier(self.spec, floor)
        self.sdls_unflagged = 0
        if self.p.output:
            self.out = open(self.p.output, "r+b" if self.restored and os.path.exists(self.p.output) else "wb")
            self.out.truncate(self.delivered_bytes)
            self.out.seek(self.delivered_bytes)
        else:
            self.out = None
        self.counters.update(delivered_bytes=0, frames=0, duplicates=0, corrupt=0, held_frames=0)
        if self.restored:
            self.log(
                f"restored: {self.delivered_bytes} bytes delivered, next frame {self.next_seq}, "
                f"{len(self.held)} frames held"
            )
            self._deliver()

    def on_message(self, port: str, msg: wire.Message) -> None:
        """Check, buffer and deliver the frames of one message, then acknowledge."""
        if msg.kind != wire.KIND_FRAMES or len(msg.body) < 8:
            self.wire_stats[port].count("malformed")
            return
        (rx_offset,) = struct.unpack_from("<Q", msg.body)
        self.rx_offset = max(self.rx_offset, rx_offset)
        self.parser.reset()
        new_held = []
        for f in self.parser(memoryview(msg.body)[8:]):
            self.frames_in += 1
            if self.verifier is not None:
                f = self._unprotect(f)
                if f is None:
                    continue
            if f.seq < self.next_seq or f.seq in self.held:
                self.duplicates += 1
                continue
            if self.pattern is not None and self.pattern.read(f.offset, len(f.payload)) != f.payload:
                self.corrupt += 1
                self.log(f"user frame {f.seq} (bytes {f.offset}..) differs from the source: dropped", "error")
                continue
            self.held[f.seq] = (f.offset, f.payload)
            self.held_bytes += len(f.payload)
            new_held.append(f.seq)
        self._deliver()
        if self.state is not None:  # on disk before the acknowledgment says we have it
            self.state.hold((q, *self.held[q]) for q in new_held if q in self.held)
            self.state.save(self._state_dict(), self.held, self.held_bytes)
        self._ack()
        self._check_done()

    def _unprotect(self, f):
        """The frame with its SDLS protection checked and removed, or None (refused, counted)."""
        from flowgraphs.userframes import FLAG_SDLS, UserFrame, sdls_aad
        from modem.sdls import FrameRejected

        # every payload is taken as protected: the flag is informational (a relay that re-frames
        # user frames may drop it) and an unprotected payload fails the checks below anyway
        if not f.flags & FLAG_SDLS:
            self.sdls_unflagged += 1
        try:
            payload = self.verifier.verify(f.payload, header=sdls_aad(f.seq, f.offset))
        except FrameRejected as e:
            self._sdls_refused(f"user frame {f.seq}: {e}")
            return None
        return UserFrame(f.seq, f.offset, payload, 0)

    def _sdls_refused(self, text: str) -> None:
        n = self.sdls_stats()["rejected"]
        if n <= 10 or n % 1000 == 0:
            self.log(f"SDLS refused a frame ({text}); {n} refused so far", "warning")

    def sdls_stats(self) -> dict:
        """SDLS counters: frames in, authenticated, refused by reason (and unprotected)."""
        from modem.sdls import REASONS

        c = dict(self.verifier.counters)
        c["rejected"] = sum(c[r] for r in REASONS)
        c["unflagged"] = self.sdls_unflagged
        c["highest_seq"] = self.verifier.highest_seq
        return c

    def _state_dict(self) -> dict:
        return {
            "next_seq": self.next_seq,
            "delivered_bytes": self.delivered_bytes,
            "rx_offset": self.rx_offset,
            "duplicates": self.duplicates,
            "corrupt": self.corrupt,
            "offset_errors": self.offset_errors,
            "frames_in": self.frames_in,
            "sdls_highest": self.verifier.highest_seq if self.verifier is not None else None,
        }

    def _deliver(self) -> None:
        while self.next_seq in self.held:
            offset, payload = self.held.pop(self.next_seq)
            self.held_bytes -= len(payload)
            if offset != self.delivered_bytes:
                self.offset_errors += 1
                self.log(
                    f"user frame {self.next_seq} starts at byte {offset}, expected {self.delivered_bytes}",
                    "error",
                )
            self.delivered_bytes += len(payload)
            if self.out is not None:
                self.out.write(payload)
            self.next_seq += 1
        self.counters.update(
            delivered_bytes=self.delivered_bytes,
            frames=self.frames_in,
            duplicates=self.duplicates,
            corrupt=self.corrupt,
            held_frames=len(self.held),
        )
        if getattr(self, "verifier", None) is not None:
            self.counters["sdls_rejected"] = self.sdls_stats()["rejected"]

    def _ranges(self) -> list[list[int]]:
        out: list[list[int]] = []
        for s in sorted(self.held):
            if out and out[-1][1] == s:
                out[-1][1] = s + 1
            else:
                if len(out) >= self.p.ack_ranges:
                    break
                out.append([s, s + 1])
        return out

    def _check_done(self) -> None:
        if self.p.expect_bytes and self.delivered_bytes >= self.p.expect_bytes:
            self.finish(delivered_bytes=self.delivered_bytes)

    def _ack(self) -> None:
        self.publish(
            "sink.ack",
            {
                "cum": self.next_seq,
                "sack": self._ranges(),
                "rx_offset": self.rx_offset,
                "delivered_bytes": self.delivered_bytes,
                "held_bytes": self.held_bytes,
            },
        )

    def teardown(self) -> None:
        """Close the output file and the state; keep the SDLS window's top next to the key."""
        if getattr(self, "out", None) is not None:
            self.out.close()
        if getattr(self, "state", None) is not None:
            self.state.close()
        if getattr(self, "verifier", None) is not None:
            from flowgraphs.frame_security import save_receiver_floor

            save_receiver_floor(self.spec, self.verifier.highest_seq)

    def _held_ranges(self, most: int = 512) -> list | None:
        """Stream byte ranges of the frames held beyond a hole; None if more than ``most``."""
        from modem.acm import merge_ranges

        spans = merge_ranges((o, o + len(p)) for o, p in self.held.values())
        return [list(r) for r in spans] if len(spans) <= most else None

    def summary(self) -> dict:
        """Delivered bytes and everything refused."""
        if not hasattr(self, "parser"):
            return {}
        return {
            "delivered_bytes": self.delivered_bytes,
            "delivered_frames": self.next_seq,
            "held_bytes": self.held_bytes,
            "held_ranges": self._held_ranges(),
            "held_frames": len(self.held),
            "frames_in": self.frames_in,
            "duplicates": self.duplicates,
            "corrupt": self.corrupt,
            "offset_errors": self.offset_errors,
            "verified": self.pattern is not None,
            "rx_offset": self.rx_offset,
            "restored": self.restored,
            **({"sdls": self.sdls_stats()} if self.verifier is not None else {}),
        }


STAGE = Sink
