"""Regenerate the recordings shipped in captures/ (deterministic: fixed seeds).

    .venv/bin/python captures/make_captures.py            # both, into captures/
    .venv/bin/python captures/make_captures.py --only grdtv --out /tmp/caps

Both go through the virtual Pluto (:mod:`hw.virtual_pluto`) with pyadi-iio and libiio,
exactly as a bench recording through a PlutoSDR would (TX buffers, DAC, channel, ADC, RX
buffers), and are stored as the Pluto's 12-bit samples in ci16_le, with frame annotations
from decoding them:

``grdtv_8psk35_short``
    GNU Radio's gr-dtv DVB-S2 transmitter (``captures/grdtv_shaped_tx.py``, run by
    ``/usr/bin/python3``) with GNU Radio's RRC filter: 12 short 8PSK 3/5 PLFRAMEs with pilots
    carrying MPEG-TS packets (:func:`ts_payload`), AWGN at Es/N0 12 dB, 2 MS/s at 2.4 GHz.
``acm_storm_pass``
    marslink's transmitter running ACM over a pass: each short PLFRAME takes the most efficient
    MODCOD whose measured threshold plus 1 dB is below the channel's true Es/N0 at that moment
    (:mod:`modem.acm`; below every threshold a dummy frame goes out); the Es/N0 follows the
    ``storm_pass`` scenario of :mod:`modem.channel` when it is available (else the documented
    profile :func:`fallback_esn0`), the pass compressed into the recording. Generic-stream
    payload :func:`gs_payload`. 2 MS/s at 2.4 GHz.

The tests (tests/test_captures.py) replay both and compare the decoded bytes with the payload
generators here.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SAMPLE_RATE = 2_000_000
CENTER = 2.4e9
SPS = 2
TX_SCALE = 0.5  # unit-scale backoff before the Pluto's +-2^14 convention
GRDTV = dict(name="grdtv_8psk35_short", frames=12, esn0_db=12.0, packets=120, seed=2026)
PAST_SET = 1.06  # the recording runs on a little after the pass ends: the link drops (dummy frames)
ACM = dict(name="acm_storm_pass", frames=36, margin_db=1.0, seed=4242, pass_s=600.0)


def ts_payload(packets: int, seed: int) -> bytes:
    """MPEG-TS packets: sync 0x47, PID 0x0100, continuity counter, 184 random bytes (seeded)."""
    rng = np.random.default_rng(seed)
    out = bytearray()
    for i in range(packets):
        out += (
            bytes([0x47, 0x01, 0x00, 0x10 | (i & 0x0F)]) + rng.integers(0, 256, 184, dtype=np.uint8).tobytes()
        )
    return bytes(out)


def gs_payload(nbytes: int, seed: int) -> bytes:
    """Generic-stream bytes: a seeded random sequence."""
    return np.random.default_rng(seed).integers(0, 256, nbytes, dtype=np.uint8).tobytes()


def fallback_esn0(t_s: np.ndarray, pass_s: float) -> np.ndarray:
    """Es/N0 (dB) over a pass when no scenario is available.

    Elevation-driven rise and fall (-4..12 dB) with a dust-storm fade of 6 dB centred at 60 %
    of the pass.
    """
    x = np.clip(np.asarray(t_s) / pass_s, 0, 1)
    return -4 + 16 * np.sin(np.pi * x) - 6 * np.exp(-(((x - 0.6) / 0.08) ** 2))


def esn0_track(fractions: np.ndarray, pass_s: float) -> tuple[np.ndarray, str, float]:
    """(Es/N0 in dB at fractions 0..1 of a pass, where it comes from, pass length in s).

    The storm_pass scenario's Ka link when :mod:`modem.channel` has scenarios, else
    :func:`fallback_esn0` over ``pass_s``.
    """
    try:
        try:
            from modem.channel import load_scenario
        except ImportError:
            from modem.channel.scenario import load_scenario
    except ImportError:
        return fallback_esn0(np.asarray(fractions) * pass_s, pass_s), "fallback profile", pass_s
    scn = load_scenario("storm_pass")
    span = scn.duration_s * PAST_SET
    t = scn.start_s + np.asarray(fractions) * span
    esn0 = np.asarray(scn.sample(t, link="ka").esn0_db, dtype=float)
    return esn0, "modem.channel scenario storm_pass, ka link, until shortly after set", float(span)


class ScheduledAwgn:
    """AWGN whose Es/N0 changes at given sample indices (a channel block for the virtual Pluto)."""

    def __init__(self, starts, esn0_db, signal_power: float, seed: int):
        from modem.channel import Awgn

        self.starts = np.asarray(starts, dtype=np.int64)
        self.esn0 = np.asarray(esn0_db, dtype=float)
        self.awgn = Awgn(float(self.esn0[0]), samples_per_symbol=SPS, signal_power=signal_power, seed=seed)
        self.pos = 0

    def __call__(self, x):
        """Add noise to a chunk, switching Es/N0 at the scheduled samples."""
        out = np.empty_like(x)
        done = 0
        while done < x.size:
            k = int(np.searchsorted(self.starts, self.pos, side="right")) - 1
            nxt = self.starts[k + 1] if k + 1 < self.starts.size else self.pos + x.size
            n = int(min(x.size - done, nxt - self.pos))
            self.awgn.esn0_db = float(self.esn0[max(k, 0)])
            out[done : done + n] = self.awgn(x[done : done + n])
            done += n
            self.pos += n
        return out

    def reset(self):
        """Back to the first sample."""
        self.awgn.reset()
        self.pos = 0


def through_virtual_pluto(iq: np.ndarray, channel) -> np.ndarray:
    """Send ``iq`` (unit scale) through a virtual Pluto with pyadi-iio; the RX samples aligned to it."""
    from hw.pluto import Pluto
    from hw.virtual_pluto import VirtualPluto

    with VirtualPluto(port=0, channel=(lambda rate: channel) if channel is not None else None) as vp:
        with Pluto(
            vp.uri,
            center_freq_hz=CENTER,
            sample_rate_hz=SAMPLE_RATE,
            rx_gain_mode="manual",
            rx_gain_db=46,
            tx_gain_db=0,
            buffer_size=1 << 15,
            on_gap="raise",
        ) as radio:
            radio.tx(iq * TX_SCALE)
            radio.tx_flush()
            rx = radio.rx(iq.size + (1 << 15))
    n = 1 << int(np.ceil(np.log2(rx.size + iq.size)))
    lag = int(np.argmax(np.abs(np.fft.ifft(np.fft.fft(rx, n) * np.conj(np.fft.fft(iq, n)))[: rx.size])))
    return rx[lag : lag + iq.size]


def _write(
    name: str,
    out: Path,
    rx: np.ndarray,
    cfg,
    payload: bytes,
    description: str,
    hardware: str,
    truth: list[tuple[int, float]] | None = None,
) -> Path:
    """Decode ``rx``, check it, write it with frame annotations.

    ``truth``: (first sample, true Es/N0 dB or -inf while the link is down) of every frame sent.
    Every frame must be delivered, except that frames sent while the link was down may be lost.
    """
    from hw.capture_decode import link_fields, replay_decode
    from hw.captures import CaptureWriter, write_capture

    stem = out / name
    with tempfile.TemporaryDirectory() as tmp:
        write_capture(
            Path(tmp) / "probe",
            rx,
            SAMPLE_RATE,
            CENTER,
            datatype="ci16_le",
            extra={"dvbs2": link_fields(cfg)},
        )
        result = replay_decode(Path(tmp) / "probe")
    starts = np.array([t[0] for t in truth]) if truth else None
    down_from = min((t[0] for t in truth if not np.isfinite(t[1])), default=None) if truth else None

    def true_esn0(r):
        if starts is None:
            return None
        j = int(np.searchsorted(starts, r.start * cfg.sps, side="right")) - 1
        return truth[max(j, 0)][1] if j >= 0 and starts[j] == r.start * cfg.sps else None

    excused = [
        r for r in result.reports if not r.ok and down_from is not None and r.start * cfg.sps >= down_from
    ]
    if result.data != payload[: len(result.data)] or result.frames_lost > len(excused):
        raise SystemExit(f"{name}: the recording does not decode to its payload; not written")
    delivered = result.data
    with CaptureWriter(
        stem,
        SAMPLE_RATE,
        CENTER,
        datatype="ci16_le",
        hardware=hardware,
        description=description,
        overwrite=True,
        datetime="2026-11-22T00:00:00Z",
        extra={
            "dvbs2": link_fields(cfg),
            "payload_bytes": len(delivered),
            "payload_sha256": hashlib.sha256(delivered).hexdigest(),
        },
    ) as w:
        w.write(rx)
        for r in result.reports:
            extra = {}
            if truth is not None:
                t = true_esn0(r)
                extra["true_esn0_db"] = None if t is None or not np.isfinite(t) else round(float(t), 2)
            esn0 = round(float(r.esn0_db), 2) if np.isfinite(r.esn0_db) else None
            w.annotate(
                r.start * cfg.sps,
                r.symbols * cfg.sps,
                label=r.name,
                modcod=r.name,
                crc_ok=bool(r.crc_ok),
                esn0_db=esn0,
                frame=int(r.index),
                **extra,
            )
    print(
        f"{stem}.sigmf-*: {rx.size} samples, {len(result.reports)} frames "
        f"({len(excused)} lost after the link went down), {len(delivered)} bytes"
    )
    return stem


def make_grdtv(out: Path) -> Path:
    """The gr-dtv recording (see the module docstring)."""
    from hw.virtual_channel import ChannelSpec
    from modem.dvbs2.link import LinkConfig

    p = GRDTV
    payload = ts_payload(p["packets"], p["seed"])
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.ts", Path(tmp) / "out.cf32"
        src.write_bytes(payload)
        cmd = [
            "/usr/bin/python3",
            str(HERE / "grdtv_shaped_tx.py"),
            "--frame",
            "short",
            "--rate",
            "3/5",
            "--modulation",
            "8PSK",
            "--pilots",
            "on",
            "--frames",
            str(p["frames"]),
            str(src),
            str(dst),
        ]
        subprocess.run(cmd, check=True)
        iq = np.fromfile(dst, dtype=np.complex64)
    iq = iq / np.sqrt(np.mean(np.abs(iq) ** 2)) * np.sqrt(0.5)  # unit symbol energy at 2 samples/symbol
    power = float(np.mean(np.abs(iq * TX_SCALE * 0.5) ** 2))  # at DAC full scale
    spec = ChannelSpec(esn0_db=p["esn0_db"], samples_per_symbol=SPS, signal_power=power, seed=p["seed"])
    rx = through_virtual_pluto(iq, spec.build(SAMPLE_RATE))
    cfg = LinkConfig(frame="short", pilots=True, stream="ts")
    return _write(
        p["name"],
        out,
        rx,
        cfg,
        payload,
        description=f"GNU Radio gr-dtv DVB-S2, {p['frames']} short 8PSK 3/5 PLFRAMEs with pilots, MPEG-TS "
        f"(ts_payload({p['packets']}, {p['seed']})), GNU Radio RRC 0.35 at 2 samples/symbol, AWGN Es/N0 "
        f"{p['esn0_db']:g} dB (seed {p['seed']}), through the virtual Pluto",
        hardware="virtual ADALM-PLUTO (marslink hw.virtual_pluto) via pyadi-iio/libiio 0.24; "
        "TX: GNU Radio 3.10 gr-dtv",
    )


def make_acm(out: Path) -> Path:
    """The ACM storm-pass recording (see the module docstring)."""
    from modem.acm import best_option, modcod_ladder
    from modem.dvbs2.link import LinkConfig, Transmitter
    from modem.dvbs2.modcod import DUMMY_PLFRAME_SYMBOLS

    p = ACM
    cfg = LinkConfig(frame="short", pilots=True, stream="gs")
    ladder = modcod_ladder("short", True)
    tx = Transmitter(cfg)
    data = gs_payload(200_000, p["seed"])
    tx.push(data)
    # the pass compressed uniformly into the recording: each frame gets the Es/N0 at the scenario
    # time of its middle; frame lengths depend on the MODCODs chosen, so iterate to a fixed point
    lengths = np.full(p["frames"], 8000.0)  # symbols
    for _ in range(20):
        mids = (np.cumsum(lengths) - lengths / 2) / lengths.sum()
        esn0s, source, pass_s = esn0_track(mids, p["pass_s"])
        opts = [best_option(ladder, float(e), p["margin_db"]) for e in esn0s]
        new = np.array(
            [o.plframe_symbols if o is not None else DUMMY_PLFRAME_SYMBOLS for o in opts], dtype=float
        )
        if np.array_equal(new, lengths):
            break
        lengths = new
    symbols = [tx.frames([o.name]) if o is not None else tx.plframer.dummy() for o in opts]
    assert [s.size for s in symbols] == lengths.astype(int).tolist()
    starts = (np.concatenate([[0], np.cumsum(lengths)[:-1]]) * SPS).astype(int)
    truth = list(zip(starts.tolist(), [float(e) for e in esn0s], strict=True))
    esn0s = [float(e) if np.isfinite(e) else -30.0 for e in esn0s]  # link down: noise only
    time_scale = pass_s / (lengths.sum() * SPS / SAMPLE_RATE)
    iq = np.concatenate([tx.modulate(np.concatenate(symbols)), tx.modulate_flush()])
    power = float(np.mean(np.abs(iq * TX_SCALE * 0.5) ** 2))
    channel = ScheduledAwgn(starts, esn0s, power, p["seed"])
    rx = through_virtual_pluto(iq, channel)
    sent = data[: tx.bytes_in - tx.pending_bytes]
    return _write(
        p["name"],
        out,
        rx,
        cfg,
        sent,
        description=f"marslink DVB-S2 ACM over a Mars storm pass ({source}), {p['frames']} short PLFRAMEs, "
        f"MODCOD = best measured threshold + {p['margin_db']:g} dB below the true Es/N0 (dummy frames in "
        f"outage), AWGN per frame (seed {p['seed']}), pass of {pass_s:.0f} s compressed "
        f"{time_scale:.0f}x, gs_payload(200000, {p['seed']}), through the virtual Pluto",
        hardware="virtual ADALM-PLUTO (marslink hw.virtual_pluto) via pyadi-iio/libiio 0.24",
        truth=truth,
    )


def main(argv=None) -> int:
    """Make the recordings; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=HERE, help="output folder (default: captures/)")
    ap.add_argument("--only", choices=["grdtv", "acm"], help="make one recording")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.only in (None, "grdtv"):
        make_grdtv(a.out)
    if a.only in (None, "acm"):
        make_acm(a.out)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
