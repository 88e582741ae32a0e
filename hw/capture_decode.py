"""Decode a DVB-S2 recording: replay its samples into :class:`modem.dvbs2.link.Receiver`.

The link configuration (frame size, pilots, roll-off, samples per symbol, scrambling code,
stream type) comes from the recording's ``marslink:dvbs2`` global field when marslink made
it, else from the caller. Samples go in chunks through ``Receiver.push_samples`` (the raw-IQ
path), at the recording's pace or as fast as they decode (long chunks, the receiver's decoding
thread working on one chunk while the next is synchronized); every frame gets a report, and
:func:`frame_table` prints them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields

from hw.captures import Capture, open_capture

#: Samples per receiver call of an unpaced replay (131 ms at 2 MS/s).
FAST_CHUNK = 1 << 18
#: Samples per receiver call of a replay in real time (33 ms at 2 MS/s).
PACED_CHUNK = 1 << 16

#: LinkConfig fields a recording may carry in ``marslink:dvbs2``.
LINK_FIELDS = ("frame", "pilots", "gold_code", "stream", "rolloff", "sps", "span", "ldpc_iterations")


def link_config(capture: Capture, **overrides):
    """The :class:`~modem.dvbs2.link.LinkConfig` of a recording: its metadata, then ``overrides``.

    Raises
    ------
    ValueError
        A field in the metadata or the overrides that LinkConfig rejects (the message names it).
    """
    from modem.dvbs2.link import LinkConfig

    stored = capture.info.global_fields.get("marslink:dvbs2") or {}
    if not isinstance(stored, dict):
        raise ValueError(f"{capture.info.meta_path}: marslink:dvbs2 must be an object; got {stored!r}")
    known = {f.name for f in fields(LinkConfig)}
    cfg = {k: v for k, v in stored.items() if k in known}
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return LinkConfig(**cfg)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{capture.info.meta_path}: DVB-S2 link configuration: {e}") from None


def link_fields(config) -> dict:
    """The ``marslink:dvbs2`` object for a LinkConfig (what :func:`link_config` reads back)."""
    return {name: getattr(config, name) for name in LINK_FIELDS}


@dataclass
class ReplayResult:
    """What replaying a recording into the receiver gave.

    Attributes
    ----------
    data : bytes
        User bytes delivered, in order.
    reports : list of FrameReport
    samples : int
        Samples replayed.
    elapsed_s : float
        Wall time of the replay and decode.
    sample_rate_hz : float
    sps : int
        Samples per symbol (converts report starts from symbols to samples).
    """

    data: bytes
    reports: list = field(default_factory=list)
    samples: int = 0
    elapsed_s: float = 0.0
    sample_rate_hz: float = 1.0
    sps: int = 2

    @property
    def speed(self) -> float:
        """Replay speed relative to real time (samples per second / sample rate)."""
        return self.samples / self.elapsed_s / self.sample_rate_hz if self.elapsed_s > 0 else float("inf")

    @property
    def frames_ok(self) -> int:
        """Frames delivered (data frames and dummy frames)."""
        return sum(1 for r in self.reports if r.ok)

    @property
    def frames_lost(self) -> int:
        """Frames reported but not delivered."""
        return sum(1 for r in self.reports if not r.ok)


def replay_decode(
    capture,
    config=None,
    chunk: int | None = None,
    realtime: bool = False,
    speed: float = 1.0,
    workers: int = 1,
    pipeline: bool = True,
    receiver=None,
    **overrides,
) -> ReplayResult:
    """Replay a recording into a DVB-S2 receiver.

    Parameters
    ----------
    capture : Capture or path
    config : LinkConfig or None
        Default: from the recording (:func:`link_config`) with ``overrides``.
    chunk : int or None
        Samples per ``push_samples`` call. None: :data:`FAST_CHUNK` unpaced (a file replayed
        as fast as it decodes has no latency to keep: longer calls let the LDPC decoder take
        the frames of one code together, 64 lanes per pass), :data:`PACED_CHUNK` in real time.
    realtime : bool
        Pace the replay at ``speed`` x the recording's sample rate.
    workers : int
        LDPC decoder threads.
    pipeline : bool
        Decode in the receiver's background thread while the next chunk is synchronized (two
        cores; the same bytes and reports as without).
    receiver : Receiver, optional
        A receiver to feed (e.g. one whose decoders are already built); ``config``, ``workers``
        and ``pipeline`` are then its own. Default: a new one.

    Returns
    -------
    ReplayResult
        ``elapsed_s`` times the loop: reading the samples, ``push_samples`` and the final
        flush (the receiver's construction is not in it).
    """
    from modem.dvbs2.link import Receiver

    cap = capture if isinstance(capture, Capture) else open_capture(capture)
    if receiver is None:
        cfg = config if config is not None else link_config(cap, **overrides)
        rx = Receiver(cfg, workers=workers, pipeline=pipeline)
    else:
        rx, cfg = receiver, receiver.config
    if chunk is None:
        chunk = PACED_CHUNK if realtime else FAST_CHUNK
    out = bytearray()
    reports = []
    t0 = time.perf_counter()
    for _, x in cap.replay(chunk=chunk, realtime=realtime, speed=speed):
        data, reps = rx.push_samples(x)
        out += data
        reports += reps
    out += rx.flush()
    reports += rx.flush_reports
    elapsed = time.perf_counter() - t0
    return ReplayResult(bytes(out), reports, len(cap), elapsed, cap.sample_rate_hz, cfg.sps)


def frame_table(result: ReplayResult) -> str:
    """An aligned text table of the frames, one line each, and a summary line."""
    head = ("frame", "start", "MODCOD", "Es/N0 dB", "LDPC it", "BCH fix", "CRC", "ok", "detail")
    rows = [head]
    for r in result.reports:
        esn0 = "-" if r.esn0_db != r.esn0_db else f"{r.esn0_db:.2f}"
        rows.append(
            (
                str(r.index),
                str(r.start * result.sps),
                r.name,
                esn0,
                str(r.ldpc_iterations),
                str(r.bch_corrected),
                "ok" if r.crc_ok else "-",
                "yes" if r.ok else "NO",
                r.detail,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(
            c.rjust(w) if i in (0, 1, 3, 4, 5) else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    lines.append(
        f"{len(result.reports)} frames: {result.frames_ok} ok, {result.frames_lost} lost; "
        f"{len(result.data)} bytes; {result.samples} samples in {result.elapsed_s:.2f} s "
        f"({result.speed:.1f}x real time)"
    )
    return "\n".join(lines)
