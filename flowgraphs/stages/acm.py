"""ACM stage: the return link. Es/N0 reports in, MODCOD commands and acknowledgments out.

For every ``rx.frames`` message it updates its Es/N0 estimate (an exponential average over
frames, in dB, of the receiver's per-frame estimates; ``lost_headers`` PLHEADERs missed in a row
mean an outage, when no estimate is possible at all), extrapolates the trend of the last
``predict_s`` seconds to where its decision will take effect (a feedback delay and half the
transmitter's run-ahead later) and asks :class:`modem.acm.AcmPolicy` for a MODCOD, then
publishes ``acm.cmd``: the MODCOD (None: below the lowest one, send nothing), the estimate,
the margin in force, the receiver's stream offset ``rx_offset`` and ``apply_at = rx_offset +
feedback delay``, the stream sample from which the transmitter may use it. The sink's
acknowledgments (``sink.ack``) are relayed the same way as ``acm.ack``. The feedback delay is in
scenario seconds (``feedback_delay_s``), converted with the run's time scale.

Policies: ``adaptive`` (the above), ``fixed`` (always ``modcod``; still relays acks and paces the
transmitter).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from flowgraphs.stage import ConfigError, Param, Port, Stage  # noqa: F401
from flowgraphs.timebase import timebase


class Acm(Stage):
    """ACM controller and return link; see the module notes."""

    TYPE = "acm"
    PARAMS = {
        "policy": Param("adaptive", str, "MODCOD policy", choices=("adaptive", "fixed")),
        "modcod": Param("QPSK 1/2", str, "MODCOD of the fixed policy"),
        "modcods": Param([], list, "MODCODs allowed (empty: all with a measured threshold)"),
        "margin_db": Param(
            0.3, float, "Es/N0 margin above the measured threshold", lo=0.0, hi=20.0, unit="dB"
        ),
        "hysteresis_db": Param(0.1, float, "extra margin to move up", lo=0.0, hi=10.0, unit="dB"),
        "olla_step_db": Param(
            0.0, float, "outer loop: margin added per failed frame (0: off)", lo=0.0, hi=5.0, unit="dB"
        ),
        "target_fer": Param(1e-3, float, "outer loop target frame error rate", lo=1e-9, hi=0.5),
        "smoothing": Param(0.5, float, "weight of the newest frame in the Es/N0 average", lo=0.01, hi=1.0),
        "predict_s": Param(
            10.0,
            float,
            "fit the Es/N0 trend over this many scenario seconds and use its value "
            "one feedback loop ahead (0: no prediction)",
            lo=0.0,
            hi=3600.0,
            unit="s",
        ),
        "lost_headers": Param(2, int, "PLHEADERs missed in a row that mean an outage", lo=1, hi=1000),
        "feedback_delay_s": Param(
            1.0, float, "return-link delay, scenario seconds", lo=0.0, hi=3600.0, unit="s"
        ),
    }
    SUBSCRIBE = ("rx.frames", "sink.ack")
    CONTROL_TOPICS = ("sink.ack",)  # relayed to the transmitter: each once, in order

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """MODCOD names must exist and have thresholds for the link's frame size."""
        from modem.acm import modcod_ladder
        from modem.dvbs2.modcod import frame_spec

        try:
            modcod_ladder(link["frame"], link["pilots"], params["modcods"] or None)
            if params["policy"] == "fixed":
                frame_spec(params["modcod"], link["frame"], link["pilots"])
        except (ValueError, TypeError) as e:
            key = "modcod" if params["policy"] == "fixed" and "modcods" not in str(e) else "modcods"
            raise ConfigError(f"key {key!r}: {e}") from None

    def setup(self) -> None:
        """Build the policy."""
        from modem.acm import AcmPolicy, modcod_ladder

        self.tb = timebase(self.spec.link)
        self.delay = self.tb.samples(self.p.feedback_delay_s)
        self.ladder = modcod_ladder(self.link.frame, self.link.pilots, self.p.modcods or None)
        self.policy = AcmPolicy(
            self.ladder, self.p.margin_db, self.p.hysteresis_db, self.p.olla_step_db, self.p.target_fer
        )
        self.estimate: float | None = None
        self.lost_run = 0
        self.history: deque = deque()  # (t_s, estimate) for the trend
        self.predicted: float | None = None
        self.commands = 0
        self.switches = 0
        self.last_choice = None
        self.counters.update(commands=0, switches=0)

    def on_bus(self, topic: str, body: dict) -> None:
        """A receiver report (-> command) or a sink acknowledgment (-> relayed)."""
        if topic == "sink.ack":
            at = int(body.get("rx_offset", 0)) + self.delay
            self.publish(
                "acm.ack",
                {
                    "cum": body.get("cum", 0),
                    "sack": body.get("sack", []),
                    "rx_offset": body.get("rx_offset", 0),
                    "apply_at": at,
                },
            )
            return
        frames = body.get("frames") or []
        end = 0
        a = self.p.smoothing
        for f in frames:
            end = max(end, int(f.get("end", 0)))
            e = f.get("esn0_db")
            mc = f.get("modcod", -1)
            if mc > 0:
                self.policy.frame_result(bool(f.get("ok")))
            if mc < 0:  # no PLHEADER found where one was due
                self.lost_run += 1
                if self.lost_run >= self.p.lost_headers:
                    self.estimate = None
                    self.policy.outage()
                continue
            if e is None or not math.isfinite(e):
                continue
            self.lost_run = 0
            self.estimate = e if self.estimate is None else (1 - a) * self.estimate + a * e
            if self.p.predict_s > 0:
                self.history.append((self.tb.t_s(int(f.get("offset", 0))), e))
        if not frames:
            return
        self.predicted = self._predict(end)
        if self.p.policy == "fixed":
            choice = self.p.modcod
        else:
            opt = self.policy.decide(self.predicted) if self.predicted is not None else None
            choice = opt.name if opt is not None else None
        if choice != self.last_choice:
            self.switches += 1
            self.last_choice = choice
        self.commands += 1
        self.counters.update(commands=self.commands, switches=self.switches)
        self.publish(
            "acm.cmd",
            {
                "modcod": choice,
                "esn0_est_db": self.estimate,
                "esn0_pred_db": self.predicted,
                "rx_offset": end,
                "apply_at": end + self.delay,
                "margin_db": self.policy.total_margin_db,
                "t_s": self.tb.t_s(end),
            },
        )

    def _predict(self, end: int) -> float | None:
        """The Es/N0 expected where the decision will apply: the trend one feedback loop ahead.

        A least-squares line through the estimates of the last ``predict_s`` scenario seconds,
        evaluated a feedback delay plus half the transmitter's run-ahead (also one delay) after
        the receiver's position; the smoothed estimate itself when there is no history.
        """
        if self.estimate is None:
            return None
        h = self.history
        if self.p.predict_s <= 0 or len(h) < 8:
            return self.estimate
        t_end = self.tb.t_s(end)
        while h and h[0][0] < t_end - self.p.predict_s:
            h.popleft()
        if len(h) < 8:
            return self.estimate
        t, e = np.array(h).T
        if t[-1] - t[0] < 0.25 * self.p.predict_s:
            return self.estimate
        slope, icpt = np.polyfit(t - t_end, e, 1)
        return float(icpt + slope * 1.5 * self.p.feedback_delay_s)

    def summary(self) -> dict:
        """Commands sent, MODCOD switches, final margin."""
        if not hasattr(self, "policy"):
            return {}
        return {
            "commands": self.commands,
            "switches": self.switches,
            "policy": self.p.policy,
            "margin_db": self.policy.total_margin_db,
            "feedback_delay_s": self.p.feedback_delay_s,
            "feedback_delay_samples": self.delay,
        }


STAGE = Acm
