"""Tests for mmc_teach.jecl: the equation functions by hand, the estimator on tiny data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mmc_teach.jecl import (
    JECL,
    align_text_clusters,
    combined_assignment,
    frequency_regularizer,
    jensen_shannon,
    joint_clustering_loss,
    joint_target_distribution,
)
from mmc_teach.losses import soft_assignment, target_distribution


def _rows(n=20, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.softmax(3 * torch.randn(n, k, generator=g), dim=1)


# --------------------------------------------------------------------------- JSD, Eq. (jecl-jsd)


def test_jsd_symmetric_zero_and_bounded():
    q, r = _rows(seed=0), _rows(seed=1)
    torch.testing.assert_close(jensen_shannon(q, r), jensen_shannon(r, q))
    torch.testing.assert_close(jensen_shannon(q, q), torch.zeros(len(q)), atol=1e-7, rtol=0)
    assert (jensen_shannon(q, r) >= 0).all() and (jensen_shannon(q, r) <= math.log(2) + 1e-6).all()


def test_jsd_hand_values_and_disjoint_support():
    q = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    r = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    # disjoint one-hot rows: exactly log 2 (finite, no NaN from 0 log 0)
    # [0.5, 0.5] vs [1, 0]: m = [0.75, 0.25]; 1/2 (0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25)) + 1/2 ln(1/0.75)
    hand = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2.0)) + 0.5 * math.log(1 / 0.75)
    torch.testing.assert_close(jensen_shannon(q, r), torch.tensor([math.log(2), hand]))


def test_jsd_gradient_is_finite_at_zero_probabilities():
    q = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    jensen_shannon(q, torch.tensor([[0.0, 0.5, 0.5]])).sum().backward()
    assert torch.isfinite(q.grad).all()


# --------------------------------------------------------------------------- regulariser, Eq. (jecl-reg)


def test_frequency_regularizer_uniform_zero_collapsed_log_k():
    k = 5
    assert float(frequency_regularizer(torch.full((7, k), 1 / k))) == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.zeros(7, k)
    collapsed[:, 2] = 1
    assert float(frequency_regularizer(collapsed)) == pytest.approx(math.log(k), rel=1e-6)
    # hand value: f = [0.75, 0.25], KL(f || [0.5, 0.5])
    f = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert float(frequency_regularizer(f)) == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-6)


# --------------------------------------------------------------------------- Hungarian alignment


def test_alignment_recovers_a_known_permutation():
    rng = np.random.RandomState(0)
    image = rng.randint(0, 6, size=300)
    perm = np.array([3, 5, 0, 1, 4, 2])  # image cluster j is text cluster perm[j]
    text = perm[image]
    noisy = text.copy()
    flip = rng.rand(300) < 0.15
    noisy[flip] = rng.randint(0, 6, size=flip.sum())
    order = align_text_clusters(image, noisy, 6)
    np.testing.assert_array_equal(order, perm)
    # text_centers[order] puts text centre perm[j] at row j
    centers = np.arange(6)[:, None] * np.ones((1, 2))
    np.testing.assert_array_equal(centers[order][:, 0], perm)


def test_alignment_fills_unused_clusters():
    order = align_text_clusters(np.array([0, 0, 1, 1]), np.array([2, 2, 2, 2]), 3)
    assert sorted(order.tolist()) == [0, 1, 2] and order[0] == 2


# --------------------------------------------------------------------------- joint target, Eq. (jecl-p)


def test_joint_target_hand_value_and_missing_text_uses_image_term_alone():
    q, r = _rows(8, 3, seed=2), _rows(8, 3, seed=3)
    has_text = torch.tensor([True] * 6 + [False] * 2)
    p = joint_target_distribution(q, r, has_text, alpha=0.3)
    torch.testing.assert_close(p.sum(1), torch.ones(8))
    f, g = q.sum(0), r[:6].sum(0)
    w = 0.3 * q[0] ** 2 / f + 0.7 * r[0] ** 2 / g
    torch.testing.assert_close(p[0], w / w.sum())
    # without text: DEC's target of the image assignments, whatever r says
    torch.testing.assert_close(p[6:], target_distribution(q)[6:])
    r_changed = r.clone()
    r_changed[6:] = torch.tensor([1.0, 0.0, 0.0])
    torch.testing.assert_close(joint_target_distribution(q, r_changed, has_text, 0.3), p)


def test_joint_target_alpha_one_is_dec_target():
    q, r = _rows(seed=4), _rows(seed=5)
    torch.testing.assert_close(joint_target_distribution(q, r, torch.ones(20, dtype=torch.bool), 1.0), target_distribution(q))


def test_kl_text_term_is_zero_without_text():
    q, r = _rows(seed=6), _rows(seed=7)
    p = joint_target_distribution(q, r, torch.ones(20, dtype=torch.bool))
    _, kl_r = joint_clustering_loss(p, q, r, torch.zeros(20, dtype=torch.bool))
    assert float(kl_r) == 0.0
    # half the samples with text: their KL summed, divided by the whole batch
    mask = torch.arange(20) < 10
    _, kl_half = joint_clustering_loss(p, q, r, mask)
    per_sample = (p * (p.log() - r.log())).sum(1)
    assert float(kl_half) == pytest.approx(float(per_sample[:10].sum() / 20), rel=1e-5)


def test_combined_assignment():
    q, r = _rows(seed=8), _rows(seed=9)
    mask = torch.arange(20) % 2 == 0
    c = combined_assignment(q, r, mask, 0.25)
    torch.testing.assert_close(c[mask], 0.25 * q[mask] + 0.75 * r[mask])
    torch.testing.assert_close(c[~mask], q[~mask])


# --------------------------------------------------------------------------- the estimator


def _blobs(n_per=30, k=3, seed=0):
    rng = np.random.RandomState(seed)
    y = np.repeat(np.arange(k), n_per)
    image = rng.randn(k, 12)[y] * 3 + rng.randn(len(y), 12)
    text = rng.randn(k, 6)[y] * 3 + rng.randn(len(y), 6)
    return [image.astype(np.float32), text.astype(np.float32)], y


FAST = dict(hidden_dims=(16, 4), pretrain_epochs=5, epochs=5, batch_size=32, lr=1e-3)


def test_fit_predict_shapes_and_quality():
    views, y = _blobs()
    model = JECL(3, random_state=0, **FAST).fit(views)
    from mmc_teach.metrics import clustering_accuracy

    assert model.labels_.shape == (90,)
    assert clustering_accuracy(y, model.labels_) > 0.9
    proba = model.predict_proba(views)
    np.testing.assert_allclose(proba.sum(1), 1, atol=1e-5)
    np.testing.assert_array_equal(model.predict(views), model.labels_)
    assert model.transform(views).shape == (90, 8)
    assert {"loss", "kl_image", "kl_text", "jsd", "reg", "label_change"} <= set(model.history_[0])


def test_determinism_same_seed_bitwise():
    views, _ = _blobs()
    a = JECL(3, random_state=3, **FAST).fit(views)
    b = JECL(3, random_state=3, **FAST).fit(views)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.image_centers_, b.image_centers_)


def test_fit_leaves_global_rng_alone():
    views, _ = _blobs()
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    JECL(3, random_state=0, **FAST).fit(views)
    assert torch.equal(torch.rand(1), expected)


def test_all_text_missing_reduces_to_image_model():
    views, y = _blobs()
    none = np.zeros(90, dtype=bool)
    a = JECL(3, random_state=0, **FAST).fit(views, text_mask=none)
    other_text = [views[0], np.random.RandomState(9).randn(90, 6).astype(np.float32)]
    b = JECL(3, random_state=0, **FAST).fit(other_text, text_mask=none)
    # the text never enters: same labels and losses whatever the text view holds
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert all(h["kl_text"] == 0 and h["jsd"] == 0 for h in a.history_)
    # predict_proba is the image assignment q alone
    q = a.predict_proba(views, text_mask=none)
    np.testing.assert_allclose(q.sum(1), 1, atol=1e-5)
    assert np.isnan(a.transform(views, text_mask=none)[:, 4:]).all()


def test_partly_missing_text_and_ablations_run():
    views, y = _blobs()
    mask = np.arange(90) % 3 != 0
    for kw in ({}, {"alignment": False}, {"regularizer": False}, {"alignment": False, "regularizer": False}, {"align_clusters": False}):
        model = JECL(3, random_state=0, **FAST, **kw).fit(views, text_mask=mask)
        assert model.labels_.shape == (90,)
    off = JECL(3, random_state=0, alignment=False, regularizer=False, **FAST).fit(views)
    assert all(np.isfinite(h["jsd"]) for h in off.history_)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda v: [v[0], v[1][:50]], "different numbers of rows"),
        (lambda v: [v[0]], "at least 2"),
        (lambda v: [v[0], v[1], v[1]], "at most 2"),
        (lambda v: [np.where((np.arange(90)[:, None] == 4) & (np.arange(12) == 0), np.nan, v[0]), v[1]],
         r"views\[0\] \(image\): rows \[4\] are partly NaN"),
        (lambda v: [np.where(np.arange(90)[:, None] == 4, np.nan, v[0]), np.where(np.arange(90)[:, None] == 4, np.nan, v[1])],
         r"samples \[4\] have no view at all"),
        (lambda v: [np.where(np.arange(90)[:, None] > 1, np.nan, v[0]), v[1]], "only 2 samples have an image"),
        (lambda v: [v[0], np.where((np.arange(90)[:, None] < 10) & (np.arange(6) == 2), np.nan, v[1])], "partly NaN"),
        (lambda v: [v[0], np.zeros_like(v[1])], "text_mask"),
    ],
)
def test_bad_views(make, match):
    views, _ = _blobs()
    with pytest.raises(ValueError, match=match):
        JECL(3, **FAST).fit(make(views))


def test_bad_arguments():
    views, _ = _blobs()
    with pytest.raises(TypeError, match="text_mask"):
        JECL(3, **FAST).fit(views, text_mask=np.ones(90))
    with pytest.raises(ValueError, match="text_mask"):
        JECL(3, **FAST).fit(views, text_mask=np.ones(80, bool))
    with pytest.raises(TypeError, match="keyword"):
        JECL(3, **FAST).fit(views, np.ones(90, bool))
    with pytest.raises(ValueError, match="fewer than n_clusters"):
        JECL(3, **FAST).fit(views, text_mask=np.arange(90) < 2)
    with pytest.raises(ValueError, match="alpha"):
        JECL(3, alpha=1.5, **FAST).fit(views)
    with pytest.raises(ValueError, match="beta"):
        JECL(3, beta=-1, **FAST).fit(views)
    with pytest.raises(ValueError, match="n_samples=90"):
        JECL(100, **FAST).fit(views)


def test_predict_before_fit_and_wrong_width():
    from sklearn.exceptions import NotFittedError

    views, _ = _blobs()
    with pytest.raises(NotFittedError):
        JECL(3).predict(views)
    model = JECL(3, random_state=0, **FAST).fit(views)
    with pytest.raises(ValueError, match="features"):
        model.predict([views[0][:, :5], views[1]])


def test_non_finite_loss_raises():
    from mmc_teach._base import NonFiniteLossError

    views, _ = _blobs()
    with pytest.raises(NonFiniteLossError, match="JECL"):
        JECL(3, random_state=0, **{**FAST, "lr": 1e30}).fit(views)


def test_clone_keeps_parameters():
    from sklearn.base import clone

    model = JECL(3, alpha=0.3, hidden_dims=(8, 2))
    assert clone(model).get_params() == model.get_params()


# --------------------------------------------------------------------------- from scratch (chapter) and the lab


def joint_target_from_scratch(q: np.ndarray, r: np.ndarray, has_text: np.ndarray, alpha: float) -> np.ndarray:
    """The chapter's NumPy version of Eq. (jecl-p)."""
    f = q.sum(axis=0)
    g = r[has_text].sum(axis=0)
    w = alpha * q**2 / f
    w[has_text] += (1 - alpha) * r[has_text] ** 2 / g
    return w / w.sum(axis=1, keepdims=True)


