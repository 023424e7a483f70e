"""DEC / IDEC: the equation functions against hand computations, and the estimators' contract."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from mmc_teach import labs
from mmc_teach._base import NonFiniteLossError
from mmc_teach.dec import DEC, IDEC
from mmc_teach.losses import kl_clustering_loss, soft_assignment, target_distribution
from mmc_teach.nn import MLPAutoencoder

BOOK = Path(__file__).resolve().parents[1] / "book"


def blobs(n_per: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated 6-D blobs: tiny, fast, and clusterable."""
    rng = np.random.RandomState(seed)
    centres = np.array([[3.0] * 6, [-3.0] * 6, [3.0, -3.0] * 3])
    X = np.vstack([c + 0.5 * rng.randn(n_per, 6) for c in centres]).astype(np.float32)
    return X, np.repeat(np.arange(3), n_per)


def small(cls=DEC, **kw):
    params = dict(hidden_dims=(16, 2), pretrain_epochs=3, epochs=3, batch_size=32, n_init=2, random_state=0, device="cpu")
    params.update(kw)
    return cls(3, **params)


# --------------------------------------------------------------------------- equations


def test_soft_assignment_matches_hand_computation():
    z = torch.tensor([[0.0, 0.0]])
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    # alpha = 1: kernels 1/(1+1) = 0.5 and 1/(1+4) = 0.2, normalised -> 5/7, 2/7.
    q = soft_assignment(z, mu, alpha=1.0)
    assert torch.allclose(q, torch.tensor([[5 / 7, 2 / 7]]), atol=1e-6)
    # alpha = 2: (1 + d/2)^(-3/2) for d = 1 and 4.
    a, b = 1.5**-1.5, 3.0**-1.5
    q2 = soft_assignment(z, mu, alpha=2.0)
    assert torch.allclose(q2, torch.tensor([[a / (a + b), b / (a + b)]]), atol=1e-6)


def test_soft_assignment_rows_sum_to_one():
    g = torch.Generator().manual_seed(0)
    q = soft_assignment(torch.randn(50, 4, generator=g) * 10, torch.randn(7, 4, generator=g))
    assert q.shape == (50, 7)
    assert torch.allclose(q.sum(dim=1), torch.ones(50), atol=1e-6)
    assert (q > 0).all()


def test_target_distribution_hand_computation_and_sharper():
    q = torch.tensor([[0.6, 0.4], [0.3, 0.7]])
    # f = (0.9, 1.1); row 1: (0.36/0.9, 0.16/1.1) = (0.4, 0.14545...) -> normalised.
    w = torch.tensor([[0.36 / 0.9, 0.16 / 1.1], [0.09 / 0.9, 0.49 / 1.1]])
    p = target_distribution(q)
    assert torch.allclose(p, w / w.sum(dim=1, keepdim=True), atol=1e-6)
    g = torch.Generator().manual_seed(1)
    q = soft_assignment(torch.randn(200, 3, generator=g), torch.randn(5, 3, generator=g))
    p = target_distribution(q)

    def entropy(r):
        return -(r * r.clamp_min(1e-12).log()).sum(dim=1)

    assert torch.allclose(p.sum(dim=1), torch.ones(200), atol=1e-6)
    assert entropy(p).mean() < entropy(q).mean()
    assert (entropy(p) <= entropy(q) + 1e-5).float().mean() > 0.95


def test_kl_gradient_reaches_encoder_and_centres():
    torch.manual_seed(0)
    ae = MLPAutoencoder(6, [8, 2])
    mu = torch.nn.Parameter(torch.randn(3, 2))
    x = torch.randn(20, 6)
    q = soft_assignment(ae.encode(x), mu)
    loss = kl_clustering_loss(target_distribution(q), q)
    loss.backward()
    assert loss.item() > 0
    assert mu.grad is not None and mu.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ae.encoder.parameters())
    assert all(p.grad is None for p in ae.decoder.parameters())


