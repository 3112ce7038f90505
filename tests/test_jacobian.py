"""softmax_jacobian against the oracle, finite differences of softmax and the
identities of J = diag(s) - s sᵀ (docs/derivations.md, "The softmax Jacobian")."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax as cs
from csoftmax import reference as ref

from gradcheck import numerical_grad
from helpers import F16, F32, F64, FLOATS, assert_within, eps_of, softmax_rel_bound


@pytest.fixture
def rng():
    return np.random.default_rng(4004)


def expected_shape(shape, axis):
    rest = list(shape)
    C = rest.pop(axis)
    return tuple(rest) + (C, C)


def jacobian_bound(x, axis, dtype):
    """The bound on each J[..., i, j]: J's entries are products of softmax
    values, so s_i's relative error becomes an absolute one of that size."""
    x = np.moveaxis(np.asarray(x, F64), axis, -1)
    with np.errstate(invalid="ignore"):
        m = np.max(x, axis=-1, keepdims=True, initial=-np.inf)
        spread = np.where(np.isfinite(x), np.abs(x - m), 0)
    rel = softmax_rel_bound(dtype, np.max(spread, axis=-1, initial=0)[..., None, None])
    s = np.asarray(ref.softmax(x, axis=-1)).astype(F64)
    big = np.maximum(s[..., :, None], s[..., None, :])
    return 2 * rel * big + eps_of(dtype) * np.abs(s[..., :, None]) + np.finfo(dtype).tiny


def check_against_reference(x, axis, dtype, J=None):
    J = cs.softmax_jacobian(x, axis=axis) if J is None else J
    want = ref.softmax_jacobian(np.asarray(x), axis=axis)
    assert J.shape == want.shape
    assert_within(J, want, jacobian_bound(x, axis, dtype))
    return J


# ------------------------------------------------------------------ vs oracle

