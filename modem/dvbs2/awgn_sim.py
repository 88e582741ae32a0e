"""Frame-error simulation of one DVB-S2 MODCOD on AWGN with ideal synchronization.

The chain is the standard's FEC and mapping, with nothing between mapper and demapper but
complex white Gaussian noise: random BBFRAME bits -> BCH -> LDPC -> bit interleaver -> mapper
(unit average symbol energy) -> + noise of variance N0 = 10^(-Es/N0 / 10) per complex symbol
-> max-log demapper told the true N0 -> deinterleaver -> LDPC (int8 SIMD decoder) -> BCH.
No PL framing, pilots or scrambling: they change neither Es/N0 per data symbol nor the
error rate on this channel.

A frame is in error when the BCH decoder's message differs from the sent BBFRAME. The
counts also say how each frame ended in the LDPC decoder, so that undetected LDPC errors
(a wrong codeword that satisfies every check) are told apart from frames the LDPC decoder
gave up on.

Used by ``benchmarks/thresholds.py`` (the MODCOD threshold table) and by
``tests/test_modcod_thresholds.py`` (its regression test); pure numpy in and out.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from modem.dvbs2.mapping import deinterleave, demap_maxlog, interleave, map_bits
from modem.dvbs2.modcod import Modcod, frame_spec, modcod
from modem.fec.bch import dvbs2_bch
from modem.fec.dvbs2_ldpc import dvbs2_code
from modem.fec.ldpc_decoder import LdpcDecoder

#: Maximum layered LDPC iterations of :func:`make_decoder` (the Receiver's default).
MAX_ITER = 50
#: Frames per encode/decode call: enough to keep the decoder's 64 lanes per worker busy, small
#: enough for memory (a normal frame's LLRs are 259 kB as float32).
CHUNK = {"normal": 256, "short": 1024}

#: Keys of the dict returned by :func:`simulate_frames`.
COUNT_KEYS = (
    "frames",
    "frame_errors",
    "bit_errors",
    "ldpc_unconverged",
    "ldpc_undetected",
    "ldpc_bit_errors",
    "bch_failed",
    "bch_undetected",
    "iterations",
)


def make_decoder(mc, frame: str = "normal", max_iter: int = MAX_ITER, workers: int = 1, **kwargs):
    """The int8 SIMD LDPC decoder for a MODCOD's code (per-code tuned settings unless overridden).

    Parameters
    ----------
    mc : Modcod, int or str
        MODCOD (see :func:`modem.dvbs2.modcod.modcod`).
    frame : {"normal", "short"}
    max_iter : int
        Maximum layered iterations per frame.
    workers : int
        Decoder threads.
    **kwargs
        Passed to :class:`~modem.fec.ldpc_decoder.LdpcDecoder` (``scale``, ``offset``, ``limit``).

    Returns
    -------
    LdpcDecoder
    """
    m = modcod(mc)
    return LdpcDecoder(dvbs2_code(frame, m.rate), max_iter=max_iter, workers=workers, **kwargs)


@cache
def _code_pair(frame: str, rate: str):
    return dvbs2_bch(frame, rate), dvbs2_code(frame, rate)


def esn0_to_n0(esn0_db: float) -> float:
    """Complex noise variance N0 per symbol for unit-energy symbols at Es/N0 (dB)."""
    return float(10.0 ** (-float(esn0_db) / 10.0))


def channel_llr(m: Modcod, symbols: np.ndarray, esn0_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add complex AWGN at Es/N0 (dB) and return max-log LLRs in code word order, float32 (batch, n)."""
    n0 = esn0_to_n0(esn0_db)
    noise = rng.standard_normal((symbols.shape[0], 2 * symbols.shape[1]), dtype=np.float32)
    noise *= np.float32(np.sqrt(n0 / 2.0))
    received = symbols + noise.view(np.complex64)
    llr = demap_maxlog(received, n0, m.modulation, m.rate)
    return deinterleave(llr, m.modulation, m.rate)


def send_frames(mc, frame: str, esn0_db: float, frames: int, rng: np.random.Generator):
    """Random BBFRAMEs of one MODCOD and the channel LLRs of their FECFRAMEs at Es/N0 (dB).

    Parameters
    ----------
    mc : Modcod, int or str
        MODCOD (see :func:`modem.dvbs2.modcod.modcod`).
    frame : {"normal", "short"}
        FECFRAME size (64800 or 16200 bits).
    esn0_db : float
        Es/N0 per (unit-energy) data symbol, dB.
    frames : int
        Frames, >= 0.
    rng : numpy.random.Generator
        Source of the data bits (drawn first) and the noise.

    Returns
    -------
    bbframes : ndarray of uint8, shape (frames, k_bch)
    llr : ndarray of float32, shape (frames, n_ldpc)
        Max-log LLRs in code word order (deinterleaved), positive = 0.
    """
    m = modcod(mc)
    spec = frame_spec(m, frame)
    if int(frames) < 0:
        raise ValueError(f"frames must be >= 0; got {frames}")
    bch, ldpc = _code_pair(frame, m.rate)
    bb = rng.integers(0, 2, (int(frames), spec.k_bch), dtype=np.uint8)
    cw = ldpc.encode(bch.encode(bb))
    symbols = map_bits(interleave(cw, m.modulation, m.rate), m.modulation, m.rate)
    del cw
    return bb, channel_llr(m, symbols, esn0_db, rng)


