"""scikit-learn front ends (fastmlp.sklearn): the check suite, parity with sklearn's own MLP, and
the extras (dropout, per-layer activations, class weights, validation loss, partial_fit with
early stopping)."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.neural_network import MLPRegressor as SkMLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastmlp as fm  # noqa: E402
from fastmlp.sklearn import Adaline, MLPClassifier, MLPRegressor, Perceptron  # noqa: E402

from data_paths import load_npz  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


# ---------------------------------------------------------------- scikit-learn's check suite
# Small networks and few epochs keep the suite fast; one thread because these problems are
# tiny (results do not depend on it). Each instance runs every check that applies to it.
CHECKED = [
    MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=0.01, n_threads=1),
    MLPClassifier(hidden_layer_sizes=(16, 8), activation=["tanh", "relu"], dropout=[0.1, 0.0],
                  solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, momentum=0.9,
                  class_weight="balanced", max_iter=60, n_threads=1),
    MLPRegressor(hidden_layer_sizes=(16,), max_iter=50, learning_rate_init=0.01, n_threads=1),
    MLPRegressor(hidden_layer_sizes=(8,), solver="nadam", activation="gelu", max_iter=50,
                 learning_rate_init=0.01, n_threads=1),
    Perceptron(max_iter=20, n_threads=1),
    Adaline(max_iter=10, n_threads=1),
]


def _expected_failures(estimator):
    """The only checks allowed to fail, and why."""
    if getattr(estimator, "dropout", None):
        why = ("dropout draws an independent mask for every row of a batch, so a sample with "
               "weight 2 and the same sample given twice are not the same objective")
        return {"check_sample_weight_equivalence_on_dense_data": why,
                "check_sample_weight_equivalence_on_sparse_data": why}
    return {}


@parametrize_with_checks(CHECKED, expected_failed_checks=_expected_failures)
def test_sklearn_check_suite(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- parity with sklearn
def _iris():
    d = load_npz("sklearn_toy/iris.npz")
    X, y = d["X"], d["y"]
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.mark.parametrize("solver,kw,atol,coef_atol", [
    ("sgd", dict(momentum=0.9), 1e-12, 1e-10),               # Nesterov momentum (sklearn's default)
    ("sgd", dict(momentum=0.0, learning_rate="invscaling", learning_rate_init=0.1), 1e-12, 1e-10),
    # torch's Adam adds eps to sqrt(v) / sqrt(1 - beta2^t), sklearn's to sqrt(v): weights whose
    # gradients are ~0 (dead ReLUs) take slightly different steps
    ("adam", {}, 2e-6, 1e-3),
])
@pytest.mark.parametrize("binary", [False, True])
def test_same_training_as_sklearn(solver, kw, atol, coef_atol, binary):
    """Full-batch, unshuffled: the same initial weights (drawn in sklearn's order from the same
    random_state), loss, L2 mapping (l2 = alpha / batch) and update rule give sklearn's loss
    curve, to rounding for SGD."""
    X, y = _iris()
    if binary:
        y = (y == 1).astype(int)
    params = dict(hidden_layer_sizes=(16, 8), max_iter=40, random_state=0, solver=solver,
                  shuffle=False, batch_size=150, tol=0, alpha=0.01, **kw)
    ours = MLPClassifier(**params).fit(X, y)
    ref = SkMLPClassifier(**params).fit(X, y)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=0, atol=atol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=coef_atol)
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    assert ours.out_activation_ == ref.out_activation_ and ours.n_layers_ == ref.n_layers_
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=coef_atol)


def test_same_regression_as_sklearn_multi_output():
    d = load_npz("sklearn_toy/diabetes.npz")
    X, y = d["X"], d["y"]
    Y = np.column_stack([y, -0.5 * y]) / 100
    params = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0, shuffle=False,
                  batch_size=len(X), tol=0, solver="sgd", learning_rate_init=0.01, alpha=0.1)
    ours = MLPRegressor(**params).fit(X, Y)
    ref = SkMLPRegressor(**params).fit(X, Y)
    # the same training (sklearn's gradient is that of the summed squared error) ...
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-10, atol=1e-12)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    # ... but sklearn reports the squared error averaged over the outputs, fastmlp the sum
    penalty = 0.5 * 0.1 / len(X) * sum(np.sum(c ** 2) for c in ref.coefs_)
    assert ours.loss_curve_[-1] > ref.loss_curve_[-1]
    assert ours.loss_ - penalty == pytest.approx(2 * (ref.loss_ - penalty), rel=0.05)


def test_stopping_rule_and_attributes_like_sklearn():
    X, y = _iris()
    params = dict(hidden_layer_sizes=(8,), max_iter=500, random_state=0, shuffle=False,
                  batch_size=150, tol=1e-3, n_iter_no_change=5, solver="sgd",
                  learning_rate_init=0.2)
    ours, ref = MLPClassifier(**params).fit(X, y), SkMLPClassifier(**params).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ < 500
    assert ours.best_loss_ == pytest.approx(ref.best_loss_, abs=1e-12)
    assert ours.validation_scores_ is None and ours.best_validation_score_ is None
    assert ours.n_features_in_ == 4 and ours.n_outputs_ == 3 and list(ours.classes_) == [0, 1, 2]
    assert isinstance(ours.model_, fm.Sequential)


# ---------------------------------------------------------------- dtypes, pipelines, pickling
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    X, y = _iris()
    X = X.astype(dtype)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert clf.model_.dtype == dtype
    assert clf.predict_proba(X).dtype == dtype
    assert all(c.dtype == dtype for c in clf.coefs_ + clf.intercepts_)
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, X[:, 0])
    assert reg.predict(X).dtype == dtype
    # other inputs are converted to the fitted dtype
    assert clf.predict_proba(X.astype(np.float64 if dtype == np.float32 else np.float32)).dtype == dtype


def test_integer_input_trains_in_float64():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
        np.round(X * 10).astype(np.int32), y)
    assert clf.model_.dtype == np.float64


def test_pipeline_and_grid_search():
    d = load_npz("sklearn_toy/iris.npz")
    X, y = d["X"], d["y"]
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=100, random_state=0,
                                                         learning_rate_init=0.01))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(4,), (16,)],
                               "mlpclassifier__dropout": [None, 0.1]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.85
    assert grid.best_estimator_.score(X, y) > 0.9
    reg = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(16,), max_iter=200,
                                                       learning_rate_init=0.01, random_state=0))
    dia = load_npz("sklearn_toy/diabetes.npz")
    reg.fit(dia["X"], (dia["y"] - dia["y"].mean()) / dia["y"].std())
    assert reg.score(dia["X"], (dia["y"] - dia["y"].mean()) / dia["y"].std()) > 0.4


@pytest.mark.parametrize("make", [
    lambda: MLPClassifier(hidden_layer_sizes=(8, 4), dropout=0.2, max_iter=10, random_state=0,
                          early_stopping=True),
    lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0),
    lambda: Perceptron(random_state=0),
    lambda: Adaline(random_state=0),
], ids=["MLPClassifier", "MLPRegressor", "Perceptron", "Adaline"])
def test_clone_pickle_and_save_round_trips(tmp_path, make):
    X, y = _iris()
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = make()
    target = X[:, 0] if isinstance(est, MLPRegressor) else labels
    est.fit(X, target)
    fresh = clone(est)
    assert fresh.get_params() == est.get_params() and not hasattr(fresh, "model_")
    expected = est.predict(X)
    for copy in (pickle.loads(pickle.dumps(est)), _save_load(est, tmp_path)):
        assert type(copy) is type(est)
        np.testing.assert_array_equal(copy.predict(X), expected)
        if hasattr(est, "predict_proba"):
            np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
        assert copy.get_params() == est.get_params()


def _save_load(est, tmp_path):
    fm.save(est, tmp_path / "est.fmlp")
    return fm.load(tmp_path / "est.fmlp")


def test_pickled_estimator_continues_training_identically():
    X, y = _iris()
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, dropout=0.1)
    est.partial_fit(X, y, classes=[0, 1, 2])
    twin = pickle.loads(pickle.dumps(est))
    for _ in range(3):
        est.partial_fit(X, y)
        twin.partial_fit(X, y)
    np.testing.assert_array_equal(twin.predict_proba(X), est.predict_proba(X))
    assert twin.loss_curve_ == est.loss_curve_


def test_sparse_input_is_densified():
    sparse = pytest.importorskip("scipy.sparse")
    X, y = _iris()
    dense = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(X, y)
    csr = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(
        sparse.csr_matrix(X), y)
    np.testing.assert_array_equal(csr.predict_proba(sparse.csr_matrix(X)), dense.predict_proba(X))


# ---------------------------------------------------------------- what sklearn's MLP lacks
def test_dropout_and_per_layer_activations_build_the_network():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(8, 6, 4), activation=["tanh", "logistic", "gelu"],
                        dropout=[0.3, 0.0, 0.1], max_iter=3, random_state=0).fit(X, y)
    layers = clf.model_.layers
    assert [type(layer).__name__ for layer in layers] == [
        "Dense", "Dropout", "Dense", "Dense", "Dropout", "Dense"]
    assert [layers[i].activation.name for i in (0, 2, 3)] == ["tanh", "sigmoid", "gelu"]
    assert layers[1].rate == 0.3 and layers[4].rate == 0.1
    assert layers[-1].activation.name == "identity" and clf.model_.loss.name == "softmax_cross_entropy"
    assert [c.shape for c in clf.coefs_] == [(4, 8), (8, 6), (6, 4), (4, 3)]
    with pytest.raises(ValueError, match="3 hidden"):
        MLPClassifier(hidden_layer_sizes=(8, 6, 4), dropout=[0.1, 0.2]).fit(X, y)
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(dropout=1.0).fit(X, y)
    with pytest.raises(ValueError, match="Unknown activation"):
        MLPClassifier(activation="swoosh").fit(X, y)


def test_dropout_regularises():
    X, y = _iris()
    rng = np.random.default_rng(0)
    noisy = np.hstack([X, rng.normal(size=(150, 30))])
    plain = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0,
                          learning_rate_init=0.01, tol=0).fit(noisy, y)
    dropped = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0,
                            learning_rate_init=0.01, tol=0, dropout=0.5).fit(noisy, y)
    assert plain.loss_ < dropped.loss_  # harder to fit the training set through dropout


def test_class_weight():
    X, y = _iris()
    y = (y == 2).astype(int)  # 50 positives, 100 negatives
    base = dict(hidden_layer_sizes=(4,), max_iter=30, random_state=0, learning_rate_init=0.01)
    weighted = MLPClassifier(class_weight={0: 1.0, 1: 3.0}, **base).fit(X, y)
    by_sample = MLPClassifier(**base).fit(X, y, sample_weight=np.where(y == 1, 3.0, 1.0))
    np.testing.assert_array_equal(weighted.predict_proba(X), by_sample.predict_proba(X))
    balanced = MLPClassifier(class_weight="balanced", **base).fit(X, y)
    none = MLPClassifier(**base).fit(X, y)
    assert balanced.predict_proba(X)[:, 1].mean() > none.predict_proba(X)[:, 1].mean()
    with pytest.raises(ValueError, match="not in the classes"):
        MLPClassifier(class_weight={5: 2.0}, **base).fit(X, y)


def test_validation_loss_curve_with_early_stopping():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, validation_fraction=0.2,
                        n_iter_no_change=10, max_iter=300, learning_rate_init=0.02,
                        random_state=0).fit(X, y)
    n = clf.n_iter_
    assert len(clf.loss_curve_) == len(clf.validation_loss_curve_) == len(clf.validation_scores_) == n
    assert clf.validation_loss_curve_[-1] < clf.validation_loss_curve_[0]
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None and clf.early_stopped_ == (n < 300)
    # the best weights are restored: the validation split scores its best
    assert clf.score(X, y) > 0.9 and clf.best_validation_score_ >= clf.validation_scores_[-1]


def test_partial_fit_with_early_stopping():
    X, y = _iris()
    rng = np.random.default_rng(0)
    order = rng.permutation(150)
    X, y = X[order], y[order]
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                        validation_fraction=0.2, learning_rate_init=0.05, random_state=0)
    clf.partial_fit(X[:60], y[:60], classes=[0, 1, 2])
    assert len(clf.validation_scores_) == 1
    calls = 1
    while not clf.early_stopped_ and calls < 200:
        part = slice((calls % 3) * 50, (calls % 3) * 50 + 50)
        clf.partial_fit(X[part], y[part])
        calls += 1
    assert clf.early_stopped_, "the validation score never stopped improving"
    assert len(clf.validation_loss_curve_) == calls == clf.n_iter_
    best = clf.model_.flat_params.copy()
    with pytest.warns(UserWarning, match="Early stopping already ended"):
        clf.partial_fit(X[:50], y[:50])
    np.testing.assert_array_equal(clf.model_.flat_params, best)
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:50, :3], y[:50])
    clf.fit(X, y)  # fit starts over
    assert not clf.early_stopped_ or clf.n_iter_ < 200


def test_partial_fit_streaming_and_warm_start():
    X, y = _iris()
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, learning_rate_init=0.02)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    for _ in range(20):
        clf.partial_fit(X, y, classes=[0, 1, 2])
    assert clf.n_iter_ == 20 and len(clf.loss_curve_) == 20
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    # without early_stopping, the stopping rule never freezes partial_fit (as in sklearn)
    stubborn = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, tol=100, n_iter_no_change=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(5):
            stubborn.partial_fit(X, y, classes=[0, 1, 2])
    assert stubborn.n_iter_ == 5 and len(set(stubborn.loss_curve_)) == 5
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:5], np.full(5, 7))
    warm = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, max_iter=5, warm_start=True)
    warm.fit(X, y)
    first = warm.loss_curve_[-1]
    warm.fit(X, y)
    assert warm.n_iter_ == 10 and warm.loss_curve_[-1] < first
    with pytest.raises(ValueError, match="warm_start"):
        warm.fit(X, (y == 0).astype(int))


def test_every_solver_trains():
    X, y = _iris()
    for solver in ("sgd", "adam", "adamw", "nadam", "adamax", "rmsprop", "adagrad", "adadelta",
                   "rprop"):
        lr = {"adadelta": 1.0, "sgd": 0.1, "adagrad": 0.1}.get(solver, 0.01)
        clf = MLPClassifier(hidden_layer_sizes=(16,), solver=solver, learning_rate_init=lr,
                            max_iter=100, random_state=0).fit(X, y)
        assert type(clf.model_.optimizer).__name__.lower() == solver.replace("rmsprop", "rmsprop")
        assert clf.score(X, y) > 0.8, solver
    custom = MLPClassifier(hidden_layer_sizes=(16,), solver=fm.SGD(lr=0.1, momentum=0.5),
                           max_iter=50, random_state=0)
    custom.fit(X, y)
    assert custom.solver.iterations == 0  # the parameter is copied, never trained in place
    assert custom.model_.optimizer.iterations > 0


def test_multilabel_and_multioutput():
    X, y = _iris()
    Y = np.column_stack([y == 0, y == 2, X[:, 0] > 0]).astype(int)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=200, learning_rate_init=0.01,
                        random_state=0).fit(X, Y)
    assert clf.out_activation_ == "logistic" and clf.predict(X).shape == (150, 3)
    assert clf.predict_proba(X).shape == (150, 3) and clf.score(X, Y) > 0.8
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01,
                       random_state=0).fit(X, X[:, :2] * 2)
    assert reg.predict(X).shape == (150, 2) and reg.score(X, X[:, :2] * 2) > 0.8


def test_errors_in_sklearns_words():
    X, y = _iris()
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match="learning_rate_init"):
        MLPClassifier(learning_rate_init=0).fit(X, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        MLPClassifier().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, X[:, 0])
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPRegressor(early_stopping=True).fit(X[:10], y[:10])


# ---------------------------------------------------------------- single-unit models
def test_perceptron_wraps_the_core_rule():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal([-2, -2], 0.5, (40, 2)), rng.normal([2, 1], 0.5, (40, 2))])
    y = np.repeat(["neg", "pos"], 40)
    est = Perceptron(random_state=0).fit(X, y)
    assert est.converged_ and est.score(X, y) == 1.0 and est.mistakes_[0][-1] == 0
    core = fm.Perceptron(seed=est.estimators_[0].seed).fit(X, y)
    np.testing.assert_array_equal(est.coef_[0], core.coef_)
    assert est.coef_.shape == (1, 2) and est.intercept_.shape == (1,)
    assert est.decision_function(X).shape == (80,)
    # three classes: one-vs-rest units, sklearn's coef_ layout
    Xi, yi = _iris()
    multi = Perceptron(random_state=0, max_iter=50).fit(Xi, yi)
    assert multi.coef_.shape == (3, 4) and multi.decision_function(Xi).shape == (150, 3)
    assert multi.score(Xi, yi) > 0.6


def test_adaline_auto_rate_is_stable_on_raw_data():
    rng = np.random.default_rng(0)
    X = rng.normal(loc=100, scale=5, size=(60, 3))  # unscaled: a fixed 0.01 would diverge
    y = (X[:, 0] > 100).astype(int)
    est = Adaline(max_iter=5, random_state=0).fit(X, y)
    assert est.eta0_ == pytest.approx(0.1 / (np.max(np.sum(X ** 2, axis=1)) + 1))
    assert np.all(np.isfinite(est.coef_)) and max(est.loss_curve_) < 1.0  # stays near its start
    with pytest.raises(FloatingPointError):
        Adaline(eta0=0.01, max_iter=5, random_state=0).fit(X, y)
    Xi, yi = _iris()
    assert Adaline(random_state=0, max_iter=30).fit(Xi, yi).score(Xi, yi) > 0.7


def test_dataframes_keep_feature_names_through_save(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _iris()
    df = pd.DataFrame(X, columns=["sepal_l", "sepal_w", "petal_l", "petal_w"])
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0).fit(df, y)
    loaded = _save_load(clf, tmp_path)
    assert list(loaded.feature_names_in_) == list(df.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names" warning
        np.testing.assert_array_equal(loaded.predict(df), clf.predict(df))
    with pytest.raises(ValueError, match="feature names"):
        loaded.predict(df.rename(columns={"petal_w": "petal_width"}))
