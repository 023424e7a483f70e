"""mmc_teach: the library behind the executable textbook on multi-modal clustering.

Each method is one readable module; names are imported lazily so that ``import mmc_teach`` stays
fast and a chapter only pays for what it uses.

>>> from mmc_teach import KMeans, evaluate          # doctest: +SKIP
>>> from mmc_teach.datasets import load              # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "KMeans": "kmeans",
    "DEC": "dec",
    "IDEC": "dec",
    "JECL": "jecl",
    "DM2C": "dm2c",
    "CMMC": "cmmc",
    "MLPAutoencoder": "nn",
    "pretrain_autoencoder": "nn",
    "evaluate": "metrics",
    "get_device": "utils",
    "set_seed": "utils",
}
_SUBMODULES = {"datasets", "metrics", "losses", "nn", "utils", "labs", "kmeans", "dec", "jecl", "dm2c", "cmmc", "bench", "plotting", "text", "training", "pairing"}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'mmc_teach' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
