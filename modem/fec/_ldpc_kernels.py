"""numba kernels of the layered min-sum LDPC decoder.

Private: use :class:`modem.fec.ldpc_decoder.LdpcDecoder`.

Check-node rule (int8): corrected three-minimum min-sum. Pass 1 over a row finds the three
smallest extrinsic magnitudes m1 <= m2 <= m3 (repeated values count repeatedly); the magnitude
sent back on an edge approximates the sum-product ("boxplus") of the other edges by the three
smallest of them:

- an edge whose magnitude is m1 gets ``m2 (+) m3``; one whose magnitude is m2 (and not m1) gets
  ``m1 (+) m3``; every other edge gets ``(m1 (+) m2) (+) m3``. Edges are told apart by their
  magnitude alone, so ties need no index: two edges at m1 (m1 == m2) each get the other
  combined with m3, exactly what their own rule gives;
- ``a (+) b`` for a <= b is ``a - c(b - a)``, c(x) = ln(1 + exp(-x)) rounded to whole
  quantization steps (0 to 3): the number of thresholds ``cn[3:6]`` that x lies below
  (:func:`modem.fec.ldpc_decoder.correction_thresholds`);
- each of the three outputs then loses its own offset (``cn[0:3]`` steps: other edges, edges at
  m1, edges at m2; they stand in for the edges beyond the third smallest, tuned per code), is
  floored at 0, multiplied by 1 - 2^-s as ``o - (o >> s)`` (``cn[6]`` = s; 7: factor 1) and
  capped at the message limit.

The outputs are computed once per row; per edge, the rule costs what offset min-sum with an
index of the smallest costs (a third running minimum instead of the index, a magnitude compare
instead of an index compare). With the thresholds at 0, three equal offsets and s = 7 it is
offset min-sum, bit for bit.

Check-node rule (float32, the reference path): the same three outputs without quantization:
c(x) = ln(1 + exp(-x)) in LLR units (tabulated, error below 1e-5), offsets in LLR, the factor
as a multiplication, no message limit. ``cn`` = (three offsets, correction on (1) or off (0),
factor, unused, unused); correction off with factor 1 is offset min-sum, bit for bit as before
the corrected rule (tests/reference_ldpc.py's float64 decoder).

Two kernels run one layered iteration over all lanes (frames side by side, the lane
index innermost):

- :func:`_iteration_simd`: int8 only, exactly :data:`~modem.fec.simd.WIDTH` lanes, written
  with explicit SIMD vectors (:mod:`modem.fec.simd`), so each row update is straight-line
  saturating byte arithmetic;
- :func:`_iteration_portable`: plain numba loops for int8 or float32 and any lane count (the
  float reference path, and the int8 cross-check: bit-exact with the SIMD kernel).

:func:`_decode_frames` streams a batch through the lanes: a frame leaves its lane when it
has converged or used ``max_iter`` iterations, and the next frame is loaded in its place.
"""

import numba as nb
import numpy as np
from numba import literally, types
from numba.extending import overload

from modem.fec.simd import (
    prefetch_row,
    vabs,
    vadds,
    vand,
    vless_mask,
    vload,
    vmax,
    vmin,
    vnegate_where_negative,
    vor,
    vselect_eq,
    vshift_right,
    vsignmask,
    vsplat,
    vstore,
    vsubs,
    vsubus,
    vxor,
)

#: Rows ahead whose APP values the SIMD kernel prefetches.
PREFETCH_ROWS = 2


def _sat(x, like):  # pragma: no cover - replaced by the overload below inside numba
    return x


@overload(_sat)
def _sat_impl(x, like):
    """Saturate to the message type: int8 -> [-128, 127] (becomes a saturating byte op), float -> as is."""
    if isinstance(like, types.Integer):

        def impl(x, like):
            return np.int8(min(max(x, -128), 127))

        return impl

    def impl_f(x, like):
        return x

    return impl_f


def _sym(x, like):  # pragma: no cover
    return x


@overload(_sym)
def _sym_impl(x, like):
    """Keep int8 values symmetric ([-127, 127]) so that abs() and negation cannot overflow."""
    if isinstance(like, types.Integer):

        def impl(x, like):
            return np.int8(max(x, -127))

        return impl

    def impl_f(x, like):
        return x

    return impl_f


def _outputs(m1, m2, m3, cn, limit, like):  # pragma: no cover - numba uses the overload below
    return m1, m2, m1


