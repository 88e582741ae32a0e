"""IQ recordings as SigMF (``.sigmf-meta`` + ``.sigmf-data``) through the ``sigmf`` package.

- :class:`CaptureWriter` records complex baseband as ``cf32_le`` (complex64, unit scale)
  or ``ci16_le`` (unit scale = 2^15, so every SigMF reader's autoscaling gives it back),
  streaming to the data file, with the sample rate, center frequency, hardware, start time
  and the SHA-512 of the data, and annotations for decoded frames (start and length in
  samples, MODCOD as the label, BBHEADER CRC status, Es/N0).
- :func:`open_capture` reads one back (:class:`Capture`: metadata, random access, chunked
  iteration, paced replay), checking everything first and failing with a
  :class:`CaptureError` that names the file and the field: missing or truncated data file,
  a datatype that is not complex or not known, no sample rate, a checksum mismatch, NaN
  samples (with the sample index).
- :func:`import_raw` turns a headerless ``.cf32``/``.cfile`` (complex64) or ``.cs16``
  (interleaved int16, the Pluto's native format: 12-bit values, full scale 2048) file into a
  SigMF recording, given its sample rate and frequency.

marslink's own fields use the ``marslink`` extension namespace (declared in
``core:extensions``): ``marslink:sample_count`` (samples written), and per frame annotation
``marslink:modcod``, ``marslink:crc_ok``, ``marslink:esn0_db``, ``marslink:frame``.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modem import __version__

META_EXT = ".sigmf-meta"
DATA_EXT = ".sigmf-data"
WRITE_TYPES = {"cf32_le": np.dtype("<c8"), "ci16_le": np.dtype("<i2")}
#: Complex datatypes read back: bytes per complex sample.
READ_TYPES = {"cf32_le": 8, "cf64_le": 16, "ci32_le": 8, "ci16_le": 4, "ci8": 2, "cu8": 2, "cu16_le": 4}
EXTENSION = {"name": "marslink", "version": "1.0.0", "optional": True}
CI16_SCALE = 32768.0
PLUTO_FULL_SCALE = 2048  #: 12-bit ADC words in the Pluto's native 16-bit samples


class CaptureError(ValueError):
    """A recording is unusable; the message names the file and the SigMF field."""


def capture_paths(path) -> tuple[Path, Path]:
    """(meta, data) paths of a recording given either file or their common stem."""
    p = Path(path)
    name = p.name
    for ext in (META_EXT, DATA_EXT):
        if name.endswith(ext):
            p = p.with_name(name[: -len(ext)])
            break
    return p.with_name(p.name + META_EXT), p.with_name(p.name + DATA_EXT)


def _check_samples(x, name: str = "samples") -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of complex samples; got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise TypeError(f"{name} must be complex numbers; got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.complex64)
    ok = np.isfinite(a)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ValueError(f"{name} must be finite; got {a[i]} at sample {i}")
    return a


def _utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FrameAnnotation:
    """A decoded frame in a recording.

    Attributes
    ----------
    start : int
        First sample of the frame in the recording.
    length : int
        Samples of the frame.
    modcod : str
        "QPSK 1/2", "dummy", "lost", ...
    crc_ok : bool
        BBHEADER CRC (and the frame's data) good.
    esn0_db : float or None
    frame : int or None
        Frame number in the stream.
    """

    start: int
    length: int
    modcod: str
    crc_ok: bool
    esn0_db: float | None = None
    frame: int | None = None


@dataclass
class CaptureInfo:
    """What a recording's metadata says.

    Attributes
    ----------
    meta_path, data_path : Path
    datatype : str
    sample_rate_hz : float
    center_freq_hz : float or None
    sample_count : int
    hardware, description, datetime : str or None
    frames : list of FrameAnnotation
        The frame annotations (those with ``marslink:modcod``).
    annotations : list of dict
        Every annotation as stored.
    global_fields : dict
        The whole global object (``marslink:dvbs2`` etc.).
    """

    meta_path: Path
    data_path: Path
    datatype: str
    sample_rate_hz: float
    center_freq_hz: float | None
    sample_count: int
    hardware: str | None = None
    description: str | None = None
    datetime: str | None = None
    frames: list[FrameAnnotation] = field(default_factory=list)
    annotations: list[dict] = field(default_factory=list)
    global_fields: dict = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Length of the recording (s)."""
        return self.sample_count / self.sample_rate_hz


class CaptureWriter:
    """Record complex baseband to a SigMF recording, streaming.

    Parameters
    ----------
    path : str or Path
        Stem or either file name of the recording.
    sample_rate_hz : float
    center_freq_hz : float
    datatype : {"cf32_le", "ci16_le"}
        ci16_le stores ``round(x * 2^15)``, clipped to int16 (clipped samples are counted).
    hardware, description, author : str or None
    overwrite : bool
        Replace an existing recording (otherwise FileExistsError).
    datetime : str or None
        ISO 8601 UTC start time; default now.
    extra : dict or None
        More global fields; keys without a namespace go to ``marslink:`` (e.g. ``dvbs2``: the
        link configuration that :mod:`hw.capture_decode` decodes with).

    Examples
    --------
    >>> with CaptureWriter("pass1", 2e6, 2.4e9) as w:   # doctest: +SKIP
    ...     w.write(iq)
    ...     w.annotate_frame(0, 33000, "QPSK 1/2", crc_ok=True, esn0_db=7.5)
    """

    def __init__(
        self,
        path,
        sample_rate_hz: float,
        center_freq_hz: float,
        datatype: str = "cf32_le",
        hardware: str | None = None,
        description: str | None = None,
        author: str | None = None,
        overwrite: bool = False,
        datetime: str | None = None,
        extra: dict | None = None,
    ):
        if datatype not in WRITE_TYPES:
            raise ValueError(f"datatype must be one of {', '.join(WRITE_TYPES)}; got {datatype!r}")
        for name, v in (("sample_rate_hz", sample_rate_hz), ("center_freq_hz", center_freq_hz)):
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float | np.integer | np.floating)
                or not math.isfinite(v)
            ):
                raise ValueError(f"{name} must be a finite number (Hz); got {v!r}")
        if sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be > 0 samples/s; got {sample_rate_hz!r}")
        self.meta_path, self.data_path = capture_paths(path)
        if not overwrite:
            for p in (self.meta_path, self.data_path):
                if p.exists():
                    raise FileExistsError(f"{p} exists (pass overwrite=True to replace it)")
        self.datatype = datatype
        self.sample_rate_hz = float(sample_rate_hz)
        self.center_freq_hz = float(center_freq_hz)
        self.hardware = hardware
        self.description = description
        self.author = author
        self.datetime = datetime or _utc_now()
        self.extra = {(k if ":" in k else f"marslink:{k}"): v for k, v in (extra or {}).items()}
        self.sample_count = 0
        self.clipped = 0
        self._annotations: list[tuple[int, int | None, dict]] = []
        self.data_path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.data_path, "wb")  # noqa: SIM115 - closed in close()
        self._closed = False

    def write(self, samples) -> None:
        """Append samples (1-D complex, finite).

        Raises
        ------
        ValueError
            NaN/infinite samples (the message gives the index; nothing of the call is written).
        """
        x = _check_samples(samples)
        if self.datatype == "cf32_le":
            x.astype("<c8", copy=False).tofile(self._file)
        else:
            v = x.view(np.float32) * np.float32(CI16_SCALE)
            np.rint(v, out=v)
            over = (v > 32767) | (v < -32768)
            if over.any():
                self.clipped += int(np.count_nonzero(over.reshape(-1, 2).any(axis=1)))
                np.clip(v, -32768, 32767, out=v)
            v.astype("<i2").tofile(self._file)
        self.sample_count += x.size

    def _append(self, raw: np.ndarray, nsamples: int) -> None:
        """Append data already in this recording's datatype."""
        raw.tofile(self._file)
        self.sample_count += nsamples

    def abort(self) -> None:
        """Stop without writing metadata and delete the data written so far."""
        if not self._closed:
            self._file.close()
            self._closed = True
        self.data_path.unlink(missing_ok=True)

    def annotate(
        self, start: int, length: int | None, label: str | None = None, comment: str | None = None, **fields
    ) -> None:
        """Add an annotation: ``fields`` are SigMF keys without the ``marslink:`` prefix for our own."""
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"annotation start and length must be >= 0; got {start}, {length}")
        meta = {}
        if label is not None:
            meta["core:label"] = str(label)
        if comment is not None:
            meta["core:comment"] = str(comment)
        for k, v in fields.items():
            meta[k if ":" in k else f"marslink:{k}"] = v
        self._annotations.append((int(start), None if length is None else int(length), meta))

    def annotate_frame(
        self,
        start: int,
        length: int,
        modcod: str,
        crc_ok: bool,
        esn0_db: float | None = None,
        frame: int | None = None,
    ) -> None:
        """Annotate a decoded frame (start and length in samples)."""
        extra = {"modcod": str(modcod), "crc_ok": bool(crc_ok)}
        if esn0_db is not None and math.isfinite(esn0_db):
            extra["esn0_db"] = round(float(esn0_db), 2)
        if frame is not None:
            extra["frame"] = int(frame)
        self.annotate(start, length, label=str(modcod), **extra)

    def close(self) -> CaptureInfo:
        """Finish the data file and write the metadata (with the data's SHA-512)."""
        if self._closed:
            return open_capture(self.meta_path).info
        self._file.close()
        self._closed = True
        import sigmf
        from sigmf import SigMFFile

        info = {
            "core:datatype": self.datatype,
            "core:sample_rate": self.sample_rate_hz,
            "core:version": sigmf.__specification__,
            "core:recorder": f"marslink {__version__}",
            "core:extensions": [dict(EXTENSION)],
            "marslink:sample_count": self.sample_count,
            **self.extra,
        }
        for key, value in (
            ("core:hw", self.hardware),
            ("core:description", self.description),
            ("core:author", self.author),
        ):
            if value:
                info[key] = value
        meta = SigMFFile(data_file=str(self.data_path), global_info=info)
        meta.add_capture(0, metadata={"core:frequency": self.center_freq_hz, "core:datetime": self.datetime})
        for start, length, fields in sorted(self._annotations, key=lambda a: a[0]):
            meta.add_annotation(start, length, metadata=fields)
        meta.tofile(str(self.meta_path), overwrite=True)
        return open_capture(self.meta_path).info

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self._file.close()
            self._closed = True


