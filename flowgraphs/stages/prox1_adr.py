"""Proximity-1 Adaptive Data Rate stage: the relay's side. Frame reports in, rate commands out.

For every ``prox1.frames`` message (from ``prox1_rx``) it turns each frame's Es/N0 into a
carrier-to-noise density (C/N0 = Es/N0 + 10 log10(symbol rate); :class:`modem.prox1.adr.
Cn0Estimator`) and asks :class:`modem.prox1.adr.AdrPolicy` for the highest data rate whose
required Eb/N0 plus ``margin_db`` fits (rates the link's sample rate allows, from ``min_rate``
to ``max_rate``). It publishes ``prox1.cmd``: the rate (None: nothing fits, hold the data), the
estimate, the receiver's stream offset ``rx_offset`` and ``apply_at = rx_offset + feedback
delay``. With no good frame for ``silence_s`` scenario seconds it commands None (the
transmitter then probes at the lowest rate). The sink's acknowledgments (``sink.ack``) are
relayed as ``prox1.ack`` with the same delay: the forward link of the session.
"""

from __future__ import annotations

import math

from flowgraphs.stage import ConfigError, Param, Stage
from flowgraphs.stages.prox1_tx import CODINGS, allowed_rates
from flowgraphs.timebase import timebase


class Prox1Adr(Stage):
    """Adaptive Data Rate controller and return link; see the module notes."""

    TYPE = "prox1_adr"
    PARAMS = {
        "coding": Param("conv", str, "channel coding of the link", choices=CODINGS),
        "margin_db": Param(
            2.0, float, "Eb/N0 margin above the coding's requirement", lo=0.0, hi=20.0, unit="dB"
        ),
        "hysteresis_db": Param(1.0, float, "extra margin to move up", lo=0.0, hi=10.0, unit="dB"),
        "smoothing": Param(0.25, float, "weight of the newest frame in the C/N0 average", lo=0.01, hi=1.0),
        "max_rate": Param(2048000, int, "highest data rate to command", lo=1000, hi=2048000, unit="bit/s"),
        "min_rate": Param(
            1000,
            int,
            "lowest data rate to command (below it: None, hold the data)",
            lo=1000,
            hi=2048000,
            unit="bit/s",
        ),
        "feedback_delay_s": Param(
            1.0, float, "forward-link delay, scenario seconds", lo=0.0, hi=3600.0, unit="s"
        ),
        "silence_s": Param(
            30.0, float, "scenario seconds without a good frame that mean an outage", lo=0.0, unit="s"
        ),
    }
    SUBSCRIBE = ("prox1.frames", "sink.ack")

    check_params = staticmethod(lambda params, link: None)

    def setup(self) -> None:
        """Build the policy over the rates the link's sample rate allows."""
        from modem.prox1.adr import AdrPolicy, Cn0Estimator

        self.tb = timebase(self.spec.link)
        self.delay = self.tb.samples(self.p.feedback_delay_s)
        rates = [r for r in allowed_rates(self.tb.sample_rate_hz, self.p.coding)
                 if self.p.min_rate <= r <= self.p.max_rate]  # fmt: skip
        if not rates:
            raise ConfigError(
                f"stage {self.name!r}: no data rate between min_rate and max_rate fits the link's "
                f"sample rate {self.tb.sample_rate_hz:g} Hz"
            )
        self.policy = AdrPolicy(self.p.coding, self.p.margin_db, self.p.hysteresis_db, rates)
        self.estimator = Cn0Estimator(self.p.smoothing)
        self.last_good = None
        self.heard = False  # any good frame yet (before: leave the transmitter at its initial rate)
        self.last = "unset"
        self.commands = 0
        self.switches = 0
        self.history: list[tuple[float, float, int | None]] = []
        self.counters.update(commands=0, switches=0)

    def on_bus(self, topic: str, body: dict) -> None:
        """A receiver report (-> command) or a sink acknowledgment (-> relayed)."""
        if topic == "sink.ack":
            rx = int(body.get("rx_offset", 0))
            self.publish("prox1.ack", {"cum": body.get("cum", 0), "sack": body.get("sack", []),
                                       "rx_offset": rx, "apply_at": rx + self.delay})  # fmt: skip
            return
        frames = body.get("frames") or []
        end = max([int(body.get("end", 0))] + [int(f.get("end", 0)) for f in frames])
        for f in frames:
            e = f.get("esn0_db")
            if f.get("ok") and e is not None:
                self.estimator.update(float(e), float(f["symbol_rate_hz"]))
                self.last_good = end
                self.heard = True
        est = self.estimator.estimate
        if self.last_good is not None and end - self.last_good > self.tb.samples(self.p.silence_s):
            self.policy.outage()
            self.estimator.reset()
            self.last_good = None
            rate = None
        else:
            rate = self.policy.decide(est)
        if rate != self.last:
            self.switches += 1
            self.last = rate
            self.history.append((self.tb.t_s(end), est if math.isfinite(est) else None, rate))
        self.commands += 1
        self.counters.update(commands=self.commands, switches=self.switches)
        if not self.heard:
            return  # nothing heard yet: leave the transmitter at its initial rate
        self.publish("prox1.cmd", {"rate": rate, "cn0_est_dbhz": est if math.isfinite(est) else None,
                                   "rx_offset": end, "apply_at": end + self.delay,
                                   "t_s": self.tb.t_s(end)})  # fmt: skip

    def summary(self) -> dict:
        """Commands, rate switches and the decisions over scenario time."""
        if not hasattr(self, "policy"):
            return {}
        return {
            "commands": self.commands,
            "switches": self.switches,
            "decisions": self.history,
            "margin_db": self.p.margin_db,
            "feedback_delay_samples": self.delay,
        }


STAGE = Prox1Adr
