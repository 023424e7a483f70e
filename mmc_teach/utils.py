"""Public helpers for notebooks and scripts: pick a device, seed everything."""

from __future__ import annotations

import random

import numpy as np
import torch

from ._base import get_device

__all__ = ["get_device", "set_seed", "standardise"]


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

    The book's common preprocessing for concatenating views of different scales.
    """
    X = np.asarray(X, dtype=np.float64)
    std = X.std(axis=0)
    return ((X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)).astype(np.float32)
