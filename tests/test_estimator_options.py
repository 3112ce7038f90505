"""SoftmaxRegression's scikit-learn options: ``class_weight``, ``warm_start`` and
``partial_fit``, each meant as scikit-learn's estimators mean it.

``test_regression.py`` runs ``check_estimator`` (which exercises ``class_weight``
and, for ``solver="sgd"``, ``partial_fit``); here they are checked against their
definitions.
"""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="SoftmaxRegression requires scikit-learn (pip install csoftmax[sklearn])")
pytest.importorskip("scipy", reason="SoftmaxRegression requires SciPy (pip install csoftmax[sklearn])")

import csoftmax  # noqa: E402
from csoftmax.regression import ConvergenceWarning, SoftmaxRegression  # noqa: E402

SOLVERS = ["lbfgs", "gd", "sgd"]


def toy(n=300, d=5, n_classes=3, seed=0, sizes=None):
    """Gaussian blobs; ``sizes`` gives unbalanced class proportions."""
    rng = np.random.default_rng(seed)
    y = rng.choice(n_classes, n, p=sizes)
    X = rng.normal(size=(n, d)) + rng.normal(size=(n_classes, d))[y]
    return X, y


def loss(model, X, y, l2, sample_weight=None):
    return csoftmax.softmax_regression_loss_grad(model.coef_.astype(np.float64), X, y,
                                                 model.intercept_.astype(np.float64), l2=l2,
                                                 sample_weight=sample_weight)[0]


# class_weight

@pytest.mark.parametrize("solver", SOLVERS)
def test_class_weight_dict_is_sample_weight(solver):
    X, y = toy()
    names = np.array(["cat", "emu", "owl"])
    params = dict(solver=solver, l2=0.01, tol=1e-8, random_state=0)
    weighted = SoftmaxRegression(class_weight={"cat": 3.0, "owl": 0.5}, **params).fit(X, names[y])
    by_sample = SoftmaxRegression(**params).fit(X, names[y], sample_weight=np.array([3.0, 1.0, 0.5])[y])
    np.testing.assert_allclose(weighted.coef_, by_sample.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weighted.intercept_, by_sample.intercept_, rtol=1e-12, atol=1e-14)


