"""Tests of ``logsumexp``: SciPy's own cases, then the compiled function against
``scipy.special.logsumexp`` (its specification), ``csoftmax.reference.logsumexp``
(the accuracy oracle, long double for float64) and ``torch.logsumexp``.

Every test runs at each instruction-set level this CPU has (the ``isa``
fixture, module-wide).

The first class adapts ``TestLogSumExp`` of SciPy's
``scipy/special/tests/test_logsumexp.py`` (SciPy 1.17), real input and NumPy
only.  Left out:

* ``test_logsumexp_complex_sign``, ``test_gh21610``,
  ``test_gh21709_small_imaginary``, the complex pairs of
  ``test_gh22601_infinite_elements`` and the complex dtypes of
  ``test_dtypes_a``/``test_dtypes_ab``: csoftmax takes real input only (complex
  input raises TypeError, checked here instead);
* ``test_wrap_radians``: a private helper of SciPy's complex path;
* ``test_device``: array-API devices (csoftmax is NumPy only), and the
  ``array_api_strict`` promotion special case of ``test_dtypes_ab``;
* ``test_xp_invalid_input`` keeps only its NumPy meaning (scalars and lists are
  accepted as arrays).
"""
import itertools as it
import math

import numpy as np
import pytest

import csoftmax
from csoftmax import reference

from helpers import F16, F32, F64, INF, LD, NAN, PIECE, assert_within, logits

pytestmark = [
    pytest.mark.usefixtures("isa"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]

lse = csoftmax.logsumexp

DTYPES = [F16, F32, F64, np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)]


def result_dtype(*arrays):
    """float16/32/64 kept (promoted together), integers and bools give float64."""
    dts = [np.asarray(a).dtype for a in arrays if a is not None]
    dts = [d if d.kind == "f" else F64 for d in dts]
    return np.result_type(*dts)


def eps(dtype):
    return float(np.finfo(dtype).eps)


@pytest.fixture
def rng():
    return np.random.default_rng(20261130)


@pytest.fixture
def sp():
    return pytest.importorskip("scipy.special")


def cond(a, axis, b, keepdims=False, where=None):
    """Condition of the sum: sum |b e^a| / |sum b e^a| (1 without negative weights)."""
    if b is None or not np.any(np.asarray(b) < 0):
        return 1.0
    r = reference.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True, where=where)[0]
    r_abs = reference.logsumexp(a, axis=axis, b=np.abs(b), keepdims=keepdims, where=where)
    with np.errstate(all="ignore"):
        c = np.exp(np.asarray(r_abs, LD) - np.asarray(r, LD))
    return np.where(np.isfinite(c), c, 1.0)


def check_ref(a, axis=None, b=None, keepdims=False, where=None, units=8):
    """Compiled against the oracle: dtype, shape, sign, and
    ``|got - want| <= units eps (1 + |want|) cond`` (eps of the result dtype)."""
    rdt = result_dtype(a, b)
    got, sg = lse(a, axis=axis, b=b, keepdims=keepdims, return_sign=True, where=where)
    want, wsg = reference.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True, where=where)
    assert np.asarray(got).dtype == rdt and np.asarray(sg).dtype == rdt
    assert np.shape(got) == np.shape(want) == np.shape(sg)
    c = cond(a, axis, b, keepdims, where)
    bound = units * eps(rdt) * (1 + np.abs(np.asarray(want, F64))) * c
    assert_within(got, want, bound, err_msg=f"a={a!r} axis={axis} b={b!r}")
    # the sign where the sum is not 0 (nor nan): SciPy's sign of an empty sum
    # is -1; nor within rounding of 0 (weights that cancel, c beyond
    # 1 / (units eps)), where the sign is the rounding's and depends on the
    # order of the additions
    nonzero = (np.asarray(want) > -INF) & (units * eps(rdt) * np.asarray(c) < 1)
    np.testing.assert_array_equal(np.asarray(sg)[nonzero], np.asarray(wsg, F64)[nonzero])
    plain = lse(a, axis=axis, b=b, keepdims=keepdims, where=where)
    np.testing.assert_array_equal(plain, np.where(np.asarray(sg) < 0, NAN, got))
    return got


def check_scipy(sp, a, units=32, **kw):
    """Compiled against scipy.special.logsumexp: type, dtype, shape, values
    (``units`` eps (1 + |want|) cond), sign with return_sign."""
    got = lse(a, **kw)
    want = sp.logsumexp(a, **kw)
    if kw.get("return_sign"):
        (got, sg), (want, wsg) = got, want
        assert type(sg) is type(wsg) and np.asarray(sg).dtype == np.asarray(wsg).dtype
        np.testing.assert_array_equal(sg, wsg)
    assert type(got) is type(want), (type(got), type(want))
    assert np.asarray(got).dtype == np.asarray(want).dtype
    assert np.shape(got) == np.shape(want)
    kw = {k: v for k, v in kw.items() if k in ("axis", "b", "keepdims")}
    c = cond(a, kw.get("axis"), kw.get("b"), kw.get("keepdims", False))
    bound = units * eps(np.asarray(want).dtype) * (1 + np.abs(np.asarray(want, F64))) * c
    assert_within(got, want, bound)
    return got


# ---------------------------------------------------------------- SciPy's cases

