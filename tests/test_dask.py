"""csoftmax.dask and SoftmaxRegression on Dask arrays, against the in-memory functions and fits.

The distributed tests run on a real LocalCluster of two worker processes started
for this module.
"""
import logging
import os
import signal
import warnings

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
pytest.importorskip("sklearn")
pytest.importorskip("scipy")

import csoftmax  # noqa: E402
import csoftmax.dask as cdask  # noqa: E402
from csoftmax import SoftmaxRegression, reference, softmax_regression_loss_grad  # noqa: E402
from helpers import assert_within, log_softmax_abs_bound, softmax_rel_bound  # noqa: E402


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c


class _LargestResult(dask.callbacks.Callback):
    """Records the largest array any task of a local compute returns (but the final
    assembly of the result in the caller)."""

    def __init__(self):
        super().__init__()
        self.nbytes = 0

    def _posttask(self, key, result, dsk, state, id):
        if "finalize" not in str(key):
            self.nbytes = max(self.nbytes, getattr(result, "nbytes", 0))


def _softmax_bound(x, axis):
    """The relative-error bound of a normal softmax result, elementwise."""
    m = np.max(x.astype(np.float64), axis=axis, keepdims=True)
    if x.dtype == np.float32:
        return 2.4e-7 * (8 + np.abs(x - m))
    return 4.5e-16 * (16 + np.abs(x - m))


def _log_softmax_bound(x, axis):
    m = np.max(x.astype(np.float64), axis=axis, keepdims=True)
    C = x.size if axis is None else np.prod([x.shape[a] for a in np.atleast_1d(axis)])
    return np.finfo(x.dtype).eps * (8 + np.abs(x - m) + np.log(C))


# ---------------------------------------------------------------------------
# forward

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunks", [(60, 40), (60, 10), (15, 40), (16, 7)])
@pytest.mark.parametrize("axis", [1, 0, None, (0, 1), -1])
def test_forward_matches_in_memory(dtype, chunks, axis):
    x = (np.random.default_rng(1).standard_normal((60, 40)) * 15).astype(dtype)
    xd = da.from_array(x, chunks=chunks)
    s = cdask.softmax(xd, axis=axis)
    ls = cdask.log_softmax(xd, axis=axis)
    assert isinstance(s, da.Array) and s.chunks == xd.chunks and s.dtype == dtype and ls.dtype == dtype
    ref = csoftmax.softmax(x, axis=axis)
    ok = ref > np.finfo(dtype).tiny
    err = np.abs(s.compute().astype(np.float64) - ref)
    assert np.all(err[ok] <= _softmax_bound(x, axis)[ok] * ref[ok])
    assert np.all(np.abs(ls.compute().astype(np.float64) - csoftmax.log_softmax(x, axis=axis))
                  <= _log_softmax_bound(x, axis))


def test_softmax_over_four_chunks_never_merges_chunks():
    x = np.random.default_rng(2).standard_normal((50, 4000)) * 30
    xd = da.from_array(x, chunks=(25, 1000))  # the class axis over 4 chunks
    s = cdask.softmax(xd, axis=1)
    with _LargestResult() as seen:
        got = s.compute(scheduler="sync")
    assert seen.nbytes <= 25 * 1000 * 8
    ref = csoftmax.softmax(x, axis=1)
    ok = ref > np.finfo(np.float64).tiny
    assert np.all(np.abs(got - ref)[ok] <= _softmax_bound(x, 1)[ok] * ref[ok])


