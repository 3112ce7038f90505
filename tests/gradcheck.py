"""The shared numerical gradient checker: central finite differences of any
scalar function, in any working precision (long double for the oracle, float64
for the compiled functions), and a directional variant for inputs too big to
perturb one element at a time.

It shares no code with ``csoftmax`` or ``csoftmax.reference``, so it checks both.
"""
import numpy as np

from helpers import F64, LD

# Each element's step is chosen so that truncation (~ eps_fd**2 |f'''|) and
# rounding (~ eps(f) |f| / eps_fd) are both far below FD_RTOL for the smooth,
# O(1)-curvature losses tested here: in float64 eps_fd = 1e-5 leaves ~1e-10.
FD_EPS = {F64: 1e-5, LD: 1e-6}
FD_RTOL = {F64: 1e-7, LD: 1e-9}


def numerical_grad(f, x, eps=None, dtype=F64):
    """Central-difference gradient of the scalar function ``f`` at ``x``.

    ``(f(x + h e_k) - f(x - h e_k)) / (x_k+ - x_k-)`` for every element ``k``,
    with ``x`` held in ``dtype`` (float64 for the compiled functions, long
    double for the oracle).  The denominator is the step actually taken after
    rounding, so the quotient carries no representation error of ``h``.
    """
    dtype = np.dtype(dtype)
    eps = FD_EPS[dtype] if eps is None else eps
    x = np.array(x, dtype=dtype)
    grad = np.empty_like(x)
    for k in np.ndindex(x.shape):
        hi, lo = x.copy(), x.copy()
        h = eps * max(1.0, abs(float(x[k])))
        hi[k] += h
        lo[k] -= h
        grad[k] = (dtype.type(f(hi)) - dtype.type(f(lo))) / (hi[k] - lo[k])
    return grad


def directional_derivative(f, x, v, eps=None, dtype=F64):
    """``d/dt f(x + t v)`` at ``t = 0`` by a central difference: checks
    ``<grad, v>`` in two calls however large ``x`` is."""
    dtype = np.dtype(dtype)
    eps = FD_EPS[dtype] if eps is None else eps
    x = np.asarray(x, dtype=dtype)
    v = np.asarray(v, dtype=dtype)
    return (float(f(x + eps * v)) - float(f(x - eps * v))) / (2 * eps)


def assert_grad_matches(f, x, grad, *, rtol=None, atol=None, dtype=F64, err_msg=""):
    """``grad`` agrees with the central difference of ``f`` at ``x``, within
    ``rtol`` of the gradient's largest entry (central differences of a sum have
    an absolute, not a relative, error)."""
    dtype = np.dtype(dtype)
    num = numerical_grad(f, x, dtype=dtype)
    rtol = FD_RTOL[dtype] if rtol is None else rtol
    scale = max(1.0, float(np.max(np.abs(num), initial=0.0)))
    atol = rtol * scale if atol is None else atol
    np.testing.assert_allclose(np.asarray(grad, F64), np.asarray(num, F64), rtol=rtol, atol=atol,
                               err_msg=err_msg)