def test_class_weight_multiplies_sample_weight():
    X, y = toy()
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    cw = {0: 0.2, 1: 5.0, 2: 1.0}
    both = SoftmaxRegression(class_weight=cw, tol=1e-9).fit(X, y, sample_weight=sw)
    product = SoftmaxRegression(tol=1e-9).fit(X, y, sample_weight=sw * np.array([0.2, 5.0, 1.0])[y])
    np.testing.assert_allclose(both.coef_, product.coef_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_class_weight_balanced_is_compute_sample_weight(with_sample_weight):
    from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
    X, y = toy(sizes=[0.7, 0.2, 0.1])
    sw = np.random.default_rng(2).uniform(0.5, 2.0, len(y)) if with_sample_weight else None
    balanced = SoftmaxRegression(class_weight="balanced", tol=1e-9).fit(X, y, sample_weight=sw)
    if sw is None:
        expected = compute_sample_weight("balanced", y)
        np.testing.assert_allclose(expected, len(y) / (3 * np.bincount(y)[y]))
    else:  # the weighted class counts, as LogisticRegression computes them
        expected = sw * compute_class_weight("balanced", classes=np.arange(3), y=y, sample_weight=sw)[y]
    manual = SoftmaxRegression(tol=1e-9).fit(X, y, sample_weight=expected)
    np.testing.assert_allclose(balanced.coef_, manual.coef_, rtol=1e-10, atol=1e-12)


def test_class_weight_balanced_matches_logistic_regression():
    # balanced weights sum to n, so LogisticRegression(C=1) is our l2 = 1 / n
    from sklearn.linear_model import LogisticRegression
    X, y = toy(sizes=[0.6, 0.3, 0.1], seed=4)
    ours = SoftmaxRegression(class_weight="balanced", l2=1 / len(y), tol=1e-10).fit(X, y)
    theirs = LogisticRegression(class_weight="balanced", tol=1e-10, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_class_weight_balanced_linear_classifier_check(solver):
    # scikit-learn runs this check only for its LinearClassifierMixin; it applies to us too
    from sklearn.utils.estimator_checks import check_class_weight_balanced_linear_classifier
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check_class_weight_balanced_linear_classifier("SoftmaxRegression", SoftmaxRegression(solver=solver))


@pytest.mark.parametrize("class_weight, match", [
    ({0: 1.0, 7: 2.0}, "not in class_weight"),  # a label that is not a class, as scikit-learn words it
    ("even", "class_weight"),
    ([1.0, 2.0, 3.0], "class_weight"),
    ({0: -1.0}, "negative"),
    ({0: 0.0, 1: 0.0, 2: 0.0}, "all zero"),
])
def test_bad_class_weight(class_weight, match):
    X, y = toy()
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression(class_weight=class_weight).fit(X, y)


def test_class_weight_zero_leaves_one_class():
    X, y = toy(n_classes=2)
    with pytest.raises(ValueError, match="only one class with a positive sample weight: 1"):
        SoftmaxRegression(class_weight={0: 0.0}).fit(X, y)


# warm_start

@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_warm_start_reaches_same_solution_sooner(solver):
    X, y = toy()
    rough = SoftmaxRegression(solver=solver, l2=0.01, tol=1e-3).fit(X, y)
    cold = SoftmaxRegression(solver=solver, l2=0.01, tol=1e-8, max_iter=10_000).fit(X, y)
    warm = rough.set_params(warm_start=True, tol=1e-8, max_iter=10_000).fit(X, y)
    assert warm.n_iter_ < cold.n_iter_
    assert warm.n_iter_ == len(warm.loss_curve_)
    np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=1e-5, atol=1e-6)
    assert loss(warm, X, y, 0.01) == pytest.approx(loss(cold, X, y, 0.01), rel=1e-10)


def test_warm_start_sgd_continues():
    # one more epoch from the fitted weights stays near them; from zeros it does not
    X, y = toy()
    fitted = SoftmaxRegression(solver="sgd", l2=0.01, random_state=0).fit(X, y)
    before = loss(fitted, X, y, 0.01)
    with pytest.warns(ConvergenceWarning):
        warm = fitted.set_params(warm_start=True, max_iter=1).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        cold = SoftmaxRegression(solver="sgd", l2=0.01, max_iter=1, random_state=0).fit(X, y)
    assert loss(warm, X, y, 0.01) < 1.05 * before < loss(cold, X, y, 0.01)


@pytest.mark.parametrize("solver", SOLVERS)
def test_warm_start_from_zeros_when_classes_or_features_change(solver):
    X, y = toy()
    params = dict(solver=solver, random_state=0, tol=1e-6)
    fresh = SoftmaxRegression(**params).fit(X, y)
    model = SoftmaxRegression(warm_start=True, **params)
    for X_other, y_other in [(X, y + 1), (X[:, :4], y), (X, np.minimum(y, 1))]:
        model.fit(X_other, y_other)
        model.fit(X, y)  # a different fit before: starts from zeros
        np.testing.assert_array_equal(model.coef_, fresh.coef_)
        assert model.n_iter_ == fresh.n_iter_


def test_no_warm_start_refits_from_zeros():
    X, y = toy()
    fresh = SoftmaxRegression(solver="gd").fit(X, y)
    model = SoftmaxRegression(solver="gd").fit(X[::-1], y[::-1] % 2 + 3 * (y[::-1] == 2)).fit(X, y)
    np.testing.assert_array_equal(model.coef_, fresh.coef_)


# partial_fit

def test_partial_fit_first_call_is_one_sgd_epoch():
    # the same shuffle, mini-batches and step as fit(solver="sgd") for one epoch
    X, y = toy()
    params = dict(solver="sgd", batch_size=32, l2=0.01, random_state=0)
    with pytest.warns(ConvergenceWarning):
        epoch = SoftmaxRegression(max_iter=1, **params).fit(X, y)
    part = SoftmaxRegression(**params).partial_fit(X, y, classes=[2, 0, 1])
    np.testing.assert_array_equal(part.coef_, epoch.coef_)
    np.testing.assert_array_equal(part.intercept_, epoch.intercept_)
    assert part.loss_curve_ == epoch.loss_curve_ and part.n_iter_ == 1
    assert part.classes_.tolist() == [0, 1, 2] and part.n_features_in_ == 5


@pytest.mark.parametrize("reference", ["sgd", "lbfgs"])
def test_partial_fit_epochs_approach_full_fit(reference):
    # Measured over random_state 0-3: full "sgd" 0.5-1.5 % above the minimum, these
    # 30 epochs of 6 partial_fit batches 0.2-0.6 % (with batch_size=32: up to 8 %,
    # as a constant step leaves SGD wherever its last noisy steps took it).
    X, y = toy(n=600, seed=5)
    l2 = 0.01
    full = SoftmaxRegression(solver=reference, l2=l2, batch_size=64, random_state=0, tol=1e-8).fit(X, y)
    model = SoftmaxRegression(solver="sgd", l2=l2, batch_size=64, random_state=0)
    batches = np.array_split(np.random.default_rng(0).permutation(len(y)), 6)
    for epoch in range(30):
        for idx in batches:
            model.partial_fit(X[idx], y[idx], classes=np.unique(y))
    assert model.n_iter_ == len(model.loss_curve_) == 30 * len(batches)
    assert loss(model, X, y, l2) <= (1 + 3e-2) * loss(full, X, y, l2)


def test_partial_fit_keeps_the_first_auto_step_and_continues():
    X, y = toy()
    model = SoftmaxRegression(solver="sgd", random_state=0).partial_fit(X[:100], y[:100], classes=[0, 1, 2])
    lr = model._lr
    W = model.coef_.copy()
    model.partial_fit(100 * X[100:200], y[100:200])  # a batch whose "auto" step would be far smaller
    assert model._lr == lr and model.n_iter_ == 2 and len(model.loss_curve_) == 2
    assert not np.array_equal(model.coef_, W)
    fixed = SoftmaxRegression(solver="sgd", learning_rate=0.05).partial_fit(X, y, classes=[0, 1, 2])
    assert not hasattr(fixed, "_lr") or fixed._lr is None


def test_partial_fit_batch_may_miss_classes():
    X, y = toy()
    model = SoftmaxRegression(solver="sgd", random_state=0)
    model.partial_fit(X[y == 0], y[y == 0], classes=[0, 1, 2])
    model.partial_fit(X[:1], y[:1])
    assert model.coef_.shape == (3, 5) and np.all(np.isfinite(model.coef_))


def test_partial_fit_after_fit_continues():
    X, y = toy()
    model = SoftmaxRegression(solver="sgd", random_state=0).fit(X, y)
    n_iter, curve = model.n_iter_, list(model.loss_curve_)
    model.partial_fit(X, y)
    assert model.n_iter_ == n_iter + 1 and model.loss_curve_[:-1] == curve
    assert model.loss_curve_[-1] < 1.05 * curve[-1]


def test_partial_fit_class_weight_dict_and_sample_weight():
    X, y = toy()
    cw = {0: 2.0, 1: 0.5}
    a = SoftmaxRegression(solver="sgd", class_weight=cw, random_state=0).partial_fit(X, y, classes=[0, 1, 2])
    b = SoftmaxRegression(solver="sgd", random_state=0).partial_fit(X, y, classes=[0, 1, 2],
                                                                    sample_weight=np.array([2.0, 0.5, 1.0])[y])
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_partial_fit_reproducible():
    X, y = toy()

    def run():
        model = SoftmaxRegression(solver="sgd", batch_size=16, random_state=3)
        for idx in np.array_split(np.arange(len(y)), 3):
            model.partial_fit(X[idx], y[idx], classes=[0, 1, 2])
        return model

    np.testing.assert_array_equal(run().coef_, run().coef_)


@pytest.mark.parametrize("first, later, match", [
    (dict(), None, "classes must be passed on the first call"),
    (dict(classes=[0]), None, "at least 2 classes"),
    (dict(classes=[0, 1]), None, r"labels that are not in classes \[0, 1\]: \[2\]"),
    (dict(classes=[0, 1, 2]), dict(y_shift=1), r"labels that are not in classes \[0, 1, 2\]: \[3\]"),
    (dict(classes=[0, 1, 2]), dict(classes=[0, 1, 2, 3]), "not the same as on the first call"),
    (dict(classes=[0, 1, 2]), dict(n_features=4), "features"),
])
def test_partial_fit_errors(first, later, match):
    X, y = toy()
    model = SoftmaxRegression(solver="sgd")
    with pytest.raises(ValueError, match=match):
        model.partial_fit(X, y, **first)
        later = dict(later)
        shift, d = later.pop("y_shift", 0), later.pop("n_features", X.shape[1])
        model.partial_fit(X[:, :d], y + shift, **later)


def test_partial_fit_refuses_balanced():
    X, y = toy()
    with pytest.raises(ValueError, match="balanced"):
        SoftmaxRegression(solver="sgd", class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_partial_fit_only_for_sgd(solver):
    X, y = toy()
    model = SoftmaxRegression(solver=solver)
    assert not hasattr(model, "partial_fit")
    with pytest.raises(AttributeError, match="partial_fit") as info:
        model.partial_fit(X, y, classes=[0, 1, 2])
    assert f"solver={solver!r}" in str(info.value.__cause__ or info.value)
    assert hasattr(model.set_params(solver="sgd"), "partial_fit")


# Dask

def test_dask_class_weight_and_warm_start():
    da = pytest.importorskip("dask.array")
    X, y = toy(sizes=[0.6, 0.3, 0.1])
    sw = np.random.default_rng(3).integers(0, 4, len(y)).astype(float)
    dX, dy = da.from_array(X, chunks=70), da.from_array(y, chunks=70)
    for cw in [{0: 2.0, 2: 0.5}, "balanced"]:
        memory = SoftmaxRegression(class_weight=cw, tol=1e-9).fit(X, y, sample_weight=sw)
        dask = SoftmaxRegression(class_weight=cw, tol=1e-9).fit(dX, dy, sample_weight=sw)
        np.testing.assert_allclose(dask.coef_, memory.coef_, rtol=1e-7, atol=1e-9)
    rough = SoftmaxRegression(tol=1e-3).fit(dX, dy)
    cold = SoftmaxRegression(tol=1e-8).fit(dX, dy)
    warm = rough.set_params(warm_start=True, tol=1e-8).fit(dX, dy)
    assert warm.n_iter_ < cold.n_iter_
    np.testing.assert_allclose(warm.coef_, cold.coef_, rtol=1e-5, atol=1e-6)
