"""Tests of the oracle itself: ``csoftmax.reference`` against the worked example
and the formulas of docs/derivations.md written out by hand, SciPy, PyTorch and
central finite differences.

If the oracle is wrong every compiled test is meaningless, so these checks use
sources that share no code with it.
"""

import numpy as np
import pytest

from csoftmax import reference as ref

from gradcheck import numerical_grad as _numerical_grad
from helpers import INF, LD, NAN, make_target

# Central differences in long double: truncation ~ eps_fd² and rounding
# ~ eps(long double) / eps_fd, both far below these tolerances on x86-64, and
# still below them where long double is only float64.
FD_TOL = dict(rtol=1e-7, atol=1e-9)


def numerical_grad(f, x):
    """Central-difference gradient of ``f`` at ``x``, evaluated in long double."""
    return _numerical_grad(f, x, dtype=LD)


def as64(a):
    """The long double oracle rounded to float64 (beyond-range values to ±inf)."""
    with np.errstate(over="ignore"):
        return np.asarray(a, dtype=np.float64)


@pytest.fixture
def rng():
    return np.random.default_rng(20240613)


# ------------------------------------------------- docs/derivations.md by hand

def test_worked_example():
    # docs/derivations.md, "Worked example": x = [2, 2, 2], s = [0.1, 0.7, 0.2],
    # y = onehot(2) give (s - y) ⊗ x = [[0.2]*3, [1.4]*3, [-1.6]*3].
    s = np.array([0.1, 0.7, 0.2], dtype=LD)
    x = np.array([[2.0, 2.0, 2.0]])
    expected = np.array([[0.2] * 3, [1.4] * 3, [-1.6] * 3])
    z = np.log(s)  # logits whose softmax is exactly s
    np.testing.assert_allclose(as64(ref.softmax(z)), as64(s), rtol=1e-15)
    # With W = 0 and b = log s, one sample's logits are z, so dW = (s - y) ⊗ x.
    W, b = np.zeros((3, 3)), z
    for y in ([2], [[0.0, 0.0, 1.0]]):
        loss, dW, db = ref.softmax_regression_loss_grad(W, x, y, b)
        np.testing.assert_allclose(as64(dW), expected, rtol=1e-15)
        np.testing.assert_allclose(as64(db), [0.1, 0.7, -0.8], rtol=1e-15)
        np.testing.assert_allclose(float(loss), -np.log(0.2), rtol=1e-15)
        W_new, b_new = ref.gradient_descent_step(W, x, y, b, learning_rate=0.5)
        np.testing.assert_allclose(as64(W_new), -0.5 * expected, rtol=1e-15)
        np.testing.assert_allclose(as64(b_new), as64(z) - 0.5 * np.array([0.1, 0.7, -0.8]))


@pytest.mark.parametrize("upstream", [1.0, 0.0, -2.5, 3.0])
def test_grad_output_scales_the_gradient(upstream):
    # the chain rule with the upstream gradient dℒ/dL: dℒ/dx_i = dℒ/dL · q_i for i != c and dℒ/dL · (q_c - 1) for i = c.
    x = np.array([0.3, -1.2, 2.0, 0.5], dtype=LD)
    c = 2
    q = np.exp(x) / np.sum(np.exp(x))
    expected = upstream * (q - (np.arange(4) == c))
    for reduction in ("mean", "sum", "none"):
        loss, grad = ref.cross_entropy_grad(x, c, reduction=reduction, grad_output=upstream)
        np.testing.assert_allclose(as64(grad), as64(expected), rtol=1e-15, atol=1e-18)
        np.testing.assert_allclose(float(loss), float(-np.log(q[c])), rtol=1e-15)


def test_regression_gradient_is_the_mean_over_samples(rng):
    # dJ/dw_k = (1/m) sum_i (f_k(x_i) - 1(y_i = k)) x_i, written as a loop.
    C, D, m = 4, 3, 6
    W, X, b = rng.normal(size=(C, D)), rng.normal(size=(m, D)), rng.normal(size=C)
    y = rng.integers(0, C, size=m)
    _, dW, db = ref.softmax_regression_loss_grad(W, X, y, b)
    loop_W, loop_b = np.zeros((C, D), dtype=LD), np.zeros(C, dtype=LD)
    for i in range(m):
        z = X[i].astype(LD) @ W.T.astype(LD) + b
        f = np.exp(z) / np.sum(np.exp(z))
        for k in range(C):
            loop_W[k] += (f[k] - (y[i] == k)) * X[i] / m
            loop_b[k] += (f[k] - (y[i] == k)) / m
    np.testing.assert_allclose(as64(dW), as64(loop_W), rtol=1e-14)
    np.testing.assert_allclose(as64(db), as64(loop_b), rtol=1e-14)


