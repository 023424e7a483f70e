"""The shared plumbing: input checks, device resolution, seeding, the autoencoder."""

import numpy as np
import pytest
import torch

from mmc_teach._base import (
    NonFiniteLossError,
    check_array,
    check_finite_losses,
    check_n_clusters,
    check_positive,
    check_views,
    get_device,
    minibatches,
    seeded,
)
from mmc_teach.nn import MLPAutoencoder, pretrain_autoencoder
from mmc_teach.utils import set_seed


@pytest.mark.parametrize(
    "X, message",
    [
        (np.array([1.0, 2.0]), "2-D"),
        (np.zeros((2, 2, 2)), "2-D"),
        (np.zeros((0, 3)), "empty"),
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[1.0, np.inf]]), "infinity"),
    ],
)
def test_check_array_rejects_bad_arrays_naming_the_argument(X, message):
    with pytest.raises(ValueError, match=message) as info:
        check_array(X, "X_image")
    assert "X_image" in str(info.value)


def test_check_array_rejects_strings_with_type_error():
    with pytest.raises(TypeError, match="numeric"):
        check_array(np.array([["a", "b"]]), "X")


def test_check_array_nan_rows_only_when_whole_rows_missing():
    X = np.array([[1.0, 2.0], [np.nan, np.nan]])
    assert check_array(X, allow_nan_rows=True).shape == (2, 2)
    with pytest.raises(ValueError, match="partly NaN"):
        check_array(np.array([[1.0, np.nan]]), allow_nan_rows=True)


def test_check_array_accepts_torch_and_returns_float32():
    out = check_array(torch.ones(3, 2, dtype=torch.float64))
    assert out.dtype == np.float32 and out.shape == (3, 2)


def test_check_views_messages():
    with pytest.raises(ValueError, match="at least 2"):
        check_views([np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"different numbers of rows: \[3, 4\]"):
        check_views([np.ones((3, 2)), np.ones((4, 2))])
    with pytest.raises(TypeError, match="list of 2-D arrays"):
        check_views(np.ones((3, 2)))
    assert len(check_views([np.ones((3, 2)), np.ones((4, 5))], paired=False)) == 2


def test_check_n_clusters_and_positive():
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=5"):
        check_n_clusters(5, 3)
    with pytest.raises(ValueError, match="n_clusters=0"):
        check_n_clusters(0, 3)
    with pytest.raises(TypeError):
        check_n_clusters(2.5, 3)
    with pytest.raises(ValueError, match="epochs=-1"):
        check_positive("epochs", -1, integer=True)
    with pytest.raises(ValueError, match="lr=0"):
        check_positive("lr", 0)
    assert check_positive("epochs", 0, integer=True, allow_zero=True) == 0


def test_get_device():
    assert get_device(None).type in {"cpu", "cuda", "mps"}
    assert get_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device='tpu9'"):
        get_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            get_device("cuda")


def test_seeded_restores_global_state_and_repeats():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    with seeded(7) as gen:
        a = torch.rand(3), torch.randperm(5, generator=gen)
    with seeded(7) as gen:
        b = torch.rand(3), torch.randperm(5, generator=gen)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.rand(1), expected_next)  # the caller's stream was not advanced


def test_minibatches_cover_every_index_once():
    idx = torch.cat(list(minibatches(10, 3, torch.Generator().manual_seed(0))))
    assert sorted(idx.tolist()) == list(range(10))


def test_non_finite_loss_names_term_and_epoch():
    with pytest.raises(NonFiniteLossError, match="'cycle' became nan at epoch 4"):
        check_finite_losses({"reconstruction": 1.0, "cycle": float("nan")}, 4, "DM2C")


def test_autoencoder_shapes_and_pretraining_lowers_loss():
    with seeded(0) as gen:
        ae = MLPAutoencoder(8, [16, 2])
        X = torch.randn(64, 2) @ torch.randn(2, 8)  # rank 2: a 2-d code can reconstruct it
        history = pretrain_autoencoder(ae, X, epochs=60, batch_size=16, lr=1e-2, generator=gen, noise=0.0)
    z, x_hat = ae(X)
    assert z.shape == (64, 2) and x_hat.shape == (64, 8)
    assert history[-1]["reconstruction"] < 0.5 * history[0]["reconstruction"]


def test_set_seed_repeats_global_draws():
    set_seed(3)
    a = np.random.rand(2), torch.rand(2)
    set_seed(3)
    b = np.random.rand(2), torch.rand(2)
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])


# --- progress bars -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["DEC", "IDEC", "JECL", "DM2C", "CMMC"])
def test_deep_estimators_show_progress_by_default(name):
    # A fit of minutes should say that it runs; the fast KMeans stays quiet.
    import mmc_teach

    assert getattr(mmc_teach, name)(3).get_params()["verbose"] is True
    assert mmc_teach.KMeans().get_params()["verbose"] is False


def test_a_default_fit_draws_bars_unless_switched_off(monkeypatch, capsys):
    from mmc_teach import DM2C

    rng = np.random.RandomState(0)
    views = [rng.randn(40, 6).astype(np.float32), rng.randn(30, 4).astype(np.float32)]
    fast = dict(hidden_dims=(8, 4), pretrain_epochs=2, epochs=2, batch_size=16, n_init=1, generator_hidden=8,
                critic_hidden=8, device="cpu", random_state=0)
    monkeypatch.setenv("MMC_TEACH_PROGRESS", "1")
    DM2C(2, **fast).fit(views)
    drawn = capsys.readouterr()
    assert "pretrain a" in drawn.err and "DM2C" in drawn.err and drawn.out == ""
    DM2C(2, verbose=False, **fast).fit(views)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("MMC_TEACH_PROGRESS", "0")  # the test session's setting (conftest.py)
    DM2C(2, **fast).fit(views)
    assert capsys.readouterr().err == ""
