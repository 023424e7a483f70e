"""The scikit-learn contract: ``check_estimator`` for every estimator, with each deliberate deviation named.

The single-view estimators (DEC, IDEC) are checked directly; the multi-view ones (JECL, CMMC, DM2C)
through :class:`mmc_teach.utils.ViewAdapter`, which turns one array into the list of views. Tiny
networks and schedules keep each fit in milliseconds: the checks test the interface, not the method.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from mmc_teach import CMMC, DEC, DM2C, IDEC, JECL, KMeans
from mmc_teach.utils import ViewAdapter

TINY = dict(hidden_dims=(8, 2), pretrain_epochs=1, epochs=2, batch_size=32, n_init=1)

# Deviations shared by every deep estimator, and why.
ONE_CLUSTER = "n_clusters=1 is refused: with one cluster every soft assignment is 1 and every loss constant"
DEEP_EXPECTED = {
    "check_dont_overwrite_parameters": ONE_CLUSTER,
    "check_methods_subset_invariance": ONE_CLUSTER,
    "check_fit2d_1sample": ONE_CLUSTER,
    "check_fit2d_1feature": ONE_CLUSTER,
    "check_fit2d_predict1d": ONE_CLUSTER,
}
TINY_SCHEDULE = ("one epoch on 50 blobs is a smoke test, not a clustering: it may leave a cluster empty "
                 "(labels not consecutive) or miss the blobs; the method tests check quality")
DM2C_EXPECTED = {
    "check_clustering": TINY_SCHEDULE,
    "check_methods_sample_order_invariance": "split='rows' gives the first half of the rows to modality a: "
                                             "reordering rows changes which modality a sample is",
    "check_methods_subset_invariance": "split='rows' needs two rows per modality to predict",
    "check_fit2d_1sample": "split='rows' needs two rows per modality",
}


def _expected(estimator) -> dict[str, str]:
    if isinstance(estimator, KMeans):
        return {}  # k-means follows scikit-learn's KMeans in everything the checks test
    if not isinstance(estimator, ViewAdapter):
        return dict(DEEP_EXPECTED)  # the adapter's inner n_clusters is out of the checks' reach
    if isinstance(estimator.estimator, DM2C):
        return dict(DM2C_EXPECTED)
    if isinstance(estimator.estimator, CMMC):
        return {"check_clustering": TINY_SCHEDULE}
    return {}


ESTIMATORS = [
    KMeans(3, n_init=1),
    DEC(3, **TINY),
    IDEC(3, **TINY),
    ViewAdapter(JECL(3, **TINY, random_state=0)),
    ViewAdapter(CMMC(3, hidden_dims=(8, 4), high_dim=4, pretrain_epochs=1, contrastive_epochs=1, finetune_epochs=1,
                     n_init=1, random_state=0)),
    ViewAdapter(DM2C(3, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, n_init=1, random_state=0), split="rows"),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# --------------------------------------------------------------------------- the bugs the review found


X = np.random.RandomState(0).rand(40, 6).astype(np.float32)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "transform"])
@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_unfitted_dec_raises_not_fitted_error(cls, method):
    with pytest.raises(NotFittedError):
        getattr(cls(3, **TINY), method)(X)


def test_a_failed_refit_leaves_the_fitted_model_intact():
    model = IDEC(3, **TINY, random_state=0).fit(X)
    before = {k: v for k, v in vars(model).items() if k.endswith("_")}
    labels = model.predict(X)
    bad = np.random.RandomState(1).rand(30, 9).astype(np.float32)
    model.set_params(lr=float("inf"))
    with pytest.raises(ValueError):
        model.fit(bad)
    assert model.n_features_in_ == 6
    assert all(vars(model)[k] is v for k, v in before.items())
    np.testing.assert_array_equal(model.predict(X), labels)


def test_a_refit_that_fails_half_way_keeps_the_previous_model(monkeypatch):
    """The failure happens after pretraining on the new data: nothing new may be kept."""
    import mmc_teach.dec as dec_module

    model = IDEC(3, **TINY, random_state=0).fit(X)
    labels = model.predict(X)
    other = np.random.RandomState(1).rand(30, 9).astype(np.float32)

    def broken(*args, **kwargs):
        raise RuntimeError("k-means failed")

    monkeypatch.setattr(model, "_initial_centers", broken)
    with pytest.raises(RuntimeError, match="k-means failed"):
        model.fit(other)
    assert model.n_features_in_ == 6 and model.autoencoder_.input_dim == 6
    np.testing.assert_array_equal(model.predict(X), labels)
    assert dec_module  # the module's own helpers stay untouched


@pytest.mark.parametrize("cls", [DEC, IDEC, JECL, DM2C, CMMC])
def test_parameters_after_n_clusters_are_keyword_only(cls):
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    assert params[0].name == "n_clusters"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    with pytest.raises(TypeError):
        cls(3, (8, 2))


@pytest.mark.parametrize("cls", [DEC, JECL, DM2C, CMMC])
def test_hidden_dims_include_the_embedding_width_everywhere(cls):
    assert cls(3).get_params()["hidden_dims"][-1] in (10, 32, 128, 512)  # CMMC: 128, its CPU default
    assert not {"latent_dim", "feature_dim"} & set(cls(3).get_params())


def test_history_keys_share_one_vocabulary():
    dec = DEC(3, **TINY, random_state=0).fit(X)
    jecl = JECL(3, **TINY, random_state=0).fit([X[:, :3], X[:, 3:]])
    assert "label_change" in dec.history_[0] and "label_change" in jecl.history_[0]
    assert not any("delta_label" in h for h in dec.history_)


def test_update_interval_counts_iterations_in_dec_and_jecl():
    """One target update per 2 iterations: with 40 samples in batches of 10, two updates per epoch."""
    calls = []
    import mmc_teach.jecl as jecl_module

    original = jecl_module.joint_target_distribution

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    jecl_module.joint_target_distribution = counting
    try:
        JECL(3, **{**TINY, "batch_size": 10, "epochs": 2}, update_interval=2, tol=0.0, random_state=0).fit([X[:, :3], X[:, 3:]])
    finally:
        jecl_module.joint_target_distribution = original
    assert len(calls) == 4  # iterations 0, 2, 4, 6 of 8


# --------------------------------------------------------------------------- seeding


def test_a_cpu_fit_leaves_gpu_generators_alone(monkeypatch):
    """torch.manual_seed also (lazily) reseeds CUDA and MPS; a CPU fit must not touch them."""
    touched = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: touched.append(("cuda", seed)))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: touched.append(("cuda1", seed)))
    monkeypatch.setattr(torch.mps, "manual_seed", lambda seed: touched.append(("mps", seed)))
    cpu_state = torch.get_rng_state()
    for model, data in ((DEC(3, **TINY, random_state=0, device="cpu"), X),
                        (JECL(3, **TINY, random_state=0, device="cpu"), [X[:, :3], X[:, 3:]]),
                        (DM2C(3, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, n_init=1, random_state=0, device="cpu"),
                         [X[:20], X[20:]]),
                        (CMMC(3, hidden_dims=(8, 4), high_dim=4, pretrain_epochs=1, contrastive_epochs=1,
                              finetune_epochs=1, n_init=1, random_state=0, device="cpu"), [X[:, :3], X[:, 3:]])):
        model.fit(data)
    assert touched == []
    assert torch.equal(torch.get_rng_state(), cpu_state)