def test_forward_special_values_and_dtypes():
    x = np.array([[-np.inf, 0, 1, 2], [-np.inf] * 4, [np.inf, 0, 1, 2], [np.nan, 0, 1, 2],
                  [1, 2, -np.inf, -np.inf], [-np.inf, -np.inf, 3, 4], [np.inf, -np.inf, np.inf, 0]])
    for chunks in [(7, 4), (2, 2), (3, 1)]:
        xd = da.from_array(x, chunks=chunks)
        for fd, f in [(cdask.softmax, csoftmax.softmax), (cdask.log_softmax, csoftmax.log_softmax)]:
            got, ref = fd(xd, axis=1).compute(), f(x, axis=1)
            assert np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(np.isinf(got), np.isinf(ref))
            assert np.allclose(got, ref, rtol=1e-15, atol=0, equal_nan=True)
    ints = da.from_array(np.arange(12).reshape(3, 4), chunks=2)
    assert cdask.softmax(ints, axis=1).dtype == np.float64
    assert cdask.softmax(ints.astype(np.float16), axis=1).compute().dtype == np.float16
    with pytest.raises(TypeError):
        cdask.softmax(ints.astype(np.complex128))
    assert cdask.softmax(da.zeros((0, 3), chunks=1), axis=0).compute().shape == (0, 3)


def test_logsumexp_only_where_the_package_has_one(monkeypatch):
    scipy_special = pytest.importorskip("scipy.special")
    if not hasattr(csoftmax, "logsumexp"):
        assert not hasattr(cdask, "logsumexp")
        monkeypatch.setattr(csoftmax, "logsumexp", scipy_special.logsumexp, raising=False)
    x = np.random.default_rng(3).standard_normal((20, 30)) * 10
    x[3] = -np.inf
    x[4, 5] = np.inf
    xd = da.from_array(x, chunks=(7, 8))
    for axis in [None, 0, 1]:
        for keepdims in [False, True]:
            got = cdask.logsumexp(xd, axis=axis, keepdims=keepdims).compute()
            ref = scipy_special.logsumexp(x, axis=axis, keepdims=keepdims)
            assert got.shape == np.shape(ref)
            assert np.allclose(got, ref, rtol=1e-14, equal_nan=True)


def _close(got, want, rtol):
    """Equal nan positions and infinities, the rest within ``rtol``."""
    assert_within(got, want, rtol * np.abs(np.asarray(want, dtype=np.float64)))