# ------------------------------------------------------------ forward vs SciPy

EDGE_CASES = [
    [-INF, 0.0], [-INF, -INF], [INF, 0.0], [INF, INF], [NAN, 0.0], [NAN, INF],
    [-INF, 1.0, 2.0], [1e308, -1e308], [-745.0, 0.0], [3.0], [0.0, 0.0, 0.0],
    [[-INF, 0.0], [-INF, -INF], [INF, 1.0], [2.0, NAN]],
]


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("x", EDGE_CASES)
@pytest.mark.parametrize("axis", [None, -1, 0])
def test_edge_cases_match_scipy(func, x, axis):
    special = pytest.importorskip("scipy.special")
    x = np.array(x)
    with np.errstate(all="ignore"):
        expected = getattr(special, func)(x, axis=axis)
    got = getattr(ref, func)(x, axis=axis)
    # assert_allclose also requires nan and ±inf in the same places.
    np.testing.assert_allclose(as64(got), expected, rtol=1e-15, atol=0)


def test_log_softmax_of_minus_inf_and_zero():
    assert np.array_equal(as64(ref.log_softmax([-INF, 0.0])), [-INF, 0.0])
    assert np.array_equal(as64(ref.softmax([-INF, 0.0])), [0.0, 1.0])


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)])
def test_random_arrays_match_scipy(func, dtype, axis, rng):
    special = pytest.importorskip("scipy.special")
    x = (rng.normal(size=(3, 4, 5)) * 5).astype(dtype)
    expected = getattr(special, func)(x.astype(np.float64), axis=axis)
    got = getattr(ref, func)(x, axis=axis)
    # SciPy's float64 error grows with |x - max| (absolutely, for log_softmax).
    atol = 1e-13 if func == "log_softmax" else 1e-300
    np.testing.assert_allclose(as64(got), expected, rtol=1e-13, atol=atol)


@pytest.mark.parametrize("func", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape, axis", [((0,), None), ((0,), 0), ((0, 3), 0), ((0, 3), 1),
                                         ((3, 0), 1), ((3, 0), None), ((2, 0, 4), (0, 1))])
def test_empty_arrays_give_empty_results(func, shape, axis):
    got = getattr(ref, func)(np.empty(shape), axis=axis)
    assert got.shape == shape


def test_bad_axis_and_dtype_raise():
    with pytest.raises(ValueError):  # numpy's AxisError is a ValueError
        ref.softmax(np.ones((2, 3)), axis=2)
    for bad in (np.array([1 + 2j]), np.array(["a"]), np.array([1.0], dtype=object)):
        with pytest.raises(TypeError):
            ref.softmax(bad)


@pytest.mark.parametrize("dtype, working", [(np.float64, LD), (np.float32, np.float64),
                                            (np.float16, np.float64), (np.int32, LD),
                                            (np.bool_, LD)])
def test_working_precision(dtype, working):
    x = np.ones(3, dtype=dtype)
    assert ref.softmax(x).dtype == working
    assert ref.softmax_jacobian(x).dtype == working
    assert ref.cross_entropy_grad(x, 0)[1].dtype == working


def test_inputs_are_not_modified(rng):
    x = rng.normal(size=(4, 3))
    keep = x.copy()
    ref.softmax(x, axis=1)
    ref.log_softmax(x)
    ref.cross_entropy_grad(x, [0, 1, 2, 0])
    ref.gradient_descent_step(x[:3], x, [0, 1, 2, 0], learning_rate=0.1)
    assert np.array_equal(x, keep)


# ------------------------------------------------------ Jacobian and backward

def test_jacobian_matches_finite_differences_and_is_symmetric(rng):
    x = rng.normal(size=5) * 2
    J = ref.softmax_jacobian(x)
    assert J.shape == (5, 5)
    for i in range(5):
        np.testing.assert_allclose(as64(J[i]), as64(numerical_grad(lambda z: ref.softmax(z)[i], x)),
                                   **FD_TOL)
    np.testing.assert_array_equal(J, np.swapaxes(J, -1, -2))


