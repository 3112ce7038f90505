"""Shared test helpers: the accuracy bounds every kernel is held to, the
comparisons that enforce them, and the input generators used by more than one
test file.

The bounds are derived in docs/derivations.md, "Accuracy": rounding ``x - max``
in the working precision is amplified by exp, so the error allowed grows with
``|x_i - max|``.  They are defined here once; do not loosen them in a test.
"""
import math
import subprocess
import sys
import tempfile

import numpy as np
from numpy.lib.array_utils import normalize_axis_tuple

LD = np.dtype(np.longdouble)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
FLOATS = [F32, F64]
INF, NAN = np.inf, np.nan
EPS64 = float(np.finfo(F64).eps)
# CS_PIECE (cs_kernels.h): one slice longer than this goes in pieces of this
# length that the threads share
PIECE = 16384

# softmax: relative error <= unit * (base + |x_i - max|), for normal results
SOFTMAX_BOUND = {F64: (4.5e-16, 16), F32: (2.4e-7, 8)}


# ------------------------------------------------------------------ bounds

def eps_of(dtype):
    """Machine epsilon of the dtype a result is computed in (float16 is computed
    in float32; integers and bools in float64)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return EPS64
    return float(np.finfo(F32 if dtype == F16 else dtype).eps)


def softmax_rel_bound(dtype, spread):
    """The relative error allowed in a softmax value whose logit is
    ``spread = |x_i - max|`` below its slice's maximum: 4.5e-16 (16 + spread) in
    float64, 2.4e-7 (8 + spread) in float32 (and float16, before its final
    rounding)."""
    dtype = np.dtype(dtype)
    unit, base = SOFTMAX_BOUND[F64 if dtype.kind != "f" or dtype.itemsize >= 8 else F32]
    return unit * (base + spread)


def log_softmax_abs_bound(dtype, spread, C):
    """The absolute error allowed in a log_softmax value: eps (8 + |x_i - max| + log C),
    eps of the result's dtype."""
    return np.finfo(np.dtype(dtype)).eps * (8 + spread + math.log(max(C, 1)))


# ------------------------------------------------------------------ slices

def axes_of(axis, ndim):
    """The reduced axes of an ``axis`` argument (None: all of them)."""
    return tuple(range(ndim)) if axis is None else normalize_axis_tuple(axis, ndim)


def slice_max(x, axis):
    """Each slice's maximum (long double, kept dims; -inf for an empty slice)."""
    xl = np.asarray(x).astype(LD)
    with np.errstate(all="ignore"):
        return np.max(xl, axis=axes_of(axis, xl.ndim), keepdims=True, initial=-INF)


def spread(x, axis):
    """``|x_i - max|`` of each element's slice (long double) and the slice size C."""
    xl = np.asarray(x).astype(LD)
    axes = axes_of(axis, xl.ndim)
    with np.errstate(all="ignore"):
        delta = np.abs(xl - slice_max(xl, axis))
    return delta, math.prod(xl.shape[a] for a in axes)


# ------------------------------------------------------------------ comparisons

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


def _report(what, mask, x, got, ref, bound):
    idx = np.argwhere(mask)[:5]
    lines = [f"{what}: {int(mask.sum())} of {mask.size} elements out of bounds"]
    for i in map(tuple, idx):
        lines.append(f"  at {i}: x={np.asarray(x)[i]!r} got={got[i]!r} ref={ref[i]!r} "
                     f"bound={bound[i]!r}")
    raise AssertionError("\n".join(lines))


def _check_specials(got, ref):
    """Where the oracle is not finite the result must be exactly it (nan too)."""
    g, r = np.asarray(got), np.asarray(ref)
    bad = np.isnan(g) != np.isnan(r)
    bad |= np.isfinite(r) != np.isfinite(g)
    inf = np.isinf(r)
    bad[inf] |= g[inf] != r[inf]
    if bad.any():
        _report("non-finite mismatch", bad, g, g, r, r)


