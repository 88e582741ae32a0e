"""Slow, independent references for the LDPC tests (tests/test_ldpc.py).

Nothing here uses the library's parity-check matrices, encoders or kernels:

- :func:`dvbs2_encode` follows ETSI EN 302 307-1 §5.3.2.2 step by step from the address
  table shipped in ``modem/fec/data/dvbs2_ldpc/`` (the standard's Annex B / C tables);
- :func:`layered_min_sum` is a plain float64 numpy layered offset-min-sum decoder with the
  schedule and stopping rule documented in :mod:`modem.fec.ldpc_decoder`. It only reads the
  code's ones (row_ptr, col_idx) and column roles (tx_cols, zero_cols, n_cols), which the
  tests check separately (syndromes, the encoder reference above, test_ccsds_ldpc.py).
"""

from __future__ import annotations

from importlib import resources

import numpy as np

FRAME_BITS = {"normal": 64800, "short": 16200}


def dvbs2_table(frame: str, rate: str) -> list[list[int]]:
    """Parity-bit addresses per line of the standard's table (Annex B normal, Annex C short)."""
    fname = f"{frame}_{rate.replace('/', '_')}.txt"
    text = resources.files("modem.fec.data.dvbs2_ldpc").joinpath(fname).read_text()
    return [[int(v) for v in line.split()] for line in text.splitlines() if line.strip()]


def dvbs2_encode(frame: str, rate: str, info: np.ndarray) -> np.ndarray:
    """DVB-S2 LDPC encoding exactly as EN 302 307-1 §5.3.2.2 words it.

    info: 0/1 (batch, k_ldpc). Returns uint8 (batch, n_ldpc): [info | parity].

    The accumulators p_0 .. p_(n-k-1) start at 0. Information bit m = 360 i + j (line i
    of the table, 0 <= j < 360) is added to p_((x + j q) mod (n - k)) for every address x
    on line i, with q = (n - k) / 360. Finally p_i = p_i XOR p_(i-1) for i = 1 .. n-k-1.
    """
    table = dvbs2_table(frame, rate)
    n = FRAME_BITS[frame]
    k = 360 * len(table)
    u = np.asarray(info, dtype=np.uint8)
    assert u.ndim == 2 and u.shape[1] == k, (u.shape, k)
    nk = n - k
    assert nk % 360 == 0
    q = nk // 360
    out = np.zeros((u.shape[0], n), dtype=np.uint8)
    out[:, :k] = u
    j_all = np.arange(360)
    for b in range(u.shape[0]):
        # count how often each accumulator is hit; hits are XORs, so parity = count mod 2
        hits = np.zeros(nk, dtype=np.int64)
        for i, addrs in enumerate(table):
            j = j_all[u[b, 360 * i : 360 * (i + 1)] == 1]  # info bits m = 360 i + j that are 1
            for x in addrs:
                # for one x, the 360 addresses (x + j q) mod (n-k) are distinct (q * 360 = n-k)
                hits[(x + j * q) % nk] += 1
        p = (hits % 2).astype(np.uint8)
        # p_i = p_i XOR p_(i-1), i = 1 .. n-k-1, in this order: a running XOR
        out[b, k:] = np.bitwise_xor.accumulate(p)
    return out


def layered_min_sum(code, llr, max_iter: int = 25, offset: float = 0.5):
    """Layered offset min-sum in float64, the decoder's schedule and stopping rule.

    Parameters
    ----------
    code : LdpcCode (only row_ptr, col_idx, n_cols, tx_cols, zero_cols are read)
    llr : (batch, n) or (n,) channel LLRs of the transmitted bits, positive = 0.

    Returns
    -------
    bits (batch, n) uint8, iterations (batch,) int, converged (batch,) bool.

    Frames are independent: the batch is only a vectorized axis (each frame keeps its own
    APP values and messages, and is frozen when it stops), so this is the same as running
    one frame at a time, with less interpreter overhead per row.

    One iteration runs rows 0 .. m-1 in order. Row r with columns v_1 .. v_d:
    t_i = app[v_i] - msg_i; msg_i <- sign(prod_{l != i} t_l) * max(min_{l != i} |t_l| - offset, 0)
    (a zero t_l counts as positive; its magnitude 0 makes every other message 0 anyway);
    app[v_i] <- t_i + msg_i. Hard decision: app < 0 -> 1. The frame stops after an iteration
    in which every row's new hard decisions had even parity right after its update and no
    hard decision changed during the iteration (converged), or after max_iter (not converged).
    Columns: transmitted ones start at their LLR, punctured ones at 0, known zeros at +1e30;
    messages start at 0.
    """
    llr = np.asarray(llr, dtype=np.float64)
    if llr.ndim == 1:
        llr = llr[None, :]
    batch, n = llr.shape
    row_ptr = np.asarray(code.row_ptr, dtype=np.int64)
    col_idx = np.asarray(code.col_idx, dtype=np.int64)
    tx_cols = np.asarray(code.tx_cols, dtype=np.int64)
    sent = np.flatnonzero(tx_cols >= 0)
    m = row_ptr.size - 1
    rows = [col_idx[row_ptr[r] : row_ptr[r + 1]] for r in range(m)]
    assert min(len(c) for c in rows) >= 2

    # (column, frame) layout: a row's gather/scatter is one fancy index on axis 0
    app = np.zeros((code.n_cols, batch))
    app[tx_cols[sent], :] = llr[:, sent].T
    app[np.asarray(code.zero_cols, dtype=np.int64), :] = 1e30
    msg = np.zeros((col_idx.size, batch))
    frames = np.arange(batch)  # original index of each live frame
    bits = np.zeros((batch, n), dtype=np.uint8)
    iters = np.zeros(batch, dtype=np.int64)
    conv = np.zeros(batch, dtype=bool)

    for it in range(1, max_iter + 1):
        live = frames.size
        bad = np.zeros(live, dtype=bool)
        flip = np.zeros(live, dtype=bool)
        for r in range(m):
            cols = rows[r]
            e0, e1 = row_ptr[r], row_ptr[r + 1]
            old = app[cols]
            t = old - msg[e0:e1]
            a = np.abs(t)
            two = np.partition(a, 1, axis=0)  # rows 0, 1: the two smallest magnitudes
            # min over the others: the second smallest where a_i is the smallest (a tie gives
            # m1 == m2, so which of the tied edges counts as "the" minimum does not matter)
            excl = np.where(a == two[0], two[1], two[0])
            neg = t < 0
            others_neg = neg ^ (np.count_nonzero(neg, axis=0) % 2 == 1)[None, :]
            mag = np.maximum(excl - offset, 0.0)
            new_msg = np.where(others_neg, -mag, mag)
            msg[e0:e1] = new_msg
            new = t + new_msg
            app[cols] = new
            hard = new < 0
            bad |= np.count_nonzero(hard, axis=0) % 2 == 1
            flip |= np.any(hard != (old < 0), axis=0)
        done = (~bad & ~flip) | (it == max_iter)
        if np.any(done):
            fd = frames[done]
            hard_tx = (app[np.maximum(tx_cols, 0)][:, done] < 0).T
            hard_tx[:, tx_cols < 0] = False
            bits[fd] = hard_tx.astype(np.uint8)
            iters[fd] = it
            conv[fd] = ~bad[done] & ~flip[done]
            keep = ~done
            frames = frames[keep]
            app = app[:, keep]
            msg = msg[:, keep]
        if frames.size == 0:
            break
    return bits, iters, conv
