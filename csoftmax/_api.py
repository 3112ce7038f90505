"""From array_likes, axes and ``out`` to what the kernels take: validation and
the layout plan, decided once per call.

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
from math import prod

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ._alloc import empty, kernel_view, overlap

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


_ALL = [tuple(range(n)) for n in range(65)]


def normalize_axes(axis, ndim):
    """Sorted tuple of the axes to reduce over (``None``: all of them)."""
    if axis is None:
        return _ALL[ndim]
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


def may_write(out, inputs, in_place=()):
    """Whether a kernel may write straight into ``out``: it overlaps no input,
    except by being exactly one of ``in_place`` (which the kernel reads before
    writing)."""
    for a in inputs:
        o = overlap(out, a)
        if o == 2 or (o == 1 and not any(a is b for b in in_place)):
            return False
    return True


class Plan:
    """How one reduction maps arrays of a given shape onto kernel views.

    The same index mapping must serve the inputs and the output, so it is chosen
    once (from the first input's layout) and applied to every array.
    """
    __slots__ = ("shape", "transposed", "split")

    def __init__(self, a, axes):
        nd = a.ndim
        self.shape = a.shape
        flags = a.flags
        self.transposed = not flags.c_contiguous and flags.f_contiguous
        if len(axes) == nd:
            self.split = (1, a.size, 1)
        elif len(axes) == 1:
            s, ax = a.shape, axes[0]
            if self.transposed:
                s, ax = s[::-1], nd - 1 - ax
            self.split = (prod(s[:ax]), s[ax], prod(s[ax + 1:]))
        else:
            raise ValueError("a plan takes one axis or all of them")

    def view(self, arr):
        """The kernel view of ``arr``, or None when its layout has none."""
        return kernel_view(arr, self.split, self.transposed)

    def operand(self, arr):
        """The kernel view of an input, copied into the plan's layout if needed."""
        v = self.view(arr)
        if v is None:
            v = self.view(np.array(arr, order="F" if self.transposed else "C"))
        return v

    def output(self, out, dtype, inputs, in_place=()):
        """``(kernel view to write, array it belongs to)``: ``out`` itself when
        the kernel may write into it, else a new array in the plan's layout."""
        if out is not None and out.dtype == dtype:
            v = self.view(out)
            if v is not None and may_write(out, inputs, in_place):
                return v, out
        res = empty(self.shape, dtype, order="F" if self.transposed else "C")
        return self.view(res), res


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
