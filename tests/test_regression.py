"""SoftmaxRegression: the minimum it reaches against scikit-learn's LogisticRegression,
its scikit-learn protocol, its input checks, and its optional progress bar (tqdm).

The estimator requires scikit-learn and SciPy (``pip install csoftmax[sklearn]``):
without them this module is skipped; tests/test_optional_peers.py checks what
happens then.
"""
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="SoftmaxRegression requires scikit-learn (pip install csoftmax[sklearn])")
pytest.importorskip("scipy", reason="SoftmaxRegression requires SciPy (pip install csoftmax[sklearn])")

import csoftmax  # noqa: E402
from csoftmax.regression import ConvergenceWarning, SoftmaxRegression  # noqa: E402

SOLVERS = ["lbfgs", "gd", "sgd"]


def objective(model, X, y, l2):
    """J(W, b) of a fitted model (ours or scikit-learn's), in float64; ``y`` as class indices."""
    W = np.asarray(model.coef_, dtype=np.float64)
    b = np.asarray(model.intercept_, dtype=np.float64)
    return csoftmax.softmax_regression_loss_grad(W, np.asarray(X, np.float64), y, b, l2=l2)[0]


def toy(n=300, d=5, n_classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, n)
    X = rng.normal(size=(n, d)) + rng.normal(size=(n_classes, d))[y]
    return X, y