@overload(_outputs)
def _outputs_impl(m1, m2, m3, cn, limit, like):
    """Check-node output magnitudes (other edges, edges at m1, edges at m2) from the three minima.

    int8: the corrected three-minimum rule of the module docstring (cn: offsets, correction
    thresholds and normalization shift, in steps). float: the same rule unquantized (cn[0:3]:
    offsets in LLR; cn[3]: correction on if non-zero; cn[4]: factor).
    """
    if isinstance(like, types.Integer):

        def impl(m1, m2, m3, cn, limit, like):
            t1, t2, t3 = np.int32(cn[3]), np.int32(cn[4]), np.int32(cn[5])
            sh, lim = np.int32(cn[6]), np.int32(limit)
            i1, i2, i3 = np.int32(m1), np.int32(m2), np.int32(m3)

            def c(d):  # ln(1 + exp(-d)) in steps
                return np.int32(d < t1) + np.int32(d < t2) + np.int32(d < t3)

            def out(o):  # floor at 0, normalize, cap
                o = max(o, 0)
                return np.int8(min(o - (o >> sh), lim))

            x = max(i1 - c(i2 - i1), 0)  # m1 (+) m2
            return (
                out(x - c(i3 - x) - np.int32(cn[0])),
                out(i2 - c(i3 - i2) - np.int32(cn[1])),
                out(i1 - c(i3 - i1) - np.int32(cn[2])),
            )

        return impl

    def impl_f(m1, m2, m3, cn, limit, like):
        zero = np.float32(0.0)
        corrected = cn[3] != zero
        factor = cn[4]

        def c(d):  # ln(1 + exp(-d)) for d >= 0 (0 from 16 on, for +inf and for NaN)
            if corrected and d < _LN1PEXP_END:
                u = d * np.float32(_LN1PEXP_STEPS)
                i = np.int32(u)
                return _LN1PEXP[i] + (u - np.float32(i)) * (_LN1PEXP[i + 1] - _LN1PEXP[i])
            return zero

        def out(o):  # floor at 0, normalize, cap
            return np.float32(min(max(o, zero) * factor, limit))

        x = max(m1 - c(m2 - m1), zero)  # m1 (+) m2
        return (
            out(x - c(m3 - x) - cn[0]),
            out(m2 - c(m3 - m2) - cn[1]),
            out(m1 - c(m3 - m1) - cn[2]),
        )

    return impl_f


#: Float path: c(x) = ln(1 + exp(-x)) tabulated at x = i / _LN1PEXP_STEPS LLR up to
#: _LN1PEXP_END (c = 1.1e-7 there) and interpolated linearly: error below 1e-5 LLR.
_LN1PEXP_STEPS = 64
_LN1PEXP_END = np.float32(16.0)
_LN1PEXP = np.log1p(np.exp(-np.arange(16 * _LN1PEXP_STEPS + 2) / _LN1PEXP_STEPS)).astype(np.float32)


def _check_params(cn, like):  # pragma: no cover - numba uses the overload below
    return cn


@overload(_check_params)
def _check_params_impl(cn, like):
    """Check-node parameters as an array: an array as it is, a scalar offset as offset min-sum.

    The scalar form is the kernels' signature before the three-minimum rule (kept for callers
    of :func:`_decode_frames` written against it; the package itself now goes through
    :class:`~modem.fec.ldpc_decoder.LdpcDecoder`); it decodes bit for bit as the kernels did
    then.
    """
    if isinstance(cn, types.Array):
        return lambda cn, like: cn
    if isinstance(like, types.Integer):

        def impl(cn, like):
            out = np.zeros(7, dtype=np.int8)
            out[:3] = np.int8(cn)
            out[6] = 7  # factor 1
            return out

        return impl

    def impl_f(cn, like):
        out = np.zeros(7, dtype=np.float32)
        out[:3] = np.float32(cn)
        out[4] = 1.0  # factor 1, no correction
        return out

    return impl_f


def _largest(like):  # pragma: no cover
    return like


@overload(_largest)
def _largest_impl(like):
    """Start value of a running minimum of magnitudes: 127 for int8, +inf for float."""
    if isinstance(like, types.Integer):
        return lambda like: np.int8(127)
    return lambda like: np.float32(np.inf)


def _signbits(t):  # pragma: no cover
    return t


