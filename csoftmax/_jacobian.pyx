# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The softmax Jacobian diag(s) - s s^T of each row, written straight into an
(N, C, C) result."""
from libc.string cimport memset

cimport numpy as cnp

from csoftmax._kernels cimport cs_intp, cs_task
from csoftmax._runtime cimport kernel, kernel_id, run, threads_for
from csoftmax._task cimport check_aligned, dtype_code, stride

cnp.import_array()

cdef int ROWS = kernel_id("jacobian_rows")


def jacobian(cnp.ndarray x, cnp.ndarray J, int n_threads):
    """J[i] = diag(s_i) - s_i s_i^T, s_i = softmax(x[i]): x (N, C) with
    contiguous rows, J a C-contiguous (N, C, C) array of x's dtype."""
    cdef int dt = dtype_code(x)
    if cnp.PyArray_NDIM(x) != 2 or cnp.PyArray_NDIM(J) != 3 or cnp.PyArray_TYPE(J) != cnp.PyArray_TYPE(x):
        raise ValueError("the Jacobian kernel takes (N, C) logits and an (N, C, C) result of their dtype")
    cdef cs_intp N = cnp.PyArray_DIM(x, 0), C = cnp.PyArray_DIM(x, 1)
    if (cnp.PyArray_DIM(J, 0) != N or cnp.PyArray_DIM(J, 1) != C or cnp.PyArray_DIM(J, 2) != C
            or not cnp.PyArray_IS_C_CONTIGUOUS(J) or (C > 1 and stride(x, 1) != 1)):
        raise ValueError("the Jacobian kernel needs contiguous rows and a C-contiguous (N, C, C) result")
    check_aligned(x, "the Jacobian kernel's logits")
    check_aligned(J, "the Jacobian kernel's result")
    if N == 0 or C == 0:
        return
    cdef cs_task t
    memset(&t, 0, sizeof(t))
    t.x, t.xs0 = cnp.PyArray_DATA(x), stride(x, 0)
    t.y = cnp.PyArray_DATA(J)
    t.C = C
    with nogil:
        run(kernel(ROWS, dt), &t, N, threads_for(N * C * C, n_threads), 0)