# digits: scikit-learn's own fit to tol=1e-10 takes some 15 s
@pytest.fixture(scope="module", params=["iris", pytest.param("digits", marks=pytest.mark.slow)])
def dataset(request):
    """A standardised bundled data set, ``l2`` matched to ``LogisticRegression(C=1)``
    (``l2 = 1 / (C n)`` with our mean loss), and the minimum scikit-learn reaches."""
    from sklearn import datasets
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    X, y = getattr(datasets, f"load_{request.param}")(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    l2 = 1.0 / len(y)
    best = LogisticRegression(C=1.0, tol=1e-10, max_iter=10_000).fit(X, y)
    return request.param, X, y, l2, objective(best, X, y, l2)


# The stated closeness of each solver to scikit-learn's minimum, relative in loss.
# Measured: lbfgs 1e-11; gd at tol 1e-6 1e-7, at the default tol 6e-4; sgd
# (random_state=0) 2e-3 (iris) and 9e-3 (digits), and at most 3.3e-2 over six seeds.
CLOSENESS = [
    ("lbfgs", dict(tol=1e-8), 1e-4),
    ("gd", dict(tol=1e-6), 1e-4),
    ("gd", dict(), 1e-2),
    ("sgd", dict(batch_size=32, random_state=0), 5e-2),
]


@pytest.mark.parametrize("solver, params, rtol", CLOSENESS)
def test_reaches_sklearn_minimum(dataset, solver, params, rtol):
    name, X, y, l2, best = dataset
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxRegression(solver=solver, l2=l2, max_iter=5000, **params).fit(X, y)
    loss = objective(model, X, y, l2)
    assert loss >= best * (1 - 1e-9), f"{name}: below scikit-learn's minimum: {loss} < {best}"
    assert (loss - best) / best <= rtol, f"{name}/{solver}: loss {loss}, minimum {best}"
    if solver != "sgd":  # whose curve holds the mean of each epoch's mini-batch losses
        assert model.loss_curve_[-1] == pytest.approx(loss, rel=1e-9)


def test_binary_matches_logistic_regression():
    # Two classes keep two rows; at the optimum w1 = -w0, so the penalty l2/2 (|w0|² + |w1|²)
    # is l2/4 |w1 - w0|²: scikit-learn's binary model with C' = 2C, as C' = 2 / (l2 n).
    from sklearn import linear_model
    X, y = toy(n_classes=2, seed=3)
    l2 = 0.05
    ours = SoftmaxRegression(l2=l2, tol=1e-10).fit(X, y)
    theirs = linear_model.LogisticRegression(C=2 / (l2 * len(y)), tol=1e-10).fit(X, y)
    assert ours.coef_.shape == (2, X.shape[1]) and ours.intercept_.shape == (2,)
    np.testing.assert_allclose(ours.coef_[1] - ours.coef_[0], theirs.coef_[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-7)
    np.testing.assert_allclose(ours.decision_function(X), theirs.decision_function(X), rtol=1e-5, atol=1e-6)


def test_float32_search_finishes_in_float64():
    # 2**20 float64 entries: lbfgs searches on a float32 copy, then must still meet tol in float64
    rng = np.random.default_rng(7)
    X = rng.normal(size=(8192, 128))
    y = np.argmax(X[:, :10] + rng.gumbel(size=(8192, 10)), axis=1)
    l2, tol = 1e-3, 1e-6
    mixed = SoftmaxRegression(l2=l2, tol=tol).fit(X, y)
    pure = SoftmaxRegression(l2=l2, tol=tol, dtype=np.float64).fit(X, y)
    assert mixed.coef_.dtype == np.float64 and mixed.intercept_.dtype == np.float64
    _, dW, db = csoftmax.softmax_regression_loss_grad(mixed.coef_, X, y, mixed.intercept_, l2=l2)
    assert max(np.abs(dW).max(), np.abs(db).max()) <= tol
    assert objective(mixed, X, y, l2) == pytest.approx(objective(pure, X, y, l2), rel=1e-8)
    assert len(mixed.loss_curve_) == mixed.n_iter_


def test_gd_fixed_step_is_one_gradient_step():
    # one step from zero: W <- 0 - α dJ/dW(0), b alike (docs/derivations.md, "Softmax regression")
    X, y = toy()
    lr = 0.3
    with pytest.warns(ConvergenceWarning):
        model = SoftmaxRegression(solver="gd", learning_rate=lr, max_iter=1, l2=0.5).fit(X, y)
    C, D = 3, X.shape[1]
    _, dW, db = csoftmax.softmax_regression_loss_grad(np.zeros((C, D)), X, y, np.zeros(C), l2=0.5)
    np.testing.assert_allclose(model.coef_, -lr * dW, rtol=1e-13)
    np.testing.assert_allclose(model.intercept_, -lr * db, rtol=1e-13)


@pytest.mark.parametrize("solver", SOLVERS)
def test_predictions_agree(solver):
    X, y = toy()
    model = SoftmaxRegression(solver=solver, random_state=0).fit(X, y)
    P = model.predict_proba(X)
    assert P.shape == (len(y), 3) and np.all(P >= 0)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(model.predict_log_proba(X), np.log(P), rtol=1e-12, atol=1e-14)
    Z = model.decision_function(X)
    np.testing.assert_allclose(Z, X @ model.coef_.T + model.intercept_, rtol=1e-12)
    np.testing.assert_array_equal(model.predict(X), model.classes_[np.argmax(P, axis=1)])
    assert model.score(X, y) > 0.8
    assert model.n_features_in_ == X.shape[1] and model.n_iter_ == len(model.loss_curve_) >= 1


def test_string_labels():
    X, y = toy()
    names = np.array(["owl", "cat", "emu"])
    model = SoftmaxRegression(tol=1e-8).fit(X, names[y])
    assert model.classes_.tolist() == ["cat", "emu", "owl"]
    by_index = SoftmaxRegression(tol=1e-8).fit(X, np.searchsorted(model.classes_, names[y]))
    np.testing.assert_allclose(model.coef_, by_index.coef_)
    np.testing.assert_array_equal(model.predict(X), model.classes_[by_index.predict(X)])
    assert set(model.predict(X)) <= set(names)


def test_dtypes():
    X, y = toy()
    assert SoftmaxRegression().fit(X.astype(np.float32), y).coef_.dtype == np.float32
    assert SoftmaxRegression().fit(np.round(X).astype(np.int64), y).coef_.dtype == np.float64
    model = SoftmaxRegression(dtype=np.float64).fit(X.astype(np.float32), y)
    assert model.coef_.dtype == np.float64 and model.predict_proba(X).dtype == np.float64
    assert SoftmaxRegression(dtype=np.float32).fit(X, y).predict_proba(X).dtype == np.float32


@pytest.mark.parametrize("solver", ["lbfgs", "gd"])
def test_sample_weight_equals_repeated_rows(solver):
    X, y = toy(n=60)
    w = np.random.default_rng(1).integers(0, 4, len(y))
    params = dict(solver=solver, l2=0.01, tol=1e-9, max_iter=10_000)
    weighted = SoftmaxRegression(**params).fit(X, y, sample_weight=w)
    repeated = SoftmaxRegression(**params).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(weighted.intercept_ - weighted.intercept_.mean(),
                               repeated.intercept_ - repeated.intercept_.mean(), rtol=1e-6, atol=1e-8)


def test_fit_intercept_false():
    from sklearn import linear_model
    X, y = toy()
    ours = SoftmaxRegression(fit_intercept=False, l2=1 / len(y), tol=1e-10).fit(X, y)
    theirs = linear_model.LogisticRegression(fit_intercept=False, tol=1e-10).fit(X, y)
    np.testing.assert_array_equal(ours.intercept_, 0.0)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("X, y, match", [
    ([[0.0, np.nan], [1.0, 2.0], [2.0, 1.0]], [0, 1, 0], "NaN"),
    ([[0.0, np.inf], [1.0, 2.0], [2.0, 1.0]], [0, 1, 0], "inf"),
    ([[0.0, 1.0], [1.0, 2.0], [2.0, 1.0]], [1, 1, 1], "class"),
    ([[0.0, 1.0], [1.0, 2.0], [2.0, 1.0]], [0, 1], "inconsistent numbers of samples"),
    ([[0.0, 1.0], [1.0, 2.0], [2.0, 1.0]], [0.5, 1.5, 0.5], "continuous"),
    ([0.0, 1.0, 2.0], [0, 1, 0], "2D array"),
])
def test_bad_input_is_a_value_error(X, y, match):
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(np.array(X), np.array(y))


def test_one_class_with_positive_weight():
    X, y = toy()
    w = (y == 2).astype(float)
    with pytest.raises(ValueError, match="only one class with a positive sample weight: 2"):
        SoftmaxRegression().fit(X, y, sample_weight=w)


@pytest.mark.parametrize("params", [dict(solver="newton"), dict(l2=-1.0), dict(learning_rate=0.0),
                                    dict(learning_rate="fast"), dict(batch_size=0), dict(max_iter=0),
                                    dict(tol=np.nan), dict(dtype=np.int32), dict(n_iter_no_change=True)])
def test_bad_parameters(params):
    X, y = toy()
    with pytest.raises(ValueError, match=next(iter(params))):
        SoftmaxRegression(**params).fit(X, y)


@pytest.mark.parametrize("sample_weight, match", [(np.ones(5), "shape"), (-np.ones(300), "non-negative"),
                                                  (np.zeros(300), "sums to zero")])
def test_bad_sample_weight(sample_weight, match):
    X, y = toy()
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(X, y, sample_weight=sample_weight)


def test_predict_checks():
    X, y = toy()
    with pytest.raises(ValueError, match="not fitted"):
        SoftmaxRegression().predict(X)
    model = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :4])
    with pytest.raises(ValueError, match="NaN"):
        model.predict_proba(np.full((1, 5), np.nan))


