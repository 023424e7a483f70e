"""Tests for mmc_teach.kmeans (and the k-means lab): scikit-learn agreement, edge cases, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score

from mmc_teach.datasets import load
from mmc_teach.kmeans import KMeans, kmeans_plusplus
from mmc_teach.labs import kmeans_steps


@pytest.fixture(scope="module")
def cub_image():
    return load("cub10").views[0]  # (600, 1024) GoogLeNet features, 10 classes


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(n_samples=300, centers=4, n_features=5, random_state=0)
    return X.astype(np.float32)


def lloyd_from_scratch(X, centers, n_iter=300):
    """Mirror of the chapter's from-scratch cell: plain Lloyd from given centres until nothing moves."""
    X = np.asarray(X, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).copy()
    labels = None
    for _ in range(n_iter):
        d2 = ((X[:, None, :] - centers[None]) ** 2).sum(-1)
        new_labels = d2.argmin(1)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        centers = np.stack([X[labels == j].mean(0) for j in range(len(centers))])
    inertia = ((X - centers[labels]) ** 2).sum()
    return labels, centers, inertia


def test_inertia_matches_sklearn_on_real_data(cub_image):
    ours = KMeans(10, n_init=10, random_state=0, device="cpu").fit(cub_image)
    ref = SKKMeans(10, n_init=10, random_state=0).fit(cub_image)
    assert ours.inertia_ / ref.inertia_ <= 1.001
    # the reported inertia is the true objective of the returned centres and labels
    direct = ((cub_image.astype(np.float64) - ours.cluster_centers_[ours.labels_]) ** 2).sum()
    assert ours.inertia_ == pytest.approx(direct, rel=1e-5)
    assert np.array_equal(ours.predict(cub_image), ours.labels_)


def test_same_init_gives_sklearn_result(cub_image):
    init = cub_image[np.random.RandomState(3).choice(len(cub_image), 10, replace=False)]
    ours = KMeans(10, init=init, tol=0, device="cpu").fit(cub_image)
    ref = SKKMeans(10, init=init, n_init=1, tol=0).fit(cub_image)
    assert adjusted_rand_score(ours.labels_, ref.labels_) > 0.99
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-4)


def test_agrees_with_chapter_from_scratch_lloyd(blobs):
    init = blobs[[0, 1, 2, 3]]
    labels, centers, inertia = lloyd_from_scratch(blobs, init)
    km = KMeans(4, init=init, tol=0, device="cpu").fit(blobs)
    assert np.array_equal(km.labels_, labels)
    np.testing.assert_allclose(km.cluster_centers_, centers, rtol=1e-5, atol=1e-5)
    assert km.inertia_ == pytest.approx(inertia, rel=1e-6)


def test_kmeans_plusplus_is_greedy_dsquared_seeding(blobs):
    X = torch.from_numpy(blobs.astype(np.float64))
    c1 = kmeans_plusplus(X, 4, np.random.RandomState(0), n_runs=3)
    c2 = kmeans_plusplus(X, 4, np.random.RandomState(0), n_runs=3)
    assert c1.shape == (3, 4, 5) and torch.equal(c1, c2)
    # every seed is a data point, and on 4 well-separated blobs the 4 seeds hit 4 different blobs
    _, y = make_blobs(n_samples=300, centers=4, n_features=5, random_state=0)
    for run in c1:
        idx = [int(torch.nonzero((X == c).all(1))[0]) for c in run]
        assert len(set(y[idx])) == 4


def test_empty_cluster_is_reseeded_with_the_farthest_point():
    X = np.array([[0, 0], [0, 1], [0, 3], [10, 0], [10, 1]], dtype=np.float32)
    init = np.array([[0, 1], [10, 0.5], [1000, 1000]], dtype=np.float32)  # centre 2 attracts nothing
    km = KMeans(3, init=init, device="cpu").fit(X)
    # (0, 3) is farthest from its centre (distance^2 = 4): it becomes cluster 2
    assert km.labels_.tolist() == [0, 0, 2, 1, 1]
    np.testing.assert_allclose(km.cluster_centers_, [[0, 0.5], [10, 0.5], [0, 3]], atol=1e-6)
    assert km.inertia_ == pytest.approx(1.0)
    ref = SKKMeans(3, init=init, n_init=1).fit(X)
    assert km.inertia_ == pytest.approx(ref.inertia_)


def test_duplicate_points_warn_and_never_nan():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]], dtype=np.float32), 4, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        km = KMeans(5, n_init=2, random_state=0, device="cpu").fit(X)
    assert np.isfinite(km.cluster_centers_).all() and np.isfinite(km.inertia_)
    assert km.inertia_ == pytest.approx(0.0, abs=1e-6)
    with pytest.warns(ConvergenceWarning):
        same = KMeans(2, n_init=1, random_state=0, device="cpu").fit(np.ones((6, 3)))
    assert np.isfinite(same.cluster_centers_).all()


