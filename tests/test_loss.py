"""cross_entropy, cross_entropy_grad and softmax_regression_loss_grad against the
oracle, central finite differences of their losses, PyTorch and the worked
example of docs/derivations.md."""
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import csoftmax as cs
from csoftmax import reference as ref

from gradcheck import assert_grad_matches, directional_derivative
from helpers import EPS64, F16, F32, F64, FLOATS, TARGET_KINDS, assert_within, eps_of, make_target, \
    softmax_rel_bound

REDUCTIONS = ["mean", "sum", "none"]
KINDS = TARGET_KINDS


@pytest.fixture
def rng():
    return np.random.default_rng(2002)


def as_probs(target, C, dtype=F64):
    t = np.asarray(target)
    if t.ndim and t.shape[-1] == C and t.dtype.kind == "f":
        return t.astype(dtype)
    return (t[..., None] == np.arange(C)).astype(dtype)


def ce_bounds(logits, target, w, reduction, go, dtype, denom=None, extra=0.0):
    """The bounds on the loss and the gradient (docs/derivations.md, "Accuracy"):
    each row's log-sum-exp is off
    by at most the softmax bound of the row's spread, every term is rounded a
    few times in ``dtype``, and sums are accumulated in double.  ``target``
    may be any rows of coefficients (the options' ``a``); ``denom`` replaces
    the mean's sum of the sample weights and ``extra`` adds a bound of its
    own to each row's loss (before its sample weight)."""
    z = np.asarray(logits, F64).reshape(-1, np.shape(logits)[-1])
    N, C = z.shape
    Y = as_probs(np.asarray(target).reshape((N, C) if np.ndim(target) == np.ndim(logits) else (N,)), C)
    eps = eps_of(dtype)
    with np.errstate(all="ignore"):
        m = np.max(z, axis=1, keepdims=True)
        spread = np.where(np.isfinite(z), np.abs(z - m), 0).max(axis=1)
        rel = softmax_rel_bound(dtype, spread)
        s = np.asarray(ref.softmax(z, axis=-1)).astype(F64)
        ls = np.log(np.sum(np.exp(z - m), axis=1))
        zterm = np.where(Y != 0, np.abs(Y) * (np.abs(m - z) + np.abs(ls[:, None])), 0).sum(axis=1)
        L = np.where(Y != 0, -Y * np.log(s), 0).sum(axis=1)
        # a row without target mass adds no term, whatever its logits (nan too)
        ysum = np.abs(Y).sum(axis=1)
        per = np.where(ysum != 0, ysum * rel + 4 * C * EPS64 * zterm + 2 * eps * np.abs(L) + extra, 0.0)
    w = np.ones(N) if w is None else np.asarray(w, F64).reshape(N)
    go = np.broadcast_to(np.asarray(go, F64).reshape(-1), (N,))
    if reduction == "none":
        lb = w * per + 2 * eps * np.abs(w * L)
        k = go * w
    else:
        tot = (w.sum() if denom is None else denom) if reduction == "mean" else 1.0
        lb = (np.sum(w * per) + 4 * N * EPS64 * np.sum(np.abs(w * L))) / tot + 2 * eps * abs(np.sum(w * L) / tot)
        k = go * w / tot
    sy = np.abs(Y.sum(axis=1, keepdims=True))
    # the softmax bounds hold for normal values: a subnormal one may be flushed to 0
    tiny = np.finfo(F32 if dtype == F16 else dtype).tiny
    gb = np.abs(k)[:, None] * (2 * rel[:, None] * s * sy + 4 * eps * (s * sy + np.abs(Y)) + tiny * sy)
    return lb + tiny, gb.reshape(np.shape(logits)) + tiny


def check_ce(logits, target, dtype, *, sample_weight=None, reduction="mean", grad_output=1.0, **kw):
    loss, grad = cs.cross_entropy_grad(logits, target, sample_weight=sample_weight, reduction=reduction,
                                       grad_output=grad_output, **kw)
    want_loss, want_grad = ref.cross_entropy_grad(np.asarray(logits), target, sample_weight=sample_weight,
                                                  reduction=reduction, grad_output=grad_output)
    lb, gb = ce_bounds(logits, target, sample_weight, reduction, grad_output, dtype)
    msg = f"reduction={reduction} weighted={sample_weight is not None}"
    assert_within(loss, want_loss, lb, err_msg="loss: " + msg)
    assert_within(grad, want_grad, gb, err_msg="grad: " + msg)
    only = cs.cross_entropy(logits, target, sample_weight=sample_weight, reduction=reduction)
    np.testing.assert_array_equal(only, loss)
    return loss, grad


# ------------------------------------------------------------------ vs oracle

SHAPES = [(1, 1), (1, 2), (1, 10), (7, 1), (7, 2), (7, 10), (7, 24), (7, 32), (7, 33), (7, 1000)]
# >= 65536 logits: the threaded path (narrow, odd and wide rows)
BIG_SHAPES = [(7000, 10), (2100, 33), (70, 1000), (66000, 1)]


