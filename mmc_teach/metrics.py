"""External clustering metrics: compare a clustering with ground-truth classes.

The chapter "Clustering and how to measure it" (``01_clustering_metrics``) derives each one:

- :func:`clustering_accuracy` -- ACC, Eq. (eq-acc): best one-to-one map of clusters to classes
  (Hungarian algorithm, Kuhn 1955), then plain accuracy.
- :func:`purity` -- Eq. (eq-purity): every cluster votes for its majority class.
- :func:`pairwise_f_score` -- pair-counting F1, Eq. (eq-pair-f), as reported by DM2C (Jiang et al. 2019).
- NMI (Eq. eq-nmi, Vinh et al. 2010) and ARI (Eq. eq-ari, Hubert & Arabie 1985) come from scikit-learn.
- :func:`evaluate` returns all five as a dict.

Two helpers are shared with the multi-modal methods (JECL aligns image and text clusters, CMMC
matches k-means pseudo-labels to its predictions): :func:`hungarian_match` and :func:`align_labels`.

Labels may be any hashable values of one kind (ints, negative ints, strings); the number of
clusters need not equal the number of classes. Unmatched clusters count as wrong in ACC.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix, pair_confusion_matrix

from ._base import to_numpy

__all__ = [
    "clustering_accuracy",
    "purity",
    "pairwise_f_score",
    "evaluate",
    "hungarian_match",
    "align_labels",
]


_PER_MODALITY_HINT = (
    "Pass one label per sample: for per-modality labels (e.g. DM2C's labels_, one array per modality) "
    "pass np.concatenate(labels) in the same modality order as the other argument."
)


def _label_kind(value: Any) -> str:
    if isinstance(value, (str, np.str_)):
        return "str"
    if isinstance(value, (bytes, np.bytes_)):
        return "bytes"
    if isinstance(value, (numbers.Number, np.generic)):
        return "number"
    return type(value).__name__


def _sequence_to_array(y: Any, name: str) -> np.ndarray:
    """``np.asarray`` for a list or tuple of labels, without its silent merges and raw shape errors."""
    if any(isinstance(v, (list, tuple, np.ndarray)) or hasattr(v, "shape") and np.ndim(v) > 0 for v in y):
        lengths = [len(v) if hasattr(v, "__len__") else 1 for v in y]
        raise ValueError(
            f"{name} is a sequence of {len(y)} label arrays (lengths {lengths}), not one 1-D label array. "
            + _PER_MODALITY_HINT
        )
    # np.asarray([0, "0"]) turns every label into a string, so 0 and "0" would become one cluster.
    kinds = sorted({_label_kind(v) for v in y if v is not None and not (isinstance(v, float) and v != v)})
    if len(kinds) > 1:
        raise ValueError(f"{name} mixes label types that cannot be compared ({', '.join(kinds)}); "
                         "use labels of one kind (e.g. all ints or all strings).")
    return to_numpy(y)


def _check_label_vector(y: Any, name: str) -> np.ndarray:
    arr = _sequence_to_array(y, name) if isinstance(y, (list, tuple)) else to_numpy(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of labels; got {arr.ndim}-D input with shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty; it needs at least one label.")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN ({int(np.isnan(arr).sum())} entries); every sample needs a label.")
    if arr.dtype == object:
        missing = sum(v is None or (isinstance(v, float) and v != v) for v in arr)
        if missing:
            raise ValueError(f"{name} contains {missing} missing labels (None or NaN); every sample needs a label.")
    return arr


def _check_labels(y_true: Any, y_pred: Any, names: tuple[str, str] = ("y_true", "y_pred")) -> tuple[np.ndarray, np.ndarray]:
    """Validate two label vectors and return them as integer codes 0..c-1 (sorted label order)."""
    a = _check_label_vector(y_true, names[0])
    b = _check_label_vector(y_pred, names[1])
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} have different lengths: {a.shape[0]} != {b.shape[0]}.")
    return a, b


def _encode(y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        values, codes = np.unique(y, return_inverse=True)
    except TypeError:
        raise ValueError(f"{name} mixes label types that cannot be compared (e.g. ints and strings).") from None
    return values, codes.reshape(-1)


def _contingency(y_true: Any, y_pred: Any, names: tuple[str, str] = ("y_true", "y_pred")):
    """Validated contingency table: rows = classes, columns = clusters, plus both label sets."""
    a, b = _check_labels(y_true, y_pred, names)
    classes, a_codes = _encode(a, names[0])
    clusters, b_codes = _encode(b, names[1])
    table = contingency_matrix(a_codes, b_codes)  # (n_classes, n_clusters), integer counts
    return np.asarray(table), classes, clusters


def _python_scalar(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def hungarian_match(y_true: Any, y_pred: Any) -> dict[Any, Any]:
    """Maximum one-to-one matching of predicted clusters to true classes.

    Solves ``max sum_j n_{pi(j), j}`` over injective maps ``pi`` with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment` on the contingency table, Kuhn 1955).

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Reference labels and predicted cluster labels (any comparable values).

    Returns
    -------
    mapping : dict
        ``{predicted label: true label}`` for the matched clusters. When there are more clusters
        than classes the extra clusters are absent from the dict.

    Examples
    --------
    >>> hungarian_match([0, 0, 1, 1], ["b", "b", "a", "a"])
    {'b': 0, 'a': 1}
    """
    return _match(*_contingency(y_true, y_pred))


def _match(table: np.ndarray, classes: np.ndarray, clusters: np.ndarray) -> dict[Any, Any]:
    rows, cols = linear_sum_assignment(table, maximize=True)
    return {_python_scalar(clusters[c]): _python_scalar(classes[r]) for r, c in zip(rows, cols)}


def align_labels(reference: Any, labels: Any) -> np.ndarray:
    """Rename ``labels`` so that they agree with ``reference`` as much as possible.

    Each cluster in ``labels`` is renamed to the reference label it is matched to by
    :func:`hungarian_match`. Clusters that get no partner (more clusters than reference labels)
    receive fresh ids that occur nowhere in ``reference``: for integer references the integers
    ``max(reference) + 1, + 2, ...``, otherwise the integers ``0, 1, ...`` in an object array.
    The partition itself is unchanged: only the names move.

    Examples
    --------
    >>> align_labels([0, 0, 1, 1, 2], [5, 5, 7, 7, 7]).tolist()
    [0, 0, 1, 1, 1]
    """
    table, ref_values, lab_values = _contingency(reference, labels, ("reference", "labels"))
    mapping = _match(table, ref_values, lab_values)
    lab = to_numpy(labels)
    ref = to_numpy(reference)
    integer = ref.dtype.kind in "iu"
    new_names: list[Any] = []
    fresh = int(ref.max()) + 1 if integer else 0
    for value in lab_values:
        key = _python_scalar(value)
        if key in mapping:
            new_names.append(mapping[key])
        else:
            new_names.append(fresh)
            fresh += 1
    _, codes = _encode(lab, "labels")
    out_dtype = ref.dtype if integer and fresh <= np.iinfo(ref.dtype).max else (np.int64 if integer else object)
    return np.asarray(new_names, dtype=out_dtype)[codes]


def clustering_accuracy(y_true: Any, y_pred: Any) -> float:
    """Unsupervised clustering accuracy (ACC), Eq. (eq-acc).

    ``ACC = max_pi (1/n) sum_i 1[y_i = pi(c_i)]`` over one-to-one maps ``pi`` from clusters to
    classes. Samples in clusters that are not matched to any class count as errors, so a
    clustering with more clusters than classes cannot reach 1.

    Examples
    --------
    >>> clustering_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    table, _, _ = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / table.sum())


def purity(y_true: Any, y_pred: Any) -> float:
    """Purity, Eq. (eq-purity): ``(1/n) sum_j max_c n_{c,j}``.

    Every cluster is credited with its majority class. It reaches 1 for one cluster per sample,
    so it only means something when the number of clusters is fixed.

    Examples
    --------
    >>> purity([0, 0, 0, 1], [0, 0, 1, 1])
    0.75
    """
    table, _, _ = _contingency(y_true, y_pred)
    return float(table.max(axis=0).sum() / table.sum())


def pairwise_f_score(y_true: Any, y_pred: Any) -> float:
    """Pair-counting F1 score, Eq. (eq-pair-f): ``2 TP / (2 TP + FP + FN)``.

    A pair of samples is a true positive when both labelings put it together, a false
    positive when only ``y_pred`` does, a false negative when only ``y_true`` does. When neither
    labeling puts any pair together (all singletons) the two agree and the score is 1.

    Examples
    --------
    >>> pairwise_f_score([0, 0, 0, 1], [0, 0, 1, 1])  # TP = 1, FP = 1, FN = 2
    0.4
    """
    a, b = _check_labels(y_true, y_pred)
    _, a_codes = _encode(a, "y_true")
    _, b_codes = _encode(b, "y_pred")
    # pair_confusion_matrix counts ordered pairs; the factor 2 cancels in the ratio.
    (_, fp), (fn, tp) = pair_confusion_matrix(a_codes, b_codes)
    denominator = 2 * int(tp) + int(fp) + int(fn)
    if denominator == 0:
        return 1.0
    return float(2 * int(tp) / denominator)


def evaluate(y_true: Any, y_pred: Any) -> dict[str, float]:
    """All five metrics of the book: ``{'acc', 'nmi', 'ari', 'f', 'purity'}``.

    NMI uses the arithmetic mean of the two entropies (scikit-learn's default).

    Examples
    --------
    >>> evaluate([0, 0, 1, 1], [1, 1, 0, 0])
    {'acc': 1.0, 'nmi': 1.0, 'ari': 1.0, 'f': 1.0, 'purity': 1.0}
    """
    a, b = _check_labels(y_true, y_pred)
    _, a_codes = _encode(a, "y_true")
    _, b_codes = _encode(b, "y_pred")
    return {
        "acc": clustering_accuracy(a_codes, b_codes),
        "nmi": float(normalized_mutual_info_score(a_codes, b_codes, average_method="arithmetic")),
        "ari": float(adjusted_rand_score(a_codes, b_codes)),
        "f": pairwise_f_score(a_codes, b_codes),
        "purity": purity(a_codes, b_codes),
    }