def test_no_warning_on_normal_data(blobs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KMeans(4, n_init=2, random_state=0, device="cpu").fit(blobs)


def test_determinism_and_global_rng_untouched(blobs):
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.get_rng_state().clone()
    a = KMeans(4, n_init=3, random_state=7, device="cpu").fit(blobs)
    b = KMeans(4, n_init=3, random_state=7, device="cpu").fit(blobs)
    assert np.array_equal(a.labels_, b.labels_)
    assert np.array_equal(a.cluster_centers_, b.cluster_centers_) and a.inertia_ == b.inertia_
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert torch.equal(torch.get_rng_state(), torch_state)


def test_chunking_does_not_change_the_result(blobs):
    a = KMeans(4, n_init=3, random_state=1, device="cpu").fit(blobs)
    b = KMeans(4, n_init=3, random_state=1, device="cpu", chunk_size=7).fit(blobs)
    assert np.array_equal(a.labels_, b.labels_)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-6)


def test_clone_params_and_torch_input(blobs):
    km = KMeans(4, n_init=2, random_state=0, device="cpu")
    twin = clone(km)
    assert twin.get_params() == km.get_params()
    twin.set_params(n_clusters=3)
    assert twin.n_clusters == 3 and km.n_clusters == 4
    from_numpy = km.fit(blobs).labels_
    from_torch = clone(km).fit(torch.from_numpy(blobs)).labels_
    assert np.array_equal(from_numpy, from_torch)
    assert np.array_equal(clone(km).fit_predict(blobs), from_numpy)


@pytest.fixture
def cpu_tensors_as_accelerator(monkeypatch):
    """Treat CPU tensors as if they lay on a GPU, so the on-device preparation runs on this machine."""
    import mmc_teach.kmeans as kmeans_module

    monkeypatch.setattr(kmeans_module, "_on_accelerator", lambda X: isinstance(X, torch.Tensor))


def test_tensor_on_accelerator_is_prepared_there_with_the_same_result(cub_image, cpu_tensors_as_accelerator):
    # A tensor on a GPU (an embedding inside DEC, JECL, DM2C or CMMC) is validated, centred and scaled
    # on that device, not copied to the host and back. That path must give NumPy's partition.
    import mmc_teach.kmeans as kmeans_module

    X = cub_image.astype(np.float32)
    on_device = kmeans_module._validated(torch.from_numpy(X), "X")
    assert isinstance(on_device, torch.Tensor) and on_device.dtype == torch.float64
    host = kmeans_module._centre_and_scale(X.astype(np.float64))
    device = kmeans_module._centre_and_scale(on_device)
    assert device[2] == host[2]  # the same power of two
    np.testing.assert_allclose(device[1], host[1], rtol=0, atol=1e-9)
    assert device[3] == pytest.approx(host[3], rel=1e-12)
    assert (device[0] - host[0]).abs().max() <= 2 ** -20  # float32 rounding of nearly equal float64s
    reference = KMeans(10, n_init=3, random_state=0, device="cpu")
    ours = clone(reference).fit(torch.from_numpy(X))
    theirs = clone(reference).fit(X)
    assert adjusted_rand_score(theirs.labels_, ours.labels_) == 1.0
    assert ours.inertia_ == pytest.approx(theirs.inertia_, rel=1e-6)
    np.testing.assert_allclose(ours.cluster_centers_, theirs.cluster_centers_, rtol=1e-5, atol=1e-5)
    new = torch.from_numpy(X[:50])
    assert np.array_equal(ours.predict(new), theirs.predict(X[:50]))
    np.testing.assert_allclose(ours.transform(new), theirs.transform(X[:50]), rtol=1e-5)


@pytest.mark.parametrize(
    "X,message",
    [
        (torch.tensor([[0.0, float("nan")], [1.0, 1.0]]), "X contains NaN"),
        (torch.tensor([[0.0, float("inf")], [1.0, 1.0]]), "X contains infinity"),
        (torch.arange(5.0), "2-D array"),
        (torch.zeros((0, 3)), "empty"),
        (torch.zeros((2, 2), dtype=torch.complex64), "Complex data"),
    ],
)
def test_bad_tensor_on_accelerator_gets_the_host_message(X, message, cpu_tensors_as_accelerator):
    with pytest.raises(ValueError, match=message):
        KMeans(1, device="cpu").fit(X)


