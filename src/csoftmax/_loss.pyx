# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""Fused softmax cross-entropy: per-row loss and, optionally, the gradient
k_i (s - y) in one pass over the logits (no softmax array beside the gradient).

The Python layer (loss.py) has checked labels, shapes and weights; the per-row
gradient scale k_i is ``rscale[i]`` or, when rscale is None, ``gscale``.
"""
from cython.parallel cimport prange
from libc.math cimport fabs, isfinite

cimport numpy as cnp

cnp.import_array()

from csoftmax._alloc cimport output_like
from csoftmax._kernels cimport cs_ops, cs_intp
from csoftmax._runtime cimport current_ops, threads_for

ctypedef fused real:
    float
    double


cdef inline void _index(const cs_ops *ops, const real *z, cs_intp zs, const cs_intp *lab, real *g, cs_intp gs,
                        const double *rs, double k, double *loss, cs_intp n, cs_intp C) noexcept nogil:
    if real is float:
        ops.ce_index_rows_f32(z, zs, lab, g, gs, rs, k, loss, n, C)
    else:
        ops.ce_index_rows_f64(z, zs, lab, g, gs, rs, k, loss, n, C)


cdef inline void _prob(const cs_ops *ops, const real *z, cs_intp zs, const real *t, cs_intp ts, real *g, cs_intp gs,
                       const double *rs, double k, double *loss, cs_intp n, cs_intp C) noexcept nogil:
    if real is float:
        ops.ce_prob_rows_f32(z, zs, t, ts, g, gs, rs, k, loss, n, C)
    else:
        ops.ce_prob_rows_f64(z, zs, t, ts, g, gs, rs, k, loss, n, C)


cdef void _ce_threaded(const cs_ops *ops, const real *zp, cs_intp zs, const cs_intp *labp,
                       const real *tp, cs_intp ts, real *gp, cs_intp gs, const double *rp,
                       double gscale, double *lp, cs_intp N, cs_intp C, int nt) noexcept nogil:
    """Rows spread over nt threads: class indices labp, or probabilities tp
    when labp is NULL; gp and rp may be NULL."""
    cdef cs_intp k, per, r0, n
    if nt == 1:
        if labp != NULL:
            _index(ops, zp, zs, labp, gp, gs, rp, gscale, lp, N, C)
        else:
            _prob(ops, zp, zs, tp, ts, gp, gs, rp, gscale, lp, N, C)
        return
    per = (N + 4 * nt - 1) // (4 * nt)
    for k in prange((N + per - 1) // per, num_threads=nt, schedule="static"):
        r0 = k * per
        n = per if N - r0 > per else N - r0
        if labp != NULL:
            _index(ops, zp + r0 * zs, zs, labp + r0, NULL if gp == NULL else gp + r0 * gs, gs,
                   NULL if rp == NULL else rp + r0, gscale, lp + r0, n, C)
        else:
            _prob(ops, zp + r0 * zs, zs, tp + r0 * ts, ts, NULL if gp == NULL else gp + r0 * gs, gs,
                  NULL if rp == NULL else rp + r0, gscale, lp + r0, n, C)


cdef int _ce(const real[:, :] z, const cs_intp[::1] label, const real[:, :] target, real[:, :] grad,
             const double[::1] rscale, double gscale, double[::1] loss, bint serial) except -1:
    cdef cs_intp N = z.shape[0], C = z.shape[1]
    cdef cs_intp sz = sizeof(real)
    if N == 0:
        return 0
    if C == 0 or z.strides[1] != sz:
        raise ValueError("kernel views need non-empty contiguous rows")
    if loss.shape[0] != N or (label is not None and label.shape[0] != N):
        raise ValueError("per-row arrays must have one entry per row")
    if rscale is not None and rscale.shape[0] != N:
        raise ValueError("per-row arrays must have one entry per row")
    if grad is not None and (grad.shape[0] != N or grad.shape[1] != C or grad.strides[1] != sz):
        raise ValueError("the gradient must be shaped like the logits, with contiguous rows")
    if target is not None and (target.shape[0] != N or target.shape[1] != C or target.strides[1] != sz):
        raise ValueError("the target must be shaped like the logits, with contiguous rows")
    cdef const cs_ops *ops = current_ops()
    cdef const real *zp = &z[0, 0]
    cdef cs_intp zs = z.strides[0] // sz
    cdef real *gp = NULL
    cdef cs_intp gs = 0
    if grad is not None:
        gp = &grad[0, 0]
        gs = grad.strides[0] // sz
    cdef const double *rp = NULL
    if rscale is not None:
        rp = &rscale[0]
    cdef double *lp = &loss[0]
    cdef const cs_intp *labp = NULL
    cdef const real *tp = NULL
    cdef cs_intp ts = 0
    if label is not None:
        labp = &label[0]
    else:
        tp = &target[0, 0]
        ts = target.strides[0] // sz
    cdef int nt = 1 if serial else threads_for(N * C)
    with nogil:
        _ce_threaded(ops, zp, zs, labp, tp, ts, gp, gs, rp, gscale, lp, N, C, nt)
    return 0


def ce_f32(const float[:, :] z, const cs_intp[::1] label, const float[:, :] target, float[:, :] grad,
           const double[::1] rscale, double gscale, double[::1] loss, bint serial=False):
    _ce(z, label, target, grad, rscale, gscale, loss, serial)


def ce_f64(const double[:, :] z, const cs_intp[::1] label, const double[:, :] target, double[:, :] grad,
           const double[::1] rscale, double gscale, double[::1] loss, bint serial=False):
    _ce(z, label, target, grad, rscale, gscale, loss, serial)


cdef cs_intp _first_bad(const cs_intp *label, cs_intp n, cs_intp C) noexcept nogil:
    cdef cs_intp i
    for i in range(n):
        if label[i] < 0 or label[i] >= C:
            return i
    return -1


def first_bad_label(const cs_intp[::1] label, cs_intp C):
    """The index of the first label outside [0, C), or -1 (one pass, no temporaries)."""
    if label.shape[0] == 0:
        return -1
    return _first_bad(&label[0], label.shape[0], C)


def ce_fast(cnp.ndarray z, cnp.ndarray label, bint mean, double k, bint want_grad, out=None):
    """The common call, without the general path's views: class indices (a
    contiguous intp array of N labels) against C-contiguous float32 or float64
    logits (N, C), N and C at least 1, a mean or summed loss scaled by k.
    The gradient goes to a new array or to ``out`` (same dtype and shape,
    C-contiguous, z itself or not overlapping it).  Returns (loss as a Python
    float, gradient or None), or None when the call is anything else (the
    general path takes it).  A label outside [0, C)
    raises ValueError before anything is computed."""
    cdef int typenum = cnp.PyArray_TYPE(z)
    if ((typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT) or cnp.PyArray_NDIM(z) != 2
            or not cnp.PyArray_ISCARRAY_RO(z)):
        return None
    cdef cs_intp N = cnp.PyArray_DIMS(z)[0], C = cnp.PyArray_DIMS(z)[1]
    if (N == 0 or C == 0 or cnp.PyArray_TYPE(label) != cnp.NPY_INTP or cnp.PyArray_NDIM(label) != 1
            or cnp.PyArray_DIMS(label)[0] != N or not cnp.PyArray_ISCARRAY_RO(label)):
        return None
    cdef const cs_intp *lab = <const cs_intp *>cnp.PyArray_DATA(label)
    cdef cs_intp bad = _first_bad(lab, N, C)
    if bad >= 0:
        raise ValueError(f"class label {lab[bad]} is out of range for {C} classes")
    cdef cnp.ndarray grad = None
    cdef char *gb
    cdef char *lb = <char *>cnp.PyArray_DATA(label)
    if want_grad:
        grad = output_like(z, out)
        if grad is None:
            return None
        gb = <char *>cnp.PyArray_DATA(grad)
        if gb < lb + N * sizeof(cs_intp) and lb < gb + cnp.PyArray_NBYTES(grad):
            return None  # out over the labels: the general path copies
    cdef cnp.ndarray per = cnp.PyArray_EMPTY(1, cnp.PyArray_DIMS(z), cnp.NPY_DOUBLE, 0)
    cdef double *lp = <double *>cnp.PyArray_DATA(per)
    cdef double gscale = k / N if mean else k
    cdef const cs_ops *ops = current_ops()
    cdef int nt = threads_for(N * C)
    if typenum == cnp.NPY_FLOAT:
        with nogil:
            _ce_threaded(ops, <const float *>cnp.PyArray_DATA(z), C, lab, NULL, 0,
                         NULL if grad is None else <float *>cnp.PyArray_DATA(grad), C,
                         NULL, gscale, lp, N, C, nt)
    else:
        with nogil:
            _ce_threaded(ops, <const double *>cnp.PyArray_DATA(z), C, lab, NULL, 0,
                         NULL if grad is None else <double *>cnp.PyArray_DATA(grad), C,
                         NULL, gscale, lp, N, C, nt)
    cdef double total = _sum(lp, N)
    return (total / N if mean else total), grad


cdef double _sum(const double *v, cs_intp n) noexcept nogil:
    """The sum of n per-row losses: blocks of 256 summed in 8 interleaved
    lanes (independent chains: no add waits for the one before), the block
    totals by Neumaier's compensated sum.  An inf or nan term makes the
    correction nan: the plain sum is the answer then."""
    cdef double s = 0.0, c = 0.0, t, b
    cdef double lane[8]
    cdef cs_intp i0, i, k, i1
    for i0 in range(0, n, 256):
        i1 = i0 + 256 if n - i0 > 256 else n
        for k in range(8):
            lane[k] = 0.0
        i = i0
        while i + 8 <= i1:
            for k in range(8):
                lane[k] += v[i + k]
            i += 8
        b = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]))
        while i < i1:
            b += v[i]
            i += 1
        t = s + b
        if fabs(s) >= fabs(b):
            c += (s - t) + b
        else:
            c += (b - t) + s
        s = t
    return s + c if isfinite(c) else s


def total(const double[::1] v):
    """The sum of per-row losses, as the common call takes it."""
    return _sum(&v[0], v.shape[0]) if v.shape[0] else 0.0
