"""A 64-lane int8 SIMD value for numba kernels: load, store and saturating arithmetic.

numba cannot tell LLVM that two array arguments never overlap, so a loop over
lanes that reads one array and writes another is wrapped in run-time alias
checks, which cost more than the work inside. This module gives numba kernels
an explicit vector value instead: :data:`i8vec` is a numba type whose LLVM form
is ``<64 x i8>`` (:data:`WIDTH` lanes), and the functions below are intrinsics
that emit one LLVM vector instruction each (``llvm.ssub.sat``, ``llvm.smin``,
``select`` ...). A kernel written with them compiles to straight-line vector
code: one AVX-512BW register per value on CPUs that have it, two AVX2 registers
elsewhere, as LLVM legalizes the vector for the host CPU.

Arrays used with :func:`vload` / :func:`vstore` are C-contiguous int8 of shape
(rows, WIDTH): one row is one vector.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

#: Lanes per vector.
WIDTH = 64

_I8 = ir.IntType(8)
_VT = ir.VectorType(_I8, WIDTH)


class I8Vec(types.Type):
    """numba type of a vector of WIDTH int8 lanes."""

    def __init__(self):
        super().__init__(name=f"i8x{WIDTH}")


#: The vector type, for signatures.
i8vec = I8Vec()


@register_model(I8Vec)
class _I8VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


def _row_pointer(context, builder, aryty, ary, row):
    a = context.make_array(aryty)(context, builder, ary)
    base = builder.bitcast(a.data, _I8.as_pointer())
    off = builder.mul(row, ir.Constant(ir.IntType(64), WIDTH))
    return builder.bitcast(builder.gep(base, [off]), _VT.as_pointer())


@intrinsic
def vload(typingctx, arr, row):
    """Load row ``row`` of an int8 (rows, WIDTH) array as a vector."""
    sig = i8vec(arr, types.int64)

    def codegen(context, builder, signature, args):
        row64 = context.cast(builder, args[1], signature.args[1], types.int64)
        return builder.load(_row_pointer(context, builder, signature.args[0], args[0], row64), align=1)

    return sig, codegen


@intrinsic
def vstore(typingctx, arr, row, vec):
    """Store a vector into row ``row`` of an int8 (rows, WIDTH) array."""
    sig = types.void(arr, types.int64, i8vec)

    def codegen(context, builder, signature, args):
        row64 = context.cast(builder, args[1], signature.args[1], types.int64)
        builder.store(args[2], _row_pointer(context, builder, signature.args[0], args[0], row64), align=1)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vsplat(typingctx, x):
    """A vector with every lane equal to the integer ``x`` (truncated to int8)."""
    sig = i8vec(types.int64)

    def codegen(context, builder, signature, args):
        v = builder.trunc(args[0], _I8)
        vec = builder.insert_element(ir.Constant(_VT, ir.Undefined), v, ir.Constant(ir.IntType(32), 0))
        mask = ir.Constant(ir.VectorType(ir.IntType(32), WIDTH), [0] * WIDTH)
        return builder.shuffle_vector(vec, vec, mask)

    return sig, codegen


def _llvm_binary(name: str, doc: str):
    def typer(typingctx, a, b):
        def codegen(context, builder, signature, args):
            fnty = ir.FunctionType(_VT, [_VT, _VT])
            fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.v{WIDTH}i8")
            return builder.call(fn, args)

        return i8vec(i8vec, i8vec), codegen

    typer.__doc__ = doc
    typer.__name__ = name.replace(".", "_")
    return intrinsic(typer)


vsubs = _llvm_binary("ssub.sat", "a - b, saturated to [-128, 127] per lane.")
vadds = _llvm_binary("sadd.sat", "a + b, saturated to [-128, 127] per lane.")
vsubus = _llvm_binary("usub.sat", "a - b as unsigned bytes, floored at 0 (for non-negative a, b).")
vmin = _llvm_binary("smin", "Lane-wise signed minimum.")
vmax = _llvm_binary("smax", "Lane-wise signed maximum.")


@intrinsic
def vabs(typingctx, a):
    """Lane-wise absolute value (-128 stays -128: keep inputs >= -127)."""

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(_VT, [_VT, ir.IntType(1)])
        fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.abs.v{WIDTH}i8")
        return builder.call(fn, [args[0], ir.Constant(ir.IntType(1), 0)])

    return i8vec(i8vec), codegen


@intrinsic
def vxor(typingctx, a, b):
    """Lane-wise XOR (the sign bit of the result is the product of the signs)."""

    def codegen(context, builder, signature, args):
        return builder.xor(args[0], args[1])

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def vand(typingctx, a, b):
    """Lane-wise AND."""

    def codegen(context, builder, signature, args):
        return builder.and_(args[0], args[1])

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def vor(typingctx, a, b):
    """Lane-wise OR."""

    def codegen(context, builder, signature, args):
        return builder.or_(args[0], args[1])

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def vselect_lt(typingctx, a, b, x, y):
    """Per lane: x where a < b (signed), else y."""

    def codegen(context, builder, signature, args):
        mask = builder.icmp_signed("<", args[0], args[1])
        return builder.select(mask, args[2], args[3])

    return i8vec(i8vec, i8vec, i8vec, i8vec), codegen


@intrinsic
def vselect_eq(typingctx, a, b, x, y):
    """Per lane: x where a == b, else y."""

    def codegen(context, builder, signature, args):
        mask = builder.icmp_signed("==", args[0], args[1])
        return builder.select(mask, args[2], args[3])

    return i8vec(i8vec, i8vec, i8vec, i8vec), codegen


@intrinsic
def vless_mask(typingctx, a, b):
    """Per lane: -1 where a < b (signed), else 0 (subtract it to count how often a < b)."""

    def codegen(context, builder, signature, args):
        return builder.sext(builder.icmp_signed("<", args[0], args[1]), _VT)

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def vshift_right(typingctx, a, s):
    """Per lane: a >> s, logical (for shift counts 0..7 in s; use on non-negative a)."""

    def codegen(context, builder, signature, args):
        return builder.lshr(args[0], args[1])

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def vnegate_where_negative(typingctx, s, x):
    """Per lane: -x where s < 0, else x."""

    def codegen(context, builder, signature, args):
        mask = builder.icmp_signed("<", args[0], ir.Constant(_VT, [0] * WIDTH))
        return builder.select(mask, builder.sub(ir.Constant(_VT, [0] * WIDTH), args[1]), args[1])

    return i8vec(i8vec, i8vec), codegen


@intrinsic
def prefetch_row(typingctx, arr, row):
    """Hint the CPU to bring row ``row`` of an int8 (rows, WIDTH) array into cache (no effect on values)."""
    sig = types.void(arr, types.int64)

    def codegen(context, builder, signature, args):
        row64 = context.cast(builder, args[1], signature.args[1], types.int64)
        row_ptr = _row_pointer(context, builder, signature.args[0], args[0], row64)
        p = builder.bitcast(row_ptr, _I8.as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [_I8.as_pointer(), i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
        builder.call(fn, [p, ir.Constant(i32, 1), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def vsignmask(typingctx, a):
    """The lanes' sign bits as an unsigned integer: bit l set where lane l is negative (``vpmovmskb``)."""
    uint = types.uint64 if WIDTH == 64 else types.uint32

    def codegen(context, builder, signature, args):
        mask = builder.icmp_signed("<", args[0], ir.Constant(_VT, [0] * WIDTH))
        return builder.bitcast(mask, ir.IntType(WIDTH))

    return uint(i8vec), codegen
