# cython: language_level=3
"""The memory the kernels see: outputs, views and overlaps.

Large outputs are allocated through a NumPy data allocator that keeps a few
freed blocks for the next call of the same size (see include/cs_alloc.h):
repeated calls on tens of megabytes then skip the kernel's page faults.
Outputs under 16 MiB are plain ``np.empty`` arrays, and so are all outputs when
another data allocator than the one NumPy had at import is in force (a user's
own handler is respected) or when the environment has
``CSOFTMAX_BLOCK_CACHE=0``.  ``kernel_view`` and ``overlap`` are the C-speed
halves of the Python layer's layout plan and its rule for ``out``.
"""
import os

from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New

import numpy as np

cimport numpy as cnp

cnp.import_array()


cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMem_Handler:
        pass
    object PyDataMem_GetHandler()
    object PyDataMem_SetHandler(object handler)


cdef extern from "cs_alloc.h":
    size_t CS_CACHE_MIN
    size_t CS_CACHE_MAX
    int CS_CACHE_SLOTS
    PyDataMem_Handler cs_handler
    int cs_alloc_init(PyDataMem_Handler *base)
    void cs_cache_info(size_t *nblocks, size_t *nbytes)
    void cs_cache_clear()


cdef object _base = PyDataMem_GetHandler()  # kept alive: its functions are called
if cs_alloc_init(<PyDataMem_Handler *>PyCapsule_GetPointer(_base, "mem_handler")) != 0:
    raise MemoryError("cannot allocate the block cache's lock")
cdef object _handler = PyCapsule_New(&cs_handler, "mem_handler", NULL)
cdef bint _enabled = os.environ.get("CSOFTMAX_BLOCK_CACHE", "1") != "0"


cdef inline bint _use_cache(size_t nbytes):
    return _enabled and nbytes >= CS_CACHE_MIN and PyDataMem_GetHandler() is _base


cdef void _extent(cnp.ndarray a, char **lo, char **hi) noexcept:
    """[lo, hi): the bytes a may touch (empty when a has no elements)."""
    cdef char *p = <char *>cnp.PyArray_DATA(a)
    cdef char *q = p
    cdef int k
    cdef cnp.npy_intp d, s
    for k in range(cnp.PyArray_NDIM(a)):
        d = cnp.PyArray_DIM(a, k)
        s = cnp.PyArray_STRIDE(a, k)
        if d == 0:
            lo[0] = hi[0] = p
            return
        if s > 0:
            q += (d - 1) * s
        else:
            p += (d - 1) * s
    lo[0] = p
    hi[0] = q + cnp.PyArray_ITEMSIZE(a)


def overlap(cnp.ndarray a, cnp.ndarray b):
    """0 when a and b touch no common byte, 1 when they are the same array
    (same data, shape and strides), 2 when they may partly overlap."""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    _extent(a, &alo, &ahi)
    _extent(b, &blo, &bhi)
    if alo >= ahi or blo >= bhi or ahi <= blo or bhi <= alo:
        return 0
    if (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) and cnp.PyArray_NDIM(a) == cnp.PyArray_NDIM(b)
            and cnp.PyArray_ITEMSIZE(a) == cnp.PyArray_ITEMSIZE(b)
            and cnp.PyArray_CompareLists(cnp.PyArray_DIMS(a), cnp.PyArray_DIMS(b), cnp.PyArray_NDIM(a))
            and cnp.PyArray_CompareLists(cnp.PyArray_STRIDES(a), cnp.PyArray_STRIDES(b), cnp.PyArray_NDIM(a))):
        return 1
    return 2


def empty(shape, dtype, order="C"):
    """``np.empty(shape, dtype, order)``; through the block cache when large."""
    cdef cnp.dtype dt = dtype if type(dtype) is cnp.dtype else np.dtype(dtype)
    cdef tuple dims = tuple(shape)
    cdef int nd = len(dims), k
    if nd > cnp.NPY_MAXDIMS:
        return np.empty(dims, dt, order=order)
    cdef cnp.npy_intp d[cnp.NPY_MAXDIMS]
    cdef size_t nbytes = dt.itemsize
    for k in range(nd):
        d[k] = dims[k]
        nbytes *= <size_t>d[k]
    cdef int fortran = order == "F"
    if not _use_cache(nbytes):
        return cnp.PyArray_EMPTY(nd, d, dt.type_num, fortran)
    # NumPy keeps the current handler in a context variable: switching it here
    # changes it for this thread (context) alone, never for a thread allocating
    # at the same moment
    old = PyDataMem_SetHandler(_handler)
    try:
        return cnp.PyArray_EMPTY(nd, d, dt.type_num, fortran)
    finally:
        PyDataMem_SetHandler(old)


def kernel_view(cnp.ndarray a, tuple split, bint transposed):
    """``a`` (through its transpose when ``transposed``) as a ``split`` =
    (outer, C, inner) view whose rows (inner == 1) or inner axis are
    contiguous, aligned, without a copy; None when there is no such view."""
    return _kernel_view(a, split, transposed)


