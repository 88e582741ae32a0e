"""Message formats on marslink's ZeroMQ links.

Two families of messages travel between stages:

* **IQ streams** (PUSH/PULL): little-endian complex64 samples, byte-compatible with GNU Radio
  3.10's gr-zeromq blocks. Without tags a message is nothing but samples (``pass_tags=False``
  in GNU Radio). With tags it starts with gr-zeromq's tag header (``pass_tags=True``), all
  fields little-endian except the PMT values, which use PMT's own big-endian serialization:

  ====== ======= =========================================================
  bytes  type    field
  ====== ======= =========================================================
  2      u16     magic 0x5FF0
  1      u8      version 0x01
  8      u64     offset: absolute index of the message's first item
  8      u64     number of tags, then for each tag:
  8      u64       the tag's absolute item offset
  ...    PMT       key, value, srcid (each a serialized PMT)
  ====== ======= =========================================================

  followed by the samples in the same ZeroMQ frame (one part). marslink uses the header's
  offset as the stream's sequence number: a message that goes back in the stream is rejected
  as out of order, one that skips ahead records a gap.
* **Control, telemetry and data messages** (PUB/SUB bus and PUSH/PULL data links): a 32-byte
  self-describing header followed by a body:

  ====== ======= =========================================================
  bytes  type    field
  ====== ======= =========================================================
  4      bytes   magic ``b"MLNK"``
  1      u8      version (1)
  1      u8      kind: 1 JSON object (UTF-8), 2 byte chunk, 3 user frames
  2      u16     flags (0)
  4      u32     sender: CRC-32 of the sending stage's name
  4      u32     epoch: the sender's incarnation (0, then +1 at every restart)
  8      u64     sequence number, per sender and link, from 0
  4      u32     body length, bytes
  4      u32     CRC-32 of header bytes 0..27 and the body
  ====== ======= =========================================================

A receiver refuses (and counts, see :class:`WireStats`) anything it cannot vouch for: a wrong
magic or version, a truncated or oversized message, a CRC mismatch, an unknown kind, and a
message whose sequence number does not advance (replayed or out of order). None of this stops
a stage.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field

import numpy as np

#: Sample type on every IQ link: little-endian complex64 (GNU Radio's gr_complex).
IQ_DTYPE = np.dtype("<c8")

GR_TAG_MAGIC = 0x5FF0
GR_TAG_VERSION = 0x01
_GR_HEAD = struct.Struct("<HBQQ")  # magic, version, offset, number of tags

MAGIC = b"MLNK"
VERSION = 1
KIND_JSON = 1
KIND_BYTES = 2
KIND_FRAMES = 3
KINDS = {KIND_JSON: "json", KIND_BYTES: "bytes", KIND_FRAMES: "frames"}
_HEAD = struct.Struct("<4sBBHIIQII")
HEADER_BYTES = _HEAD.size  # 32
#: Default size limits: IQ messages in samples, other messages in bytes (body and header).
MAX_IQ_SAMPLES = 1 << 22
MAX_MESSAGE_BYTES = 1 << 24
MAX_JSON_BYTES = 1 << 20


class WireError(ValueError):
    """A message that cannot be accepted; ``reason`` is the counter it is recorded under."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def sender_id(name: str) -> int:
    """The 32-bit sender id of a stage name (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(name.encode())


# ---------------------------------------------------------------------------------------------
# PMT serialization (GNU Radio's pmt::serialize), the subset tags use

_PST_TRUE, _PST_FALSE, _PST_SYMBOL, _PST_INT32, _PST_DOUBLE, _PST_COMPLEX = 0, 1, 2, 3, 4, 5
_PST_NULL, _PST_PAIR, _PST_VECTOR, _PST_DICT, _PST_UVECTOR, _PST_UINT64 = 6, 7, 8, 9, 10, 11
_PST_TUPLE, _PST_INT64 = 12, 13
#: Uniform-vector element codes and their numpy types (big-endian on the wire).
_UVEC_TYPES = {
    0: ">u1",
    1: ">i1",
    2: ">u2",
    3: ">i2",
    4: ">u4",
    5: ">i4",
    6: ">u8",
    7: ">i8",
    8: ">f4",
    9: ">f8",
    10: ">c8",
    11: ">c16",
}
_UVEC_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _UVEC_TYPES.items()}
_MAX_PMT_DEPTH = 32


@dataclass(frozen=True)
class Symbol:
    """A PMT symbol (interned string), e.g. a tag key ``Symbol("rx_freq")``."""

    name: str


@dataclass(frozen=True)
class Pair:
    """A PMT pair (cons cell)."""

    car: object
    cdr: object


@dataclass(frozen=True)
class UInt64:
    """An integer to be serialized as PMT uint64 (plain ints become int32 or int64)."""

    value: int


def pmt_serialize(value) -> bytes:
    """Serialize a Python value as a PMT (GNU Radio's ``pmt::serialize``).

    ``True``/``False`` -> bool, ``None`` -> PMT_NIL, :class:`Symbol` or ``str`` -> symbol,
    ``int`` -> int32 if it fits else int64, :class:`UInt64` -> uint64, ``float`` -> double,
    ``complex`` -> complex, :class:`Pair` -> pair, ``list`` -> vector, ``tuple`` -> tuple,
    ``dict`` -> dict, 1-D numpy array -> uniform vector.

    Raises
    ------
    TypeError
        For a value with no PMT equivalent.
    """
    out = bytearray()
    _ser(value, out, 0)
    return bytes(out)


def _ser(v, out: bytearray, depth: int) -> None:
    if depth > _MAX_PMT_DEPTH:
        raise ValueError(f"PMT nested deeper than {_MAX_PMT_DEPTH} levels")
    if v is True or v is False:
        out.append(_PST_TRUE if v else _PST_FALSE)
    elif v is None:
        out.append(_PST_NULL)
    elif isinstance(v, Symbol | str):
        b = (v.name if isinstance(v, Symbol) else v).encode()
        if len(b) > 0xFFFF:
            raise ValueError(f"PMT symbol longer than 65535 bytes: {len(b)}")
        out += struct.pack(">BH", _PST_SYMBOL, len(b)) + b
    elif isinstance(v, UInt64):
        out += struct.pack(">BQ", _PST_UINT64, v.value)
    elif isinstance(v, int | np.integer):
        v = int(v)
        if -(1 << 31) <= v < (1 << 31):
            out += struct.pack(">Bi", _PST_INT32, v)
        else:
            out += struct.pack(">Bq", _PST_INT64, v)
    elif isinstance(v, float | np.floating):
        out += struct.pack(">Bd", _PST_DOUBLE, float(v))
    elif isinstance(v, complex | np.complexfloating):
        out += struct.pack(">Bdd", _PST_COMPLEX, v.real, v.imag)
    elif isinstance(v, Pair):
        out.append(_PST_PAIR)
        _ser(v.car, out, depth + 1)
        _ser(v.cdr, out, depth + 1)
    elif isinstance(v, list | tuple):
        out += struct.pack(">BI", _PST_VECTOR if isinstance(v, list) else _PST_TUPLE, len(v))
        for item in v:
            _ser(item, out, depth + 1)
    elif isinstance(v, dict):
        if not v:
            out.append(_PST_NULL)  # an empty dict is PMT_NIL
            return
        # GNU Radio serializes a dict as a chain: DICT, (key . value) pair, then the rest of the
        # dict the same way, ending with NIL
        for k, val in v.items():
            out.append(_PST_DICT)
            out.append(_PST_PAIR)
            _ser(Symbol(k) if isinstance(k, str) else k, out, depth + 1)
            _ser(val, out, depth + 1)
        out.append(_PST_NULL)
    elif isinstance(v, np.ndarray):
        if v.ndim != 1:
            raise TypeError(f"a uniform vector must be 1-D; got shape {v.shape}")
        code = _UVEC_CODES.get(v.dtype.newbyteorder("="))
        if code is None:
            raise TypeError(f"no PMT uniform vector for dtype {v.dtype}")
        out += struct.pack(">BBIBB", _PST_UVECTOR, code, v.size, 1, 0)
        out += v.astype(_UVEC_TYPES[code], copy=False).tobytes()
    else:
        raise TypeError(f"no PMT equivalent for a value of type {type(v).__name__}: {v!r}")


def pmt_deserialize(buf, pos: int = 0):
    """Parse one serialized PMT from ``buf`` at ``pos``; return ``(value, next position)``.

    Values come back as :func:`pmt_serialize` takes them (symbols as :class:`Symbol`, uint64 as
    :class:`UInt64`, dicts as ``dict``, uniform vectors as numpy arrays in native byte order).

    Raises
    ------
    WireError
        ``reason`` "malformed": truncated data, an unknown type code or too deep nesting.
    """
    mv = memoryview(buf).cast("B") if not isinstance(buf, bytes) else buf
    return _guarded(_de, "PMT", mv, pos, 0)


def _guarded(parse, what: str, *args):
    """Call ``parse(*args)``; any error other than WireError becomes WireError("malformed").

    The parsers below check what they can; this catches the rest (struct, numpy, hashing,
    recursion and integer-size errors) so that no input makes a decoder raise anything else.
    """
    try:
        return parse(*args)
    except WireError:
        raise
    except (ValueError, TypeError, RecursionError, OverflowError, MemoryError, struct.error) as e:
        raise WireError("malformed", f"{what} does not parse: {type(e).__name__}: {e}") from e


def _need(buf, pos: int, n: int) -> None:
    if pos + n > len(buf):
        raise WireError("malformed", f"PMT truncated at byte {pos}: {n} more bytes needed")


def _de(buf, pos: int, depth: int):
    if depth > _MAX_PMT_DEPTH:
        raise WireError("malformed", f"PMT nested deeper than {_MAX_PMT_DEPTH} levels")
    _need(buf, pos, 1)
    t = buf[pos]
    pos += 1
    if t == _PST_TRUE:
        return True, pos
    if t == _PST_FALSE:
        return False, pos
    if t == _PST_NULL:
        return None, pos
    if t == _PST_SYMBOL:
        _need(buf, pos, 2)
        (n,) = struct.unpack_from(">H", buf, pos)
        _need(buf, pos + 2, n)
        try:
            name = bytes(buf[pos + 2 : pos + 2 + n]).decode()
        except UnicodeDecodeError as e:
            raise WireError("malformed", f"PMT symbol is not UTF-8 at byte {pos}") from e
        return Symbol(name), pos + 2 + n
    fixed = {_PST_INT32: ">i", _PST_INT64: ">q", _PST_UINT64: ">Q", _PST_DOUBLE: ">d", _PST_COMPLEX: ">dd"}
    if t in fixed:
        s = struct.Struct(fixed[t])
        _need(buf, pos, s.size)
        vals = s.unpack_from(buf, pos)
        pos += s.size
        if t == _PST_COMPLEX:
            return complex(*vals), pos
        if t == _PST_UINT64:
            return UInt64(vals[0]), pos
        return vals[0], pos
    if t == _PST_PAIR:
        car, pos = _de(buf, pos, depth + 1)
        cdr, pos = _de(buf, pos, depth + 1)
        return Pair(car, cdr), pos
    if t in (_PST_VECTOR, _PST_TUPLE):
        _need(buf, pos, 4)
        (n,) = struct.unpack_from(">I", buf, pos)
        pos += 4
        if n > len(buf) - pos:  # every element takes at least one byte
            raise WireError("malformed", f"PMT vector of {n} elements in {len(buf) - pos} bytes")
        items = []
        for _ in range(n):
            item, pos = _de(buf, pos, depth + 1)
            items.append(item)
        return (items if t == _PST_VECTOR else tuple(items)), pos
    if t == _PST_DICT:
        d = {}
        while True:  # a chain of DICT (key . value) ... NIL, read without recursion
            entry, pos = _de(buf, pos, depth + 1)
            if not isinstance(entry, Pair):
                raise WireError("malformed", "PMT dict entry is not a (key . value) pair")
            try:
                d[entry.car] = entry.cdr
            except TypeError:  # a vector, dict or uniform vector as key: no Python dict key
                raise WireError(
                    "malformed", f"PMT dict key of type {type(entry.car).__name__} is not hashable"
                ) from None
            _need(buf, pos, 1)
            if buf[pos] == _PST_DICT:
                pos += 1
                continue
            rest, pos = _de(buf, pos, depth + 1)
            if rest is not None:
                raise WireError("malformed", "PMT dict does not end with NIL")
            return d, pos
    if t == _PST_UVECTOR:
        _need(buf, pos, 6)
        code, n, npad = struct.unpack_from(">BIB", buf, pos)
        pos += 6
        if code not in _UVEC_TYPES:
            raise WireError("malformed", f"PMT uniform vector of unknown element type {code}")
        _need(buf, pos, npad)
        pos += npad
        dt = np.dtype(_UVEC_TYPES[code])
        _need(buf, pos, n * dt.itemsize)
        arr = np.frombuffer(buf, dt, n, pos).astype(dt.newbyteorder("="))
        return arr, pos + n * dt.itemsize
    raise WireError("malformed", f"unknown PMT type code {t} at byte {pos - 1}")


# ---------------------------------------------------------------------------------------------
# IQ messages


@dataclass(frozen=True)
class Tag:
    """A stream tag: a key/value pair anchored to an absolute item offset (GNU Radio's tag_t).

    Attributes
    ----------
    offset : int
        Absolute item (sample) index.
    key : str
    value : object
        Any value :func:`pmt_serialize` takes.
    srcid : object
        Source id (GNU Radio uses a symbol or False for none).
    """

    offset: int
    key: str
    value: object
    srcid: object = False


@dataclass
class IqChunk:
    """A decoded IQ message.

    Attributes
    ----------
    offset : int or None
        Absolute index of the first sample (None for untagged messages).
    samples : ndarray of complex64, shape (n,)
        Read-only view of the message's samples (native byte order).
    tags : list of Tag
    """

    offset: int | None
    samples: np.ndarray
    tags: list = field(default_factory=list)


def encode_iq(samples, offset: int | None = None, tags=()) -> bytes:
    """One IQ message: the samples, preceded by the gr-zeromq tag header when ``offset`` is given.

    Parameters
    ----------
    samples : array_like of complex, shape (n,)
    offset : int or None
        Absolute index of the first sample; None: a raw message (GNU Radio ``pass_tags=False``).
    tags : iterable of Tag
        Only with an offset.

    Returns
    -------
    bytes
    """
    x = np.ascontiguousarray(samples, dtype=IQ_DTYPE)
    if x.ndim != 1:
        raise ValueError(f"samples must be 1-D; got shape {x.shape}")
    if offset is None:
        if tags:
            raise ValueError("tags need a tag header: give the stream offset")
        return x.tobytes()
    if not 0 <= int(offset) < 1 << 64:
        raise ValueError(f"offset must be in 0..2**64-1; got {offset}")
    tags = list(tags)
    head = bytearray(_GR_HEAD.pack(GR_TAG_MAGIC, GR_TAG_VERSION, int(offset), len(tags)))
    for t in tags:
        head += struct.pack("<Q", int(t.offset))
        _ser(Symbol(t.key) if isinstance(t.key, str) else t.key, head, 0)
        _ser(t.value, head, 0)
        _ser(t.srcid, head, 0)
    return bytes(head) + x.tobytes()


def decode_iq(msg, tagged: bool, max_samples: int = MAX_IQ_SAMPLES) -> IqChunk:
    """Parse one IQ message (bytes, memoryview or ``zmq.Frame``).

    Parameters
    ----------
    msg : bytes-like
    tagged : bool
        True: the message must start with the gr-zeromq tag header (``pass_tags=True``).
    max_samples : int
        Larger messages are refused as "oversized".

    Returns
    -------
    IqChunk

    Raises
    ------
    WireError
        "malformed" (bad magic or version, truncated header, size not a whole number of
        complex64 samples, or a NaN/infinite sample: the message names its index) or
        "oversized".
    """
    return _guarded(_decode_iq, "IQ message", msg, tagged, max_samples)


def _decode_iq(msg, tagged: bool, max_samples: int) -> IqChunk:
    buf = getattr(msg, "buffer", msg)  # zmq.Frame -> memoryview, without a copy
    mv = memoryview(buf).cast("B")
    pos = 0
    offset = None
    tags: list[Tag] = []
    if tagged:
        if len(mv) < _GR_HEAD.size:
            raise WireError("malformed", f"IQ message of {len(mv)} bytes is shorter than the tag header")
        magic, version, offset, ntags = _GR_HEAD.unpack_from(mv, 0)
        if magic != GR_TAG_MAGIC:
            raise WireError("malformed", f"tag header magic 0x{magic:04X}, expected 0x{GR_TAG_MAGIC:04X}")
        if version != GR_TAG_VERSION:
            raise WireError("malformed", f"tag header version {version}, expected {GR_TAG_VERSION}")
        pos = _GR_HEAD.size
        if ntags > (len(mv) - pos) // 11:  # each tag takes at least 8 + 3 bytes
            raise WireError("malformed", f"tag header announces {ntags} tags in {len(mv) - pos} bytes")
        for _ in range(ntags):
            _need(mv, pos, 8)
            (toff,) = struct.unpack_from("<Q", mv, pos)
            key, pos = _de(mv, pos + 8, 0)
            value, pos = _de(mv, pos, 0)
            srcid, pos = _de(mv, pos, 0)
            tags.append(Tag(toff, key.name if isinstance(key, Symbol) else key, value, srcid))
    nbytes = len(mv) - pos
    if nbytes % IQ_DTYPE.itemsize:
        raise WireError(
            "malformed", f"IQ payload of {nbytes} bytes is not a whole number of complex64 samples"
        )
    n = nbytes // IQ_DTYPE.itemsize
    if n > max_samples:
        raise WireError("oversized", f"IQ message of {n} samples exceeds the limit of {max_samples}")
    samples = np.frombuffer(mv, IQ_DTYPE, n, pos)
    finite = np.isfinite(samples.view(np.float32))
    if not finite.all():
        i = int(np.argmin(finite)) // 2
        raise WireError("malformed", f"IQ sample {i} of the message is not finite ({samples[i]})")
    return IqChunk(offset, samples, tags)


# ---------------------------------------------------------------------------------------------
# control / telemetry / data messages


@dataclass
class Message:
    """A decoded control, telemetry or data message.

    Attributes
    ----------
    kind : int
        :data:`KIND_JSON`, :data:`KIND_BYTES` or :data:`KIND_FRAMES`.
    sender, epoch, seq : int
    body : dict or bytes
        The JSON object for KIND_JSON, else the raw body.
    """

    kind: int
    sender: int
    epoch: int
    seq: int
    body: object


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def _finite(o):
    """Replace NaN and infinities (not JSON) by None, recursively."""
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_finite(v) for v in o]
    return o


def encode_message(kind: int, body, *, sender: int, epoch: int, seq: int) -> bytes:
    """One message: the 32-byte header and the body (a dict for KIND_JSON, else bytes).

    NaN and infinite floats in a JSON body are sent as null.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind}")
    if kind == KIND_JSON:
        if not isinstance(body, dict):
            raise TypeError(f"a JSON message body must be a dict; got {type(body).__name__}")
        data = json.dumps(
            _finite(body), separators=(",", ":"), default=_json_default, allow_nan=False
        ).encode()
    else:
        data = bytes(body)
    head = _HEAD.pack(MAGIC, VERSION, kind, 0, sender & 0xFFFFFFFF, epoch & 0xFFFFFFFF, seq, len(data), 0)
    crc = zlib.crc32(data, zlib.crc32(head[:28]))
    return head[:28] + struct.pack("<I", crc) + data


def decode_message(msg, max_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Parse and check one message; see the module notes for the format.

    Raises
    ------
    WireError
        "oversized" (longer than ``max_bytes``, or a JSON body over 1 MiB) or "malformed" (short,
        wrong magic, version or kind, length or CRC mismatch, JSON body that does not parse
        (including integers over Python's digit limit and nesting past its recursion limit) or
        is not an object).
    """
    return _guarded(_decode_message, "message", msg, max_bytes)


def _decode_message(msg, max_bytes: int) -> Message:
    buf = getattr(msg, "buffer", msg)
    mv = memoryview(buf).cast("B")
    if len(mv) > max_bytes:
        raise WireError("oversized", f"message of {len(mv)} bytes exceeds the limit of {max_bytes}")
    if len(mv) < HEADER_BYTES:
        raise WireError(
            "malformed", f"message of {len(mv)} bytes is shorter than the {HEADER_BYTES}-byte header"
        )
    magic, version, kind, _flags, sender, epoch, seq, length, crc = _HEAD.unpack_from(mv, 0)
    if magic != MAGIC:
        raise WireError("malformed", f"magic {bytes(magic)!r}, expected {MAGIC!r}")
    if version != VERSION:
        raise WireError("malformed", f"version {version}, expected {VERSION}")
    if kind not in KINDS:
        raise WireError("malformed", f"unknown message kind {kind}")
    if length != len(mv) - HEADER_BYTES:
        raise WireError("malformed", f"body length field {length} but {len(mv) - HEADER_BYTES} bytes follow")
    body = mv[HEADER_BYTES:]
    if zlib.crc32(body, zlib.crc32(mv[:28])) != crc:
        raise WireError("malformed", "CRC-32 mismatch")
    if kind == KIND_JSON:
        if length > MAX_JSON_BYTES:
            raise WireError("oversized", f"JSON body of {length} bytes exceeds {MAX_JSON_BYTES}")
        try:
            obj = json.loads(bytes(body))
        except (ValueError, RecursionError) as e:  # bad UTF-8 or JSON, digit limit, nesting
            raise WireError("malformed", f"JSON body does not parse: {type(e).__name__}: {e}") from e
        if not isinstance(obj, dict):
            raise WireError("malformed", f"JSON body must be an object; got {type(obj).__name__}")
        return Message(kind, sender, epoch, seq, obj)
    return Message(kind, sender, epoch, seq, bytes(body))


class MessageWriter:
    """Numbers the messages one stage sends on one link (seq from 0, its epoch and sender id)."""

    def __init__(self, name: str, epoch: int = 0):
        self.sender = sender_id(name)
        self.epoch = int(epoch)
        self.seq = 0

    def encode(self, kind: int, body) -> bytes:
        """Encode the next message."""
        out = encode_message(kind, body, sender=self.sender, epoch=self.epoch, seq=self.seq)
        self.seq += 1
        return out


# ---------------------------------------------------------------------------------------------
# accounting


@dataclass
class WireStats:
    """What one input link accepted and refused.

    Attributes
    ----------
    accepted : int
        Messages passed to the stage.
    malformed, oversized, out_of_order, stale_epoch : int
        Messages refused, by reason.
    missing : int
        Messages (or, on IQ links, samples) skipped by the sender's numbering: lost upstream.
    restarts : int
        Senders seen starting a new epoch (IQ: a stream going back to offset 0).
    """

    accepted: int = 0
    malformed: int = 0
    oversized: int = 0
    out_of_order: int = 0
    stale_epoch: int = 0
    missing: int = 0
    restarts: int = 0

    @property
    def rejected(self) -> int:
        """Messages refused for any reason."""
        return self.malformed + self.oversized + self.out_of_order + self.stale_epoch

    def count(self, reason: str) -> None:
        """Count one refused message under ``reason``."""
        setattr(self, reason, getattr(self, reason) + 1)

    def as_dict(self) -> dict:
        """The counters as a dict."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class SequenceCheck:
    """Accepts messages whose (epoch, sequence number) advances, per sender.

    A message from an older epoch than the sender's latest, or with a sequence number not above
    the last accepted one of its epoch, is refused (replayed or out of order). A newer epoch (the
    sender restarted) starts its numbering again. Skipped numbers are counted as missing.
    """

    def __init__(self, stats: WireStats | None = None):
        self.stats = stats or WireStats()
        self._last: dict[int, tuple[int, int]] = {}  # sender -> (epoch, seq)

    def check(self, m: Message) -> None:
        """Accept ``m`` (and count it) or raise WireError ("out_of_order" or "stale_epoch")."""
        last = self._last.get(m.sender)
        if last is not None:
            epoch, seq = last
            if m.epoch < epoch:
                raise WireError("stale_epoch", f"sender 0x{m.sender:08X} epoch {m.epoch} after epoch {epoch}")
            if m.epoch == epoch:
                if m.seq <= seq:
                    raise WireError("out_of_order", f"sender 0x{m.sender:08X} seq {m.seq} after {seq}")
                self.stats.missing += m.seq - seq - 1
            else:
                self.stats.restarts += 1
                self.stats.missing += m.seq
        else:
            self.stats.missing += 0  # the first message seen fixes the numbering
        self._last[m.sender] = (m.epoch, m.seq)
        self.stats.accepted += 1


class OffsetCheck:
    """Accepts IQ messages whose stream offset advances; counts skipped samples as missing.

    A tagged message that starts before the end of the previous one is refused as out of order,
    except a stream that starts again at offset 0 (the sender restarted), which is accepted and
    counted in ``restarts``. Untagged messages get consecutive offsets.
    """

    def __init__(self, stats: WireStats | None = None):
        self.stats = stats or WireStats()
        self.next_offset: int | None = None

    def check(self, chunk: IqChunk) -> int:
        """Return the gap in samples before ``chunk`` (0 when contiguous) or raise WireError."""
        n = chunk.samples.size
        if chunk.offset is None:  # raw stream: count samples
            chunk.offset = self.next_offset or 0
        gap = 0
        if self.next_offset is not None:
            if chunk.offset < self.next_offset:
                if chunk.offset != 0:
                    raise WireError(
                        "out_of_order", f"IQ offset {chunk.offset} before the expected {self.next_offset}"
                    )
                self.stats.restarts += 1
            else:
                gap = chunk.offset - self.next_offset
                self.stats.missing += gap
        self.next_offset = chunk.offset + n
        self.stats.accepted += 1
        return gap
