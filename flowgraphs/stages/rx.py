"""Receiver stage: IQ -> DVB-S2 receiver -> user frames to the sink, frame reports to the bus.

Every IQ chunk goes through :meth:`modem.dvbs2.link.Receiver.push_samples`; the bytes it returns
are parsed into user frames (:class:`flowgraphs.userframes.UserFrameParser`, which accepts only
whole frames with a good CRC-32) and sent on ``frames``: a message body is the stream offset
(u64, little-endian) of the end of the last PLFRAME decoded, then the encoded user frames.

On the bus, ``rx.frames`` lists each PLFRAME: stream offsets of its start and end, MODCOD, the
Es/N0 estimate, LDPC iterations, whether it decoded. ``rx.snapshot`` carries a few hundred
equalized payload symbols of a frame, for the constellation plots: the first decoded frame of
each MODCOD and then one every ``snapshot_every_s`` scenario seconds.

With ``pipeline`` the receiver decodes a batch in its background thread while the stage
synchronizes the next one (two cores); a batch's frames are then passed on when the next batch
has been synchronized, or as soon as the input is idle. It is off by default: in the loopback
benchmark the later frames (and so later acknowledgments, which pace the transmitter) cost more
than the overlap gained. At start-up (``warmup``) the stage decodes a few frames through a
scratch receiver, so that loading the compiled kernels does not stall the stream.

A gap in the input stream (a restarted channel, a lost message) or a stream that starts again
resets the receiver at the new offset (after passing on what the old one decoded); the frames
it was in the middle of are lost (the transmitter's queue sends their user frames again).
"""

from __future__ import annotations

import struct
from collections import deque

import numpy as np

from flowgraphs import wire
from flowgraphs.stage import Param, Port, Stage
from flowgraphs.timebase import timebase


