"""Reliability of every public estimator: bad input, determinism, global random state.

ONE table (``ESTIMATORS``) lists every estimator with a tiny schedule and the kind of input it
takes; a new estimator joins every check below by adding one row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from mmc_teach import CMMC, DEC, DM2C, IDEC, JECL, KMeans, evaluate

TINY_DEEP = dict(pretrain_epochs=2, epochs=2, batch_size=16)


@dataclass
class Row:
    name: str
    make: Callable[..., Any]  # make(n_clusters, **overrides) -> unfitted estimator
    kind: str  # "single": X; "paired": [X_a, X_b] same rows; "mixed": [X_a, X_b] different rows
    bad_params: dict[str, Any] = field(default_factory=dict)  # parameter -> invalid value
    min_clusters: int = 2  # smallest valid n_clusters


ESTIMATORS = [
    Row("KMeans", lambda k, **kw: KMeans(k, **{"n_init": 2, "random_state": 0, **kw}), "single",
        {"n_init": 0, "max_iter": -1, "tol": -1.0}, min_clusters=1),
    Row("DEC", lambda k, **kw: DEC(k, **{"hidden_dims": (8, 2), "random_state": 0, **TINY_DEEP, **kw}), "single",
        {"epochs": -1, "pretrain_epochs": -2, "lr": -0.1, "batch_size": 0}),
    Row("IDEC", lambda k, **kw: IDEC(k, **{"hidden_dims": (8, 2), "random_state": 0, **TINY_DEEP, **kw}), "single",
        {"epochs": -1, "lr": -0.1, "batch_size": 0, "gamma": -1.0}),
    Row("JECL", lambda k, **kw: JECL(k, **{"hidden_dims": (8, 2), "random_state": 0, **TINY_DEEP, **kw}), "paired",
        {"epochs": -1, "lr": -0.1, "batch_size": 0}),
    Row("DM2C", lambda k, **kw: DM2C(k, **{"hidden_dims": (8, 3), "random_state": 0, **TINY_DEEP, **kw}),
        "mixed", {"epochs": -1, "lr": -0.1, "batch_size": 0}),
    Row("CMMC", lambda k, **kw: CMMC(k, **{"high_dim": 4, "hidden_dims": (8, 6, 6), "pretrain_epochs": 2,
                                          "contrastive_epochs": 2, "finetune_epochs": 1, "batch_size": 16,
                                          "random_state": 0, **kw}), "paired",
        {"contrastive_epochs": -1, "lr": -0.1, "batch_size": 0}),
]
IDS = [row.name for row in ESTIMATORS]


def _blobs(n: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(scale=4.0, size=(3, width))
    return (centres[labels] + rng.normal(size=(n, width))).astype(np.float32), labels


def good_input(kind: str) -> Any:
    X_a, _ = _blobs(60, 5, 0)
    X_b, _ = _blobs(60, 4, 1)
    if kind == "single":
        return X_a
    if kind == "paired":
        return [X_a, X_b]
    return [X_a, X_b[:45]]  # mixed: different samples, different counts


def with_first_array(kind: str, replace: Callable[[np.ndarray], Any]) -> Any:
    """The good input with its (first) array replaced by ``replace(array)``."""
    data = good_input(kind)
    if kind == "single":
        return replace(data)
    return [replace(data[0]), *data[1:]]


def fit(est: Any, data: Any) -> Any:
    return est.fit(data)


def _labels(est: Any) -> np.ndarray:
    labels = est.labels_
    return np.concatenate(labels) if isinstance(labels, list) else np.asarray(labels)


# --------------------------------------------------------------------------- bad input

def _nan(X):
    X = X.copy()
    X[3, 1] = np.nan
    return X


def _inf(X):
    X = X.copy()
    X[2, 0] = np.inf
    return X


BAD_ARRAYS = {
    "NaN": (_nan, ValueError, r"NaN"),
    "inf": (_inf, ValueError, r"infinit"),
    "empty": (lambda X: X[:0], ValueError, r"empty"),
    "1-D": (lambda X: X[:, 0], ValueError, r"2-D"),
    "3-D": (lambda X: X[:, :, None], ValueError, r"2-D"),
    "strings": (lambda X: X.astype(str), TypeError, r"numeric"),
}


@pytest.mark.parametrize("case", list(BAD_ARRAYS))
@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_bad_arrays_raise_clear_errors(row, case):
    replace, error, message = BAD_ARRAYS[case]
    with pytest.raises(error, match=message):
        fit(row.make(3), with_first_array(row.kind, replace))


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_n_clusters_out_of_range(row):
    with pytest.raises(ValueError, match="n_clusters"):
        fit(row.make(row.min_clusters - 1), good_input(row.kind))
    with pytest.raises(ValueError, match="n_clusters"):
        fit(row.make(500), good_input(row.kind))


@pytest.mark.parametrize("row", [r for r in ESTIMATORS if r.kind != "single"], ids=lambda r: r.name)
def test_multi_view_input_checks(row):
    with pytest.raises(ValueError, match="at least 2"):
        fit(row.make(3), good_input(row.kind)[:1])
    if row.kind == "paired":
        X_a, X_b = good_input("paired")
        with pytest.raises(ValueError, match="different numbers of rows"):
            fit(row.make(3), [X_a, X_b[:50]])


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_invalid_hyper_parameters_are_named(row):
    for param, value in row.bad_params.items():
        with pytest.raises(ValueError, match=param):
            fit(row.make(3, **{param: value}), good_input(row.kind))


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_unknown_device(row):
    with pytest.raises(ValueError, match="device"):
        fit(row.make(3, device="tpu9"), good_input(row.kind))


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_predict_before_fit_and_with_other_width(row):
    est = row.make(3)
    with pytest.raises(NotFittedError):
        est.predict(good_input(row.kind))
    fit(est, good_input(row.kind))
    wider = with_first_array(row.kind, lambda X: np.hstack([X, X[:, :1]]))
    with pytest.raises(ValueError, match="features"):
        est.predict(wider)


def test_evaluate_bad_input():
    with pytest.raises(ValueError, match="different lengths"):
        evaluate([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        evaluate([], [])
    with pytest.raises(ValueError):
        evaluate(np.zeros((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="NaN"):
        evaluate([0.0, np.nan, 1.0], [0, 1, 1])


# --------------------------------------------------------------------------- determinism

def _losses(est: Any) -> list:
    history = getattr(est, "history_", None)
    if history is None:  # k-means has no loss history; its inertia is the training objective
        return [est.inertia_]
    return [{k: v for k, v in record.items() if isinstance(v, (int, float))} for record in history]


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_same_random_state_gives_identical_labels_and_losses(row):
    first = fit(row.make(3, random_state=7), good_input(row.kind))
    second = fit(row.make(3, random_state=7), good_input(row.kind))
    assert np.array_equal(_labels(first), _labels(second))
    assert _losses(first) == _losses(second)


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_different_random_state_changes_the_run(row):
    # Tiny blobs are easy, so labels may agree; the losses (or k-means' initial centres) must not.
    runs = [fit(row.make(3, random_state=seed, **({"n_init": 1} if row.name == "KMeans" else {})),
                good_input(row.kind)) for seed in (1, 2)]
    if row.name == "KMeans":
        X = good_input("single")
        a, b = (KMeans(3, n_init=1, max_iter=1, random_state=s).fit(X).cluster_centers_ for s in (1, 2))
        assert not np.allclose(a, b)
    else:
        assert _losses(runs[0]) != _losses(runs[1])


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_global_random_state_is_untouched(row):
    np.random.seed(11)
    torch.manual_seed(11)
    numpy_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    fit(row.make(3), good_input(row.kind))
    assert np.array_equal(np.random.get_state()[1], numpy_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


# --------------------------------------------------------------------------- degenerate data

# KMeans's documented fallback: scikit-learn's ConvergenceWarning and fewer distinct clusters.
@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_identical_points_give_no_nan_labels(row):
    """All points identical: a clear error or a documented fallback, never NaN labels."""
    data = with_first_array(row.kind, lambda X: np.ones_like(X))
    try:
        est = fit(row.make(3), data)
    except ValueError as err:
        assert str(err)  # a clear error is an accepted outcome
        return
    labels = _labels(est)
    assert labels.dtype.kind in "iu" and np.all(labels >= 0)


# Where a careful user goes next: input types and shapes that are valid but unusual. Each ends in a
# result (one label per sample, none negative) or a ValueError that says what is wrong.
CAREFUL_INPUTS = {
    "float16": lambda X: X.astype(np.float16),
    "integers": lambda X: np.rint(X).astype(np.int64),
    "a constant column": lambda X: np.hstack([X, np.ones((len(X), 1), X.dtype)]),
    "two distinct points only": lambda X: np.repeat(X[:2], len(X) // 2, axis=0),
}


@pytest.mark.filterwarnings("ignore:Number of distinct clusters")
@pytest.mark.parametrize("case", list(CAREFUL_INPUTS))
@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_unusual_but_valid_input_ends_in_labels_or_a_clear_error(row, case):
    data = with_first_array(row.kind, CAREFUL_INPUTS[case])
    try:
        est = fit(row.make(3), data)
    except ValueError as err:
        assert len(str(err)) > 20, err  # a message that says something
        return
    labels = _labels(est)
    n = sum(len(X) for X in data) if row.kind == "mixed" else len(data if row.kind == "single" else data[0])
    assert labels.shape == (n,) and labels.dtype.kind in "iu" and labels.min() >= 0


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_n_clusters_as_a_numpy_integer_equals_a_python_integer(row):
    a = _labels(fit(row.make(np.int64(3)), good_input(row.kind)))
    b = _labels(fit(row.make(3), good_input(row.kind)))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_a_multimodal_dataset_is_taken_as_its_views_or_refused_in_one_sentence(row):
    from mmc_teach.datasets import MultiModalDataset

    X_a, X_b = good_input("paired")
    data = MultiModalDataset("toy", [X_a, X_b], np.arange(60) % 3, ["a", "b"], ["0", "1", "2"])
    if row.kind == "single":  # one array: a list of views or a data set is named as what it is
        for given in (data, [X_a, X_b]):
            with pytest.raises(ValueError, match=r"holds 2 views \(shapes \(60, 5\), \(60, 4\)\), but this estimator "
                                                 r"clusters one array"):
                fit(row.make(3), given)
        return
    np.testing.assert_array_equal(_labels(fit(row.make(3), data)), _labels(fit(row.make(3), [X_a, X_b])))


@pytest.mark.parametrize("row", ESTIMATORS, ids=IDS)
def test_a_fitted_model_saved_and_loaded_predicts_the_same(row, tmp_path):
    """pickle (what joblib.dump and torch.save use) keeps the fitted networks and the settings."""
    import pickle

    data = good_input(row.kind)
    est = fit(row.make(3), data)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(est))
    loaded = pickle.loads(path.read_bytes())
    np.testing.assert_array_equal(_labels(loaded), _labels(est))
    predicted, again = est.predict(data), loaded.predict(data)
    for a, b in zip(predicted if isinstance(predicted, list) else [predicted], again if isinstance(again, list) else [again]):
        np.testing.assert_array_equal(a, b)


def test_two_processes_filling_the_same_autoencoder_cache_at_once(tmp_path):
    """Both get the same weights, one cache file is left, and no temporary file."""
    import subprocess
    import sys

    script = (
        "import numpy as np, torch\n"
        "from mmc_teach.nn import pretrained_autoencoder\n"
        "X = np.random.RandomState(0).rand(300, 20).astype('float32')\n"
        "ae = pretrained_autoencoder(X, (16, 4), epochs=30, random_state=0, device='cpu')\n"
        "print(float(sum(p.double().sum() for p in ae.parameters())))\n"
    )
    env = {**__import__("os").environ, "MMC_TEACH_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs) and outputs[0] == outputs[1]
    assert [f.name.startswith("ae-") and f.suffix == ".pt" for f in tmp_path.iterdir()] == [True]
