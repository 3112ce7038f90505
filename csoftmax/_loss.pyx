# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Fused softmax cross-entropy: per-row losses and, optionally, the gradient
k_i (s sum(y) - y) in one pass over the logits (no softmax array beside the
gradient), and the weighted total of the losses."""
from libc.stdlib cimport free, malloc
from libc.string cimport memset

import numpy as np

cimport numpy as cnp


cdef extern from "numpy/arrayobject.h":
    object PyArray_Scalar(void *data, cnp.dtype descr, object base)

from csoftmax._alloc cimport Plan, View, operand, output
from csoftmax._kernels cimport CS_SCAN, NAN, cs_intp, cs_mean_weight, cs_sum, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for
from csoftmax._task cimport check_like, dtype_code

cnp.import_array()

cdef int LABEL_SCAN = kernel_id("label_scan")
cdef int INDEX_ROWS = kernel_id("ce_index_rows")
cdef int PROB_ROWS = kernel_id("ce_prob_rows")


_INTP_MAX = np.iinfo(np.intp).max


cdef cnp.ndarray _as_labels(cnp.ndarray t, cs_intp N):
    """Class indices as a contiguous, aligned intp array of N (the kernels
    read them as intp: an unaligned load is undefined).  Integral floats are
    taken; values an intp cannot hold are refused here, the range [0, C) by
    the labels' scan."""
    if (cnp.PyArray_TYPE(t) == cnp.NPY_INTP and cnp.PyArray_NDIM(t) == 1 and cnp.PyArray_IS_C_CONTIGUOUS(t)
            and cnp.PyArray_ISALIGNED(t) and cnp.PyArray_ISNOTSWAPPED(t)):
        return t
    kind = t.dtype.kind
    if kind == "f":
        bad = ~np.isfinite(t) | (t != np.trunc(t))
        if bad.any():
            raise ValueError(f"class labels must be integers, got {t[bad].flat[0].item()!r}")
    elif kind not in "biu":
        raise TypeError(f"class labels must be integers, got dtype {t.dtype}")
    if kind in "fu" and t.size:
        big = t > np.uint64(_INTP_MAX) if kind == "u" else np.abs(t) >= np.float64(2.0 ** 63)
        if big.any():
            value = t[big].flat[0]
            value = int(value) if kind == "u" else value.item()
            raise ValueError(f"class label {value!r} is out of range")
    return np.require(t.reshape(N), dtype=np.intp, requirements=["C", "A"])


cdef inline int _per_row(cnp.ndarray a, cs_intp N, int typenum, str name) except -1:
    if (cnp.PyArray_TYPE(a) != typenum or cnp.PyArray_NDIM(a) != 1 or cnp.PyArray_DIM(a, 0) != N
            or not cnp.PyArray_IS_C_CONTIGUOUS(a) or not cnp.PyArray_ISALIGNED(a)):
        raise ValueError(f"{name} must be a contiguous, aligned array of one entry per row")
    return 0


cdef cs_intp _scan_labels(cs_task *t, cs_intp N, int dt, int n_threads) except -1:
    """Refuse a label outside [0, C) other than t.ignore (ValueError naming
    it); else the number of rows labelled t.ignore."""
    cdef cs_intp units = (N + CS_SCAN - 1) // CS_SCAN, u, ignored = 0
    cdef cs_intp local[8]
    t.nlabel = N
    if units <= 4:
        t.scan = local
    else:
        t.scan = <cs_intp *>malloc(2 * units * sizeof(cs_intp))
    if t.scan == NULL:
        raise MemoryError("cannot allocate the labels' scan")
    try:
        with nogil:
            run(kernel(LABEL_SCAN, dt), t, units, threads_for(N, n_threads), 0)
        for u in range(units):
            if t.scan[2 * u] >= 0:
                raise ValueError(f"class label {t.label[t.scan[2 * u]]} is out of range for {t.C} classes")
            ignored += t.scan[2 * u + 1]
    finally:
        if t.scan != local:
            free(t.scan)
        t.scan = NULL
    return ignored