def assert_softmax_close(got, ref, x, axis, dtype):
    """softmax within its bound: relative error <= softmax_rel_bound for normal
    results (float16 adds its own final rounding), absolute error <= tiny below
    the smallest normal; nan and infinities exactly where the oracle has them."""
    dtype = np.dtype(dtype)
    got = np.asarray(got)
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == np.shape(ref), f"shape {got.shape}, expected {np.shape(ref)}"
    g, r = got.astype(LD), np.asarray(ref).astype(LD)
    _check_specials(g, r)
    delta, _ = spread(x, axis)
    rel = softmax_rel_bound(dtype, delta)
    if dtype == F16:
        rel = rel + np.finfo(F16).eps / 2
    tiny = np.finfo(dtype).tiny
    fin = np.isfinite(r)
    with np.errstate(all="ignore"):
        err = np.abs(g - r)
        normal = fin & (np.abs(r) >= tiny)
        bad = normal & ~(err <= rel * np.abs(r))
        bad |= fin & ~normal & ~(err <= tiny)
    if bad.any():
        _report(f"softmax {dtype}", bad, x, g, r, np.where(normal, rel * np.abs(r), tiny))


def assert_log_softmax_close(got, ref, x, axis, dtype):
    """log_softmax within its bound: absolute error <= eps (8 + |x_i - max| + log C);
    exact where the oracle is not finite or beyond the dtype's range."""
    dtype = np.dtype(dtype)
    got = np.asarray(got)
    assert got.dtype == dtype, f"dtype {got.dtype}, expected {dtype}"
    assert got.shape == np.shape(ref), f"shape {got.shape}, expected {np.shape(ref)}"
    g, r = got.astype(LD), np.asarray(ref).astype(LD)
    with np.errstate(all="ignore"):    # beyond the dtype's range: +-inf
        r = np.where(np.abs(r) > np.finfo(dtype).max, np.sign(r) * INF, r)
    _check_specials(g, r)
    delta, C = spread(x, axis)
    bound = log_softmax_abs_bound(dtype, delta, C)
    fin = np.isfinite(r)
    with np.errstate(all="ignore"):
        bad = fin & ~(np.abs(g - r) <= bound)
    if bad.any():
        _report(f"log_softmax {dtype}", bad, x, g, r, bound)


ASSERT = {"softmax": assert_softmax_close, "log_softmax": assert_log_softmax_close}


def result_dtype(x):
    """The dtype of softmax(x): float16/32/64 kept, everything else float64."""
    dt = np.asarray(x).dtype
    return dt if dt in (F32, F64, F16) else F64


# ------------------------------------------------------------------ inputs

def logits(rng, shape, dtype=F64, scale=8.0, neg_inf_every=None):
    """Random logits: an offset per leading index and a spread per element, so
    slices mixed up by a kernel would not pass; with ``neg_inf_every=k`` every
    k-th element (in C order) is -inf."""
    x = rng.normal(size=shape) * scale * rng.uniform(0.1, 2.0, size=shape)
    x += rng.uniform(-50, 50, size=shape[:1] + (1,) * (len(shape) - 1)) if shape else 0
    x = np.asarray(x, dtype=dtype)
    if neg_inf_every:
        x.flat[::neg_inf_every] = -INF
    return x


TARGET_KINDS = ["index", "onehot", "probs", "unnormalised"]


def make_target(rng, N, C, kind):
    """Targets of N samples over C classes: class indices ("index", or as floats
    "float index"), one-hot rows, probability rows with zeros ("probs"), or
    non-negative rows summing to anything ("unnormalised": the general gradient
    s * sum(y) - y)."""
    if kind == "index":
        return rng.integers(0, C, N)
    if kind == "float index":
        return rng.integers(0, C, N).astype(F64)
    if kind == "onehot":
        return np.eye(C)[rng.integers(0, C, N)]
    y = rng.random((N, C))
    y[rng.random((N, C)) < 0.3] = 0
    return y / y.sum(axis=1, keepdims=True).clip(1e-300) if kind == "probs" else 3 * y


def run_python(code, env=None, timeout=120):
    """Run ``code`` in a fresh interpreter, from a directory outside the source
    tree (whose csoftmax/ folder, without compiled modules, would shadow the
    installed package)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=tempfile.gettempdir())