def _inputs(rng, shape, dtype, kind):
    N, C = shape
    z = (4 * rng.standard_normal(shape)).astype(dtype)
    w = rng.random(N) * 3
    w[1::3] = 0  # zero weights, never all of them
    return z, make_target(rng, N, C, kind), w, rng.standard_normal(N)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(isa, shape, dtype, kind, rng):
    z, t, w, go = _inputs(rng, shape, dtype, kind)
    z0, t0, w0 = z.copy(), t.copy(), w.copy()
    for reduction in REDUCTIONS:
        for sw in (None, w):
            loss, grad = check_ce(z, t, dtype, sample_weight=sw, reduction=reduction, grad_output=-1.5)
            assert grad.dtype == dtype and grad.shape == shape
            if reduction == "none":
                assert loss.dtype == dtype and loss.shape == shape[:1]
            else:
                assert isinstance(loss, np.generic) and loss.dtype == dtype
    check_ce(z, t, dtype, sample_weight=w, reduction="none", grad_output=go)
    for a, b in ((z, z0), (t, t0), (w, w0)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["index", "unnormalised"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape", BIG_SHAPES, ids=str)
def test_matches_reference_threaded(isa, shape, dtype, kind, rng):
    z, t, w, go = _inputs(rng, shape, dtype, kind)
    z0, t0 = z.copy(), t.copy()
    check_ce(z, t, dtype, sample_weight=w, reduction="none", grad_output=go)
    check_ce(z, t, dtype, sample_weight=w, reduction="mean", grad_output=-1.5)
    check_ce(z, t, dtype, reduction="sum")
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(t, t0)


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("C", [1, 2, 10, 33, 1000])
def test_one_sample(C, dtype, kind, rng):
    z = (3 * rng.standard_normal(C)).astype(dtype)
    t = make_target(rng, 1, C, kind)[0]
    for reduction in REDUCTIONS:
        loss, grad = check_ce(z, t, dtype, reduction=reduction, grad_output=2.0)
        assert grad.shape == (C,) and np.ndim(loss) == 0
        loss2, grad2 = cs.cross_entropy_grad(z[None], np.asarray(t)[None], reduction=reduction, grad_output=2.0)
        np.testing.assert_array_equal(grad, grad2[0])
        np.testing.assert_array_equal(loss, loss2 if reduction != "none" else loss2[0])
    check_ce(z, t, dtype, sample_weight=2.5, reduction="sum")
    loss, grad = check_ce(z, t, dtype, sample_weight=2.5, reduction="none", grad_output=3.0)
    # a length-1 weight or upstream gradient is also accepted for one sample
    loss1, grad1 = cs.cross_entropy_grad(z, t, sample_weight=[2.5], reduction="none", grad_output=[3.0])
    np.testing.assert_array_equal(loss1, loss)
    np.testing.assert_array_equal(grad1, grad)


def test_one_sample_one_class_target_is_probabilities():
    # a target shaped like the logits is probabilities, whatever its dtype
    for t in ([0], [1], np.array([1], np.int64), [0.5]):
        loss, grad = cs.cross_entropy_grad([0.7], t)
        want_loss, want_grad = ref.cross_entropy_grad([0.7], t)
        np.testing.assert_allclose(loss, float(want_loss), atol=1e-300)
        np.testing.assert_allclose(grad, want_grad.astype(F64), atol=1e-300)
    assert cs.cross_entropy([0.7], 0) == 0


def test_empty_batch():
    z, t = np.zeros((0, 4)), np.zeros(0, np.intp)
    for reduction, want in (("sum", 0.0), ("none", np.zeros(0))):
        loss, grad = cs.cross_entropy_grad(z, t, reduction=reduction)
        np.testing.assert_array_equal(loss, want)
        assert grad.shape == (0, 4)
    with pytest.warns(RuntimeWarning, match="sum to zero"):
        loss, grad = cs.cross_entropy_grad(z, t)
    assert np.isnan(loss) and grad.shape == (0, 4)
    assert np.isnan(ref.cross_entropy(z, t))


def test_mean_with_zero_total_weight_is_nan_like_numpy_and_torch():
    z, t, w = np.array([[0.0, 1.0], [2.0, 0.0]]), [1, 0], [0.0, 0.0]
    with pytest.warns(RuntimeWarning, match="sum to zero"):
        loss, grad = cs.cross_entropy_grad(z, t, sample_weight=w)
    want_loss, want_grad = ref.cross_entropy_grad(z, t, sample_weight=w)
    assert np.isnan(loss) and np.isnan(want_loss)
    assert np.isnan(grad).all() and np.isnan(want_grad).all()
    with pytest.warns(RuntimeWarning):
        assert np.isnan(cs.cross_entropy(z, t, sample_weight=w))
    loss, grad = cs.cross_entropy_grad(z, t, sample_weight=w, reduction="sum")
    assert loss == 0 and not grad.any()


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_extreme_logits(isa, dtype):
    big = 1e4
    z = np.array([[big, 0.0, -big, 5.0],
                  [-big, big, 0.0, 0.0],          # target far below the max: loss 2e4, grad s - 1
                  [0.0, -np.inf, 1.0, -np.inf],   # -inf at other classes: fine, their gradient is 0
                  [0.0, -np.inf, 1.0, 2.0],       # -inf at the target: inf loss
                  [-big, -big + 1, -big + 2, -big - 3]], dtype=dtype)
    t = np.array([0, 0, 2, 1, 3])
    for reduction in REDUCTIONS:
        for go in (1.0, -0.5):
            loss, grad = check_ce(z, t, dtype, reduction=reduction, grad_output=go)
            assert np.isfinite(grad).all()
    loss, grad = cs.cross_entropy_grad(z, t, reduction="none")
    np.testing.assert_array_equal(grad[0], 0)  # a certain, correct prediction: exactly 0
    np.testing.assert_array_equal(grad[2, [1, 3]], 0)
    assert np.isfinite(loss[[0, 1, 2, 4]]).all() and loss[3] == np.inf
    np.testing.assert_allclose(loss[1], 2 * big, rtol=eps_of(dtype))
    np.testing.assert_allclose(grad[3], [np.exp(-2) / (1 + np.exp(-1) + np.exp(-2)), -1,
                                         np.exp(-1) / (1 + np.exp(-1) + np.exp(-2)),
                                         1 / (1 + np.exp(-1) + np.exp(-2))], rtol=4 * eps_of(dtype))
    assert cs.cross_entropy(z, t, reduction="sum") == np.inf
    # probabilities: -inf where y = 0 is fine (0 log 0 = 0), where y > 0 gives inf
    y = np.array([[0.5, 0.0, 0.5, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype)
    zz = z[[2, 2]]
    loss, grad = check_ce(zz, y, dtype, reduction="none")
    assert np.isfinite(loss[0]) and loss[1] == np.inf
    np.testing.assert_array_equal(grad[0, [1, 3]], 0)


def _check_rows_alone(z, y, loss, grad, dtype, **opts):
    """Each row of z alone (y its targets), and the rows from the second to
    the fifth on, get the loss and gradient they got in the call of all rows
    (with the options opts), bit for bit; the rows with finite logits, the
    oracle's values."""
    for i in range(z.shape[0]):
        li, gi = cs.cross_entropy_grad(z[i:i + 1], y[i:i + 1], reduction="none", **opts)
        np.testing.assert_array_equal(li, loss[i:i + 1], err_msg=f"row {i}")
        np.testing.assert_array_equal(gi, grad[i:i + 1], err_msg=f"row {i}")
    for start in (1, 2, 3, 5):
        ls, gs = cs.cross_entropy_grad(z[start:], y[start:], reduction="none", **opts)
        np.testing.assert_array_equal(ls, loss[start:], err_msg=f"rows from {start}")
        np.testing.assert_array_equal(gs, grad[start:], err_msg=f"rows from {start}")
    fine = np.isfinite(z).all(axis=1)
    if not opts:
        check_ce(z[fine], y[fine], dtype, reduction="none")
        return
    want_loss, want_grad = ref.cross_entropy_grad(z[fine], y[fine], reduction="none", **opts)
    rtol, atol = (2e-5, 2e-6) if dtype == F32 else (1e-12, 1e-14)
    np.testing.assert_allclose(loss[fine], want_loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad[fine], want_grad.astype(float), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [10, 16, 24, 32, 33, 63, 100, 127, 128])
def test_probability_rows_in_blocks(isa, rng, C, dtype):
    # Mid-width rows with probability targets, and narrow ones of whole
    # vectors, go many at a time (four rows' sums side by side), other
    # narrow ones a transposed block at a time: every row, also those with
    # +inf, -inf or nan logits and a row of zeros as its target, must get
    # what it gets alone, and the oracle's values where they are finite.
    N = 203
    z = (4 * rng.standard_normal((N, C))).astype(dtype)
    y = make_target(rng, N, C, "unnormalised").astype(dtype)
    z[5, 3], z[17, :] = np.inf, -np.inf
    z[40, C - 1], z[41, 0] = np.nan, -np.inf
    y[60] = 0
    loss, grad = cs.cross_entropy_grad(z, y, reduction="none")
    _check_rows_alone(z, y, loss, grad, dtype)


@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [8, 10, 16, 24, 32, 33, 63, 100, 127, 128])
@pytest.mark.parametrize("options", ["plain", "smoothing", "smoothing+weights"])
def test_index_rows_in_blocks(isa, rng, C, dtype, options):
    # Rows with class indices go a block at a time: narrow ones transposed,
    # mid-width ones and narrow ones of whole vectors four rows side by side
    # (the last rows of a block through a buffer); with label smoothing the
    # float32 rows' weighted sums of logits four rows at a time too, below
    # 128 entries (a spare row repeating the first).  Every row, also those
    # with +inf, -inf or nan logits and ignored ones, must get what it gets
    # alone or from another first row, with the gradient apart or over the
    # logits, and the oracle's values where they are finite.
    opts = {} if options == "plain" else dict(label_smoothing=0.1)
    if options == "smoothing+weights":
        opts["weight"] = np.linspace(0.5, 2.0, C)
    N = 203
    z = (4 * rng.standard_normal((N, C))).astype(dtype)
    y = rng.integers(0, C, N)
    z[5, 3], z[17, :] = np.inf, -np.inf
    z[40, C - 1], z[41, 0] = np.nan, -np.inf
    y[[60, 61, N - 1]] = -100
    loss, grad = cs.cross_entropy_grad(z, y, reduction="none", **opts)
    z2 = z.copy()
    loss2, _ = cs.cross_entropy_grad(z2, y, reduction="none", out=z2, **opts)
    np.testing.assert_array_equal(loss2, loss)
    np.testing.assert_array_equal(z2, grad)
    _check_rows_alone(z, y, loss, grad, dtype, **opts)


def test_nan_logits_propagate():
    z = np.array([[0.0, np.nan, 1.0], [0.0, 1.0, 2.0]])
    loss, grad = cs.cross_entropy_grad(z, [0, 1], reduction="none")
    assert np.isnan(loss[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(loss[1]) and np.isfinite(grad[1]).all()


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("C", [3, 10, 24, 32, 33, 64, 300, 2000])
def test_nan_beside_inf_gives_nan_in_either_order(isa, C, dtype):
    # a row's max may skip the nan and be +inf: the loss must still be nan,
    # whichever of the two comes first, for a nan of either sign, with or
    # without the gradient, and with the gradient written over the logits
    # (all rows at once, or one row a call: narrow, four-row, one-row and
    # wide paths); the label's own entry finite, so that only the scan for
    # a nan can tell
    z = np.zeros((5, C), dtype)
    z[0, 1], z[0, 2] = np.nan, np.inf
    z[1, 1], z[1, 2] = np.inf, np.nan
    z[2, C - 1], z[2, 0] = np.nan, np.inf
    z[3, C - 1] = np.inf
    z[4, 1], z[4, 2] = -np.nan, np.inf
    t = np.array([0, 0, 1, 0, 0], np.intp)
    for kw in ({}, {"label_smoothing": 0.1}, {"weight": np.ones(C)}):
        want = ref.cross_entropy(z, t, reduction="none", **kw)
        for loss in (cs.cross_entropy(z, t, reduction="none", **kw),
                     cs.cross_entropy_grad(z, t, reduction="none", **kw)[0]):
            np.testing.assert_array_equal(np.isnan(loss), np.isnan(want), err_msg=str(kw))
            assert np.isnan(loss[[0, 1, 2, 4]]).all()
        zz = z.copy()
        loss, grad = cs.cross_entropy_grad(zz, t, reduction="none", out=zz, **kw)
        assert grad is zz
        np.testing.assert_array_equal(np.isnan(loss), np.isnan(want), err_msg=f"in place {kw}")
        for i in range(len(z)):
            zi = z[i:i + 1].copy()
            loss, _ = cs.cross_entropy_grad(zi, t[i:i + 1], reduction="none", out=zi, **kw)
            np.testing.assert_array_equal(np.isnan(loss), np.isnan(want[i:i + 1]), err_msg=f"row {i} in place {kw}")


# ------------------------------------------------------------------ finite differences

@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_grad_is_the_gradient_of_the_loss(reduction, weighted, kind, rng):
    N, C = 4, 5
    z = 2 * rng.standard_normal((N, C))
    t = make_target(rng, N, C, kind)
    w = rng.random(N) * 2 if weighted else None
    gos = [1.0, -2.5] + ([rng.standard_normal(N)] if reduction == "none" else [])
    for go in gos:
        _, grad = cs.cross_entropy_grad(z, t, sample_weight=w, reduction=reduction, grad_output=go)

        def upstream(x, go=go):
            # the overall loss whose dℒ/dL is go: the gradient is scaled by it
            # (docs/derivations.md, "The upstream gradient")
            return np.sum(np.asarray(go) * cs.cross_entropy(x, t, sample_weight=w, reduction=reduction))
        assert_grad_matches(upstream, z, grad, err_msg=f"grad_output={go}")


@pytest.mark.parametrize("kind", ["index", "unnormalised"])
def test_one_sample_gradient_is_the_gradient_of_the_loss(kind, rng):
    z = rng.standard_normal(6)
    t = make_target(rng, 1, 6, kind)[0]
    _, grad = cs.cross_entropy_grad(z, t, grad_output=0.75)
    assert_grad_matches(lambda x: 0.75 * cs.cross_entropy(x, t), z, grad)


def test_unnormalised_probability_gradient_is_s_sum_y_minus_y(rng):
    z = rng.standard_normal((3, 4))
    y = np.array([[0.0, 2.0, 1.0, 0.0], [0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 0.0]])
    _, grad = cs.cross_entropy_grad(z, y, reduction="sum")
    s = cs.softmax(z, axis=-1)
    np.testing.assert_allclose(grad, s * y.sum(axis=1, keepdims=True) - y, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(grad[2], 0)


@pytest.mark.parametrize("C", [4, 40, 1000])
def test_float32_probability_gradient_where_its_scales_leave_float32(isa, C):
    # float32 probability targets take the loss's terms (rows of four
    # vectors or more) and the gradient's pass in float32, the row's scales
    # rounded to float32, unless that leaves float32's range: a target mass
    # past it (the pairs of targets and the logits' scale q above FLT_MAX,
    # where e q - y is still finite for the small e), or an upstream
    # gradient below FLT_MIN (k subnormal): there the row goes in double,
    # each gradient entry rounded once.
    z = np.zeros((2, C), F32)
    z[:, 0] = 10
    y = np.full((2, C), 3e38, F32)
    _, grad = cs.cross_entropy_grad(z, y, reduction="sum")
    want = ref.softmax(z.astype(F64), axis=-1) * y.astype(F64).sum(1, keepdims=True) - y
    assert np.isfinite(grad[:, 1:]).all()
    np.testing.assert_allclose(grad[:, 1:], want[:, 1:], rtol=1e-6)
    rng = np.random.default_rng(3)
    z = rng.standard_normal((3, C)).astype(F32)
    y = make_target(rng, 3, C, "probs").astype(F32)
    go = 1e-39   # subnormal in float32
    _, grad = cs.cross_entropy_grad(z, y, reduction="sum", grad_output=go)
    _, want = ref.cross_entropy_grad(z.astype(F64), y.astype(F64), reduction="sum", grad_output=go)
    # each entry within half a float32 subnormal step of the exact value
    np.testing.assert_allclose(grad, want, rtol=2e-6, atol=0.5 * 2.0 ** -149 + 1e-52)


@pytest.mark.parametrize("targets", ["indices", "probabilities"])
@pytest.mark.parametrize("opts", [False, True], ids=["plain", "options"])
@pytest.mark.parametrize("dtype", [F32, F64], ids=str)
@pytest.mark.parametrize("C", [100, 300])
def test_a_call_large_enough_to_stream(isa, dtype, C, opts, targets, rng):
    # a call of 8 MiB or more takes its rows of 512 bytes or more one at a
    # time, not four side by side, each prefetching the next row computed
    # (past ignored ones): the same bits as the same rows in smaller calls,
    # on one and two threads, and in place
    N = (8 << 20) // (C * np.dtype(dtype).itemsize) + 7
    z = (rng.standard_normal((N, C)) * 4).astype(dtype)
    if targets == "indices":
        t = rng.integers(0, C, N)
    else:
        t = rng.random((N, C)).astype(dtype)
        t /= t.sum(1, keepdims=True)
    kw = dict(reduction="none")
    if opts:
        if targets == "indices":
            # ignored rows alone, in runs, first and last
            t[::17], t[[0, 40, 41, 42, N - 3, N - 2, N - 1]] = -100, -100
        kw.update(weight=np.linspace(0.5, 2.0, C), label_smoothing=0.1)
    loss, grad = cs.cross_entropy_grad(z, t, **kw)
    step = 500000 // C
    for lo in range(0, N, step):
        part_loss, part_grad = cs.cross_entropy_grad(z[lo:lo + step], t[lo:lo + step], **kw)
        np.testing.assert_array_equal(part_loss, loss[lo:lo + step], err_msg=f"rows from {lo}")
        np.testing.assert_array_equal(part_grad, grad[lo:lo + step], err_msg=f"rows from {lo}")
    before = cs.get_num_threads()
    cs.set_num_threads(1)
    try:
        one_loss, one_grad = cs.cross_entropy_grad(z, t, **kw)
    finally:
        cs.set_num_threads(before)
    np.testing.assert_array_equal(one_loss, loss, err_msg="one thread")
    np.testing.assert_array_equal(one_grad, grad, err_msg="one thread")
    in_place = z.copy()
    _, g = cs.cross_entropy_grad(in_place, t, out=in_place, **kw)
    assert g is in_place
    np.testing.assert_array_equal(in_place, grad, err_msg="in place")
    if not opts:
        check_ce(z[::97], t[::97], dtype, reduction="none")
        return
    if targets == "indices":
        assert np.all(grad[t == -100] == 0) and np.all(loss[t == -100] == 0)
    rows = np.r_[0:N:97, 40, 43, N - 4]
    want_loss, want_grad = ref.cross_entropy_grad(z[rows], t[rows], **kw)
    rtol, atol = (2e-5, 2e-6) if dtype == F32 else (1e-12, 1e-14)
    np.testing.assert_allclose(loss[rows], want_loss, rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad[rows], want_grad.astype(float), rtol=rtol, atol=atol)


def test_gradient_of_a_big_threaded_batch(rng):
    N, C = 7000, 10
    z = rng.standard_normal((N, C))
    t = rng.integers(0, C, N)
    w = rng.random(N)
    v = rng.standard_normal((N, C))
    for reduction in ("mean", "sum"):
        _, grad = cs.cross_entropy_grad(z, t, sample_weight=w, reduction=reduction)
        num = directional_derivative(lambda x: cs.cross_entropy(x, t, sample_weight=w, reduction=reduction), z, v)
        np.testing.assert_allclose(np.vdot(grad, v), num, rtol=1e-6)


# ------------------------------------------------------------------ dtypes and layouts

def test_dtypes(rng):
    z = rng.standard_normal((5, 3))
    t = np.array([0, 2, 1, 1, 0])
    loss, grad = cs.cross_entropy_grad(z.astype(F16), t)
    assert loss.dtype == F16 and grad.dtype == F16
    want_loss, want_grad = ref.cross_entropy_grad(z.astype(F16), t)
    assert_within(loss, want_loss, 2e-3 * abs(float(want_loss)))
    assert_within(grad, want_grad, 1e-3)
    for zi in (np.array([[1, 0, 2], [0, 0, 0]], np.int32), np.array([[True, False, True], [False] * 3])):
        loss, grad = cs.cross_entropy_grad(zi, [2, 0])
        assert loss.dtype == F64 and grad.dtype == F64
        check_ce(zi, [2, 0], F64)
    # labels: any integer dtype, integral floats, bool (as NumPy's 0 and 1)
    want = cs.cross_entropy_grad(z, t)
    for tt in (t.astype(np.int8), t.astype(np.uint8), t.astype(np.uint64), t.astype(np.int32), t.astype(F64),
               t.astype(F32), t.astype(F16), t.tolist(), [float(v) for v in t]):
        got = cs.cross_entropy_grad(z, tt)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    check_ce(z[:2], np.array([True, False]), F64)
    # probabilities of another dtype than the logits
    y = make_target(rng, 5, 3, "probs")
    check_ce(z.astype(F32), y, F32)
    check_ce(z, y.astype(F32), F64)
    loss, grad = cs.cross_entropy_grad(z, np.eye(3, dtype=np.int64)[t])
    np.testing.assert_allclose(grad, want[1], rtol=1e-15)


@pytest.mark.parametrize("bad", [np.array([[1 + 1j, 0]]), np.array([[1, 0]], object), np.array([["1", "0"]])],
                         ids=["complex", "object", "str"])
def test_non_real_input_raises_type_error(bad):
    with pytest.raises(TypeError):
        cs.cross_entropy_grad(bad, [0])
    with pytest.raises(TypeError):
        cs.cross_entropy(np.zeros((1, 2)), bad)  # probabilities
    with pytest.raises(TypeError):
        cs.cross_entropy(np.zeros((1, 2)), bad[:, 0])  # labels
    with pytest.raises(TypeError):
        cs.softmax_regression_loss_grad(np.zeros((2, 2)), bad, [0])


def _layouts(rng, dtype, kind):
    base = (3 * rng.standard_normal((40, 12))).astype(dtype)
    t = make_target(rng, 80, 12, kind)
    ro = base.copy()
    ro.flags.writeable = False
    yield "fortran", np.asfortranarray(base), t[:40]
    yield "strided", base[::2, ::3], make_target(rng, 20, 4, kind)
    yield "negative", base[::-1, ::-1], t[:40][::-1]
    yield "target strided", base, t[::2]
    yield "target fortran", base, np.asfortranarray(t[:40])
    yield "transposed", base.T.copy().T, t[40:]
    yield "readonly", ro, t[:40]
    yield "column slice", base[:, 1:11], make_target(rng, 80, 10, kind)[::2]


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_layouts(isa, dtype, kind, rng):
    w_full = rng.random(80)
    for name, z, t in _layouts(rng, dtype, kind):
        w = w_full[::2][:z.shape[0]]
        z0, t0 = z.copy(), t.copy()
        for reduction in REDUCTIONS:
            check_ce(z, t, dtype, sample_weight=w, reduction=reduction)
        np.testing.assert_array_equal(z, z0, err_msg=name)
        np.testing.assert_array_equal(t, t0, err_msg=name)


# ------------------------------------------------------------------ out=

def assert_same(got, want, bound):
    """Equal within twice the error allowed against the oracle: narrow rows are
    summed down a block of rows when the gradient buffer is packed and row by
    row otherwise, which may round differently."""
    assert_within(got, want, 2 * bound)


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape", [(7, 10), (7, 32), (7, 33), (7000, 10), (3000, 24), (70, 1000)], ids=str)
def test_out(isa, shape, dtype, kind, rng):
    N, C = shape
    z = rng.standard_normal(shape).astype(dtype)
    t = make_target(rng, N, C, kind)
    w = rng.random(N)
    want_loss, want = cs.cross_entropy_grad(z, t, sample_weight=w)
    gb = ce_bounds(z, t, w, "mean", 1.0, dtype)[1]
    for out in (np.empty(shape, dtype), np.empty(shape, dtype, order="F"), np.empty((N, 2 * C), dtype)[:, ::2],
                np.empty(shape, dtype)[::-1]):
        loss, grad = cs.cross_entropy_grad(z, t, sample_weight=w, out=out)
        assert grad is out
        assert_same(out, want, gb)
        assert loss == want_loss  # the loss is computed the same way whatever the gradient's layout
    # in place over the logits (and over a probability target)
    z2 = z.copy()
    loss, grad = cs.cross_entropy_grad(z2, t, sample_weight=w, out=z2)
    assert grad is z2
    assert_same(z2, want, gb)
    assert loss == want_loss
    if kind == "probs":
        t2 = t.astype(dtype)
        want_loss, want = cs.cross_entropy_grad(z, t2, sample_weight=w)
        loss, grad = cs.cross_entropy_grad(z, t2, sample_weight=w, out=t2)
        assert grad is t2
        assert_same(t2, want, gb)
        assert loss == want_loss


def test_out_in_place_over_reversed_rows_and_float16(isa, rng):
    z = rng.standard_normal((50, 6))[::-1]
    t = rng.integers(0, 6, 50)
    want_loss, want = cs.cross_entropy_grad(z.copy(), t)
    loss, grad = cs.cross_entropy_grad(z, t, out=z)
    assert grad is z
    assert_same(z, want, ce_bounds(z, t, None, "mean", 1.0, F64)[1])
    assert loss == want_loss
    z16 = rng.standard_normal((5, 4)).astype(F16)
    t = t[:5] % 4
    want_loss, want = cs.cross_entropy_grad(z16, t)
    out = np.empty((5, 4), F16)
    loss, grad = cs.cross_entropy_grad(z16, t, out=out)
    assert grad is out and loss.dtype == F16
    np.testing.assert_array_equal(out, want)
    with pytest.raises(ValueError, match="dtype"):
        cs.cross_entropy_grad(z16, t, out=np.empty((5, 4), F32))


def test_out_one_sample_and_overlap(rng):
    z = rng.standard_normal(5)
    _, want = cs.cross_entropy_grad(z, 3)
    out = np.empty(5)
    assert cs.cross_entropy_grad(z, 3, out=out)[1] is out
    np.testing.assert_array_equal(out, want)
    # the gradient written one column to the right of the logits it is read from
    z2 = rng.standard_normal((6, 8))
    t = rng.integers(0, 8, 6)
    _, want = cs.cross_entropy_grad(z2, t)
    buf = np.zeros((6, 9))
    buf[:, :8] = z2
    _, grad = cs.cross_entropy_grad(buf[:, :8], t, out=buf[:, 1:])
    np.testing.assert_array_equal(grad, want)


# ------------------------------------------------------------------ bad input

def _bad_calls():
    z = np.zeros((4, 3))
    t = np.array([0, 1, 2, 1])
    yield "label -1", (z, [0, -1, 2, 1]), {}, "-1"
    yield "label C", (z, [0, 1, 3, 1]), {}, "3"
    yield "label 2**62", (z, [0, 1, 2**62, 1]), {}, str(2**62)
    yield "label -2**62", (z, [0, 1, -2**62, 1]), {}, str(-2**62)
    yield "label uint64 max", (z, np.array([0, 1, 2**64 - 1, 1], np.uint64)), {}, str(2**64 - 1)
    yield "label 2.5", (z, [0, 1, 2.5, 1]), {}, "2.5"
    yield "label -0.5", (z, [0, 1, -0.5, 1]), {}, "0.5"
    yield "label nan", (z, [0, 1, np.nan, 1]), {}, "nan"
    yield "label inf", (z, [0, 1, np.inf, 1]), {}, "inf"
    yield "label 1e300", (z, [0, 1, 1e300, 1]), {}, "1e+300"
    yield "one-sample label 3", (z[0], 3), {}, "3"
    yield "target (N-1,)", (z, t[:3]), {}, "shape"
    yield "target (N, C+1)", (z, np.zeros((4, 4))), {}, "shape"
    yield "target (N, 1)", (z, t[:, None]), {}, "shape"
    yield "target (C,) for (N, C)", (z, np.zeros(3)), {}, "shape"
    yield "logits 3-D", (np.zeros((2, 2, 3)), np.zeros((2, 2), int)), {}, "shape"
    yield "logits 0-D", (np.float64(1.0), 0), {}, "shape"
    yield "no classes", (np.zeros((4, 0)), np.zeros(4, int)), {}, "class"
    yield "negative weight", (z, t), {"sample_weight": [1.0, -0.5, 1.0, 1.0]}, "-0.5"
    yield "nan weight", (z, t), {"sample_weight": [1.0, np.nan, 1.0, 1.0]}, "nan"
    yield "weight shape (N-1,)", (z, t), {"sample_weight": [1.0, 1.0, 1.0]}, "shape"
    yield "weight shape (N, 1)", (z, t), {"sample_weight": np.ones((4, 1))}, "shape"
    yield "weight scalar for N > 1", (z, t), {"sample_weight": 1.0}, "shape"
    yield "grad_output (N,) with mean", (z, t), {"grad_output": np.ones(4)}, "grad_output"
    yield "grad_output (N,) with sum", (z, t), {"grad_output": np.ones(4), "reduction": "sum"}, "grad_output"
    yield "grad_output (N+1,)", (z, t), {"grad_output": np.ones(5), "reduction": "none"}, "grad_output"
    yield "grad_output (N, 1)", (z, t), {"grad_output": np.ones((4, 1)), "reduction": "none"}, "grad_output"
    yield "unknown reduction", (z, t), {"reduction": "avg"}, "avg"
    yield "reduction None", (z, t), {"reduction": None}, "None"
    yield "out shape", (z, t), {}, "shape"
    yield "out dtype", (z, t), {}, "dtype"


def _out_for(name):
    if name == "out shape":
        return np.full((3, 4), 7.0)
    if name == "out dtype":
        return np.full((4, 3), 7.0, F32)
    return None


@pytest.mark.parametrize("name, args, kwargs, match", list(_bad_calls()), ids=[c[0] for c in _bad_calls()])
def test_bad_input_raises_and_writes_nothing(name, args, kwargs, match):
    out = _out_for(name)
    if out is None:
        out = np.full(np.shape(args[0]), 7.0) if np.ndim(args[0]) in (1, 2) else None
    before = None if out is None else out.copy()
    with pytest.raises(ValueError, match=re.escape(match)):
        cs.cross_entropy_grad(*args, out=out, **kwargs)
    if out is not None:
        np.testing.assert_array_equal(out, before)
    if "out" not in name and "grad_output" not in name:
        with pytest.raises(ValueError, match=re.escape(match)):
            cs.cross_entropy(*args, **kwargs)


def test_bad_labels_in_place_over_the_logits_write_nothing():
    z = np.arange(12.0).reshape(4, 3)
    z0 = z.copy()
    with pytest.raises(ValueError, match="7"):
        cs.cross_entropy_grad(z, [0, 1, 7, 1], out=z)
    np.testing.assert_array_equal(z, z0)


def test_out_read_only_and_not_an_array():
    z, t = np.zeros((2, 3)), [0, 1]
    ro = np.zeros((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError):
        cs.cross_entropy_grad(z, t, out=ro)
    with pytest.raises(TypeError):
        cs.cross_entropy_grad(z, t, out=[[0.0] * 3] * 2)


@pytest.mark.parametrize("where", [0, 12345, 69999])
@pytest.mark.parametrize("bad", [-1, 10, 2**62, 2.5])
def test_bad_label_in_a_big_threaded_batch(bad, where, rng):
    N, C = 7000, 10
    z = rng.standard_normal((N, C)).astype(F32)
    t = rng.integers(0, C, N).astype(F64 if isinstance(bad, float) else np.int64)
    t[where % N] = bad
    out = np.full((N, C), 7.0, F32)
    with pytest.raises(ValueError, match=str(bad)):
        cs.cross_entropy_grad(z, t, out=out)
    assert (out == 7).all()
    with pytest.raises(ValueError, match=str(bad)):
        cs.cross_entropy(z, t, reduction="none")
    z0 = z.copy()
    with pytest.raises(ValueError):
        cs.cross_entropy_grad(z, t, out=z)
    np.testing.assert_array_equal(z, z0)


def test_concurrent_calls_from_python_threads(rng):
    from concurrent.futures import ThreadPoolExecutor
    jobs = [(rng.standard_normal((3000, 33)).astype(dt), rng.integers(0, 33, 3000)) for dt in (F32, F64) * 3]
    want = [cs.cross_entropy_grad(z, t, reduction="none") for z, t in jobs]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda job: cs.cross_entropy_grad(*job, reduction="none"), jobs * 2))
    for (gl, gg), (wl, wg) in zip(got, want * 2):
        np.testing.assert_array_equal(gl, wl)
        np.testing.assert_array_equal(gg, wg)


# ------------------------------------------------------------------ softmax regression

def test_worked_example():
    # docs/derivations.md, "Worked example": x = [2, 2, 2], s = [0.1, 0.7, 0.2],
    # y = onehot(2) give the weight gradient (s - y) ⊗ x = [[0.2]*3, [1.4]*3, [-1.6]*3].
    s = np.array([0.1, 0.7, 0.2])
    X = np.array([[2.0, 2.0, 2.0]])
    W, b = np.zeros((3, 3)), np.log(s)  # X Wᵀ + b = log s, so softmax gives s
    expected = np.array([[0.2] * 3, [1.4] * 3, [-1.6] * 3])
    for y in ([2], np.array([[0.0, 0.0, 1.0]]), [2.0]):
        loss, dW, db = cs.softmax_regression_loss_grad(W, X, y, b)
        np.testing.assert_allclose(dW, expected, rtol=1e-15, atol=1e-16)
        np.testing.assert_allclose(db, [0.1, 0.7, -0.8], rtol=1e-15, atol=1e-16)
        np.testing.assert_allclose(loss, -np.log(0.2), rtol=1e-15)
    _, grad = cs.cross_entropy_grad(np.log(s), 2)
    np.testing.assert_allclose(np.outer(grad, X[0]), expected, rtol=1e-15, atol=1e-16)
    loss, dW, _ = cs.softmax_regression_loss_grad(W.astype(F32), X.astype(F32), [2], b.astype(F32))
    assert dW.dtype == F32
    np.testing.assert_allclose(dW, expected, rtol=1e-6)


@pytest.mark.parametrize("kind", ["index", "probs", "unnormalised"])
@pytest.mark.parametrize("with_b", [False, True], ids=["no_b", "b"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_regression_gradient_is_the_gradient_of_the_loss(weighted, l2, with_b, kind, rng):
    N, D, C = 6, 4, 3
    X = rng.standard_normal((N, D))
    W = rng.standard_normal((C, D))
    b = rng.standard_normal(C) if with_b else None
    y = make_target(rng, N, C, kind)
    sw = rng.random(N) * 2 if weighted else None
    loss, dW, db = cs.softmax_regression_loss_grad(W, X, y, b, l2=l2, sample_weight=sw)
    assert isinstance(loss, float)
    assert_grad_matches(lambda W_: cs.softmax_regression_loss_grad(W_, X, y, b, l2=l2, sample_weight=sw)[0],
                        W, dW, err_msg="dW")
    if with_b:
        assert_grad_matches(lambda b_: cs.softmax_regression_loss_grad(W, X, y, b_, l2=l2, sample_weight=sw)[0],
                            b, db, err_msg="db")
    else:
        assert db is None


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("N, D, C", [(1, 3, 2), (50, 7, 10), (2000, 20, 33)], ids=str)
def test_regression_matches_reference(isa, N, D, C, dtype, kind, rng):
    X = rng.standard_normal((N, D)).astype(dtype)
    W = rng.standard_normal((C, D)).astype(dtype)
    b = rng.standard_normal(C).astype(dtype)
    y = make_target(rng, N, C, kind)
    sw = rng.random(N)
    ins = [a.copy() for a in (X, W, b, y, sw)]
    for kw in ({}, {"l2": 0.1}, {"sample_weight": sw, "l2": 0.5}):
        loss, dW, db = cs.softmax_regression_loss_grad(W, X, y, b, **kw)
        rl, rdW, rdb = ref.softmax_regression_loss_grad(W, X, y, b, **kw)
        assert dW.dtype == dtype and db.dtype == dtype and dW.shape == (C, D) and db.shape == (C,)
        # BLAS sums N products of the rounded gradient in dtype
        tol = 8 * eps_of(dtype) * (1 + np.sqrt(N))
        np.testing.assert_allclose(loss, float(rl), rtol=tol)
        np.testing.assert_allclose(dW, np.asarray(rdW, F64), rtol=tol, atol=tol * float(np.abs(rdW).max()))
        np.testing.assert_allclose(db, np.asarray(rdb, F64), rtol=tol, atol=tol * float(np.abs(rdb).max()))
    for a, a0 in zip((X, W, b, y, sw), ins):
        np.testing.assert_array_equal(a, a0)


def test_regression_bad_input():
    W, X = np.zeros((3, 2)), np.zeros((4, 2))
    for args, kw in [((W, X[:, :1], [0, 1, 2, 0]), {}), ((W[0], X, [0, 1, 2, 0]), {}),
                     ((W, X, [0, 1, 2]), {}), ((W, X, [0, 1, 3, 0]), {}), ((W, X, [0, 1, 2, 0], np.zeros(2)), {}),
                     ((W, X, [0, 1, 2, 0]), {"sample_weight": [1, 1, -1, 1]}), ((W, X[:0], []), {})]:
        with pytest.raises(ValueError):
            cs.softmax_regression_loss_grad(*args, **kw)


# ------------------------------------------------------------------ PyTorch

@pytest.mark.parametrize("kind", ["index", "probs", "unnormalised"])
@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_matches_torch(reduction, dtype, kind, rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    N, C = 9, 7
    logits = (3 * rng.standard_normal((N, C))).astype(dtype)
    target = make_target(rng, N, C, kind)
    tt = torch.from_numpy(target if kind == "index" else target.astype(dtype))
    w = (rng.random(N) * 2).astype(dtype)
    go = rng.standard_normal(N).astype(dtype) if reduction == "none" else np.array(-1.25, dtype)
    tol = 16 * eps_of(dtype)

    z = torch.tensor(logits, requires_grad=True)
    want = F.cross_entropy(z, tt, reduction=reduction)
    want.backward(torch.from_numpy(go))
    loss, grad = cs.cross_entropy_grad(logits, target, reduction=reduction, grad_output=go)
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=tol, atol=tol * np.abs(go).max())

    # per-sample weights: torch's `weight` is per class, so weight the "none" losses
    z = torch.tensor(logits, requires_grad=True)
    per = F.cross_entropy(z, tt, reduction="none") * torch.from_numpy(w)
    want = {"none": per, "sum": per.sum(), "mean": per.sum() / torch.from_numpy(w).sum()}[reduction]
    want.backward(torch.from_numpy(go))
    loss, grad = cs.cross_entropy_grad(logits, target, sample_weight=w, reduction=reduction, grad_output=go)
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=tol, atol=tol * np.abs(go).max() * w.max())


def test_matches_torch_extremes():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    logits = np.array([[1e4, 0.0, -1e4], [0.0, -np.inf, 1.0], [-np.inf, 0.0, 1.0]])
    target = np.array([0, 2, 0])
    z = torch.tensor(logits, requires_grad=True)
    want = F.cross_entropy(z, torch.from_numpy(target), reduction="none")
    want.sum().backward()
    loss, grad = cs.cross_entropy_grad(logits, target, reduction="none")
    np.testing.assert_allclose(loss, want.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-15, atol=1e-300)


# ------------------------------------------------------------------ properties

@settings(max_examples=60, deadline=None)
@given(z=hnp.arrays(st.sampled_from([F32, F64]), hnp.array_shapes(min_dims=2, max_dims=2, max_side=40),
                    elements=st.floats(-60, 60, width=32)),
       data=st.data())
def test_property_index_targets(z, data):
    N, C = z.shape
    t = data.draw(hnp.arrays(np.int64, N, elements=st.integers(0, C - 1)))
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    w = data.draw(st.none() | hnp.arrays(F64, N, elements=st.floats(0.01, 10)))
    loss, grad = check_ce(z, t, z.dtype, sample_weight=w, reduction=reduction)
    # Σ_k (s_k - 1(k = c)) = 0 on every row, whatever the row's scale
    k = np.ones(N) if w is None else w
    if reduction == "mean":
        k = k / k.sum()
    assert_within(grad.sum(axis=1), 0, 4 * (C + 2) * eps_of(z.dtype) * k)
    # and the gradient's target entry is the only negative one
    assert (grad[np.arange(N), t] <= 0).all()
    mask = np.ones_like(grad, bool)
    mask[np.arange(N), t] = False
    assert (grad[mask] >= 0).all()


@settings(max_examples=40, deadline=None)
@given(z=hnp.arrays(F64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=20), elements=st.floats(-30, 30)),
       data=st.data())
def test_property_probability_targets(z, data):
    y = data.draw(hnp.arrays(F64, z.shape, elements=st.floats(0, 5)))
    reduction = data.draw(st.sampled_from(["sum", "none"]))
    loss, grad = check_ce(z, y, F64, reduction=reduction)
    # Σ_k (s_k Σy - y_k) = 0 as well
    assert_within(grad.sum(axis=1), 0, 8 * (z.shape[1] + 2) * EPS64 * (1 + y.sum(axis=1)))


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 10), (40, 1000)], ids=str)
def test_label_dtype_and_layout_give_identical_bits(isa, rng, dtype, shape):
    """The label dtype and the memory layout of the logits and labels change
    nothing: int32, int64 and intp labels, strided labels, Fortran-ordered,
    strided and read-only logits all give the same bits."""
    N, C = shape
    z = (4 * rng.standard_normal(shape)).astype(dtype)
    t = rng.integers(0, C, N).astype(np.intp)
    ro = z.copy()
    ro.flags.writeable = False
    padded = np.zeros((N, 2 * C), dtype)
    padded[:, ::2] = z
    variants = {"int32 labels": (z, t.astype(np.int32)), "int64 labels": (z, t.astype(np.int64)),
                "uint8 labels": (z, t.astype(np.uint8)) if C <= 255 else (z, t),
                "strided labels": (z, np.repeat(t, 2)[::2]), "negative-stride labels": (z, t[::-1].copy()[::-1]),
                "fortran logits": (np.asfortranarray(z), t), "strided logits": (padded[:, ::2], t),
                "read-only logits": (ro, t)}
    for reduction in REDUCTIONS:
        loss, grad = cs.cross_entropy_grad(z, t, reduction=reduction, grad_output=0.5)
        assert grad.dtype == dtype and grad.flags.c_contiguous and loss.dtype == dtype
        lb, gb = ce_bounds(z, t, None, reduction, 0.5, dtype)
        want_loss, want_grad = ref.cross_entropy_grad(z, t, reduction=reduction, grad_output=0.5)
        assert_within(loss, want_loss, lb)
        assert_within(grad, want_grad, gb)
        for what, (zz, tt) in variants.items():
            l2, g2 = cs.cross_entropy_grad(zz, tt, reduction=reduction, grad_output=0.5)
            np.testing.assert_array_equal(l2, loss, err_msg=what)
            np.testing.assert_array_equal(g2, grad, err_msg=what)
            np.testing.assert_array_equal(cs.cross_entropy(zz, tt, reduction=reduction), loss, err_msg=what)


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (300, 10), (40, 1000)], ids=str)
def test_out_in_place_and_overlapping_give_identical_bits(isa, rng, dtype, shape):
    """A C-contiguous out=, the logits themselves as out=, and an out= that
    overlaps the logits shifted by one element all receive the bits of the
    plain call."""
    N, C = shape
    z = (4 * rng.standard_normal(shape)).astype(dtype)
    t = rng.integers(0, C, N)
    for reduction in ("mean", "sum"):
        loss, grad = cs.cross_entropy_grad(z, t, reduction=reduction, grad_output=0.5)
        out = np.full_like(z, 7)
        l3, g3 = cs.cross_entropy_grad(z, t, reduction=reduction, grad_output=0.5, out=out)
        assert g3 is out and l3 == loss
        np.testing.assert_array_equal(out, grad)
        zc = z.copy()
        l4, g4 = cs.cross_entropy_grad(zc, t, reduction=reduction, grad_output=0.5, out=zc)
        assert g4 is zc and l4 == loss
        np.testing.assert_array_equal(zc, grad)
    loss, grad = cs.cross_entropy_grad(z, t)
    for shift in (1, -1):
        buf = np.zeros(N * C + 1, dtype)
        src = buf[:-1] if shift == 1 else buf[1:]
        dst = buf[1:] if shift == 1 else buf[:-1]
        src[:] = z.ravel()
        l5, g5 = cs.cross_entropy_grad(src.reshape(shape), t, out=dst.reshape(shape))
        assert g5.base is buf or np.shares_memory(g5, buf)
        assert l5 == loss
        np.testing.assert_array_equal(dst.reshape(shape), grad)