def test_kl_is_zero_when_p_equals_q():
    q = torch.tensor([[0.2, 0.8], [0.5, 0.5]])
    assert kl_clustering_loss(q, q).item() == pytest.approx(0.0, abs=1e-7)


# --------------------------------------------------------------------------- estimators


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_fit_predict_on_blobs(cls):
    X, y = blobs()
    est = small(cls).fit(X, y)
    assert est.labels_.shape == (len(X),)
    assert est.cluster_centers_.shape == (3, 2)
    assert est.transform(X).shape == (len(X), 2)
    proba = est.predict_proba(X)
    assert proba.shape == (len(X), 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert est.n_iter_ == len(est.history_) >= 1
    assert {"epoch", "loss", "kl", "label_change", "acc", "nmi", "ari"} <= set(est.history_[0])
    assert est.history_[-1]["acc"] > 0.9


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_sgd_clustering_phase(cls):
    X, y = blobs()
    sgd = small(cls, optimizer="sgd", lr=0.01, momentum=0.9).fit(X, y)
    adam = small(cls).fit(X, y)
    assert sgd.history_[-1]["acc"] > 0.9
    assert [h["loss"] for h in sgd.history_] != [h["loss"] for h in adam.history_]  # the option is used


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_paper_recipe_is_one_line_and_its_options_are_used(cls):
    X, y = blobs()
    X = X / 6  # the recipes are for pixels in about [0, 1]; IDEC's SGD(0.1, 0.99) diverges on the raw blobs
    recipe = {**cls.PAPER_RECIPE, "hidden_dims": (16, 2), "pretrain_epochs": 3, "epochs": 3, "batch_size": 32}
    est = cls(3, **recipe, random_state=0, device="cpu").fit(X, y)
    assert est.get_params()["init"] == "glorot" and est.get_params()["optimizer"] == "sgd"
    assert est.history_[-1]["iteration"] > 0 and len(est.pretrain_history_) == 3
    with pytest.raises(TypeError):
        cls.PAPER_RECIPE["lr"] = 1.0  # read-only: a typo in a notebook cannot change the recipe


def test_init_and_pretrain_optimizer_change_the_fit():
    X, _ = blobs()
    base = small().fit(X)
    for kwargs in ({"init": "glorot"}, {"init": "variance_scaling"}, {"pretrain_optimizer": "sgd", "pretrain_lr": 0.01}):
        other = small(**kwargs).fit(X)
        assert other.pretrain_history_ != base.pretrain_history_, kwargs


def test_initialize_weights_bounds_and_biases():
    from mmc_teach.nn import initialize_weights

    torch.manual_seed(0)
    ae = MLPAutoencoder(400, [100, 2])
    first = ae.encoder[0]
    torch_weights = first.weight.detach().clone()
    assert initialize_weights(ae, "torch") is ae and torch.equal(first.weight, torch_weights)
    initialize_weights(ae, "variance_scaling")  # U(-1/sqrt(fan_in), 1/sqrt(fan_in)), zero biases
    assert first.weight.abs().max() <= 1 / math.sqrt(400) and first.weight.abs().max() > 0.9 / math.sqrt(400)
    assert all(m.bias.abs().sum() == 0 for m in ae.modules() if isinstance(m, torch.nn.Linear))
    initialize_weights(ae, "glorot")  # U(-b, b), b = sqrt(6 / (fan_in + fan_out))
    bound = math.sqrt(6 / (400 + 100))
    assert first.weight.abs().max() <= bound and first.weight.abs().max() > 0.9 * bound
    with pytest.raises(ValueError, match="init='he'"):
        initialize_weights(ae, "he")


def test_pretraining_in_pieces_with_one_optimizer_equals_one_run():
    from mmc_teach.nn import make_optimizer, pretrain_autoencoder

    X = torch.as_tensor(blobs()[0])
    runs = []
    for pieces in ((4,), (1, 3)):
        torch.manual_seed(0)
        ae = MLPAutoencoder(6, [8, 2])
        optimizer, generator = make_optimizer("sgd", ae.parameters(), 0.05), torch.Generator().manual_seed(1)
        for epochs in pieces:
            pretrain_autoencoder(ae, X, epochs=epochs, batch_size=32, noise=0.2, optimizer=optimizer, generator=generator)
        runs.append([p.detach() for p in ae.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*runs))
    with pytest.raises(ValueError, match="optimizer='rmsprop'"):
        make_optimizer("rmsprop", ae.parameters(), 0.1)


def test_y_only_monitors():
    X, y = blobs()
    with_y, without_y = small().fit(X, y), small().fit(X)
    np.testing.assert_array_equal(with_y.labels_, without_y.labels_)
    assert [h["loss"] for h in with_y.history_] == [h["loss"] for h in without_y.history_]
    assert "acc" not in without_y.history_[0]


@pytest.mark.parametrize("cls", [DEC, IDEC])
def test_deterministic_and_global_rng_untouched(cls):
    X, _ = blobs()
    torch_state, np_state = torch.random.get_rng_state(), np.random.get_state()
    a = small(cls, random_state=3).fit(X)
    b = small(cls, random_state=3).fit(X)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.history_ == b.history_
    assert a.pretrain_history_ == b.pretrain_history_
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_predict_on_new_data():
    X, y = blobs(50)
    train, test = np.r_[0:40, 50:90, 100:140], np.r_[40:50, 90:100, 140:150]
    est = small(epochs=5).fit(X[train])
    pred = est.predict(X[test])
    assert pred.shape == (30,) and set(pred) <= {0, 1, 2}
    # New points of a blob land in the cluster that holds that blob's training points.
    for c in range(3):
        majority = np.bincount(est.labels_[y[train] == c]).argmax()
        assert (pred[y[test] == c] == majority).mean() >= 0.9


def test_idec_loss_includes_reconstruction_and_trains_decoder():
    X, _ = blobs()
    idec = small(IDEC, gamma=0.5).fit(X)
    for h in idec.history_:
        assert h["reconstruction"] > 0
        assert h["loss"] == pytest.approx(h["reconstruction"] + 0.5 * h["kl"], rel=1e-5)
    dec = small(DEC).fit(X)
    assert "reconstruction" not in dec.history_[0]
    # Same seed -> same pretrained decoder; only IDEC's clustering phase moves it.
    dec_w = dec.autoencoder_.decoder[0].weight
    idec_w = idec.autoencoder_.decoder[0].weight
    assert not torch.equal(dec_w, idec_w)


def test_pretrained_autoencoder_is_copied():
    X, _ = blobs()
    torch.manual_seed(0)
    ae = MLPAutoencoder(6, [16, 2])
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    est = small(IDEC, autoencoder=ae, pretrain_epochs=0).fit(X)
    assert est.autoencoder_ is not ae
    assert all(torch.equal(before[k], v) for k, v in ae.state_dict().items())
    assert est.pretrain_history_ == []


def test_clone_and_params():
    est = IDEC(5, gamma=0.3, hidden_dims=(8, 2))
    twin = clone(est)
    assert twin.get_params()["gamma"] == 0.3 and twin.hidden_dims == (8, 2)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "X, kwargs, match",
    [
        (np.array([[0.0, np.nan]] * 10), {}, "NaN"),
        (np.zeros(10), {}, "2-D"),
        (np.zeros((2, 6)), {}, "n_clusters"),
        (None, {"epochs": 0}, "epochs"),
        (None, {"lr": -1.0}, "lr"),
        (None, {"alpha": 0}, "alpha"),
        (None, {"hidden_dims": ()}, "hidden_dims"),
        (None, {"optimizer": "rmsprop"}, "optimizer"),
        (None, {"pretrain_optimizer": "lbfgs"}, "pretrain_optimizer"),
        (None, {"init": "he"}, "init"),
        (None, {"momentum": 1.0}, "momentum"),
        (None, {"autoencoder": MLPAutoencoder(5, [4, 2])}, "input_dim"),
    ],
)
def test_bad_input_raises_value_error(X, kwargs, match):
    X = blobs()[0] if X is None else X
    with pytest.raises(ValueError, match=match):
        small(**kwargs).fit(X)


