"""k-means in torch: greedy k-means++ seeding and Lloyd's algorithm, scikit-learn semantics.

Chapter "k-means" (``02_kmeans``) builds this step by step:

- Eq. (eq-kmeans-objective): the inertia ``sum_i min_j ||x_i - mu_j||^2`` (Lloyd 1982; MacQueen 1967).
- Eq. (eq-kmeans-assign) / (eq-kmeans-update): the assignment and update steps of Lloyd's algorithm.
- Eq. (eq-kmeanspp): k-means++ seeding (Arthur & Vassilvitskii 2007) in scikit-learn's greedy form,
  which draws ``2 + int(ln k)`` candidates per step and keeps the one lowering the potential most.
- Eq. (eq-kmeans-expand): ``||x - mu||^2 = ||x||^2 - 2 x.mu + ||mu||^2``, so distances are one matmul.

Semantics follow ``sklearn.cluster.KMeans(algorithm="lloyd")`` (scikit-learn 1.9): the data are
validated in float64, centred (more accurate distances) and divided by one power of two near their
largest magnitude (so any finite float64 input fits the float32 kernel and the partition does not
depend on the units; centres, distances and inertia are unscaled in float64), ``tol`` is relative to the mean feature variance,
a run stops when its labels no longer change or when the summed squared centre shift is
``<= tol * mean(var(X))``, an empty cluster is re-seeded with the point farthest from its centre,
and the best of ``n_init`` runs (lowest inertia) wins.

Two choices make it fast: distances are computed chunk by chunk (memory ``O(chunk * n_init * k)``,
never ``O(n * k * d)``), and the ``n_init`` runs advance in lock-step so that each chunk of data is
read once per iteration for all runs and the distance matmul is ``n_init`` times wider. Runs
leave the batch as soon as they converge. Distances are float32 on every device; the inertia
used to pick the best run is summed in float64 (except on Apple MPS, which has no float64).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._base import (
    check_array,
    check_feature_width,
    check_n_clusters,
    check_positive,
    check_random_state,
    get_device,
)

__all__ = ["KMeans", "kmeans_plusplus"]

# Elements of one distance block (chunk rows x n_runs x k): ~16 MB of float32, cache-friendly enough.
_BLOCK_ELEMENTS = 1 << 22


def _power_of_two_scale(centred: np.ndarray) -> float:
    """A power of two near ``max |x|`` (1 for constant data): dividing by it is exact and scale-free."""
    largest = float(np.abs(centred).max())
    if largest == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(largest)[1])))


def _unscale_sq(value: float, scale: float) -> float:
    """``value * scale**2`` in float64; inf (not an OverflowError) when the true value exceeds float64."""
    with np.errstate(over="ignore"):
        return float(np.float64(value) * np.float64(scale) * np.float64(scale))


def _sq_distances(A: torch.Tensor, X: torch.Tensor, x_sq: torch.Tensor) -> torch.Tensor:
    """Squared distances (len(A), len(X)) via Eq. (eq-kmeans-expand), clamped at 0 against rounding."""
    d = torch.addmm(x_sq.unsqueeze(0), A, X.T, alpha=-2.0)
    return d.add_(A.pow(2).sum(1, keepdim=True)).clamp_(min=0.0)


def kmeans_plusplus(
    X: torch.Tensor, n_clusters: int, rng: np.random.RandomState, n_runs: int = 1, acc_dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Greedy k-means++ seeding, Eq. (eq-kmeanspp), for ``n_runs`` independent runs at once.

    Parameters
    ----------
    X : Tensor of shape (n, d)
        Data (centred for accuracy).
    n_clusters : int
        Number of centres k.
    rng : numpy RandomState
        All random numbers come from it, so a ``random_state`` fixes the seeds.
    n_runs : int
        Independent seedings (one per k-means run), computed together.

    Returns
    -------
    centers : Tensor of shape (n_runs, k, d)
    """
    n, d = X.shape
    n_trials = 2 + int(np.log(n_clusters))  # scikit-learn's (and Arthur & Vassilvitskii's) choice
    x_sq = X.pow(2).sum(1)
    runs = torch.arange(n_runs, device=X.device)
    centers = X.new_empty(n_runs, n_clusters, d)
    first = torch.as_tensor(rng.randint(n, size=n_runs), device=X.device)
    centers[:, 0] = X[first]
    closest = _sq_distances(X[first], X, x_sq)  # (R, n): squared distance to the nearest centre so far
    potential = closest.sum(1, dtype=acc_dtype)
    for c in range(1, n_clusters):
        # sample candidates with probability proportional to D(x)^2 ...
        u = torch.as_tensor(rng.uniform(size=(n_runs, n_trials)), dtype=acc_dtype, device=X.device)
        cumulative = torch.cumsum(closest.to(acc_dtype), dim=1)
        candidates = torch.searchsorted(cumulative, u * potential.unsqueeze(1)).clamp_(max=n - 1)  # (R, t)
        # ... and keep, per run, the candidate that lowers the potential most (the greedy step)
        dist = _sq_distances(X[candidates.reshape(-1)], X, x_sq).view(n_runs, n_trials, n)
        torch.minimum(dist, closest.unsqueeze(1), out=dist)
        pots = dist.sum(2, dtype=acc_dtype)  # (R, t)
        best = pots.argmin(1)
        potential = pots[runs, best]
        closest = dist[runs, best]
        centers[:, c] = X[candidates[runs, best]]
    return centers