def receive_frames(frame: str, rate: str, llr: np.ndarray, bbframes: np.ndarray, decoder: LdpcDecoder):
    """Decode LLRs (LDPC, then BCH) and compare with the BBFRAMEs sent.

    Parameters
    ----------
    frame : {"normal", "short"}
    rate : str
        Code rate label such as "3/4"; frames of every MODCOD of this rate may share one call.
    llr : ndarray of float32, shape (batch, n_ldpc)
        Channel LLRs in code word order.
    bbframes : ndarray of uint8, shape (batch, k_bch)
        The BBFRAMEs sent.
    decoder : LdpcDecoder
        Decoder of this code.

    Returns
    -------
    dict of str to ndarray, shape (batch,)
        ``ok`` (bool: BBFRAME delivered intact), ``bit_errors`` (wrong BBFRAME bits after BCH),
        ``ldpc_bit_errors`` (wrong BCH code word bits after LDPC), ``converged`` (LDPC),
        ``bch_ok`` (BCH found the word correctable), ``iterations`` (LDPC).
    """
    bch, ldpc = _code_pair(frame, rate)
    if decoder.code.name != ldpc.name:
        raise ValueError(f"decoder is for {decoder.code.name}; these frames need {ldpc.name}")
    res = decoder.decode(llr)
    got = res.bits[:, : bch.n]
    ldpc_wrong = (got != bch.encode(bbframes)).sum(axis=1)
    out = bch.decode(got)
    wrong = (out.message != bbframes).sum(axis=1)
    return {
        "ok": wrong == 0,
        "bit_errors": wrong,
        "ldpc_bit_errors": ldpc_wrong,
        "converged": res.converged,
        "bch_ok": out.ok,
        "iterations": res.iterations,
    }


def simulate_frames(
    mc,
    frame: str,
    esn0_db: float,
    frames: int,
    rng: np.random.Generator,
    decoder: LdpcDecoder | None = None,
    chunk: int | None = None,
) -> dict[str, int]:
    """Send random frames of one MODCOD over AWGN and count what the receiver got wrong.

    Parameters
    ----------
    mc : Modcod, int or str
        MODCOD (see :func:`modem.dvbs2.modcod.modcod`).
    frame : {"normal", "short"}
        FECFRAME size (64800 or 16200 bits).
    esn0_db : float
        Es/N0 per (unit-energy) data symbol, dB.
    frames : int
        Frames to simulate, >= 0.
    rng : numpy.random.Generator
        Source of the data bits and the noise.
    decoder : LdpcDecoder, optional
        Decoder for this MODCOD's code; default :func:`make_decoder` (tuned settings, at most
        :data:`MAX_ITER` iterations, one worker).
    chunk : int, optional
        Frames per encode/decode call; default :data:`CHUNK` of the frame size.

    Returns
    -------
    dict of str to int
        ``frames``; ``frame_errors`` (decoded BBFRAME differs from the sent one) and
        ``bit_errors`` (BBFRAME bits wrong after BCH); ``ldpc_unconverged`` (LDPC stopped at
        ``max_iter`` with unsatisfied checks), ``ldpc_undetected`` (LDPC converged to a wrong
        code word), ``ldpc_bit_errors`` (wrong BCH code word bits after LDPC); ``bch_failed``
        (BCH flagged the word uncorrectable), ``bch_undetected`` (BCH accepted a wrong message);
        ``iterations`` (LDPC iterations, summed over frames).
    """
    m = modcod(mc)
    frame_spec(m, frame)  # validates the combination
    if int(frames) < 0:
        raise ValueError(f"frames must be >= 0; got {frames}")
    if decoder is None:
        decoder = make_decoder(m, frame)
    chunk = int(chunk or CHUNK[frame])
    counts = dict.fromkeys(COUNT_KEYS, 0)
    left = int(frames)
    while left > 0:
        batch = min(chunk, left)
        left -= batch
        bb, llr = send_frames(m, frame, esn0_db, batch, rng)
        r = receive_frames(frame, m.rate, llr, bb, decoder)
        del llr
        counts["frames"] += batch
        counts["frame_errors"] += int(np.count_nonzero(~r["ok"]))
        counts["bit_errors"] += int(r["bit_errors"].sum())
        counts["ldpc_unconverged"] += int(np.count_nonzero(~r["converged"]))
        counts["ldpc_undetected"] += int(np.count_nonzero(r["converged"] & (r["ldpc_bit_errors"] > 0)))
        counts["ldpc_bit_errors"] += int(r["ldpc_bit_errors"].sum())
        counts["bch_failed"] += int(np.count_nonzero(~r["bch_ok"]))
        counts["bch_undetected"] += int(np.count_nonzero(r["bch_ok"] & ~r["ok"]))
        counts["iterations"] += int(r["iterations"].sum())
    return counts