def write_capture(path, samples, sample_rate_hz: float, center_freq_hz: float, **kwargs) -> CaptureInfo:
    """Write a whole recording at once (see :class:`CaptureWriter` for the keywords)."""
    frames = kwargs.pop("frames", ())
    with CaptureWriter(path, sample_rate_hz, center_freq_hz, **kwargs) as w:
        w.write(samples)
        for f in frames:
            w.annotate_frame(f.start, f.length, f.modcod, f.crc_ok, f.esn0_db, f.frame)
    return open_capture(w.meta_path).info


class Capture:
    """A SigMF recording opened for reading (see :func:`open_capture`)."""

    def __init__(self, info: CaptureInfo, handle):
        self.info = info
        self._handle = handle

    @property
    def sample_rate_hz(self) -> float:
        """Sample rate (samples/s)."""
        return self.info.sample_rate_hz

    def __len__(self) -> int:
        return self.info.sample_count

    def read(self, start: int = 0, count: int = -1) -> np.ndarray:
        """Samples ``start .. start + count`` (all to the end for -1) as complex64 at unit scale.

        Raises
        ------
        CaptureError
            A NaN or infinite sample (the message gives the file and the sample index).
        ValueError
            Range outside the recording.
        """
        n = self.info.sample_count
        if count == -1:
            count = n - start
        if start < 0 or count < 0 or start + count > n:
            raise ValueError(f"samples {start}..{start + count} are outside the recording's 0..{n}")
        if count == 0:
            return np.zeros(0, dtype=np.complex64)
        try:
            x = np.asarray(self._handle.read_samples(start_index=start, count=count), dtype=np.complex64)
        except (ValueError, TypeError, OSError, ArithmeticError) as e:
            raise CaptureError(
                f"{self.info.data_path}: samples {start}..{start + count} unreadable: {e}"
            ) from None
        ok = np.isfinite(x)
        if not ok.all():
            i = int(np.argmin(ok))
            raise CaptureError(
                f"{self.info.data_path}: sample {start + i} is {x[i]} (core:datatype {self.info.datatype} "
                "samples must be finite)"
            )
        return x

    def chunks(self, chunk: int = 1 << 16, start: int = 0, count: int = -1):
        """Yield ``(first_sample, samples)`` over the recording in chunks of at most ``chunk``."""
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1 samples; got {chunk}")
        end = self.info.sample_count if count == -1 else start + count
        pos = start
        while pos < end:
            k = min(chunk, end - pos)
            yield pos, self.read(pos, k)
            pos += k

    def replay(
        self,
        chunk: int = 1 << 16,
        realtime: bool = False,
        speed: float = 1.0,
        clock=time.monotonic,
        sleep=time.sleep,
    ):
        """As :meth:`chunks`, paced at ``speed`` x the sample rate when ``realtime`` (else unpaced)."""
        if not speed > 0:
            raise ValueError(f"speed must be > 0; got {speed}")
        t0 = clock()
        rate = self.info.sample_rate_hz * speed
        for first, x in self.chunks(chunk):
            if realtime:
                due = t0 + first / rate
                wait = due - clock()
                if wait > 0:
                    sleep(wait)
            yield first, x


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


