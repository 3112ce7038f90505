# cython: language_level=3
"""The memory the kernels see: outputs, views and overlaps.

Large outputs are allocated through a NumPy data allocator that keeps a few
freed blocks for the next call of the same size (see include/cs_alloc.h):
repeated calls on tens of megabytes then skip the kernel's page faults.
Outputs under 16 MiB are plain ``np.empty`` arrays, and so are all outputs when
another data allocator than the one NumPy had at import is in force (a user's
own handler is respected) or when the environment has
``CSOFTMAX_BLOCK_CACHE=0``.  The layout plan and the rule
for ``out`` live here too (declared in _alloc.pxd for the compiled entries).
"""
import os

from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_New

import numpy as np

cimport numpy as cnp

from csoftmax._kernels cimport cs_intp

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


cdef int _overlap(cnp.ndarray a, cnp.ndarray b) noexcept:
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


def overlap(cnp.ndarray a, cnp.ndarray b):
    """0 when a and b touch no common byte, 1 when they are the same array
    (same data, shape and strides), 2 when they may partly overlap."""
    return _overlap(a, b)


cdef cnp.ndarray empty_c(int nd, cnp.npy_intp *dims, int type_num, bint fortran):
    """``np.empty`` of a native dtype; through the block cache when large."""
    cdef size_t nbytes = cnp.PyArray_DescrFromType(type_num).itemsize
    cdef int k
    for k in range(nd):
        nbytes *= <size_t>dims[k]
    if not _use_cache(nbytes):
        return cnp.PyArray_EMPTY(nd, dims, type_num, fortran)
    # NumPy keeps the current handler in a context variable: switching it here
    # changes it for this thread (context) alone, never for a thread allocating
    # at the same moment
    old = PyDataMem_SetHandler(_handler)
    try:
        return cnp.PyArray_EMPTY(nd, dims, type_num, fortran)
    finally:
        PyDataMem_SetHandler(old)


def empty(shape, dtype, order="C"):
    """``np.empty(shape, dtype, order)``; through the block cache when large."""
    cdef cnp.dtype dt = dtype if type(dtype) is cnp.dtype else np.dtype(dtype)
    cdef tuple dims = tuple(shape)
    cdef int nd = len(dims), k
    if nd > cnp.NPY_MAXDIMS or not dt.isnative or dt.type_num >= cnp.NPY_OBJECT:
        return np.empty(dims, dt, order=order)
    cdef cnp.npy_intp d[cnp.NPY_MAXDIMS]
    for k in range(nd):
        d[k] = dims[k]
    return empty_c(nd, d, dt.type_num, order == "F")


cdef bint may_write_c(cnp.ndarray out, tuple inputs, tuple in_place) except -1:
    cdef int o
    for a in inputs:
        if a is None:
            continue
        o = _overlap(out, <cnp.ndarray>a)
        if o == 2 or (o == 1 and not any(a is b for b in in_place)):
            return False
    return True


def may_write(cnp.ndarray out, tuple inputs, tuple in_place=()):
    """Whether a kernel may write straight into ``out``: it overlaps no input,
    except by being exactly one of ``in_place`` (which the kernel reads before
    writing)."""
    return may_write_c(out, inputs, in_place)


# The layout plan (declared in _alloc.pxd).  The same index mapping must serve
# the inputs and the output, so it is chosen once, from the first input's
# layout (over one axis or all of them), and applied to every array of the call.

cdef int plan_init(Plan *p, cnp.ndarray a, tuple axes) except -1:
    cdef int nd = cnp.PyArray_NDIM(a), ax, k
    p.outer = p.inner = 1
    p.transposed = not cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_IS_F_CONTIGUOUS(a)
    if len(axes) == nd:
        p.C = cnp.PyArray_SIZE(a)
        return 0
    if len(axes) != 1:
        raise ValueError("a plan takes one axis or all of them")
    ax = axes[0]
    if not 0 <= ax < nd:  # the kernels would index past the shape
        raise ValueError(f"axis {ax} is not an axis of a {nd}-dimensional array")
    # over the transpose when transposed: axis k of it is axis nd-1-k of a
    for k in range(nd):
        if k < ax:
            if p.transposed:
                p.inner *= cnp.PyArray_DIM(a, k)
            else:
                p.outer *= cnp.PyArray_DIM(a, k)
        elif k > ax:
            if p.transposed:
                p.outer *= cnp.PyArray_DIM(a, k)
            else:
                p.inner *= cnp.PyArray_DIM(a, k)
    p.C = cnp.PyArray_DIM(a, ax)
    return 0


cdef inline cs_intp _step(cnp.ndarray v, int k) noexcept:
    # in elements; an axis of length 1 has stride 1 whatever NumPy set it to
    if cnp.PyArray_DIM(v, k) == 1:
        return 1
    return cnp.PyArray_STRIDE(v, k) // cnp.PyArray_ITEMSIZE(v)


cdef bint view_of(const Plan *p, cnp.ndarray a, View *v) except -1:
    """``a`` (through its transpose when the plan is transposed) as the plan's
    (outer, C, inner) view whose rows (inner == 1) or inner axis are
    contiguous, aligned, without a copy; False when there is no such view."""
    if not cnp.PyArray_ISALIGNED(a):
        return False
    v.data = <char *>cnp.PyArray_DATA(a)
    # the transpose of a Fortran-ordered array is C-ordered
    if cnp.PyArray_IS_F_CONTIGUOUS(a) if p.transposed else cnp.PyArray_IS_C_CONTIGUOUS(a):
        v.s0 = p.C * p.inner if p.outer > 1 else 1
        v.s1 = p.inner if p.C > 1 else 1
        v.s2 = 1
        return True
    b = cnp.PyArray_Transpose(a, NULL) if p.transposed else a
    try:
        w = b.reshape((p.outer, p.C, p.inner), copy=False)
    except ValueError:
        return False
    v.s0, v.s1, v.s2 = _step(w, 0), _step(w, 1), _step(w, 2)
    # rows when inner == 1 (whatever the array: the result's bits must not
    # depend on the layout of out), else a contiguous inner axis
    return (v.s1 if p.inner == 1 else v.s2) == 1


cdef cnp.ndarray operand(const Plan *p, cnp.ndarray a, View *v):
    """An input: ``a`` with its view, or a copy in the plan's layout."""
    if view_of(p, a, v):
        return a
    cdef cnp.ndarray c = np.array(a, order="F" if p.transposed else "C")
    if not view_of(p, c, v):
        raise AssertionError("a copy in the plan's order has no kernel view")
    return c


cdef cnp.ndarray output(const Plan *p, object out, cnp.ndarray like, tuple inputs, tuple in_place, View *v):
    """Where the kernel writes a result shaped like ``like``, of its dtype:
    ``out`` itself when it has that dtype, a view, and the kernel may write
    into it (see may_write), else a new array in the plan's layout."""
    # like's dtype is native: the working dtype
    if (out is not None and cnp.PyArray_TYPE(<cnp.ndarray>out) == cnp.PyArray_TYPE(like)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>out)):
        if view_of(p, out, v) and may_write_c(out, inputs, in_place):
            return out
    cdef cnp.ndarray res = empty_c(cnp.PyArray_NDIM(like), cnp.PyArray_DIMS(like), cnp.PyArray_TYPE(like),
                                   p.transposed)
    if not view_of(p, res, v):
        raise AssertionError("a new array in the plan's order has no kernel view")
    return res


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