class TestScipyCases:
    """SciPy's TestLogSumExp, adapted (see the module docstring)."""

    def test_logsumexp(self):
        assert lse(np.asarray([])) == -INF
        a = np.arange(200.0)
        np.testing.assert_allclose(lse(a), np.log(np.sum(np.exp(a))), rtol=1e-13)
        np.testing.assert_allclose(lse(np.asarray([1000.0, 1000.0])), 1000.0 + math.log(2.0), rtol=1e-13)
        n = 1000
        np.testing.assert_allclose(lse(np.full((n,), 10000)), 10000.0 + math.log(n), rtol=1e-13)

        x = np.asarray([1e-40] * 1000000)
        logx = np.log(x)
        X, logX = np.stack([x, x]), np.stack([logx, logx])
        np.testing.assert_allclose(np.exp(lse(logX)), np.sum(X), rtol=1e-7)
        np.testing.assert_allclose(np.exp(lse(logX, axis=0)), np.sum(X, axis=0), rtol=1e-7)
        np.testing.assert_allclose(np.exp(lse(logX, axis=1)), np.sum(X, axis=1), rtol=1e-7)

        inf, nan = np.asarray([INF]), np.asarray([NAN])
        assert lse(inf) == INF
        assert lse(-inf) == -INF
        assert np.isnan(lse(nan))
        assert lse(np.asarray([-INF, -INF])) == -INF

        a = np.asarray([[1e10, 1e-10], [-1e10, -np.inf]])
        ref = np.asarray([1e10, -1e10])
        np.testing.assert_allclose(lse(a, axis=-1), ref, rtol=1e-13)
        np.testing.assert_allclose(lse(a, axis=-1, keepdims=True), ref[:, None], rtol=1e-13)
        np.testing.assert_allclose(lse(a, axis=(-1, -2)), 1e10, rtol=1e-13)

    def test_logsumexp_b(self):
        a = np.arange(200.0)
        b = np.arange(200.0, 0.0, -1.0)
        np.testing.assert_allclose(lse(a, b=b), np.log(np.sum(b * np.exp(a))), rtol=1e-13)
        np.testing.assert_allclose(lse(np.asarray([1000, 1000]), b=np.asarray([1.2, 1.2])),
                                   1000 + math.log(2 * 1.2), rtol=1e-13)
        x = np.asarray([1e-40] * 100000)
        b = np.linspace(1, 1000, 100000)
        logx = np.log(x)
        X, logX, B = np.stack((x, x)), np.stack((logx, logx)), np.stack((b, b))
        np.testing.assert_allclose(np.exp(lse(logX, b=B)), np.sum(B * X), rtol=1e-7)
        np.testing.assert_allclose(np.exp(lse(logX, b=B, axis=0)), np.sum(B * X, axis=0), rtol=1e-7)
        np.testing.assert_allclose(np.exp(lse(logX, b=B, axis=1)), np.sum(B * X, axis=1), rtol=1e-7)

    def test_logsumexp_sign(self):
        r, s = lse(np.asarray([1, 1, 1]), b=np.asarray([1, -1, -1]), return_sign=True)
        np.testing.assert_allclose(r, 1.0, rtol=1e-13)
        assert s == -1.0

    def test_logsumexp_sign_zero(self):
        r, s = lse(np.asarray([1, 1]), b=np.asarray([1, -1]), return_sign=True)
        assert not np.isfinite(r) and not np.isnan(r) and r < 0
        assert s == 0

    def test_logsumexp_sign_shape(self):
        a = np.ones((1, 2, 3, 4))
        b = np.ones_like(a)
        r, s = lse(a, axis=2, b=b, return_sign=True)
        assert r.shape == s.shape == (1, 2, 4)
        r, s = lse(a, axis=(1, 3), b=b, return_sign=True)
        assert r.shape == s.shape == (1, 3)

    def test_logsumexp_shape(self):
        a = np.ones((1, 2, 3, 4))
        b = np.ones_like(a)
        assert lse(a, axis=2, b=b).shape == (1, 2, 4)
        assert lse(a, axis=(1, 3), b=b).shape == (1, 3)

    def test_logsumexp_b_zero(self):
        np.testing.assert_allclose(lse(np.asarray([1, 10000]), b=np.asarray([1, 0])), 1.0, rtol=1e-13)

    def test_logsumexp_b_shape(self):
        r = lse(np.zeros((4, 1, 2, 1)), b=np.ones((3, 1, 5)))
        np.testing.assert_allclose(r, math.log(4 * 3 * 2 * 5), rtol=1e-13)

    @pytest.mark.parametrize("arg", (1, [1, 2, 3]))
    def test_scalar_and_list_input(self, arg):
        assert lse(arg) == lse(np.asarray(np.atleast_1d(arg)))

    def test_array_like(self):
        np.testing.assert_allclose(lse([1000, 1000]), 1000.0 + math.log(2.0), rtol=1e-13)

    @pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
    def test_dtypes_a(self, dtype):
        res = lse(np.asarray([1000.0, 1000.0], dtype=dtype))
        want_dt = F64 if np.dtype(dtype).kind == "i" else np.dtype(dtype)
        assert res.dtype == want_dt
        np.testing.assert_allclose(res, 1000.0 + math.log(2.0), rtol=eps(want_dt) * 4)

    @pytest.mark.parametrize("dtype_a, dtype_b", list(it.product(["float32", "float64", "int32", "int64"], repeat=2)))
    def test_dtypes_ab(self, dtype_a, dtype_b):
        a = np.asarray([2, 1], dtype=dtype_a)
        b = np.asarray([1, -1], dtype=dtype_b)
        want_dt = np.result_type(dtype_a, dtype_b)
        if want_dt.kind == "i":
            want_dt = F64
        res = lse(a, b=b)
        assert res.dtype == want_dt
        np.testing.assert_allclose(res, math.log(math.exp(2) - math.exp(1)), rtol=eps(want_dt) * 8)

    def test_gh18295(self):
        a = np.asarray([0.0, -40.0])
        # exp(-40) comes from the kernels' exp, within 16 eps of relative error
        np.testing.assert_allclose(lse(a), np.logaddexp(a[0], a[1]), rtol=16 * eps(F64))

    @pytest.mark.parametrize("x, y", list(it.product([-INF, INF], repeat=2)))
    def test_gh22601_infinite_elements(self, x, y):
        a = np.asarray([x, y])
        np.testing.assert_array_equal(lse(a), np.log(np.sum(np.exp(a))))

    def test_no_writeback(self):
        a = np.asarray([5.0, 4.0])
        b = np.asarray([3.0, 2.0])
        lse(a)
        lse(a, b=b)
        np.testing.assert_array_equal(a, [5.0, 4.0])
        np.testing.assert_array_equal(b, [3.0, 2.0])

    def test_gh22903(self):
        a = np.asarray([3.06409428, 0.37251854, 3.87471931])
        b = np.asarray([1.88190708, 2.84174795, -0.85016884])
        np.testing.assert_allclose(lse(a, b=b), lse(a, b=b, return_sign=True)[0], rtol=1e-15)
        assert lse(a, b=b) > 0
        b = np.asarray([1.88190708, 2.84174795, -3.85016884])
        assert np.isnan(lse(a, b=b))

    @pytest.mark.parametrize("a, b, sign_ref", [([INF], None, 1.0), ([INF], [-1.0], -1.0)])
    def test_gh23548(self, a, b, sign_ref):
        val, sign = lse(np.asarray(a), b=None if b is None else np.asarray(b), return_sign=True)
        assert np.isinf(val)
        assert sign == sign_ref


