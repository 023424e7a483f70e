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
and the best of ``n_init`` runs (lowest inertia) wins. A tensor that already lies on a GPU (the
embeddings inside DEC, JECL, DM2C and CMMC) is validated and centred there, never copied to the host.

Three choices make it fast: distances are computed chunk by chunk (memory ``O(chunk * n_init * k)``,
never ``O(n * k * d)``); the ``n_init`` runs advance in lock-step so that each chunk of data is
read once per iteration for all runs and the distance matmul is ``n_init`` times wider (runs
leave the batch as soon as they converge); and Hamerly's (2010) bounds skip the points whose
nearest centre cannot have changed, with a margin above float32 rounding, so the labels are those
of plain Lloyd (``algorithm="lloyd"``) at a fraction of the distance computations. Distances are float32 on every device; the inertia
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
    largest = max(abs(float(centred.max())), abs(float(centred.min())))  # no |x| temporary
    if largest == 0.0:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(largest)[1])))


def _on_accelerator(X: Any) -> bool:
    """A dense tensor on a GPU is validated and centred where it lies, not copied to the host and back."""
    return isinstance(X, torch.Tensor) and X.layout == torch.strided and X.device.type != "cpu"


def _validated(X: Any, name: str) -> np.ndarray | torch.Tensor:
    """``X`` checked and in float64: a NumPy array, or a tensor on its accelerator (float32 on MPS).

    On an accelerator only the shape, the dtype and finiteness are checked there (one scalar read);
    input that fails is handed to :func:`check_array`, so the error message is the same either way.
    """
    if _on_accelerator(X):
        ok = X.ndim == 2 and X.numel() > 0 and not X.is_complex() and X.dtype != torch.bool
        if ok and bool(torch.isfinite(X).all()):
            return X.detach().to(torch.float32 if X.device.type == "mps" else torch.float64)
    return check_array(X, name, dtype=np.float64)


def _centre_and_scale(X: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, np.ndarray, float, float]:
    """The float32 data the kernels see, ``(X - mean) / scale``, with the mean, the scale and the mean
    feature variance of the scaled data (what ``tol`` is relative to). NumPy input is prepared in
    NumPy (exactly as in every earlier release), a tensor on an accelerator on that accelerator."""
    mean = X.mean(0)
    scaled = X - mean
    scale = _power_of_two_scale(scaled)
    scaled /= scale  # in place: at 10^6 rows every float64 temporary costs more than an iteration
    if isinstance(scaled, torch.Tensor):
        return scaled.float(), mean.double().cpu().numpy(), scale, float(scaled.var(0, correction=0).mean())
    return torch.from_numpy(scaled.astype(np.float32)), mean, scale, float(np.var(scaled, axis=0).mean())


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
        pots = dist.to(acc_dtype).sum(2)  # (R, t); converting first is faster than sum(dtype=), same sums
        best = pots.argmin(1)
        potential = pots[runs, best]
        closest = dist[runs, best]
        centers[:, c] = X[candidates[runs, best]]
    return centers


