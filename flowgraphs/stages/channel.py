"""Channel stage: the propagation between transmitter and receiver, on the IQ stream.

Models
    ``awgn``: white Gaussian noise at ``esn0_db`` (:class:`modem.channel.Awgn`, with the DVB-S2
    transmitter's convention of 1/sps signal power per sample), or following ``esn0_profile``
    (piecewise linear in scenario time, set per chunk), optionally after a carrier offset
    ``cfo_hz`` and oscillator phase noise ``phase_noise`` (a preset name).
    ``scenario``: the flowgraph's ``[link] scenario`` through :class:`modem.channel.ScenarioChannel`,
    Es/N0, carrier offset, phase noise and clock offset following scenario time (see its notes
    for which effects follow the compressed clock), the link's mission symbol rate scaled to the
    stream's.
    ``none``: samples pass unchanged.
Time
    The stage keeps the stream offsets of its input (the models here are one sample out per
    sample in), so scenario time is the same number in the transmitter, channel and receiver,
    and a restarted channel picks up the scenario where the stream is. Scenario time is the
    run's timebase (:mod:`flowgraphs.timebase`: ``[link] start_s`` at stream sample 0), an
    absolute scenario time: the scenario model starts there (not at the scenario's own
    ``start_s``) and seeks to the timebase's time of the chunk after any discontinuity in the
    stream offsets (a gap, a restarted stream).
Truth
    For every chunk it publishes ``chan.truth``: stream offset, length, scenario time and the
    true Es/N0 (dB) at the chunk's start; the monitor and the genie yardstick use it. While the
    link is down (outside a pass) the Es/N0 is null, never -inf (not JSON); readers treat null
    as "no link". With the scenario model the values are the ones the model applied
    (:attr:`modem.channel.ScenarioChannel.truth` of the segment holding the sample before the
    chunk: the chunk's first segment, or the one ``update_s`` before it; no second scenario
    evaluation per chunk, except after a seek), plus the carrier offset (bench Hz) and the clock
    offset (ppm).
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from flowgraphs import wire
from flowgraphs.stage import ConfigError, Param, Port, Stage
from flowgraphs.timebase import timebase


class Channel(Stage):
    """Channel between tx and rx; see the module notes."""

    TYPE = "channel"
    PARAMS = {
        "model": Param("awgn", str, "channel model", choices=("awgn", "scenario", "none")),
        "esn0_db": Param(10.0, float, "Es/N0 of the awgn model", lo=-50.0, hi=100.0, unit="dB"),
        "esn0_profile": Param(
            [],
            list,
            "awgn model: [[t_s, Es/N0 dB], ...] interpolated in scenario time (empty: the constant esn0_db)",
        ),
        "cfo_hz": Param(0.0, float, "carrier frequency offset of the awgn model", lo=-1e9, hi=1e9, unit="Hz"),
        "phase_noise": Param("", str, "phase-noise preset of the awgn model ('' for none)"),
        "seed": Param(-1, int, "noise seed (-1: from the link seed and the stage name)", lo=-1),
        "update_s": Param(
            1e-3, float, "scenario model: stream seconds between parameter updates", lo=1e-6, hi=1.0, unit="s"
        ),
        "spectrum_every_s": Param(
            60.0, float, "scenario seconds between published spectra (0: none)", lo=0.0, unit="s"
        ),
    }
    INPUTS = {"in": Port("iq", "transmitted samples")}
    OUTPUTS = {"out": Port("iq", "received samples")}

    @staticmethod
    def check_params(params: dict, link: dict) -> None:
        """The Es/N0 profile must be [[t, dB], ...] with increasing times."""
        prof = params["esn0_profile"]
        ok = all(
            isinstance(r, list) and len(r) == 2 and all(isinstance(v, int | float) for v in r) for r in prof
        )
        if not ok or any(b[0] <= a[0] for a, b in zip(prof, prof[1:], strict=False)):
            raise ConfigError("key 'esn0_profile': must be [[t_s, esn0_db], ...] with increasing times")

    def setup(self) -> None:
        """Build the channel model."""
        self.tb = timebase(self.spec.link)
        sps = self.link.samples_per_symbol
        fs = self.tb.sample_rate_hz
        base = self.p.seed if self.p.seed >= 0 else self.link.seed
        seed = np.random.SeedSequence([base, zlib.crc32(self.name.encode()), self.epoch])
        self.scenario_channel = None
        self.block = None
        if self.p.model == "awgn":
            from modem.channel.awgn import Awgn

            blocks = []
            if self.p.cfo_hz:
                from modem.channel.impairments import CarrierOffset

                blocks.append(CarrierOffset(self.p.cfo_hz, fs))
            if self.p.phase_noise:
                from modem.channel.phase_noise import PhaseNoise

                blocks.append(PhaseNoise.preset(self.p.phase_noise, fs, seed=seed.spawn(1)[0]))
            self.awgn = Awgn(self.p.esn0_db, samples_per_symbol=sps, signal_power=1.0 / sps, seed=seed)
            blocks.append(self.awgn)
            self.blocks = blocks
        elif self.p.model == "scenario":
            from modem.channel import ScenarioChannel, load_scenario

            if not self.link.scenario:
                raise ConfigError(f"stage {self.name!r}: model 'scenario' needs [link] scenario")
            sc = load_scenario(self.link.scenario)
            self.scenario_channel = ScenarioChannel(
                sc,
                link=self.link.scenario_link or None,
                symbol_rate_hz=self.link.symbol_rate_hz,
                samples_per_symbol=sps,
                time_scale=self.link.time_scale,
                seed=seed,
                start_s=self.tb.t_s(0),  # the run's timebase, not the scenario's own start
                update_s=self.p.update_s,
            )
            self.next_offset: int | None = None  # stream offset the scenario model expects next
        self.next_spectrum = None
        self.fresh_truth = False  # the scenario model's truth is that of the sample before the next chunk
        self.counters.update(samples=0, chunks=0)

    def _truth(self, offset: int) -> dict:
        """The channel's truth at stream ``offset`` (a chunk's start): ``esn0_db`` (None: link down).

        The scenario model must already be positioned at ``offset`` (:meth:`_position`).
        """
        if self.p.model == "awgn":
            if self.p.esn0_profile:
                t, e = zip(*self.p.esn0_profile, strict=True)
                return {"esn0_db": float(np.interp(self.tb.t_s(offset), t, e))}
            return {"esn0_db": self.p.esn0_db}
        if self.p.model == "none":
            return {"esn0_db": 100.0}  # no noise: "infinite" Es/N0, kept finite for JSON
        sc = self.scenario_channel
        # the segment the model applied last holds the sample before ``offset``: the chunk's
        # first sample is in it, or in the next segment (one update_s later); after a seek the
        # model has applied nothing there yet: one scenario evaluation
        tr = sc.truth if self.fresh_truth else sc.truth_at(self.tb.t_s(offset))
        e = tr.get("esn0_db", -math.inf)
        return {
            "esn0_db": float(e) if tr.get("visible", True) and math.isfinite(e) else None,
            "cfo_hz": tr.get("bench_cfo_hz", sc.k * tr.get("cfo_hz", 0.0)),
            "clock_ppm": tr.get("clock_ppm"),
        }

    def _position(self, offset: int, gap: int) -> None:
        """Seek the scenario model to the timebase's time of ``offset`` after a discontinuity."""
        if self.next_offset is None or gap or offset != self.next_offset:
            self.scenario_channel.seek(self.tb.t_s(offset))
            self.fresh_truth = False

    def on_iq(self, port: str, chunk: wire.IqChunk, gap: int) -> None:
        """Apply the channel to one chunk and pass it on with the same stream offset."""
        x = chunk.samples
        if self.p.model == "scenario":
            self._position(chunk.offset, gap)
        truth = self._truth(chunk.offset)
        esn0 = truth["esn0_db"]
        if self.p.model == "awgn":
            self.awgn.esn0_db = esn0
            y = x
            for b in self.blocks:
                y = b(y)
        elif self.p.model == "scenario":
            y = self.scenario_channel(x)
            self.next_offset = chunk.offset + x.size
            self.fresh_truth = True
        else:
            y = np.array(x)
        self.set_out_offset("out", chunk.offset)
        tags = [t for t in chunk.tags]
        if not self.send_iq("out", y, tags):
            return
        self.counters["samples"] += x.size
        self.counters["chunks"] += 1
        t = self.tb.t_s(chunk.offset)
        truth.update(offset=chunk.offset, samples=int(x.size), t_s=t)
        if self.scenario_channel is not None:
            truth["latency"] = int(self.scenario_channel.latency_samples)
        self.publish("chan.truth", truth)
        every = self.p.spectrum_every_s
        if every > 0 and x.size >= 4096 and (self.next_spectrum is None or t >= self.next_spectrum):
            self.next_spectrum = t + every
            self._publish_spectrum(t, esn0, x, y)

    def _publish_spectrum(self, t: float, esn0: float, x: np.ndarray, y: np.ndarray) -> None:
        """Welch PSDs of the chunk before and after the channel, 0 dB = transmitted in-band mean."""
        from scipy.signal import welch

        fs = self.tb.sample_rate_hz
        f, px = welch(x, fs=fs, nperseg=512, return_onesided=False, detrend=False)
        _, py = welch(y, fs=fs, nperseg=512, return_onesided=False, detrend=False)
        f, px, py = np.fft.fftshift(f), np.fft.fftshift(px), np.fft.fftshift(py)
        ref = max(float(np.mean(px[np.abs(f) < 0.4 * self.link.symbol_rate_hz])), 1e-30)  # 0: no signal

        def db(p):
            return np.round(10 * np.log10(np.maximum(p / ref, 1e-12)), 2).tolist()

        self.publish(
            "chan.spectrum",
            {"t_s": t, "esn0_db": esn0, "f_hz": f.tolist(), "in_db": db(px), "out_db": db(py)},
        )

    def summary(self) -> dict:
        """Samples carried, and the channel's delay (samples) when it has one."""
        out = dict(self.counters)
        if self.scenario_channel is not None:
            out["latency_samples"] = int(self.scenario_channel.latency_samples)
        return out


STAGE = Channel
