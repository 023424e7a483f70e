"""DM2C: the mixed-modal split, the loss terms of the chapter's equations, the estimator, the lab."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from mmc_teach._base import NonFiniteLossError
from mmc_teach.pairing import mixed_modal_split
from mmc_teach.dm2c import (DM2C, clip_weights, critic_loss, cycle_loss, cycle_reconstruction_loss, gradient_penalty,
                            make_critic)
from mmc_teach.labs import critic_landscape

torch.set_num_threads(1)

FAST = dict(hidden_dims=(8, 4), pretrain_epochs=2, epochs=2, batch_size=16, n_init=2,
            generator_hidden=8, critic_hidden=8, device="cpu")


def _paired(n=90, k=3, seed=0):
    rng = np.random.RandomState(seed)
    labels = np.repeat(np.arange(k), n // k)
    views = [rng.randn(n, 5).astype(np.float32) + labels[:, None], rng.randn(n, 3).astype(np.float32) - labels[:, None]]
    return SimpleNamespace(views=views, labels=labels, view_names=["img", "txt"])


def _mixed(seed=0):
    """Two modalities with DIFFERENT samples: 40 x 6 and 30 x 4, two well-separated groups each."""
    rng = np.random.RandomState(seed)
    ya, yb = np.repeat([0, 1], 20), np.repeat([0, 1], 15)
    Xa = rng.randn(40, 6).astype(np.float32) + 3 * ya[:, None]
    Xb = rng.randn(30, 4).astype(np.float32) - 3 * yb[:, None]
    return Xa, Xb


# --------------------------------------------------------------------------- the split


def test_split_keeps_exactly_one_modality_per_pair():
    ds = _paired()
    s = mixed_modal_split(ds, random_state=3)
    kept = np.concatenate([*s.train_pairs, *s.test_pairs])
    assert np.array_equal(np.sort(kept), np.arange(90))  # every pair exactly once, in one modality
    for views, labels, pairs in ((s.train_views, s.train_labels, s.train_pairs), (s.test_views, s.test_labels, s.test_pairs)):
        assert not set(pairs[0]) & set(pairs[1])
        for m in range(2):
            assert np.array_equal(views[m], ds.views[m][pairs[m]])
            assert np.array_equal(labels[m], ds.labels[pairs[m]])
    assert s.view_names == ["img", "txt"] and s.n_clusters == 3


def test_split_is_stratified_and_reproducible():
    ds = _paired(n=300)
    s = mixed_modal_split(ds, test_size=1 / 3)
    test_counts = np.bincount(np.concatenate(s.test_labels), minlength=3)
    assert np.array_equal(test_counts, [33, 34, 33]) or np.abs(test_counts - 100 / 3).max() <= 1
    again = mixed_modal_split(ds, test_size=1 / 3)
    for a, b in zip(s.train_pairs + s.test_pairs, again.train_pairs + again.test_pairs):
        assert np.array_equal(a, b)
    other = mixed_modal_split(ds, random_state=1)
    assert not np.array_equal(other.train_pairs[0], s.train_pairs[0])
    # keep_first_prob=1 keeps every pair as its first modality
    first = mixed_modal_split(ds, keep_first_prob=1.0)
    assert len(first.train_pairs[1]) == 0 and len(first.train_pairs[0]) == 200


@pytest.mark.parametrize(
    "kwargs, match",
    [({"test_size": 0.0}, "test_size"), ({"test_size": 1.5}, "test_size"), ({"keep_first_prob": -0.1}, "keep_first_prob")],
)
def test_split_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mixed_modal_split(_paired(), **kwargs)


def test_split_needs_two_views():
    ds = _paired()
    ds.views = ds.views + [ds.views[0]]
    with pytest.raises(ValueError, match="exactly 2"):
        mixed_modal_split(ds)


# --------------------------------------------------------------------------- loss terms


def test_gradient_penalty_is_computed_on_interpolates():
    seen = []

    class Recorder(nn.Module):
        def forward(self, x):
            seen.append(x.detach().clone())
            return x.sum(dim=1, keepdim=True)

    real, fake = torch.randn(8, 3), torch.randn(8, 3)
    gradient_penalty(Recorder(), real, fake, torch.Generator().manual_seed(0))
    (x,) = seen
    eps = (x - fake) / (real - fake)  # one eps per row, the same in every coordinate
    assert torch.allclose(eps, eps[:, :1].expand_as(eps), atol=1e-4)
    assert ((eps >= 0) & (eps <= 1)).all()
    assert not torch.allclose(x, real) and not torch.allclose(x, fake)


def test_gradient_penalty_of_linear_critics():
    real, fake = torch.randn(16, 5), torch.randn(16, 5)
    critic = nn.Linear(5, 1)
    with torch.no_grad():
        critic.weight /= critic.weight.norm()  # gradient norm 1 everywhere: 1-Lipschitz
    assert float(gradient_penalty(critic, real, fake).detach()) < 1e-10
    with torch.no_grad():
        critic.weight *= 3.0  # gradient norm 3 everywhere: (3 - 1)^2 = 4
    assert float(gradient_penalty(critic, real, fake).detach()) == pytest.approx(4.0, rel=1e-5)


def test_clip_weights_keeps_every_weight_in_range():
    critic = make_critic(4, 16)
    with torch.no_grad():
        for p in critic.parameters():
            p.normal_(0, 1)
    inside = [p.detach().clone() for p in critic.parameters()]
    clip_weights(critic, 0.05)
    for p, before in zip(critic.parameters(), inside):
        assert p.abs().max() <= 0.05
        small = before.abs() < 0.05
        assert torch.equal(p[small], before[small])  # weights inside the box are untouched


def test_cycle_loss_is_zero_for_an_inverse_and_hand_value():
    torch.manual_seed(0)
    g_ab = nn.Linear(3, 3)
    g_ba = nn.Linear(3, 3)
    with torch.no_grad():
        g_ab.weight.copy_(torch.tensor([[2.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 3.0]]))
        inverse = torch.linalg.inv(g_ab.weight)
        g_ba.weight.copy_(inverse)
        g_ba.bias.copy_(-inverse @ g_ab.bias)
    z = torch.randn(10, 3)
    with torch.no_grad():
        assert float(cycle_loss(z, g_ab, g_ba)) < 1e-5
    # identity forward, "+1" backward: every coordinate is off by exactly 1
    assert float(cycle_loss(z, lambda t: t, lambda t: t + 1)) == pytest.approx(1.0)


def test_cycle_reconstruction_loss_decodes_the_round_trip():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    z = torch.tensor([[0.5], [-1.0]])
    double, half = (lambda t: 2 * t), (lambda t: t / 2)
    decode = lambda t: torch.cat([t, t + 1], dim=1)  # noqa: E731
    # A round trip that is the identity leaves only the decoder's own error: mean of
    # ((1-0.5)^2, (2-1.5)^2, (3+1)^2, (4-0)^2) = 8.125.
    assert cycle_reconstruction_loss(x, z, decode, double, half).item() == pytest.approx(8.125)
    # A round trip that doubles the code changes what is decoded, and the loss sees it.
    assert cycle_reconstruction_loss(x, z, decode, double, lambda t: t).item() == pytest.approx(
        torch.nn.functional.mse_loss(decode(2 * z), x).item())


def test_critic_loss_hand_value():
    real, fake = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    loss, w = critic_loss(lambda x: x.sum(dim=1, keepdim=True), real, fake)
    assert float(w) == pytest.approx(5.0 - 1.0) and float(loss) == pytest.approx(-4.0)


# --------------------------------------------------------------------------- the estimator


@pytest.mark.parametrize("critic", ["wgan-clip", "wgan-gp"])
def test_fit_predict_shapes_and_history(critic):
    Xa, Xb = _mixed()
    model = DM2C(2, critic=critic, random_state=0, **FAST).fit([Xa, Xb])
    # One multi-view convention: labels_ holds X[0]'s rows, then X[1]'s.
    assert model.labels_.shape == (70,) and model.n_samples_views_ == [40, 30]
    pred = model.predict([Xa[:5], Xb[:7]])
    assert pred.shape == (12,)
    np.testing.assert_array_equal(pred[:5], model.labels_[:5])
    np.testing.assert_array_equal(pred[5:], model.labels_[40:47])
    assert model.transform([Xa, Xb]).shape == (70, 4)
    assert len(model.history_) == 2
    for record in model.history_:
        for key in ("reconstruction", "cycle", "critic", "generator", "wasserstein"):
            assert np.isfinite(record[key])
    if critic == "wgan-clip":
        assert all(float(p.detach().abs().max()) <= 0.05 + 1e-7 for p in model.critics_.parameters())
    else:
        assert "gradient_penalty" in model.history_[0]


def test_same_random_state_same_result():
    Xa, Xb = _mixed()
    a = DM2C(2, random_state=7, **FAST).fit([Xa, Xb])
    b = DM2C(2, random_state=7, **FAST).fit([Xa, Xb])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.history_ == b.history_
    state = torch.random.get_rng_state()
    DM2C(2, random_state=7, **FAST).fit([Xa, Xb])
    assert torch.equal(state, torch.random.get_rng_state())  # the global torch RNG is untouched


def test_ablation_switches():
    Xa, Xb = _mixed()
    no_cycle = DM2C(2, cycle=False, random_state=0, **FAST).fit([Xa, Xb])
    assert all(r["cycle"] == 0.0 for r in no_cycle.history_)
    no_critic = DM2C(2, adversarial=False, random_state=0, **FAST).fit([Xa, Xb])
    assert not any({"critic", "wasserstein", "generator"} & set(r) for r in no_critic.history_)


@pytest.mark.parametrize("n_critic, n_generator, critic_updates, generator_updates",
                         [(5, 1, 6, 2), (1, 5, 2, 6), (1, 2, 4, 6)])
def test_update_schedule(monkeypatch, n_critic, n_generator, critic_updates, generator_updates):
    # 40 and 30 samples in batches of 16: 3 steps per epoch, 2 epochs; each epoch counts from 0.
    Xa, Xb = _mixed()
    calls = {"critic": 0, "generator": 0}
    for name, key in (("_critic_step", "critic"), ("_generator_step", "generator")):
        original = getattr(DM2C, name)

        def counted(self, *args, _original=original, _key=key):
            calls[_key] += 1
            return _original(self, *args)

        monkeypatch.setattr(DM2C, name, counted)
    DM2C(2, n_critic=n_critic, n_generator=n_generator, random_state=0, **FAST).fit([Xa, Xb])
    assert calls == {"critic": critic_updates, "generator": generator_updates}


def test_cycle_reconstruction_term_is_trained_and_switched_off_with_the_cycle():
    Xa, Xb = _mixed()
    plain = DM2C(2, random_state=0, **FAST).fit([Xa, Xb])
    with_term = DM2C(2, lambda_cyc_rec=1.0, random_state=0, **FAST).fit([Xa, Xb])
    assert "cycle_reconstruction" not in plain.history_[0]
    assert all(np.isfinite(r["cycle_reconstruction"]) and r["cycle_reconstruction"] > 0 for r in with_term.history_)
    assert with_term.history_[-1]["generator"] != plain.history_[-1]["generator"]
    no_cycle = DM2C(2, lambda_cyc_rec=1.0, cycle=False, random_state=0, **FAST).fit([Xa, Xb])
    assert "cycle_reconstruction" not in no_cycle.history_[0]


def test_batch_remainder_of_one_sample():
    # n = 1 (mod batch_size) in both modalities: batch norm never sees a batch of one sample.
    rng = np.random.RandomState(0)
    Xa, Xb = rng.randn(33, 6).astype(np.float32), rng.randn(17, 4).astype(np.float32)
    model = DM2C(2, random_state=0, **FAST).fit([Xa, Xb])
    assert model.labels_.shape == (50,) and np.isfinite(model.history_[-1]["reconstruction"])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda Xa, Xb: [Xa], "at least 2"),
        (lambda Xa, Xb: [Xa, Xb[:0]], "empty"),
        (lambda Xa, Xb: [Xa, np.where(np.arange(30)[:, None] == 3, np.nan, Xb)], "NaN"),
        (lambda Xa, Xb: [Xa, Xb, Xb], "at most 2"),
        (lambda Xa, Xb: [Xa, np.full_like(Xb, np.nan)], "NaN"),
        (lambda Xa, Xb: [Xa, Xb[:2]], r"X\[1\] has 2 samples, fewer than n_clusters=3"),
    ],
)
def test_bad_input(make, match):
    Xa, Xb = _mixed()
    with pytest.raises(ValueError, match=match):
        DM2C(3 if "n_clusters" in match else 2, **FAST).fit(make(Xa, Xb))


def test_all_nan_modality_with_pairs_is_named():
    from mmc_teach.pairing import pairing_split

    views = pairing_split(_paired(), 0.5, random_state=0).train_views
    with pytest.raises(ValueError, match=r"X\[1\] has no observed row"):
        DM2C(3, **FAST).fit([views[0], np.full_like(views[1], np.nan)], paired=True)


@pytest.mark.parametrize("params, match", [({"unify": "c"}, "unify"), ({"critic": "gan"}, "critic"), ({"n_critic": 0}, "n_critic"),
                                           ({"n_generator": 0}, "n_generator"), ({"lambda_cyc_rec": -1.0}, "lambda_cyc_rec")])
def test_bad_parameters(params, match):
    Xa, Xb = _mixed()
    with pytest.raises(ValueError, match=match):
        DM2C(2, **{**FAST, **params}).fit([Xa, Xb])


def test_predict_before_fit_and_wrong_width():
    Xa, Xb = _mixed()
    with pytest.raises(NotFittedError):
        DM2C(2).predict([Xa, Xb])
    model = DM2C(2, random_state=0, **FAST).fit([Xa, Xb])
    with pytest.raises(ValueError, match="features"):
        model.predict([Xa, Xa])


def test_non_finite_loss_names_term_and_epoch():
    Xa, Xb = _mixed()
    huge = Xa * 1e30  # finite input whose squared reconstruction error overflows
    with pytest.raises(NonFiniteLossError, match=r"'reconstruction'.*epoch 1"):
        DM2C(2, **{**FAST, "pretrain_epochs": 0}).fit([huge, Xb])


# --------------------------------------------------------------------------- the lab


def test_critic_landscape_lab():
    rng = np.random.RandomState(0)
    real, fake = rng.randn(50, 2) * 0.3, rng.randn(60, 2) * 0.3 + [2.0, 0.0]
    clip = critic_landscape(real, fake, "wgan-clip", clip_value=0.05, steps=60, grid_size=12)
    assert clip["values"].shape == (12, 12) == clip["xx"].shape == clip["grad_norm"].shape
    assert clip["max_abs_weight"] <= 0.05 + 1e-7 and clip["wasserstein"] > 0
    gp = critic_landscape(real, fake, "wgan-gp", gp_weight=10.0, steps=150, grid_size=12)
    # the penalty pulls the gradient norm towards 1 between the clouds; clipping keeps it far below
    assert 0.5 < np.median(gp["grad_norm"]) < 1.5 and clip["grad_norm"].max() < 0.5
    again = critic_landscape(real, fake, "wgan-clip", clip_value=0.05, steps=60, grid_size=12)
    assert np.array_equal(again["values"], clip["values"])
    with pytest.raises(ValueError, match="shape"):
        critic_landscape(real[:, :1], fake)
    with pytest.raises(ValueError, match="critic"):
        critic_landscape(real, fake, "gan")


@pytest.mark.parametrize("space", ["a", "b"])
def test_unify_by_hand_as_in_the_chapter_agrees_with_transform(space):
    # Chapter 7 writes Eq. (dm2c-unify) by hand from the fitted modules; `unify` only acts after training.
    Xa, Xb = (V.astype(np.float32) for V in _mixed())
    model = DM2C(2, unify=space, random_state=0, **FAST).fit([Xa, Xb])
    with torch.no_grad():
        z_a, z_b = (model.autoencoders_[m].encode(torch.from_numpy(V)) for m, V in zip("ab", (Xa, Xb)))
        by_hand = torch.cat([z_a, model.generators_["ba"](z_b)] if space == "a" else [model.generators_["ab"](z_a), z_b])
    np.testing.assert_allclose(by_hand.numpy(), model.transform([Xa, Xb]), atol=1e-5)
    other = DM2C(2, unify="b" if space == "a" else "a", random_state=0, **FAST).fit([Xa, Xb])
    assert other.history_ == model.history_  # the two choices train identically


# --------------------------------------------------------------------------- pairs (book/09_pairing.ipynb)


def test_pair_translation_loss_is_zero_for_matched_translators_and_hand_value():
    from mmc_teach.dm2c import pair_translation_loss

    za, zb = torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, 0.0]])
    assert pair_translation_loss(za, zb, lambda z: z + torch.tensor([2.0, -2.0]), lambda z: z - torch.tensor([2.0, -2.0])) == 0
    # |za - zb| = (2, 2) both ways: mean 2, twice.
    assert float(pair_translation_loss(za, zb, lambda z: z, lambda z: z)) == pytest.approx(4.0)


def test_without_pairs_the_paired_input_is_dm2c_exactly():
    from mmc_teach.pairing import pairing_split

    data = _paired()
    mixed = mixed_modal_split(data, random_state=0)
    split = pairing_split(data, 0.0, random_state=0)
    unpaired = DM2C(3, random_state=0, **FAST).fit(mixed.train_views)
    paired = DM2C(3, random_state=0, **FAST).fit(split.train_views, paired=True)
    assert paired.n_pairs_ == 0 and "pair_translation" not in paired.history_[0]
    by_row = np.empty(len(split.train_rows), dtype=int)
    where = {row: i for i, row in enumerate(split.train_rows)}
    for rows, labels in zip(mixed.train_pairs, np.split(unpaired.labels_, [len(mixed.train_views[0])])):
        by_row[[where[r] for r in rows]] = labels
    np.testing.assert_array_equal(paired.labels_, by_row)


def test_pairs_train_the_translation_and_label_every_sample():
    from mmc_teach.pairing import pairing_split

    split = pairing_split(_paired(), 0.5, random_state=0)
    model = DM2C(3, random_state=0, **FAST).fit(split.train_views, paired=True)
    assert model.n_pairs_ == int(split.train_present.all(axis=1).sum()) > 0
    assert all(row["pair_translation"] >= 0 for row in model.history_)
    assert model.labels_.shape == (len(split.train_labels),)
    np.testing.assert_array_equal(model.predict(split.train_views, paired=True), model.labels_)
    codes = model.transform(split.test_views, paired=True)
    assert codes.shape == (len(split.test_labels), 4) and np.isfinite(codes).all()
    off = DM2C(3, random_state=0, lambda_pair=0.0, **FAST).fit(split.train_views, paired=True)
    assert "pair_translation" not in off.history_[0]
    # Every sample complete: one label per sample, all of them pairs.
    full = pairing_split(_paired(), 1.0, random_state=0)
    assert DM2C(3, random_state=0, **FAST).fit(full.train_views, paired=True).n_pairs_ == len(full.train_labels)


@pytest.mark.parametrize("make, match", [
    (lambda V: [V[0], V[1]], "paired=True"),                                   # NaN rows without paired=True
    (lambda V: [V[0][:-1], V[1]], "one row per sample"),                        # lengths differ
    (lambda V: [np.where(np.isnan(V[1]).all(1)[:, None], np.nan, V[0]), V[1]], "no view at all"),
    (lambda V: [np.where(np.arange(V[0].shape[1]) == 0, np.nan, V[0]), V[1]], "partly NaN"),
])
def test_bad_paired_input(make, match):
    from mmc_teach.pairing import pairing_split

    views = make(pairing_split(_paired(), 0.5, random_state=0).train_views)
    paired = match != "paired=True"
    with pytest.raises(ValueError, match=match):
        DM2C(3, **FAST).fit(views, paired=paired)


def test_paired_flag_must_be_a_bool():
    Xa, Xb = _mixed()
    with pytest.raises(TypeError, match="paired"):
        DM2C(2, **FAST).fit([Xa, Xb], paired="yes")
