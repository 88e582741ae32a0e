"""Source stage: user bytes from a pseudo-random pattern, a counter or a file.

Every pattern is random-access (:func:`make_pattern` gives ``read(offset, n)``), so the sink
verifies any byte it receives against the same pattern, wherever it falls in the stream.

Output ``out`` carries byte-chunk messages: the chunk's stream offset (u64, little-endian) then
the bytes. When ``total_bytes`` are sent (or the file ends) the source sends a JSON message
``{"eod": total}`` on the same port and reports done. The link's backpressure paces it: the
transmitter reads only when its queue has room.

A transmitter that restarted (or found a hole) publishes ``tx.resume`` with the offset of the
first byte it lacks: the source goes back there and sends again (and the end of data after).
"""

from __future__ import annotations

import struct

import numpy as np

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage

_BLOCK = 1 << 16


class PrbsPattern:
    """Pseudo-random bytes: PCG64 streams seeded by (seed, 64-KiB block number), random access."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._cache: dict[int, bytes] = {}

    def _block(self, b: int) -> bytes:
        blk = self._cache.get(b)
        if blk is None:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, b])))
            blk = rng.integers(0, 256, _BLOCK, dtype=np.uint8).tobytes()
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[b] = blk
        return blk

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``offset .. offset + n - 1`` of the pattern."""
        out = bytearray()
        while n > 0:
            b, o = divmod(offset, _BLOCK)
            take = min(n, _BLOCK - o)
            out += self._block(b)[o : o + take]
            offset += take
            n -= take
        return bytes(out)


class CounterPattern:
    """Byte ``i`` is ``i mod 256``."""

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``offset .. offset + n - 1``."""
        return (np.arange(offset, offset + n, dtype=np.uint64) % 256).astype(np.uint8).tobytes()


class FilePattern:
    """The bytes of a file (reads past its end return fewer bytes)."""

    def __init__(self, path: str):
        self.path = path
        with open(path, "rb"):
            pass

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``offset .. offset + n - 1`` of the file (fewer at its end)."""
        with open(self.path, "rb") as f:
            f.seek(offset)
            return f.read(n)

    @property
    def size(self) -> int:
        """File size, bytes."""
        import os

        return os.path.getsize(self.path)


def make_pattern(params: dict, link: dict):
    """The pattern a source stage with these parameters sends (the sink calls this too)."""
    kind = params["pattern"]
    if kind == "prbs":
        seed = params["seed"] if params.get("seed", -1) >= 0 else link.get("seed", 0)
        return PrbsPattern(seed)
    if kind == "counter":
        return CounterPattern()
    if not params.get("path"):
        raise ConfigError("key 'path': pattern 'file' needs a file path")
    return FilePattern(params["path"])


class Source(Stage):
    """User bytes into the link: see the module notes."""

    TYPE = "source"
    PARAMS = {
        "pattern": Param("prbs", str, "byte pattern", choices=("prbs", "counter", "file")),
        "seed": Param(-1, int, "PRBS seed (-1: the link's seed)", lo=-1),
        "path": Param("", str, "file to send (pattern 'file')"),
        "total_bytes": Param(0, int, "bytes to send (0: unlimited, or the whole file)", lo=0, unit="bytes"),
        "chunk_bytes": Param(65536, int, "bytes per message", lo=1, hi=1 << 22, unit="bytes"),
    }
    OUTPUTS = {"out": Port("bytes", "offset-stamped byte chunks, then an end-of-data message")}
    SUBSCRIBE = ("tx.resume",)
    CONTROL_TOPICS = ("tx.resume",)

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """Check the file of pattern 'file' exists."""
        if params["pattern"] == "file":
            try:
                make_pattern(params, link)
            except OSError as e:
                raise ConfigError(f"key 'path': cannot read {params['path']!r}: {e.strerror}") from None

    def setup(self) -> None:
        """Open the pattern."""
        self.pattern = make_pattern(self.spec.params, self.spec.link)
        self.total = self.p.total_bytes
        if self.p.pattern == "file":
            size = self.pattern.size
            self.total = min(self.total, size) if self.total else size
        self.offset = 0
        self.eod_sent = False
        self.rewinds = 0
        self.counters.update(bytes_sent=0, messages=0)

    def on_bus(self, topic: str, body: dict) -> None:
        """``tx.resume``: send again from ``offset`` (only backwards: bytes never sent stay so)."""
        offset = body.get("offset")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise ValueError(f"tx.resume: 'offset' must be an int >= 0; got {offset!r}")
        if offset <= self.offset:
            if offset < self.offset:
                self.log(f"transmitter asks for bytes from {offset} again (was at {self.offset})")
            self.offset = offset
            self.eod_sent = False
            self.rewinds += 1

    def work(self) -> bool:
        """Send the next chunk when the link has room."""
        if self.eod_sent or not self.output_ready("out"):
            return False
        if self.total and self.offset >= self.total:
            if self.send_message("out", wire.KIND_JSON, {"eod": self.offset}, block=False):
                self.eod_sent = True
                self.finish(bytes=self.offset)
            return False
        n = self.p.chunk_bytes if not self.total else min(self.p.chunk_bytes, self.total - self.offset)
        data = self.pattern.read(self.offset, n)
        if not self.send_message("out", wire.KIND_BYTES, struct.pack("<Q", self.offset) + data, block=False):
            return False
        self.offset += len(data)
        self.counters["bytes_sent"] = self.offset
        self.counters["messages"] += 1
        return True

    def summary(self) -> dict:
        """Bytes sent."""
        return {"bytes_sent": self.offset, "eod": self.eod_sent, "rewinds": getattr(self, "rewinds", 0)}


STAGE = Source
