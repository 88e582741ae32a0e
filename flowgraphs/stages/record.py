"""Record stage: writes its IQ input to a SigMF recording, with the receiver's frames as annotations.

The recording (``path``, default ``<output folder>/<stage name>``) gets the stream's sample
rate (``[link]`` symbol rate x samples per symbol), a center frequency, the hardware string and
the link's DVB-S2 settings (``marslink:dvbs2``, so ``marslink replay`` decodes it as is).
Connect it to the same output as the receiver (a radio's ``rx``, a channel's ``out``): then the
receiver's ``rx.frames`` reports, which carry stream offsets, become frame annotations (start,
length, MODCOD, CRC status, Es/N0). A gap in the input (samples lost upstream) is annotated
where it happened (``core:label`` "gap", ``marslink:gap_samples``), never silently closed.
"""

from __future__ import annotations

import os

from flowgraphs import wire
from flowgraphs.stage import Param, Port, Stage


class Record(Stage):
    """SigMF recorder; see the module notes."""

    TYPE = "record"
    PARAMS = {
        "path": Param("", str, "recording stem ('' : the run's output folder / stage name)"),
        "datatype": Param("ci16_le", str, "sample format", choices=("ci16_le", "cf32_le")),
        "center_freq_hz": Param(
            0.0, float, "center frequency for the metadata (0: the bench plan of 'band')", lo=0.0, unit="Hz"
        ),
        "band": Param("ka", str, "bench frequency plan when center_freq_hz is 0", choices=("ka", "uhf")),
        "hardware": Param("", str, "core:hw text ('' : the flowgraph and stage)"),
        "description": Param("", str, "core:description text"),
        "max_seconds": Param(
            0.0, float, "stop recording after this much stream time (0: no limit)", lo=0.0, unit="s"
        ),
    }
    INPUTS = {"iq": Port("iq", "samples to record")}
    SUBSCRIBE = ("rx.frames",)

    def setup(self) -> None:
        """Open the recording."""
        from hw.capture_decode import LINK_FIELDS
        from hw.captures import CaptureWriter
        from hw.radio import bench_frequency

        lk = self.link
        self.rate = float(lk.symbol_rate_hz * lk.samples_per_symbol)
        path = self.p.path or os.path.join(self.spec.out_dir or ".", self.name)
        dvbs2 = {k: getattr(lk, k) for k in ("frame", "pilots", "gold_code", "rolloff") if hasattr(lk, k)}
        dvbs2["sps"] = int(lk.samples_per_symbol)
        dvbs2 = {k: v for k, v in dvbs2.items() if k in LINK_FIELDS}
        self.writer = CaptureWriter(
            path, self.rate, self.p.center_freq_hz or bench_frequency(self.p.band), datatype=self.p.datatype,
            hardware=self.p.hardware or f"marslink flowgraph stage {self.name}",
            description=self.p.description or None, overwrite=True, extra={"dvbs2": dvbs2},
        )  # fmt: skip
        self.first = None  # stream offset of recorded sample 0
        self.lost = 0  # stream samples lost upstream so far (offset = first + index + lost)
        self.limit = int(self.p.max_seconds * self.rate) if self.p.max_seconds else None
        self.frames = 0
        self.gaps = 0
        self.counters.update(samples=0, frames=0, gaps=0)

    def _index(self, offset: int) -> int:
        return offset - self.first - self.lost

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """Append a chunk (annotating a gap before it)."""
        w = self.writer
        if self.limit is not None and w.sample_count >= self.limit:
            return
        if self.first is None:
            self.first = chunk.offset
        elif gap:
            self.gaps += 1
            w.annotate(w.sample_count, 0, label="gap", comment=f"{gap} samples lost upstream before here",
                       gap_samples=int(gap))  # fmt: skip
            self.lost += gap
        x = chunk.samples
        if self.limit is not None:
            x = x[: self.limit - w.sample_count]
        w.write(x)
        self.counters.update(samples=w.sample_count, gaps=self.gaps)
        if self.limit is not None and w.sample_count >= self.limit:
            self.finish(samples=w.sample_count)

    def on_bus(self, topic: str, body: dict) -> None:
        """Annotate the receiver's frames (stream offsets -> sample indices of the recording)."""
        if topic != "rx.frames" or self.first is None:
            return
        for f in body.get("frames", []):
            try:
                start = self._index(int(f["offset"]))
                length = int(f["end"]) - int(f["offset"])
            except (KeyError, TypeError, ValueError):
                continue
            if start < 0 or length < 0:
                continue
            esn0 = f.get("esn0_db")
            ok = bool(f.get("ok"))
            self.writer.annotate(start, length, label=str(f.get("name", "?")), modcod=str(f.get("name", "?")),
                                 crc_ok=ok, esn0_db=round(float(esn0), 2) if isinstance(esn0, int | float)
                                 and esn0 == esn0 else None)  # fmt: skip
            self.frames += 1
        self.counters["frames"] = self.frames

    def teardown(self) -> None:
        """Write the metadata."""
        self.info = self.writer.close()
        self.log(f"recorded {self.info.sample_count} samples to {self.info.meta_path}")

    def summary(self) -> dict:
        """Where the recording is and what it holds."""
        if not hasattr(self, "writer"):
            return {}
        w = self.writer
        return {"path": str(w.meta_path), "samples": w.sample_count, "frames": self.frames, "gaps": self.gaps,
                "clipped": w.clipped}  # fmt: skip


STAGE = Record