@pytest.mark.parametrize("label_dtype", [np.intp, np.int32])
def test_bad_label_writes_nothing(label_dtype):
    z = np.arange(12.0).reshape(4, 3)
    z0 = z.copy()
    out = np.full((4, 3), 7.0)
    for lab, bad in ((np.array([0, 1, 3, 1]), 3), (np.array([0, -1, 2, 1]), -1)):
        lab = lab.astype(label_dtype)
        with pytest.raises(ValueError, match=f"class label {bad} is out of range"):
            cs.cross_entropy_grad(z, lab, out=z)
        with pytest.raises(ValueError, match="out of range"):
            cs.cross_entropy_grad(z, lab, out=out)
        with pytest.raises(ValueError, match="out of range"):
            cs.cross_entropy(z, lab)
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(out, 7.0)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_labels_checked_in_many_units(rng, n_threads):
    # more labels than the scan takes in one unit (16384), and more units
    # than it keeps on the stack: the first bad label is named, whichever unit
    # it is in, and the ignored rows are counted in every unit
    N, C = 5 * 16384 + 11, 3
    z = rng.standard_normal((N, C)).astype(np.float32)
    t = rng.integers(0, C, N)
    t[rng.random(N) < 0.2] = -100
    old = cs.get_num_threads()
    cs.set_num_threads(n_threads)
    try:
        kept = t != -100
        want = ref.cross_entropy(z[kept], t[kept])
        assert_within(cs.cross_entropy(z, t), want, 1e-5 * abs(float(want)))
        for at in (16384 * 3 + 5, N - 1):
            bad = t.copy()
            bad[at], bad[N - 1] = 7, -2
            with pytest.raises(ValueError, match=f"class label {bad[at]} is out of range"):
                cs.cross_entropy_grad(z, bad, out=np.empty_like(z))
    finally:
        cs.set_num_threads(old)


