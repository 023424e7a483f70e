"""The one training loop (mmc_teach.training), chunked inference and batch remainders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmc_teach import CMMC, DEC, DM2C, IDEC, JECL
from mmc_teach._base import NonFiniteLossError, minibatches, n_minibatches
from mmc_teach.nn import MLPAutoencoder, apply_in_chunks, encode_in_batches
from mmc_teach.training import LossMeter, SelfTrainingTarget, StopTraining, train_epochs


def test_loss_meter_weights_each_term_by_its_own_steps():
    meter = LossMeter()
    meter.add({"critic": torch.tensor(1.0), "generator": torch.tensor(4.0)}, weight=2)
    meter.add({"critic": torch.tensor(3.0)}, weight=2)  # no generator update on this step
    assert meter.means() == {"critic": 2.0, "generator": 4.0}


def test_train_epochs_records_means_and_syncs_once_per_epoch(monkeypatch):
    calls = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(1) or original(self))
    values = iter(range(1, 100))

    def step(idx):
        return {"loss": torch.tensor(float(next(values)))}

    history = train_epochs(step, lambda: [torch.arange(2), torch.arange(2)], epochs=3, method="test")
    assert [h["loss"] for h in history] == [1.5, 3.5, 5.5]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert len(calls) == 3  # one host read per epoch, not one per term and step


def test_train_epochs_names_the_non_finite_term_and_epoch():
    steps = iter([{"kl": torch.tensor(1.0), "loss": torch.tensor(1.0)},
                  {"kl": torch.tensor(float("nan")), "loss": torch.tensor(float("nan"))}])
    with pytest.raises(NonFiniteLossError, match=r"MyMethod: loss term 'kl' became nan at epoch 2"):
        train_epochs(lambda b: next(steps), lambda: [None], epochs=2, method="MyMethod")


def test_stop_training_keeps_the_partial_epoch_and_ends():
    count = iter(range(100))

    def step(batch):
        i = next(count)
        if i == 3:
            raise StopTraining
        return {"loss": torch.tensor(float(i))}

    history = train_epochs(step, lambda: [None, None], epochs=10, method="test")
    assert [h["loss"] for h in history] == [0.5, 2.0]


def test_self_training_target_refreshes_every_interval_and_stops_on_tol():
    labels = iter([torch.tensor([0, 1, 1]), torch.tensor([0, 1, 0]), torch.tensor([0, 1, 0])])
    target = SelfTrainingTarget(lambda: (torch.zeros(3, 2), next(labels)), interval=2, tol=0.1,
                                initial_labels=torch.tensor([0, 0, 0]))
    target.before_step(), target.before_step()  # refresh at 0: 2 of 3 changed
    assert target.label_change == pytest.approx(2 / 3)
    target.before_step(), target.before_step()  # refresh at 2: 1 of 3 changed
    assert target.label_change == pytest.approx(1 / 3)
    with pytest.raises(StopTraining):
        target.before_step()  # refresh at 4: nothing changed
    assert target.converged and target.label_change == 0.0


@pytest.mark.parametrize("n, batch, expected", [(513, 256, [256, 257]), (512, 256, [256, 256]),
                                                 (514, 256, [256, 256, 2]), (1, 256, [1]), (257, 256, [257])])
def test_minibatches_never_end_with_a_single_sample(n, batch, expected):
    sizes = [len(b) for b in minibatches(n, batch, torch.Generator().manual_seed(0))]
    assert sizes == expected and len(sizes) == n_minibatches(n, batch)
    order = torch.cat(list(minibatches(n, batch, torch.Generator().manual_seed(0))))
    assert sorted(order.tolist()) == list(range(n))


def test_dm2c_fits_when_a_modality_has_n_equal_one_mod_batch_size():
    """Batch norm cannot normalise one sample: 129 and 257 samples with batches of 128 must work."""
    rng = np.random.RandomState(0)
    Xa, Xb = rng.rand(129, 6).astype(np.float32), rng.rand(257, 5).astype(np.float32)
    model = DM2C(2, hidden_dims=(8, 3), pretrain_epochs=1, epochs=1, batch_size=128, n_init=1, random_state=0)
    assert model.fit([Xa, Xb]).labels_.shape == (386,)


@pytest.mark.parametrize("make", [
    lambda: DEC(2, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, batch_size=16, n_init=1, random_state=0),
    lambda: IDEC(2, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, batch_size=16, n_init=1, random_state=0),
])
def test_single_view_estimators_fit_with_a_remainder_of_one(make):
    X = np.random.RandomState(0).rand(33, 4).astype(np.float32)
    assert make().fit(X).labels_.shape == (33,)


def test_multi_view_estimators_fit_with_a_remainder_of_one():
    rng = np.random.RandomState(0)
    views = [rng.rand(33, 4).astype(np.float32), rng.rand(33, 3).astype(np.float32)]
    JECL(2, hidden_dims=(8, 2), pretrain_epochs=1, epochs=1, batch_size=16, n_init=1, random_state=0).fit(views)
    CMMC(2, hidden_dims=(8, 4), high_dim=3, pretrain_epochs=1, contrastive_epochs=1, finetune_epochs=1,
         batch_size=16, n_init=1, random_state=0).fit(views)


def test_apply_in_chunks_equals_one_pass_and_keeps_structure():
    torch.manual_seed(0)
    ae = MLPAutoencoder(7, (6, 3)).eval()
    X = torch.rand(50, 7)
    with torch.no_grad():
        z, x_hat = ae(X)
    chunked_z, chunked_hat = apply_in_chunks(ae, X, chunk_size=8)
    torch.testing.assert_close(z, chunked_z)
    torch.testing.assert_close(x_hat, chunked_hat)
    torch.testing.assert_close(encode_in_batches(ae, X, batch_size=7), z)
    nested = apply_in_chunks(lambda x: ([x, x + 1], None), X, chunk_size=16)
    assert torch.equal(nested[0][1], X + 1) and nested[1] is None
    assert not apply_in_chunks(lambda x: x * 2, X.requires_grad_(True), chunk_size=16).requires_grad


def test_cmmc_chunked_finetuning_matches_one_full_batch_step():
    """Summing the full-batch cross-entropy gradient over chunks changes nothing but rounding."""
    import copy

    from mmc_teach.cmmc import CMMCNetwork

    torch.manual_seed(0)
    xs = [torch.rand(64, 5), torch.rand(64, 4)]
    pseudo = [np.random.RandomState(m).randint(0, 3, 64) for m in range(2)]
    net = CMMCNetwork([5, 4], 3, [8, 4], 3)
    trained = []
    for batch_size in (16, 64, 1000):
        copy_ = copy.deepcopy(net)
        optimizer = torch.optim.SGD(copy_.parameters(), lr=0.5)
        CMMC(3, batch_size=batch_size)._finetune(copy_, xs, pseudo, optimizer, epochs=2)
        trained.append(torch.cat([p.detach().ravel() for p in copy_.parameters()]))
    assert not torch.equal(trained[0], torch.cat([p.detach().ravel() for p in net.parameters()]))
    torch.testing.assert_close(trained[0], trained[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trained[1], trained[2], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- the pretraining cache


def test_cached_and_fresh_autoencoders_are_bitwise_equal(tmp_path, monkeypatch):
    from mmc_teach.nn import cache_dir, pretrained_autoencoder

    monkeypatch.setenv("MMC_TEACH_CACHE", str(tmp_path))
    X = np.random.RandomState(0).rand(50, 6).astype(np.float32)
    kw = dict(hidden_dims=(8, 3), epochs=2, batch_size=16)
    fresh = pretrained_autoencoder(X, cache=False, **kw)
    assert list(tmp_path.iterdir()) == []  # cache=False writes nothing
    first = pretrained_autoencoder(X, **kw)
    files = list(cache_dir().iterdir())
    assert len(files) == 1 and not any(f.name.endswith(".tmp") for f in files)
    import mmc_teach.nn as nn_module

    def no_training(*args, **kwargs):
        raise AssertionError("a cache hit must not train")

    with monkeypatch.context() as m:
        m.setattr(nn_module, "pretrain_autoencoder", no_training)
        cached = pretrained_autoencoder(X, **kw)  # read back, not trained again
    for a, b, c in zip(fresh.state_dict().values(), first.state_dict().values(), cached.state_dict().values()):
        assert torch.equal(a, b) and torch.equal(b, c)
    assert cached.pretrain_history == fresh.pretrain_history
    # any change of data, schedule or seed is another entry
    pretrained_autoencoder(X, **{**kw, "epochs": 3})
    pretrained_autoencoder(X, random_state=1, **kw)
    pretrained_autoencoder(X + 1e-3, **kw)
    assert len(list(cache_dir().iterdir())) == 4


def test_a_corrupt_cache_file_is_trained_again(tmp_path, monkeypatch):
    from mmc_teach.nn import pretrained_autoencoder

    monkeypatch.setenv("MMC_TEACH_CACHE", str(tmp_path))
    X = np.random.RandomState(0).rand(40, 5).astype(np.float32)
    good = pretrained_autoencoder(X, hidden_dims=(6, 2), epochs=1)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a torch file")
    again = pretrained_autoencoder(X, hidden_dims=(6, 2), epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(good.state_dict().values(), again.state_dict().values()))
    assert path.read_bytes() != b"not a torch file"


def test_pretrained_autoencoder_leaves_the_global_generator_alone(tmp_path, monkeypatch):
    from mmc_teach.nn import pretrained_autoencoder

    monkeypatch.setenv("MMC_TEACH_CACHE", str(tmp_path))
    X = np.random.RandomState(0).rand(40, 5).astype(np.float32)
    state = torch.get_rng_state()
    pretrained_autoencoder(X, hidden_dims=(6, 2), epochs=1)  # trains
    pretrained_autoencoder(X, hidden_dims=(6, 2), epochs=1)  # loads
    assert torch.equal(torch.get_rng_state(), state)


def test_deep_estimators_name_values_beyond_float32_instead_of_infinity():
    X = np.random.RandomState(0).rand(30, 4) * 1e201  # finite float64, no float32 can hold it
    with pytest.raises(ValueError, match="beyond the range of float32.*rescale"):
        DEC(2, hidden_dims=(4, 2), pretrain_epochs=1, epochs=1).fit(X)
