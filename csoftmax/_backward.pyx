# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""softmax_backward and log_softmax_backward over the middle axis of
(outer, C, inner) arrays, laid out as for the forward kernels (see _forward.pyx).
"""
from libc.string cimport memset

cimport numpy as cnp

from csoftmax._kernels cimport cs_intp, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for, tile_width
from csoftmax._task cimport check_like, dtype_code, stride

cnp.import_array()

cdef int ROWS[2]
cdef int COLS[2]
ROWS[:] = [kernel_id("softmax_backward_rows"), kernel_id("log_softmax_backward_rows")]
COLS[:] = [kernel_id("softmax_backward_cols"), kernel_id("log_softmax_backward_cols")]


def backward(cnp.ndarray s, cnp.ndarray g, cnp.ndarray out, bint log, int n_threads):
    """out = s (g - <g, s>) (log: g - exp(s) sum(g)) over axis 1 of
    (outer, C, inner) arrays of one float dtype; out may be s or g."""
    check_like(s, g, 3)
    check_like(s, out, 3)
    cdef int dt = dtype_code(s)
    cdef cs_intp outer = cnp.PyArray_DIM(s, 0), C = cnp.PyArray_DIM(s, 1), inner = cnp.PyArray_DIM(s, 2)
    if outer == 0 or C == 0 or inner == 0:
        return
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.xs1 = cnp.PyArray_DATA(s), stride(s, 0), stride(s, 1)
    t.g, t.gs0, t.gs1 = cnp.PyArray_DATA(g), stride(g, 0), stride(g, 1)
    t.y, t.ys0, t.ys1 = cnp.PyArray_DATA(out), stride(out, 0), stride(out, 1)
    t.C = C
    cdef int nt = threads_for(outer * C * inner, n_threads)
    if inner == 1 and t.xs1 == 1 and t.gs1 == 1 and t.ys1 == 1:
        with nogil:
            run(kernel(ROWS[log], dt), &t, outer, nt, 0)
        return
    if stride(s, 2) != 1 or stride(g, 2) != 1 or stride(out, 2) != 1:
        raise ValueError("kernel arrays need contiguous rows or a contiguous inner axis")
    t.inner = inner
    t.W = min(tile_width(C, cnp.PyArray_ITEMSIZE(s)), inner)
    with nogil:
        run(kernel(COLS[log], dt), &t, outer * ((inner + t.W - 1) // t.W), nt, 0)
