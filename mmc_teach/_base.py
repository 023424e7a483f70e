"""Shared plumbing for every estimator: input checks, devices, seeds and the training loop.

Everything here is written once and imported by the method modules (``kmeans``, ``dec``,
``jecl``, ``dm2c``, ``cmmc``) so that bad input gets the same clear message everywhere and a
``random_state`` means the same thing in every method.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils import check_random_state

__all__ = [
    "NonFiniteLossError",
    "check_array",
    "check_views",
    "check_n_clusters",
    "check_positive",
    "check_feature_width",
    "check_random_state",
    "get_device",
    "torch_seed_from",
    "seeded",
    "minibatches",
    "n_minibatches",
    "progress",
    "check_finite_losses",
    "to_numpy",
]


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN or infinite during training (the message names the term and epoch)."""


# --------------------------------------------------------------------------- input checks


def to_numpy(X: Any) -> np.ndarray:
    """Return ``X`` as a NumPy array; torch tensors are detached and moved to the CPU."""
    if isinstance(X, torch.Tensor):
        return X.detach().cpu().numpy()
    return np.asarray(X)


def check_array(
    X: Any,
    name: str = "X",
    *,
    dtype: type = np.float32,
    allow_nan_rows: bool = False,
) -> np.ndarray:
    """Validate a 2-D numeric array with samples in rows and return it as ``dtype``.

    Raises ``TypeError`` for non-numeric input and ``ValueError`` (naming ``name``) for wrong
    dimensionality, empty input, NaN or infinity. With ``allow_nan_rows=True`` rows that are
    entirely NaN are accepted (they mark a missing modality); partly-NaN rows are still rejected.

    Sparse input (``scipy.sparse`` matrices and arrays, sparse torch tensors) is refused with a
    ``TypeError`` that says how to convert it (``X.toarray()``) and how much memory the dense copy
    takes. It is not densified here because every estimator trains on dense tensors: for sparse data
    (bag-of-words text, say) the dense copy can be many times the input, and the caller should see
    that cost instead of a silent allocation.
    """
    if X is None:
        raise ValueError(f"{name} is None; expected a 2-D array of shape (n_samples, n_features).")
    if isinstance(X, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got a string.")
    views = as_views(X)  # a data set stands for its views
    if views is X:  # otherwise only a list of 2-D arrays is the views of one
        views = X if isinstance(X, (list, tuple)) and len(X) > 1 and all(getattr(v, "ndim", 0) == 2 for v in X) else None
    if views is not None:
        shapes = ", ".join(str(tuple(v.shape)) for v in views)
        raise ValueError(
            f"{name} holds {len(views)} views (shapes {shapes}), but this estimator clusters one array. Pass one "
            "view (data.views[0]), or the views side by side (np.hstack(views), after scaling each), or use a "
            "multi-view estimator (JECL, DM2C, CMMC)."
        )
    from scipy import sparse

    if sparse.issparse(X) or (isinstance(X, torch.Tensor) and X.layout != torch.strided):
        convert = "X.toarray()" if sparse.issparse(X) else "X.to_dense()"
        dense_mib = np.prod(X.shape) * np.dtype(dtype).itemsize / 2**20
        raise TypeError(
            f"{name} is a sparse matrix of shape {tuple(X.shape)}; the estimators need a dense array. "
            f"Convert it with {convert} (the dense {np.dtype(dtype).name} copy takes {dense_mib:.1f} MiB), "
            "or reduce it first (e.g. sklearn.decomposition.TruncatedSVD)."
        )
    arr = to_numpy(X)
    reason = ""
    if arr.dtype == object:
        try:  # an object array of numbers (e.g. from a DataFrame) is fine, as in scikit-learn
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            reason = f" ({err})"
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(
            f"{name} must be a numeric array, got dtype {arr.dtype}{reason}. Convert strings or objects "
            "to numbers (e.g. text to embeddings) first."
        )
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}; pass real numbers.")
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features); got {arr.ndim}-D "
            f"input with shape {arr.shape}. Reshape your data, e.g. X.reshape(-1, 1) for one feature."
        )
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); it needs at least one sample.")
    source = arr
    with np.errstate(over="ignore"):
        arr = arr.astype(dtype, copy=False)
    if not np.isfinite(arr).all():
        if np.isinf(arr).any() and np.isfinite(source[np.isinf(arr)]).all():
            raise ValueError(
                f"{name} has finite values beyond the range of {np.dtype(dtype).name} (largest magnitude "
                f"{float(np.abs(source).max()):.3g}), which this estimator computes in; rescale it first "
                "(e.g. mmc_teach.utils.standardise)."
            )
        if np.isinf(arr).any():
            raise ValueError(f"{name} contains infinity; remove or impute those values first.")
        nan_rows = np.isnan(arr)
        if not allow_nan_rows:
            raise ValueError(f"{name} contains NaN ({int(nan_rows.any(axis=1).sum())} rows); remove or impute them first.")
        partly = nan_rows.any(axis=1) & ~nan_rows.all(axis=1)
        if partly.any():
            raise ValueError(
                f"{name} has {int(partly.sum())} rows that are only partly NaN; a missing sample must be "
                "an all-NaN row, other NaN values must be imputed first."
            )
    return arr