def _assign(
    X: torch.Tensor, centers: torch.Tensor, chunk: int, rows: torch.Tensor | None = None, second: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """E-step, Eq. (eq-kmeans-assign), for R runs at once.

    Returns labels (R, m) and ``||c||^2 - 2 x.c`` at the nearest centre (R, m); adding ``||x||^2``
    gives the squared distance. With ``second=True`` also the same quantity at the second-nearest
    centre (the lower bounds of Hamerly's algorithm need it), else ``None``. ``rows`` restricts the
    step to those rows of ``X`` (gathered chunk by chunk, so memory stays ``O(chunk)``). One matmul
    per chunk serves all R runs.
    """
    n_runs, k, d = centers.shape
    flat = centers.reshape(n_runs * k, d)
    c_sq = flat.pow(2).sum(1)
    m = X.shape[0] if rows is None else len(rows)
    labels = torch.empty(n_runs, m, dtype=torch.long, device=X.device)
    nearest = torch.empty(n_runs, m, dtype=X.dtype, device=X.device)
    runner_up = torch.full((n_runs, m), float("inf"), dtype=X.dtype, device=X.device) if second else None
    buffer = X.new_empty(min(chunk, m), n_runs * k)  # one block for all chunks: fresh memory costs page faults
    for start in range(0, m, chunk):
        xb = X[start : start + chunk] if rows is None else X.index_select(0, rows[start : start + chunk])
        block = torch.addmm(c_sq, xb, flat.T, alpha=-2.0, out=buffer[: len(xb)]).view(len(xb), n_runs, k)  # ||x||^2 omitted: same for all j
        values, idx = block.min(2)
        labels[:, start : start + chunk] = idx.T
        nearest[:, start : start + chunk] = values.T
        if runner_up is not None and k > 1:
            block.scatter_(2, idx.unsqueeze(2), float("inf"))
            runner_up[:, start : start + chunk] = block.amin(2).T
    return labels, nearest, runner_up


def _inertia(X: torch.Tensor, center: torch.Tensor, labels: torch.Tensor, chunk: int, acc_dtype: torch.dtype) -> float:
    """Exact ``sum_i ||x_i - mu_{l_i}||^2``, Eq. (eq-kmeans-objective), accumulated in ``acc_dtype``."""
    total = torch.zeros((), dtype=acc_dtype, device=X.device)
    diff = X.new_empty(min(chunk, X.shape[0]), X.shape[1])
    for start in range(0, X.shape[0], chunk):
        part = diff[: len(X[start : start + chunk])]
        torch.index_select(center, 0, labels[start : start + chunk], out=part)
        torch.sub(X[start : start + chunk], part, out=part)
        total += part.square_().to(acc_dtype).sum()  # float32 squares summed in acc_dtype, converted first: fast
    return float(total)


def _own_sq_distances(
    X: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, rows: tuple[torch.Tensor, torch.Tensor], chunk: int
) -> torch.Tensor:
    """``||x_i - c_{l_i}||^2`` for the given (run, row) pairs, from differences (accurate, not expanded).

    ``centers`` is (R, k, d), ``labels`` (R, n) and ``rows`` a pair of index tensors (runs, points).
    """
    runs, points = rows
    k = centers.shape[1]
    flat = centers.reshape(-1, centers.shape[2])
    owner = runs * k + labels[runs, points]  # row of each pair's centre in ``flat``
    out = torch.empty(len(points), dtype=X.dtype, device=X.device)
    for start in range(0, len(points), chunk):
        diff = X.index_select(0, points[start : start + chunk]) - flat.index_select(0, owner[start : start + chunk])
        out[start : start + chunk] = diff.square_().sum(1)
    return out


def _cluster_sums(xb: torch.Tensor, new: torch.Tensor, k: int, old: torch.Tensor | None = None) -> torch.Tensor:
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


def _relocate_empty(
    X: torch.Tensor, sums: torch.Tensor, counts: torch.Tensor, labels: torch.Tensor, own_sq: torch.Tensor
) -> None:
    """Re-seed the empty clusters of one run with the points farthest from their centres (as scikit-learn).

    ``own_sq`` holds every point's squared distance to its own centre; ``sums`` and ``counts`` are
    changed in place.
    """
    empty = torch.nonzero(counts == 0).flatten()
    far = torch.topk(own_sq, len(empty)).indices
    for e, f in zip(empty.tolist(), far.tolist()):
        old, point = int(labels[f]), X[f].to(sums.dtype)
        sums[old] -= point
        counts[old] -= 1
        sums[e] = point
        counts[e] = 1


def _half_gap(centers: torch.Tensor, slack: float) -> torch.Tensor:
    """Half the distance from every centre to its nearest other centre, (R, k), rounded down by ``slack``."""
    c_sq = centers.pow(2).sum(2)
    gap_sq = c_sq.unsqueeze(2) + c_sq.unsqueeze(1) - 2.0 * centers @ centers.transpose(1, 2)
    gap_sq.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    return 0.5 * (gap_sq.amin(2) - slack).clamp(min=0.0).sqrt()


class _Bounds:
    """Hamerly's (2010) bounds for R runs: per point an upper bound on the distance to its own centre
    and a lower bound on the distance to every other centre.

    Distances are float32 and in the expanded form ``||x||^2 - 2 x.c + ||c||^2``, so each carries a rounding error;
    ``margin`` (per point, on squared distances) is larger than that error. A point is skipped only
    when its bounds are apart by the margin, i.e. when the full E-step could not have changed its
    label: the labels are those of plain Lloyd, with a fraction of the distance computations.
    """

    def __init__(self, X: torch.Tensor, centers: torch.Tensor, chunk: int, pair_chunk: int) -> None:
        d = X.shape[1]
        x_sq = torch.linalg.vector_norm(X, dim=1).square_()  # for the bounds only; no (n, d) temporary
        # Centres are means of points after the first M-step, so no centre is longer than the longest point.
        largest = max(float(x_sq.max()), float(centers.pow(2).sum(2).max()))
        self.margin = 4.0 * max(d, 16) * float(torch.finfo(X.dtype).eps) * (x_sq + largest)
        self.X, self.x_sq, self.chunk, self.pair_chunk = X, x_sq, chunk, pair_chunk
        self.labels, nearest, runner_up = _assign(X, centers, chunk, second=True)
        self.upper = (nearest + x_sq + self.margin).clamp_(min=0.0).sqrt_()
        self.lower = (runner_up + x_sq - self.margin).clamp_(min=0.0).sqrt_()

    def keep(self, runs: torch.Tensor) -> None:
        """Drop the state of runs that left the batch."""
        self.labels, self.upper, self.lower = self.labels[runs], self.upper[runs], self.lower[runs]

    def widen(self, new: torch.Tensor, old: torch.Tensor) -> None:
        """The centres moved from ``old`` to ``new`` (both (R, k, d)): widen the bounds by the moves."""
        delta = (new - old).pow(2).sum(2).sqrt_().mul_(1.0 + 1e-5)  # (R, k), rounded up
        self.upper += delta.gather(1, self.labels)
        if delta.shape[1] > 1:
            top = delta.topk(2, dim=1)
            # a point's own centre does not bound the others: where it moved most, use the second-largest move
            other = torch.where(self.labels == top.indices[:, :1], top.values[:, 1:2], top.values[:, :1])
            self.lower.sub_(other).clamp_(min=0.0)

    def assign(self, centers: torch.Tensor) -> torch.Tensor:
        """Hamerly's E-step: new labels (R, n) for the centres (R, k, d); the bounds follow.

        A point keeps its label when ``u^2 + margin <= m^2`` with ``m = max(lower, 2 s - u)``, ``s``
        being half the gap from its centre to the nearest other one. Otherwise ``u`` is tightened
        to the exact distance and the test repeated; the points still in doubt get the full E-step,
        one matmul per chunk for all runs. When most rows are in doubt (the first iterations, or
        many runs in lock-step) every row gets it, which is cheaper than gathering them.
        """
        margin, up, low = self.margin, self.upper, self.lower
        bound = _half_gap(centers, float(margin.max())).gather(1, self.labels).mul_(2.0).sub_(up)
        torch.maximum(bound, low, out=bound)
        doubt = up.square().add_(margin) > bound.square_()
        if doubt.any(0).float().mean() > 0.5:  # most rows in doubt: the plain E-step, without gathering them
            labels, nearest, runner_up = _assign(self.X, centers, self.chunk, second=True)
            self.upper = (nearest + self.x_sq + margin).clamp_(min=0.0).sqrt_()
            self.lower = (runner_up + self.x_sq - margin).clamp_(min=0.0).sqrt_()
            self.labels = labels
            return labels
        pairs = torch.nonzero(doubt, as_tuple=True)
        exact = _own_sq_distances(self.X, centers, self.labels, pairs, self.pair_chunk).mul_(1.0 + 1e-5)
        up[pairs] = exact.add_(margin[pairs[1]]).sqrt_()
        doubt[pairs] = up[pairs].square() + margin[pairs[1]] > bound[pairs]
        rows = torch.nonzero(doubt.any(0)).flatten()
        labels = self.labels.clone()
        if len(rows):
            lab, nearest, runner_up = _assign(self.X, centers, self.chunk, rows=rows, second=True)
            labels[:, rows] = lab
            x_sq, m = self.x_sq[rows], margin[rows]
            up[:, rows] = (nearest + x_sq + m).clamp_(min=0.0).sqrt_()
            low[:, rows] = (runner_up + x_sq - m).clamp_(min=0.0).sqrt_()
        self.labels = labels
        return labels


def _lloyd(
    X: torch.Tensor,
    centers: torch.Tensor,
    max_iter: int,
    tol: float,
    chunk: int,
    acc_dtype: torch.dtype,
    bounds: bool = True,
) -> tuple[torch.Tensor, np.ndarray]:
    """Lloyd iterations for R runs in lock-step; each run leaves the batch when it converges.

    The M-step, Eq. (eq-kmeans-update), keeps per-cluster sums and counts (in ``acc_dtype``) and
    updates them only with the points whose label changed, so once few points move an
    iteration costs little more than its E-step. The result equals recomputing the means. With
    ``bounds`` the E-step is Hamerly's (see ``_Bounds``), which gives the labels of the full E-step
    (``bounds=False``) while computing few distances once the centres settle.

    Returns the final centres (R, k, d) and the iterations of every run.
    """
    n_runs, k, d = centers.shape
    n = X.shape[0]
    pair_chunk = max(1, chunk * n_runs * k // d)  # (point, centre) pairs per block: a distance block's memory
    final = centers.clone()
    n_iter = np.full(n_runs, max_iter)
    state = _Bounds(X, final, chunk, pair_chunk) if bounds else None
    labels = state.labels if state is not None else _assign(X, final, chunk)[0]
    # the state below (labels, sums, counts, bounds) holds one row per run still in the batch
    sums = torch.zeros(n_runs, k, d, dtype=acc_dtype, device=X.device)
    for start in range(0, n, chunk):
        for r in range(n_runs):
            sums[r] += _cluster_sums(X[start : start + chunk], labels[r, start : start + chunk], k).to(acc_dtype)
    counts = torch.stack([torch.bincount(labels[r], minlength=k) for r in range(n_runs)]).to(acc_dtype)
    active = list(range(n_runs))
    for it in range(max_iter):
        old = final[active]
        if it > 0:  # E-step with the centres of the last M-step
            previous = labels
            labels = state.assign(old) if state is not None else _assign(X, old, chunk)[0]
        keep = []
        for j, r in enumerate(active):
            if it > 0:
                moved = torch.nonzero(labels[j] != previous[j]).flatten()
                if len(moved) == 0:  # scikit-learn's strict convergence: no label changed
                    n_iter[r] = it + 1
                    continue
                lab_new, lab_old = labels[j, moved], previous[j, moved]
                sums[j] += _cluster_sums(X.index_select(0, moved), lab_new, k, lab_old).to(acc_dtype)
                counts[j] += (torch.bincount(lab_new, minlength=k) - torch.bincount(lab_old, minlength=k)).to(acc_dtype)
            run_sums, run_counts = sums[j], counts[j]
            if (run_counts == 0).any():  # relocate on copies: sums/counts must stay those of the labels
                run_sums, run_counts = run_sums.clone(), run_counts.clone()
                # expanded distances, as the plain E-step has them (the farthest points must not depend on the bounds)
                own_sq = _assign(X, old[j : j + 1], chunk)[1][0] + X.pow(2).sum(1)
                _relocate_empty(X, run_sums, run_counts, labels[j], own_sq)
            # a cluster emptied by relocation keeps its old centre instead of becoming 0/0
            means = (run_sums / run_counts.clamp(min=1).unsqueeze(1)).to(X.dtype)
            new = torch.where(run_counts.unsqueeze(1) > 0, means, old[j])
            shift = (new - old[j]).pow(2).sum(dtype=acc_dtype)
            final[r] = new
            if float(shift) <= tol:  # scikit-learn's relative tolerance (tol already scaled)
                n_iter[r] = it + 1
            else:
                keep.append(j)
        if not keep:
            break
        if state is not None:
            state.widen(final[active], old)
        if len(keep) < len(active):
            rows = torch.as_tensor(keep, device=X.device)
            labels, sums, counts = labels[rows], sums[rows], counts[rows]
            if state is not None:
                state.keep(rows)
            active = [active[j] for j in keep]
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
    algorithm : {'hamerly', 'lloyd'}, default='hamerly'
        How the assignment step is computed; both give the same labels. ``'lloyd'`` computes every
        distance in every iteration; ``'hamerly'`` keeps bounds on each point's distances (Hamerly
        2010) and recomputes only the points whose nearest centre may have changed.
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
        algorithm: str = "hamerly",
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
        self.algorithm = algorithm
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
        X = _validated(X, "X")
        n, d = X.shape
        k = check_n_clusters(self.n_clusters, n, minimum=1)
        n_init = check_positive("n_init", self.n_init, integer=True)
        max_iter = check_positive("max_iter", self.max_iter, integer=True)
        tol = check_positive("tol", self.tol, allow_zero=True)
        if self.algorithm not in ("hamerly", "lloyd"):
            raise ValueError(f"algorithm={self.algorithm!r} must be 'hamerly' or 'lloyd' (both give the same labels).")
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
        Xt, mean, scale, variance = _centre_and_scale(X)
        Xt, tol_abs = Xt.to(device), variance * tol
        chunk = self._chunk(n, n_init * k)

        if isinstance(init, np.ndarray):
            centers = torch.from_numpy(((init - mean) / scale).astype(np.float32)).to(device).unsqueeze(0)
        elif init == "random":
            idx = np.stack([rng.choice(n, size=k, replace=False) for _ in range(n_init)])
            centers = Xt[torch.as_tensor(idx, device=device)]
        else:
            centers = kmeans_plusplus(Xt, k, rng, n_init, acc_dtype)

        centers, n_iter = _lloyd(Xt, centers, max_iter, tol_abs, chunk, acc_dtype, bounds=self.algorithm == "hamerly")
        # Final E-step so that labels match the centres; the expanded distances rank the runs,
        # the exact float64 inertia is then computed for the winner only.
        labels, partial, _ = _assign(Xt, centers, chunk)
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
        X = _validated(X, "X")
        check_feature_width(X, self.n_features_in_, "X", type(self).__name__)
        if isinstance(X, torch.Tensor):
            Xt = ((X - torch.as_tensor(self._x_mean, dtype=X.dtype, device=X.device)) / self._x_scale).float()
        else:
            Xt = torch.from_numpy(((X - self._x_mean) / self._x_scale).astype(np.float32))
        Xt = Xt.to(self.device_)
        centers = (self.cluster_centers_.astype(np.float64) - self._x_mean) / self._x_scale
        centers = torch.from_numpy(centers.astype(np.float32)).to(self.device_)
        return Xt, centers

    def predict(self, X: Any) -> np.ndarray:
        """Index of the closest centre for every row of ``X``."""
        Xt, centers = self._centred(X)
        labels = _assign(Xt, centers.unsqueeze(0), self._chunk(len(Xt), centers.shape[0]))[0]
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
        labels = _assign(Xt, centers.unsqueeze(0), chunk)[0]
        return -_unscale_sq(_inertia(Xt, centers, labels[0], chunk, acc_dtype), self._x_scale)