def test_fixed_learning_rate_too_large_fails_clearly():
    X, y = toy()
    with pytest.raises(FloatingPointError, match="learning_rate=1e\\+300"):
        SoftmaxRegression(solver="gd", learning_rate=1e300).fit(100 * X, y)


@pytest.mark.parametrize("solver", SOLVERS)
def test_convergence_warning_at_max_iter(solver):
    X, y = toy()
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        model = SoftmaxRegression(solver=solver, max_iter=2, tol=0.0).fit(X, y)
    assert model.n_iter_ == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        SoftmaxRegression(solver=solver, random_state=0).fit(X, y)


def test_sgd_reproducible_with_random_state():
    X, y = toy()
    a = SoftmaxRegression(solver="sgd", batch_size=16, random_state=3).fit(X, y)
    b = SoftmaxRegression(solver="sgd", batch_size=16, random_state=3).fit(X, y)
    c = SoftmaxRegression(solver="sgd", batch_size=16, random_state=4).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coef_, c.coef_)


def test_verbose_progress_bar(capsys):
    pytest.importorskip("tqdm")
    X, y = toy()
    SoftmaxRegression(verbose=1).fit(X, y)
    err = capsys.readouterr().err
    assert "SoftmaxRegression(lbfgs)" in err and "loss=" in err


