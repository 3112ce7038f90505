"""Cross-entropy with class weights, ignore_index and label smoothing: against
the oracle, PyTorch's torch.nn.functional.cross_entropy (the semantics we
follow) and finite differences."""
import itertools

import numpy as np
import pytest

import csoftmax as cs
from csoftmax import reference as ref
from gradcheck import assert_grad_matches
from helpers import assert_within

REDUCTIONS = ["mean", "sum", "none"]


@pytest.fixture
def rng():
    return np.random.default_rng(11)
N, C = 13, 7


def case(rng, kind, dtype):
    z = (4 * rng.standard_normal((N, C))).astype(dtype)
    if kind == "index":
        t = rng.integers(0, C, N)
        t[[2, 7]] = -100  # ignored under the default ignore_index
        return z, t
    y = rng.random((N, C))
    return z, (y / y.sum(1, keepdims=True)).astype(dtype)


OPTIONS = [dict(weight=w, label_smoothing=e) for w, e in
           itertools.product([None, np.linspace(0.5, 2.0, C)], [0.0, 0.15])]


def tol(dtype):
    return (2e-5, 2e-6) if dtype == np.float32 else (1e-12, 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: f"w={o['weight'] is not None}-eps={o['label_smoothing']}")
@pytest.mark.parametrize("sw", [False, True])
def test_against_the_oracle(isa, rng, dtype, kind, reduction, opts, sw):
    z, t = case(rng, kind, dtype)
    w = rng.random(N) * 2 if sw else None
    loss, grad = cs.cross_entropy_grad(z, t, sample_weight=w, reduction=reduction, grad_output=0.75, **opts)
    want_loss, want_grad = ref.cross_entropy_grad(z, t, sample_weight=w, reduction=reduction, grad_output=0.75,
                                                  **opts)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(np.asarray(loss, float), np.asarray(want_loss, float), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, want_grad.astype(float), rtol=rtol, atol=atol)
    assert grad.dtype == dtype
    np.testing.assert_array_equal(np.asarray(cs.cross_entropy(z, t, sample_weight=w, reduction=reduction, **opts)),
                                  np.asarray(loss))
    if kind == "index":
        assert np.all(grad[[2, 7]] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [16, 24, 32, 40, 1000, 5000])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.15])
@pytest.mark.parametrize("in_place", [False, True])
def test_wide_rows_against_the_oracle(isa, rng, dtype, width, weighted, eps, in_place):
    """Rows wider than the narrow blocks, and narrow ones of whole vectors
    (which go four rows side by side as those do), runs of ignored rows among
    them (first, last, adjacent), every option, and the gradient written over
    the logits."""
    n = 24
    z = (4 * rng.standard_normal((n, width))).astype(dtype)
    t = rng.integers(0, width, n)
    t[[0, 5, 6, 7, n - 1]] = -100
    opts = dict(weight=rng.random(width) * 2 if weighted else None, label_smoothing=eps)
    want_loss, want_grad = ref.cross_entropy_grad(z, t, reduction="none", **opts)
    zz = z.copy()
    loss, grad = cs.cross_entropy_grad(zz, t, reduction="none", out=zz if in_place else None, **opts)
    assert (grad is zz) == in_place
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(np.asarray(loss, float), np.asarray(want_loss, float), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, want_grad.astype(float), rtol=rtol, atol=atol)
    assert np.all(grad[[0, 5, 6, 7, n - 1]] == 0) and np.all(loss[[0, 5, 6, 7, n - 1]] == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: f"w={o['weight'] is not None}-eps={o['label_smoothing']}")
def test_against_pytorch(rng, dtype, kind, reduction, opts):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    z, t = case(rng, kind, dtype)
    zt = torch.from_numpy(z.copy()).requires_grad_()
    tt = torch.from_numpy(t)
    wt = None if opts["weight"] is None else torch.from_numpy(opts["weight"].astype(dtype))
    want = F.cross_entropy(zt, tt, weight=wt, reduction=reduction, label_smoothing=opts["label_smoothing"])
    want.backward(torch.full_like(want, 0.75))
    loss, grad = cs.cross_entropy_grad(z, t, reduction=reduction, grad_output=0.75, **opts)
    rtol, atol = (1e-4, 1e-6) if dtype == np.float32 else (1e-10, 1e-12)
    np.testing.assert_allclose(np.asarray(loss), want.detach().numpy(), rtol=rtol, atol=atol)
    np.testing.assert_allclose(grad, zt.grad.numpy(), rtol=rtol, atol=atol)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("opts", OPTIONS[1:], ids=lambda o: f"w={o['weight'] is not None}-eps={o['label_smoothing']}")
