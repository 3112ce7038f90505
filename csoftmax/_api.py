"""From array_likes, axes and ``out`` to what the kernels take: validation,
once per call.  The layout plan and the rule for ``out`` below are compiled
(_alloc.pyx) and run inside each operation's compiled entry.

The kernels compute over the middle axis of ``(outer, C, inner)`` arrays whose
rows are contiguous (``inner == 1``) or whose inner axis is contiguous.  Such a
view of a C-contiguous array exists for every axis, so reducing ``axis=0`` needs
no transposed copy; Fortran-ordered arrays are viewed through their transpose.
Anything else (and an unaligned array) is copied once.

One rule says whether a kernel may write into ``out``: its dtype is the working
dtype, the plan has a kernel view of it, and it shares no memory with an input
unless it is exactly an input the kernel may overwrite (same data, same
strides).  Otherwise the kernel writes a new array, copied into ``out`` after.
"""
import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ._alloc import empty, may_write  # noqa: F401  (the rule for out, compiled)

F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


def result_dtype(dt, name="x"):
    """The dtype a result of an operand of dtype ``dt`` has: float32 and float64
    keep theirs, float16 too (computed in float32), integers, bools and other
    floats give float64, as in SciPy."""
    if dt is F64 or dt is F32 or dt == F64 or dt == F32 or dt == F16:
        return dt
    if dt.kind in "biuf":
        return F64
    raise TypeError(f"{name} must be a real numeric array, got dtype {dt}")


def working(rdt):
    """The dtype a result of dtype ``rdt`` is computed in."""
    return F64 if rdt == F64 else F32


def as_real(x, name="x"):
    """``(array in its working dtype, result dtype)``: one cast at most."""
    a = np.asarray(x)
    dt = a.dtype
    if dt is F64 or dt is F32:
        return a, dt
    rdt = result_dtype(dt, name)
    return a.astype(working(rdt)), rdt


def as_common(x, xname, g, gname):
    """Two operands in their common working dtype, and the result dtype."""
    a, b = np.asarray(x), np.asarray(g)
    dt = a.dtype
    if dt is b.dtype and (dt is F64 or dt is F32):
        return a, b, dt
    rdt = np.result_type(result_dtype(a.dtype, xname), result_dtype(b.dtype, gname))
    w = working(rdt)
    return a.astype(w, copy=False), b.astype(w, copy=False), rdt


def check_out(out, shape, dtype, name="out"):
    """Refuse an ``out`` that cannot hold the result, before anything is written."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, the result has shape {shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


# every axis, for each ndim NumPy allows
ALL_AXES = [tuple(range(n)) for n in range(65)]


def normalize_axes(axis, ndim):
    """Sorted tuple of the axes to reduce over (``None``: all of them)."""
    if axis is None:
        return ALL_AXES[ndim]
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    try:
        return tuple(sorted(normalize_axis_tuple(axis, ndim)))
    except TypeError:
        raise TypeError(f"axis must be None, an integer or a tuple of integers, got {axis!r}") from None


def single_axis(axis, ndim):
    """The class axis as a non-negative int; a tuple of one axis is accepted."""
    axes = normalize_axes(axis, ndim) if axis is not None else ()
    if len(axes) != 1:
        raise ValueError(f"axis must be a single axis, got {axis!r}")
    return axes[0]


def finish(res, out, rdt):
    """The result of a call whose kernel wrote ``res``: ``out`` (filled from
    ``res`` unless it is ``res``) or ``res`` in the result dtype; a 0-d result
    is a scalar."""
    if out is not None:
        if res is not out:
            np.copyto(out, res, casting="unsafe")
        return out
    if res.dtype != rdt:
        res = res.astype(rdt)
    return res[()] if res.ndim == 0 else res
