"""Receiver synchronization: AGC, symbol timing, carrier, frame synchronization (DVB-S2).

Generic streaming blocks (any linear modulation): :class:`Agc`, :class:`TimingRecovery`,
:class:`Rotator`, :class:`FrontEnd` (rotator, matched filter, AGC, timing). DVB-S2 specific:
PLHEADER detection (:mod:`modem.sync.plheader`), carrier tracking from headers and pilots
(:mod:`modem.sync.carrier`) and the raw-IQ synchronizer behind
:meth:`modem.dvbs2.link.Receiver.push_samples` (:mod:`modem.sync.dvbs2`).
"""

from modem.sync.agc import Agc
from modem.sync.frontend import FrontEnd
from modem.sync.nco import Rotator
from modem.sync.timing import TimingRecovery

__all__ = ["Agc", "FrontEnd", "Rotator", "TimingRecovery"]