def test_gradient_is_the_derivative(rng, kind, opts):
    z, t = case(rng, kind, np.float64)
    w = rng.random(N)
    _, grad = cs.cross_entropy_grad(z, t, sample_weight=w, **opts)
    assert_grad_matches(lambda v: cs.cross_entropy(v, t, sample_weight=w, **opts), z, grad)


def test_ignore_index_is_never_out_of_range(rng):
    z = rng.standard_normal((4, 3))
    for ignore in (-1, 3, 7):
        t = np.array([0, ignore, 2, ignore])
        loss, grad = cs.cross_entropy_grad(z, t, ignore_index=ignore, reduction="none")
        assert loss[1] == loss[3] == 0 and not grad[[1, 3]].any()
        with pytest.raises(ValueError, match=f"class label {ignore} is out of range"):
            cs.cross_entropy(z, t)
    # every row ignored: the mean is nan (0 / 0), as PyTorch's
    with pytest.warns(RuntimeWarning, match="sum to zero"):
        assert np.isnan(cs.cross_entropy(z, np.full(4, -100)))


def test_ignore_index_may_be_a_class(rng):
    """A label equal to ignore_index is ignored even where it names a class:
    as PyTorch, and the oracle's one-hot rows are 0 there."""
    z = rng.standard_normal((6, 4))
    t = np.array([0, 2, 1, 2, 3, 2])
    for opts in ({}, dict(weight=np.array([0.5, 1.0, 2.0, 1.5]), label_smoothing=0.2)):
        loss, grad = cs.cross_entropy_grad(z, t, ignore_index=2, reduction="none", **opts)
        want_loss, want_grad = ref.cross_entropy_grad(z, t, ignore_index=2, reduction="none", **opts)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(grad, want_grad.astype(float), rtol=1e-12, atol=1e-14)
        assert not loss[[1, 3, 5]].any() and not grad[[1, 3, 5]].any()
        mean = cs.cross_entropy(z, t, ignore_index=2, **opts)
        np.testing.assert_allclose(mean, ref.cross_entropy(z, t, ignore_index=2, **opts), rtol=1e-12)


def _non_finite_rows(C, dtype):
    """Rows of C logits holding -inf, +inf or nan where the options make the
    difference (x_0 the smoothing's reference point; classes 0 and 2 of weight
    0), with their labels."""
    big = 2e38 if dtype == np.float32 else 1e300
    rows, labels = [], []
    for put, label in [({0: -np.inf}, 1),                  # the first logit -inf
                       ({0: -np.inf, 2: -np.inf}, 1),      # -inf on the classes of weight 0
                       ({1: -np.inf}, 3),                  # -inf on a class of weight
                       ({j: -np.inf for j in range(C)}, 0),
                       ({2: np.inf}, 1), ({1: np.inf}, 3), ({0: np.inf}, 0),
                       ({2: np.nan}, 1), ({0: np.nan}, 0),
                       ({0: -np.inf}, 0),                  # the label, of weight 0, at -inf
                       ({}, 0),                            # the label of weight 0
                       ({0: -big, 1: big}, 1),             # x_1 - x_0 past the largest float32
                       ({1: np.nan}, -100), ({}, -100)]:   # ignored rows
        x = np.linspace(-3.0, 2.0, C)
        for j, v in put.items():
            if j < C:
                x[j] = v
        rows.append(x)
        labels.append(label if label < C else C - 1)
    return np.array(rows).astype(dtype), np.array(labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [3, 10, 24, 40, 100, 1000, 5000])
@pytest.mark.parametrize("opts", [dict(label_smoothing=0.1), dict(weight="zeros"),
                                  dict(weight="zeros", label_smoothing=0.1),
                                  dict(weight="none", label_smoothing=1.0)], ids=str)
