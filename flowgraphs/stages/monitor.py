"""Monitor stage: records the run from the bus, shows progress, writes the report and plots.

It listens to the transmitter's frame log (``tx.frames``), the receiver's reports
(``rx.frames``, ``rx.snapshot``), the ACM decisions (``acm.cmd``), the sink's acknowledgments
(``sink.ack``), the channel's truth (``chan.truth``, ``chan.spectrum``) and every stage's final
summary. Twice a second it publishes ``mon.progress`` (scenario time, MODCOD, Es/N0, delivered
throughput), which ``marslink run`` draws as a progress bar. It stops last; then it computes the
run's report (:func:`flowgraphs.report.compute_report`), writes ``summary.json``,
``timeline.npz`` and the plots into the run's output folder, and returns the report as its
summary.
"""

from __future__ import annotations

import json
import os
import time

from flowgraphs.stage import TOPIC_SUMMARY, Param, Stage
from flowgraphs.timebase import timebase
from flowgraphs.wire import _finite


class Monitor(Stage):
    """Run recorder and reporter; see the module notes."""

    TYPE = "monitor"
    STOP_LAST = True
    PARAMS = {
        "plots": Param(True, bool, "write plots to the output folder"),
        "progress_period_s": Param(0.5, float, "wall seconds between progress messages", lo=0.05, unit="s"),
        "window_s": Param(
            20.0, float, "scenario seconds of the progress throughput average", lo=0.1, unit="s"
        ),
    }
    SUBSCRIBE = (
        "tx.frames",
        "rx.frames",
        "rx.snapshot",
        "acm.cmd",
        "sink.ack",
        "chan.truth",
        "chan.spectrum",
        TOPIC_SUMMARY,
        "stage.done",
    )

    def setup(self) -> None:
        """Start recording."""
        from flowgraphs.report import RunRecorder

        self.tb = timebase(self.spec.link)
        spill = None
        if self.spec.state_dir:  # older records on disk: memory stays flat over a long run
            spill = os.path.join(self.spec.state_dir, f"monitor-records-{os.getpid()}")
        self.rec = RunRecorder(spill)
        self.last_progress = 0.0
        self.summaries: dict = {}
        self.report: dict = {}
        self.files: list[str] = []
        self.t_wall0 = time.monotonic()

    def on_bus(self, topic: str, body: dict) -> None:
        """Record one message."""
        if topic == TOPIC_SUMMARY:
            self.summaries[body.get("stage", "?")] = body
        elif topic == "stage.done":
            self.rec.done[body.get("stage", "?")] = body
        else:
            self.rec.add(topic, body)

    def work(self) -> bool:
        """Publish progress now and then."""
        now = time.monotonic()
        if now - self.last_progress >= self.p.progress_period_s:
            self.last_progress = now
            self.publish("mon.progress", self.rec.progress(self.tb, self.p.window_s, now - self.t_wall0))
        return False

    def teardown(self) -> None:
        """Compute the report and write the files."""
        from flowgraphs.report import compute_report, write_plots

        stages = {
            n: {
                "type": s.get("type"),
                "summary": s.get("summary", {}),
                "wire": s.get("wire", {}),
                "security": s.get("security", {}),
                "control": s.get("control", {}),
            }
            for n, s in self.summaries.items()
        }
        self.report = compute_report(self.rec, self.spec.link, stages, self.spec.peers)
        wall = time.monotonic() - self.t_wall0
        symbols = float(self.rec.tx["symbols"].total)
        self.report["processing"] = {
            "symbols": symbols,
            "wall_s": wall,
            "msym_per_s": symbols / wall / 1e6 if wall > 0 else 0.0,
            "cpu_s": {n: round(float(s.get("cpu_s") or 0.0), 1) for n, s in self.summaries.items()},
        }
        out = self.spec.out_dir
        if out:
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "summary.json"), "w") as f:
                json.dump(_finite(self.report), f, indent=2, default=float, allow_nan=False)
            self.files.append(os.path.join(out, "summary.json"))
            self.files.append(self.rec.save(os.path.join(out, "timeline.npz")))
            if self.p.plots:
                self.files += [str(p) for p in write_plots(self.rec, self.report, out)]
        self.rec.close()

    def summary(self) -> dict:
        """The run's report (see :func:`flowgraphs.report.compute_report`) and the files written."""
        return {"report": self.report, "files": self.files}


STAGE = Monitor
