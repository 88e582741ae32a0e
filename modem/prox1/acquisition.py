"""Coarse carrier acquisition for suppressed-carrier BPSK: FFT of the squared signal.

Squaring a BPSK signal removes the modulation: with rectangular (NRZ) pulses, (a_k A
e^{j(2 pi f t + phi)})^2 = A^2 e^{j(4 pi f t + 2 phi)} exactly, a pure tone at twice the
carrier offset f. :func:`coarse_frequency` finds it as the peak of an averaged periodogram
(Welch, non-overlapping Hann-windowed segments) of x^2, searched over +-2 ``max_offset_hz``,
refines the peak by a parabola through the log powers of the three bins around it, and halves
the result. Squaring costs SNR (the noise-times-noise term), so at low data rates the
acquisition averages over many segments: the number of samples needed grows as the symbol
energy per sample falls (see :func:`acquisition_samples`).

Before squaring, the samples are summed in blocks (a boxcar low-pass and decimation) down to a
rate of at least 4 (max offset + symbol rate): the squaring loss grows fast as the SNR per
sample falls, so the noise outside the signal's band is removed first; the signal at an
offset f is attenuated by sinc(f / rate), at most 0.6 dB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import gammainccinv


@dataclass(frozen=True)
class CoarseEstimate:
    """Result of :func:`coarse_frequency`.

    Attributes
    ----------
    frequency_hz : float
        Carrier offset estimate, Hz.
    peak_to_mean : float
        Peak bin power over the mean power of the searched bins.
    bins : int
        Bins searched.
    resolution_hz : float
        Bin spacing in carrier offset terms (half the spacing of the x^2 periodogram), Hz.
    segments : int
        Periodogram segments averaged.
    """

    frequency_hz: float
    peak_to_mean: float
    resolution_hz: float
    segments: int
    bins: int

    def threshold(self, false_alarm: float = 1e-2) -> float:
        """Peak-to-mean ratio that noise alone exceeds with probability ``false_alarm``.

        Each noise bin of an average of M periodograms is Gamma(M, 1/M) distributed (mean 1);
        the threshold is its upper quantile at false_alarm / bins.
        """
        m = self.segments
        return float(gammainccinv(m, false_alarm / self.bins) / m)

    def detected(self, false_alarm: float = 1e-2) -> bool:
        """True when the peak exceeds :meth:`threshold` (a carrier is present)."""
        return self.peak_to_mean >= self.threshold(false_alarm)


def acquisition_plan(
    sample_rate_hz: float,
    symbol_rate_hz: float,
    max_offset_hz: float,
    min_esn0_db: float,
    max_rate_hz_per_s: float = 100.0,
    max_segment: int = 1 << 16,
    max_segments: int = 256,
) -> tuple[int, int, int]:
    """Decimation, segment length and segment count for :func:`coarse_frequency`.

    Parameters
    ----------
    sample_rate_hz, symbol_rate_hz : float
        Input sample rate and symbol rate, Hz.
    max_offset_hz : float
        Largest carrier offset to find, Hz.
    min_esn0_db : float
        Lowest Es/N0 at which the acquisition must work, dB.
    max_rate_hz_per_s : float
        Largest Doppler rate, Hz/s (211.1-B: 100 Hz/s non-coherent at UHF): a segment is kept
        short enough that the tone at 2 f does not drift by more than one bin within it.
    max_segment, max_segments : int
        Upper limits of the FFT length and of the segment count.

    Returns
    -------
    (decimation, segment, segments) : (int, int, int)
        Block-sum factor applied to x before squaring (power of two, keeping a decimated rate
        of at least 4 (max_offset + symbol rate)), FFT length (power of two) and number of
        segments: ``decimation * segment * segments`` input samples.

    Notes
    -----
    The segment is as long as the drift allows (a longer segment needs fewer samples in all:
    the tone's share of its bin grows with the segment, the noise bins' spread falls only
    with the square root of the segments averaged), and at least 4 rate / max_offset (16 bins
    across the search range). With r the Es/N0 per decimated sample, the squared signal's
    tone-to-noise ratio per sample is r^2 / (4 r + 2); a Hann-windowed segment of L samples
    collects S = L r^2 / (4 r + 2) * 2/3; averaging M segments the tone bin stands about
    S sqrt(M) noise spreads above the mean; the plan asks for 12 (the largest of some
    thousand noise bins is about 3.5 spreads above it, and a tone between two bins loses up
    to 1.4 dB to the window).
    """
    need = 4.0 * (max_offset_hz + symbol_rate_hz)
    decimation = max(1, int(sample_rate_hz // need))
    decimation = 1 << int(math.floor(math.log2(decimation)))
    rate = sample_rate_hz / decimation
    drift = rate / math.sqrt(2.0 * max(max_rate_hz_per_s, 1e-9))
    segment = 1 << int(math.floor(math.log2(max(drift, 64.0))))
    segment = min(segment, max_segment)
    floor_len = 1 << int(math.ceil(math.log2(max(64.0, 4.0 * rate / max_offset_hz))))
    segment = max(segment, min(floor_len, 1 << 22))
    r = 10 ** (min_esn0_db / 10) / max(rate / symbol_rate_hz, 1.0)
    per_segment = segment * (r * r / (4 * r + 2)) * (2.0 / 3.0)
    segments = int(min(max_segments, max(2, math.ceil((12.0 / max(per_segment, 1e-12)) ** 2))))
    return decimation, segment, segments


def coarse_frequency(
    x, sample_rate_hz: float, max_offset_hz: float, decimation: int = 1, segment: int = 4096
) -> CoarseEstimate:
    """Estimate the carrier offset of a BPSK signal from the spectrum of its square.

    Parameters
    ----------
    x : array_like of complex, shape (n,)
        Samples, n >= ``decimation * segment``; the whole segments are used.
    sample_rate_hz : float
        Sample rate of ``x``, Hz.
    max_offset_hz : float
        Search range +-max_offset_hz, Hz (at most a quarter of the decimated rate).
    decimation : int
        x is summed in blocks of this many samples (a boxcar low-pass) before squaring, >= 1.
    segment : int
        FFT length (decimated samples), power of two, 64 .. 2**22.

    Returns
    -------
    CoarseEstimate
    """
    a = np.asarray(x)
    if a.ndim != 1:
        raise ValueError(f"x must be 1-D; got shape {a.shape}")
    if not isinstance(decimation, int | np.integer) or decimation < 1:
        raise ValueError(f"decimation must be an integer >= 1; got {decimation!r}")
    if segment < 64 or segment > 1 << 22 or segment & (segment - 1):
        raise ValueError(f"segment must be a power of two in 64..2**22; got {segment!r}")
    rate = sample_rate_hz / decimation
    if not 0 < max_offset_hz <= rate / 4:
        raise ValueError(
            f"max_offset_hz must be in (0, {rate / 4:g}] Hz (a quarter of the decimated rate); "
            f"got {max_offset_hz!r}"
        )
    segments = a.size // (decimation * segment)
    if segments < 1:
        raise ValueError(
            f"x must hold at least decimation * segment = {decimation * segment} samples; got {a.size}"
        )
    z = a[: segments * segment * decimation].astype(np.complex64)
    if decimation > 1:
        z = z.reshape(-1, decimation).sum(axis=1)
    z = z * z
    z = z.reshape(segments, segment) * np.hanning(segment).astype(np.float32)
    p = np.mean(np.abs(np.fft.fft(z, axis=1)) ** 2, axis=0)
    f = np.fft.fftfreq(segment, d=1.0 / rate)
    band = np.abs(f) <= 2.0 * max_offset_hz
    idx = np.flatnonzero(band)
    k = int(idx[np.argmax(p[idx])])
    # parabolic interpolation on log power
    lm, l0, lp = (np.log(max(p[(k + d) % segment], 1e-300)) for d in (-1, 0, 1))
    den = lm - 2 * l0 + lp
    delta = 0.5 * (lm - lp) / den if den < 0 else 0.0
    delta = float(np.clip(delta, -0.5, 0.5))
    two_f = f[k] + delta * rate / segment
    return CoarseEstimate(
        frequency_hz=float(two_f / 2.0),
        peak_to_mean=float(p[k] / np.mean(p[idx])),
        resolution_hz=float(rate / segment / 2.0),
        segments=int(segments),
        bins=int(idx.size),
    )