#: Field checks: (predicate, what is expected), per object of the metadata.
_GLOBAL_FIELDS = {
    "core:datatype": (lambda v: isinstance(v, str), "a datatype string"),
    "core:sample_rate": (lambda v: _is_number(v) and v > 0, "a positive number (samples/s)"),
    "core:num_channels": (lambda v: _is_int(v) and v == 1, "1 (marslink reads single-channel recordings)"),
    "core:trailing_bytes": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:offset": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:sha512": (lambda v: isinstance(v, str) and len(v) == 128, "a 128-digit hex string"),
    "marslink:sample_count": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:version": (lambda v: isinstance(v, str), "a version string"),
    "core:extensions": (
        lambda v: (
            isinstance(v, list) and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in v)
        ),
        "a list of {name, version, optional}",
    ),
    "core:hw": (lambda v: isinstance(v, str), "a string"),
    "core:description": (lambda v: isinstance(v, str), "a string"),
}
_CAPTURE_FIELDS = {
    "core:sample_start": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:header_bytes": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:frequency": (_is_number, "a number (Hz)"),
    "core:datetime": (lambda v: isinstance(v, str), "an ISO 8601 string"),
}
_ANNOTATION_FIELDS = {
    "core:sample_start": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:sample_count": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "core:label": (lambda v: isinstance(v, str), "a string"),
    "marslink:modcod": (lambda v: isinstance(v, str), "a MODCOD name"),
    "marslink:crc_ok": (lambda v: isinstance(v, bool), "true or false"),
    "marslink:esn0_db": (lambda v: v is None or _is_number(v), "a number (dB)"),
    "marslink:frame": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
}