def measure_point(
    mc,
    frame: str,
    esn0_db: float,
    rng: np.random.Generator,
    decoder: LdpcDecoder | None = None,
    max_frames: int = 300,
    min_errors: int = 30,
    chunk: int | None = None,
) -> dict[str, int]:
    """Counts of :func:`simulate_frames` at one Es/N0, stopping early once errors are plentiful.

    Frames are sent ``chunk`` at a time until ``max_frames`` have been sent or ``min_errors``
    frame errors were seen, whichever comes first (an early stop means the FER is at least
    about ``min_errors / max_frames``, and is then known to about 1/sqrt(``min_errors``)).

    Parameters
    ----------
    mc, frame, esn0_db, rng, decoder
        As for :func:`simulate_frames`.
    max_frames : int
        Most frames to send, >= 1.
    min_errors : int
        Frame errors after which to stop, >= 1.
    chunk : int, optional
        Frames per call; default :data:`CHUNK` of the frame size.

    Returns
    -------
    dict of str to int
        As :func:`simulate_frames`.
    """
    m = modcod(mc)
    if decoder is None:
        decoder = make_decoder(m, frame)
    chunk = int(chunk or CHUNK[frame])
    total = dict.fromkeys(COUNT_KEYS, 0)
    while total["frames"] < max_frames and total["frame_errors"] < min_errors:
        batch = min(chunk, max_frames - total["frames"])
        for key, value in simulate_frames(m, frame, esn0_db, batch, rng, decoder, chunk).items():
            total[key] += value
    return total


def interpolate_threshold(lo: tuple[float, float], hi: tuple[float, float], target: float) -> float:
    """Es/N0 (dB) where log10 FER, linear between two points, equals log10 ``target``.

    Parameters
    ----------
    lo, hi : (float, float)
        (Es/N0 dB, FER) with FER(lo) > target >= FER(hi) > 0 and Es/N0(lo) < Es/N0(hi).
    target : float
        FER, in (0, 1).

    Returns
    -------
    float
        Es/N0 in dB.
    """
    (x0, f0), (x1, f1) = lo, hi
    y0, y1, yt = np.log10(f0), np.log10(f1), np.log10(target)
    if y0 == y1:
        return float(x1)
    return float(x0 + (x1 - x0) * (y0 - yt) / (y0 - y1))