def test_complex_input_raises():
    with pytest.raises(TypeError):
        lse(np.asarray([1 + 1j, 2 - 1j]))
    with pytest.raises(TypeError):
        lse(np.asarray([1.0, 2.0]), b=np.asarray([1j, 1.0]))


# ------------------------------------------------------------ against SciPy

SHAPES_AXES = [
    ((7,), None), ((7,), 0), ((7,), -1), ((5, 9), 1), ((5, 9), 0), ((5, 9), -2), ((5, 9), (0, 1)),
    ((5, 9), None), ((3, 4, 5), (0, 2)), ((3, 4, 5), (-1, -3)), ((3, 4, 5), 1), ((3, 4, 5), (1, 2)),
    ((2, 3, 4, 5), (0, 2, 3)), ((40, 70), -1), ((2000, 40), 0), ((300, 400), 1),  # threaded
    ((1, 100000), -1),  # one wide row
]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_against_scipy(sp, rng, dtype, shape, axis, keepdims):
    x = logits(rng, shape, F64, scale=3.0)
    x = rng.integers(-5, 6, shape).astype(dtype) if dtype.kind in "biu" else x.astype(dtype)
    check_scipy(sp, x, axis=axis, keepdims=keepdims)
    check_scipy(sp, x, axis=axis, keepdims=keepdims, return_sign=True)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("b_kind", ["positive", "zeros", "negatives", "row", "scalar", "int"])
@pytest.mark.parametrize("shape, axis", [((6, 50), -1), ((6, 50), 0), ((4, 5, 6), (0, 2)), ((6, 50), None)], ids=str)
def test_against_scipy_weights(sp, rng, dtype, b_kind, shape, axis):
    x = logits(rng, shape, dtype, scale=2.0)
    b = {"positive": lambda: rng.uniform(0.1, 3, shape),
         "zeros": lambda: np.where(rng.random(shape) < 0.4, 0.0, rng.uniform(0.1, 3, shape)),
         "negatives": lambda: rng.uniform(-1, 3, shape),
         "row": lambda: rng.uniform(0.1, 3, shape[-1:]),          # broadcast
         "scalar": lambda: np.float64(2.5),
         "int": lambda: rng.integers(0, 4, shape)}[b_kind]()
    if b_kind not in ("scalar", "int"):
        b = np.asarray(b).astype(dtype)
    for kw in ({}, {"keepdims": True}, {"return_sign": True}):
        check_scipy(sp, x, axis=axis, b=b, **kw)


SPECIAL_ROWS = [
    [INF], [-INF], [NAN], [-INF, -INF], [INF, INF], [INF, -INF], [INF, NAN], [NAN, -INF],
    [1.0, INF, 2.0], [1.0, -INF, 2.0], [1.0, NAN, 2.0], [-INF, 0.0], [0.0, 0.0], [-1e308, -1e308],
    [1e308, 1e308], [1e308, -1e308], [710.0, 710.0, -710.0], [-745.0, -745.0], [1e10, 1e-10],
]


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("row", SPECIAL_ROWS, ids=str)
def test_special_values_against_scipy(sp, dtype, row):
    with np.errstate(over="ignore"):
        x = np.asarray(row, dtype)
    check_scipy(sp, x, return_sign=True)
    check_scipy(sp, x)
    # the same row among ordinary ones, and in a strided column
    X = np.tile(np.asarray([0.5, -1.0] + [0.0] * (len(row) - 2), dtype)[: len(row)], (5, 1))
    X[2] = x
    check_scipy(sp, X, axis=1, return_sign=True)
    check_scipy(sp, np.ascontiguousarray(X.T), axis=0, return_sign=True)


@pytest.mark.parametrize("row, b", [
    ([INF, 1.0], [0.0, 1.0]), ([NAN, 1.0], [0.0, 1.0]), ([INF, 1.0], [-1.0, 1.0]), ([INF, INF], [1.0, -1.0]),
    ([1.0, 2.0], [0.0, 0.0]), ([1.0, 2.0], [NAN, 1.0]), ([1.0, 2.0], [INF, 1.0]), ([1.0, 1.0], [1.0, -1.0]),
    ([5.0, 5.0, 5.0], [1.0, 1.0, -2.0]), ([1.0, 1.0, 0.0], [1.0, -1.0, 1.0]), ([1.0, 2.0], [1.0, -1.0]),
    ([2.0, 1.0], [-1.0, 1.0]), ([3.0, 3.0], [-0.5, -0.5]), ([1000.0, 999.0], [-1.0, 3.0]),
])
def test_special_weights_against_scipy(sp, row, b):
    x, b = np.asarray(row), np.asarray(b)
    check_scipy(sp, x, b=b, return_sign=True)
    check_scipy(sp, x, b=b)


@pytest.mark.parametrize("shape, axis", [
    ((0,), None), ((0,), 0), ((3, 0), 1), ((3, 0), 0), ((0, 3), 1), ((0, 3), None), ((2, 0, 4), (0, 1)),
    ((2, 0, 4), 2),
], ids=str)
@pytest.mark.parametrize("dtype", [F32, F64, np.dtype(np.int64)], ids=str)
def test_empty_against_scipy(sp, shape, axis, dtype):
    x = np.zeros(shape, dtype)
    for kw in ({}, {"keepdims": True}, {"return_sign": True}, {"b": np.ones(shape)}):
        try:
            sp.logsumexp(x, axis=axis, **kw)
        except IndexError:
            # SciPy 1.17 raises on an empty input reduced over several axes:
            # -inf (sign -1) there, as it gives over one axis
            want = reference.logsumexp(x, axis=axis, keepdims=kw.get("keepdims", False))
            got = lse(x, axis=axis, **kw)
            np.testing.assert_array_equal(got[0] if kw.get("return_sign") else got, want)
            if kw.get("return_sign"):
                np.testing.assert_array_equal(got[1], -1.0)
            continue
        check_scipy(sp, x, axis=axis, **kw)


@pytest.mark.parametrize("dtype, scalar", [(F64, np.float64), (F32, np.float32), (F16, np.float16),
                                           (np.dtype(np.int64), np.float64), (np.dtype(np.bool_), np.float64)],
                         ids=str)