def jsd_from_scratch(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    m = (q + r) / 2
    return 0.5 * (q * np.log(q / m)).sum(1) + 0.5 * (r * np.log(r / m)).sum(1)


def test_from_scratch_versions_agree_with_library():
    q, r = _rows(30, 5, seed=10).double(), _rows(30, 5, seed=11).double()
    mask = np.arange(30) % 4 != 0
    for alpha, m in ((0.0, np.ones(30, bool)), (0.3, mask), (0.5, mask), (1.0, mask)):
        np.testing.assert_allclose(
            joint_target_distribution(q, r, torch.from_numpy(m), alpha).numpy(),
            joint_target_from_scratch(q.numpy(), r.numpy(), m, alpha), rtol=1e-10)
    np.testing.assert_allclose(jensen_shannon(q, r).numpy(), jsd_from_scratch(q.numpy(), r.numpy()), rtol=1e-10)


def test_joint_target_lab():
    from mmc_teach.labs import joint_target_demo

    q = np.array([[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.2, 0.2]])
    r = np.array([[0.1, 0.8, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    image_only = joint_target_demo(q, r, alpha=1.0)
    np.testing.assert_allclose(image_only["p"], target_distribution(torch.from_numpy(q)).numpy(), rtol=1e-10)
    assert image_only["follows_image"].all()
    assert joint_target_demo(q, r, alpha=0.0)["follows_text"].all()
    no_text = joint_target_demo(q, r, alpha=0.0, has_text=[True, True, False])
    assert no_text["follows_image"][2] and not no_text["follows_text"][2]
    np.testing.assert_allclose(no_text["combined"][2], q[2])
    with pytest.raises(ValueError, match="alpha"):
        joint_target_demo(q, r, alpha=2.0)
    with pytest.raises(ValueError, match="same shape"):
        joint_target_demo(q, r[:2])


def test_shared_autoencoders_are_copied_not_modified():
    from mmc_teach.nn import MLPAutoencoder

    views, _ = _blobs()
    ae_i, ae_t = MLPAutoencoder(12, (16, 4)), MLPAutoencoder(6, (16, 4))
    before = [p.clone() for p in ae_i.parameters()]
    model = JECL(3, random_state=0, **{**FAST, "pretrain_epochs": 0}, autoencoders=(ae_i, ae_t)).fit(views)
    assert model.labels_.shape == (90,)
    assert all(torch.equal(a, b) for a, b in zip(before, ae_i.parameters()))
    with pytest.raises(ValueError, match="text autoencoder expects 6"):
        JECL(3, **FAST, autoencoders=(ae_i, ae_t)).fit([views[0], views[0]])


def test_nan_text_rows_are_missing_captions():
    """The missing-view convention of mmc_teach.pairing: an all-NaN text row is a missing caption,
    the same model as zeros in those rows with text_mask False, in fit and in predict."""
    views, _ = _blobs()
    mask = np.arange(90) % 4 != 0
    nan_text = [views[0], np.where(mask[:, None], views[1], np.nan)]
    by_nan = JECL(3, random_state=0, **FAST).fit(nan_text)
    by_mask = JECL(3, random_state=0, **FAST).fit([views[0], np.where(mask[:, None], views[1], 0.0)], text_mask=mask)
    np.testing.assert_array_equal(by_nan.labels_, by_mask.labels_)
    np.testing.assert_array_equal(by_nan.predict(nan_text), by_mask.predict(views, text_mask=mask))
    # A text_mask that agrees with the NaN rows is accepted; one that contradicts them is not.
    JECL(3, random_state=0, **FAST).fit(nan_text, text_mask=mask & (np.arange(90) > 5))
    with pytest.raises(ValueError, match=r"text_mask says samples \[0, 4, 8, 12, 16\] ... have text"):
        JECL(3, **FAST).fit(nan_text, text_mask=np.ones(90, bool))
    # No caption at all, marked by NaN: the text never enters (as with text_mask all False).
    # Defined, but rarely meant: a warning says so (the explicit text_mask is the quiet way).
    with pytest.warns(UserWarning, match=r"views\[1\] \(text\) has no observed row"):
        none = JECL(3, random_state=0, **FAST).fit([views[0], np.full_like(views[1], np.nan)])
    assert all(h["kl_text"] == 0 for h in none.history_)


def test_nan_image_rows_are_missing_images():
    """The symmetric case of a missing caption: a sample without an image is clustered by its text,
    its image embedding is NaN, and the paired samples still align the two views."""
    views, y = _blobs()
    has_image = np.arange(90) % 5 != 0
    nan_image = [np.where(has_image[:, None], views[0], np.nan), views[1]]
    model = JECL(3, random_state=0, **FAST).fit(nan_image)
    assert model.labels_.shape == (90,)
    np.testing.assert_array_equal(model.predict(nan_image), model.labels_)
    z = model.transform(nan_image)
    assert np.isnan(z[~has_image, :4]).all() and np.isfinite(z[has_image]).all() and np.isfinite(z[:, 4:]).all()
    # A sample without an image takes its text assignment r alone (Eq. jecl-assign).
    proba = model.predict_proba(nan_image)
    text_only = torch.as_tensor(views[1][~has_image], dtype=torch.float32)
    r = soft_assignment(model.text_module_.encode(text_only), model.text_mu_).detach().numpy()
    np.testing.assert_allclose(proba[~has_image], r, rtol=1e-5, atol=1e-6)
    from mmc_teach.metrics import clustering_accuracy

    assert clustering_accuracy(y, model.labels_) > 0.9
    assert all(np.isfinite(h["loss"]) for h in model.history_)


def test_missing_images_in_the_equation_functions():
    torch.manual_seed(0)
    q, r = torch.softmax(torch.randn(6, 3), 1), torch.softmax(torch.randn(6, 3), 1)
    has_text = torch.tensor([True, True, True, True, False, True])
    everyone = torch.ones(6, dtype=torch.bool)
    # has_image all True is the paired model exactly.
    assert torch.equal(joint_target_distribution(q, r, has_text, 0.5, everyone), joint_target_distribution(q, r, has_text, 0.5))
    assert torch.equal(combined_assignment(q, r, has_text, 0.5, everyone), combined_assignment(q, r, has_text, 0.5))
    has_image = torch.tensor([True, False, True, True, True, False])
    p = joint_target_distribution(q, r, has_text, 0.3, has_image)
    # Without an image: the text term of Eq. (jecl-p) alone, its g_j over the samples with text;
    # with only an image: the image term alone, its f_j over the samples with an image.
    text_term = r.pow(2) / (r * has_text[:, None]).sum(0)
    image_term = q.pow(2) / (q * has_image[:, None]).sum(0)
    for i in (1, 5):
        torch.testing.assert_close(p[i], text_term[i] / text_term[i].sum())
    torch.testing.assert_close(p[4], image_term[4] / image_term[4].sum())
    both = 0.3 * image_term[0] + 0.7 * text_term[0]
    torch.testing.assert_close(p[0], both / both.sum())
    c = combined_assignment(q, r, has_text, 0.3, has_image)
    torch.testing.assert_close(c[1], r[1]), torch.testing.assert_close(c[4], q[4])
    torch.testing.assert_close(c[0], 0.3 * q[0] + 0.7 * r[0])
    kl_q, _ = joint_clustering_loss(p, q, r, has_text, has_image)
    torch.testing.assert_close(kl_q, (p[has_image] * (p[has_image] / q[has_image]).log()).sum() / 6)
