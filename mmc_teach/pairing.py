"""Between paired and mixed-modal data: the pairing split and the missing-view convention.

Paired methods (JECL, CMMC) see every sample in both modalities; DM2C sees every sample in one.
Real data sits in between: a fraction rho of the samples has both views, the rest one.
:func:`pairing_split` makes such data from a paired data set: rho = 1 keeps every pair, and rho = 0
is DM2C's mixed-modal split (:func:`mixed_modal_split`, every sample keeps one view) exactly.

**Convention for a missing view.** All views keep one row per sample; a sample that lacks view v has
an all-NaN row in view v. :func:`missing_view_mask` (all views) and :func:`observed_rows` (one view)
turn that into boolean masks, and reject what would be ambiguous: a partly-NaN row (missing, or a bad
value?) and a sample without any view. :class:`mmc_teach.jecl.JECL` reads missing captions and missing
images this way, :class:`mmc_teach.cmmc.CMMC` learns from samples that lack a modality, and
``DM2C(...).fit(views, paired=True)`` (:class:`mmc_teach.dm2c.DM2C`) lets the samples that have both
train its translation. Chapter ``book/09_pairing.ipynb`` compares them along the paired fraction.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


def has_missing_rows(X: Any) -> bool:
    """Whether ``X`` is a dense 2-D float array holding NaN: then the missing-view convention applies
    (:func:`observed_rows` tells which rows are missing and rejects partly-NaN ones)."""
    return isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f" and bool(np.isnan(X).any())


def any_missing_rows(views: Any) -> bool:
    """Whether a list of views uses the convention: some view is a float array holding NaN."""
    return isinstance(views, Sequence) and not isinstance(views, (str, bytes)) and any(
        has_missing_rows(V) for V in views)


def observed_rows(X: Any, name: str = "the view") -> np.ndarray:
    """``observed[i]`` is True when row ``i`` of one view is not all NaN (the sample has that view).

    Raises ``TypeError`` for a view that cannot hold NaN (sparse, integer, not 2-D) and
    ``ValueError`` for a row that is only partly NaN (missing, or a bad value?).
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2 or not np.issubdtype(X.dtype, np.floating):
        raise TypeError(f"{name} must be a dense 2-D float array (a missing row is all NaN); "
                        f"got {type(X).__name__}{'' if not hasattr(X, 'dtype') else ' of ' + str(X.dtype)}.")
    nan = np.isnan(X)
    missing = nan.all(axis=1)
    partly = np.flatnonzero(nan.any(axis=1) & ~missing)
    if len(partly):
        raise ValueError(f"{name}: rows {partly[:5].tolist()}{' ...' if len(partly) > 5 else ''} are partly NaN; "
                         "a missing view is an all-NaN row, and NaN inside an observed row is not allowed.")
    return ~missing


def missing_view_mask(views: list[Any], names: list[str] | None = None) -> np.ndarray:
    """``present[i, v]`` is True when sample ``i`` has view ``v`` (its row is not all NaN).

    Raises what :func:`observed_rows` raises for each view (named ``names[v]`` in the message,
    ``"view v"`` by default), and ``ValueError`` for views of different lengths, for a view that no
    sample has (every row NaN: nothing can be learnt of it) and for a sample that has no view at all.
    """
    if len(views) == 0:
        raise ValueError("missing_view_mask needs at least one view.")
    names = names or [f"view {v}" for v in range(len(views))]
    present = [observed_rows(V, name) for V, name in zip(views, names)]
    if len({len(p) for p in present}) != 1:
        raise ValueError(f"every view needs one row per sample; got rows {[len(p) for p in present]}.")
    for observed, name in zip(present, names):
        if len(observed) and not observed.any():
            raise ValueError(f"{name} has no observed row (every row is NaN): no sample has this view, so "
                             "nothing can be learnt from it; leave it out of the list of views.")
    present = np.column_stack(present)
    empty = np.flatnonzero(~present.any(axis=1))
    if len(empty):
        raise ValueError(f"samples {empty[:5].tolist()}{' ...' if len(empty) > 5 else ''} have no view at all.")
    return present


