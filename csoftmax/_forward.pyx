# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""softmax, log_softmax and logsumexp: the compiled entries.

softmax and log_softmax run over the middle axis of an (outer, C, inner) view
of the array (the layout plan of _alloc; copied only when it has no such
view): contiguous rows (inner == 1) or a contiguous inner axis.  Rows, or
tiles of columns, are spread over threads; one row longer than CS_PIECE is split
into pieces that the threads share.
"""
from libc.string cimport memset

cimport numpy as cnp
import numpy as np

from csoftmax._alloc cimport Plan, View, operand, output, plan_init
from csoftmax._kernels cimport CS_F64, CS_PIECE, CS_WHERE_BYTES, cs_intp, cs_lse_pieces_combine, cs_pieces_combine, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for, tiles
from csoftmax._task cimport check_aligned, check_like, dtype_code, pieces_alloc, pieces_free, stride

cnp.import_array()

# Rows of at most this many entries in all are computed holding the GIL
# (NumPy's loops do likewise below 500): letting it go and taking it back
# costs more than the kernel, 50 ns of a 770 ns call on a (10,) vector.
cdef enum:
    HOLD_GIL = 512

cdef int ROWS[2]
cdef int COLS[2]
cdef int FINISH[2]
ROWS[:] = [kernel_id("softmax_rows"), kernel_id("log_softmax_rows")]
COLS[:] = [kernel_id("softmax_cols"), kernel_id("log_softmax_cols")]
FINISH[:] = [kernel_id("softmax_piece_finish"), kernel_id("log_softmax_piece_finish")]
cdef int PIECE_SUMEXP = kernel_id("piece_sumexp")
cdef int WHERE_ROWS[2]
WHERE_ROWS[:] = [kernel_id("softmax_where_rows"), kernel_id("log_softmax_where_rows")]


cdef bint _long_row(cs_task *t, int dt, bint log, int nt, cs_intp itemsize) except -1 nogil:
    """One row of t.C > CS_PIECE entries in pieces (each piece's max and sum,
    merged, then each piece finished), with a mask (t.mask) or none.  False,
    with x untouched, when the pieces cannot be merged (see
    cs_pieces_combine) or memory is short: the row kernel takes the row then.
    Unless y is x, the exponentials are kept in y between the passes.  A
    masked piece is selected into the thread's scratch first."""
    cdef cs_intp npc = pieces_alloc(t, 1)
    cdef bint ok
    if npc == 0:
        return False
    t.keep = not log and t.x != <const void *>t.y
    try:
        run(kernel(PIECE_SUMEXP, dt), t, npc, nt, CS_PIECE * itemsize if t.mask != NULL else 0)
        ok = cs_pieces_combine(t, npc)
        if ok:
            run(kernel(FINISH[log], dt), t, npc, nt, 0)
    finally:
        pieces_free(t)
    return ok


cdef int _rows(cs_task *t, int dt, bint log, int nt, cs_intp itemsize) except -1 nogil:
    """The t.N contiguous rows of t: one long row in pieces if it can be,
    else by the row kernel."""
    if not (t.N == 1 and t.C > CS_PIECE and _long_row(t, dt, log, nt, itemsize)):
        run(kernel(ROWS[log], dt), t, t.N, nt, 0)
    return 0


def softmax(cnp.ndarray a, tuple axes, object out, bint log, int n_threads):
    """The softmax of ``a`` (log_softmax with ``log``), float32 or float64,
    over ``axes`` (one axis or all of them, sorted) on at most n_threads
    threads: written into ``out`` when the kernel may write there (see
    _alloc.output; ``out`` may be ``a``), else into a new array.  Returns the
    array written."""
    cdef int dt = dtype_code(a)
    cdef Plan p
    cdef View vx, vy
    plan_init(&p, a, axes)
    cdef cnp.ndarray x = operand(&p, a, &vx)   # keeps a copy alive while the kernel reads it
    cdef cnp.ndarray y = output(&p, out, a, (a,), (a,), &vy)
    if p.outer == 0 or p.C == 0 or p.inner == 0:
        return y
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.xs1 = vx.data, vx.s0, vx.s1
    t.y, t.ys0, t.ys1 = vy.data, vy.s0, vy.s1
    t.C, t.N = p.C, p.outer
    cdef int nt = threads_for(p.outer * p.C * p.inner, n_threads)
    cdef cs_intp itemsize = cnp.PyArray_ITEMSIZE(a)
    if p.inner == 1:  # contiguous rows (a view's class stride is 1 then)
        if p.outer * p.C <= HOLD_GIL:
            _rows(&t, dt, log, nt, itemsize)
        else:
            with nogil:
                _rows(&t, dt, log, nt, itemsize)
        return y
    cdef cs_intp units = tiles(&t, p.outer, p.inner, itemsize, 1)  # a contiguous inner axis
    with nogil:
        run(kernel(COLS[log], dt), &t, units, nt, p.C * t.W * itemsize)
    return y