@pytest.mark.parametrize("in_place", [False, True])
def test_non_finite_logits_with_options(isa, dtype, width, opts, in_place):
    """-inf, +inf and nan among the logits, against the oracle: a term of
    coefficient 0 adds nothing whatever its logit (classes of weight 0, the
    label's term with smoothing 1, ignored rows); the smoothing's sum is not
    thrown by a first logit of -inf nor by logits whose differences pass the
    type's range; every path (narrow blocks, four rows side by side, wide
    rows), in place too."""
    z, t = _non_finite_rows(width, dtype)
    z, t = np.concatenate([z, z[::-1]]), np.concatenate([t, t[::-1]])   # each row in two places of a group
    kw = dict(opts)
    if kw.get("weight") == "zeros":
        kw["weight"] = np.where(np.isin(np.arange(width), [0, 2]), 0.0, np.linspace(0.5, 2.0, width))
    elif "weight" in kw:
        del kw["weight"]
    with np.errstate(all="ignore"):
        want_loss, want_grad = ref.cross_entropy_grad(z, t, reduction="none", **kw)
    zz = z.copy()
    loss, grad = cs.cross_entropy_grad(zz, t, reduction="none", out=zz if in_place else None, **kw)
    want_loss, want_grad = np.asarray(want_loss, float), np.asarray(want_grad, float)
    # nan where the oracle has nan, its infinities exactly, the rest within rtol
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    with np.errstate(invalid="ignore"):
        assert_within(loss, want_loss, rtol * (1 + np.abs(want_loss)), err_msg="loss")
        assert_within(grad, want_grad, rtol * (1 + np.abs(want_grad)), err_msg="grad")
    assert not grad[t == -100].any() and not loss[t == -100].any()


@pytest.mark.parametrize("width", [3, 10, 24, 40, 100, 1000, 5000])
@pytest.mark.parametrize("opts", [dict(label_smoothing=0.1), dict(weight=True, label_smoothing=1.0)], ids=str)
def test_huge_float64_logits_with_smoothing(isa, width, opts):
    """Float64 logits of 1e300 to 1e307: the smoothing's terms, sum_k w_k (x_k -
    x_0) and W (m - x_0), each pass float64's range where the loss does not; it
    must come out finite (and positive) as the oracle's, on every path."""
    rng = np.random.default_rng(width)
    kw = dict(opts)
    if kw.pop("weight", False):
        kw["weight"] = rng.random(width) * 2
    for scale in [1e300, 1e305, 1e306, 1e307]:
        z = rng.standard_normal((9, width)) * scale
        t = rng.integers(0, width, 9)
        with np.errstate(all="ignore"):
            want_loss, want_grad = ref.cross_entropy_grad(z, t, reduction="none", **kw)
        loss, grad = cs.cross_entropy_grad(z, t, reduction="none", **kw)
        want_loss, want_grad = np.asarray(want_loss, float), np.asarray(want_grad, float)
        assert np.isfinite(want_loss).all()
        assert_within(loss, want_loss, 1e-12 * (1 + np.abs(want_loss)), err_msg=f"loss, logits of {scale:g}")
        assert_within(grad, want_grad, 1e-12 * (1 + np.abs(want_grad)), err_msg=f"grad, logits of {scale:g}")


def test_in_place_with_options(rng):
    z, t = case(rng, "index", np.float64)
    opts = OPTIONS[-1]
    want = cs.cross_entropy_grad(z, t, **opts)
    zz = z.copy()
    loss, grad = cs.cross_entropy_grad(zz, t, out=zz, **opts)
    assert grad is zz and loss == want[0]
    np.testing.assert_array_equal(zz, want[1])


@pytest.mark.parametrize("bad, error, match", [
    (dict(weight=np.ones(3)), ValueError, "one weight per class"),
    (dict(weight=-np.ones(C)), ValueError, "class weights"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(label_smoothing=-0.1), ValueError, "label_smoothing"),
    (dict(ignore_index=1.5), TypeError, "ignore_index"),
])
def test_bad_options(rng, bad, error, match):
    z, t = case(rng, "index", np.float64)
    out = np.full_like(z, 7.0)
    with pytest.raises(error, match=match):
        cs.cross_entropy_grad(z, t, out=out, **bad)
    assert (out == 7.0).all()

