# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""softmax_backward and log_softmax_backward over the middle axis of
(outer, C, inner) views, laid out as for the forward kernels (see _forward.pyx).
"""
from cython.parallel cimport prange

from csoftmax._kernels cimport cs_ops, cs_intp
from csoftmax._runtime cimport current_ops, threads_for, tile_width

ctypedef fused real:
    float
    double


cdef inline void _rows(const cs_ops *ops, bint log, const real *s, cs_intp ss, const real *g, cs_intp gs,
                       real *o, cs_intp os, cs_intp n, cs_intp C) noexcept nogil:
    if real is float:
        if log:
            ops.log_softmax_backward_rows_f32(s, ss, g, gs, o, os, n, C)
        else:
            ops.softmax_backward_rows_f32(s, ss, g, gs, o, os, n, C)
    else:
        if log:
            ops.log_softmax_backward_rows_f64(s, ss, g, gs, o, os, n, C)
        else:
            ops.softmax_backward_rows_f64(s, ss, g, gs, o, os, n, C)


cdef inline void _cols(const cs_ops *ops, bint log, const real *s, cs_intp ss, const real *g, cs_intp gs,
                       real *o, cs_intp os, cs_intp C, cs_intp W) noexcept nogil:
    if real is float:
        if log:
            ops.log_softmax_backward_cols_f32(s, ss, g, gs, o, os, C, W)
        else:
            ops.softmax_backward_cols_f32(s, ss, g, gs, o, os, C, W)
    else:
        if log:
            ops.log_softmax_backward_cols_f64(s, ss, g, gs, o, os, C, W)
        else:
            ops.softmax_backward_cols_f64(s, ss, g, gs, o, os, C, W)


cdef int _backward(const real[:, :, :] s, const real[:, :, :] g, real[:, :, :] o, bint log) except -1:
    cdef cs_intp outer = s.shape[0], C = s.shape[1], inner = s.shape[2]
    cdef cs_intp sz = sizeof(real)
    if outer == 0 or C == 0 or inner == 0:
        return 0
    cdef cs_intp ss0 = s.strides[0] // sz, ss1 = s.strides[1] // sz
    cdef cs_intp gs0 = g.strides[0] // sz, gs1 = g.strides[1] // sz
    cdef cs_intp os0 = o.strides[0] // sz, os1 = o.strides[1] // sz
    cdef bint rows = inner == 1 and ss1 == 1 and gs1 == 1 and os1 == 1
    if not rows and (s.strides[2] != sz or g.strides[2] != sz or o.strides[2] != sz):
        raise ValueError("kernel views need contiguous rows or a contiguous inner axis")
    cdef const cs_ops *ops = current_ops()
    cdef const real *sp = &s[0, 0, 0]
    cdef const real *gp = &g[0, 0, 0]
    cdef real *op = &o[0, 0, 0]
    cdef int nt = threads_for(outer * C * inner)
    cdef cs_intp k, per, r0, W, tiles, ntask, b, j0
    with nogil:
        if rows:
            if nt == 1:
                _rows(ops, log, sp, ss0, gp, gs0, op, os0, outer, C)
            else:
                per = (outer + 4 * nt - 1) // (4 * nt)
                for k in prange((outer + per - 1) // per, num_threads=nt, schedule="static"):
                    r0 = k * per
                    _rows(ops, log, sp + r0 * ss0, ss0, gp + r0 * gs0, gs0, op + r0 * os0, os0,
                          per if outer - r0 > per else outer - r0, C)
        else:
            W = tile_width(C, sz)
            tiles = (inner + W - 1) // W
            ntask = outer * tiles
            for k in prange(ntask, num_threads=nt, schedule="static"):
                b = k // tiles
                j0 = (k % tiles) * W
                _cols(ops, log, sp + b * ss0 + j0, ss1, gp + b * gs0 + j0, gs1, op + b * os0 + j0, os1,
                      C, W if inner - j0 > W else inner - j0)
    return 0


def backward_f32(const float[:, :, :] s, const float[:, :, :] g, float[:, :, :] out, bint log):
    _backward(s, g, out, log)


def backward_f64(const double[:, :, :] s, const double[:, :, :] g, double[:, :, :] out, bint log):
    _backward(s, g, out, log)