def softmax_where(cnp.ndarray a, tuple axes, object out, cnp.ndarray mask, bint log, int n_threads):
    """softmax (log_softmax with ``log``) of ``a`` over ``axes`` (one axis or
    all of them, sorted), only the entries where ``mask`` (bool, ``a``'s
    shape, broadcast or not) is set taking part: written into ``out`` when
    the kernel may write there, else into a new array, as ``softmax``.  The
    mask takes the plan's view of ``a``, copied (in that order, not
    transposed) only when it has none.  Returns the array written."""
    cdef int dt = dtype_code(a)
    cdef Plan p
    cdef View vx, vy, vm
    plan_init(&p, a, axes)
    cdef cnp.ndarray x = operand(&p, a, &vx)
    cdef cnp.ndarray k = operand(&p, mask.view(np.uint8), &vm)
    cdef cnp.ndarray y = output(&p, out, a, (a, mask), (a,), &vy)
    if p.outer == 0 or p.C == 0 or p.inner == 0:
        return y
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.xs1 = vx.data, vx.s0, vx.s1
    t.y, t.ys0, t.ys1 = vy.data, vy.s0, vy.s1
    t.mask, t.ms0, t.ms1 = <const unsigned char *>vm.data, vm.s0, vm.s1
    t.C, t.N = p.C, p.outer
    cdef cs_intp itemsize = cnp.PyArray_ITEMSIZE(a)
    cdef int nt = threads_for(p.outer * p.C * p.inner, n_threads)
    cdef cs_intp scratch = (max(<cs_intp>CS_WHERE_BYTES, p.C * itemsize) + 63) & ~63
    if p.inner == 1:  # contiguous rows, of x, y and the mask
        if p.outer * p.C <= HOLD_GIL:
            run(kernel(WHERE_ROWS[log], dt), &t, p.outer, nt, scratch)
        else:
            with nogil:
                if not (t.N == 1 and t.C > CS_PIECE and _long_row(&t, dt, log, nt, itemsize)):
                    run(kernel(WHERE_ROWS[log], dt), &t, p.outer, nt, scratch)
        return y
    cdef cs_intp units = tiles(&t, p.outer, p.inner, itemsize, 1)  # a contiguous inner axis
    with nogil:
        run(kernel(COLS[log], dt), &t, units, nt, p.C * t.W * itemsize)
    return y


cdef int LOGSUMEXP_ROWS = kernel_id("logsumexp_rows")
cdef int LOGSUMEXP_PIECES = kernel_id("logsumexp_pieces")


cdef bint _lse_long_row(cs_task *t, int dt, int nt, cs_intp itemsize, double *v, double *sg) except -1 nogil:
    """logsumexp of one row of t.C > CS_PIECE entries (weights and a mask, or
    not), in pieces as softmax's long row: each piece's max and sums, merged
    into *v and its sign *sg.  False when they cannot be merged (see
    cs_lse_pieces_combine) or memory is short: the row kernel takes the row
    then.  A piece masked but not weighted is selected into the thread's
    scratch first."""
    cdef cs_intp npc = pieces_alloc(t, 2)
    if npc == 0:
        return False
    try:
        run(kernel(LOGSUMEXP_PIECES, dt), t, npc, nt, CS_PIECE * itemsize if t.mask != NULL and t.g == NULL else 0)
        return cs_lse_pieces_combine(t, npc, dt == CS_F64, v, sg)
    finally:
        pieces_free(t)