class Rx(Stage):
    """DVB-S2 receiver stage; see the module notes."""

    TYPE = "rx"
    PARAMS = {
        "workers": Param(1, int, "LDPC decoder threads", lo=1, hi=64),
        "ldpc_iterations": Param(50, int, "maximum LDPC iterations", lo=1, hi=1000),
        "batch_s": Param(
            0.5, float, "most stream seconds of samples decoded in one go", lo=0.001, hi=60.0, unit="s"
        ),
        "pipeline": Param(
            False, bool, "decode in a background thread while the next samples are synchronized"
        ),
        "warmup": Param(
            True, bool, "decode a few frames at start-up, before the stream, to load the compiled kernels"
        ),
        "snapshot_symbols": Param(600, int, "symbols per constellation snapshot (0: none)", lo=0, hi=100000),
        "snapshot_every_s": Param(
            60.0, float, "scenario seconds between snapshots of a MODCOD", lo=0.0, unit="s"
        ),
    }
    INPUTS = {"iq": Port("iq", "received samples")}
    OUTPUTS = {
        "frames": Port("frames", "user frames with good CRC, in stream order"),
        "bytes": Port(
            "bytes", "the receiver's raw output byte stream (offset-stamped chunks): TS packets in TS mode"
        ),
    }

    def setup(self) -> None:
        """Build the receiver."""
        from flowgraphs.userframes import UserFrameParser
        from modem.dvbs2.link import LinkConfig

        lk = self.link
        kw = dict(
            frame=lk.frame,
            pilots=lk.pilots,
            gold_code=lk.gold_code,
            rolloff=lk.rolloff,
            stream=lk.stream,
            sps=lk.samples_per_symbol,
            ldpc_iterations=self.p.ldpc_iterations,
        )
        if "symbol_rate_hz" in LinkConfig.__dataclass_fields__:
            kw["symbol_rate_hz"] = lk.symbol_rate_hz  # FrameReport.cfo_hz in Hz
        self.cfg = LinkConfig(**kw)
        self.sps = lk.samples_per_symbol
        self.half = self.cfg.span * self.sps // 2  # pulse centre of symbol 0 after the stream start
        self.tb = timebase(self.spec.link)
        self.parser = UserFrameParser()
        self.rx = None
        self.in_flight = False  # the receiver holds a batch decoding in its background thread
        self.base = 0  # stream offset of the receiver's first input sample
        self.next_offset = 0  # stream offset expected next
        self.resets = 0
        self.inbuf: list = []
        self.inbuf_samples = 0
        self.batch_samples = int(self.p.batch_s * self.tb.sample_rate_hz)
        self.recent: deque = deque()  # (offset, samples) of the latest input, for snapshots
        self.recent_len = 0
        self.snap_last: dict[str, float] = {}
        self.frames_total = self.frames_ok = self.frames_failed = self.headers_lost = self.dummy = 0
        self.by_modcod: dict[str, list[int]] = {}
        self.bytes_out = 0
        self.uf_out = 0
        self.counters.update(frames=0, failed=0, user_frames=0, resets=0)
        if self.p.warmup:
            self._warm_up()

    def _warm_up(self) -> None:
        """Run a few QPSK 1/2 frames (6016 bytes) of the link's configuration through a scratch receiver.

        Loads numba's cached machine code of the synchronizer, demapper, LDPC and BCH kernels
        (about a second) while the other stages start, instead of stalling the stream when its
        first samples arrive; the receiver that decodes the stream is built afresh.
        """
        from modem.dvbs2.link import Receiver, Transmitter

        data = (b"\x47" + bytes(187)) * 32  # 6016 bytes: whole TS packets, also fine as a GS stream
        x = Transmitter(self.cfg).transmit(data, "QPSK 1/2")
        rx = Receiver(self.cfg, workers=self.p.workers)
        rx.push_samples(x)
        rx.flush()

    def _reset(self, offset: int) -> int:
        """New receiver starting at stream ``offset`` rounded up to a symbol boundary; return the skip."""
        from modem.dvbs2.link import Receiver

        skip = (-offset) % self.sps
        self._settle()
        self.rx = Receiver(self.cfg, workers=self.p.workers, pipeline=self.p.pipeline)
        self.base = offset + skip
        self.parser.reset()
        return skip

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """Buffer the chunk; :meth:`work` decodes."""
        self.inbuf.append((chunk, gap))
        self.inbuf_samples += chunk.samples.size

    def work(self) -> bool:
        """Decode the buffered samples once the input is idle or a batch is full.

        The LDPC decoder works on 64 frames side by side, one pass of its kernel costing about
        the same for 1 frame as for 64 (short 2/3, 12 iterations: 6.8 ms for one frame, 19 ms
        for 64), so the stage decodes as many frames per call as the stream gives it, up to
        ``batch_s`` of samples (the receiver decodes the frames of one code together). With
        ``pipeline`` the receiver decodes a batch in its background thread while this thread
        synchronizes the next one; when the input is idle the stage waits for that batch and
        passes it on.
        """
        if not self.inbuf:
            if self.in_flight and not self.input_pending("iq"):
                self._settle()
                return True
            return False
        if self.inbuf_samples < self.batch_samples and self.input_pending("iq"):
            return False
        run: list = []
        prev_end = None
        for chunk, gap in self.inbuf:
            if run and (gap or chunk.offset != prev_end):
                self._decode(run)
                run = []
            run.append((chunk, gap))
            prev_end = chunk.offset + chunk.samples.size
        self._decode(run)
        self.inbuf.clear()
        self.inbuf_samples = 0
        if self.in_flight and not self.input_pending("iq"):
            self._settle()
        return True

    def _settle(self) -> None:
        """Wait for the batch the receiver is decoding in the background and pass it on."""
        if self.rx is not None and self.in_flight:
            self.in_flight = False
            self._handle(*self.rx.drain())

    def _decode(self, run: list) -> None:
        """Decode contiguous chunks (only the first may follow a gap)."""
        chunk, gap = run[0]
        x = chunk.samples if len(run) == 1 else np.concatenate([c.samples for c, _ in run])
        for c, _ in run:
            self._remember(c.offset, c.samples)
        if self.rx is None or gap or chunk.offset != self.next_offset:
            if self.rx is not None:
                self.resets += 1
                self.counters["resets"] = self.resets
                self.log(f"input gap of {gap} samples at offset {chunk.offset}: receiver reset", "warning")
            skip = self._reset(chunk.offset)
            x = x[skip:]
        self.next_offset = run[-1][0].offset + run[-1][0].samples.size
        data, reports = self.rx.push_samples(x)
        self.in_flight = self.p.pipeline
        self._handle(data, reports)

    def _handle(self, data: bytes, reports: list) -> None:
        """Pass on the receiver's bytes (user frames, raw stream) and publish its frame reports."""
        frames = self.parser(data)
        if data and self.spec.outputs.get("bytes"):
            self.send_message("bytes", wire.KIND_BYTES, struct.pack("<Q", self.bytes_out) + data)
        self.bytes_out += len(data)
        end = self.base
        recs = []
        for r in reports:
            # stream offset of the frame as the transmitter numbers it: its first symbol's pulse is
            # centred ``half`` samples later
            centre = getattr(r, "start_sample", None)
            centre = self.half + r.start * self.sps if centre is None else centre
            start = self.base + centre - self.half
            stop = start + max(r.symbols, 1) * self.sps
            end = max(end, stop)
            recs.append(
                {
                    "offset": int(start),
                    "end": int(stop),
                    "modcod": int(r.modcod),
                    "name": r.name,
                    "esn0_db": float(r.esn0_db),
                    "ok": bool(r.ok),
                    "iters": int(r.ldpc_iterations),
                    "metric": round(float(r.plheader_metric), 4),
                    "detail": r.detail,
                    "cfo_hz": float(getattr(r, "cfo_hz", 0.0)),
                    "clock_ppm": float(getattr(r, "clock_offset_ppm", 0.0)),
                }
            )
            self._count(r)
            if r.ok and r.modcod > 0:
                self._maybe_snapshot(r, start)
        if frames:
            from flowgraphs.userframes import encode_user_frame

            body = struct.pack("<Q", end) + b"".join(
                encode_user_frame(f.seq, f.offset, f.payload, f.flags) for f in frames
            )
            self.uf_out += len(frames)
            self.send_message("frames", wire.KIND_FRAMES, body)
        if recs:
            self.publish("rx.frames", {"frames": recs, "t_s": self.tb.t_s(end)})
        self.counters.update(frames=self.frames_total, failed=self.frames_failed, user_frames=self.uf_out)

    def _count(self, r) -> None:
        self.frames_total += 1
        if r.modcod < 0:
            self.headers_lost += 1
        elif r.modcod == 0:
            self.dummy += 1
        else:
            c = self.by_modcod.setdefault(r.name, [0, 0])
            c[0] += 1
            if r.ok:
                self.frames_ok += 1
            else:
                self.frames_failed += 1
                c[1] += 1

    # -- constellation snapshots

    def _remember(self, offset: int, samples: np.ndarray) -> None:
        self.recent.append((offset, samples))
        self.recent_len += samples.size
        keep = 2 * self.batch_samples + 3 * 33282 * self.sps  # a pipelined batch comes one batch later
        while self.recent and self.recent_len - self.recent[0][1].size > keep:
            self.recent_len -= self.recent.popleft()[1].size

    def _window(self, lo: int, hi: int) -> np.ndarray | None:
        """Input samples lo..hi-1 (stream offsets) if still held."""
        if not self.recent or lo < self.recent[0][0]:
            return None
        parts = []
        for off, s in self.recent:
            a, b = max(lo, off), min(hi, off + s.size)
            if a < b:
                parts.append(s[a - off : b - off])
        out = np.concatenate(parts) if parts else np.zeros(0, np.complex64)
        return out if out.size == hi - lo else None

    def _maybe_snapshot(self, r, start: int) -> None:
        n = self.p.snapshot_symbols
        if not n:
            return
        t = self.tb.t_s(start)
        last = self.snap_last.get(r.name)
        if last is not None and t - last < self.p.snapshot_every_s:
            return
        sym = self._frame_symbols(r, start)
        if sym is None:
            return
        self.snap_last[r.name] = t
        pts = sym[: min(n, sym.size)]
        self.publish(
            "rx.snapshot",
            {
                "modcod": r.name,
                "t_s": t,
                "esn0_db": float(r.esn0_db),
                "re": np.round(pts.real, 4).tolist(),
                "im": np.round(pts.imag, 4).tolist(),
            },
        )

    def _frame_symbols(self, r, start: int) -> np.ndarray | None:
        """The first payload symbols of a decoded frame, equalized: for the constellation plots.

        The frame's first 16 slots (up to the first pilot block) are taken from the input again:
        carrier offset removed at the frequency the receiver tracked (``cfo_norm``), matched
        filter, 8 x interpolation and one point per symbol at the fractional timing that best
        fits the PLHEADER, gain and phase fitted on the PLHEADER, PL descrambling. Over 1530 symbols
        the receiver's residual frequency error and clock drift move the points by a small
        fraction of a degree and of a sample; phase noise rotates them by a few degrees.
        """
        from scipy.signal import resample_poly

        from modem.dvbs2.plframe import descramble, plheader
        from modem.dvbs2.pulse import MatchedFilter

        nsym = min(r.symbols, 90 + 16 * 90)
        span = self.cfg.span * self.sps
        hi = start + (nsym - 1) * self.sps + span + 1 + self.sps  # one more symbol for the timing search
        w = self._window(start, hi)
        if w is None:
            return None
        f = float(getattr(r, "cfo_norm", 0.0)) / self.sps  # cycles per sample
        if f:
            w = (w * np.exp(-2j * np.pi * f * np.arange(w.size))).astype(np.complex64)
        y = MatchedFilter(self.cfg.rolloff, self.sps, self.cfg.span)(w)
        # the channel's clock offset leaves the symbol centres between samples: interpolate 8 x and
        # take the fractional timing (within +-1 sample) that best matches the PLHEADER
        up = 8
        yu = resample_poly(y, up, 1)
        hdr = plheader(r.modcod, r.frame, r.pilots)
        idx = up * (span + self.sps * np.arange(nsym))
        best, sym = -1.0, None
        for tau in range(-up, up + 1):
            k = idx + tau
            if k[0] < 0 or k[-1] >= yu.size:
                continue
            c = abs(np.vdot(hdr, yu[k[:90]]))
            if c > best:
                best, sym = c, yu[k]
        if sym is None:
            return None
        h = np.vdot(hdr, sym[:90]) / np.vdot(hdr, hdr)
        if abs(h) == 0:
            return None
        return (descramble(sym[90:], self.cfg.gold_code) / h).astype(np.complex64)

    def teardown(self) -> None:
        """Stop the receiver's background decoding thread."""
        if self.rx is not None:
            self.rx.close()

    def summary(self) -> dict:
        """Frames by MODCOD (received, failed), headers lost, resets, user frames out."""
        if not hasattr(self, "parser"):
            return {}
        return {
            "frames": self.frames_total,
            "data_frames_ok": self.frames_ok,
            "data_frames_failed": self.frames_failed,
            "headers_lost": self.headers_lost,
            "dummy_frames": self.dummy,
            "by_modcod": self.by_modcod,
            "user_frames": self.uf_out,
            "stream_bytes": self.bytes_out,
            "uf_crc_failures": self.parser.crc_failures,
            "uf_skipped_bytes": self.parser.skipped_bytes,
            "resets": self.resets,
        }


STAGE = Rx