def as_views(data: Any) -> Any:
    """``data.views`` for a :class:`mmc_teach.datasets.MultiModalDataset` (the multi-view estimators
    take one where they take a list of views); anything else unchanged."""
    views = getattr(data, "views", None)
    return list(views) if isinstance(views, list) else data


def check_views(
    views: Any,
    name: str = "views",
    *,
    min_views: int = 2,
    max_views: int | None = None,
    paired: bool = True,
    dtype: type = np.float32,
) -> list[np.ndarray]:
    """Validate a list of views (one 2-D array per modality, samples in rows).

    ``paired=True`` requires every view to have the same number of rows (row i of every view
    describes the same object). A :class:`mmc_teach.datasets.MultiModalDataset` stands for its
    ``views``. Messages name the offending view by index.
    """
    views = as_views(views)
    if isinstance(views, (np.ndarray, torch.Tensor)) or not isinstance(views, Sequence):
        raise TypeError(
            f"{name} must be a list of 2-D arrays, one per modality (e.g. [X_image, X_text]); "
            f"got {type(views).__name__}."
        )
    n_views = len(views)
    if n_views < min_views:
        raise ValueError(
            f"{name} has {n_views} view(s); this method needs at least {min_views} "
            "(pass a list such as [X_image, X_text])."
        )
    if max_views is not None and n_views > max_views:
        raise ValueError(f"{name} has {n_views} views; this method takes at most {max_views}.")
    checked = [check_array(X, f"{name}[{i}]", dtype=dtype) for i, X in enumerate(views)]
    if paired:
        lengths = [len(X) for X in checked]
        if len(set(lengths)) > 1:
            raise ValueError(
                f"{name} must be paired (the same samples in every view), but the views have "
                f"different numbers of rows: {lengths}."
            )
    return checked


def check_n_clusters(
    n_clusters: Any, n_samples: int | None = None, name: str = "n_clusters", *, minimum: int = 2
) -> int:
    """``n_clusters`` must be an integer >= ``minimum`` and <= n_samples.

    The deep methods need two clusters at least (one cluster makes every soft assignment 1 and
    every loss constant); k-means accepts ``minimum=1`` like scikit-learn.
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {n_clusters!r}.")
    if n_clusters < minimum:
        raise ValueError(f"{name}={n_clusters} must be >= {minimum}.")
    if n_samples is not None and n_clusters > n_samples:
        raise ValueError(f"n_samples={n_samples} should be >= {name}={n_clusters}.")
    return int(n_clusters)


def check_positive(name: str, value: Any, *, integer: bool = False, allow_zero: bool = False) -> Any:
    """Check a hyper-parameter such as ``epochs``, ``lr`` or ``batch_size``; return it unchanged."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {what}, got {value!r}.")
    if not np.isfinite(value):
        raise ValueError(f"{name}={value} must be finite.")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}={value} must be {bound}.")
    return value