def test_out_over_the_labels_or_weights(rng):
    # out sharing memory with the labels or the sample weights: they are read
    # while (or after) the gradient is written, so the result must not change
    z = rng.standard_normal((64, 64))
    t = rng.integers(0, 64, 64)
    want = cs.cross_entropy_grad(z, t)
    for lab_dtype in (np.intp, np.int32):
        buf = np.zeros(64 * 64)
        lab = buf.view(lab_dtype)[:64]
        lab[:] = t
        out = buf.reshape(64, 64)
        loss, grad = cs.cross_entropy_grad(z, lab, out=out)
        assert grad is out and loss == want[0]
        np.testing.assert_array_equal(out, want[1])
    for reduction in ("mean", "sum", "none"):
        want = cs.cross_entropy_grad(z, t, sample_weight=np.arange(64.0), reduction=reduction)
        buf = np.zeros(64 * 64)
        buf[:64] = np.arange(64.0)
        loss, grad = cs.cross_entropy_grad(z, t, sample_weight=buf[:64], reduction=reduction,
                                           out=buf.reshape(64, 64))
        np.testing.assert_array_equal(loss, want[0])
        np.testing.assert_array_equal(grad, want[1])


# ------------------------------------------------------------------ reductions

def _ulps(got, want):
    return abs(float(got) - want) / (EPS64 * max(abs(want), 1e-300))