def _assign(X: torch.Tensor, centers: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    """E-step, Eq. (eq-kmeans-assign), for R runs at once.

    Returns labels (R, n) and ``||c||^2 - 2 x.c`` at the nearest centre (R, n); adding ``||x||^2``
    gives the squared distance. One matmul per chunk serves all R runs.
    """
    n_runs, k, d = centers.shape
    flat = centers.reshape(n_runs * k, d)
    c_sq = flat.pow(2).sum(1)
    labels = torch.empty(n_runs, X.shape[0], dtype=torch.long, device=X.device)
    partial = torch.empty(n_runs, X.shape[0], dtype=X.dtype, device=X.device)
    for start in range(0, X.shape[0], chunk):
        xb = X[start : start + chunk]
        block = torch.addmm(c_sq, xb, flat.T, alpha=-2.0).view(len(xb), n_runs, k)  # ||x||^2 omitted: same for all j
        values, idx = block.min(2)
        labels[:, start : start + chunk] = idx.T
        partial[:, start : start + chunk] = values.T
    return labels, partial


def _inertia(X: torch.Tensor, center: torch.Tensor, labels: torch.Tensor, chunk: int, acc_dtype: torch.dtype) -> float:
    """Exact ``sum_i ||x_i - mu_{l_i}||^2``, Eq. (eq-kmeans-objective), accumulated in ``acc_dtype``."""
    total = torch.zeros((), dtype=acc_dtype, device=X.device)
    for start in range(0, X.shape[0], chunk):
        diff = X[start : start + chunk] - center[labels[start : start + chunk]]
        total += diff.pow(2).sum(dtype=acc_dtype)
    return float(total)


def _cluster_sums(xb: torch.Tensor, new: torch.Tensor, old: torch.Tensor | None, k: int) -> torch.Tensor:
    """Per-cluster sums (k, d) of the rows ``xb`` labelled ``new``, minus those labelled ``old``.

    Written as a (k, m) one-hot matrix times ``xb``: one BLAS call, which on a CPU is far
    faster than a threaded scatter (``index_add_``) for the few rows that move per iteration.
    """
    onehot = torch.zeros(k, len(xb), dtype=xb.dtype, device=xb.device)
    cols = torch.arange(len(xb), device=xb.device)
    onehot[new, cols] = 1.0
    if old is not None:
        onehot[old, cols] = -1.0  # old != new for every moved row, so no entry is written twice
    return onehot @ xb


def _relocate_empty(X, x_sq, sums, counts, labels, partial):
    """Re-seed empty clusters of one run with the points farthest from their centres (as scikit-learn)."""
    empty = torch.nonzero(counts == 0).flatten()
    far = torch.topk(partial + x_sq, len(empty)).indices  # distance of each point to its own centre
    for e, f in zip(empty.tolist(), far.tolist()):
        old, point = int(labels[f]), X[f].to(sums.dtype)
        sums[old] -= point
        counts[old] -= 1
        sums[e] = point
        counts[e] = 1


def _lloyd(X, centers, max_iter, tol, chunk, acc_dtype):
    """Lloyd iterations for R runs in lock-step; each run leaves the batch when it converges.

    The M-step, Eq. (eq-kmeans-update), keeps per-cluster sums and counts (in ``acc_dtype``) and
    updates them only with the points whose label changed, so once few points move an
    iteration costs little more than its E-step. The result equals recomputing the means.
    """
    n_runs, k, d = centers.shape
    x_sq = X.pow(2).sum(1)
    final = centers.clone()
    n_iter = np.full(n_runs, max_iter)
    sums = torch.zeros(n_runs, k, d, dtype=acc_dtype, device=X.device)
    counts = torch.zeros(n_runs, k, dtype=acc_dtype, device=X.device)
    labels_old: list[torch.Tensor | None] = [None] * n_runs
    active = list(range(n_runs))
    for it in range(max_iter):
        current = final[active]
        labels, partial = _assign(X, current, chunk)
        still_active = []
        for j, r in enumerate(active):
            lab, old = labels[j], labels_old[r]
            if old is None:
                for start in range(0, X.shape[0], chunk):
                    sums[r] += _cluster_sums(X[start : start + chunk], lab[start : start + chunk], None, k).to(acc_dtype)
                counts[r] = torch.bincount(lab, minlength=k).to(acc_dtype)
            else:
                moved = torch.nonzero(lab != old).flatten()
                if len(moved) == 0:  # scikit-learn's strict convergence: no label changed
                    n_iter[r], labels_old[r] = it + 1, None
                    continue
                sums[r] += _cluster_sums(X[moved], lab[moved], old[moved], k).to(acc_dtype)
                counts[r] += (torch.bincount(lab[moved], minlength=k) - torch.bincount(old[moved], minlength=k)).to(acc_dtype)
            run_sums, run_counts = sums[r], counts[r]
            if (run_counts == 0).any():  # relocate on copies: sums/counts must stay those of `lab`
                run_sums, run_counts = run_sums.clone(), run_counts.clone()
                _relocate_empty(X, x_sq, run_sums, run_counts, lab, partial[j])
            # a cluster emptied by relocation keeps its old centre instead of becoming 0/0
            means = (run_sums / run_counts.clamp(min=1).unsqueeze(1)).to(X.dtype)
            new = torch.where(run_counts.unsqueeze(1) > 0, means, current[j])
            shift = (new - current[j]).pow(2).sum(dtype=acc_dtype)
            final[r] = new
            labels_old[r] = lab
            if float(shift) <= tol:  # scikit-learn's relative tolerance (tol already scaled)
                n_iter[r], labels_old[r] = it + 1, None
            else:
                still_active.append(r)
        active = still_active
        if not active:
            break
    return final, n_iter


class KMeans(TransformerMixin, ClusterMixin, BaseEstimator):
    """k-means clustering (Lloyd's algorithm with greedy k-means++ seeding) in torch.

    A drop-in for ``sklearn.cluster.KMeans(algorithm="lloyd")`` that also runs on a GPU.
    See the chapter "k-means", Eqs. (eq-kmeans-objective)--(eq-kmeanspp).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters k (1 <= k <= n_samples).
    init : {'k-means++', 'random'} or array of shape (n_clusters, n_features), default='k-means++'
        Seeding. An array gives the starting centres of a single run (``n_init`` is then ignored).
    n_init : int, default=10
        Number of runs with different seeds; the one with the lowest inertia is kept.
    max_iter : int, default=300
        Maximum Lloyd iterations per run.
    tol : float, default=1e-4
        Relative tolerance: a run stops when the summed squared centre shift is
        ``<= tol * mean(var(X, axis=0))`` (scikit-learn's rule), or when no label changes.
    random_state : int, RandomState or None, default=None
        Seeds the seeding; fixed -> identical results on the CPU. The global RNG is never touched.
    device : str, torch.device or None, default=None
        ``None`` picks CUDA, then MPS, then the CPU.
    chunk_size : int or None, default=None
        Rows per distance block; ``None`` chooses it so that a block holds about 4M floats.
    verbose : bool, default=False
        Print the inertia of every run.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,)
    inertia_ : float
        Sum of squared distances of the samples to their closest centre (computed in float64).
    n_iter_ : int
        Lloyd iterations of the best run.
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 5.0]])
    >>> km = KMeans(n_clusters=2, n_init=3, random_state=0, device="cpu").fit(X)
    >>> sorted(np.bincount(km.labels_).tolist()), round(km.inertia_, 4)
    ([2, 2], 0.01)
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: Any = "k-means++",
        n_init: int = 10,
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: Any = None,
        device: Any = None,
        chunk_size: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.device = device
        self.chunk_size = chunk_size
        self.verbose = verbose

    def _chunk(self, n_samples: int, width: int) -> int:
        if self.chunk_size is not None:
            return check_positive("chunk_size", self.chunk_size, integer=True)
        return int(min(n_samples, max(256, _BLOCK_ELEMENTS // width)))

    def fit(self, X: Any, y: Any = None) -> "KMeans":
        """Cluster ``X`` (numpy array or torch tensor of shape (n_samples, n_features)); ``y`` is ignored."""
        # float64 validation: finite data beyond float32's range (e.g. 1e201) is valid input.
        X = check_array(X, "X", dtype=np.float64)
        n, d = X.shape
        k = check_n_clusters(self.n_clusters, n, minimum=1)
        n_init = check_positive("n_init", self.n_init, integer=True)
        max_iter = check_positive("max_iter", self.max_iter, integer=True)
        tol = check_positive("tol", self.tol, allow_zero=True)
        rng = check_random_state(self.random_state)
        device = get_device(self.device)
        acc_dtype = torch.float32 if device.type == "mps" else torch.float64

        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init={init!r} must be 'k-means++', 'random' or an array of starting centres.")
        else:
            init = check_array(init, "init", dtype=np.float64)
            if init.shape != (k, d):
                raise ValueError(f"init has shape {init.shape}, expected (n_clusters, n_features) = {(k, d)}.")
            n_init = 1

        # Centring (as scikit-learn) keeps ||x||^2 - 2 x.c + ||c||^2 accurate in float32; dividing
        # by one power of two (exact in binary) brings any finite magnitude into float32's range, so
        # the partition does not depend on the units of X (no overflow at 1e30, no underflow at 1e-30).
        mean = X.mean(axis=0)
        scale = _power_of_two_scale(X - mean)
        scaled = (X - mean) / scale
        tol_abs = float(np.var(scaled, axis=0).mean()) * tol
        Xt = torch.from_numpy(scaled.astype(np.float32)).to(device)
        chunk = self._chunk(n, n_init * k)

        if isinstance(init, np.ndarray):
            centers = torch.from_numpy(((init - mean) / scale).astype(np.float32)).to(device).unsqueeze(0)
        elif init == "random":
            idx = np.stack([rng.choice(n, size=k, replace=False) for _ in range(n_init)])
            centers = Xt[torch.as_tensor(idx, device=device)]
        else:
            centers = kmeans_plusplus(Xt, k, rng, n_init, acc_dtype)

        centers, n_iter = _lloyd(Xt, centers, max_iter, tol_abs, chunk, acc_dtype)
        # Final E-step so that labels match the centres; the expanded distances rank the runs,
        # the exact float64 inertia is then computed for the winner only.
        labels, partial = _assign(Xt, centers, chunk)
        approx = (partial.to(acc_dtype) + Xt.pow(2).sum(1).to(acc_dtype)).clamp(min=0).sum(1).cpu().numpy()
        if self.verbose:
            for r, value in enumerate(approx):
                print(f"run {r}: inertia {value:.6g} after {n_iter[r]} iterations")
        best = int(np.argmin(approx))

        self.device_ = device
        self._x_mean, self._x_scale = mean, scale
        centres = centers[best].double().cpu().numpy() * scale + mean
        # float32 as before, unless the centres lie beyond float32's range (then float64).
        with np.errstate(over="ignore"):  # the overflow is the question being asked
            fits_float32 = np.isfinite(centres.astype(np.float32)).all()
        self.cluster_centers_ = centres.astype(np.float32) if fits_float32 else centres
        self.labels_ = labels[best].cpu().numpy()
        # inertia of the scaled data, unscaled in float64 (may overflow to inf only if the true value does)
        self.inertia_ = _unscale_sq(_inertia(Xt, centers[best], labels[best], chunk, acc_dtype), scale)
        self.n_iter_ = int(n_iter[best])
        self.n_features_in_ = d
        distinct = len(np.unique(self.labels_))
        if distinct < k:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                "Possibly due to duplicate points in X.",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _centred(self, X: Any) -> tuple[torch.Tensor, torch.Tensor]:
        check_is_fitted(self)
        X = check_array(X, "X", dtype=np.float64)
        check_feature_width(X, self.n_features_in_, "X", type(self).__name__)
        Xt = torch.from_numpy(((X - self._x_mean) / self._x_scale).astype(np.float32)).to(self.device_)
        centers = (self.cluster_centers_.astype(np.float64) - self._x_mean) / self._x_scale
        centers = torch.from_numpy(centers.astype(np.float32)).to(self.device_)
        return Xt, centers

    def predict(self, X: Any) -> np.ndarray:
        """Index of the closest centre for every row of ``X``."""
        Xt, centers = self._centred(X)
        labels, _ = _assign(Xt, centers.unsqueeze(0), self._chunk(len(Xt), centers.shape[0]))
        return labels[0].cpu().numpy()

    def fit_predict(self, X: Any, y: Any = None) -> np.ndarray:
        """Fit and return ``labels_``."""
        return self.fit(X).labels_

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances (n_samples, n_clusters) from every row of ``X`` to every centre."""
        Xt, centers = self._centred(X)
        chunk = self._chunk(len(Xt), centers.shape[0])
        c_sq = centers.pow(2).sum(1)
        parts = [_sq_distances(Xt[s : s + chunk], centers, c_sq) for s in range(0, len(Xt), chunk)]
        return torch.cat(parts).sqrt().cpu().double().numpy() * self._x_scale

    def score(self, X: Any, y: Any = None) -> float:
        """Negative inertia of ``X`` under the fitted centres (higher is better)."""
        Xt, centers = self._centred(X)
        acc_dtype = torch.float32 if self.device_.type == "mps" else torch.float64
        chunk = self._chunk(len(Xt), centers.shape[0])
        labels, _ = _assign(Xt, centers.unsqueeze(0), chunk)
        return -_unscale_sq(_inertia(Xt, centers, labels[0], chunk, acc_dtype), self._x_scale)