SHAPES_AXES = [
    ((1,), -1), ((2,), 0), ((10,), -1), ((32,), 0), ((33,), -1), ((1000,), -1),
    ((7, 1), -1), ((7, 2), 1), ((7, 10), -1), ((7, 32), -1), ((7, 33), -1), ((3, 1000), -1),
    ((1, 10), -1), ((10, 7), 0), ((33, 7), -2), ((1000, 2), 0),
    ((2, 3, 4), 0), ((2, 3, 4), 1), ((2, 3, 4), 2), ((2, 3, 4), -1), ((2, 3, 4), -2), ((2, 3, 4), -3),
    # N C C >= 65536: the threaded path
    ((700, 10), -1), ((10, 700), 0), ((64, 33), -1), ((3, 20, 33), 1),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape, axis", SHAPES_AXES, ids=str)
def test_matches_reference(isa, shape, axis, dtype, rng):
    x = (3 * rng.standard_normal(shape)).astype(dtype)
    x0 = x.copy()
    J = check_against_reference(x, axis, dtype)
    assert J.shape == expected_shape(shape, axis)
    assert J.dtype == dtype
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_extreme_logits(isa, dtype):
    x = np.array([
        [1e4, 0.0, -1e4, 5.0],           # s = [1, 0, 0, 0]: J = 0
        [0.0, -np.inf, 0.0, -np.inf],    # -inf classes have s = 0: their rows and columns are 0
        [-1e4, -1e4 + 1, -1e4 + 2, -1e4],
        [3e38 if dtype == F32 else 1e308, 0.0, -1.0, 2.0],
        [-np.inf] * 4,                   # as SciPy's softmax: nan
        [0.0, np.inf, 1.0, 2.0],
        [0.0, np.nan, 1.0, 2.0],
    ], dtype=dtype)
    J = check_against_reference(x, -1, dtype)
    np.testing.assert_array_equal(J[0], 0)
    np.testing.assert_array_equal(J[1][[1, 3]], 0)
    np.testing.assert_array_equal(J[1][:, [1, 3]], 0)
    np.testing.assert_allclose(J[1][np.ix_([0, 2], [0, 2])], [[0.25, -0.25], [-0.25, 0.25]], rtol=1e-6)
    assert np.isnan(J[4:]).all()


@pytest.mark.parametrize("shape, axis", [((0, 5), -1), ((5, 0), -1), ((0, 5), 0), ((0,), 0), ((2, 0, 3), 1)])
def test_empty(shape, axis):
    J = cs.softmax_jacobian(np.zeros(shape), axis=axis)
    assert J.shape == expected_shape(shape, axis)
    assert J.dtype == F64


# ------------------------------------------------------------------ identities

@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("C", [1, 2, 10, 33, 300])
def test_symmetric_rows_sum_to_zero_diagonal(isa, C, dtype, rng):
    x = (4 * rng.standard_normal((5, C))).astype(dtype)
    J = cs.softmax_jacobian(x)
    s = np.asarray(ref.softmax(x, axis=-1)).astype(F64)
    # -s_i s_j and -s_j s_i are the same product: J is exactly symmetric.
    np.testing.assert_array_equal(J, np.swapaxes(J, -1, -2))
    assert_within(J.sum(axis=-1), 0, 4 * C * eps_of(dtype) * s.max(axis=-1, keepdims=True))
    diag = np.diagonal(J, axis1=-2, axis2=-1)
    assert_within(diag, s * (1 - s), 2 * softmax_rel_bound(dtype, 8) * s)
    assert (diag >= 0).all()


@pytest.mark.parametrize("shape, axis", [((6,), 0), ((3, 5), -1), ((5, 3), 0), ((2, 4, 3), 1)])
def test_matches_finite_differences_of_softmax(shape, axis, rng):
    x = rng.standard_normal(shape)
    J = cs.softmax_jacobian(x, axis=axis)
    C = shape[axis]
    xm = np.moveaxis(x, axis, -1)
    for idx in np.ndindex(xm.shape[:-1]):
        for i in range(C):
            def s_i(row, idx=idx, i=i):
                z = xm.copy()
                z[idx] = row
                return np.moveaxis(cs.softmax(np.moveaxis(z, -1, axis), axis=axis), axis, -1)[idx + (i,)]
            np.testing.assert_allclose(J[idx + (i,)], numerical_grad(s_i, xm[idx]), rtol=1e-8, atol=1e-9)


def test_axis_slices_are_the_jacobians_of_the_slices(rng):
    x = rng.standard_normal((3, 4, 5))
    for axis in range(3):
        J = cs.softmax_jacobian(x, axis=axis)
        for idx in np.ndindex(J.shape[:-2]):
            full = list(idx)
            full.insert(axis, slice(None))
            np.testing.assert_allclose(J[idx], cs.softmax_jacobian(x[tuple(full)]), rtol=1e-14, atol=1e-17)


# ------------------------------------------------------------------ layouts and dtypes

def _layouts(rng, dtype):
    base = (3 * rng.standard_normal((40, 24))).astype(dtype)
    yield "fortran", np.asfortranarray(base)
    yield "strided", base[::2, ::3]
    yield "negative", base[::-1, ::-2]
    yield "transposed", base.T
    ro = base.copy()
    ro.flags.writeable = False
    yield "readonly", ro
    yield "3d-fortran", np.asfortranarray(base.reshape(4, 10, 24))
    yield "3d-strided", base.reshape(4, 10, 24)[:, ::-3, 1::2]


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("axis", [0, -1])
def test_layouts(isa, axis, dtype, rng):
    for name, x in _layouts(rng, dtype):
        x0 = x.copy()
        check_against_reference(x, axis, dtype)
        np.testing.assert_array_equal(x, x0, err_msg=name)


def test_float16_int_bool_and_lists():
    x16 = np.array([[0.5, -1.0, 2.0]], F16)
    J = cs.softmax_jacobian(x16)
    assert J.dtype == F16
    assert_within(J, ref.softmax_jacobian(x16), 2e-3)
    for x in (np.array([[1, 0, 2]], np.int32), np.array([[True, False]]), [[1.0, 2.0]], [1, 2]):
        J = cs.softmax_jacobian(x)
        assert J.dtype == F64
        assert_within(J, ref.softmax_jacobian(x), 1e-15)


@pytest.mark.parametrize("x", [np.array([1 + 1j, 0]), np.array([1, "a"], object), np.array(["1", "2"])], ids=str)
def test_non_real_input_raises_type_error(x):
    with pytest.raises(TypeError):
        cs.softmax_jacobian(x)


@pytest.mark.parametrize("x, axis", [(np.float64(1.0), -1), (np.zeros((2, 3)), 2), (np.zeros((2, 3)), -3),
                                     (np.zeros((2, 3)), (0, 1)), (np.zeros((2, 3)), None)], ids=str)
def test_bad_axis_raises_value_error(x, axis):
    with pytest.raises(ValueError):
        cs.softmax_jacobian(x, axis=axis)


# ------------------------------------------------------------------ properties

@settings(max_examples=60, deadline=None)
@given(x=hnp.arrays(st.sampled_from([F32, F64]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                    elements=st.floats(-50, 50, width=32)),
       data=st.data())
def test_property_matches_reference(x, data):
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    J = check_against_reference(x, axis, x.dtype)
    np.testing.assert_array_equal(J, np.swapaxes(J, -1, -2))
