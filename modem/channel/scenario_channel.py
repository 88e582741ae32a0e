"""ScenarioChannel: a scenario's Es/N0, carrier offset, phase noise and clock offset on a stream.

The stream runs at a bench symbol rate R_b (samples_per_symbol samples per symbol) while the
scenario's link runs at its mission symbol rate R_m; the mapping is :mod:`modem.scaling`'s
with k = R_b / R_m (Es/N0 kept, CFO x k, Doppler rate x k^2, phase-noise mask offsets x k and
levels - 10 log10 k, clock ppm kept).

Time
----
Scenario time of stream sample n: t = t0 + time_scale * n / f_s (f_s = R_b x sps; t0 the
scenario's start or the last :meth:`ScenarioChannel.seek`). The parameters are re-read from
the scenario every ``update_s`` seconds of stream (segments at fixed multiples of the sample
index, so chunking does not matter):

- follow the compressed clock: Es/N0 (path loss, storm, radome), visibility, the mean carrier
  offset k cfo(t) (Doppler and oscillator), the clock offset in ppm, the oscillator drift;
- stay physical (``doppler="physical"``, the default): the frequency ramp applied inside a
  segment is the scaled physical Doppler rate k^2 r(t), what the receiver's carrier loop meets
  on the real link in units of the symbol rate. Re-anchoring the offset at each segment then
  adds a frequency step of about (time_scale k - k^2) r(t) update_s; over many segments the
  offset sweeps at time_scale k r(t) Hz/s. storm_pass (mission 500 Msym/s, peak Doppler rate
  1.83 kHz/s) at R_b = 2.5 Msym/s and time_scale 10 (the main job: 693 s of pass in 69 s of
  stream): k = 1/200, physical ramp at most 0.046 Hz/s, steps of at most 0.09 Hz every
  millisecond (a sweep of 92 Hz/s), carrier offset from +1419 Hz to -1194 Hz. At 1 Msym/s
  and time_scale 50: k = 1/500, 0.0073 Hz/s, 0.18 Hz steps, +568 Hz to -478 Hz.
  ``doppler="continuous"`` instead ramps at the compressed rate time_scale k r(t) inside each
  segment (no steps, a ramp time_scale / k times the physical one).
- phase noise is a stationary process at the bench rate (the scaled mask of the scenario's
  oscillator at the link's carrier, below 1e-4 R_b dropped) and does not depend on time_scale.

Levels: the noise is fixed (N0 per sample = signal_power x sps, i.e. Es/N0 = 0 dB for a unit
signal) and the signal is scaled by 10^(Es/N0 / 20), as a receiver sees a fading signal over
a constant noise floor; while the link is down the output is noise alone. ``signal_power``
defaults to 1 / sps, the DVB-S2 transmitter's mean power per sample.

Clock: :class:`modem.channel.clock_offset.ClockDrift`, one output sample per input sample
(stream offsets are kept); the stream is delayed by :attr:`ScenarioChannel.latency_samples`
and the accumulated timing slip is bounded by what the scenario needs at this time scale,
at most ``max_slip_samples`` (4096 by default: at 10 ppm the slip saturates after 200 s of
stream at 2 MS/s, and the clock offset then stops showing).

Speed: a chunk takes four passes, each a numba kernel over the whole chunk with the
segments' parameters as arrays (truth computed 1024 segments at a time): the phase noise
(:class:`~modem.channel.phase_noise.PhaseNoise`'s parallel filter), one rotation applying
gain, carrier offset and phase noise together, the clock interpolator with one offset per
segment, and the noise; no Python work per segment. About 6 times the speed of the first
implementation, which chained the blocks segment by segment (benchmarks/channel_throughput.py).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from modem.channel._block import Block, check_iq, check_real
from modem.channel.awgn import Awgn
from modem.channel.clock_offset import ClockDrift
from modem.channel.impairments import _NO_PN, _SPAN, CarrierOffset, _rotate_span
from modem.channel.phase_noise import PhaseNoise
from modem.channel.scenario import Scenario, load_scenario
from modem.scaling import BenchScaling, LinkSide

_BLOCK = 1024  # segments whose truth is computed together (aligned blocks: chunking cannot matter)
_GAIN, _FREQ, _RATE, _PPM = range(4)  # rows of the per-segment parameters
_PARAMS = 4


@nb.njit(cache=True, nogil=True)
def _rotate_segments(x, out, pn, bounds, gains, enter, freqs, rates, phase, freq, rate):  # pragma: no cover
    """Gain, carrier offset and phase noise per segment piece: samples bounds[i] .. bounds[i+1]-1.

    Piece i scales by gains[i]; where enter[i] the offset restarts at freqs[i] (cycles/sample)
    with ramp rates[i] (cycles/sample^2), the phase staying continuous. pn (rad, one per
    sample, or empty) adds to the carrier phase. Returns (phase, freq, rate) after the chunk.
    """
    work = np.empty(_SPAN)
    for i in range(gains.size):
        if enter[i]:
            freq = freqs[i]
            rate = rates[i]
        phase, freq = _rotate_span(x, out, bounds[i], bounds[i + 1], gains[i], pn, phase, freq, rate, work)
    return phase, freq, rate


class ScenarioChannel(Block):
    """Apply a scenario link's time-varying impairments to a complex baseband stream.

    Parameters
    ----------
    scenario : Scenario or str
        A :class:`Scenario` or a name/path for :func:`load_scenario`.
    link : str, optional
        Link of the scenario (default its first).
    symbol_rate_hz : float
        Bench symbol rate of the stream, symbols/s.
    samples_per_symbol : float
        Samples per symbol of the stream (> 0).
    time_scale : float
        Scenario seconds per stream second (> 0).
    seed : None, int, SeedSequence or Generator
        Seeds the noise and the phase noise (independent streams).
    start_s : float, optional
        Scenario time of the first sample (default the scenario's start).
    doppler : {"physical", "continuous"}
        Frequency ramp inside a segment (module notes).
    update_s : float
        Stream seconds between parameter updates (> 0).
    phase_noise, clock, noise : bool
        Apply the oscillator's phase noise / the clock offset / the receiver noise (without
        noise the output is the scaled, impaired signal alone: a truth reference).
    signal_power : float, optional
        Mean power per sample of the input (default 1 / samples_per_symbol).
    max_slip_samples : int
        Cap of the clock model's timing slip (and so of its delay), samples; the slip the
        scenario needs at this time scale is used when smaller.

    Attributes
    ----------
    k : float
        Bench over mission symbol rate.
    sample_rate_hz : float
    latency_samples : int
        Delay of the output against the input (the clock model's), samples.
    truth : dict
        The scenario's truth at the start of the last segment applied (:meth:`Scenario.at`
        keys, mission units) plus ``bench_cfo_hz`` and ``bench_rate_hz_per_s`` (read-only).
    """

    def __init__(self, scenario, link: str | None = None, symbol_rate_hz: float = 1e6,
                 samples_per_symbol: float = 2, time_scale: float = 1.0, seed=None,
                 start_s: float | None = None, doppler: str = "physical", update_s: float = 1e-3,
                 phase_noise: bool = True, clock: bool = True, noise: bool = True,
                 signal_power: float | None = None, max_slip_samples: int = 4096):
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.link = self.scenario.link(link)
        self.link_name = self.link.name
        self.symbol_rate_hz = check_real(symbol_rate_hz, "symbol_rate_hz", 1.0, 1e11, "symbols/s")
        self.samples_per_symbol = check_real(samples_per_symbol, "samples_per_symbol", 0.0, 1e4, lo_open=True)
        self.time_scale = check_real(time_scale, "time_scale", 0.0, 1e9, lo_open=True)
        if doppler not in ("physical", "continuous"):
            raise ValueError(f"doppler must be 'physical' or 'continuous'; got {doppler!r}")
        self.doppler = doppler
        self.sample_rate_hz = self.symbol_rate_hz * self.samples_per_symbol
        self.update_samples = max(1, int(round(check_real(update_s, "update_s", 0.0, 1e3, "s", lo_open=True)
                                               * self.sample_rate_hz)))
        self.start_s = (self.scenario.start_s if start_s is None
                        else check_real(start_s, "start_s", -1e10, 1e10, "s"))
        power = 1.0 / self.samples_per_symbol if signal_power is None else signal_power
        self.signal_power = check_real(power, "signal_power", 0.0, 1e30, lo_open=True)
        self.scaling = BenchScaling(LinkSide(self.link.carrier_hz, self.link.symbol_rate_hz),
                                    LinkSide(self.link.carrier_hz, self.symbol_rate_hz), radio="none")
        self.k = self.scaling.k
        ss = seed if isinstance(seed, np.random.SeedSequence) else (
            np.random.SeedSequence(seed) if not isinstance(seed, np.random.Generator) else None)
        if ss is None:  # a Generator: derive two child seeds from it
            ss = np.random.SeedSequence(int(seed.integers(0, 2**63)))
        s_noise, s_pn = ss.spawn(2)
        self.mask = self.scaling.phase_noise_mask(self.scenario.phase_noise_mask(self.link_name))
        self._pn = PhaseNoise(self.mask, self.sample_rate_hz, seed=s_pn) if phase_noise else None
        self._awgn = Awgn(0.0, samples_per_symbol=self.samples_per_symbol, signal_power=self.signal_power,
                          seed=s_noise) if noise else None
        self._cfo = CarrierOffset(0.0, self.sample_rate_hz)
        self._clock = None
        if clock:
            self._clock = ClockDrift(0.0, sample_rate_hz=self.sample_rate_hz,
                                     max_drift_samples=min(self._max_slip(), int(max_slip_samples)))
        self.latency_samples = self._clock.latency if self._clock else 0
        self.reset()

    def _max_slip(self) -> int:
        sc = self.scenario
        t = np.linspace(sc.start_s, sc.start_s + sc.duration_s, 4001)
        ppm = float(np.max(np.abs(self.scenario.sample(t, self.link_name).clock_ppm)))
        stream_s = sc.duration_s / self.time_scale
        return int(min(1 << 20, math.ceil(ppm * 1e-6 * stream_s * self.sample_rate_hz * 1.25) + 64))

    def reset(self) -> None:
        """Back to the state at construction (scenario time ``start_s``, same random streams)."""
        for b in (self._pn, self._awgn, self._cfo, self._clock):
            if b is not None:
                b.reset()
        self._t0 = self.start_s
        self._n = 0  # samples since t0
        self._seg = -1
        self._last = None
        self._cache = None

    def seek(self, t_s: float) -> None:
        """Continue at scenario time ``t_s`` (s): the next sample is at t_s, segments restart there."""
        self._t0 = check_real(t_s, "t_s", -1e10, 1e10, "s")
        self._n = 0
        self._seg = -1
        self._cache = None

    @property
    def scenario_time_s(self) -> float:
        """Scenario time of the next input sample, s."""
        return self._t0 + self.time_scale * self._n / self.sample_rate_hz

    def esn0_db_at(self, t_s) -> np.ndarray:
        """The scenario link's Es/N0 (dB, -inf while down) at scenario times."""
        return self.scenario.esn0_db(t_s, self.link_name)

    def truth_at(self, t_s: float) -> dict:
        """The scenario link's truth at one scenario time (:meth:`Scenario.at`)."""
        return self.scenario.at(t_s, self.link_name)

    def bench_cfo_hz(self, t_s) -> np.ndarray:
        """Carrier offset applied to the stream (bench Hz) at scenario times."""
        return self.k * self.scenario.sample(t_s, self.link_name).cfo_hz

    def _block(self, b: int):
        """Truth and kernel parameters of segments _BLOCK b .. _BLOCK (b + 1) - 1 (cached, aligned).

        Returns (truth, params): params (_PARAMS, _BLOCK) float64 rows: signal gain (linear),
        carrier offset at the segment start (cycles/sample), its ramp (cycles/sample^2),
        clock offset (ppm).
        """
        if self._cache is None or self._cache[0] != b:
            segs = np.arange(b * _BLOCK, (b + 1) * _BLOCK)
            times = self._t0 + self.time_scale * (segs * self.update_samples) / self.sample_rate_hz
            tr = self.scenario.sample(times, self.link_name)
            fs, k = self.sample_rate_hz, self.k
            rate = (k * k if self.doppler == "physical" else self.time_scale * k) * tr.cfo_rate_hz_per_s
            par = np.empty((_PARAMS, _BLOCK))
            par[_GAIN] = np.where(tr.visible, 10.0 ** (np.where(tr.visible, tr.esn0_db, 0.0) / 20.0), 0.0)
            par[_FREQ] = np.clip(k * tr.cfo_hz, -0.499 * fs, 0.499 * fs) / fs
            par[_RATE] = rate / fs**2
            par[_PPM] = np.clip(tr.clock_ppm, -1e5, 1e5)
            self._cache = (b, tr, par)
        return self._cache[1], self._cache[2]

    def _parameters(self, n: int):
        """Per segment piece of the next n samples: bounds (pieces + 1,), segment indices, parameters.

        Pieces are the parts of the chunk in one segment each (segments at multiples of
        ``update_samples`` from t0); the parameters are the :meth:`_block` rows per piece.
        """
        u = self.update_samples
        first, last = self._n // u, (self._n + n - 1) // u
        segs = np.arange(first, last + 1)
        bounds = np.empty(segs.size + 1, np.int64)
        bounds[:-1] = segs * u - self._n
        bounds[0] = 0
        bounds[-1] = n
        b0, b1 = first // _BLOCK, last // _BLOCK
        if b0 == b1:
            par = self._block(b0)[1][:, first - b0 * _BLOCK : last - b0 * _BLOCK + 1]
        else:
            par = np.concatenate([self._block(b)[1] for b in range(b0, b1 + 1)], axis=1)
            par = par[:, first - b0 * _BLOCK : last - b0 * _BLOCK + 1]
        return bounds, segs, np.ascontiguousarray(par)

    def __call__(self, x) -> np.ndarray:
        """Apply the channel to a chunk; returns as many samples (complex64)."""
        x = check_iq(x)
        n = x.size
        y = np.empty_like(x)
        if n == 0:
            return y
        bounds, segs, par = self._parameters(n)
        enter = segs != self._seg  # a segment starts in this piece (only the first can continue)
        pn = self._pn.generate(n) if self._pn is not None else _NO_PN
        c = self._cfo
        c._phase, c._freq, c._rate = _rotate_segments(
            x, y, pn, bounds, par[_GAIN], enter, par[_FREQ], par[_RATE], c._phase, c._freq, c._rate)
        if enter[-1]:
            s = int(segs[-1])
            self._seg = s
            self._last = (self._block(s // _BLOCK)[0], s % _BLOCK)
        if self._clock is not None:
            y = self._clock._process_segments(y, bounds, par[_PPM])
        if self._awgn is not None:
            out = np.empty_like(y)  # not in place: aliased arrays would keep the loop scalar
            self._awgn._process(y, out)
            y = out
        self._n += n
        return y

    @property
    def truth(self) -> dict:
        """The scenario's truth at the start of the last segment applied (see the class notes)."""
        if self._last is None:
            return {}
        tr, j = self._last
        out = {key: (bool(v[j]) if key == "visible" else float(v[j]) if np.ndim(v) else float(v))
               for key, v in tr.__dict__.items()}
        k, half = self.k, 0.499 * self.sample_rate_hz
        r = out["cfo_rate_hz_per_s"]
        out.update(bench_cfo_hz=float(np.clip(k * out["cfo_hz"], -half, half)),
                   bench_rate_hz_per_s=k * k * r if self.doppler == "physical" else self.time_scale * k * r)
        return out

    def flush(self) -> np.ndarray:
        """Nothing is held back (one sample out per sample in; the clock model's delay stays)."""
        return np.zeros(0, dtype=np.complex64)
