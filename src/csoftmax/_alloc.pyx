# cython: language_level=3
"""Allocation of large outputs through a NumPy data allocator that keeps a few
freed blocks for the next call of the same size (see src/cs_alloc.h): repeated
calls on tens of megabytes then skip the kernel's page faults.  Outputs under
16 MiB are plain ``np.empty`` arrays, and so are all outputs when another data
allocator than the one NumPy had at import is in force (a user's own handler
is respected) or when the environment has ``CSOFTMAX_BLOCK_CACHE=0``.
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


cdef cnp.ndarray new_array(int nd, cnp.npy_intp *dims, int typenum, bint fortran):
    """An uninitialised array; through the block cache when it is large."""
    cdef size_t nbytes = cnp.PyArray_MultiplyList(dims, nd) * cnp.PyDataType_ELSIZE(cnp.PyArray_DescrFromType(typenum))
    if not _use_cache(nbytes):
        return cnp.PyArray_EMPTY(nd, dims, typenum, fortran)
    return empty([dims[i] for i in range(nd)], cnp.PyArray_DescrFromType(typenum), "F" if fortran else "C")


cdef object output_like(cnp.ndarray x, object out):
    """Where a direct path writes a result shaped like the C-contiguous x: a new
    array when out is None, else out itself if it is an ndarray of x's dtype
    and shape, C-contiguous, and x itself or not overlapping it; None when out
    is anything else (the general path takes it)."""
    cdef int typenum = cnp.PyArray_TYPE(x)
    if out is None:
        return new_array(cnp.PyArray_NDIM(x), cnp.PyArray_DIMS(x), typenum, False)
    if type(out) is not cnp.ndarray:
        return None
    cdef cnp.ndarray y = <cnp.ndarray>out
    if (cnp.PyArray_TYPE(y) != typenum or not cnp.PyArray_ISCARRAY(y)
            or not cnp.PyArray_SAMESHAPE(x, y)):
        return None
    cdef char *xb = <char *>cnp.PyArray_DATA(x)
    cdef char *yb = <char *>cnp.PyArray_DATA(y)
    cdef cnp.npy_intp nbytes = cnp.PyArray_NBYTES(x)
    if xb != yb and xb < yb + nbytes and yb < xb + nbytes:
        return None
    return y


def empty(shape, dtype, order="C"):
    """``np.empty(shape, dtype, order)``; through the block cache when large."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= n
    if not _use_cache(nbytes):
        return np.empty(shape, dtype, order=order)
    old = PyDataMem_SetHandler(_handler)
    try:
        return np.empty(shape, dtype, order=order)
    finally:
        PyDataMem_SetHandler(old)


def cache_info():
    """(blocks, bytes) held for reuse."""
    cdef size_t n, b
    cs_cache_info(&n, &b)
    return int(n), int(b)


def clear_cache():
    """Give the held blocks back to NumPy's allocator."""
    cs_cache_clear()


LIMITS = {"min_block": CS_CACHE_MIN, "max_bytes": CS_CACHE_MAX, "slots": CS_CACHE_SLOTS}
