"""Dust on a terminal's radome: loss growing by a fixed amount per sol, removed by cleanings.

Default accumulation 0.01 dB per sol (the issue's figure for a Ka radome; dust settling on
exposed surfaces is what made the MER solar arrays lose a fraction of a percent of their output
per sol, and the wind "cleaning events" that restored them are the model for the cleanings).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from modem.channel._block import check_real
from modem.channel.geometry import SOL_S


@dataclass(frozen=True)
class RadomeDust:
    """Radome dust loss in dB against scenario time.

    Parameters
    ----------
    rate_db_per_sol : float
        Accumulation, dB per sol (0 .. 1); default 0.01.
    initial_db : float
        Loss at t = 0, dB (0 .. 30).
    cleanings : sequence of (float, float)
        (time s, fraction of the loss removed, 0 .. 1) events, e.g. a wind gust or a wiper.

    Notes
    -----
    Before t = 0 the loss is ``initial_db``; after, it grows linearly and each cleaning
    multiplies the loss accumulated so far by (1 - fraction).
    """

    rate_db_per_sol: float = 0.01
    initial_db: float = 0.0
    cleanings: tuple = ()

    def __post_init__(self):
        check_real(self.rate_db_per_sol, "rate_db_per_sol", 0.0, 1.0, "dB/sol")
        check_real(self.initial_db, "initial_db", 0.0, 30.0, "dB")
        events = []
        for i, ev in enumerate(self.cleanings):
            if len(ev) != 2:
                raise ValueError(f"cleanings[{i}] must be (time_s, fraction); got {ev!r}")
            events.append((check_real(ev[0], f"cleanings[{i}] time", 0.0, 1e10, "s"),
                           check_real(ev[1], f"cleanings[{i}] fraction", 0.0, 1.0)))
        object.__setattr__(self, "cleanings", tuple(sorted(events)))

    def loss_db(self, t_s) -> np.ndarray:
        """Radome loss at scenario times ``t_s``, dB."""
        t = np.asarray(t_s, dtype=float)
        rate = self.rate_db_per_sol / SOL_S
        loss = np.full(t.shape, self.initial_db)
        prev = 0.0
        level = self.initial_db  # loss at time prev
        for when, frac in self.cleanings:
            seg = (t > prev) & (t <= when)
            loss = np.where(seg, level + rate * (t - prev), loss)
            level = (level + rate * (when - prev)) * (1.0 - frac)
            prev = when
        return np.where(t > prev, level + rate * (t - prev), loss)
