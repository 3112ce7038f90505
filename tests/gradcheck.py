"""Shared helpers of the gradient tests: a central finite-difference checker and
the SPEC's accuracy bounds.

``numerical_grad`` is the same central difference as the one that checks the
oracle in ``test_reference.py``, made reusable: any scalar function, any
working precision, and a directional variant for inputs too big to perturb one
element at a time.
"""
import numpy as np

LD = np.dtype(np.longdouble)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)

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
        grad[k] = (float(f(hi)) - float(f(lo))) / float(hi[k] - lo[k])
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


def eps_of(dtype):
    """Machine epsilon of the dtype a result is computed in (float16 is computed
    in float32)."""
    dtype = np.dtype(dtype)
    return float(np.finfo(F32 if dtype == F16 else dtype).eps) if dtype.kind == "f" else float(np.finfo(F64).eps)


def softmax_rel_bound(dtype, spread):
    """SPEC "Accuracy": the relative error allowed in a softmax value whose logit
    is ``spread = |x_i - max|`` below its slice's maximum."""
    dtype = np.dtype(dtype)
    if dtype == F32 or dtype == F16:
        return 2.4e-7 * (8 + spread)
    return 4.5e-16 * (16 + spread)


def assert_within(got, want, bound, err_msg=""):
    """``|got - want| <= bound`` elementwise (``nan`` must match ``nan`` and
    infinities must be equal), reporting the worst offender."""
    got = np.asarray(got, dtype=F64)
    with np.errstate(over="ignore"):  # long double beyond float64's range is +-inf
        want = np.asarray(want).astype(F64)
    got, want, bound = np.broadcast_arrays(got, want, np.asarray(bound, dtype=F64))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want), err_msg=f"nan positions differ. {err_msg}")
    inf = np.isinf(want) | np.isinf(got)
    np.testing.assert_array_equal(got[inf], want[inf], err_msg=f"infinities differ. {err_msg}")
    fin = ~(np.isnan(want) | inf)
    err = np.abs(got[fin] - want[fin])
    ok = err <= bound[fin]
    if not ok.all():
        k = int(np.argmax(err - bound[fin]))
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.size} entries off: worst got {got[fin][k]!r}, want {want[fin][k]!r}, "
            f"error {err[k]:.3e} > bound {bound[fin][k]:.3e}. {err_msg}")