def test_jacobian_shape_and_slices_for_any_axis(rng):
    x = rng.normal(size=(2, 4, 3))
    J = ref.softmax_jacobian(x, axis=1)
    assert J.shape == (2, 3, 4, 4)
    for a in range(2):
        for c in range(3):
            np.testing.assert_array_equal(J[a, c], ref.softmax_jacobian(x[a, :, c]))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_backward_is_jacobian_transpose_times_g(axis, rng):
    x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    s, log_s = ref.softmax(x, axis=axis), ref.log_softmax(x, axis=axis)
    J = ref.softmax_jacobian(x, axis=axis)
    gm = np.moveaxis(g, axis, -1)
    jtg = np.moveaxis(np.einsum("...ij,...i->...j", J, gm), -1, axis)
    np.testing.assert_allclose(as64(ref.softmax_backward(s, g, axis=axis)), as64(jtg),
                               rtol=1e-15, atol=1e-18)
    # Both backward passes against finite differences of <g, f(x)>.
    np.testing.assert_allclose(
        as64(ref.softmax_backward(s, g, axis=axis)),
        as64(numerical_grad(lambda z: np.sum(g * ref.softmax(z, axis=axis)), x)), **FD_TOL)
    np.testing.assert_allclose(
        as64(ref.log_softmax_backward(log_s, g, axis=axis)),
        as64(numerical_grad(lambda z: np.sum(g * ref.log_softmax(z, axis=axis)), x)), **FD_TOL)