@overload(_signbits)
def _signbits_impl(t):
    """Sign of a message as an int8 whose top bit is set for negative values (int8: the value itself)."""
    if isinstance(t, types.Integer):

        def impl(t):
            return t

        return impl

    def impl_f(t):
        return np.int8(-1) if t < 0 else np.int8(0)

    return impl_f


@nb.njit(cache=True, nogil=True)
def _iteration_portable(app, msg, row_ptr, col_idx, cn, limit, tmp, flags):
    """One layered iteration over all rows for lanes, any message dtype and lane count.

    app : (n_cols, lanes) APP values; msg : (edges, lanes) check-to-variable messages;
    cn : check-node parameters (see :func:`_outputs`); tmp : (max row degree, lanes) scratch.
    On return flags[0, f] < 0 marks a lane that met an unsatisfied check, flags[1, f] < 0 one
    whose hard decisions changed during the iteration.
    """
    z = app[0, 0] - app[0, 0]  # zero of the message type
    big = _largest(z)
    lanes = app.shape[1]
    min1 = np.empty(lanes, dtype=app.dtype)
    min2 = np.empty(lanes, dtype=app.dtype)
    min3 = np.empty(lanes, dtype=app.dtype)
    out_rest = np.empty(lanes, dtype=app.dtype)
    out_1 = np.empty(lanes, dtype=app.dtype)
    out_2 = np.empty(lanes, dtype=app.dtype)
    sgn = np.empty(lanes, dtype=np.int8)
    par = np.empty(lanes, dtype=np.int8)
    bad = flags[0]
    flip = flags[1]
    for f in range(lanes):
        bad[f] = 0
        flip[f] = 0
    m = row_ptr.size - 1
    for r in range(m):
        e0 = row_ptr[r]
        d = row_ptr[r + 1] - e0
        for f in range(lanes):
            min1[f] = big
            min2[f] = big
            min3[f] = big
            sgn[f] = 0
        # pass 1: extrinsic values, the three smallest magnitudes, the sign product
        for j in range(d):
            v = col_idx[e0 + j]
            for f in range(lanes):
                t = _sym(_sat(app[v, f] - msg[e0 + j, f], z), z)
                tmp[j, f] = t
                a = abs(t)
                sgn[f] = sgn[f] ^ _signbits(t)
                m1 = min1[f]
                min3[f] = min(min3[f], max(min2[f], a))
                min2[f] = min(min2[f], max(m1, a))
                min1[f] = min(m1, a)
        for f in range(lanes):
            out_rest[f], out_1[f], out_2[f] = _outputs(min1[f], min2[f], min3[f], cn, limit, z)
        # pass 2: new messages and APP values; parity of the new hard decisions, sign flips
        for f in range(lanes):
            par[f] = 0
        for j in range(d):
            v = col_idx[e0 + j]
            for f in range(lanes):
                t = tmp[j, f]
                a = abs(t)
                mag = out_1[f] if a == min1[f] else (out_2[f] if a == min2[f] else out_rest[f])
                rr = -mag if (sgn[f] ^ _signbits(t)) < 0 else mag
                rr = _sat(rr, z)
                msg[e0 + j, f] = rr
                old = _signbits(app[v, f])
                new = _sat(t + rr, z)
                app[v, f] = new
                nb_ = _signbits(new)
                par[f] = par[f] ^ nb_
                flip[f] = flip[f] | (old ^ nb_)
        for f in range(lanes):
            bad[f] = bad[f] | par[f]


@nb.njit(cache=True, nogil=True)
def _correction(x, t1, t2, t3):
    """Per lane: c(x) in steps, the number of thresholds t1, t2, t3 that x lies below (0..3)."""
    return vsubs(vsubs(vsubs(vsplat(0), vless_mask(x, t1)), vless_mask(x, t2)), vless_mask(x, t3))


