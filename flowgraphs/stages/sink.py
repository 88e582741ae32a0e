"""Sink stage: user frames in, every byte checked against the source, delivery in order, acks out.

Each user frame's payload is compared with the source's pattern at the frame's stream offset
(:func:`flowgraphs.stages.source.make_pattern`): a mismatch is counted as corrupt and the frame
treated as never received (it is not acknowledged, so it comes again). Frames arrive in
transmission order but with holes (frames lost on the link) and repeats (retransmissions);
the sink buffers frames beyond a hole and delivers bytes strictly in order, so
``delivered_bytes`` is always a prefix of the offered stream.

After each message it publishes ``sink.ack``: ``cum`` (every frame below it delivered),
``sack`` (up to ``ack_ranges`` ranges [lo, hi) of frames held beyond ``cum``), ``rx_offset``
(the stream sample the receiver had reached) and the byte counts.
"""

from __future__ import annotations

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
        self.out = open(self.p.output, "wb") if self.p.output else None
        self.counters.update(delivered_bytes=0, frames=0, duplicates=0, corrupt=0, held_frames=0)

    def on_message(self, port: str, msg: wire.Message) -> None:
        """Check, buffer and deliver the frames of one message, then acknowledge."""
        if msg.kind != wire.KIND_FRAMES or len(msg.body) < 8:
            self.wire_stats[port].count("malformed")
            return
        (self.rx_offset,) = struct.unpack_from("<Q", msg.body)
        self.parser.reset()
        for f in self.parser(memoryview(msg.body)[8:]):
            self.frames_in += 1
            if f.seq < self.next_seq or f.seq in self.held:
                self.duplicates += 1
                continue
            if self.pattern is not None and self.pattern.read(f.offset, len(f.payload)) != f.payload:
                self.corrupt += 1
                self.log(f"user frame {f.seq} (bytes {f.offset}..) differs from the source: dropped", "error")
                continue
            self.held[f.seq] = (f.offset, f.payload)
            self.held_bytes += len(f.payload)
        self._deliver()
        self._ack()
        self._check_done()

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
        """Close the output file."""
        if getattr(self, "out", None) is not None:
            self.out.close()

    def summary(self) -> dict:
        """Delivered bytes and everything refused."""
        if not hasattr(self, "parser"):
            return {}
        return {
            "delivered_bytes": self.delivered_bytes,
            "delivered_frames": self.next_seq,
            "held_bytes": self.held_bytes,
            "held_frames": len(self.held),
            "frames_in": self.frames_in,
            "duplicates": self.duplicates,
            "corrupt": self.corrupt,
            "offset_errors": self.offset_errors,
            "verified": self.pattern is not None,
            "rx_offset": self.rx_offset,
        }


STAGE = Sink
