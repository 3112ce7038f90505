"""Turning array_likes, axes and ``out`` into what the kernels take.

The kernels compute over the middle axis of an ``(outer, C, inner)`` view whose
rows are contiguous (``inner == 1``) or whose inner axis is contiguous.  Such a
view of a C-contiguous array exists for every axis, so reducing ``axis=0`` needs
no transposed copy; Fortran-ordered arrays are viewed through their transpose.
Anything else is copied once.
"""
from math import prod

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

from ._alloc import empty

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)
F16 = np.dtype(np.float16)


def as_real(x, name="x"):
    """``(array, result dtype)``: float32/float64 stay as they are, float16 is
    computed in float32, integers and bools in float64 (as SciPy does)."""
    a = np.asarray(x)
    dt = a.dtype
    if dt == F64 or dt == F32:
        return a, dt
    if dt == F16:
        return a.astype(F32), F16
    if dt.kind in "biuf":
        return a.astype(F64), F64
    raise TypeError(f"{name} must be a real numeric array, got dtype {dt}")


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


def normalize_axes(axis, ndim):
    """Sorted tuple of the axes to reduce over (``None``: all of them)."""
    if axis is None:
        return tuple(range(ndim))
    return tuple(sorted(normalize_axis_tuple(axis, ndim)))


def _plane(arr, before, C, after):
    """A copy-free (outer, C, inner) view the kernels take, or None."""
    inner = prod(after)
    try:
        v = arr.reshape((prod(before), C, inner), copy=False)
    except ValueError:
        return None
    it = v.itemsize
    if (inner == 1 and v.strides[1] == it) or v.strides[2] == it:
        return v
    return None


class Plan:
    """How one reduction maps arrays of a given shape onto kernel views.

    The same index mapping must serve the input and the output, so it is chosen
    once (from the input's layout) and then applied to every array: ``view``
    gives the kernel view of an array or None when its layout has none.
    """

    def __init__(self, a, axes):
        nd = a.ndim
        self.shape = a.shape
        if len(axes) == nd:
            self.transposed = not a.flags.c_contiguous and a.flags.f_contiguous
            self._split = ((), a.size, ())
        elif len(axes) == 1:
            ax = axes[0]
            s = a.shape
            self.transposed = not a.flags.c_contiguous and a.flags.f_contiguous
            if self.transposed:
                s, ax = s[::-1], nd - 1 - ax
            self._split = (s[:ax], s[ax], s[ax + 1:])
        else:
            raise ValueError("Plan takes one axis or all of them")

    def view(self, arr):
        return _plane(arr.T if self.transposed else arr, *self._split)

    def empty(self, dtype):
        return empty(self.shape, dtype, order="F" if self.transposed else "C")

    def operand(self, arr):
        """The kernel view of an input, copied into the plan's layout if needed."""
        v = self.view(arr)
        if v is None:
            v = self.view(np.asarray(arr, order="F" if self.transposed else "C"))
        return v


def writable_view(plan, out, inputs):
    """The kernel view of ``out`` if the kernel may write straight into it: its
    layout fits and it overlaps no input other than being exactly that input."""
    v = plan.view(out)
    if v is None:
        return None
    for a in inputs:
        if np.may_share_memory(out, a) and not (
                a.__array_interface__["data"][0] == out.__array_interface__["data"][0]
                and a.strides == out.strides):
            return None
    return v
