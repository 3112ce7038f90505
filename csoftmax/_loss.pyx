# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Fused softmax cross-entropy: per-row losses and, optionally, the gradient
k_i (s sum(y) - y) in one pass over the logits (no softmax array beside the
gradient), and the weighted total of the losses."""
from libc.string cimport memset

cimport numpy as cnp

from csoftmax._kernels cimport NAN, cs_first_bad_label, cs_intp, cs_mean_weight, cs_sum, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for
from csoftmax._task cimport check_like, dtype_code, stride

cnp.import_array()

cdef int INDEX_ROWS = kernel_id("ce_index_rows")
cdef int PROB_ROWS = kernel_id("ce_prob_rows")


cdef inline int _per_row(cnp.ndarray a, cs_intp N, int typenum, str name) except -1:
    if (cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_DIM(a, 0) != N
            or not cnp.PyArray_IS_C_CONTIGUOUS(a)):
        raise ValueError(f"{name} must be a contiguous array of one entry per row")
    return 0


def cross_entropy(cnp.ndarray z, cnp.ndarray label, cnp.ndarray target, cnp.ndarray grad,
                  cnp.ndarray rscale, double gscale, cnp.ndarray weight, cnp.ndarray class_weight,
                  double smoothing, cs_intp ignore_index, bint mean, int n_threads):
    """Cross-entropy of logits z (N, C), rows contiguous, against class indices
    ``label`` (contiguous intp, N) or probabilities ``target`` (z's dtype and
    shape, rows contiguous; used when label is None).

    A label outside [0, C), other than ignore_index, raises ValueError naming
    it, before anything is written; a row labelled ignore_index adds 0 and
    gets a zero gradient.  The target is (1 - smoothing) y + smoothing / C,
    each class weighted by class_weight (float64, C; None: all 1).  Unless
    grad is None, grad (z's dtype and shape, rows contiguous;
    it may be z itself with class indices) receives k_i (s_i sum(y_i) - y_i),
    k_i = rscale[i] gscale (rscale float64, N, or None: 1).  Returns the
    per-row losses (float64, N), the reduced loss and the denominator D of a
    mean: sum_i w_i class_weight[label_i] over the rows not ignored (N, or the
    summed w, for probabilities).  The reduced loss is the total sum_i w_i L_i
    (w = weight, float64, N, or all 1; summed with compensation), divided by D
    with mean; with mean, every k_i is divided by D too (both nan when D is 0).
    """
    cdef int dt = dtype_code(z)
    if cnp.PyArray_NDIM(z) != 2:
        raise ValueError("the cross-entropy kernel takes (N, C) logits")
    cdef cs_intp N = cnp.PyArray_DIM(z, 0), C = cnp.PyArray_DIM(z, 1)
    if C == 0 or (N > 0 and C > 1 and stride(z, 1) != 1):
        raise ValueError("the cross-entropy kernel needs logits with contiguous, non-empty rows")
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.C = cnp.PyArray_DATA(z), stride(z, 0), C
    cdef cs_intp bad
    if label is not None:
        _per_row(label, N, cnp.NPY_INTP, "label")
        t.label = <const cs_intp *>cnp.PyArray_DATA(label)
        bad = cs_first_bad_label(t.label, N, C, ignore_index)
        if bad >= 0:
            raise ValueError(f"class label {t.label[bad]} is out of range for {C} classes")
    else:
        check_like(z, target, 2)
        if N > 0 and C > 1 and stride(target, 1) != 1:
            raise ValueError("the targets need contiguous rows")
        t.g, t.gs0 = cnp.PyArray_DATA(target), stride(target, 0)
    if grad is not None:
        check_like(z, grad, 2)
        if N > 0 and C > 1 and stride(grad, 1) != 1:
            raise ValueError("the gradient needs contiguous rows")
        t.y, t.ys0 = cnp.PyArray_DATA(grad), stride(grad, 0)
    if rscale is not None:
        _per_row(rscale, N, cnp.NPY_DOUBLE, "rscale")
        t.rscale = <const double *>cnp.PyArray_DATA(rscale)
    t.gscale = gscale
    t.smooth, t.ignore, t.cwsum = smoothing, ignore_index, <double>C
    cdef cnp.ndarray cwt = None
    if class_weight is not None:
        _per_row(class_weight, C, cnp.NPY_DOUBLE, "class_weight")
        t.cweight = <const double *>cnp.PyArray_DATA(class_weight)
        t.cwsum = cs_sum(t.cweight, NULL, C)
        cwt = class_weight.astype((<object>z).dtype, copy=False)   # for the float32 vector loops
        t.cweight_t = cnp.PyArray_DATA(cwt)
    cdef const double *w = NULL
    if weight is not None:
        _per_row(weight, N, cnp.NPY_DOUBLE, "weight")
        w = <const double *>cnp.PyArray_DATA(weight)
    cdef double denom = cs_mean_weight(t.label, N, t.cweight, w, ignore_index)
    if mean:
        t.gscale = gscale / denom if denom != 0 else NAN
    cdef cnp.npy_intp n = N
    cdef cnp.ndarray loss = cnp.PyArray_EMPTY(1, &n, cnp.NPY_DOUBLE, 0)
    t.loss = <double *>cnp.PyArray_DATA(loss)
    cdef double total
    cdef int kid = INDEX_ROWS if label is not None else PROB_ROWS
    with nogil:
        run(kernel(kid, dt), &t, N, threads_for(N * C, n_threads), 0)
        total = cs_sum(t.loss, w, N)
    if mean:
        total = total / denom if denom != 0 else NAN
    return loss, total, denom