@nb.njit(cache=True, nogil=True)
def _iteration_simd(app, msg, row_ptr, col_idx, cn, limit, tmp, flags):
    """One layered iteration on WIDTH (64) int8 lanes with explicit SIMD vectors.

    The same arithmetic as :func:`_iteration_portable` on int8 (bit-exact), for exactly
    :data:`~modem.fec.simd.WIDTH` lanes. Lanes whose
    flags[2] is 0 (a frame just loaded) read their old messages as 0, so loading a frame
    needs no strided pass to clear its messages.
    """
    keep = vload(flags, 2)
    zero = vsplat(0)
    big = vsplat(127)
    floor = vsplat(-127)
    off_rest = vsplat(cn[0])
    off_1 = vsplat(cn[1])
    off_2 = vsplat(cn[2])
    t1 = vsplat(cn[3])
    t2 = vsplat(cn[4])
    t3 = vsplat(cn[5])
    shift = vsplat(cn[6])
    lim = vsplat(limit)
    bad = zero
    flip = zero
    n_rows = row_ptr.size - 1
    for r in range(n_rows):
        e0 = row_ptr[r]
        d = row_ptr[r + 1] - e0
        m1 = big
        m2 = big
        m3 = big
        sg = zero
        # fetch the APP rows of a row PREFETCH_ROWS ahead: they are scattered over a 2 MB array
        ahead = row_ptr[min(r + PREFETCH_ROWS, n_rows - 1)]
        for j in range(row_ptr[min(r + PREFETCH_ROWS + 1, n_rows)] - ahead):
            prefetch_row(app, col_idx[ahead + j])
        # pass 1: extrinsic values, the three smallest magnitudes, the sign product
        for j in range(d):
            t = vmax(vsubs(vload(app, col_idx[e0 + j]), vand(vload(msg, e0 + j), keep)), floor)
            vstore(tmp, j, t)
            a = vabs(t)
            sg = vxor(sg, t)
            m3 = vmin(m3, vmax(m2, a))
            m2 = vmin(m2, vmax(m1, a))
            m1 = vmin(m1, a)
        # outputs (see _outputs): x = m1 (+) m2; other edges x (+) m3, edges at m1 m2 (+) m3,
        # edges at m2 m1 (+) m3; minus their offsets (floored at 0), scaled by 1 - 2^-shift,
        # capped at the limit
        x = vsubus(m1, _correction(vsubs(m2, m1), t1, t2, t3))
        o_rest = vsubus(vsubus(x, off_rest), _correction(vsubs(m3, x), t1, t2, t3))
        o_1 = vsubus(vsubus(m2, off_1), _correction(vsubs(m3, m2), t1, t2, t3))
        o_2 = vsubus(vsubus(m1, off_2), _correction(vsubs(m3, m1), t1, t2, t3))
        o_rest = vmin(vsubs(o_rest, vshift_right(o_rest, shift)), lim)
        o_1 = vmin(vsubs(o_1, vshift_right(o_1, shift)), lim)
        o_2 = vmin(vsubs(o_2, vshift_right(o_2, shift)), lim)
        # pass 2: new messages and APP values; parity of the new hard decisions, sign flips
        par = zero
        for j in range(d):
            t = vload(tmp, j)
            a = vabs(t)
            mag = vselect_eq(a, m1, o_1, vselect_eq(a, m2, o_2, o_rest))
            rr = vnegate_where_negative(vxor(sg, t), mag)
            vstore(msg, e0 + j, rr)
            v = col_idx[e0 + j]
            old = vload(app, v)
            new = vadds(t, rr)
            vstore(app, v, new)
            par = vxor(par, new)
            flip = vor(flip, vxor(old, new))
        bad = vor(bad, par)
    vstore(flags, 0, bad)
    vstore(flags, 1, flip)
    vstore(flags, 2, vsplat(-1))


def _quantize(x, scale, clip, like):  # pragma: no cover - numba uses the overload below
    return x


@overload(_quantize)
def _quantize_impl(x, scale, clip, like):
    """Channel LLR to the message type: int8 rounds x * scale and saturates to +-clip; float keeps x."""
    if isinstance(like, types.Integer):

        def impl(x, scale, clip, like):
            q = min(max(x * scale, -clip), clip)
            # round half away from zero; a select and a truncation, which LLVM vectorizes
            return np.int8(np.int32(q + (np.float32(0.5) if q >= 0 else np.float32(-0.5))))

        return impl

    def impl_f(x, scale, clip, like):
        return np.float32(x)

    return impl_f