def test_predict_transform_score_on_new_data(blobs):
    km = KMeans(4, n_init=2, random_state=0, device="cpu").fit(blobs[:200])
    new = blobs[200:]
    dist = km.transform(new)
    assert dist.shape == (100, 4)
    assert np.array_equal(km.predict(new), dist.argmin(1))
    expected = ((new.astype(np.float64)[:, None] - km.cluster_centers_[None]) ** 2).sum(-1).min(1).sum()
    assert km.score(new) == pytest.approx(-expected, rel=1e-5)
    assert km.predict(new).dtype.kind == "i"


def test_predict_errors(blobs):
    with pytest.raises(NotFittedError):
        KMeans(3).predict(blobs)
    km = KMeans(3, n_init=1, random_state=0, device="cpu").fit(blobs)
    with pytest.raises(ValueError, match="X has 4 features, but KMeans is expecting 5 features as input"):
        km.predict(blobs[:, :4])


@pytest.mark.parametrize(
    "X,params,message",
    [
        (np.array([[0.0, np.nan], [1.0, 1.0]]), {"n_clusters": 1}, "X contains NaN"),
        (np.array([[0.0, np.inf], [1.0, 1.0]]), {"n_clusters": 1}, "X contains infinity"),
        (np.arange(5.0), {"n_clusters": 2}, "2-D array"),
        (np.zeros((2, 3, 4)), {"n_clusters": 2}, "2-D array"),
        (np.zeros((0, 3)), {"n_clusters": 2}, "empty"),
        (np.random.rand(5, 2), {"n_clusters": 0}, "n_clusters=0 must be >= 1"),
        (np.random.rand(5, 2), {"n_clusters": 6}, "n_samples=5 should be >= n_clusters=6"),
        (np.random.rand(5, 2), {"n_clusters": 2, "n_init": 0}, "n_init=0 must be > 0"),
        (np.random.rand(5, 2), {"n_clusters": 2, "max_iter": -1}, "max_iter=-1 must be > 0"),
        (np.random.rand(5, 2), {"n_clusters": 2, "tol": -1e-3}, "tol=-0.001 must be >= 0"),
        (np.random.rand(5, 2), {"n_clusters": 2, "init": "kmeans"}, "init='kmeans'"),
        (np.random.rand(5, 2), {"n_clusters": 2, "init": np.zeros((3, 2))}, "init has shape"),
        (np.random.rand(5, 2), {"n_clusters": 2, "chunk_size": 0}, "chunk_size=0 must be > 0"),
        (np.random.rand(5, 2), {"n_clusters": 2, "algorithm": "elkan"}, "algorithm='elkan' must be 'hamerly' or 'lloyd'"),
    ],
)
def test_bad_input(X, params, message):
    with pytest.raises(ValueError, match=message):
        KMeans(device="cpu", **params).fit(X)


def test_bad_types():
    with pytest.raises(TypeError, match="n_clusters must be an integer"):
        KMeans(2.5).fit(np.random.rand(5, 2))
    with pytest.raises(TypeError, match="X must be a numeric array"):
        KMeans(2).fit(np.array([["a", "b"], ["c", "d"]]))


def test_single_cluster_and_k_equals_n():
    X = np.random.RandomState(0).rand(6, 3).astype(np.float32)
    one = KMeans(1, n_init=1, device="cpu").fit(X)
    np.testing.assert_allclose(one.cluster_centers_[0], X.mean(0), rtol=1e-5)
    every = KMeans(6, n_init=2, random_state=0, device="cpu").fit(X)
    assert every.inertia_ == pytest.approx(0.0, abs=1e-6) and len(set(every.labels_)) == 6


# --------------------------------------------------------------------------- the chapter's lab


def test_kmeans_steps_follows_lloyd(blobs):
    steps = kmeans_steps(blobs[:, :2], 3, n_steps=6, random_state=0)
    assert steps["centers"].shape == (7, 3, 2) and steps["labels"].shape == (7, 300)
    assert np.all(np.diff(steps["inertia"]) <= 1e-9)  # Lloyd never increases the objective
    X = blobs[:, :2].astype(np.float64)
    for t in range(6):  # step t+1's centres are the means of step t's clusters
        for j in range(3):
            members = X[steps["labels"][t] == j]
            if len(members):
                np.testing.assert_allclose(steps["centers"][t + 1, j], members.mean(0))
    # hand-checked tiny case: 4 corners of a 10 x 2 rectangle
    tiny = np.array([[0.0, 0.0], [0.0, 2.0], [10.0, 0.0], [10.0, 2.0]])
    good = kmeans_steps(tiny, 2, n_steps=2, init=tiny[[0, 2]])  # start at the two bottom corners
    assert good["inertia"].tolist() == [8.0, 4.0, 4.0]  # 2 * 2^2, then 4 * 1^2: left/right split
    np.testing.assert_allclose(good["centers"][-1], [[0.0, 1.0], [10.0, 1.0]])
    bad = kmeans_steps(tiny, 2, n_steps=2, init=tiny[[0, 1]])  # start at the two left corners
    assert bad["inertia"].tolist() == [200.0, 100.0, 100.0]  # stuck in the top/bottom split: 4 * 5^2
    with pytest.raises(ValueError, match="init="):
        kmeans_steps(tiny, 2, init="bad")


