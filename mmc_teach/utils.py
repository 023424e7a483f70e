"""Public helpers for notebooks and scripts: pick a device, seed everything, adapt multi-view estimators."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._base import check_array, check_feature_width, get_device

__all__ = ["get_device", "set_seed", "standardise", "ViewAdapter"]


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for notebooks and scripts).

    The estimators never need this: they take ``random_state`` and leave global state alone.
    Call it at the top of a notebook so from-scratch cells that use global generators repeat.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def standardise(X: np.ndarray) -> np.ndarray:
    """Zero mean and unit variance per feature (float32); constant features become 0, not NaN.

    The book's common preprocessing for concatenating views of different scales. A view with
    missing samples (all-NaN rows, :mod:`mmc_teach.pairing`) is scaled by its observed rows, and the
    missing rows stay NaN.
    """
    X = np.asarray(X, dtype=np.float64)
    if np.isnan(X).any():
        mean, std = np.nanmean(X, axis=0), np.nanstd(X, axis=0)
    else:
        mean, std = X.mean(axis=0), X.std(axis=0)
    return ((X - mean) / np.where(std > 0, std, 1.0)).astype(np.float32)


class ViewAdapter(ClusterMixin, BaseEstimator):
    """Run a multi-view estimator on ONE array, e.g. for scikit-learn's estimator checks or a pipeline.

    ``split="columns"`` (paired methods: JECL, CMMC) cuts the columns of ``X`` into ``n_views``
    consecutive blocks (``np.array_split``), one view each, all rows paired. ``split="rows"``
    (mixed-modal DM2C) gives the first half of the rows to the first modality and the rest to the
    second, every row keeping all columns; the estimator's ``labels_`` (modality a's rows, then
    b's) are then in the order of ``X``. The adapter is itself a scikit-learn estimator: the
    wrapped one is cloned at every ``fit`` (``estimator_``).

    Examples
    --------
    >>> from mmc_teach import CMMC                                             # doctest: +SKIP
    >>> ViewAdapter(CMMC(3, pretrain_epochs=1)).fit(X).labels_                 # doctest: +SKIP
    """

    def __init__(self, estimator: BaseEstimator, *, n_views: int = 2, split: str = "columns") -> None:
        self.estimator = estimator
        self.n_views = n_views
        self.split = split

    def _views(self, X: Any) -> list[np.ndarray]:
        if self.split not in ("columns", "rows"):
            raise ValueError(f"split={self.split!r} must be 'columns' or 'rows'.")
        X = check_array(X, "X", dtype=np.float64)
        if self.split == "rows":
            if len(X) < 4:
                raise ValueError(f"X has {len(X)} rows; split='rows' needs at least 4 (2 per modality).")
            return [X[: len(X) // 2], X[len(X) // 2 :]]
        if X.shape[1] < self.n_views:
            raise ValueError(f"X has {X.shape[1]} feature(s); split='columns' needs at least n_views={self.n_views}.")
        return np.array_split(X, self.n_views, axis=1)

    def fit(self, X: Any, y: Any = None) -> "ViewAdapter":
        views = self._views(X)
        estimator = clone(self.estimator).fit(views)
        self.estimator_ = estimator
        self.n_features_in_ = int(np.shape(X)[1])
        self.labels_ = np.asarray(estimator.labels_)
        return self

    def predict(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        X = check_array(X, "X", dtype=np.float64)
        check_feature_width(X, self.n_features_in_, "X", type(self).__name__)
        return np.asarray(self.estimator_.predict(self._views(X)))