@nb.njit(cache=True, nogil=True)
def _stage_frames(llr, run, fill, frames, count, scale, clip, stage):
    """Quantize frames[k] (k < count) into the contiguous rows of stage (count, n_cols).

    Columns run[0] .. run[1]-1 carry transmitted bits run[0]-run[2] .. run[1]-1-run[2]; every
    other column i holds the constant fill[i] (0 for a punctured column, the largest positive
    value for a known zero). Values are quantized by :func:`_quantize` (int8: to +-clip steps).
    Contiguous loops, so LLVM vectorizes them.
    """
    z = stage[0, 0] - stage[0, 0]
    c_lo, c_hi, shift = run[0], run[1], run[2]
    n_cols = stage.shape[1]
    for k in range(count):
        row = llr[frames[k]]
        out = stage[k]
        for i in range(c_lo):
            out[i] = fill[i]
        for i in range(c_lo, c_hi):
            out[i] = _quantize(row[i - shift], scale, clip, z)
        for i in range(c_hi, n_cols):
            out[i] = fill[i]


@nb.njit(cache=True, nogil=True)
def _load_lanes(app, msg, flags, stage, lanes, count, clear):
    """Copy stage[k] into lane lanes[k] (k < count) in one walk over the APP rows.

    With ``clear`` the lanes' messages are zeroed here; otherwise flags[2, lane] = 0 tells the
    SIMD kernel to read them as zero on its next pass.
    """
    z = app[0, 0] - app[0, 0]
    for i in range(app.shape[0]):
        for k in range(count):
            app[i, lanes[k]] = stage[k, i]
    for k in range(count):
        if clear:
            for e in range(msg.shape[0]):
                msg[e, lanes[k]] = z
        else:
            flags[2, lanes[k]] = 0


@nb.njit(cache=True, nogil=True)
def _swap_lanes_simd(app, flags, stage, new_lanes, n_new, run, n, bits, done_frames, done_lanes, n_done, sm):
    """SIMD path: hard decisions out of done lanes and staged frames into new lanes, in one walk.

    For each APP row: its sign mask (bit l = lane l negative) into sm, then the new lanes'
    values from stage. Then the done frames' n transmitted bits are read out of the masks.
    """
    width = app.shape[1]
    flat = app.reshape(-1)  # unsigned flat indices: no negative-index wraparound code per byte
    for i in range(app.shape[0]):
        sm[i] = vsignmask(vload(app, i))
        base = np.uint64(i * width)
        for k in range(n_new):
            flat[base + np.uint64(new_lanes[k])] = stage[k, i]
    for k in range(n_new):
        flags[2, new_lanes[k]] = 0
    t_lo, t_hi, shift = run[0] - run[2], run[1] - run[2], run[2]
    for k in range(n_done):
        b = done_frames[k]
        lane = done_lanes[k]
        for t in range(t_lo):
            bits[b, t] = 0
        for t in range(t_lo, t_hi):
            bits[b, t] = np.uint8((sm[t + shift] >> lane) & 1)
        for t in range(t_hi, n):
            bits[b, t] = 0


@nb.njit(cache=True, nogil=True)
def _unload_lanes(app, tx_cols, bits, frames, lanes, count):
    """Hard decisions of lanes[k]'s transmitted bits into bits[frames[k]] (any dtype and lane count)."""
    for i in range(tx_cols.size):
        c = tx_cols[i]
        for k in range(count):
            h = np.uint8(app[max(c, 0), lanes[k]] < 0)
            bits[frames[k], i] = h if c >= 0 else np.uint8(0)


#: Kernel codes for :func:`_decode_frames`.
SIMD = 1
PORTABLE = 0


def _iterate(kernel, app, msg, row_ptr, col_idx, cn, limit, tmp, flags):  # pragma: no cover
    pass


@overload(_iterate)
def _iterate_impl(kernel, app, msg, row_ptr, col_idx, cn, limit, tmp, flags):
    """Run one iteration with the kernel named by the compile-time constant ``kernel``."""
    if not isinstance(kernel, types.IntegerLiteral):
        return None
    if kernel.literal_value == SIMD:
        return lambda kernel, app, msg, row_ptr, col_idx, cn, limit, tmp, flags: _iteration_simd(
            app, msg, row_ptr, col_idx, cn, limit, tmp, flags
        )
    return lambda kernel, app, msg, row_ptr, col_idx, cn, limit, tmp, flags: _iteration_portable(
        app, msg, row_ptr, col_idx, cn, limit, tmp, flags
    )


