"""Plots of a recording: spectrum, waterfall, constellation after sync, eye diagram (PNG files).

:func:`plot_capture` (behind ``marslink plot FILE``) writes four PNGs next to each other:

- ``STEM_spectrum.png``: Welch power spectral density (dB, normalized to the peak) against
  frequency (the recording's center frequency in the title);
- ``STEM_waterfall.png``: short-time spectra over the recording;
- ``STEM_constellation.png``: DVB-S2 data symbols after synchronization: the recording is
  decoded (:mod:`hw.capture_decode`) to find each PLFRAME, the matched-filter output is
  sampled on the receiver's symbol grid, each frame's complex gain is estimated on its
  PLHEADER and removed, the PL scrambling and the pilots are taken out; one color per MODCOD;
- ``STEM_eye.png``: the in-phase matched-filter output, gain-corrected, interpolated 8x and
  overlaid two symbols at a time.

Where no DVB-S2 frame is found, the last two show the raw matched-filter output and say so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.captures import Capture, open_capture

MAX_PLOT_SAMPLES = 1 << 21  #: samples plotted at most (the first ones)
MAX_POINTS = 20000  #: constellation points drawn at most


def _synced_symbols(cap: Capture, x: np.ndarray):
    """(symbols by MODCOD, matched-filter output (gain-corrected), sps, index of symbol 0 in it, note)."""
    from hw.capture_decode import link_config, replay_decode
    from modem.dvbs2.modcod import frame_spec
    from modem.dvbs2.plframe import descramble, plheader, remove_pilots
    from modem.dvbs2.pulse import MatchedFilter

    try:
        cfg = link_config(cap)
        result = replay_decode(cap, config=cfg)
    except (ValueError, RuntimeError) as e:
        return {}, None, 2, 0, f"not decoded: {e}"
    sps = cfg.sps
    mf = MatchedFilter(cfg.rolloff, sps, cfg.span)
    y = np.concatenate([mf(x), mf.flush()])
    sym = y[cfg.span * sps :: sps]  # the receiver's symbol grid for ideal timing
    gains = np.ones(sym.size, dtype=np.complex64)
    groups: dict[str, list[np.ndarray]] = {}
    for r in result.reports:
        if r.symbols <= 0 or r.start + r.symbols > sym.size:
            continue
        frame = sym[r.start : r.start + r.symbols]
        ref = plheader(r.modcod, r.frame, r.pilots)
        g = np.vdot(ref, frame[:90]) / 90.0
        if abs(g) == 0:
            continue
        gains[r.start : r.start + r.symbols] = 1 / g
        if r.modcod == 0:
            continue
        body = descramble(frame[90:] / g, cfg.gold_code)
        spec = frame_spec(r.modcod, r.frame, r.pilots)
        payload, _ = remove_pilots(body, spec.slots) if r.pilots else (body, None)
        groups.setdefault(r.name, []).append(np.asarray(payload))
    symbols = {k: np.concatenate(v) for k, v in groups.items()}
    note = f"{len(result.reports)} PLFRAMEs, {result.frames_ok} decoded"
    mf_corr = y.copy()
    n = min(gains.size, (y.size - cfg.span * sps) // sps)
    per_sample = np.repeat(gains[:n], sps)
    start = cfg.span * sps - sps // 2
    mf_corr[start : start + per_sample.size] *= per_sample[: max(0, y.size - start)]
    return symbols, (mf_corr if symbols else y), sps, cfg.span * sps, note


def plot_capture(path, out_dir) -> list[Path]:
    """Write the four PNG plots of a recording; returns their paths.

    Parameters
    ----------
    path : str or Path
        The recording (stem, ``.sigmf-meta`` or ``.sigmf-data``).
    out_dir : str or Path
        Folder for the PNGs (created if missing).

    Raises
    ------
    hw.captures.CaptureError
        The recording is unusable (see :func:`hw.captures.open_capture`).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import signal

    cap = open_capture(path)
    info = cap.info
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = info.meta_path.name[: -len(".sigmf-meta")]
    n = min(len(cap), MAX_PLOT_SAMPLES)
    x = cap.read(0, n)
    fs = info.sample_rate_hz
    fc = info.center_freq_hz
    where = f"{stem} ({fs / 1e6:g} MS/s" + (f", {fc / 1e6:g} MHz)" if fc else ")")
    paths = []

    nper = min(1024, max(16, n // 8))
    f, pxx = signal.welch(x, fs=fs, nperseg=nper, return_onesided=False, detrend=False)
    order = np.argsort(f)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ref = pxx.max() if pxx.max() > 0 else 1.0
    ax.plot(f[order] / 1e3, 10 * np.log10(np.maximum(pxx[order] / ref, 1e-15)))
    ax.set(xlabel="frequency offset (kHz)", ylabel="PSD (dB, peak = 0)", title=f"spectrum: {where}")
    ax.grid(True, alpha=0.3)
    paths.append(_save(fig, out / f"{stem}_spectrum.png"))

    f2, t2, sxx = signal.spectrogram(
        x, fs=fs, nperseg=nper, noverlap=nper // 2, return_onesided=False, detrend=False, mode="psd"
    )
    sxx = np.fft.fftshift(sxx, axes=0)
    f2 = np.fft.fftshift(f2)
    db = 10 * np.log10(np.maximum(sxx / max(sxx.max(), 1e-30), 1e-12))
    fig, ax = plt.subplots(figsize=(8, 5))
    im = ax.imshow(
        db.T,
        aspect="auto",
        origin="lower",
        vmin=-60,
        vmax=0,
        cmap="viridis",
        extent=(f2[0] / 1e3, f2[-1] / 1e3, t2[0] * 1e3, t2[-1] * 1e3),
    )
    fig.colorbar(im, ax=ax, label="dB (peak = 0)")
    ax.set(xlabel="frequency offset (kHz)", ylabel="time (ms)", title=f"waterfall: {where}")
    paths.append(_save(fig, out / f"{stem}_waterfall.png"))

    symbols, mf, sps, offset, note = _synced_symbols(cap, x)
    fig, ax = plt.subplots(figsize=(6, 6))
    if symbols:
        for name, s in symbols.items():
            pick = s[:: max(1, s.size * len(symbols) // MAX_POINTS)]
            ax.plot(pick.real, pick.imag, ".", ms=2, alpha=0.5, label=f"{name} ({s.size} symbols)")
        ax.legend(loc="upper right", fontsize=8, markerscale=4)
        title = f"constellation after sync: {where}\n{note}"
    else:
        raw = mf[:: max(1, sps)] if mf is not None else x[::2]
        raw = raw / (np.sqrt(np.mean(np.abs(raw) ** 2)) or 1.0)
        pick = raw[:: max(1, raw.size // MAX_POINTS)]
        ax.plot(pick.real, pick.imag, ".", ms=2, alpha=0.5)
        title = f"matched-filter output, no frame sync ({note}): {where}"
    ax.set(xlabel="I", ylabel="Q", title=title, aspect="equal")
    ax.grid(True, alpha=0.3)
    paths.append(_save(fig, out / f"{stem}_constellation.png"))

    fig, ax = plt.subplots(figsize=(8, 4.5))
    m = mf if mf is not None else x
    seg = m[: min(m.size, offset + 4000 * sps)]
    up = 8
    fine = signal.resample_poly(seg.real, up, 1) if seg.size > 8 else seg.real
    width = 2 * sps * up
    start = max(0, offset - sps) * up  # symbol instants in the middle and at the ends of each trace
    traces = (fine.size - start) // width
    if traces > 0:
        t = np.arange(width) / (sps * up)
        rows = fine[start : start + traces * width].reshape(traces, width)
        rows = rows[5:] if traces > 10 else rows
        for row in rows[:400]:
            ax.plot(t, row, color="C0", alpha=0.08, lw=0.8)
    ax.set(
        xlabel="time (symbols)",
        ylabel="I (matched filter)",
        title=f"eye diagram ({'after sync' if symbols else 'no frame sync'}): {where}",
    )
    ax.grid(True, alpha=0.3)
    paths.append(_save(fig, out / f"{stem}_eye.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