@pytest.mark.parametrize("shape", [(), (1,), (4,), (2, 3)], ids=str)
def test_0d_results_are_numpy_scalars(sp, dtype, scalar, shape):
    x = np.ones(shape, dtype)
    r = lse(x)
    assert type(r) is scalar and r.dtype == np.dtype(scalar)
    r, s = lse(x, return_sign=True)
    assert type(r) is scalar and type(s) is scalar
    assert type(lse(x, b=np.ones(shape, np.float32))) is np.result_type(scalar, np.float32).type
    if shape:
        assert type(lse(x, axis=tuple(range(len(shape))))) is scalar
        assert isinstance(lse(x, keepdims=True), np.ndarray)
    check_scipy(sp, x)
    check_scipy(sp, x, keepdims=True)


# -------------------------------------------------------- against the oracle

@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
def test_accuracy_against_reference(rng, dtype, shape, axis):
    if dtype.kind == "f":
        x = logits(rng, shape, F64, scale=6.0, neg_inf_every=11).astype(dtype)
    else:
        x = rng.integers(-30, 31, shape).astype(dtype)
    check_ref(x, axis)
    check_ref(x, axis, keepdims=True)


@pytest.mark.parametrize("dtype", [F16, F32, F64], ids=str)
@pytest.mark.parametrize("b_kind", ["positive", "zeros", "negatives", "broadcast"])
@pytest.mark.parametrize("shape, axis", [((9, 40), -1), ((9, 40), 0), ((3, 5, 7), (0, 2)), ((200, 400), 1),
                                         ((9, 40), None)], ids=str)
def test_weights_against_reference(rng, dtype, b_kind, shape, axis):
    x = logits(rng, shape, F64, scale=4.0).astype(dtype)
    b = {"positive": lambda: rng.uniform(0.1, 3, shape),
         "zeros": lambda: np.where(rng.random(shape) < 0.4, 0.0, rng.uniform(0.1, 3, shape)),
         "negatives": lambda: rng.uniform(-1, 3, shape),
         "broadcast": lambda: rng.uniform(0.1, 3, (1,) * (len(shape) - 1) + shape[-1:])}[b_kind]()
    check_ref(x, axis, b=b.astype(dtype))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_accuracy_dominant_term_and_long_rows(rng, dtype):
    # one term dominating: the result is its value to the last bit, nearly
    x = np.asarray([0.0] + [-40.0] * 9, dtype)
    check_ref(x, units=2)
    # a long row whose float32 sum would drift
    x = rng.normal(size=(2, 300000)).astype(dtype)
    check_ref(x, -1)
    # large offsets: the rounding of M + log(...) is all there is
    x = (rng.normal(size=(4, 1000)) + 1e6).astype(dtype)
    check_ref(x, -1)


@pytest.mark.parametrize("C", [10, 65, 100, 256, 257, 1000, 3 * PIECE + 5])
def test_float64_result_near_zero_keeps_its_relative_accuracy(C):
    # A row of one 0 and C - 1 entries of -40 sums to 1 + (C - 1) e^-40, which
    # float64 rounds to 1; the terms below the max are kept apart from those
    # at it, so log(...) keeps them: the result (about 4e-16 (C - 1) / 100)
    # is right relative to itself, at every width and in a block of rows as
    # alone.  The bound is that of each term, whose reduced argument may
    # carry half an ulp of 40 where the level has no FMA; summed as one
    # total, the terms would be lost whole.
    x = np.full((6, C), -40.0)
    x[:, 0] = 0.0
    want = float(np.log1p((C - 1) * np.exp(np.asarray(-40.0, LD))))
    bound = (8 + 40) * eps(F64) * want
    assert_within(lse(x, axis=-1), [want] * 6, bound)
    assert_within(lse(x[0]), want, bound)
    assert_within(lse(x[0, ::-1]), want, bound)   # alone, a long row's max in its last piece