def _close_forward(got, want, log, dtype, C):
    """Within the accuracy bounds, with ``|x_i - max|`` bounded through the result
    itself: ``|x_i - max| <= |log s_i|``."""
    want = np.asarray(want, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.abs(want) if log else np.abs(np.log(want))
        bound = log_softmax_abs_bound(dtype, spread, C) if log else \
            np.where(want > np.finfo(dtype).tiny, softmax_rel_bound(dtype, spread) * want, np.finfo(dtype).tiny)
    assert_within(got, want, bound)


_SPECIAL_ROWS = np.array([[1, 2, 3, 4, 5, 6], [-np.inf] * 6, [np.inf, 1, 2, 3, 4, 5], [np.nan, 1, 2, 3, 4, 5],
                          [np.inf, np.inf, 1, 2, 3, 4], [-np.inf, 1, -np.inf, 2, -np.inf, 3],
                          [700, 700, -700, 0, 1, 2], [0] * 6, [np.inf, -np.inf, 0, 1, np.nan, 2]])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("chunks", [(9, 6), (4, 6), (9, 2), (4, 1)])
@pytest.mark.parametrize("axis", [1, 0, None])
def test_forward_where_matches_in_memory(dtype, chunks, axis):
    # False entries take no part (not as nan or inf either) and give 0 / -inf; a slice
    # with no True entry gives all 0 / all -inf; the special rows keep SciPy's nan
    rng = np.random.default_rng(11)
    x = np.vstack([_SPECIAL_ROWS, rng.standard_normal((9, 6)) * 20]).astype(dtype)
    xd = da.from_array(x, chunks=chunks)
    masks = [rng.random(x.shape) < 0.6, np.zeros(x.shape, bool), rng.random(6) < 0.5]
    masks[0][:, 1] = False
    masks[0][4] = False  # a slice with no True entry, for axis=1
    C = x.size if axis is None else x.shape[axis]
    for where in masks:
        for fd, f, log in [(cdask.softmax, csoftmax.softmax, False), (cdask.log_softmax, csoftmax.log_softmax, True)]:
            got = fd(xd, axis=axis, where=where)
            assert got.chunks == xd.chunks and got.dtype == dtype
            _close_forward(got.compute(), f(x, axis=axis, where=where), log, dtype, C)
        # the mask as a Dask array of other chunks
        wd = da.from_array(np.broadcast_to(where, x.shape), chunks=(3, 4))
        _close_forward(cdask.softmax(xd, axis=axis, where=wd).compute(), csoftmax.softmax(x, axis=axis, where=where),
                       False, dtype, C)


@pytest.mark.parametrize("chunks", [(9, 6), (4, 6), (9, 2), (4, 1)])
@pytest.mark.parametrize("axis", [1, 0, None, (0, 1)])
def test_logsumexp_weights_signs_and_where(chunks, axis):
    rng = np.random.default_rng(12)
    a = np.vstack([_SPECIAL_ROWS, rng.standard_normal((9, 6)) * 20])
    ad = da.from_array(a, chunks=chunks)
    weights = [None, rng.standard_normal(a.shape), np.array([1.0, -1.0, 2.0, 0.0, 0.5, 0.0]),
               -rng.random(a.shape), np.where(rng.random(a.shape) < 0.5, 0.0, 1.0)]
    for b, where, keepdims in [(b, w, k) for b in weights for w in [None, rng.random(a.shape) < 0.7]
                               for k in [False, True]]:
        bd = None if b is None else da.from_array(b, chunks=(5, 3)) if b.ndim == 2 else b
        got, sign = cdask.logsumexp(ad, axis=axis, b=bd, keepdims=keepdims, return_sign=True, where=where)
        with np.errstate(all="ignore"):
            want, want_sign = csoftmax.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=True, where=where)
            plain = csoftmax.logsumexp(a, axis=axis, b=b, keepdims=keepdims, where=where)
        assert got.shape == np.shape(want)
        _close(got.compute(), want, 1e-13)
        np.testing.assert_array_equal(sign.compute(), want_sign)
        _close(cdask.logsumexp(ad, axis=axis, b=bd, keepdims=keepdims, where=where).compute(), plain, 1e-13)
    # float32 with float64 weights is computed in float64, as in memory
    r = cdask.logsumexp(ad.astype(np.float32), axis=axis, b=np.ones(6))
    assert r.dtype == np.float64 == csoftmax.logsumexp(a.astype(np.float32), axis=axis, b=np.ones(6)).dtype


def test_where_and_weights_are_checked():
    xd = da.from_array(np.zeros((4, 3)), chunks=2)
    for f in [cdask.softmax, cdask.log_softmax, cdask.logsumexp]:
        with pytest.raises(TypeError, match="boolean"):
            f(xd, axis=1, where=np.ones((4, 3)))
        with pytest.raises(ValueError, match="broadcast"):
            f(xd, axis=1, where=np.ones((4, 2), bool))
        with pytest.raises(ValueError, match="broadcast"):
            f(xd, axis=1, where=np.ones((2, 4, 3), bool))
    with pytest.raises(ValueError, match="broadcast"):
        cdask.logsumexp(xd, axis=1, b=np.ones(4))


# ---------------------------------------------------------------------------
# cross-entropy