@pytest.mark.parametrize("scale", [1e-30, 1e-10, 1e10, 1e30, 1e35])
def test_scale_invariant(scale):
    """Data in any units (float32 under- or overflow territory) give the same partition, inertia * scale^2."""
    X, _ = make_blobs(n_samples=400, centers=4, n_features=3, random_state=1)
    ref = KMeans(4, n_init=3, random_state=0, device="cpu").fit(X)
    scaled = KMeans(4, n_init=3, random_state=0, device="cpu").fit(X * scale)
    assert adjusted_rand_score(ref.labels_, scaled.labels_) == 1.0
    assert scaled.inertia_ / scale**2 == pytest.approx(ref.inertia_, rel=1e-5)
    assert np.array_equal(scaled.predict(X * scale), scaled.labels_)


def test_finite_float64_beyond_float32_range():
    X, _ = make_blobs(n_samples=400, centers=4, n_features=3, random_state=1)
    ref = KMeans(4, n_init=3, random_state=0, device="cpu").fit(X)
    big = KMeans(4, n_init=3, random_state=0, device="cpu").fit(X * 1e200)  # max ~1e201
    assert adjusted_rand_score(ref.labels_, big.labels_) == 1.0
    assert np.isfinite(big.cluster_centers_).all()


def _hamerly_cases():
    rng = np.random.RandomState(0)
    overlapping, _ = make_blobs(n_samples=3000, centers=40, n_features=8, cluster_std=3.0, random_state=1)
    duplicated = np.repeat(rng.rand(40, 3), 25, axis=0)  # ties and empty clusters
    far_init = rng.rand(500, 4)
    return {
        "overlapping blobs, k=40": (overlapping, {"n_clusters": 40, "n_init": 3, "random_state": 0}),
        "duplicates, k=60 (empty clusters)": (duplicated, {"n_clusters": 60, "n_init": 2, "random_state": 0}),
        "k=1": (overlapping, {"n_clusters": 1, "n_init": 1}),
        "small chunks, tol=0": (overlapping, {"n_clusters": 12, "n_init": 4, "tol": 0.0, "chunk_size": 97, "random_state": 3}),
        "start far outside the data": (far_init, {"n_clusters": 5, "init": 1e3 * rng.randn(5, 4)}),
    }


@pytest.mark.parametrize("case", list(_hamerly_cases()))
def test_hamerly_bounds_give_the_labels_of_plain_lloyd(case):
    X, params = _hamerly_cases()[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # duplicates: fewer distinct clusters than k
        plain = KMeans(algorithm="lloyd", device="cpu", **params).fit(X)
        bounded = KMeans(algorithm="hamerly", device="cpu", **params).fit(X)
    assert np.array_equal(plain.labels_, bounded.labels_)
    assert plain.n_iter_ == bounded.n_iter_
    np.testing.assert_array_equal(plain.cluster_centers_, bounded.cluster_centers_)
    assert plain.inertia_ == bounded.inertia_


def test_hamerly_skips_most_distance_computations(monkeypatch):
    """The bounds are not decorative: after the first iterations few rows get the full E-step."""
    import mmc_teach.kmeans as kmeans_module

    X, _ = make_blobs(n_samples=20000, centers=20, n_features=16, cluster_std=4.0, random_state=0)
    recomputed = []
    full_assign = kmeans_module._assign

    def counting(X_, centers, chunk, rows=None, second=False):
        recomputed.append(len(X_) if rows is None else len(rows))
        return full_assign(X_, centers, chunk, rows=rows, second=second)

    monkeypatch.setattr(kmeans_module, "_assign", counting)
    km = KMeans(20, n_init=1, random_state=0, tol=0.0, device="cpu").fit(X)
    per_iteration = recomputed[1:-1]  # the first and the last call (after the loop) are full E-steps
    assert km.n_iter_ >= 4 and len(per_iteration) == km.n_iter_ - 1
    assert max(per_iteration[2:]) < 0.05 * len(X)  # plain Lloyd: every row in every iteration
    assert sum(per_iteration) < 0.5 * len(X) * len(per_iteration)