@pytest.mark.parametrize("N", [1, 7, 256, 257, 4096, 100003])
def test_sum_and_mean_are_compensated_sums_of_the_rows(N, rng):
    """The "sum" of many rows is the correctly rounded sum of the per-row losses
    to within a few ulp (a plain running sum drifts by up to N/2 ulp), and
    "mean" is that sum over N (docs/derivations.md, "Sums")."""
    C = 5
    z = rng.standard_normal((N, C)) * 10.0 ** rng.integers(-3, 3, (N, 1))
    t = rng.integers(0, C, N)
    per = cs.cross_entropy(z, t, reduction="none")
    exact = math.fsum(per.tolist())
    assert _ulps(cs.cross_entropy(z, t, reduction="sum"), exact) <= 4
    assert _ulps(cs.cross_entropy_grad(z, t, reduction="sum")[0], exact) <= 4
    assert _ulps(cs.cross_entropy(z, t), exact / N) <= 5


def test_sum_of_one_large_and_many_small_losses():
    """One loss of 2**30 and 100000 of log 2: each log 2 added to a total above
    2**30 is rounded to a multiple of 2**-22, always the same way, so a running
    sum ends some 800 ulp off; the package's sum matches math.fsum of the
    reference's per-row losses."""
    N = 100001
    z = np.zeros((N, 2))
    z[0] = [0.0, -2.0**30]      # label 1: loss 2**30 (+ exp(-2**30), nothing)
    t = np.zeros(N, np.intp)
    t[0] = 1
    exact = math.fsum(np.asarray(ref.cross_entropy(z, t, reduction="none"), F64).tolist())
    assert _ulps(cs.cross_entropy(z, t, reduction="sum"), exact) <= 4
    assert _ulps(cs.cross_entropy(z, t), exact / N) <= 5