def mean_imputed_kmeans(views: list[np.ndarray], n_clusters: int, *, n_init: int = 20, random_state: int = 0,
                        device: str | None = None) -> np.ndarray:
    """k-means on the concatenated views, a missing row replaced by its view's mean.

    Each view is standardised on its observed rows (:func:`mmc_teach.utils.standardise`), so the
    mean is 0; Eq. (pair-impute) of chapter ``09_pairing``. Returns one label per sample.
    """
    from .kmeans import KMeans
    from .utils import standardise

    missing_view_mask(views)  # the convention's checks
    X = np.hstack([np.nan_to_num(standardise(V), nan=0.0) for V in views])
    return KMeans(n_clusters, n_init=n_init, random_state=random_state, device=device).fit_predict(X)


def aligned_per_view_kmeans(views: list[np.ndarray], n_clusters: int, *, n_init: int = 20, random_state: int = 0,
                            device: str | None = None) -> np.ndarray:
    """k-means on each view's observed (standardised) rows, the labellings aligned by the pairs.

    The clusters of every further view are renamed to the first view's by the Hungarian matching of
    the two labellings on the samples that have both (Eq. pair-align of chapter ``09_pairing``; a
    cluster the matching leaves out takes a free name). A sample takes the label of the first view
    it has. Without pairs nothing is renamed: the labellings stay as k-means numbered them.
    """
    from .kmeans import KMeans
    from .metrics import hungarian_match
    from .utils import standardise

    present = missing_view_mask(views)
    labels = np.full(present.shape, -1)
    for v, (V, rows) in enumerate(zip(views, present.T)):
        labels[rows, v] = KMeans(n_clusters, n_init=n_init, random_state=random_state,
                                 device=device).fit_predict(standardise(V)[rows])
    for v in range(1, len(views)):
        both = present[:, 0] & present[:, v]
        if both.any():
            rename = hungarian_match(labels[both, 0], labels[both, v])  # {cluster of view v: cluster of view 0}
            free = iter(sorted(set(range(n_clusters)) - set(rename.values())))
            table = np.array([rename[c] if c in rename else next(free) for c in range(n_clusters)])
            labels[:, v] = np.where(present[:, v], table[labels[:, v].clip(0)], -1)
    first = present.argmax(axis=1)  # the first view each sample has
    return labels[np.arange(len(labels)), first]


@dataclass
class MixedModalSplit:
    """A mixed-modal train/test split: every pair keeps ONE of its two modalities.

    ``train_views[m]`` holds the samples seen only in modality ``m`` (0 = first view, 1 = second),
    ``train_labels[m]`` their classes and ``train_pairs[m]`` the row of the original paired dataset
    each came from (so one can look at what was thrown away); likewise for ``test_*``.
    """

    train_views: list[np.ndarray]
    train_labels: list[np.ndarray]
    train_pairs: list[np.ndarray]
    test_views: list[np.ndarray]
    test_labels: list[np.ndarray]
    test_pairs: list[np.ndarray]
    view_names: list[str]
    n_clusters: int


def _two_paired_views(dataset: Any, what: str) -> tuple[list, np.ndarray]:
    """The two paired views and the labels of ``dataset``, checked for ``what`` needs them."""
    views, labels = getattr(dataset, "views", None), getattr(dataset, "labels", None)
    if views is None or labels is None:
        raise TypeError("dataset must have .views (a list of arrays) and .labels, like a MultiModalDataset.")
    if len(views) != 2:
        raise ValueError(f"dataset has {len(views)} views; {what} needs exactly 2.")
    labels = np.asarray(labels)
    if any(len(V) != len(labels) for V in views):
        raise ValueError(f"dataset views must be paired with the labels; got rows {[len(V) for V in views]} and {len(labels)} labels.")
    return list(views), labels