def test_backward_shape_mismatch_raises():
    with pytest.raises(ValueError):
        ref.softmax_backward(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(ValueError):
        ref.log_softmax_backward(np.ones(3), np.ones(4))


# -------------------------------------------------------------- cross-entropy

def _targets(rng, N, C, kind):
    # "probabilities": rows with zeros that need not sum to 1, for s · sum(y) - y
    return make_target(rng, N, C, "unnormalised" if kind == "probabilities" else kind)


@pytest.mark.parametrize("kind", ["index", "float index", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_grad_matches_finite_differences(kind, reduction, weighted, rng):
    N, C = 5, 4
    logits = rng.normal(size=(N, C)) * 2
    target = _targets(rng, N, C, kind)
    w = rng.uniform(0.1, 2.0, size=N) if weighted else None
    go = rng.normal(size=N) if reduction == "none" else 1.7
    loss, grad = ref.cross_entropy_grad(logits, target, sample_weight=w, reduction=reduction,
                                        grad_output=go)
    same = ref.cross_entropy(logits, target, sample_weight=w, reduction=reduction)
    np.testing.assert_array_equal(loss, same)
    assert np.shape(loss) == ((N,) if reduction == "none" else ())

    def upstream(z):  # ℒ = <grad_output, L>, so dℒ/dz is what cross_entropy_grad returns
        return np.sum(go * ref.cross_entropy(z, target, sample_weight=w, reduction=reduction))

    np.testing.assert_allclose(as64(grad), as64(numerical_grad(upstream, logits)), **FD_TOL)


def test_cross_entropy_reductions_and_weights(rng):
    logits, y = rng.normal(size=(6, 3)), rng.integers(0, 3, size=6)
    w = rng.uniform(0, 2, size=6)
    L = -np.log(ref.softmax(logits, axis=1)[np.arange(6), y])
    np.testing.assert_allclose(as64(ref.cross_entropy(logits, y, reduction="none")), as64(L), rtol=1e-15)
    np.testing.assert_allclose(float(ref.cross_entropy(logits, y)), float(np.mean(L)), rtol=1e-15)
    np.testing.assert_allclose(float(ref.cross_entropy(logits, y, sample_weight=w)),
                               float(np.sum(w * L) / np.sum(w)), rtol=1e-15)
    np.testing.assert_allclose(float(ref.cross_entropy(logits, y, sample_weight=w, reduction="sum")),
                               float(np.sum(w * L)), rtol=1e-15)
    # Index and one-hot targets are the same loss.
    np.testing.assert_array_equal(ref.cross_entropy(logits, y, reduction="none"),
                                  ref.cross_entropy(logits, np.eye(3)[y], reduction="none"))


def test_cross_entropy_one_sample_and_zero_mass_classes():
    loss, grad = ref.cross_entropy_grad([0.0, 0.0], 1, reduction="none")
    assert np.ndim(loss) == 0 and grad.shape == (2,)
    np.testing.assert_allclose(float(loss), np.log(2))
    # A class with -inf logit and zero target mass contributes 0, not nan.
    loss, grad = ref.cross_entropy_grad([-INF, 0.0, 1.0], [0.0, 0.5, 0.5])
    assert np.isfinite(loss) and np.all(np.isfinite(grad)) and grad[0] == 0


@pytest.mark.parametrize("call, match", [
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0, 3]), "3"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [-1, 0]), "-1"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0.0, 2.5]), "2.5"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0, 1], reduction="avg"), "avg"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0, 1, 2]), "shape"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), np.zeros((2, 2))), "shape"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0, 1], sample_weight=[1.0]), "shape"),
    (lambda: ref.cross_entropy(np.zeros((2, 3)), [0, 1], sample_weight=[1.0, -2.0]), "-2"),
    (lambda: ref.cross_entropy_grad(np.zeros((2, 3)), [0, 1], grad_output=[1.0, 1.0]), "shape"),
])
def test_cross_entropy_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("kind", ["index", "probabilities"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_torch(kind, reduction, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    N, C = 7, 5
    logits = rng.normal(size=(N, C)) * 3
    target = _targets(rng, N, C, kind)
    z = torch.tensor(logits, requires_grad=True)
    t = torch.tensor(target)
    expected = F.cross_entropy(z, t, reduction=reduction)
    expected.backward(torch.ones_like(expected))
    loss, grad = ref.cross_entropy_grad(logits, target, reduction=reduction)
    np.testing.assert_allclose(as64(loss), expected.detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(as64(grad), z.grad.numpy(), rtol=1e-12, atol=1e-15)
    # torch's `weight` is per class; per-sample weights go through "none".
    w = rng.uniform(0.5, 2.0, size=N)
    z.grad = None
    wsum = torch.sum(torch.tensor(w) * F.cross_entropy(z, t, reduction="none"))
    (wsum / w.sum()).backward()
    loss, grad = ref.cross_entropy_grad(logits, target, sample_weight=w)
    np.testing.assert_allclose(float(loss), float(wsum.detach()) / w.sum(), rtol=1e-13)
    np.testing.assert_allclose(as64(grad), z.grad.numpy(), rtol=1e-12, atol=1e-15)


# ---------------------------------------------------------- softmax regression

@pytest.mark.parametrize("kind", ["index", "probabilities"])
@pytest.mark.parametrize("with_b, l2, weighted", [(True, 0.0, False), (True, 0.3, True),
                                                  (False, 0.1, False), (False, 0.0, True)])
def test_regression_gradient_matches_finite_differences(kind, with_b, l2, weighted, rng):
    C, D, N = 3, 4, 6
    W, X = rng.normal(size=(C, D)), rng.normal(size=(N, D))
    b = rng.normal(size=C) if with_b else None
    y = _targets(rng, N, C, kind)
    w = rng.uniform(0.1, 2.0, size=N) if weighted else None
    loss, dW, db = ref.softmax_regression_loss_grad(W, X, y, b, l2=l2, sample_weight=w)
    J = lambda W_, b_=b: ref.softmax_regression_loss_grad(W_, X, y, b_, l2=l2, sample_weight=w)[0]
    np.testing.assert_allclose(as64(dW), as64(numerical_grad(J, W)), **FD_TOL)
    if with_b:
        np.testing.assert_allclose(as64(db), as64(numerical_grad(lambda b_: J(W, b_), b)), **FD_TOL)
    else:
        assert db is None
    # The loss is the weighted mean cross-entropy plus the l2 penalty.
    Z = X @ W.T + (0 if b is None else b)
    np.testing.assert_allclose(float(loss), float(ref.cross_entropy(Z, y, sample_weight=w))
                               + l2 / 2 * np.sum(W ** 2), rtol=1e-13)


def test_gradient_descent_decreases_the_loss(rng):
    C, D, N = 3, 2, 30
    X = rng.normal(size=(N, D))
    y = np.argmax(X @ rng.normal(size=(C, D)).T, axis=1)
    W, b = np.zeros((C, D)), np.zeros(C)
    losses = []
    for _ in range(20):
        losses.append(float(ref.softmax_regression_loss_grad(W, X, y, b, l2=0.01)[0]))
        W, b = ref.gradient_descent_step(W, X, y, b, learning_rate=0.5, l2=0.01)
    assert np.all(np.diff(losses) < 0)


def test_regression_bad_shapes_raise():
    with pytest.raises(ValueError):
        ref.softmax_regression_loss_grad(np.zeros((3, 2)), np.zeros((4, 3)), [0, 1, 2, 0])
    with pytest.raises(ValueError):
        ref.softmax_regression_loss_grad(np.zeros((3, 2)), np.zeros((4, 2)), [0, 1, 2, 0], b=np.zeros(2))