def logsumexp(cnp.ndarray x, cnp.ndarray b, cnp.ndarray mask, cnp.ndarray y, cnp.ndarray sign, int n_threads):
    """y[i] = log |sum_j b[i, j] exp(x[i, j])| over the rows of x (N, C), rows
    contiguous (b likewise, or None for all 1; mask, uint8, likewise or None:
    where it is 0 the entry takes no part); sign[i] its sign, or without
    sign y[i] = nan where the sum is negative.  y and sign: contiguous (N,)
    arrays of x's dtype."""
    cdef int dt = dtype_code(x)
    if cnp.PyArray_NDIM(x) != 2:
        raise ValueError("the logsumexp kernel takes (N, C) arrays")
    cdef cs_intp N = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1)
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    if N == 0:
        return
    for a in (x, b, y, sign):
        check_aligned(a, "a logsumexp kernel array")
    if stride(x, 1) != 1:
        raise ValueError("the logsumexp kernel needs contiguous rows")
    t.x, t.xs0, t.C = cnp.PyArray_DATA(x), stride(x, 0), C
    if b is not None:
        check_like(x, b, 2)
        if stride(b, 1) != 1:
            raise ValueError("the logsumexp kernel needs contiguous rows")
        t.g, t.gs0 = cnp.PyArray_DATA(b), stride(b, 0)
    if mask is not None:
        if (cnp.PyArray_TYPE(mask) != cnp.NPY_UINT8 or cnp.PyArray_NDIM(mask) != 2
                or not cnp.PyArray_SAMESHAPE(x, mask) or stride(mask, 1) != 1):
            raise ValueError("the logsumexp mask must be uint8, shaped like x, with contiguous rows")
        t.mask, t.ms0 = <const unsigned char *>cnp.PyArray_DATA(mask), stride(mask, 0)
    for r in (y, sign):
        if r is not None and (cnp.PyArray_TYPE(r) != cnp.PyArray_TYPE(x) or cnp.PyArray_SIZE(r) != N
                              or not cnp.PyArray_IS_C_CONTIGUOUS(r)):
            raise ValueError("the logsumexp results must be contiguous, one entry per row, of x's dtype")
    t.y, t.ys0 = cnp.PyArray_DATA(y), 1
    if sign is not None:
        t.sign = cnp.PyArray_DATA(sign)
    cdef int nt = threads_for(N * C, n_threads)
    cdef double v, sg
    cdef bint pieces = N == 1 and C > CS_PIECE
    with nogil:
        if pieces:
            pieces = _lse_long_row(&t, dt, nt, cnp.PyArray_ITEMSIZE(x), &v, &sg)
        if not pieces:
            run(kernel(LOGSUMEXP_ROWS, dt), &t, N, nt, 0)
    if pieces:  # as the row kernel stores a result (lse_put)
        if sign is not None:
            sign[0] = sg
        y[0] = np.nan if sign is None and sg < 0 else v


cdef int LOGSUMEXP_COLS = kernel_id("logsumexp_cols")


def logsumexp_cols(cnp.ndarray x, cnp.ndarray b, cnp.ndarray mask, cnp.ndarray y, cnp.ndarray sign, int n_threads):
    """y[o, j] = log |sum_c b[o, c, j] exp(x[o, c, j])| over the middle axis
    of x (outer, C, inner), its inner axis contiguous; b, the weights (x's
    dtype and shape, a contiguous inner axis), or None for all 1; mask
    (uint8, likewise) or None: where it is 0 the entry takes no part.
    sign[o, j] the sum's sign (0 for a sum of nothing, nan for a nan), or
    without sign y[o, j] = nan where the sum is negative.  y and sign:
    contiguous arrays of outer * inner entries of x's dtype (sign may be
    None).  Tiles of columns are spread over threads, as softmax's over a
    strided axis."""
    cdef int dt = dtype_code(x)
    if cnp.PyArray_NDIM(x) != 3:
        raise ValueError("the logsumexp column kernel takes (outer, C, inner) arrays")
    cdef cs_intp outer = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1), inner = cnp.PyArray_DIM(x, 2)
    for a in (x, b, y, sign):
        check_aligned(a, "a logsumexp kernel array")
    if stride(x, 2) != 1:
        raise ValueError("the logsumexp column kernel needs a contiguous inner axis")
    if b is not None:
        check_like(x, b, 3)
        if stride(b, 2) != 1:
            raise ValueError("the logsumexp column kernel needs a contiguous inner axis")
    if mask is not None and (cnp.PyArray_TYPE(mask) != cnp.NPY_UINT8 or cnp.PyArray_NDIM(mask) != 3
                             or not cnp.PyArray_SAMESHAPE(x, mask) or stride(mask, 2) != 1):
        raise ValueError("the logsumexp mask must be uint8, shaped like x, with a contiguous inner axis")
    for r in (y, sign):
        if r is not None and (cnp.PyArray_TYPE(r) != cnp.PyArray_TYPE(x) or cnp.PyArray_SIZE(r) != outer * inner
                              or not cnp.PyArray_IS_C_CONTIGUOUS(r)):
            raise ValueError("the logsumexp results must be contiguous, one entry per column, of x's dtype")
    if outer == 0 or C == 0 or inner == 0:
        return
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    cdef cs_intp itemsize = cnp.PyArray_ITEMSIZE(x)
    t.x, t.xs0, t.xs1, t.C = cnp.PyArray_DATA(x), stride(x, 0), stride(x, 1), C
    if b is not None:
        t.g, t.gs0, t.gs1 = cnp.PyArray_DATA(b), stride(b, 0), stride(b, 1)
    if mask is not None:
        t.mask, t.ms0, t.ms1 = <const unsigned char *>cnp.PyArray_DATA(mask), stride(mask, 0), stride(mask, 1)
    cdef cs_intp packed = 1 if b is None else 2   # the tile, and its weights
    cdef cs_intp units = tiles(&t, outer, inner, itemsize, packed)
    t.y, t.ys0 = cnp.PyArray_DATA(y), inner
    if sign is not None:
        t.sign = cnp.PyArray_DATA(sign)
    cdef int nt = threads_for(outer * C * inner, n_threads)
    with nogil:
        run(kernel(LOGSUMEXP_COLS, dt), &t, units, nt, packed * C * t.W * itemsize)