def check_feature_width(X: np.ndarray, expected: int, name: str = "X", estimator: str = "the model") -> None:
    """``predict`` on data whose width differs from the data seen in ``fit`` is an error.

    The message follows scikit-learn's wording ("X has 3 features, but KMeans is expecting 4
    features as input"), which its estimator checks look for.
    """
    if X.shape[1] != expected:
        raise ValueError(
            f"{name} has {X.shape[1]} features, but {estimator} is expecting {expected} features as input "
            "(the width of the data it was fitted on)."
        )


# --------------------------------------------------------------------------- device and seeds


def get_device(device: str | torch.device | None = None) -> torch.device:
    """Resolve ``device``: ``None`` or ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    An explicit device that this machine does not have raises ``ValueError`` rather than
    failing later inside torch.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be None, 'auto', or a torch device string such as 'cpu' or 'cuda'; got {device!r}.")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"device={device!r} is not a valid torch device ({err}). Use None, 'auto', 'cpu' or 'cuda'.") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available on this machine; use device=None.")
    if resolved.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device={device!r} was requested but Apple MPS is not available on this machine.")
    if resolved.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device={device!r} is not supported; use None, 'auto', 'cpu', 'cuda' or 'mps'.")
    return resolved


def torch_seed_from(rng: np.random.RandomState) -> int:
    """Draw a torch seed from a NumPy ``RandomState`` so one ``random_state`` drives everything."""
    return int(rng.randint(0, 2**31 - 1))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device | None = None) -> Iterator[torch.Generator]:
    """Seed torch's generators for the block and restore them afterwards.

    ``nn.Module`` initialisation and dropout draw from torch's global generator; forking it
    keeps a notebook's own random state untouched by ``fit``. Only the generators of the CPU and
    of ``device`` are seeded and restored: ``torch.manual_seed`` would also reseed every CUDA and
    MPS generator, so a CPU fit on a GPU machine would change the GPU's random stream.
    Yields a CPU generator for shuffling and noise (the same draws on every device).
    """
    device_type, devices = "cuda", []
    if device is not None and device.type in ("cuda", "mps"):
        device_type = device.type
        if device.type == "cuda":
            devices = [device.index if device.index is not None else torch.cuda.current_device()]
        else:
            devices = [0]  # fork_rng's handle for the one MPS generator
    with torch.random.fork_rng(devices=devices, enabled=True, device_type=device_type):
        torch.random.default_generator.manual_seed(seed)
        if device_type == "cuda" and devices:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        elif device_type == "mps" and devices:
            torch.mps.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


# --------------------------------------------------------------------------- training loop pieces


def minibatches(n_samples: int, batch_size: int, generator: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Yield index tensors covering ``range(n_samples)`` in (shuffled) mini-batches.

    A last batch of a single sample is merged into the one before it: batch normalisation cannot
    normalise one sample in training mode, and one sample is no estimate of a batch mean anyway.
    """
    order = torch.randperm(n_samples, generator=generator) if shuffle else torch.arange(n_samples)
    starts = list(range(0, n_samples, batch_size))
    if len(starts) > 1 and n_samples - starts[-1] == 1:
        starts.pop()
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else n_samples
        yield order[start:end]


def n_minibatches(n_samples: int, batch_size: int) -> int:
    """How many batches :func:`minibatches` yields for ``n_samples`` (one pass over the data)."""
    n = -(-n_samples // batch_size)
    return n - 1 if n > 1 and n_samples % batch_size == 1 else n


def progress(iterable: Any, verbose: bool | int, desc: str = "", total: int | None = None) -> Any:
    """Wrap ``iterable`` in a tqdm bar when ``verbose`` is true, else return it unchanged.

    The deep estimators default to ``verbose=True``: a fit of minutes should show that it runs.
    ``MMC_TEACH_PROGRESS=0`` turns bars off everywhere: the test session sets it, so that notebooks
    compared by nbval (and executed for committing, ``.ci/execute``) print none.
    """
    if not verbose or os.environ.get("MMC_TEACH_PROGRESS", "1") == "0":
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False)


def check_finite_losses(losses: dict[str, float], epoch: int, method: str) -> None:
    """Stop training with a clear message as soon as any named loss term is NaN or infinite."""
    for term, value in losses.items():
        if not np.isfinite(value):
            raise NonFiniteLossError(
                f"{method}: loss term '{term}' became {value} at epoch {epoch}. "
                "Lower the learning rate or standardise the input features."
            )