def disjoint_views_split(dataset: Any, random_state: int = 0) -> MixedModalSplit:
    """The fully unpaired ("100 % missing") protocol of SMILE (Zeng et al., TPAMI 2023) and CPMN
    ("Learning from disjoint views", 2025), the setting of CPMN's Table 1 (DM2C 0.351 ACC on MNIST-USPS).

    Every one of the n pairs keeps exactly one of its two views, chosen by a fair coin per pair (not an
    exact half, not stratified by class); all n kept views are clustered together into
    ``n_clusters`` clusters, and ACC is computed over those n samples. The result is in ``train_*``;
    ``test_*`` is empty, as the protocol holds nothing out.

    Where it differs from :func:`mixed_modal_split` (DM2C's own protocol): no stratified third is held
    out, so the whole data set is clustered and scored. Where the papers' code differs from this split
    (read in their repositories; ``docs/research/dm2c_fully_unpaired_protocol.md``):

    - SMILE's MNIST-USPS is not the ``mnist_usps`` file: it draws 500 digits per class from MNIST's and
      USPS's training sets (USPS resized to 28 x 28) and rescales each view to [-1, 1];
    - CPMN's code uses this very file and z-scores each view on its kept rows, but draws its coins
      without a seed; here ``random_state`` fixes them (SMILE seeds them too).
    """
    views, labels = _two_paired_views(dataset, "a fully unpaired split")
    first = np.random.RandomState(random_state).random_sample(len(labels)) < 0.5  # one fair coin per pair
    kept = [np.flatnonzero(first), np.flatnonzero(~first)]
    nothing = np.zeros(0, dtype=np.int64)
    return MixedModalSplit(
        [np.asarray(V)[k] for V, k in zip(views, kept)], [labels[k] for k in kept], kept,
        [np.asarray(V)[:0] for V in views], [labels[:0], labels[:0]], [nothing, nothing],
        view_names=list(getattr(dataset, "view_names", None) or ["view 0", "view 1"]),
        n_clusters=int(len(np.unique(labels))),
    )


def mixed_modal_split(
    dataset: Any,
    test_size: float = 1 / 3,
    keep_first_prob: float = 0.5,
    random_state: int = 0,
) -> MixedModalSplit:
    """The DM2C protocol (:cite:`jiang2019dm2c`), rho = 0 of :func:`mmc_teach.pairing.pairing_split`:
    a stratified train/test split of a two-view dataset, then each pair keeps only its first modality
    with probability ``keep_first_prob``,
    else only its second. The official code drew both at random without a seed; here
    ``random_state`` fixes them.

    Parameters
    ----------
    dataset : MultiModalDataset
        Any dataset with exactly two paired ``views`` and ``labels``.
    test_size : float in (0, 1)
        Fraction of pairs held out (stratified by class).
    keep_first_prob : float in [0, 1]
        Probability that a pair is kept as its first modality.
    random_state : int
        Seed of the split and of the coin flips.

    Returns
    -------
    MixedModalSplit
    """
    from sklearn.model_selection import train_test_split

    views, labels = _two_paired_views(dataset, "a mixed-modal split")
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real) or not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size={test_size!r} must be a number in (0, 1).")
    if isinstance(keep_first_prob, bool) or not isinstance(keep_first_prob, numbers.Real) or not 0.0 <= keep_first_prob <= 1.0:
        raise ValueError(f"keep_first_prob={keep_first_prob!r} must be a number in [0, 1].")
    rng = np.random.RandomState(random_state)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_size, stratify=labels, random_state=rng.randint(2**31 - 1)
    )
    parts = {}
    for part, idx in (("train", np.sort(train_idx)), ("test", np.sort(test_idx))):
        # One coin per pair: heads keeps the first modality, tails the second.
        first = rng.random_sample(len(idx)) < keep_first_prob
        kept = [idx[first], idx[~first]]
        parts[part] = (
            [np.asarray(V)[k] for V, k in zip(views, kept)],
            [labels[k] for k in kept],
            kept,
        )
    names = list(getattr(dataset, "view_names", None) or ["view 0", "view 1"])
    return MixedModalSplit(
        *parts["train"], *parts["test"], view_names=names, n_clusters=int(len(np.unique(labels)))
    )


