# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""softmax_backward and log_softmax_backward: the compiled entry, over the
(outer, C, inner) view of the layout plan, as for the forward kernels (see
_forward.pyx).
"""
from libc.string cimport memset

cimport numpy as cnp

from csoftmax._alloc cimport Plan, View, operand, output, plan_init
from csoftmax._kernels cimport CS_PIECE, cs_intp, cs_sum, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for, tiles
from csoftmax._task cimport check_like, dtype_code, pieces_alloc, pieces_free

cnp.import_array()

cdef int ROWS[2]
cdef int COLS[2]
ROWS[:] = [kernel_id("softmax_backward_rows"), kernel_id("log_softmax_backward_rows")]
COLS[:] = [kernel_id("softmax_backward_cols"), kernel_id("log_softmax_backward_cols")]
cdef int PIECES[2]
cdef int FINISH[2]
PIECES[:] = [kernel_id("softmax_backward_pieces"), kernel_id("log_softmax_backward_pieces")]
FINISH[:] = [kernel_id("softmax_backward_piece_finish"), kernel_id("log_softmax_backward_piece_finish")]


cdef bint _long_row(cs_task *t, int dt, bint log, int nt) except -1 nogil:
    """One row of t.C > CS_PIECE entries in pieces that the threads share, as
    the forward's long row: each piece's sum (of g s; log: of g), the sums
    added with their rounding errors kept, then each piece's output.  False
    when memory is short: the row kernel takes the row then."""
    cdef cs_intp npc = pieces_alloc(t, 1)
    if npc == 0:
        return False
    try:
        run(kernel(PIECES[log], dt), t, npc, nt, 0)
        t.S = cs_sum(t.psum, NULL, npc)
        run(kernel(FINISH[log], dt), t, npc, nt, 0)
    finally:
        pieces_free(t)
    return True


def backward(cnp.ndarray s, cnp.ndarray g, int axis, object out, bint log, int n_threads):
    """s (g - <g, s>) (log: g - exp(s) sum(g)) over ``axis`` of arrays of one
    float dtype and shape: written into ``out`` when the kernel may write
    there (see _alloc.output; ``out`` may be s or g), else into a new array.
    Returns the array written."""
    check_like(s, g, cnp.PyArray_NDIM(s))
    cdef int dt = dtype_code(s)
    cdef Plan p
    cdef View vs, vg, vy
    plan_init(&p, s, (axis,))
    cdef cnp.ndarray s_ = operand(&p, s, &vs)   # keep copies alive while the kernel reads them
    cdef cnp.ndarray g_ = operand(&p, g, &vg)
    cdef cnp.ndarray y = output(&p, out, s, (s, g), (s, g), &vy)
    if p.outer == 0 or p.C == 0 or p.inner == 0:
        return y
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.xs1 = vs.data, vs.s0, vs.s1
    t.g, t.gs0, t.gs1 = vg.data, vg.s0, vg.s1
    t.y, t.ys0, t.ys1 = vy.data, vy.s0, vy.s1
    t.C, t.N = p.C, p.outer
    cdef int nt = threads_for(p.outer * p.C * p.inner, n_threads)
    if p.inner == 1:  # contiguous rows; one long row in pieces
        with nogil:
            if not (p.outer == 1 and p.C > CS_PIECE and _long_row(&t, dt, log, nt)):
                run(kernel(ROWS[log], dt), &t, p.outer, nt, 0)
        return y
    cdef cs_intp units = tiles(&t, p.outer, p.inner, cnp.PyArray_ITEMSIZE(s), 0)  # a contiguous inner axis
    with nogil:
        run(kernel(COLS[log], dt), &t, units, nt, 0)
    return y
