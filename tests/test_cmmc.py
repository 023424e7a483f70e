"""Tests for mmc_teach.cmmc (chapter 08_cmmc): the loss equations, the pseudo-label matching and the estimator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from mmc_teach.cmmc import (
    CMMC,
    cluster_entropy_term,
    label_contrastive_loss,
    matched_pseudo_labels,
    min_max_scale,
    nt_xent,
)

NOTEBOOK = Path(__file__).resolve().parents[1] / "book" / "08_cmmc.ipynb"


def _nt_xent_loop(a: np.ndarray, b: np.ndarray, tau: float) -> float:
    """Eq. (cmmc-ntxent) written out anchor by anchor with the math module only."""
    rows = [[x / math.sqrt(sum(v * v for v in r)) for x in r] for r in np.vstack([a, b]).tolist()]
    n = len(a)
    total = 0.0
    for i, anchor in enumerate(rows):
        pos = (i + n) % (2 * n)
        sims = [sum(x * y for x, y in zip(anchor, other)) / tau for other in rows]
        denominator = sum(math.exp(s) for j, s in enumerate(sims) if j != i)
        total += -sims[pos] + math.log(denominator)
    return total / (2 * n)


# --------------------------------------------------------------------------- NT-Xent


def test_nt_xent_hand_computation_three_orthonormal_samples():
    # h_a = h_b = e1, e2, e3 and tau = 1: every anchor has positive similarity 1 and
    # four negatives with similarity 0, so each term is -1 + log(e^1 + 4 e^0).
    e = torch.eye(3)
    expected = -1.0 + math.log(math.e + 4.0)
    assert float(nt_xent(e, e, tau=1.0)) == pytest.approx(expected, abs=1e-6)


def test_nt_xent_matches_loop_on_three_samples():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    for tau in (0.1, 0.5, 2.0):
        got = float(nt_xent(torch.tensor(a), torch.tensor(b), tau))
        assert got == pytest.approx(_nt_xent_loop(a, b, tau), rel=1e-9)


def test_nt_xent_is_symmetric_and_scale_invariant():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(5, 8, generator=g, dtype=torch.float64), torch.randn(5, 8, generator=g, dtype=torch.float64)
    assert torch.allclose(nt_xent(a, b), nt_xent(b, a))
    assert torch.allclose(nt_xent(a, b), nt_xent(3.0 * a, 0.5 * b))


def test_nt_xent_smallest_when_views_coincide():
    g = torch.Generator().manual_seed(2)
    a = torch.randn(3, 16, generator=g, dtype=torch.float64)
    same = nt_xent(a, a, 0.5)
    for _ in range(20):
        perturbed = a + 0.5 * torch.randn(a.shape, generator=g, dtype=torch.float64)
        assert same < nt_xent(a, perturbed, 0.5)
    # Swapping the partners (wrong positives) is much worse than a perturbation.
    assert same < nt_xent(a, a[[1, 2, 0]], 0.5) - 0.5


def test_nt_xent_stable_at_small_temperature():
    g = torch.Generator().manual_seed(3)
    a = torch.randn(4, 6, generator=g)
    assert torch.isfinite(nt_xent(a, a + 0.1, tau=1e-3))


# --------------------------------------------------------------------------- label module


def test_cluster_entropy_term_zero_for_uniform_sizes():
    one_hot = torch.eye(4).repeat(3, 1)  # 12 samples, 3 in each of 4 clusters
    assert float(cluster_entropy_term(one_hot)) == pytest.approx(0.0, abs=1e-7)
    assert float(cluster_entropy_term(torch.full((7, 4), 0.25))) == pytest.approx(0.0, abs=1e-7)


def test_cluster_entropy_term_log_k_for_collapse():
    collapsed = torch.zeros(10, 5)
    collapsed[:, 2] = 1.0
    assert float(cluster_entropy_term(collapsed)) == pytest.approx(math.log(5), abs=1e-6)


def test_label_contrastive_loss_is_column_nt_xent_plus_entropy():
    g = torch.Generator().manual_seed(4)
    qa = torch.softmax(torch.randn(9, 3, generator=g, dtype=torch.float64), dim=1)
    qb = torch.softmax(torch.randn(9, 3, generator=g, dtype=torch.float64), dim=1)
    expected = _nt_xent_loop(qa.T.numpy(), qb.T.numpy(), 1.0) + float(cluster_entropy_term(qa) + cluster_entropy_term(qb))
    assert float(label_contrastive_loss(qa, qb, 1.0)) == pytest.approx(expected, rel=1e-9)


# --------------------------------------------------------------------------- pseudo labels


def test_matching_recovers_known_permutation():
    rng = np.random.default_rng(0)
    predicted = rng.integers(0, 6, size=200)
    permutation = np.array([3, 5, 0, 1, 4, 2])
    pseudo = permutation[predicted]  # the same partition under other names
    np.testing.assert_array_equal(matched_pseudo_labels(pseudo, predicted, 6), predicted)
    # With 10% of the pseudo labels changed, the matching still undoes the permutation.
    noisy = pseudo.copy()
    flip = rng.random(200) < 0.1
    noisy[flip] = rng.integers(0, 6, size=flip.sum())
    matched = matched_pseudo_labels(noisy, predicted, 6)
    inverse = np.argsort(permutation)
    np.testing.assert_array_equal(matched, inverse[noisy])


def test_matching_keeps_labels_in_range_when_predictions_collapse():
    pseudo = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    predicted = np.array([2, 2, 2, 2, 2, 2, 0, 0])  # uses only two of four clusters
    matched = matched_pseudo_labels(pseudo, predicted, 4)
    assert set(matched.tolist()) == {0, 1, 2, 3}
    assert matched[6] == 0 and matched[0] == 2  # the matched clusters take the predictions' names


def test_min_max_scale():
    h = torch.tensor([[1.0, 5.0, 2.0], [3.0, 5.0, 0.0], [2.0, 5.0, 1.0]])
    expected = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.5]])
    assert torch.allclose(min_max_scale(h), expected)


# --------------------------------------------------------------------------- estimator


def _blobs(n_views: int, n: int = 90, k: int = 3, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n // k)
    centres = rng.normal(scale=4.0, size=(k, 5))
    latent = centres[y] + rng.normal(size=(n, 5))
    views = [(latent @ rng.normal(size=(5, d))).astype(np.float32) for d in (12, 7, 9)[:n_views]]
    return views, y


def _small(**kw) -> CMMC:
    params = dict(high_dim=8, hidden_dims=(32, 16), pretrain_epochs=5, contrastive_epochs=10,
                  finetune_epochs=5, lr=1e-3, batch_size=32, n_init=3, device="cpu", random_state=0)
    params.update(kw)
    return CMMC(3, **params)


@pytest.mark.parametrize("n_views", [2, 3])
def test_fit_predict_with_two_and_three_views(n_views):
    from mmc_teach.metrics import evaluate

    views, y = _blobs(n_views)
    model = _small(contrastive_epochs=30).fit(views)
    assert model.labels_.shape == (90,)
    np.testing.assert_array_equal(model.predict(views), model.labels_)
    proba = model.predict_proba(views)
    assert proba.shape == (90, 3) and np.allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert model.transform(views).shape == (90, 8)
    low = model.transform_views(views, level="low")
    assert len(low) == n_views and low[0].shape == (90, 16)
    phases = {h["phase"] for h in model.history_}
    assert phases == {"pretrain", "contrastive", "finetune"}
    assert evaluate(y, model.labels_)["acc"] > 0.9  # well separated blobs


def test_same_random_state_gives_identical_results():
    views, _ = _blobs(2)
    a, b = _small(random_state=7).fit(views), _small(random_state=7).fit(views)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.history_ == b.history_


def test_does_not_touch_global_torch_rng():
    views, _ = _blobs(2)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _small(contrastive_epochs=1, finetune_epochs=1).fit(views)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("switch", ["feature_contrast", "label_contrast", "finetune"])
def test_ablation_switches(switch):
    views, _ = _blobs(2)
    model = _small(**{switch: False}, contrastive_epochs=2, finetune_epochs=2).fit(views)
    last = [h for h in model.history_ if h["phase"] == "contrastive"][-1]
    if switch == "feature_contrast":
        assert last["feature_contrastive"] == 0.0 and last["label_contrastive"] != 0.0
    if switch == "label_contrast":
        assert last["label_contrastive"] == 0.0 and last["feature_contrastive"] != 0.0
    if switch == "finetune":
        assert not any(h["phase"] == "finetune" for h in model.history_)


def test_auto_epochs_count_gradient_steps():
    from mmc_teach.cmmc import AUTO_EPOCHS, resolve_epochs

    assert resolve_epochs(7, "pretrain", 100, 32) == 7
    # 5000 samples in batches of 256 are 20 batches: the minimum epochs already give the steps
    assert resolve_epochs("auto", "contrastive", 5000, 256) == AUTO_EPOCHS["contrastive"][0] == 30
    # 1400 samples are 6 batches an epoch: 600 steps need 100 epochs, 200 steps 34
    assert resolve_epochs("auto", "contrastive", 1400, 256) == 100
    assert resolve_epochs("auto", "pretrain", 1400, 256) == 34
    views, _ = _blobs(2)
    model = _small(pretrain_epochs="auto", contrastive_epochs="auto", finetune_epochs=2).fit(views)
    assert model.epochs_ == {"pretrain": 67, "contrastive": 200, "finetune": 2}  # 90 samples: 3 batches of 32
    assert sum(h["phase"] == "contrastive" for h in model.history_) == 200
    with pytest.raises(ValueError, match="'auto'"):
        _small(contrastive_epochs="many").fit(views)


def test_labels_before_finetune():
    views, _ = _blobs(2)
    tuned = _small().fit(views)
    untuned = _small(finetune=False).fit(views)
    # the same seed: the runs agree up to the end of the contrastive phase
    np.testing.assert_array_equal(tuned.labels_before_finetune_, untuned.labels_)
    np.testing.assert_array_equal(untuned.labels_before_finetune_, untuned.labels_)
    assert untuned.epochs_["finetune"] == 0


def test_bad_input():
    views, _ = _blobs(2)
    with pytest.raises(ValueError, match="at least 2"):
        _small().fit([views[0]])
    with pytest.raises(ValueError, match="different numbers of rows"):
        _small().fit([views[0], views[1][:-1]])
    bad = views[1].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match=r"views\[1\]: rows \[3\] are partly NaN"):  # all-NaN rows would be missing
        _small().fit([views[0], bad])
    with pytest.raises(ValueError, match="cluster head untrained"):
        _small(label_contrast=False, finetune=False).fit(views)
    with pytest.raises(ValueError, match="tau_feature"):
        _small(tau_feature=0.0).fit(views)
    with pytest.raises(NotFittedError):
        _small().predict(views)
    model = _small(contrastive_epochs=1, finetune_epochs=1).fit(views)
    with pytest.raises(ValueError, match="fitted on 2"):
        model.predict(views + [views[0]])
    with pytest.raises(ValueError, match=r"views\[1\] has 12 features"):
        model.predict([views[0], views[0]])


# --------------------------------------------------------------------------- chapter


def test_chapter_from_scratch_nt_xent_agrees_with_library():
    if not NOTEBOOK.exists():
        pytest.skip("chapter notebook not written yet")
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if c["cell_type"] == "code" and "def nt_xent_scratch" in "".join(c["source"]))
    namespace: dict = {"np": np, "torch": torch, "nt_xent": nt_xent}  # what the chapter imported before
    exec(source, namespace)
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    for tau in (0.2, 1.0):
        scratch = float(namespace["nt_xent_scratch"](a, b, tau))
        assert scratch == pytest.approx(float(nt_xent(torch.tensor(a), torch.tensor(b), tau)), rel=1e-9)


# --------------------------------------------------------------------------- lab


def test_contrastive_temperature_lab_matches_hand_values_and_library():
    from mmc_teach.labs import contrastive_temperature

    out = contrastive_temperature([0.9, 0.1, -0.5], tau=1.0)
    denominator = math.exp(0.9) + math.exp(0.1) + math.exp(-0.5)
    assert out["loss"] == pytest.approx(-0.9 + math.log(denominator), rel=1e-12)
    assert out["probabilities"].sum() == pytest.approx(1.0)
    # The gradient is (p - onehot) / tau: it sums to zero and equals a finite difference.
    out2 = contrastive_temperature([0.9, 0.1, -0.5], tau=0.3)
    assert out2["gradient"].sum() == pytest.approx(0.0, abs=1e-12)
    bumped = contrastive_temperature([0.9, 0.1 + 1e-6, -0.5], tau=0.3)["loss"]
    assert (bumped - out2["loss"]) / 1e-6 == pytest.approx(out2["gradient"][1], rel=1e-4)
    # A tiny temperature puts (almost) all the negatives' weight on the hardest negative.
    cold = contrastive_temperature([0.5, 0.4, -0.5, 0.0], tau=0.02)
    assert cold["gradient"][1] / cold["gradient"][1:].sum() > 0.99
    assert np.isfinite(contrastive_temperature([1.0, -1.0], tau=1e-4)["loss"])
    # One anchor's term of the library NT-Xent, rebuilt from its similarities.
    g = torch.Generator().manual_seed(6)
    a, b = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    h = torch.nn.functional.normalize(torch.cat([a, b]), dim=1)
    sims = (h @ h.T).numpy()
    terms = [contrastive_temperature(np.delete(sims[i], i), 0.5, positive=(i + 3) % 6 - (1 if (i + 3) % 6 > i else 0))["loss"]
             for i in range(6)]
    assert np.mean(terms) == pytest.approx(float(nt_xent(a, b, 0.5)), rel=1e-9)
    with pytest.raises(ValueError, match="tau"):
        contrastive_temperature([0.1, 0.2], tau=0.0)
    with pytest.raises(ValueError, match="positive"):
        contrastive_temperature([0.1, 0.2], positive=2)


# ------------------------------------------------------------------ incomplete data (all-NaN rows)
def _incomplete(seed=0):
    from mmc_teach.pairing import pairing_split
    from types import SimpleNamespace

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), 40)
    views = [rng.normal(size=(120, 8)).astype(np.float32) + 3 * labels[:, None],
             rng.normal(size=(120, 5)).astype(np.float32) - 3 * labels[:, None]]
    return pairing_split(SimpleNamespace(views=views, labels=labels), 0.5, random_state=seed)


INCOMPLETE = dict(hidden_dims=(16, 8), high_dim=8, pretrain_epochs=2, contrastive_epochs=3, finetune_epochs=3,
                  batch_size=32, n_init=2, device="cpu")


def test_incomplete_views_fit_and_predict():
    split = _incomplete()
    present = split.train_present
    model = CMMC(3, random_state=0, **INCOMPLETE).fit(split.train_views)
    assert model.labels_.shape == (len(present),)
    assert all(np.isfinite(v) for h in model.history_ for k, v in h.items() if k not in ("phase", "view"))
    # A sample's assignment is the mean of q^m over the modalities it has (by hand from the network).
    xs = [torch.as_tensor(np.where(p[:, None], X, 0).astype(np.float32)) for X, p in zip(split.train_views, present.T)]
    with torch.no_grad():
        qs = [torch.softmax(lm, dim=1).numpy() for lm in model.network_(xs, decode=False)[2]]
    by_hand = (qs[0] * present[:, :1] + qs[1] * present[:, 1:]) / present.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict_proba(split.train_views), by_hand, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(model.predict(split.train_views), model.labels_)
    # Per-modality features are NaN exactly where the modality is missing; test data work the same way.
    for features, p in zip(model.transform_views(split.test_views), split.test_present.T):
        assert np.isnan(features[~p]).all() and np.isfinite(features[p]).all()
    assert np.isfinite(model.transform(split.test_views)).all()


def test_incomplete_views_errors():
    split = _incomplete()
    views = [X.copy() for X in split.train_views]
    row = int(np.flatnonzero(split.train_present[:, 0])[0])
    views[0][row, 0] = np.nan
    with pytest.raises(ValueError, match=rf"views\[0\]: rows \[{row}\] are partly NaN"):
        CMMC(3, **INCOMPLETE).fit(views)
    views = [X.copy() for X in split.train_views]
    views[0][0] = np.nan
    views[1][0] = np.nan
    with pytest.raises(ValueError, match=r"samples \[0\] have no view"):
        CMMC(3, **INCOMPLETE).fit(views)
