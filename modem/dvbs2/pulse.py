"""Root-raised-cosine pulse shaping and matched filtering (EN 302 307-1 §5.6, Annex A).

The transmit filter is the square-root raised cosine of §5.6 with roll-off α = 0.35, 0.25 or 0.20,
truncated to ``span`` symbols and normalized to unit energy (sum h^2 = 1), so that shaper followed
by matched filter has unit gain at the sampling instant and the shaped signal has an average power
of Es/sps per sample. Both filters are linear phase with a delay of span*sps/2 samples each; the
symbol m of the input appears at sample (m + span) * sps of shaper + matched filter output.

Both objects stream: state is carried across calls, so the concatenated outputs of any chunking,
followed by :meth:`flush`, equal the one-shot full convolution (``scipy.signal.upfirdn(taps, x,
up)``), bit for bit across chunkings. The filtering is a polyphase FIR in numba (float32 taps,
span+1 taps per phase for the shaper), a few times faster than ``upfirdn``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from modem.checks import check_choice

#: Roll-off factors of EN 302 307-1 §5.6.
ROLLOFFS = (0.35, 0.25, 0.20)


def _check(rolloff, sps, span) -> tuple[float, int, int]:
    check_choice(rolloff, "rolloff", ROLLOFFS)
    if isinstance(sps, bool) or not isinstance(sps, int | np.integer) or sps < 2:
        raise ValueError(f"sps must be an integer >= 2 (samples per symbol); got {sps!r}")
    if isinstance(span, bool) or not isinstance(span, int | np.integer) or span < 2 or span % 2:
        raise ValueError(f"span must be an even integer >= 2 (symbols); got {span!r}")
    return float(rolloff), int(sps), int(span)


def rrc_taps(rolloff: float, sps: int, span: int) -> np.ndarray:
    """Unit-energy root-raised-cosine taps (EN 302 307-1 §5.6).

    Parameters
    ----------
    rolloff : {0.35, 0.25, 0.20}
        Roll-off factor α.
    sps : int
        Samples per symbol, >= 2.
    span : int
        Filter length in symbols (even); the filter has span*sps + 1 taps, centred.

    Returns
    -------
    ndarray of float64, shape (span*sps + 1,)
        Symmetric taps with sum of squares 1.
    """
    a, sps, span = _check(rolloff, sps, span)
    t = np.arange(-span * sps // 2, span * sps // 2 + 1) / sps  # in symbol periods
    h = np.empty(t.size)
    at = 4.0 * a * t
    zero = np.isclose(t, 0.0)
    sing = np.isclose(np.abs(at), 1.0)
    reg = ~(zero | sing)
    tr = t[reg]
    h[reg] = (np.sin(np.pi * tr * (1 - a)) + 4 * a * tr * np.cos(np.pi * tr * (1 + a))) / (
        np.pi * tr * (1 - (4 * a * tr) ** 2)
    )
    h[zero] = 1.0 - a + 4.0 * a / np.pi
    h[sing] = (a / np.sqrt(2.0)) * (
        (1 + 2 / np.pi) * np.sin(np.pi / (4 * a)) + (1 - 2 / np.pi) * np.cos(np.pi / (4 * a))
    )
    return h / np.sqrt(np.sum(h * h))


@nb.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _polyphase(hr, bre, bim, n, out):  # pragma: no cover - compiled
    # out[m*up + p] = sum_k hr[p, k] * buf[m + k], buf = (K - 1 past inputs, new inputs)
    up, k_len = hr.shape
    for m in range(n):
        for p in range(up):
            ar = np.float32(0.0)
            ai = np.float32(0.0)
            for k in range(k_len):
                ar += hr[p, k] * bre[m + k]
                ai += hr[p, k] * bim[m + k]
            out[m * up + p] = complex(ar, ai)


class _Streaming:
    def __init__(self, rolloff: float, sps: int, span: int, up: int):
        self.rolloff, self.sps, self.span = _check(rolloff, sps, span)
        self.taps = rrc_taps(self.rolloff, self.sps, self.span)
        self._up = up
        k_len = -(-self.taps.size // up)  # taps per polyphase branch
        hp = np.zeros(k_len * up, dtype=np.float32)
        hp[: self.taps.size] = self.taps
        # branch p holds taps p, p + up, ...; reversed so that the kernel reads the buffer forwards
        self._hr = np.ascontiguousarray(hp.reshape(k_len, up).T[:, ::-1])
        self._hist_len = k_len - 1  # past inputs still reaching the next output
        self._tail = self.taps.size - up  # samples left after the last input (flush)
        self.delay = self.span * self.sps // 2  #: group delay in output samples
        self.reset()

    def reset(self) -> None:
        """Clear the filter state (as at construction)."""
        self._hist = np.zeros(self._hist_len, dtype=np.complex64)

    def _filter(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self._hist, x])
        out = np.empty(x.size * self._up, dtype=np.complex64)
        _polyphase(self._hr, np.ascontiguousarray(buf.real), np.ascontiguousarray(buf.imag), x.size, out)
        self._hist = buf[buf.size - self._hist_len :].copy()
        return out

    def _run(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 1:
            raise ValueError(f"input must be 1-D; got shape {x.shape}")
        return self._filter(x.astype(np.complex64, copy=False))

    def flush(self) -> np.ndarray:
        """Remaining output (the filter's tail: len(taps) - up samples) and reset of the state."""
        y = self._filter(np.zeros(self._hist_len, dtype=np.complex64))[: self._tail]
        self.reset()
        return y


class PulseShaper(_Streaming):
    """Streaming RRC transmit filter: symbols in, ``sps`` complex64 samples per symbol out (§5.6).

    Parameters
    ----------
    rolloff : {0.35, 0.25, 0.20}
    sps : int
        Samples per symbol, >= 2.
    span : int
        Filter length in symbols (even).

    Notes
    -----
    ``shaper(x)`` returns len(x)*sps samples; after the last chunk, :meth:`flush` returns the
    remaining span*sps - sps + 1 samples. Concatenated, they equal
    ``scipy.signal.upfirdn(taps, symbols, up=sps)``.
    """

    def __init__(self, rolloff: float, sps: int, span: int):
        super().__init__(rolloff, sps, span, up=sps)

    def __call__(self, symbols) -> np.ndarray:
        """Shape a chunk of symbols; returns ``len(symbols) * sps`` samples (complex64)."""
        return self._run(symbols)


class MatchedFilter(_Streaming):
    """Streaming RRC receive (matched) filter at ``sps`` samples per symbol (§5.6).

    Parameters
    ----------
    rolloff, sps, span
        As for :class:`PulseShaper`; the taps are the same (the RRC is real and symmetric).

    Notes
    -----
    ``mf(x)`` returns len(x) filtered samples; :meth:`flush` the span*sps remaining ones. After a
    :class:`PulseShaper` with the same parameters, symbol m is at output sample (m + span) * sps
    (the two filters' delays), with unit gain.
    """

    def __init__(self, rolloff: float, sps: int, span: int):
        super().__init__(rolloff, sps, span, up=1)

    def __call__(self, samples) -> np.ndarray:
        """Filter a chunk of samples; returns as many samples (complex64)."""
        return self._run(samples)
