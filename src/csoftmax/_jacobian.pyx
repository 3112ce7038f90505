# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
"""The softmax Jacobian diag(s) - s s^T of each row, written straight into an
(N, C, C) result."""
from cython.parallel cimport prange

from csoftmax._kernels cimport cs_ops, cs_intp
from csoftmax._runtime cimport current_ops, threads_for

ctypedef fused real:
    float
    double


cdef inline void _rows(const cs_ops *ops, const real *x, cs_intp xs, real *J, cs_intp n, cs_intp C) noexcept nogil:
    if real is float:
        ops.jacobian_rows_f32(x, xs, J, n, C)
    else:
        ops.jacobian_rows_f64(x, xs, J, n, C)


cdef int _jacobian(const real[:, :] x, real[:, :, ::1] J) except -1:
    cdef cs_intp N = x.shape[0], C = x.shape[1]
    if N == 0 or C == 0:
        return 0
    if x.strides[1] != sizeof(real):
        raise ValueError("kernel views need contiguous rows")
    cdef cs_intp xs = x.strides[0] // sizeof(real)
    cdef const cs_ops *ops = current_ops()
    cdef const real *xp = &x[0, 0]
    cdef real *Jp = &J[0, 0, 0]
    cdef int nt = threads_for(N * C * C)
    cdef cs_intp i
    with nogil:
        if nt == 1:
            _rows(ops, xp, xs, Jp, N, C)
        else:
            for i in prange(N, num_threads=nt, schedule="static"):
                _rows(ops, xp + i * xs, xs, Jp + i * C * C, 1, C)
    return 0


def jacobian_f32(const float[:, :] x, float[:, :, ::1] J):
    _jacobian(x, J)


def jacobian_f64(const double[:, :] x, double[:, :, ::1] J):
    _jacobian(x, J)