def _check_metadata(doc, meta_path: Path) -> None:
    """Check the structure and the field types marslink relies on, before the sigmf package sees them."""
    if not isinstance(doc, dict) or not isinstance(doc.get("global"), dict):
        raise CaptureError(f"{meta_path}: not SigMF metadata: needs a JSON object with a 'global' object")
    for section, table, required in (
        ("captures", _CAPTURE_FIELDS, ("core:sample_start",)),
        ("annotations", _ANNOTATION_FIELDS, ("core:sample_start",)),
    ):
        items = doc.get(section, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise CaptureError(f"{meta_path}: '{section}' must be a list of objects")
        for k, item in enumerate(items):
            for key in required:
                if key not in item:
                    raise CaptureError(f"{meta_path}: {section}[{k}] has no {key}")
            for key, (ok, what) in table.items():
                if key in item and not ok(item[key]):
                    raise CaptureError(f"{meta_path}: {section}[{k}] {key} must be {what}; got {item[key]!r}")
    for key, (ok, what) in _GLOBAL_FIELDS.items():
        if key in doc["global"] and not ok(doc["global"][key]):
            raise CaptureError(f"{meta_path}: global {key} must be {what}; got {doc['global'][key]!r}")


def open_capture(path, verify: bool = True) -> Capture:
    """Open a SigMF recording for reading, checking it first.

    Parameters
    ----------
    path : str or Path
        Stem, ``.sigmf-meta`` or ``.sigmf-data`` name.
    verify : bool
        Check ``core:sha512`` against the data file (reads it once).

    Raises
    ------
    CaptureError
        Missing metadata or data file, metadata that is not SigMF, a datatype that is not a
        complex one marslink reads, no ``core:sample_rate``, a data file that is truncated (not
        whole samples, or fewer than ``marslink:sample_count``), or a checksum mismatch.
    """
    from sigmf import hashing, sigmffile
    from sigmf.error import SigMFError

    meta_path, data_path = capture_paths(path)
    if not meta_path.is_file():
        raise CaptureError(f"{meta_path}: metadata file missing")
    if not data_path.is_file():
        raise CaptureError(f"{data_path}: data file missing ({meta_path.name} describes it)")
    import json
    import warnings

    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise CaptureError(f"{meta_path}: not SigMF metadata (JSON does not parse: {e})") from None
    _check_metadata(doc, meta_path)
    g = doc["global"]
    datatype = g.get("core:datatype")
    if datatype not in READ_TYPES:
        raise CaptureError(
            f"{meta_path}: core:datatype {datatype!r} is not a complex type marslink reads "
            f"({', '.join(READ_TYPES)})"
        )
    if g.get("core:sample_rate") is None:
        raise CaptureError(
            f"{meta_path}: core:sample_rate missing (global): the sample rate is needed to replay"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # we check the sizes ourselves, with clearer messages
            handle = sigmffile.fromfile(str(meta_path), skip_checksum=True)
    except (SigMFError, ValueError, KeyError, TypeError, ArithmeticError, AttributeError, OSError) as e:
        raise CaptureError(f"{meta_path}: the sigmf package refuses it: {type(e).__name__}: {e}") from None
    rate = g["core:sample_rate"]
    size = data_path.stat().st_size - int(g.get("core:trailing_bytes", 0))
    size -= sum(int(c.get("core:header_bytes", 0)) for c in handle.get_captures())
    if size < 0:
        raise CaptureError(
            f"{data_path}: truncated: shorter than the header and trailing bytes {meta_path.name} declares"
        )
    sample_size = READ_TYPES[datatype]
    count, rest = divmod(size, sample_size)
    if rest:
        raise CaptureError(
            f"{data_path}: truncated: {size} bytes is not a whole number of {sample_size}-byte "
            f"{datatype} samples (core:datatype in {meta_path.name})"
        )
    declared = g.get("marslink:sample_count")
    if declared is not None and declared != count:
        raise CaptureError(
            f"{data_path}: holds {count} samples but marslink:sample_count in {meta_path.name} says "
            f"{declared}" + (" (truncated)" if count < declared else "")
        )
    if verify and g.get("core:sha512"):
        digest = hashing.calculate_sha512(filename=str(data_path))
        if digest != g["core:sha512"]:
            raise CaptureError(
                f"{data_path}: checksum mismatch: its SHA-512 is not core:sha512 in {meta_path.name} "
                "(the data file was changed or corrupted)"
            )
    captures = handle.get_captures()
    freq = captures[0].get("core:frequency") if captures else None
    when = captures[0].get("core:datetime") if captures else None
    annotations = [dict(a) for a in handle.get_annotations()]
    frames = [
        FrameAnnotation(
            start=int(a["core:sample_start"]),
            length=int(a.get("core:sample_count", 0)),
            modcod=str(a["marslink:modcod"]),
            crc_ok=bool(a.get("marslink:crc_ok", False)),
            esn0_db=a.get("marslink:esn0_db"),
            frame=a.get("marslink:frame"),
        )
        for a in annotations
        if "marslink:modcod" in a
    ]
    info = CaptureInfo(
        meta_path=meta_path,
        data_path=data_path,
        datatype=datatype,
        sample_rate_hz=float(rate),
        center_freq_hz=None if freq is None else float(freq),
        sample_count=count,
        hardware=g.get("core:hw"),
        description=g.get("core:description"),
        datetime=when,
        frames=frames,
        annotations=annotations,
        global_fields=dict(g),
    )
    return Capture(info, handle)


RAW_FORMATS = {".cf32": "cf32", ".cfile": "cf32", ".fc32": "cf32", ".cs16": "cs16", ".sc16": "cs16"}


def import_raw(
    src,
    dst,
    sample_rate_hz: float,
    center_freq_hz: float,
    fmt: str | None = None,
    full_scale: float | None = None,
    hardware: str | None = None,
    description: str | None = None,
    overwrite: bool = False,
    chunk: int = 1 << 20,
) -> CaptureInfo:
    """Convert a headerless IQ file to a SigMF recording.

    Parameters
    ----------
    src : str or Path
        ``.cf32``/``.cfile`` (complex64, little-endian) or ``.cs16`` (int16 I, Q interleaved).
    dst : str or Path
        Stem of the SigMF recording to write.
    sample_rate_hz, center_freq_hz : float
    fmt : {"cf32", "cs16"} or None
        Override the format the extension implies.
    full_scale : float or None
        cs16 value that means unit amplitude; default 2048 (the Pluto's 12-bit samples). With a
        power-of-two ratio to 2^15 the samples are kept as ci16_le (shifted, exact); otherwise
        they are scaled into cf32_le.

    Raises
    ------
    CaptureError
        Missing source, unknown extension, a size that is not whole samples, NaN samples.
    """
    src = Path(src)
    if not src.is_file():
        raise CaptureError(f"{src}: raw IQ file missing")
    fmt = fmt or RAW_FORMATS.get(src.suffix.lower())
    if fmt not in ("cf32", "cs16"):
        raise CaptureError(
            f"{src}: unknown raw format {src.suffix!r}: use {', '.join(RAW_FORMATS)} "
            "or pass fmt='cf32' or 'cs16'"
        )
    itemsize = 8 if fmt == "cf32" else 4
    size = src.stat().st_size
    if size % itemsize:
        raise CaptureError(
            f"{src}: truncated: {size} bytes is not a whole number of {itemsize}-byte {fmt} samples"
        )
    scale = None
    datatype = "cf32_le"
    if fmt == "cs16":
        fs = PLUTO_FULL_SCALE if full_scale is None else float(full_scale)
        if not fs > 0:
            raise ValueError(f"full_scale must be > 0; got {full_scale!r}")
        ratio = CI16_SCALE / fs
        shift = math.log2(ratio) if ratio >= 1 else -1
        if shift >= 0 and shift == int(shift):
            datatype, scale = "ci16_le", int(ratio)
        else:
            scale = 1 / fs
    mm = np.memmap(src, dtype="<c8" if fmt == "cf32" else "<i2", mode="r")
    n = mm.size if fmt == "cf32" else mm.size // 2
    meta_path, data_path = capture_paths(dst)
    w = CaptureWriter(
        dst,
        sample_rate_hz,
        center_freq_hz,
        datatype=datatype,
        hardware=hardware,
        description=description or f"imported from {src.name}",
        overwrite=overwrite,
    )
    try:
        for first in range(0, n, chunk):
            k = min(chunk, n - first)
            if fmt == "cf32":
                x = np.asarray(mm[first : first + k])
                ok = np.isfinite(x)
                if not ok.all():
                    i = int(np.argmin(ok))
                    raise CaptureError(f"{src}: sample {first + i} is {x[i]} (cf32 samples must be finite)")
                w._append(x.astype("<c8", copy=False), k)
            elif datatype == "ci16_le":
                words = np.asarray(mm[2 * first : 2 * (first + k)]).astype(np.int32) * scale
                if words.size and np.abs(words).max() > 32768:
                    raise CaptureError(f"{src}: values exceed full_scale {fs:g}: pass the right full_scale")
                w._append(np.clip(words, -32768, 32767).astype("<i2"), k)
            else:
                v = np.asarray(mm[2 * first : 2 * (first + k)]).astype(np.float32) * np.float32(scale)
                w._append(v.view(np.complex64).astype("<c8"), k)
    except BaseException:
        w.abort()
        raise
    w.close()
    return open_capture(meta_path).info