@pytest.mark.parametrize("C", [300, 1003])
def test_float64_exponential_of_each_term(isa, rng, C):
    # A row of a 0, one entry t and -inf elsewhere sums to 1 + e^t, and for
    # t <= -37 e^t is below half an ulp of 1: log1p gives it back rounded
    # once, so the result is the kernel's exponential of t itself.  Rows of
    # 300 and more go one at a time (the t in any lane, the last steps'
    # too).  With fused multiply-adds the argument reduction is exact: within
    # one ulp, and at x86-64-v4, whose exponential picks 2^(j/16) from a
    # table and rounds once at the end, within 0.5 ulp and the polynomial's
    # 1.3e-17 (about 0.56 eps relative, where a table without its rounding
    # errors added back would reach 0.9).  Without them (the baseline on
    # x86-64) n fl(log 2) is rounded too: half an ulp of t more.  Below
    # exp(-708.4), about the smallest normal number, the result may be
    # flushed to 0: an absolute error below it.
    n = 4000
    t = -rng.uniform(37.0, 708.0, n)
    t[:8] = [-37.0, -100.0, -700.0, -708.0, -708.39, -708.5, -720.0, -745.0]
    pos = rng.integers(1, C, n)
    pos[:16] = C - 1 - np.arange(16)                # in the last steps
    x = np.full((n, C), -INF)
    x[:, 0] = 0.0
    x[np.arange(n), pos] = t
    want = np.exp(t.astype(LD))
    got = lse(x, axis=-1)
    tiny = want < np.finfo(F64).tiny
    assert np.all(np.abs(got[tiny] - want[tiny]) < np.finfo(F64).tiny)
    rel = np.abs((got[~tiny] - want[~tiny]) / want[~tiny])
    bound = eps(F64) * {"x86-64-v4": 0.6, "x86-64-v3": 1.0}.get(isa, 1.0 + np.abs(t[~tiny]) / 2)
    assert np.all(rel <= bound), f"max {np.max(rel / eps(F64)):.3f} eps"


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("n", [256, 1000, 119000])
def test_long_sums_of_equal_terms(dtype, n):
    # Equal terms are the worst case for a chain of additions: every rounding
    # goes the same way.  A row (and a column) of n entries, half at the max
    # and half one below it, must come within a few ulp of the exact sum.
    x = np.zeros(n, dtype)
    x[1::2] = -1.0
    want = float(np.log(np.asarray(n - n // 2, LD) + (n // 2) * np.exp(np.asarray(-1.0, LD))))
    bound = 8 * eps(dtype) * (1 + abs(want))
    assert_within(lse(x), want, bound)
    assert_within(lse(np.tile(x, (3, 1)), axis=1), [want] * 3, bound)
    cols = np.ascontiguousarray(np.tile(x, (3, 1)).T)
    assert_within(lse(cols, axis=0), [want] * 3, bound)
    # the columns' weighted and masked sums (weights of 1, a mask all set)
    assert_within(lse(cols, axis=0, b=np.ones_like(cols)), [want] * 3, bound)
    assert_within(lse(cols, axis=0, where=np.ones(cols.shape, bool)), [want] * 3, bound)



@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("n", [PIECE + 1, 2 * PIECE, 5 * PIECE + 7])
def test_long_row_in_pieces(rng, dtype, n):
    """One long row, alone, goes in pieces that the threads share: each
    piece's max and sums, merged.  Against the oracle, plain and with where=,
    and within a few ulp of the same row among others (the row kernel)."""
    x = logits(rng, (n,), dtype, scale=4.0)
    got = check_ref(x)
    check_ref(x.reshape(1, n), -1)
    rows = lse(np.tile(x, (2, 1)), axis=-1)
    assert_within(got, rows[0], 4 * eps(dtype) * (1 + abs(float(rows[0]))))
    mask = rng.random(n) < 0.6
    check_ref(x, where=mask)
    # a masked span of whole pieces, and pieces partly masked
    mask[PIECE // 2: n - 3] = False
    check_ref(x, where=mask)
    # the max in the last piece, the rest far below it: whole pieces' sums
    # scale to nothing
    x = np.full(n, -200.0, dtype)
    x[-1] = 0.0
    x[: PIECE // 2] = rng.normal(size=PIECE // 2) - 60
    check_ref(x)
    # every piece's own max far from the row's; the max in two pieces
    x = np.arange(n, dtype=dtype) * dtype.type(1e-2)
    check_ref(x)
    x[0] = x[-1]
    check_ref(x)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("n", [PIECE + 1, 3 * PIECE + 5])
def test_long_row_in_pieces_with_weights(rng, dtype, n):
    """Weights on one long row: positive, with zeros over whole pieces, with
    negatives (a sum of either sign), with a mask; weights that cancel at the
    max, or a whole sum that cancels, go to the row kernel and its rules."""
    x = logits(rng, (n,), dtype, scale=4.0)
    b = rng.uniform(0.1, 3, n).astype(dtype)
    check_ref(x, b=b)
    b[: PIECE + 2] = 0
    check_ref(x, b=b)
    check_ref(x, b=b, where=rng.random(n) < 0.6)
    for lo in (-1.0, -3.0):   # mostly positive, mostly negative
        check_ref(x, b=rng.uniform(lo, 3 + lo, n).astype(dtype))
    # the max twice, of weights 1 and -1, the rest far below: the plain sum
    # of the row kernel's fallback, alone, among rows and down columns (its
    # rounding errors kept: a chain of additions was 1e-3 off at n = 16385)
    x = np.full(n, -30.0, dtype)
    x[0] = x[-1] = 0.0
    b = np.ones(n, dtype)
    b[-1] = -1
    check_ref(x, b=b)
    rows, brows = np.tile(x, (2, 1)), np.tile(b, (2, 1))
    check_ref(rows, -1, b=brows)
    check_ref(np.ascontiguousarray(rows.T), 0, b=np.ascontiguousarray(brows.T))
    # a sum that cancels exactly: 0, -inf with sign 0
    x[:] = 0.0
    b[: n // 2], b[n // 2: 2 * (n // 2)], b[2 * (n // 2):] = 1, -1, 0
    got, sg = lse(x, b=b, return_sign=True)
    assert got == -INF and sg == 0


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("special", [INF, NAN, -INF, "masked"])
def test_long_row_special_values(sp, rng, dtype, special, where):
    """A piece holding +inf or nan, a piece all -inf or masked out: the row
    kernel's rules (SciPy's) whichever piece it is in; the row all -inf or
    all masked out gives -inf."""
    n = 3 * PIECE
    x = logits(rng, (n,), dtype)
    mask = np.ones(n, bool)
    part = slice(0, PIECE) if where == "first" else slice(2 * PIECE, n)
    if special == -INF:
        x[part] = -INF
    elif special == "masked":
        mask[part] = False
        x[part][3] = NAN    # masked out: takes no part
    else:
        x[part][5] = special
    check_ref(x, where=mask)
    if special != "masked":
        check_scipy(sp, x, return_sign=True)
    x[:] = -INF
    check_scipy(sp, x, return_sign=True)
    got, sg = lse(logits(rng, (n,), dtype), where=np.zeros(n, bool), return_sign=True)
    assert got == -INF and sg == 0


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("x, b, want, wsg", [
    # an entry of weight 0 takes no part even at +inf, beside another +inf
    ([INF, INF, 1.0], [0.0, 1.0, 1.0], INF, 1.0),
    ([INF, INF, 1.0], [0.0, -1.0, 1.0], INF, -1.0),
    ([NAN, INF], [0.0, 2.0], INF, 1.0),
    # weights that cancel exactly at the max: a sum of 0, not a rounding residue
    ([1.0, 1.0, 0.0, 1.0, 1.0], [26.0, 42.0, 0.0, -15.0, -53.0], -INF, 0.0),
    ([1.0, 1.0, 0.5, 0.5], [3.0, -3.0, 2.0, -2.0], -INF, 0.0),
    ([1e30, 1e30], [1.0, -1.0], -INF, 0.0),
])
def test_weights_that_take_no_part_or_cancel(dtype, x, b, want, wsg):
    x, b = np.asarray(x, dtype), np.asarray(b, dtype)
    for xx, bb, axis in [(x, b, -1), (np.tile(x, (3, 1)), np.tile(b, (3, 1)), 1),
                         (np.tile(x, (3, 1)).T, np.tile(b, (3, 1)).T, 0)]:
        got, sg = lse(xx, axis=axis, b=bb, return_sign=True)
        np.testing.assert_array_equal(got, np.full(np.shape(got), want, dtype))
        np.testing.assert_array_equal(sg, np.full(np.shape(got), wsg, dtype))
        ref, rsg = reference.logsumexp(xx, axis=axis, b=bb, return_sign=True)
        np.testing.assert_array_equal(np.asarray(ref, F64), np.asarray(got, F64))
    # the same through where= (weight 1 where True)
    if np.all((b == 0) | (b == 1)):
        got, sg = lse(x, where=b != 0, return_sign=True)
        assert (got, sg) == (want, wsg)


def special_rows(rng, n, C, dtype):
    """n rows of C: random, some dominated by one term, some whose result is
    not finite (+inf, a row of -inf, a nan, a -inf entry)."""
    x = logits(rng, (n, C), F64, scale=4.0).astype(dtype)
    x[::7] = -40.0
    x[::7, 0] = 0.0
    x[::97, C // 2] = INF
    x[50::101] = -INF
    x[30::103, C - 1] = NAN
    x[70::109, 0] = -INF
    return x


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("shape, axis", [((40, 300), 0), ((3, 17, 600), 1), ((3000, 20), 0), ((2, 64, 5, 7), 1),
                                         ((1, 5, 1000), 1), ((65, 3, 130), 0)], ids=str)
def test_strided_axis_in_tiles(rng, dtype, shape, axis):
    # One axis of a C-contiguous array that is not the last is reduced in
    # place, in tiles of columns: each column must get what the same values
    # get as a row (the same bits where rows, up to 64 entries, go the same
    # way), the oracle's value and SciPy's sign.
    kept, C = shape[:axis] + shape[axis + 1:], shape[axis]
    rows = special_rows(rng, math.prod(kept), C, dtype)
    x = np.ascontiguousarray(np.moveaxis(rows.reshape(kept + (C,)), -1, axis))
    got, sg = lse(x, axis=axis, return_sign=True)
    want, wsg = lse(rows, axis=-1, return_sign=True)
    assert got.shape == sg.shape == kept
    np.testing.assert_array_equal(sg.ravel(), wsg)
    if C <= 64:
        np.testing.assert_array_equal(got.ravel(), want)
    check_ref(x, axis)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("kind", ["plain", "where", "weights"])
def test_strided_axis_from_memory(rng, dtype, kind):
    # an outer block of 8 MiB or more is packed in tiles of another width,
    # its strips prefetched: each column gets the bits it gets in a narrow
    # copy (in cache, the same arithmetic), and the oracle's value
    C = 2000
    rows = special_rows(rng, (8 << 20) // (C * np.dtype(dtype).itemsize) + 9, C, dtype)
    where, b = weights_and_mask(rng, rows, kind) if kind != "plain" else (None, None)

    def cols(a, j0=0, j1=None):
        return None if a is None else np.ascontiguousarray(a[j0:j1].T)
    got, sg = lse(cols(rows), axis=0, b=cols(b), where=cols(where), return_sign=True)
    n = len(rows)
    for j0, j1 in [(0, 40), (n // 2 - 17, n // 2 + 20), (n - 37, n)]:
        part, psg = lse(cols(rows, j0, j1), axis=0, b=cols(b, j0, j1), where=cols(where, j0, j1),
                        return_sign=True)
        np.testing.assert_array_equal(part, got[j0:j1], err_msg=f"columns {j0}-{j1}")
        np.testing.assert_array_equal(psg, sg[j0:j1], err_msg=f"columns {j0}-{j1}")
    if kind == "plain":
        check_ref(cols(rows[::13]), 0)


def weights_and_mask(rng, x, kind):
    """where= and weights b for the rows of x (kind: plain, where, weights or
    both): the mask and the zero weights leave out some infinities and nans,
    and all of some rows; negative weights make some sums negative, or cancel
    (x changed to that end)."""
    C = x.shape[1]
    where = b = None
    if kind in ("where", "both"):
        where = rng.random(x.shape) < 0.7
        where[::7, 0] = True        # the dominant term of those rows stays
        where[5::11] = False        # rows with nothing to sum
    if kind in ("weights", "both"):
        b = rng.uniform(-0.5, 2.0, x.shape).astype(x.dtype)
        b[rng.random(x.shape) < 0.2] = 0
        b[::7, 0] = 1.0
        b[9::13] = 0                # rows of weight 0
        b[3::17, :2] = [1.0, -1.0][:C]
        x[3::17, :2] = x[3::17, :1]     # two terms that cancel exactly
    return where, b


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("shape, axis", [((40, 300), 0), ((3, 17, 600), 1), ((300, 20), 0), ((2, 64, 5, 7), 1),
                                         ((1, 65, 1000), 1), ((130, 3, 30), 0)], ids=str)
@pytest.mark.parametrize("kind", ["where", "weights", "both"])
def test_strided_axis_in_tiles_weights_and_where(rng, dtype, shape, axis, kind):
    # With weights and where= too, an axis that is not the last of a
    # C-contiguous array is reduced in tiles of columns: each column must
    # get the same bits and sign as its values get as a row up to 64 entries
    # (rows that short go the same way), and the oracle's value and sign (a
    # longer row sums by other roundings, so a sum within rounding of 0, as
    # weights that cancel give, may take the other sign there).
    kept, C = shape[:axis] + shape[axis + 1:], shape[axis]
    rows = special_rows(rng, math.prod(kept), C, dtype)
    where, b = weights_and_mask(rng, rows, kind)

    def cols(a):
        return None if a is None else np.ascontiguousarray(np.moveaxis(a.reshape(kept + (C,)), -1, axis))
    x = cols(rows)
    got, sg = lse(x, axis=axis, b=cols(b), where=cols(where), return_sign=True)
    want, wsg = lse(rows, axis=-1, b=b, where=where, return_sign=True)
    assert got.shape == sg.shape == kept
    if C <= 64:
        np.testing.assert_array_equal(sg.ravel(), wsg)
        np.testing.assert_array_equal(got.ravel(), want)
    check_ref(x, axis, b=cols(b), where=cols(where))
    # a mask and weights broadcast along the reduced axis, and along the
    # inner ones (no contiguous inner axis: copied, in x's order)
    for pick in (0, -1):
        sub = tuple(slice(0, 1) if k == axis or (pick == -1 and k > axis) else slice(None)
                    for k in range(len(shape)))
        bb = None if b is None else cols(b)[sub]
        ww = None if where is None else cols(where)[sub]
        got = lse(x, axis=axis, b=bb, where=ww, return_sign=True)
        full = [None if a is None else np.ascontiguousarray(np.broadcast_to(a, shape)) for a in (bb, ww)]
        np.testing.assert_array_equal(got, lse(x, axis=axis, b=full[0], where=full[1], return_sign=True))


@pytest.mark.parametrize("kind", ["where", "weights", "both"])
def test_strided_axis_without_a_transposed_copy(rng, kind):
    # Over axis 0 of a C-contiguous array the weights and the mask are read in
    # place as x is: nothing of x's size is allocated.
    tracemalloc = pytest.importorskip("tracemalloc")
    x = rng.standard_normal((300, 1000))
    b = rng.uniform(0.5, 2.0, x.shape) if kind != "where" else None
    where = rng.random(x.shape) < 0.5 if kind != "weights" else None
    lse(x, axis=0, b=b, where=where)
    tracemalloc.start()
    try:
        lse(x, axis=0, b=b, where=where)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 0.5 * x.nbytes


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [1, 2, 10, 33, 64, 65, 96, 128, 256, 257, 300, 1024, 1025, 5000])
@pytest.mark.parametrize("kind", ["plain", "where", "weights", "both"])
def test_short_rows_in_blocks(rng, dtype, C, kind):
    # Rows of up to 64 entries are taken many at a time, with where= and
    # weights too; rows without weights of up to 4 KiB (float32: C = 1024)
    # or 2 KiB (float64: C = 256) four at a time, masked ones selected first,
    # a block's last ones through a buffer; longer ones one at a time, masked
    # ones of up to 16 KiB selected first (5000 past that).  A call of many
    # rows, some
    # dominated by one term, some
    # whose result is not finite, must give every row what it gives alone, the
    # oracle's value and sign, and SciPy's sign.  The mask and the zero
    # weights leave out some infinities and nans, and all of some rows;
    # negative weights make some sums negative, or cancel.
    x = special_rows(rng, 1500 if C <= 300 else 120, C, dtype)
    where, b = weights_and_mask(rng, x, kind)
    got, sg = lse(x, axis=-1, b=b, return_sign=True, where=where)
    for i in range(0, len(x), 2 if C <= 10 else 5):
        one = lse(x[i], b=None if b is None else b[i], return_sign=True, where=None if where is None else where[i])
        if not np.array_equal([got[i], sg[i]], one, equal_nan=True):   # (the message, a row's repr, only then)
            np.testing.assert_array_equal([got[i], sg[i]], one, err_msg=f"row {i}: {x[i]!r}")
    check_ref(x, -1, b=b, where=where)      # (also without return_sign: nan for a negative sum)


# ------------------------------------------------------------------ where=

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("shape, axis", [((6, 30), -1), ((6, 30), 0), ((3, 4, 5), (0, 2)), ((6, 30), None),
                                         ((300, 400), 1)], ids=str)
def test_where_against_scipy_weights(sp, rng, dtype, shape, axis):
    x = logits(rng, shape, dtype, scale=3.0)
    where = rng.random(shape) < 0.6
    where[0] = False  # a slice (or more) with nothing to sum
    # masked out: no part, even nan or inf (only where some entry is left: see
    # test_where_all_false_with_nonfinite_masked_out)
    hide = ~where & (rng.random(shape) < 0.5)
    hide[0] = False
    x[hide & (rng.random(shape) < 0.5)] = NAN
    x[hide & (rng.random(shape) < 0.5)] = INF
    for kw in ({}, {"keepdims": True}, {"return_sign": True}):
        got = lse(x, axis=axis, where=where, **kw)
        want = sp.logsumexp(x, axis=axis, b=where.astype(dtype), **kw)
        np.testing.assert_array_equal(np.isnan(got[0] if kw else got), np.isnan(want[0] if kw else want))
        np.testing.assert_allclose(got, want, rtol=8 * eps(dtype), atol=8 * eps(dtype))
    check_ref(np.where(where, x, 0), axis, where=where)
    b = rng.uniform(-0.5, 2, shape).astype(dtype)
    got = lse(x, axis=axis, b=b, where=where, return_sign=True)
    want = sp.logsumexp(np.where(where, x, 0), axis=axis, b=np.where(where, b, 0), return_sign=True)
    np.testing.assert_allclose(got, want, rtol=1e-3 if dtype == F32 else 1e-10)
    check_ref(np.where(where, x, 0), axis, b=b, where=where)


def test_where_broadcast_and_all_false():
    x = np.arange(12.0).reshape(3, 4)
    row = np.asarray([True, False, True, False])
    np.testing.assert_allclose(lse(x, axis=1, where=row), np.logaddexp(x[:, 0], x[:, 2]), rtol=1e-15)
    np.testing.assert_allclose(lse(x, axis=1, where=row[None]), np.logaddexp(x[:, 0], x[:, 2]), rtol=1e-15)
    r, s = lse(x, axis=1, where=np.zeros(4, bool), return_sign=True)
    np.testing.assert_array_equal(r, [-INF] * 3)
    assert lse(x, where=np.False_) == -INF
    np.testing.assert_allclose(lse(x, where=np.True_), lse(x), rtol=0)


@pytest.mark.parametrize("x, b, where, want", [
    ([1.0, INF, NAN], None, [False, False, False], (-INF, 0.0)),   # nothing left: -inf
    ([1.0, 1.0, INF], [1.0, -1.0, 1.0], [True, True, False], (-INF, 0.0)),  # an exact 0 sum
])
def test_where_all_false_with_nonfinite_masked_out(x, b, where, want):
    r, s = lse(np.asarray(x), b=b, where=np.asarray(where), return_sign=True)
    assert (float(r), float(s)) == want


def test_where_must_be_boolean():
    with pytest.raises(TypeError):
        lse(np.ones(3), where=np.ones(3))
    with pytest.raises(TypeError):
        lse(np.ones(3), where=[1, 0, 1])


# -------------------------------------------------------------------- out=

@pytest.mark.parametrize("dtype", [F16, F32, F64, np.dtype(np.int64)], ids=str)
@pytest.mark.parametrize("shape, axis, keepdims", [
    ((5, 7), 1, False), ((5, 7), 0, True), ((3, 4, 5), (0, 2), False), ((3, 4, 5), (0, 2), True),
    ((5, 7), None, True), ((300, 400), -1, False),
], ids=str)
def test_out(rng, dtype, shape, axis, keepdims):
    x = logits(rng, shape, F64).astype(dtype) if dtype.kind == "f" else rng.integers(-5, 5, shape)
    want = lse(x, axis=axis, keepdims=keepdims)
    out = np.full(np.shape(want), 7.0, result_dtype(x))
    got = lse(x, axis=axis, keepdims=keepdims, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    out[...] = 7.0
    got, sg = lse(x, axis=axis, keepdims=keepdims, out=out, return_sign=True)
    assert got is out and sg.shape == out.shape
    np.testing.assert_array_equal(out, want)
    b = np.full(shape, 2.0, np.float32)
    out = np.empty(np.shape(want), np.result_type(result_dtype(x), np.float32))
    assert lse(x, axis=axis, keepdims=keepdims, b=b, out=out) is out
    np.testing.assert_array_equal(out, lse(x, axis=axis, keepdims=keepdims, b=b))


def test_out_strided_view():
    x = np.arange(12.0).reshape(3, 4)
    buf = np.zeros(6)
    got = lse(x, axis=1, out=buf[::2])
    np.testing.assert_array_equal(buf[::2], lse(x, axis=1))
    np.testing.assert_array_equal(buf[1::2], 0.0)
    assert got.base is buf


@pytest.mark.parametrize("bad, exc", [
    (lambda: np.full((3,), 7.0), ValueError),           # shape: keepdims left out
    (lambda: np.full((3, 1, 1), 7.0), ValueError),      # shape: one axis too many
    (lambda: np.full((4,), 7.0), ValueError),           # shape: wrong length
    (lambda: np.full((3, 1), 7.0, np.float32), ValueError),  # dtype
    (lambda: np.full((3, 1), 7, np.int64), ValueError),       # dtype
    (lambda: [[7.0]] * 3, TypeError),                   # not an array
])
def test_out_refused_before_writing(bad, exc):
    x = np.arange(12.0).reshape(3, 4)
    out = bad()
    before = np.array(out, copy=True)
    with pytest.raises(exc):
        lse(x, axis=1, keepdims=True, out=out)
    np.testing.assert_array_equal(out, before)


def test_out_read_only_refused():
    out = np.full((3,), 7.0)
    out.flags.writeable = False
    with pytest.raises(ValueError):
        lse(np.ones((3, 4)), axis=1, out=out)
    np.testing.assert_array_equal(out, 7.0)


def test_out_for_a_0d_result():
    out = np.full((), 7.0)
    got = lse(np.asarray([0.0, 0.0]), out=out)
    assert got is out and out == math.log(2)


# ---------------------------------------------------------- inputs untouched

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
def test_inputs_not_modified(rng, dtype):
    x = logits(rng, (50, 40), dtype, neg_inf_every=7)
    x[3, 3] = NAN
    b = rng.uniform(-1, 2, (50, 40)).astype(dtype)
    where = rng.random((50, 40)) < 0.5
    copies = [v.copy() for v in (x, b, where)]
    for axis in (None, 0, 1, (0, 1)):
        lse(x, axis=axis)
        lse(x, axis=axis, b=b, return_sign=True)
        lse(x, axis=axis, b=b, where=where, keepdims=True)
        lse(x.T, axis=axis, b=b.T, where=where.T)
    for v, c in zip((x, b, where), copies):
        np.testing.assert_array_equal(v, c)


# -------------------------------------------------------------- against torch

@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("shape, axis", [((7,), 0), ((5, 9), 1), ((5, 9), -2), ((3, 4, 5), (0, 2)),
                                         ((300, 400), -1)], ids=str)
@pytest.mark.parametrize("keepdims", [False, True])
def test_against_torch(rng, dtype, shape, axis, keepdims):
    torch = pytest.importorskip("torch")
    x = logits(rng, shape, dtype, scale=5.0, neg_inf_every=13)
    want = torch.logsumexp(torch.from_numpy(x), dim=axis, keepdim=keepdims).numpy()
    got = lse(x, axis=axis, keepdims=keepdims)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=16 * eps(dtype), atol=16 * eps(dtype))
    x[1] = INF
    x.flat[2] = NAN
    want = torch.logsumexp(torch.from_numpy(x), dim=axis, keepdim=keepdims).numpy()
    got = lse(x, axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(got, want, rtol=16 * eps(dtype), atol=16 * eps(dtype))


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_unaligned_input(rng, dtype, axis):
    # a C-contiguous array whose data is not aligned to its itemsize
    x = logits(rng, (30, 40, 50), dtype)
    raw = np.zeros(x.nbytes + 1, np.uint8)[1:]
    u = raw.view(dtype).reshape(x.shape)
    u[...] = x
    assert u.flags.c_contiguous and not u.flags.aligned
    np.testing.assert_array_equal(lse(u, axis=axis), lse(x, axis=axis))


def _unaligned_copy(a):
    """a's values in a C-contiguous array whose data lies one byte past an
    address aligned for its dtype (NumPy flags it unaligned)."""
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    u = raw.view(a.dtype).reshape(a.shape)
    u[...] = a
    assert u.flags.c_contiguous and not u.flags.aligned
    return u


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("shape, axis", [((64, 7), 0), ((17, 3, 64), 0), ((5, 40, 9), 1), ((30, 40), -1)], ids=str)
@pytest.mark.parametrize("where", [False, True])
def test_unaligned_weights(rng, dtype, shape, axis, where):
    # contiguous weights that are not aligned are copied before a kernel reads
    # them (over a strided axis as over the last); the same bits as aligned ones
    x = logits(rng, shape, dtype)
    b = rng.uniform(-1, 2, shape).astype(dtype)
    mask = rng.random(shape) < 0.8 if where else None
    want = lse(x, axis=axis, b=b, where=mask, return_sign=True)
    got = lse(x, axis=axis, b=_unaligned_copy(b), where=mask, return_sign=True)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_kernels_refuse_unaligned_arrays(rng):
    # the kernels read their arrays through typed pointers: one that is not
    # aligned is refused with an exception, never read
    from csoftmax import _forward
    x = logits(rng, (4, 6, 8), F64)
    u = _unaligned_copy(x)
    y = np.empty(32, F64)
    with pytest.raises(ValueError, match="aligned"):
        _forward.logsumexp_cols(x, u, None, y, None, 1)
    with pytest.raises(ValueError, match="aligned"):
        _forward.logsumexp_cols(u, None, None, y, None, 1)
    with pytest.raises(ValueError, match="aligned"):
        _forward.logsumexp(u.reshape(32, 6), None, None, np.empty(32, F64), None, 1)
    with pytest.raises(ValueError, match="aligned"):
        _forward.logsumexp(x.reshape(32, 6), u.reshape(32, 6), None, np.empty(32, F64), None, 1)
    from csoftmax import _jacobian
    with pytest.raises(ValueError, match="aligned"):
        _jacobian.jacobian(u.reshape(32, 6), np.empty((32, 6, 6), F64), 1)
