"""Replay stage: plays a recording (SigMF, or a raw .cf32/.cs16 file) into the flowgraph as IQ.

The recording's sample rate must be the flowgraph's (``[link]`` symbol rate x samples per
symbol; checked when the flowgraph loads). Samples go out in chunks of ``chunk`` samples,
paced at ``speed`` x real time when ``realtime``, else as fast as the downstream stage takes
them (backpressure). At the end (unless ``loop`` starts it over, the stream offsets
continuing) it waits for a receiver's ``rx.frames`` reports to reach the end of the stream, or
for ``tail_s`` wall seconds without a report, and then reports done, so that a flowgraph with
``until = ["<replay stage>"]`` stops after the last frame was decoded. Raw files need
``raw_sample_rate_hz``.
"""

from __future__ import annotations

import time

from flowgraphs.stage import ConfigError, Param, Port, Stage


def _open(params: dict, tmp_dir: str | None = None):
    """The Capture a replay stage plays (a raw file is imported to a temporary SigMF first)."""
    from hw.captures import RAW_FORMATS, import_raw, open_capture

    path = params["path"]
    suffix = path[path.rfind(".") :].lower() if "." in path else ""
    if suffix in RAW_FORMATS:
        import tempfile

        if not params["raw_sample_rate_hz"]:
            raise ConfigError(f"key 'raw_sample_rate_hz': needed to replay the raw file {path}")
        d = tmp_dir or tempfile.mkdtemp(prefix="mlk-replay-")
        info = import_raw(path, f"{d}/raw", params["raw_sample_rate_hz"], 0.0, overwrite=True)
        return open_capture(info.meta_path, verify=False)
    return open_capture(path)


class Replay(Stage):
    """Recording player; see the module notes."""

    TYPE = "replay"
    PARAMS = {
        "path": Param("", str, "recording: SigMF stem/.sigmf-meta/.sigmf-data, or raw .cf32/.cfile/.cs16"),
        "realtime": Param(False, bool, "pace at the recording's sample rate (x speed)"),
        "speed": Param(1.0, float, "with realtime: times real time", lo=1e-3, hi=1e3),
        "chunk": Param(65536, int, "samples per message", lo=64, hi=1 << 22),
        "loop": Param(False, bool, "start over at the end"),
        "raw_sample_rate_hz": Param(0.0, float, "sample rate of a raw file", lo=0.0, unit="samples/s"),
        "tail_s": Param(
            3.0, float, "after the end: wall seconds without rx.frames before done", lo=0.0, unit="s"
        ),
    }
    OUTPUTS = {"iq": Port("iq", "the recording's samples, unit scale")}
    SUBSCRIBE = ("rx.frames",)
    #: A receiver report ending this close to the stream's end means everything was decoded.
    END_MARGIN_SYMBOLS = 33282 + 90

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """The recording must exist, be readable and have the flowgraph's sample rate."""
        from hw.captures import RAW_FORMATS, CaptureError

        path = params["path"]
        if not path:
            raise ConfigError("key 'path': the recording to replay is required")
        try:
            if "." in path and path[path.rfind(".") :].lower() in RAW_FORMATS:
                rate = params["raw_sample_rate_hz"]
                if not rate:
                    raise ConfigError(f"key 'raw_sample_rate_hz': needed to replay the raw file {path}")
            else:
                from hw.captures import open_capture

                rate = open_capture(path, verify=False).sample_rate_hz
        except CaptureError as e:
            raise ConfigError(f"key 'path': {e}") from None
        want = link["symbol_rate_hz"] * link["samples_per_symbol"]
        if abs(rate - want) > 1e-6 * want:
            raise ConfigError(
                f"key 'path': the recording is at {rate:g} samples/s but the flowgraph runs at {want:g} "
                "([link] symbol_rate_hz x samples_per_symbol)"
            )

    def setup(self) -> None:
        """Open the recording."""
        self.cap = _open(vars(self.p))
        self.pos = 0
        self.loops = 0
        self.t0 = None
        self.played = 0
        self.ended_at = None  # wall time of the last chunk
        self.last_report = 0.0
        self.rx_end = -1  # highest stream offset a receiver has reported
        self.counters.update(samples=0, loops=0)

    def on_bus(self, topic: str, body: dict) -> None:
        """Follow the receiver's progress (to know when the stream has been decoded)."""
        ends = [f.get("end") for f in body.get("frames", []) if isinstance(f.get("end"), int)]
        if ends:
            self.rx_end = max(self.rx_end, *ends)
        self.last_report = time.monotonic()

    def work(self) -> bool:
        """Send the next chunk (when due, in real time)."""
        if self._finished:
            return False
        n = len(self.cap)
        if self.pos >= n:
            if self.p.loop and n:
                self.pos = 0
                self.loops += 1
            else:
                now = time.monotonic()
                if self.ended_at is None:
                    self.ended_at = now
                margin = self.END_MARGIN_SYMBOLS * self.link.samples_per_symbol
                decoded = self.rx_end >= self.played - margin
                idle = now - max(self.ended_at, self.last_report) > self.p.tail_s
                if decoded or idle:
                    self.finish(samples=self.played, loops=self.loops, decoded=decoded)
                else:
                    time.sleep(0.01)
                return False
        if self.p.realtime:
            now = time.monotonic()
            if self.t0 is None:
                self.t0 = now
            due = self.t0 + self.played / (self.cap.sample_rate_hz * self.p.speed)
            if due > now:
                time.sleep(min(due - now, 0.02))
                return True
        k = min(self.p.chunk, n - self.pos)
        x = self.cap.read(self.pos, k)
        if not self.send_iq("iq", x):
            return False
        self.pos += k
        self.played += k
        self.counters.update(samples=self.played, loops=self.loops)
        return True

    def summary(self) -> dict:
        """Samples played."""
        return {"samples": getattr(self, "played", 0), "loops": getattr(self, "loops", 0),
                "path": self.p.path}  # fmt: skip


STAGE = Replay
