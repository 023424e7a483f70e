"""Public helpers for notebooks and scripts: pick a device, seed everything."""

from __future__ import annotations

import random

import numpy as np
import torch

from ._base import get_device

__all__ = ["get_device", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (for notebooks and scripts).

    The estimators never need this: they take ``random_state`` and leave global state alone.
    Call it at the top of a notebook so from-scratch cells that use global generators repeat.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
