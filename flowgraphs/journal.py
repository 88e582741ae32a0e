"""State that outlives a stage process: the transmitter's journal and the sink's delivery state.

A stage killed with SIGKILL loses its memory; the runner restarts it with the same state folder
(``StageSpec.state_dir``, inside the run folder). What is written here survives the process
(it is in the operating system's page cache the moment ``write`` returns), not a crash of the
machine: nothing is fsynced on the data path.

Transmitter (:class:`TxJournal`)
    ``data/``: every user byte taken from the source, in segment files named by their first
    stream offset (:class:`DataLog`); segments wholly acknowledged are deleted, so the folder
    holds what is unacknowledged plus what waits to enter the transmit queue (the spill:
    bounded by the tx's ``spill_bytes``). ``meta.log``: fixed-size records, each written before
    the step it describes takes effect: ``F`` a user frame cut (seq, offset, length), ``A`` the
    cumulative acknowledgment, ``O`` the stream offset reached; rewritten as one snapshot when it
    grows past a limit. A restarted transmitter rebuilds its queue from them: every
    unacknowledged frame with the same sequence number, offset and bytes, sent again first.
Sink (:class:`SinkState`)
    ``state.json`` (next frame to deliver, bytes delivered, counters), replaced atomically after
    each message and before its acknowledgment goes out, and ``held.log``: the frames held
    beyond a hole (already selectively acknowledged, so never sent again), appended before
    the acknowledgment and emptied when nothing is held.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

_SEG_DIGITS = 20
_REC = struct.Struct("<cQQQ")  # kind, a, b, c
_HELD = struct.Struct("<QQI")  # seq, offset, length (then the payload)


def write_json_atomic(path, obj) -> None:
    """Replace ``path`` with the JSON of ``obj`` in one step (a reader sees the old or the new)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


def read_json(path, default=None):
    """The JSON object in ``path``, or ``default`` when the file is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def fresh_folder(path) -> Path:
    """``path`` emptied (created when missing), mode 0700."""
    p = Path(path)
    shutil.rmtree(p, ignore_errors=True)
    p.mkdir(mode=0o700, parents=True, exist_ok=True)
    return p


class MemoryLog:
    """:class:`DataLog` in memory (a stage without a state folder): same interface, no files."""

    def __init__(self):
        self.base = 0
        self.end = 0
        self._buf = bytearray()

    def append(self, data) -> None:
        """Add bytes at the end."""
        self._buf += data
        self.end += len(data)

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``offset .. offset + n - 1`` (fewer at the end)."""
        i = offset - self.base
        return bytes(self._buf[i : i + n])

    def trim(self, upto: int) -> None:
        """Forget the bytes below ``upto``."""
        k = min(max(0, upto - self.base), len(self._buf))
        if k > 1 << 16 or k == len(self._buf):
            del self._buf[:k]
            self.base += k

    def close(self) -> None:
        """Nothing to close."""


