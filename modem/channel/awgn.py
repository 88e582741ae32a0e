"""Additive white Gaussian noise at a given Es/N0, as a streaming block.

Noise convention
----------------
The noise added to each complex sample has variance (both components together)

    sigma^2 = signal_power * samples_per_symbol / 10**(esn0_db / 10),

so that with unit-energy symbols at one sample per symbol (``signal_power=1``,
``samples_per_symbol=1``) N0 = 10**(-Es/N0 / 10), the convention of the ideal-sync simulator
:mod:`modem.dvbs2.awgn_sim` and of the DVB-S2 receiver's Es/N0 estimate. For a shaped signal,
``signal_power`` is the mean power per sample the transmitter produces, Es / sps.

DVB-S2 transmitter (:class:`modem.dvbs2.link.Transmitter`): its PLFRAME symbols have unit
energy and the RRC shaper's taps have unit energy (:mod:`modem.dvbs2.pulse`), so the shaped
stream has a mean power of 1/sps per sample. For that stream at Es/N0 = E dB use::

    Awgn(E, samples_per_symbol=cfg.sps, signal_power=1 / cfg.sps)

which adds noise of variance N0 = 10**(-E/10) per sample; after the receiver's unit-energy
matched filter the noise per symbol sample is again N0 and the symbol energy 1, so the
receiver sees Es/N0 = E dB, as with ``awgn_sim`` on the symbols themselves. (The PLHEADER and
pilots have the same unit energy, so the mean is the same over every part of a frame.)
"""

from __future__ import annotations

import numpy as np

from modem.channel._block import Block, check_iq, check_real
from modem.channel._gauss import add_noise, noise_key


class Awgn(Block):
    """Add complex white Gaussian noise for a given Es/N0 (dB).

    Parameters
    ----------
    esn0_db : float
        Es/N0 in dB, -50 .. 100; settable between chunks (:attr:`esn0_db`).
    samples_per_symbol : float
        Samples per symbol of the stream (> 0; need not be an integer).
    signal_power : float
        Mean power per sample of the signal (linear, > 0): 1/sps for the DVB-S2 transmitter.
    seed : None, int, SeedSequence or Generator
        Noise source (:func:`modem.channel._gauss.noise_key`: a Generator gives one draw for
        the key); :meth:`reset` rewinds it.

    Notes
    -----
    Noise variance per complex sample: ``signal_power * samples_per_symbol / 10**(esn0_db/10)``
    (:attr:`noise_variance`); see the module notes for the DVB-S2 transmitter's convention.
    The noise of sample n (counted from construction or :meth:`reset`) is the counter-based
    Gaussian pair n of the block's key (:mod:`modem.channel._gauss`: SplitMix64 and
    Box-Muller, vectorized), so any chunking gives the same output, bit for bit.
    """

    def __init__(self, esn0_db: float, samples_per_symbol: float = 1, signal_power: float = 1.0, seed=None):
        self.samples_per_symbol = check_real(samples_per_symbol, "samples_per_symbol", 0, 1e6, lo_open=True)
        self.signal_power = check_real(signal_power, "signal_power", 0, 1e30, lo_open=True)
        self.esn0_db = esn0_db
        key, entropy = noise_key(seed)
        self._key = key
        self.seed = entropy  #: entropy that replays the noise (None if a Generator was given)
        self._n = 0  # samples since construction or reset

    @property
    def esn0_db(self) -> float:
        """Es/N0 in dB; may be changed between chunks."""
        return self._esn0_db

    @esn0_db.setter
    def esn0_db(self, value: float) -> None:
        self._esn0_db = check_real(value, "esn0_db", -50.0, 100.0, "dB")
        self._sigma = float(np.sqrt(self.noise_variance / 2.0))

    @property
    def noise_variance(self) -> float:
        """Noise variance per complex sample (linear, both components)."""
        return self.signal_power * self.samples_per_symbol / 10.0 ** (self._esn0_db / 10.0)

    def __call__(self, x) -> np.ndarray:
        """Return ``x`` plus noise (complex64, same length)."""
        x = check_iq(x)
        out = np.empty_like(x)
        self._process(x, out)
        return out

    def _process(self, x: np.ndarray, out: np.ndarray) -> None:
        """Add the noise to a checked complex64 chunk into ``out`` (not ``x``: the loop vectorizes then)."""
        add_noise(x, self._sigma, self._key, self._n, out)
        self._n += x.size

    def reset(self) -> None:
        """Rewind the noise source to its state at construction."""
        self._n = 0