@pytest.mark.parametrize("chunks", [(23, 17), (8, 17), (8, 5), (23, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_in_memory(chunks, reduction, kind, weighted):
    rng = np.random.default_rng(4)
    z = rng.standard_normal((23, 17)) * 5
    t = rng.integers(0, 17, 23) if kind == "labels" else rng.dirichlet(np.ones(17), 23)
    w = rng.random(23) if weighted else None
    zd = da.from_array(z, chunks=chunks)
    td = da.from_array(t, chunks=5)  # rechunked to the logits' rows
    wd = None if w is None else da.from_array(w, chunks=6)
    go = rng.random(23) if reduction == "none" else 0.5
    loss, grad = cdask.cross_entropy_grad(zd, td, sample_weight=wd, reduction=reduction, grad_output=go)
    assert isinstance(loss, da.Array) and isinstance(grad, da.Array) and grad.chunks == zd.chunks
    ref_loss, ref_grad = csoftmax.cross_entropy_grad(z, t, sample_weight=w, reduction=reduction, grad_output=go)
    np.testing.assert_allclose(loss.compute(), ref_loss, rtol=1e-13)
    np.testing.assert_allclose(grad.compute(), ref_grad, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(cdask.cross_entropy(zd, td, sample_weight=wd, reduction=reduction).compute(),
                               csoftmax.cross_entropy(z, t, sample_weight=w, reduction=reduction), rtol=1e-13)


def test_cross_entropy_float32_one_sample_and_bad_labels():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((10, 6)).astype(np.float32)
    zd = da.from_array(z, chunks=(5, 2))
    loss, grad = cdask.cross_entropy_grad(zd, np.arange(10) % 6)
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    ref_loss, ref_grad = csoftmax.cross_entropy_grad(z, np.arange(10) % 6)
    np.testing.assert_allclose(loss.compute(), ref_loss, rtol=1e-6)
    np.testing.assert_allclose(grad.compute(), ref_grad, rtol=1e-5, atol=1e-7)
    one = da.from_array(z[0].astype(np.float64), chunks=2)
    np.testing.assert_allclose(cdask.cross_entropy(one, 3).compute(), csoftmax.cross_entropy(z[0], 3), rtol=1e-6)
    for chunks in [(5, 6), (5, 2)]:
        zd = da.from_array(z, chunks=chunks)
        with pytest.raises(ValueError, match="7"):
            cdask.cross_entropy(zd, np.r_[np.zeros(9, int), 7]).compute()
        with pytest.raises(ValueError, match="2.5"):
            cdask.cross_entropy_grad(zd, np.r_[np.zeros(9), 2.5])[1].compute()
    with pytest.raises(ValueError, match="reduction"):
        cdask.cross_entropy(zd, np.zeros(10, int), reduction="avg")
    with pytest.raises(ValueError, match="shape"):
        cdask.cross_entropy(zd, np.zeros(9, int))


_OPTIONS = {
    "plain": {},
    "class weights": dict(weight=[0.5, 0.0, 2.0, 1.0, 3.0, 0.0, 1.5] * 2 + [1.0, 0.25, 4.0]),
    "smoothing": dict(label_smoothing=0.2),
    "smoothing 1": dict(label_smoothing=1.0),
    "ignore a class": dict(ignore_index=3),
    "all": dict(weight=np.linspace(0.0, 2.0, 17), ignore_index=-1, label_smoothing=0.1),
}


def _options_target(rng, kind, options, N=23, C=17):
    """Class indices with some rows labelled ignore_index (the default -100 when
    the options name none), or probabilities."""
    if kind == "probs":
        return rng.dirichlet(np.ones(C), N)
    t = rng.integers(0, C, N)
    t[rng.random(N) < 0.3] = options.get("ignore_index", -100)
    return t


@pytest.mark.parametrize("chunks", [(23, 17), (8, 17), (8, 5), (23, 4)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kind", ["labels", "probs"])
@pytest.mark.parametrize("options", list(_OPTIONS))
def test_cross_entropy_options_match_in_memory(chunks, reduction, kind, options):
    # class weights, ignored rows and label smoothing, fused (the class axis in one
    # chunk) and split over class chunks; "plain" labels hold the default -100
    opts = _OPTIONS[options]
    rng = np.random.default_rng(list(_OPTIONS).index(options))
    z = rng.standard_normal((23, 17)) * 5
    t = _options_target(rng, kind, opts)
    w = rng.random(23)
    w[::5] = 0.0
    zd = da.from_array(z, chunks=chunks)
    td = da.from_array(t, chunks=6)
    go = rng.random(23) if reduction == "none" else 0.5
    for sw in [None, w]:
        loss, grad = cdask.cross_entropy_grad(zd, td, sample_weight=sw, reduction=reduction, grad_output=go, **opts)
        ref_loss, ref_grad = csoftmax.cross_entropy_grad(z, t, sample_weight=sw, reduction=reduction,
                                                         grad_output=go, **opts)
        np.testing.assert_allclose(loss.compute(), ref_loss, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(grad.compute(), ref_grad, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(cdask.cross_entropy(zd, td, sample_weight=sw, reduction=reduction, **opts).compute(),
                                   ref_loss, rtol=1e-13, atol=1e-15)
    # computed in one graph, calls with other options stay apart
    same = [o for o in _OPTIONS.values() if kind == "probs" or o.get("ignore_index") == opts.get("ignore_index")]
    together = dask.compute(*[cdask.cross_entropy(zd, td, reduction=reduction, **o) for o in same])
    alone = [csoftmax.cross_entropy(z, t, reduction=reduction, **o) for o in same]
    assert len(same) >= 4 - 3 * ("ignore_index" in opts)
    for got, want in zip(together, alone):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    if kind == "labels":  # and the oracle, for the ignored rows' part of the mean
        np.testing.assert_allclose(cdask.cross_entropy(zd, td, reduction=reduction, **opts).compute(),
                                   reference.cross_entropy(z, t, reduction=reduction, **opts), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("chunks", [(7, 9), (3, 4), (7, 2)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cross_entropy_options_non_finite_logits(chunks, dtype):
    # -inf, +inf and nan on the label, on a class of weight 0 and on ignored rows:
    # the same nan and infinities as the in-memory functions, which document them
    z = np.random.default_rng(8).standard_normal((7, 9)).astype(dtype)
    z[0, 0] = z[1, 4] = z[2, :] = -np.inf
    z[3, 2], z[4, 1], z[5, 7], z[6, 3] = np.inf, np.inf, np.nan, -np.inf
    t = np.array([0, 4, 2, 2, 5, 7, 3])
    t[[2, 5]] = -1
    tol = 1e-12 if dtype == np.float64 else 2e-6
    zd = da.from_array(z, chunks=chunks)
    for opts in [dict(weight=[1.0, 0.0, 2.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.5], ignore_index=-1),
                 dict(label_smoothing=0.3, ignore_index=-1), dict(label_smoothing=1.0, ignore_index=-1)]:
        for reduction in ["none", "sum"]:
            loss, grad = cdask.cross_entropy_grad(zd, t, reduction=reduction, **opts)
            ref_loss, ref_grad = csoftmax.cross_entropy_grad(z, t, reduction=reduction, **opts)
            assert_within(loss.compute(), ref_loss, tol * (1 + np.abs(ref_loss)), err_msg=f"{opts} {reduction}")
            assert_within(grad.compute(), ref_grad, tol * (1 + np.abs(ref_grad)), err_msg=f"{opts} {reduction}")


@pytest.mark.parametrize("chunks", [(4, 3), (2, 1)])
def test_cross_entropy_mean_over_no_weight_is_nan(chunks):
    # every row ignored, or every label's class of weight 0: a nan mean and nan scale,
    # with the in-memory functions' warning; ignored rows keep a 0 gradient
    z = np.random.default_rng(9).standard_normal((4, 3))
    zd = da.from_array(z, chunks=chunks)
    for t, opts in [([-100] * 4, {}), ([1, 1, -100, 1], dict(weight=[1.0, 0.0, 1.0])),
                    ([1, 1, -100, 1], dict(weight=[1.0, 0.0, 1.0], label_smoothing=0.5))]:
        loss, grad = cdask.cross_entropy_grad(zd, t, **opts)
        with pytest.warns(RuntimeWarning, match="sum to zero"):
            ref_loss, ref_grad = csoftmax.cross_entropy_grad(z, t, **opts)
        with pytest.warns(RuntimeWarning, match="sum to zero"):
            got_loss, got_grad = dask.compute(loss, grad, scheduler="sync")
        assert np.isnan(got_loss) and np.isnan(ref_loss)
        np.testing.assert_array_equal(got_grad, ref_grad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # a mean over some weight does not warn
        cdask.cross_entropy(zd, [1, 1, -100, 1]).compute(scheduler="sync")


def test_cross_entropy_options_are_checked():
    zd = da.from_array(np.zeros((4, 3)), chunks=(2, 2))
    t = np.array([0, 1, 2, -100])
    for f in [cdask.cross_entropy, cdask.cross_entropy_grad]:
        with pytest.raises(ValueError, match="weight"):
            f(zd, t, weight=[1.0, 2.0])
        with pytest.raises(ValueError, match="weights must be finite"):
            f(zd, t, weight=[1.0, -2.0, 1.0])
        with pytest.raises(ValueError, match="label_smoothing"):
            f(zd, t, label_smoothing=1.5)
        with pytest.raises(TypeError, match="ignore_index"):
            f(zd, t, ignore_index=1.5)
    # a label out of range that is not ignore_index, when computed
    for chunks in [(2, 3), (2, 2)]:
        zd = da.from_array(np.zeros((4, 3)), chunks=chunks)
        with pytest.raises(ValueError, match="-5"):
            cdask.cross_entropy(zd, [0, -5, 2, -100]).compute()
        with pytest.raises(ValueError, match="-100"):
            cdask.cross_entropy_grad(zd, t, ignore_index=-1)[1].compute()
    np.testing.assert_allclose(cdask.cross_entropy(zd, t, weight=da.ones(3, chunks=2)).compute(), np.log(3.0))


# ---------------------------------------------------------------------------
# training

def _data(n=4000, d=12, c=4, seed=0, chunks=700, lead=1.0):
    """A classification problem in memory and as Dask arrays.  ``lead`` scales the
    first feature: at 2 the Gram matrix's top eigenvalue stands apart, and the power
    iteration of ``learning_rate="auto"`` ends in 5 products instead of 31 (each a
    round trip to the cluster)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[:, 0] *= lead
    W = rng.standard_normal((c, d))
    y = (X @ W.T + rng.gumbel(size=(n, c))).argmax(axis=1)
    return X, y, da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=chunks)


def _objective(clf, X, y, l2, sw=None):
    return softmax_regression_loss_grad(clf.coef_, X, y, clf.intercept_, l2=l2, sample_weight=sw)[0]


@pytest.mark.parametrize("scheduler", ["threads", "distributed"])
@pytest.mark.parametrize("reduce", ["gathered", "tree"])
def test_lbfgs_fit_matches_in_memory(client, scheduler, reduce, monkeypatch):
    if reduce == "tree":   # the chunks' sums added by Dask's tree, as for many chunks
        monkeypatch.setattr("csoftmax._dask_fit._GATHER_BYTES", 0)
    X, y, Xd, yd = _data()
    w = np.random.default_rng(6).random(X.shape[0])
    ref = SoftmaxRegression(l2=1e-3, tol=1e-6).fit(X, y, sample_weight=w)
    with dask.config.set(scheduler=client if scheduler == "distributed" else scheduler):
        Xp = Xd.persist()
        clf = SoftmaxRegression(l2=1e-3, tol=1e-6).fit(Xp, yd, sample_weight=da.from_array(w, chunks=1000))
        proba = clf.predict_proba(Xp)
        pred, score = clf.predict(Xp), clf.score(Xp, yd)
        assert all(isinstance(r, da.Array) for r in (proba, pred, score, clf.decision_function(Xp)))
        proba, pred, score = dask.compute(proba, pred, score)
    assert clf.coef_.shape == ref.coef_.shape and clf.n_features_in_ == X.shape[1]
    f_ref, f = _objective(ref, X, y, 1e-3, w), _objective(clf, X, y, 1e-3, w)
    assert abs(f - f_ref) <= 1e-6 * f_ref
    np.testing.assert_allclose(proba, clf.predict_proba(X), rtol=1e-12)
    assert np.array_equal(pred, clf.predict(X)) and score == pytest.approx(clf.score(X, y))


def test_gd_and_sgd_fits(client):
    X, y, Xd, yd = _data(n=3000, lead=2.0)
    labels = np.array(["ant", "bee", "cat", "dog"])[y]  # any labels np.unique sorts
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stopped at max_iter on purpose
        best = _objective(SoftmaxRegression(l2=1e-3, tol=1e-10).fit(X, y), X, y, 1e-3)
        ref_gd = SoftmaxRegression(solver="gd", l2=1e-3, max_iter=15).fit(X, labels)
        with dask.config.set(scheduler=client):
            gd = SoftmaxRegression(solver="gd", l2=1e-3, max_iter=15).fit(Xd, labels)
            sgd = [SoftmaxRegression(solver="sgd", l2=1e-3, max_iter=4, random_state=0).fit(Xd, yd)
                   for _ in range(2)]
    assert list(gd.classes_) == ["ant", "bee", "cat", "dog"]
    # the same path as in memory: the step size from the same power iteration, the same steps
    np.testing.assert_allclose(gd.loss_curve_, ref_gd.loss_curve_, rtol=1e-9)
    assert np.array_equal(sgd[0].coef_, sgd[1].coef_)  # random_state makes it reproducible
    assert _objective(sgd[0], X, y, 1e-3) <= best * 1.05


def test_fit_validation_on_dask_input():
    X, y, Xd, yd = _data(n=300, chunks=100)
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxRegression().fit(Xd, da.zeros(300, chunks=100, dtype=int))
    bad = Xd.copy()
    bad[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SoftmaxRegression().fit(bad, yd)
    with pytest.raises(ValueError, match="non-negative"):
        SoftmaxRegression().fit(Xd, yd, sample_weight=-np.ones(300))
    with pytest.raises(ValueError, match="shape"):
        SoftmaxRegression().fit(Xd, y[:10])
    clf = SoftmaxRegression(solver="gd", max_iter=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(Xd, yd)
    with pytest.raises(ValueError, match="features"):
        clf.predict(Xd[:, :3])


def test_worker_killed_mid_fit(client, monkeypatch):
    """A worker is killed during the fit: Dask recomputes its lost chunks (the fit then
    ends where the in-memory fit does), or the fit raises; it never returns a wrong model."""
    from csoftmax import _dask_fit
    X, y, Xd, yd = _data(n=6000, d=20, chunks=500, seed=7)
    ref = SoftmaxRegression(l2=1e-3, tol=1e-6).fit(X, y)
    pids = client.run(os.getpid)
    victim = pids[sorted(pids)[0]]
    calls = []
    loss_grad = _dask_fit.DaskProblem.loss_grad

    def killing_loss_grad(self, W, b):
        calls.append(1)
        if len(calls) == 3:  # its persisted chunks and any running task are lost
            os.kill(victim, signal.SIGKILL)
        return loss_grad(self, W, b)

    monkeypatch.setattr(_dask_fit.DaskProblem, "loss_grad", killing_loss_grad)
    with dask.config.set(scheduler=client):
        Xp = client.persist(Xd)
        Xp.sum().compute()  # the chunks are in the workers' memory before one is lost
        try:
            clf = SoftmaxRegression(l2=1e-3, tol=1e-6).fit(Xp, yd)
        except (distributed.KilledWorker, OSError, distributed.comm.CommClosedError) as exc:
            pytest.skip(f"the fit raised {type(exc).__name__} after the worker died (allowed): {exc}")
    assert len(calls) > 3 and victim not in client.run(os.getpid).values()
    f_ref, f = _objective(ref, X, y, 1e-3), _objective(clf, X, y, 1e-3)
    assert abs(f - f_ref) <= 1e-6 * f_ref
