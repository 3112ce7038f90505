# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""softmax and log_softmax over the middle axis of an (outer, C, inner) view.

The Python layer (forward.py) hands over views where either inner == 1 and the
C entries of a row are contiguous, or the inner axis is contiguous; rows (or
tiles of columns) are spread over threads.
"""
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY, NAN, exp, isfinite
from libc.math cimport log as libc_log
from libc.stdlib cimport free, malloc

import numpy as np

cimport numpy as cnp

cnp.import_array()

from csoftmax._kernels cimport CS_PIECE_EXP, CS_PIECE_LOG, CS_PIECE_SCALE, cs_intp, cs_ops
from csoftmax._alloc cimport output_like
from csoftmax._runtime cimport current_ops, threads_for, tile_width

ctypedef fused real:
    float
    double

# A row longer than this is split into pieces of this length that threads
# share (softmax over axis=None of a large array is one such row).
cdef enum:
    PIECE = 16384


cdef inline void _rows(const cs_ops *ops, bint log, const real *x, cs_intp xs, real *y, cs_intp ys,
                       cs_intp n, cs_intp C) noexcept nogil:
    if real is float:
        if log:
            ops.log_softmax_rows_f32(x, xs, y, ys, n, C)
        else:
            ops.softmax_rows_f32(x, xs, y, ys, n, C)
    else:
        if log:
            ops.log_softmax_rows_f64(x, xs, y, ys, n, C)
        else:
            ops.softmax_rows_f64(x, xs, y, ys, n, C)


cdef inline void _cols(const cs_ops *ops, bint log, const real *x, cs_intp xs, real *y, cs_intp ys,
                       cs_intp C, cs_intp W, real *buf) noexcept nogil:
    if real is float:
        if log:
            ops.log_softmax_cols_f32(x, xs, y, ys, C, W, buf)
        else:
            ops.softmax_cols_f32(x, xs, y, ys, C, W, buf)
    else:
        if log:
            ops.log_softmax_cols_f64(x, xs, y, ys, C, W, buf)
        else:
            ops.softmax_cols_f64(x, xs, y, ys, C, W, buf)


cdef inline real _piece_sumexp(const cs_ops *ops, const real *x, cs_intp n, real *e, double *s) noexcept nogil:
    if real is float:
        return ops.piece_sumexp_f32(x, n, e, s)
    else:
        return ops.piece_sumexp_f64(x, n, e, s)


cdef inline void _piece_finish(const cs_ops *ops, const real *x, real *y, cs_intp n, int mode,
                               real a, real b) noexcept nogil:
    if real is float:
        ops.piece_finish_f32(x, y, n, mode, a, b)
    else:
        ops.piece_finish_f64(x, y, n, mode, a, b)


cdef bint _long_row(const cs_ops *ops, bint log, const real *xp, real *yp, cs_intp C, int nt) noexcept nogil:
    """One row of more than PIECE entries, in pieces of PIECE (whatever the
    number of threads, so the result does not depend on it): each piece's max
    m_p and sum s_p, combined into the row's M and S = sum_p s_p exp(m_p - M),
    then each piece finished.  A piece all -inf (a masked span) adds nothing
    and ends as 0 (log: -inf).  False, with x untouched, when a piece's max or
    S is not finite otherwise (nan, +inf, every piece -inf: the row kernel's
    rules) or memory is short: the caller runs the row kernel.  The
    exponentials are kept in y between the passes unless y is x (then they are
    taken again at the end)."""
    cdef cs_intp npc = (C + PIECE - 1) // PIECE, p, j0, n, j
    cdef real *m = <real *>malloc(npc * sizeof(real))
    cdef double *s = <double *>malloc(npc * sizeof(double))
    cdef double M, S
    cdef bint ok = m != NULL and s != NULL
    cdef bint keep = not log and <const void *>xp != <const void *>yp
    cdef bint live = False
    if ok:
        for p in prange(npc, num_threads=nt, schedule="static"):
            j0 = p * PIECE
            n = PIECE if C - j0 > PIECE else C - j0
            m[p] = _piece_sumexp(ops, xp + j0, n, yp + j0 if keep else NULL, &s[p])
            if m[p] == -INFINITY:  # s[p] = 0 if all -inf, nan if nan among them
                s[p] = 0.0
                for j in range(n):
                    if xp[j0 + j] != -INFINITY:
                        s[p] = NAN
                        break
        M = -INFINITY
        for p in range(npc):
            if m[p] == -INFINITY:
                ok = ok and s[p] == 0.0
                continue
            ok = ok and isfinite(m[p])
            live = True
            if m[p] > M:
                M = m[p]
        ok = ok and live
        S = 0.0
        if ok:
            for p in range(npc):
                if s[p] != 0.0:
                    S += s[p] * exp(m[p] - M)
            ok = isfinite(S)
    if ok:
        for p in prange(npc, num_threads=nt, schedule="static"):
            j0 = p * PIECE
            n = PIECE if C - j0 > PIECE else C - j0
            if log:
                _piece_finish(ops, xp + j0, yp + j0, n, CS_PIECE_LOG, <real>M, <real>libc_log(S))
            elif m[p] == -INFINITY:  # exp(-inf - M) = 0
                _piece_finish(ops, xp + j0, yp + j0, n, CS_PIECE_EXP, <real>M, 1)
            elif keep:
                _piece_finish(ops, xp + j0, yp + j0, n, CS_PIECE_SCALE, <real>(exp(m[p] - M) / S), 0)
            else:  # the same exponentials again, the same bits as with keep
                _piece_finish(ops, xp + j0, yp + j0, n, CS_PIECE_EXP, m[p], <real>(exp(m[p] - M) / S))
    free(m)
    free(s)
    return ok


cdef void _rows_threaded(const cs_ops *ops, bint log, const real *xp, cs_intp xs0, real *yp, cs_intp ys0,
                         cs_intp outer, cs_intp C, int nt) noexcept nogil:
    cdef cs_intp k, per, r0
    if outer == 1 and C > PIECE and _long_row(ops, log, xp, yp, C, nt):
        return
    if nt == 1:
        _rows(ops, log, xp, xs0, yp, ys0, outer, C)
        return
    per = (outer + 4 * nt - 1) // (4 * nt)
    for k in prange((outer + per - 1) // per, num_threads=nt, schedule="static"):
        r0 = k * per
        _rows(ops, log, xp + r0 * xs0, xs0, yp + r0 * ys0, ys0,
              per if outer - r0 > per else outer - r0, C)


cdef int _forward(const real[:, :, :] x, real[:, :, :] y, bint log) except -1:
    cdef cs_intp outer = x.shape[0], C = x.shape[1], inner = x.shape[2]
    cdef cs_intp sz = sizeof(real)
    if outer == 0 or C == 0 or inner == 0:
        return 0
    cdef cs_intp xs0 = x.strides[0] // sz, xs1 = x.strides[1] // sz, xs2 = x.strides[2] // sz
    cdef cs_intp ys0 = y.strides[0] // sz, ys1 = y.strides[1] // sz, ys2 = y.strides[2] // sz
    cdef bint rows = inner == 1 and xs1 == 1 and ys1 == 1
    if not rows and (xs2 != 1 or ys2 != 1):
        raise ValueError("kernel views need contiguous rows or a contiguous inner axis")
    cdef const cs_ops *ops = current_ops()
    cdef const real *xp = &x[0, 0, 0]
    cdef real *yp = &y[0, 0, 0]
    cdef int nt = threads_for(outer * C * inner)
    cdef cs_intp k, W, tiles, ntask, o, j0
    cdef real[::1] scratch
    cdef real *bp
    if rows:
        with nogil:
            _rows_threaded(ops, log, xp, xs0, yp, ys0, outer, C, nt)
        return 0
    W = tile_width(C, sz)
    if W > inner:
        W = inner
    tiles = (inner + W - 1) // W
    ntask = outer * tiles
    # one packed tile per thread
    scratch = np.empty(nt * C * W, dtype=np.float32 if real is float else np.float64)
    bp = &scratch[0]
    with nogil:
        for k in prange(ntask, num_threads=nt, schedule="static"):
            o = k // tiles
            j0 = (k % tiles) * W
            _cols(ops, log, xp + o * xs0 + j0, xs1, yp + o * ys0 + j0, ys1, C,
                  W if inner - j0 > W else inner - j0, bp + threadid() * C * W)
    return 0


def forward_last(cnp.ndarray x, bint whole, bint log, out=None):
    """The common call, without views: softmax of a C-contiguous, aligned float32
    or float64 array over its last axis (over all of it when ``whole``), into a
    new array or into ``out`` (same dtype and shape, C-contiguous, either x itself
    or not overlapping it).  None when the call is anything else: the general
    path takes it."""
    cdef int typenum = cnp.PyArray_TYPE(x)
    if (typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT) or not cnp.PyArray_ISCARRAY_RO(x):
        return None
    cdef cs_intp n = cnp.PyArray_SIZE(x)
    cdef int nd = cnp.PyArray_NDIM(x)
    if n == 0 or nd == 0:
        return None
    cdef cnp.ndarray y = output_like(x, out)
    if y is None:
        return None
    cdef cs_intp C = n if whole else cnp.PyArray_DIMS(x)[nd - 1]
    cdef cs_intp outer = n // C
    cdef const cs_ops *ops = current_ops()
    cdef int nt = threads_for(n)
    if typenum == cnp.NPY_DOUBLE:
        with nogil:
            _rows_threaded(ops, log, <const double *>cnp.PyArray_DATA(x), C,
                           <double *>cnp.PyArray_DATA(y), C, outer, C, nt)
    else:
        with nogil:
            _rows_threaded(ops, log, <const float *>cnp.PyArray_DATA(x), C,
                           <float *>cnp.PyArray_DATA(y), C, outer, C, nt)
    return y


def forward_f32(const float[:, :, :] x, float[:, :, :] y, bint log):
    _forward(x, y, log)


def forward_f64(const double[:, :, :] x, double[:, :, :] y, bint log):
    _forward(x, y, log)