def test_idec_rejects_negative_gamma():
    with pytest.raises(ValueError, match="gamma"):
        small(IDEC, gamma=-1.0).fit(blobs()[0])


def test_predict_before_fit_and_wrong_width():
    X, _ = blobs()
    with pytest.raises(NotFittedError):
        DEC(3).predict(X)
    est = small(epochs=1).fit(X)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :4])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_non_finite_loss_names_term_and_epoch():
    X = blobs()[0] * 1e20  # finite input whose squared distances overflow float32
    with pytest.raises(NonFiniteLossError, match=r"IDEC: loss term '(kl|reconstruction)' became (nan|inf) at epoch 1"):
        small(IDEC, pretrain_epochs=0).fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_runs_on_cuda():
    X, y = blobs()
    est = small(IDEC, device="cuda").fit(X, y)
    assert est.predict(X).shape == (len(X),) and est.history_[-1]["acc"] > 0.9


# --------------------------------------------------------------------------- the lab and the chapter


def test_sharpening_demo():
    z = np.array([[0.0], [0.4], [1.0], [2.5]])
    mu = np.array([[0.0], [2.0]])
    out = labs.sharpening_demo(z, mu, alpha=1.0, power=2.0)
    np.testing.assert_allclose(out["q"], soft_assignment(torch.tensor(z), torch.tensor(mu)).numpy(), atol=1e-6)
    np.testing.assert_allclose(out["p"].sum(axis=1), 1, atol=1e-6)
    assert (out["entropy_p"] <= out["entropy_q"] + 1e-9).all()
    # power 1 only re-weights by cluster frequency; a larger power sharpens more.
    flat, sharp = labs.sharpening_demo(z, mu, power=1.0), labs.sharpening_demo(z, mu, power=4.0)
    assert sharp["entropy_p"].mean() < out["entropy_p"].mean() < flat["entropy_p"].mean()
    # A heavier-tailed kernel (small alpha) gives softer q for far points.
    assert labs.sharpening_demo(z, mu, alpha=0.2)["entropy_q"][3] > out["entropy_q"][3]
    with pytest.raises(ValueError, match="alpha"):
        labs.sharpening_demo(z, mu, alpha=0.0)
    with pytest.raises(ValueError, match="power"):
        labs.sharpening_demo(z, mu, power=0.0)


def _chapter_cell(marker: str) -> str:
    notebook = json.loads((BOOK / "04_dec_idec.ipynb").read_text())
    for cell in notebook["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and source.startswith(marker):
            return source
    raise AssertionError(f"no code cell starting with {marker!r} in 04_dec_idec.ipynb")


def test_chapter_from_scratch_q_p_kl_agree_with_library():
    namespace: dict = {"torch": torch}
    exec(_chapter_cell("# From scratch"), namespace)
    g = torch.Generator().manual_seed(0)
    z, mu = torch.randn(30, 4, generator=g), torch.randn(5, 4, generator=g)
    for alpha in (0.5, 1.0, 3.0):
        q = namespace["student_t_q"](z, mu, alpha)
        assert torch.allclose(q, soft_assignment(z, mu, alpha), atol=1e-5)
        assert torch.allclose(namespace["target_p"](q), target_distribution(q), atol=1e-6)
    p = target_distribution(q)
    assert math.isclose(float(namespace["kl_pq"](p, q)), float(kl_clustering_loss(p, q)), rel_tol=1e-5)