def cross_entropy(cnp.ndarray z, cnp.ndarray label, cnp.ndarray target, bint want_grad, object out,
                  cnp.ndarray rscale, double gscale, cnp.ndarray weight, cnp.ndarray class_weight,
                  double smoothing, cs_intp ignore_index, bint mean, cnp.dtype loss_dtype, int n_threads):
    """Cross-entropy of logits z, (N, C) or (C,) for one row (float32 or
    float64, any layout: copied once when its rows are not contiguous),
    against class indices ``label`` (contiguous intp, N) or probabilities
    ``target`` (z's dtype and shape; used when label is None).  Labels
    shaped z.shape[:-1], of any integer dtype or integral floats, are taken
    as intp (a copy unless they are already contiguous intp).

    A label outside [0, C), other than ignore_index, raises ValueError naming
    it, before anything is written; a row labelled ignore_index adds 0 and
    gets a zero gradient.  The target is (1 - smoothing) y + smoothing / C,
    each class weighted by class_weight (float64, C; None: all 1).  With
    want_grad, the gradient k_i (s_i sum(y_i) - y_i), k_i = rscale[i] gscale
    (rscale float64, N, or None: 1), is written into ``out`` when the kernel
    may write there (see _alloc.output; with class indices it may be z
    itself), else into a new array shaped like z.

    Returns the per-row losses (float64, N), the reduced loss (a NumPy
    scalar of loss_dtype: the float64 total rounded once), the
    denominator D of a mean and the gradient's array (None without
    want_grad).  D is sum_i w_i class_weight[label_i] over the rows not
    ignored (N, or the summed w, for probabilities).  The reduced loss is the
    total sum_i w_i L_i (w = weight, float64, N, or all 1; summed with
    compensation), divided by D with mean; with mean, every k_i is divided by
    D too (both nan when D is 0).
    """
    cdef int dt = dtype_code(z)
    cdef int nd = cnp.PyArray_NDIM(z)
    if nd != 1 and nd != 2:
        raise ValueError("the cross-entropy kernel takes (N, C) or (C,) logits")
    cdef Plan p  # rows: (N, C, 1)
    p.outer, p.C, p.inner, p.transposed = cnp.PyArray_DIM(z, 0) if nd == 2 else 1, cnp.PyArray_DIM(z, nd - 1), 1, False
    cdef cs_intp N = p.outer, C = p.C
    if C == 0:
        raise ValueError("the cross-entropy kernel needs logits with non-empty rows")
    cdef View vz, vt, vy
    cdef cnp.ndarray z_ = operand(&p, z, &vz)   # keep copies alive while the kernel reads them
    cdef cnp.ndarray target_ = None, y = None
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0, t.C, t.N = vz.data, vz.s0, C, N
    t.ignore = ignore_index
    cdef cs_intp ignored = 0
    if label is not None:
        label = _as_labels(label, N)
        t.label = <const cs_intp *>cnp.PyArray_DATA(label)
        ignored = _scan_labels(&t, N, dt, n_threads)
    else:
        check_like(z, target, nd)
        target_ = operand(&p, target, &vt)
        t.g, t.gs0 = vt.data, vt.s0
    if rscale is not None:
        _per_row(rscale, N, cnp.NPY_DOUBLE, "rscale")
        t.rscale = <const double *>cnp.PyArray_DATA(rscale)
    t.gscale = gscale
    t.smooth, t.cwsum = smoothing, <double>C
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
    cdef double denom = (<double>(N - ignored) if t.cweight == NULL and w == NULL
                         else cs_mean_weight(t.label, N, t.cweight, w, ignore_index))
    if mean:
        t.gscale = gscale / denom if denom != 0 else NAN
    if want_grad:
        # the kernel reads a row's logits before writing it, but may not
        # overwrite the probabilities it reads
        y = output(&p, out, z, (z, label if target is None else target), (z,) if target is None else (), &vy)
        t.y, t.ys0 = vy.data, vy.s0
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
    cdef float total32 = <float>total
    if loss_dtype.type_num == cnp.NPY_FLOAT:
        value = PyArray_Scalar(&total32, loss_dtype, None)
    elif loss_dtype.type_num == cnp.NPY_DOUBLE:
        value = PyArray_Scalar(&total, loss_dtype, None)
    else:
        value = (<object>loss_dtype).type(total)
    return loss, value, denom, y