def test_verbose_loss_lines_without_tqdm(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = toy()
    model = SoftmaxRegression(solver="gd", max_iter=40, tol=0.0, n_iter_no_change=1000,
                              verbose=1)
    with pytest.warns(ConvergenceWarning):
        model.fit(X, y)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"SoftmaxRegression(gd): iteration 2/40, loss = {model.loss_curve_[1]:.6g}"
    assert len(out) == 21 and out[-1].startswith("SoftmaxRegression(gd): 40 iterations, loss = ")
    SoftmaxRegression(solver="gd").fit(X, y)
    assert capsys.readouterr().out == ""


def test_check_estimator():
    from sklearn.utils import estimator_checks
    for solver in SOLVERS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            estimator_checks.check_estimator(SoftmaxRegression(solver=solver, random_state=0))


def test_pipeline_grid_search_clone():
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = toy(n=240)
    model = SoftmaxRegression(solver="gd", l2=0.1)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params() and is_classifier(twin)
    pipe = make_pipeline(StandardScaler(), SoftmaxRegression())
    search = GridSearchCV(pipe, {"softmaxregression__l2": [1e-4, 10.0], "softmaxregression__solver": SOLVERS},
                          cv=3).fit(X, y)
    assert search.best_params_["softmaxregression__l2"] == 1e-4
    assert search.best_estimator_[-1].coef_.shape == (3, 5)
    assert search.score(X, y) > 0.8
    assert "l2=0.1" in repr(model) and "solver='gd'" in repr(model)


def test_sgd_follows_weighted_penalised_objective():
    # batches are scaled by their weight share and the penalty decays W every step:
    # SGD must land near the weighted, penalised minimum that L-BFGS finds
    X, y = toy(n=400, seed=5)
    w = np.random.default_rng(2).integers(0, 4, len(y)).astype(float)
    l2 = 0.1

    def weighted_objective(model):
        W, b = model.coef_, model.intercept_
        return csoftmax.softmax_regression_loss_grad(W, X, y, b, l2=l2, sample_weight=w)[0]

    best = weighted_objective(SoftmaxRegression(l2=l2, tol=1e-10).fit(X, y, sample_weight=w))
    sgd = SoftmaxRegression(solver="sgd", l2=l2, batch_size=64, random_state=0).fit(X, y, sample_weight=w)
    assert 0 <= (weighted_objective(sgd) - best) / best <= 1e-2


def test_sgd_epoch_follows_full_gradient():
    # To first order in the step, an epoch of n/B weighted mini-batch steps moves W by
    # n/B full-gradient steps, whatever the shuffle: each batch is scaled by its weight share.
    X, y = toy(n=120, seed=6)
    w = np.random.default_rng(3).integers(0, 5, len(y)).astype(float)
    lr, B = 1e-7, 20
    with pytest.warns(ConvergenceWarning):
        sgd = SoftmaxRegression(solver="sgd", learning_rate=lr, batch_size=B, max_iter=1, l2=0.0,
                                random_state=0).fit(X, y, sample_weight=w)
    _, dW, db = csoftmax.softmax_regression_loss_grad(np.zeros((3, 5)), X, y, np.zeros(3), sample_weight=w)
    steps = len(y) / B
    np.testing.assert_allclose(sgd.coef_, -lr * steps * dW, rtol=1e-5)
    np.testing.assert_allclose(sgd.intercept_, -lr * steps * db, rtol=1e-5, atol=1e-14)


def test_lbfgs_runs_scipys_own_blas_on_one_thread(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from csoftmax import regression

    def scipy_blas_threads():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas" and "scipy.libs" in lib["filepath"]]

    before = scipy_blas_threads()
    if not before:
        pytest.skip("SciPy shares NumPy's BLAS here")
    seen = []
    lbfgs = regression._lbfgs

    def spy(*args):
        seen.append(scipy_blas_threads())
        return lbfgs(*args)

    monkeypatch.setattr(regression, "_lbfgs", spy)
    SoftmaxRegression().fit(*toy())
    assert seen == [[1] * len(before)]
    assert scipy_blas_threads() == before