def test_sum_of_non_finite_losses():
    z = np.zeros((1000, 3))
    t = np.zeros(1000, np.intp)
    z[600] = [-np.inf, 0.0, 0.0]      # the target's logit is -inf: loss inf
    assert cs.cross_entropy(z, t, reduction="sum") == np.inf
    assert cs.cross_entropy(z, t) == np.inf
    z[300, 1] = np.nan
    assert np.isnan(cs.cross_entropy(z, t, reduction="sum"))
    assert np.isnan(cs.cross_entropy(z, t))


def test_weighted_sum_is_a_compensated_sum():
    N = 100001
    z = np.zeros((N, 2))
    z[0] = [0.0, -2.0**30]
    t = np.zeros(N, np.intp)
    t[0] = 1
    w = np.ones(N)
    exact = math.fsum(np.asarray(ref.cross_entropy(z, t, reduction="none"), F64).tolist())
    assert _ulps(cs.cross_entropy(z, t, sample_weight=w, reduction="sum"), exact) <= 4


@pytest.mark.parametrize("dtype", FLOATS, ids=str)
def test_unaligned_grad_output_and_weights(rng, dtype):
    # per-row arrays (grad_output with reduction='none', sample weights) that
    # lie unaligned are copied before the kernel reads them; the same bits as
    # aligned ones
    N, C = 37, 11
    z = rng.normal(size=(N, C)).astype(dtype)
    t = rng.integers(0, C, N)

    def unaligned(a):
        raw = np.zeros(a.nbytes + 3, np.uint8)[3:]
        u = raw.view(a.dtype)
        u[...] = a
        assert not u.flags.aligned
        return u

    go, w = rng.uniform(-2, 2, N), rng.uniform(0, 2, N)
    want = cs.cross_entropy_grad(z, t, sample_weight=w, reduction="none", grad_output=go)
    for kw in ({"grad_output": unaligned(go), "sample_weight": w},
               {"grad_output": go, "sample_weight": unaligned(w)}):
        got = cs.cross_entropy_grad(z, t, reduction="none", **kw)
        for g, e in zip(got, want):
            np.testing.assert_array_equal(g, e)


def test_kernel_refuses_unaligned_per_row_arrays(rng):
    # the kernel reads per-row scales through a typed pointer: an unaligned
    # array is refused with an exception, never read
    from csoftmax import _loss
    z = rng.normal(size=(8, 5))
    label = np.zeros(8, np.intp)
    raw = np.zeros(8 * 8 + 1, np.uint8)[1:]
    rscale = raw.view(F64)
    assert not rscale.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        _loss.cross_entropy(z, label, None, True, None, rscale, 1.0, None, None, 0.0, -100, False, F64, 1)