class DataLog:
    """Bytes of a stream, offsets ``base .. end - 1``, in segment files of a folder.

    Parameters
    ----------
    folder : str or Path
        Created if missing; existing segments are taken up (a restarted stage).
    segment_bytes : int
        Size at which a new segment file starts, bytes.
    """

    def __init__(self, folder, segment_bytes: int = 1 << 22):
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.segment_bytes = int(segment_bytes)
        self._segs: list[list[int]] = []  # [start, size]
        for p in sorted(self.folder.glob("*.seg")):
            self._segs.append([int(p.stem), p.stat().st_size])
        self._fd = None

    @property
    def base(self) -> int:
        """First offset held."""
        return self._segs[0][0] if self._segs else 0

    @property
    def end(self) -> int:
        """Offset after the last byte held."""
        return self._segs[-1][0] + self._segs[-1][1] if self._segs else 0

    def _path(self, start: int) -> Path:
        return self.folder / f"{start:0{_SEG_DIGITS}d}.seg"

    def append(self, data) -> None:
        """Add bytes at the end (starting a new segment when the last one is full)."""
        data = memoryview(data)
        while len(data):
            if not self._segs or self._segs[-1][1] >= self.segment_bytes:
                self._close_fd()
                self._segs.append([self.end, 0])
            if self._fd is None:
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
                self._fd = os.open(self._path(self._segs[-1][0]), flags, 0o600)
            take = min(len(data), self.segment_bytes - self._segs[-1][1])
            written = os.write(self._fd, data[:take])
            self._segs[-1][1] += written
            data = data[written:]

    def read(self, offset: int, n: int) -> bytes:
        """Bytes ``offset .. offset + n - 1`` (fewer past the end; ValueError below ``base``)."""
        if offset < self.base:
            raise ValueError(f"offset {offset} is below the log's first byte {self.base} (trimmed)")
        out = bytearray()
        for start, size in self._segs:
            if n <= 0:
                break
            if offset >= start + size:
                continue
            with open(self._path(start), "rb") as f:
                f.seek(offset - start)
                chunk = f.read(min(n, start + size - offset))
            out += chunk
            offset += len(chunk)
            n -= len(chunk)
        return bytes(out)

    def trim(self, upto: int) -> None:
        """Delete the segments wholly below ``upto`` (never the last one)."""
        while len(self._segs) > 1 and self._segs[0][0] + self._segs[0][1] <= upto:
            start, _ = self._segs.pop(0)
            self._path(start).unlink(missing_ok=True)

    def _close_fd(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Close the open segment."""
        self._close_fd()


class TxJournal:
    """The transmitter's journal in ``folder``; see the module notes.

    Parameters
    ----------
    folder : str or Path
    restore : bool
        Take up what a previous process of the stage left (False: start empty).
    meta_limit : int
        Size of ``meta.log`` past which it is rewritten as a snapshot, bytes.
    """

    def __init__(self, folder, restore: bool, meta_limit: int = 1 << 20):
        self.folder = Path(folder)
        if not restore:
            fresh_folder(self.folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data = DataLog(self.folder / "data")
        self.meta_path = self.folder / "meta.log"
        self.meta_limit = int(meta_limit)
        self.frames: dict[int, tuple[int, int]] = {}  # unacknowledged: seq -> (offset, length)
        self.cum = 0
        self.next_seq = 0
        self.framed_end = 0
        self.out_offset = 0
        self.restored = False
        if restore and self.meta_path.exists():
            self._load()
            self.restored = True
        self._meta = open(self.meta_path, "ab", buffering=0)

    def _load(self) -> None:
        raw = self.meta_path.read_bytes()
        n = len(raw) // _REC.size
        for kind, a, b, c in _REC.iter_unpack(raw[: n * _REC.size]):
            if kind == b"F":
                self.frames[a] = (b, c)
                self.next_seq = max(self.next_seq, a + 1)
                self.framed_end = max(self.framed_end, b + c)
            elif kind == b"A":
                self._drop_below(a)
            elif kind == b"O":
                self.out_offset = max(self.out_offset, a)
            elif kind == b"S":
                self.cum, self.next_seq, self.framed_end = a, b, c
            elif kind == b"T":
                self.out_offset = max(self.out_offset, a)

    def _drop_below(self, cum: int) -> None:
        if cum <= self.cum:
            return
        for s in range(self.cum, min(cum, self.next_seq)):
            self.frames.pop(s, None)
        self.cum = cum

    @property
    def acked_offset(self) -> int:
        """Stream offset below which every byte is acknowledged."""
        f = self.frames.get(self.cum)
        return f[0] if f is not None else self.framed_end

    def _write(self, kind: bytes, a: int, b: int = 0, c: int = 0) -> None:
        self._meta.write(_REC.pack(kind, a, b, c))

    def frame(self, seq: int, offset: int, length: int) -> None:
        """Record a user frame cut from the data (before it is sent)."""
        self._write(b"F", seq, offset, length)
        self.frames[seq] = (offset, length)
        self.next_seq = max(self.next_seq, seq + 1)
        self.framed_end = max(self.framed_end, offset + length)

    def ack(self, cum: int) -> None:
        """Record the cumulative acknowledgment; drop what it covers (frames and data segments)."""
        cum = min(int(cum), self.next_seq)
        if cum <= self.cum:
            return
        self._write(b"A", cum)
        self._drop_below(cum)
        self.data.trim(self.acked_offset)
        if self._meta.tell() > self.meta_limit:
            self._snapshot()

    def stream_offset(self, offset: int) -> None:
        """Record the IQ stream offset reached (a restarted stage continues from it)."""
        self.out_offset = offset
        self._write(b"O", offset)
        if self._meta.tell() > self.meta_limit:  # a long outage: frames go out, no ack comes
            self._snapshot()

    def _snapshot(self) -> None:
        tmp = self.meta_path.with_name("meta.log.tmp")
        with open(tmp, "wb") as f:
            f.write(_REC.pack(b"S", self.cum, self.next_seq, self.framed_end))
            f.write(_REC.pack(b"T", self.out_offset, 0, 0))
            for seq in sorted(self.frames):
                off, n = self.frames[seq]
                f.write(_REC.pack(b"F", seq, off, n))
        self._meta.close()
        os.replace(tmp, self.meta_path)
        self._meta = open(self.meta_path, "ab", buffering=0)

    def close(self) -> None:
        """Close the files."""
        self._meta.close()
        self.data.close()


def restore_queue(queue, journal: TxJournal) -> int:
    """Load a fresh :class:`modem.acm.TransmitQueue` with the journal's unacknowledged frames.

    They keep their sequence numbers, offsets and bytes and go out first (as frames detected
    lost); new data continues at ``journal.framed_end``. Returns the payload bytes restored.

    Notes
    -----
    ``TransmitQueue`` has no public way to take frames back; this sets its fields directly
    (kept here, next to the journal, until it gets a ``restore`` method of its own).
    """
    import heapq

    from modem.acm import QueuedFrame

    held = 0
    for seq in sorted(journal.frames):
        off, n = journal.frames[seq]
        payload = journal.data.read(off, n)
        if len(payload) != n:
            raise ValueError(f"journal: frame {seq} needs bytes {off}..{off + n - 1}; the data log is short")
        f = QueuedFrame(seq, off, payload)
        queue._resend[seq] = f
        heapq.heappush(queue._resend_heap, seq)
        held += n
    queue._held_bytes = held
    queue._next_seq = journal.next_seq
    queue._new_offset = journal.framed_end
    queue._cum_ack = journal.cum
    queue.stats.bytes_offered = journal.framed_end
    queue.stats.bytes_acked = journal.framed_end - held
    queue.stats.frames_created = journal.next_seq
    return held


class SinkState:
    """The sink's delivery state in ``folder``; see the module notes."""

    def __init__(self, folder, restore: bool):
        self.folder = Path(folder)
        if not restore:
            fresh_folder(self.folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state_path = self.folder / "state.json"
        self.held_path = self.folder / "held.log"
        self.state = read_json(self.state_path, None) if restore else None
        self.held: dict[int, tuple[int, bytes]] = {}
        if self.state is not None and self.held_path.exists():
            raw = self.held_path.read_bytes()
            pos = 0
            while pos + _HELD.size <= len(raw):
                seq, off, n = _HELD.unpack_from(raw, pos)
                if pos + _HELD.size + n > len(raw):
                    break  # a record cut by the kill: its frame was not acknowledged
                self.held[seq] = (off, raw[pos + _HELD.size : pos + _HELD.size + n])
                pos += _HELD.size + n
        self._held_file = open(self.held_path, "ab", buffering=0)

    def hold(self, frames) -> None:
        """Append frames now held beyond a hole: iterable of (seq, offset, payload)."""
        buf = bytearray()
        for seq, off, payload in frames:
            buf += _HELD.pack(seq, off, len(payload)) + payload
        if buf:
            self._held_file.write(buf)

    def save(self, state: dict, held: dict, held_bytes: int) -> None:
        """Replace the state file, then shrink ``held.log`` to ``held`` (seq -> (offset, payload)).

        The state goes first: a kill in between leaves frames in the log that the state says
        are delivered, which a restart skips.
        """
        write_json_atomic(self.state_path, state)
        size = self._held_file.tell()
        if not held and size > 0:
            self._held_file.truncate(0)
            self._held_file.seek(0)
        elif size > 4 * held_bytes + (1 << 20):
            tmp = self.held_path.with_name("held.log.tmp")
            with open(tmp, "wb") as f:
                for seq in sorted(held):
                    off, payload = held[seq]
                    f.write(_HELD.pack(seq, off, len(payload)) + payload)
            self._held_file.close()
            os.replace(tmp, self.held_path)
            self._held_file = open(self.held_path, "ab", buffering=0)

    def close(self) -> None:
        """Close the held-frames log."""
        self._held_file.close()