@dataclass
class PairingSplit:
    """A train/test split where a fraction of the samples keeps both views and the rest one.

    ``train_views[v]`` has one row per training sample, all NaN where the sample lacks view ``v``;
    ``train_present`` is the matching ``(n_train, 2)`` mask, ``train_rows`` the row of the original
    data set each sample came from (in increasing order); likewise for ``test_*``.
    """

    train_views: list[np.ndarray]
    train_present: np.ndarray
    train_labels: np.ndarray
    train_rows: np.ndarray
    test_views: list[np.ndarray]
    test_present: np.ndarray
    test_labels: np.ndarray
    test_rows: np.ndarray
    paired_fraction: float
    view_names: list[str]
    n_clusters: int


def pairing_split(dataset: Any, paired_fraction: float, test_size: float = 1 / 3,
                  random_state: int = 0) -> PairingSplit:
    """Keep both views for ``paired_fraction`` of the samples, one view for the rest.

    First the mixed-modal split of DM2C with the same ``test_size`` and ``random_state`` (a stratified
    train/test split, then a fair coin per sample for the view it keeps). Then, in each part, a
    random ``round(paired_fraction * n)`` of the samples get their other view back. The samples paired
    at a smaller fraction are a subset of those paired at a larger one (one permutation, a prefix of
    it), so a sweep over the fraction changes one thing at a time.

    Parameters
    ----------
    dataset : MultiModalDataset
        A data set with exactly two paired dense ``views`` and ``labels``.
    paired_fraction : float in [0, 1]
        rho: 1 gives paired data, 0 DM2C's mixed-modal split.
    test_size : float in (0, 1)
        Fraction of samples held out (stratified by class).
    random_state : int
        Seed of the split, the coins and the choice of the paired samples.
    """
    if (isinstance(paired_fraction, bool) or not isinstance(paired_fraction, numbers.Real)
            or not 0.0 <= paired_fraction <= 1.0):
        raise ValueError(f"paired_fraction={paired_fraction!r} must be a number in [0, 1].")
    mixed = mixed_modal_split(dataset, test_size=test_size, keep_first_prob=0.5, random_state=random_state)
    views = []
    for v, V in enumerate(dataset.views):
        if hasattr(V, "toarray"):
            raise TypeError(f"view {v} is sparse; a missing view is an all-NaN row, so pairing_split needs dense views.")
        V = np.asarray(V)
        views.append(V if V.dtype == np.float64 else V.astype(np.float32))
    labels = np.asarray(dataset.labels)
    # A stream of its own, so that the mixed-modal part is the same for every fraction.
    rng = np.random.default_rng([random_state, 1])
    parts = {}
    for part, kept in (("train", mixed.train_pairs), ("test", mixed.test_pairs)):
        rows = np.sort(np.concatenate(kept))
        present = np.column_stack([np.isin(rows, kept[0]), np.isin(rows, kept[1])])
        paired = rng.permutation(len(rows))[: int(round(paired_fraction * len(rows)))]
        present[paired] = True
        part_views = []
        for v, V in enumerate(views):
            X = V[rows].copy()
            X[~present[:, v]] = np.nan
            part_views.append(X)
        parts[part] = (part_views, present, labels[rows], rows)
    return PairingSplit(*parts["train"], *parts["test"], paired_fraction=float(paired_fraction),
                        view_names=mixed.view_names, n_clusters=mixed.n_clusters)