cdef object _kernel_view(cnp.ndarray a, tuple split, bint transposed):
    if transposed:
        a = cnp.PyArray_Transpose(a, NULL)
    cdef cnp.npy_intp dims[3]
    cdef cnp.PyArray_Dims newshape
    cdef cnp.ndarray v
    if not cnp.PyArray_ISALIGNED(a):
        return None
    if cnp.PyArray_IS_C_CONTIGUOUS(a):
        dims[0], dims[1], dims[2] = split
        newshape.ptr, newshape.len = dims, 3
        return cnp.PyArray_Newshape(a, &newshape, cnp.NPY_CORDER)
    try:
        v = a.reshape(split, copy=False)
    except ValueError:
        return None
    # rows when inner == 1 (whatever the array: the result's bits must not
    # depend on the layout of out), else a contiguous inner axis
    if _unit_stride(v, 1 if cnp.PyArray_DIM(v, 2) == 1 else 2):
        return v
    return None


cdef inline bint _unit_stride(cnp.ndarray v, int k) noexcept:
    # an axis of length 1 is contiguous whatever NumPy set its stride to
    return cnp.PyArray_DIM(v, k) == 1 or cnp.PyArray_STRIDE(v, k) == cnp.PyArray_ITEMSIZE(v)


def cache_info():
    """(blocks, bytes) held for reuse."""
    cdef size_t n, b
    cs_cache_info(&n, &b)
    return int(n), int(b)


def enabled():
    """Whether large outputs go through the block cache (off with
    ``CSOFTMAX_BLOCK_CACHE=0``, and while another data allocator is in force)."""
    return bool(_enabled and PyDataMem_GetHandler() is _base)


def clear_cache():
    """Give the held blocks back to NumPy's allocator."""
    cs_cache_clear()


LIMITS = {"min_block": CS_CACHE_MIN, "max_bytes": CS_CACHE_MAX, "slots": CS_CACHE_SLOTS}


def may_write(cnp.ndarray out, tuple inputs, tuple in_place=()):
    """Whether a kernel may write straight into ``out``: it overlaps no input,
    except by being exactly one of ``in_place`` (which the kernel reads before
    writing)."""
    cdef int o
    for a in inputs:
        if a is None:
            continue
        o = overlap(out, a)
        if o == 2 or (o == 1 and not any(a is b for b in in_place)):
            return False
    return True


cdef class Plan:
    """How one reduction maps arrays of a given shape onto kernel views.

    The same index mapping must serve the inputs and the output, so it is chosen
    once (from the first input's layout: ``a`` over ``axes``, one axis or all of
    them, sorted) and applied to every array.  Compiled: it runs on every call.
    """
    cdef readonly tuple shape, split
    cdef readonly bint transposed

    def __cinit__(self, cnp.ndarray a, tuple axes):
        cdef int nd = cnp.PyArray_NDIM(a), ax, k
        cdef cnp.npy_intp outer = 1, inner = 1
        self.shape = (<object>a).shape
        self.transposed = not cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_F_CONTIGUOUS(a)
        if len(axes) == nd:
            self.split = (1, cnp.PyArray_SIZE(a), 1)
            return
        if len(axes) != 1:
            raise ValueError("a plan takes one axis or all of them")
        ax = axes[0]
        # over the transpose when transposed: axis k of it is axis nd-1-k of a
        for k in range(nd):
            if k < ax:
                if self.transposed:
                    inner *= cnp.PyArray_DIM(a, k)
                else:
                    outer *= cnp.PyArray_DIM(a, k)
            elif k > ax:
                if self.transposed:
                    outer *= cnp.PyArray_DIM(a, k)
                else:
                    inner *= cnp.PyArray_DIM(a, k)
        self.split = (outer, cnp.PyArray_DIM(a, ax), inner)

    def view(self, cnp.ndarray arr):
        """The kernel view of ``arr``, or None when its layout has none."""
        return _kernel_view(arr, self.split, self.transposed)

    def operand(self, cnp.ndarray arr):
        """The kernel view of an input, copied into the plan's layout if needed."""
        v = _kernel_view(arr, self.split, self.transposed)
        if v is None:
            v = _kernel_view(np.array(arr, order="F" if self.transposed else "C"), self.split, self.transposed)
        return v

    def output(self, out, dtype, tuple inputs, tuple in_place=()):
        """``(kernel view to write, array it belongs to)``: ``out`` itself when
        the kernel may write into it, else a new array in the plan's layout."""
        if out is not None and out.dtype == dtype:
            v = _kernel_view(out, self.split, self.transposed)
            if v is not None and may_write(out, inputs, in_place):
                return v, out
        res = empty(self.shape, dtype, "F" if self.transposed else "C")
        return _kernel_view(res, self.split, self.transposed), res