def find_threshold(
    mc,
    frame: str,
    rng,
    decoder: LdpcDecoder | None = None,
    target: float = 1e-2,
    start_db: float | None = None,
    coarse_db: float = 0.25,
    fine_db: float = 0.1,
    coarse_frames: int | None = None,
    max_frames: int | None = None,
    min_errors: int = 30,
    lowest_fine_db: float = 0.025,
    chunk: int | None = None,
    full_brackets: bool = False,
) -> dict:
    """Es/N0 (dB) at which the FER of one MODCOD crosses ``target``: coarse then fine search.

    1. Coarse: from ``start_db``, steps of ``coarse_db`` with at most ``coarse_frames`` frames a
       point, up while more than ``target * coarse_frames`` frames fail (any failure, when
       ``coarse_frames * target < 1``) and down while not, until two adjacent points bracket
       the crossing.
    2. Fine: steps of ``fine_db`` from the coarse bracket's lower end, up to ``max_frames``
       frames a point (early stop after ``min_errors`` errors), until a point with FER <=
       ``target`` follows one above it. While that upper point saw no error at all, the step is
       halved between the two (down to ``lowest_fine_db``); a remaining zero count is taken as
       half an error, which moves the estimate up (the conservative side).
    3. The threshold interpolates log10 FER linearly between the two bracketing points.

    Parameters
    ----------
    mc, frame, decoder
        As for :func:`simulate_frames`.
    rng : numpy.random.Generator or callable
        Source of data and noise; or a function of the Es/N0 (dB) that returns the generator for
        that point: with a fresh generator of the same seed per point, decoders compared at the
        same Es/N0 see the same frames and noise (common random numbers).
    target : float
        FER to find, in (0, 1).
    start_db : float, optional
        Where to start, Es/N0 dB; default the MODCOD's quasi-error-free Es/N0 (Table 13).
    coarse_db, fine_db : float
        Step sizes, dB.
    coarse_frames, max_frames : int, optional
        Frames per coarse / fine point; default 64 / 300 (normal) and 256 / 1000 (short).
    min_errors : int
        Early stop of a fine point after this many frame errors.
    lowest_fine_db : float
        Smallest step of the fine search, dB.
    chunk : int, optional
        Frames per decoder call.
    full_brackets : bool
        Top the two bracketing points up to ``max_frames`` frames each where they stopped early
        (more frames, from a fresh stream: with a generator function, a child of its generator).

    Returns
    -------
    dict
        ``esn0_db`` (threshold, dB); ``lo`` and ``hi``: the bracketing points, each a dict with
        ``esn0_db`` and the counts of :func:`simulate_frames`; ``points``: every point measured,
        as (stage, Es/N0 dB, counts), stage "coarse" or "fine".
    """
    m = modcod(mc)
    if decoder is None:
        decoder = make_decoder(m, frame)
    if not 0 < target < 1:
        raise ValueError(f"target must be in (0, 1); got {target}")
    coarse_frames = int(coarse_frames or (64 if frame == "normal" else 256))
    max_frames = int(max_frames or (300 if frame == "normal" else 1000))
    points: list[tuple[str, float, dict]] = []

    def run(stage: str, esn0: float, frames: int, errors: int) -> dict:
        gen = rng(esn0) if callable(rng) else rng
        c = measure_point(m, frame, esn0, gen, decoder, frames, errors, chunk)
        points.append((stage, esn0, c))
        return c

    # coarse: "above" = some frame error seen among few frames (clearly above target when
    # coarse_frames * target < 1, else compare the FER)
    def above_coarse(c: dict) -> bool:
        return c["frame_errors"] > max(0, target * c["frames"])

    x = round(float(m.esn0_qef_db if start_db is None else start_db), 3)
    c = run("coarse", x, coarse_frames, min_errors)
    if above_coarse(c):
        while above_coarse(c):
            x = round(x + coarse_db, 3)
            c = run("coarse", x, coarse_frames, min_errors)
            if x > 40:
                raise RuntimeError(f"{m.name} {frame}: FER above {target} up to Es/N0 {x} dB")
        lo_x = x - coarse_db
    else:
        while not above_coarse(c):
            x = round(x - coarse_db, 3)
            c = run("coarse", x, coarse_frames, min_errors)
            if x < -20:
                raise RuntimeError(f"{m.name} {frame}: FER below {target} down to Es/N0 {x} dB")
        lo_x = x
    # fine: walk up from the coarse bracket's lower end
    x = round(lo_x, 3)
    c = run("fine", x, max_frames, min_errors)
    while c["frame_errors"] <= target * c["frames"]:  # lower end already below target: step down
        x = round(x - fine_db, 3)
        c = run("fine", x, max_frames, min_errors)
    lo = (x, c)
    while True:
        x = round(lo[0] + fine_db, 3)
        c = run("fine", x, max_frames, min_errors)
        if c["frame_errors"] <= target * c["frames"]:
            break
        lo = (x, c)
    hi = (x, c)
    step = fine_db
    while hi[1]["frame_errors"] == 0 and step / 2 >= lowest_fine_db - 1e-9:
        step /= 2
        x = round(lo[0] + step, 4)
        c = run("fine", x, max_frames, min_errors)
        if c["frame_errors"] <= target * c["frames"]:
            hi = (x, c)
        else:
            lo = (x, c)
    if full_brackets:  # measure both bracketing points on max_frames frames, without early stop
        for name, (x, c) in (("lo", lo), ("hi", hi)):
            more = max_frames - c["frames"]
            if more > 0:
                gen = rng(x).spawn(1)[0] if callable(rng) else rng
                extra = measure_point(m, frame, x, gen, decoder, more, more + 1, chunk)
                points.append(("fine", x, extra))
                c = {k: c[k] + extra[k] for k in COUNT_KEYS}
                if name == "lo":
                    lo = (x, c)
                else:
                    hi = (x, c)
    f_lo = lo[1]["frame_errors"] / lo[1]["frames"]
    f_hi = max(hi[1]["frame_errors"], 0.5) / hi[1]["frames"]
    threshold = interpolate_threshold((lo[0], f_lo), (hi[0], min(f_hi, target)), target)
    return {
        "esn0_db": threshold,
        "lo": {"esn0_db": lo[0], **lo[1]},
        "hi": {"esn0_db": hi[0], **hi[1]},
        "points": points,
    }