@nb.njit(cache=True, nogil=True)
def _decode_frames(
    llr, run, fill, tx_cols, row_ptr, col_idx, bits, iters, conv,
    max_iter, cn, limit, scale, clip, kernel, clear, app, msg, tmp, flags, stage, signs,
):  # fmt: skip
    """Decode every frame of llr (batch, n) through the lanes of the workspace, with lane refill.

    ``kernel`` is :data:`SIMD` or :data:`PORTABLE` (a compile-time constant: each value gets its
    own cached specialization); ``cn`` the check-node parameters (see :func:`_outputs`; a scalar
    offset means offset min-sum, see :func:`_check_params`); app, msg, tmp, flags, stage
    (lanes, n_cols) and signs (n_cols,) are the workspace (see ``ldpc_decoder._Workspace``).
    Writes the hard decisions of the transmitted bits (batch, n), iterations used and converged
    flag per frame.
    """
    literally(kernel)
    params = _check_params(cn, app[0, 0])
    batch = llr.shape[0]
    lanes = app.shape[1]
    flags[:] = -1  # unsatisfied, flipped, keep messages
    frame_of = np.full(lanes, -1, dtype=np.int64)  # frame held by each lane, -1 idle
    it_of = np.zeros(lanes, dtype=np.int64)
    done_frames = np.empty(lanes, dtype=np.int64)
    done_lanes = np.empty(lanes, dtype=np.int64)
    new_frames = np.empty(lanes, dtype=np.int64)
    new_lanes = np.empty(lanes, dtype=np.int64)
    count = min(lanes, batch)
    for k in range(count):
        new_frames[k] = k
        new_lanes[k] = k
        frame_of[k] = k
    _stage_frames(llr, run, fill, new_frames, count, scale, clip, stage)
    _load_lanes(app, msg, flags, stage, new_lanes, count, clear)
    nxt = count
    active = count
    while active > 0:
        _iterate(kernel, app, msg, row_ptr, col_idx, params, limit, tmp, flags)
        n_done = 0
        n_new = 0
        for lane in range(lanes):
            b = frame_of[lane]
            if b < 0:
                continue
            it_of[lane] += 1
            ok = flags[0, lane] >= 0 and flags[1, lane] >= 0
            if ok or it_of[lane] >= max_iter:
                iters[b] = it_of[lane]
                conv[b] = ok
                it_of[lane] = 0
                done_frames[n_done] = b
                done_lanes[n_done] = lane
                n_done += 1
                if nxt < batch:
                    frame_of[lane] = nxt
                    new_frames[n_new] = nxt
                    new_lanes[n_new] = lane
                    n_new += 1
                    nxt += 1
                else:
                    frame_of[lane] = -1
                    active -= 1
        if n_new:
            _stage_frames(llr, run, fill, new_frames, n_new, scale, clip, stage)
        if n_done and not clear:
            _swap_lanes_simd(
                app, flags, stage, new_lanes, n_new, run, tx_cols.size,
                bits, done_frames, done_lanes, n_done, signs,
            )  # fmt: skip
        elif n_done:
            _unload_lanes(app, tx_cols, bits, done_frames, done_lanes, n_done)
            _load_lanes(app, msg, flags, stage, new_lanes, n_new, clear)


# Entry points called from Python, one per kernel: the kernel code reaches _decode_frames as a
# compile-time literal here, so a call from Python is an ordinary (cached) dispatch. Calling
# _decode_frames itself from Python with a literal argument re-types it on every call (~0.1 s).
@nb.njit(cache=True, nogil=True)
def _decode_frames_simd(
    llr, run, fill, tx_cols, row_ptr, col_idx, bits, iters, conv,
    max_iter, cn, limit, scale, clip, clear, app, msg, tmp, flags, stage, signs,
):  # fmt: skip
    """:func:`_decode_frames` with the SIMD kernel."""
    _decode_frames(
        llr, run, fill, tx_cols, row_ptr, col_idx, bits, iters, conv,
        max_iter, cn, limit, scale, clip, SIMD, clear, app, msg, tmp, flags, stage, signs,
    )  # fmt: skip


@nb.njit(cache=True, nogil=True)
def _decode_frames_portable(
    llr, run, fill, tx_cols, row_ptr, col_idx, bits, iters, conv,
    max_iter, cn, limit, scale, clip, clear, app, msg, tmp, flags, stage, signs,
):  # fmt: skip
    """:func:`_decode_frames` with the portable kernel."""
    _decode_frames(
        llr, run, fill, tx_cols, row_ptr, col_idx, bits, iters, conv,
        max_iter, cn, limit, scale, clip, PORTABLE, clear, app, msg, tmp, flags, stage, signs,
    )  # fmt: skip
