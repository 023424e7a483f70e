"""Real multi-modal benchmark datasets, fetched on demand and verified by sha256.

>>> from mmc_teach.datasets import load, available     # doctest: +SKIP
>>> available()                                          # doctest: +SKIP
['wikipedia', 'pascal_sentences', 'bdgp', 'cub10', 'mnist_usps', 'caltech2v', 'mfeat', 'usps', 'mnist_test']
>>> ds = load("wikipedia")                               # doctest: +SKIP
>>> ds
MultiModalDataset('wikipedia', n_samples=2866, n_clusters=10, views={image: 128, text: 10}, texts=yes)

Where the files live
    ``data_home`` argument, else the environment variable ``MMC_TEACH_DATA``, else the user
    cache folder ``pooch.os_cache("mmc_teach")`` (see :func:`get_data_home`). A read-only folder
    is fine as long as it holds valid copies.

Integrity
    Every file has a sha256 and a public URL in ``mmc_teach/registry.txt`` (one base URL per
    source folder; its header says how it was made). A file is only used when its checksum
    matches; a wrong copy is re-downloaded (with ``download=True``) or rejected with
    :class:`DataIntegrityError`. Downloads are done by ``pooch.retrieve`` in a hidden
    ``.NAME.*.part`` folder next to the target and renamed into place only after the checksum
    matched, so a failed or interrupted download leaves no partial file behind; what a killed
    download left is removed by the next load of that file.

Derived text embeddings
    ``*/derived/*.npy`` hold all-MiniLM-L6-v2 sentence embeddings of the texts. They were
    computed for this project and have no public URL; :func:`embed_texts_minilm` recomputes
    them in memory (``pip install "mmc_teach[text]"``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: stale downloads are recognised by their age instead of a lock
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "MultiModalDataset",
    "DataIntegrityError",
    "DataNotFoundError",
    "available",
    "load",
    "get_data_home",
    "fetch",
    "fetch_many",
    "sample_image_paths",
    "embed_texts_minilm",
]

ENV_VAR = "MMC_TEACH_DATA"
#: seconds to wait for a server to connect or send the next bytes
DOWNLOAD_TIMEOUT = 30.0
#: parallel downloads when many small files are missing (the 2866 Wikipedia texts)
DOWNLOAD_WORKERS = 8
#: without file locks (Windows), a download folder this old (seconds) is taken to be left by a killed run
_STALE_AFTER = 24 * 3600.0

_log = logging.getLogger(__name__)


class DataIntegrityError(ValueError):
    """A data file's sha256 differs from the registry: it was not used."""


class DataNotFoundError(FileNotFoundError):
    """A data file is missing and could not be downloaded."""


# --------------------------------------------------------------------------- registry


class RegistryEntry(NamedTuple):
    sha256: str
    url: str | None  # None: no public download (derived files)


def _read_registry() -> dict[str, RegistryEntry]:
    """Parse ``registry.txt``: ``[FOLDER] BASE_URL`` sections of ``NAME SHA256`` lines."""
    registry = {}
    folder = base = ""
    text = resources.files("mmc_teach").joinpath("registry.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("["):
            folder, base = line[1:].split("] ")
        elif line.strip() and not line.startswith("#"):
            name, sha256 = line.split()
            registry[f"{folder}/{name}"] = RegistryEntry(sha256, None if base == "-" else base + quote(name))
    return registry


#: relative path -> (sha256, full url); tests point URLs at a local server by patching this dict
REGISTRY: dict[str, RegistryEntry] = _read_registry()


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the data directory: ``data_home``, else ``$MMC_TEACH_DATA``, else the user cache.

    The directory is not created here; it is created only when a file has to be downloaded.
    """
    if data_home is None:
        data_home = os.environ.get(ENV_VAR) or None
    if data_home is None:
        import pooch

        data_home = pooch.os_cache("mmc_teach")
    return Path(data_home).expanduser()


# --------------------------------------------------------------------------- messages


def _how_to_provide(relpath: str, path: Path, url: str | None) -> str:
    where = f"download it from {url} and put it at {path}" if url else f"put a valid copy at {path}"
    return (
        f"To provide it, {where}, or set the environment variable {ENV_VAR} (or pass data_home=...) "
        f"to a directory that holds '{relpath}'."
    )


def _mismatch_message(relpath: str, path: Path, expected: str, actual: str) -> str:
    return (
        f"Data file '{relpath}' at {path} has the wrong sha256 checksum, so it was not used.\n"
        f"  expected sha256: {expected}\n"
        f"  actual sha256:   {actual}\n"
    )


def _derived_missing_message(relpath: str, path: Path) -> str:
    return (
        f"Derived file '{relpath}' was not found at {path}. It has no public download: it holds "
        "all-MiniLM-L6-v2 sentence embeddings of the dataset's texts (sentence-transformers, "
        "encode(..., normalize_embeddings=True), max_seq_length 256), computed for mmc_teach. "
        "Recompute them in memory with mmc_teach.datasets.embed_texts_minilm(dataset.texts) "
        '(needs pip install "mmc_teach[text]") and use the array as a view, or put a copy of the '
        f"original file at {path} (or set {ENV_VAR} to a directory that holds it). For Wikipedia, "
        "load('wikipedia') without text_features='minilm' does not need this file."
    )


# --------------------------------------------------------------------------- download


class _DownloadError(OSError):
    """Transport-level failure (no server, dropped connection, HTTP error, unwritable folder)."""


@contextlib.contextmanager
def _folder_lock(folder: Path, exclusive: bool) -> Iterator[bool]:
    """``flock`` on ``folder``: every download holds it shared while its ``.part`` folder exists.

    The clean-up takes it exclusively without waiting: if that succeeds, no download into
    ``folder`` is running, so every ``.part`` folder there was left by a killed process (the
    kernel releases a dead process's locks, even after SIGKILL). Yields whether it was taken.
    """
    if fcntl is None:
        yield True
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _remove_stale_parts(folder: Path, names: set[str]) -> None:
    """Remove the ``.NAME.*.part`` folders that killed downloads of these file names left."""
    try:
        parts = [e.path for e in os.scandir(folder) if e.is_dir() and e.name.startswith(".")
                 and e.name.endswith(".part") and e.name[1 : -len(".part")].rsplit(".", 1)[0] in names]
    except OSError:  # no such folder yet
        return
    if fcntl is None:
        parts = [p for p in parts if time.time() - os.path.getmtime(p) > _STALE_AFTER]
    if parts:
        with _folder_lock(folder, exclusive=True) as no_download_running:
            if no_download_running:
                for part in parts:
                    shutil.rmtree(part, ignore_errors=True)  # a read-only data folder keeps them


def _download(relpath: str, url: str, path: Path, expected: str) -> None:
    """Download ``url`` with pooch into a hidden folder beside ``path``; rename it into place once verified."""
    import pooch

    with _folder_lock(path.parent, exclusive=False):
        try:
            part = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        except OSError as err:
            raise _DownloadError(f"cannot write to {path.parent}: {err}") from err
        try:
            _log.info("Downloading %s from %s", relpath, url)
            downloader = pooch.HTTPDownloader(progressbar=False, chunk_size=1 << 16, timeout=DOWNLOAD_TIMEOUT)
            try:
                tmp = pooch.retrieve(url, f"sha256:{expected}", fname=path.name, path=part, downloader=downloader)
                os.replace(tmp, path)  # atomic on one file system: readers never see a partial file
            except OSError as err:  # first: requests' errors are OSErrors, and some also ValueErrors
                raise _DownloadError(f"{type(err).__name__}: {err}") from err
            except ValueError as err:  # pooch's checksum mismatch; it deleted the download
                raise DataIntegrityError(
                    f"The download of data file '{relpath}' from {url} has the wrong sha256 checksum "
                    f"(the server sent different bytes), so it was discarded.\n  {err}\n"
                    + _how_to_provide(relpath, path, None)
                ) from err
        finally:
            shutil.rmtree(part, ignore_errors=True)


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the ones created (deepest first)."""
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _DownloadError(f"cannot create {folder}: {err}") from err
    return created


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders a failed download created, deepest first, where they stayed empty."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: other files were downloaded into it
            folder.rmdir()


def _fetch_one(relpath: str, root: Path, download: bool) -> Path:
    """Verify (or download) one file below ``root``; directories are assumed to exist."""
    import pooch

    expected, url = REGISTRY[relpath]
    path = root / relpath
    if path.exists() and not path.is_file():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise DataNotFoundError(
            f"Data file '{relpath}' should be a file, but {path} is {kind}, so it was not used. "
            "Move it away and load again. " + _how_to_provide(relpath, path, url)
        )
    if path.is_file():
        # Hashed on every use, no cache: a cache keyed on size and mtime trusted a file edited in
        # place, and re-hashing the whole data folder (35 MB) takes about 0.1 s once it is in the
        # page cache, which reading the file for loading fills anyway.
        actual = pooch.file_hash(str(path), alg="sha256")
        if actual == expected:
            return path
        message = _mismatch_message(relpath, path, expected, actual)
        if not download or url is None:
            why = "download=False, so it was not replaced" if url else "it has no public download URL"
            raise DataIntegrityError(
                message + f"({why}.) To fix it, delete the file and load again"
                + (" with download=True" if url else "") + ". " + _how_to_provide(relpath, path, url)
            )
        try:
            _download(relpath, url, path, expected)
        except _DownloadError as err:
            raise DataIntegrityError(
                message + f"Replacing it from {url} failed: {err}\n"
                "To fix it, delete the file and load again when online. " + _how_to_provide(relpath, path, url)
            ) from err
        return path
    if url is None:
        raise DataNotFoundError(_derived_missing_message(relpath, path))
    if not download:
        raise DataNotFoundError(
            f"Data file '{relpath}' was not found at {path} and download=False.\n"
            + _how_to_provide(relpath, path, url)
        )
    try:
        _download(relpath, url, path, expected)
    except _DownloadError as err:
        raise DataNotFoundError(
            f"Data file '{relpath}' was not found at {path}, and downloading it from {url} failed: "
            f"{err}\n" + _how_to_provide(relpath, path, url)
        ) from err
    return path


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """pooch logs one line per download to stderr (2866 for Wikipedia's texts); ours is at INFO."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def fetch_many(relpaths: Sequence[str], data_home: str | os.PathLike | None = None, download: bool = True) -> list[Path]:
    """Verify or download several files; missing ones are downloaded in parallel."""
    for rel in relpaths:
        if rel not in REGISTRY:
            raise ValueError(f"'{rel}' is not a file in the mmc_teach data registry.")
    root = get_data_home(data_home)
    by_folder: dict[Path, set[str]] = {}
    for rel in relpaths:
        by_folder.setdefault((root / rel).parent, set()).add((root / rel).name)
    for folder, names in by_folder.items():
        _remove_stale_parts(folder, names)
    # files that exist, or cannot be downloaded, are checked here; only the rest go to threads
    to_download = {rel: None for rel in relpaths if download and REGISTRY[rel].url is not None and not (root / rel).exists()}
    with _quiet_pooch():  # a corrupt copy is replaced here, without threads
        done = {rel: _fetch_one(rel, root, download) for rel in relpaths if rel not in to_download}
    if to_download:
        created: list[Path] = []
        try:
            for folder in sorted({(root / rel).parent for rel in to_download}):
                try:
                    created += _make_dirs(folder)
                except _DownloadError as err:
                    rel = next(iter(to_download))
                    raise DataNotFoundError(
                        f"Data file '{rel}' was not found at {root / rel} and cannot be downloaded there: {err}\n"
                        + _how_to_provide(rel, root / rel, REGISTRY[rel].url)
                    ) from err
            with _quiet_pooch(), ThreadPoolExecutor(min(DOWNLOAD_WORKERS, len(to_download))) as pool:
                futures = {pool.submit(_fetch_one, rel, root, download): rel for rel in to_download}
                try:
                    for future in as_completed(futures):  # the first failure stops the batch
                        done[futures[future]] = future.result()
                except BaseException:
                    for future in futures:
                        future.cancel()  # do not start hundreds more downloads once one failed
                    raise
        except BaseException:
            _remove_empty(created)
            raise
    return [done[rel] for rel in relpaths]


def fetch(relpath: str, data_home: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Return the verified local path of one registry file, downloading it if needed.

    Raises
    ------
    DataIntegrityError
        The local copy (or the download) has the wrong sha256 and could not be replaced.
    DataNotFoundError
        The file is missing and could not be downloaded (``download=False``, offline, or no URL).
    """
    return fetch_many([relpath], data_home, download)[0]


# --------------------------------------------------------------------------- the dataset object


@dataclass(repr=False, eq=False)
class MultiModalDataset:
    """Paired multi-modal data: row ``i`` of every view describes the same object.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"wikipedia"``.
    views : list of ndarray of float32, shapes (n_samples, d_v)
        One feature matrix per modality, samples in rows.
    labels : ndarray of int64, shape (n_samples,)
        Ground-truth classes ``0 .. n_clusters - 1`` (for evaluation only).
    view_names, class_names : list of str
        ``view_names[v]`` names ``views[v]``; ``class_names[c]`` names label ``c``.
    texts : list of str or None
        Raw text of every sample, else ``None``. Wikipedia: the article section exactly as in the
        source file (wiki quotes ``''`` and HTML entities such as ``&ndash;`` are kept); Pascal
        Sentences: the captions of one image joined by spaces.
    sample_ids : list of str or None
        Source identifiers (Wikipedia text ids, Pascal image file names), else ``None``.
    description : str
        What the features are and where they come from.
    citation : str
        BibTeX key(s) of the dataset's source papers in the book's ``references.bib``.
    """

    name: str
    views: list[np.ndarray]
    labels: np.ndarray
    view_names: list[str]
    class_names: list[str]
    texts: list[str] | None = None
    sample_ids: list[str] | None = None
    description: str = ""
    citation: str = ""

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.views) != len(self.view_names):
            raise ValueError(f"{len(self.views)} views but {len(self.view_names)} view_names.")
        for vname, X in zip(self.view_names, self.views):
            if X.ndim != 2 or len(X) != n:
                raise ValueError(f"view '{vname}' has shape {X.shape}; expected ({n}, n_features).")
        for what, items in (("texts", self.texts), ("sample_ids", self.sample_ids)):
            if items is not None and len(items) != n:
                raise ValueError(f"{what} has {len(items)} entries for {n} samples.")

    @property
    def n_samples(self) -> int:
        return len(self.labels)

    @property
    def n_clusters(self) -> int:
        return len(self.class_names)

    @property
    def n_views(self) -> int:
        return len(self.views)

    def __repr__(self) -> str:
        views = ", ".join(f"{vname}: {X.shape[1]}" for vname, X in zip(self.view_names, self.views))
        return (
            f"MultiModalDataset({self.name!r}, n_samples={self.n_samples}, n_clusters={self.n_clusters}, "
            f"views={{{views}}}, texts={'yes' if self.texts is not None else 'no'})"
        )


# --------------------------------------------------------------------------- loaders


def _f32(X: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(X), dtype=np.float32)


def _labels(y: Any, first: int) -> np.ndarray:
    """Labels as int64 ``0..k-1`` (several files count from 1)."""
    return np.asarray(y).ravel().astype(np.int64) - first


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat

    return loadmat(str(path))


def _parse_wiki_text(raw: bytes) -> str:
    """The ``<text>`` element of one article, kept exactly as in the file.

    About 900 of the files are not well-formed XML (HTML entities such as ``&ndash;``, bare
    ``&`` and ``<``), so the element is cut out by its tags instead of using an XML parser.
    Entities are not unescaped: the derived MiniLM embeddings were computed from the text as is.
    """
    text = raw.decode("utf-8", errors="replace")
    start = text.find("<text>")
    if start < 0:  # no <text> element: keep whatever is not markup
        return re.sub(r"<[^>]*>", " ", text).strip()
    end = text.find("</text>", start)
    return text[start + len("<text>") : end if end >= 0 else len(text)].strip()


def _load_wikipedia(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    minilm = None
    if text_features == "minilm":  # no public download: fail before fetching anything else
        minilm = get("wikipedia/derived/wiki_text_minilm_l6_v2_2866x384_order_train_then_test.npy")
    rows = []
    for split in ("trainset", "testset"):  # train then test: the order of raw_features and derived/
        for line in get(f"wikipedia/{split}_txt_img_cat.list").read_text(encoding="utf-8").splitlines():
            if line.strip():
                text_id, _image_id, category = line.split("\t")
                rows.append((text_id, int(category)))
    mat = _loadmat(get("wikipedia/raw_features.mat"))
    image = np.vstack([mat["I_tr"], mat["I_te"]])  # SIFT bag of visual words, 128
    if minilm is None:
        text = np.vstack([mat["T_tr"], mat["T_te"]])  # LDA topic proportions, 10
        text_desc = "text: LDA topic proportions (10 topics)"
    else:
        text = np.load(minilm)
        text_desc = "text: all-MiniLM-L6-v2 sentence embeddings (384, L2-normalised, derived)"
    if not len(rows) == len(image) == len(text):
        raise DataIntegrityError(f"wikipedia: {len(rows)} list rows but {len(image)} feature rows.")
    raw_texts = None
    if texts:
        files = get_many([f"wikipedia/texts/{text_id}.xml" for text_id, _ in rows])
        raw_texts = [_parse_wiki_text(p.read_bytes()) for p in files]
    class_names = get("wikipedia/categories.list").read_text(encoding="utf-8").split()
    return MultiModalDataset(
        "wikipedia", [_f32(image), _f32(text)], _labels([c for _, c in rows], 1), ["image", "text"], class_names,
        texts=raw_texts, sample_ids=[text_id for text_id, _ in rows],
        description=(
            "Wikipedia image-text pairs, 10 categories (Rasiwasia et al., ACM MM 2010). image: SIFT "
            f"bag of visual words (128); {text_desc}. Rows: the 2173 train pairs, then the 693 test pairs."
        ),
        citation="rasiwasia2010wikipedia",
    )


def _load_pascal_sentences(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    # the derived file first: it cannot be downloaded, so fail before fetching anything else
    emb = np.load(get("pascal_sentences/derived/pascal_captions_minilm_l6_v2_1000x384_sorted_by_filename.npy"))
    meta = json.loads(get("pascal_sentences/pascal_sentences.json").read_text(encoding="utf-8"))
    files = sorted(meta)  # the derived embeddings are sorted by file name
    class_names = sorted({meta[f]["category"] for f in files})
    labels = np.array([class_names.index(meta[f]["category"]) for f in files], dtype=np.int64)
    return MultiModalDataset(
        "pascal_sentences", [_f32(emb)], labels, ["text"], class_names,
        texts=[" ".join(meta[f]["captions"]) for f in files] if texts else None, sample_ids=files,
        description=(
            "Pascal Sentences (Rashtchian et al., NAACL-HLT 2010 workshop): 1000 images, 20 classes x 50, "
            "about 5 captions each. text: all-MiniLM-L6-v2 embedding of the joined captions (384, derived). "
            "The images are not available (47 aeroplane images for figures: sample_image_paths())."
        ),
        citation="rashtchian2010pascal",
    )


def _load_bdgp(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    mat = _loadmat(get("bdgp/BDGP.mat"))
    image, keywords = mat["data"][0, 0].T, mat["data"][0, 1].T  # stored features x samples
    return MultiModalDataset(
        "bdgp", [_f32(image), _f32(keywords)], _labels(mat["truth"], 1), ["image", "text"],
        [f"class {c}" for c in range(5)],
        description=(
            "BDGP Drosophila embryo images (Berkeley Drosophila Genome Project; Cai et al., Bioinformatics 2012): "
            "image features (1750) and binary keyword annotations (79); 5 classes x 500."
        ),
        citation="cai2012bdgp",
    )


# The first ten classes of CUB-200-2011 (classes.txt); label i is taken to be class i + 1.
_CUB10 = [
    "Black_footed_Albatross", "Laysan_Albatross", "Sooty_Albatross", "Groove_billed_Ani", "Crested_Auklet",
    "Least_Auklet", "Parakeet_Auklet", "Rhinoceros_Auklet", "Brewer_Blackbird", "Red_winged_Blackbird",
]


def _load_cub10(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    mat = _loadmat(get("cub10/cub_googlenet_doc2vec_c10.mat"))
    return MultiModalDataset(
        "cub10", [_f32(mat["X"][0, 0]), _f32(mat["X"][0, 1])], _labels(mat["gt"], 1), ["image", "text"], _CUB10,
        description=(
            "CUB-200-2011 birds (Wah et al., 2011), first 10 classes x 60: GoogLeNet image features (1024) "
            "and Doc2Vec features of text descriptions (300)."
        ),
        citation="wah2011cub",
    )


def _row_major_images(X: np.ndarray, side: int) -> np.ndarray:
    """Flattened square images stored column by column (MATLAB's order) -> row by row (NumPy's).

    Without this, ``x.reshape(side, side)`` shows every digit transposed (mirrored on the diagonal).
    """
    return np.ascontiguousarray(X.reshape(len(X), side, side).transpose(0, 2, 1).reshape(len(X), side * side))


def _load_mnist_usps(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    mat = _loadmat(get("mnist_usps/MNIST_USPS.mat"))
    return MultiModalDataset(
        "mnist_usps", [_row_major_images(_f32(mat[name]), 28) for name in ("X1", "X2")], _labels(mat["Y"], 0), ["mnist", "usps"],
        [str(d) for d in range(10)],
        description=(
            "MNIST-USPS (LeCun et al., 1998; Hull, 1994; the file used by MFLVC, Xu et al., CVPR 2022): 5000 "
            "pairs of an MNIST and a USPS digit image of the same class (784 pixels each, in [0, 1], row by row: "
            "x.reshape(28, 28) is the upright image); 10 classes x 500."
        ),
        citation="lecun1998mnist, hull1994usps",
    )


def _load_usps(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    try:
        import h5py
    except ImportError as exc:  # a dependency of the package; only a hand-made environment lacks it
        raise ImportError("Loading 'usps' needs h5py (a dependency of mmc_teach): pip install h5py") from exc

    path = get("usps/usps.h5")
    try:
        with h5py.File(path, "r") as fh:
            split = {name: (fh[name]["data"][:], fh[name]["target"][:]) for name in ("train", "test")}
    except (OSError, KeyError) as exc:  # the checksum matched, so only a changed registry gets here
        raise DataIntegrityError(f"usps: {path} is not the expected HDF5 file ({exc}).") from exc
    images = np.vstack([split["train"][0], split["test"][0]])
    labels = np.concatenate([split["train"][1], split["test"][1]])
    return MultiModalDataset(
        "usps", [_f32(images)], _labels(labels, 0), ["usps"], [str(d) for d in range(10)],
        description=(
            "USPS handwritten digits (Hull, 1994): all 9298 digits, the 7291 training digits then the 2007 test "
            "digits, native 16 x 16 pixels in [0, 1], row by row (x.reshape(16, 16) is the upright image). "
            "The set of the DEC/IDEC papers' USPS rows."
        ),
        citation="hull1994usps",
    )


def _read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, gzip-compressed): a big-endian header, then uint8 data."""
    import gzip

    raw = gzip.decompress(path.read_bytes())
    n_dims = magic & 0xFF
    header = np.frombuffer(raw, dtype=">i4", count=1 + n_dims)
    if header[0] != magic:
        raise DataIntegrityError(f"{path.name}: IDX magic number {header[0]}, expected {magic}.")
    shape = tuple(int(d) for d in header[1:])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 * (1 + n_dims)).reshape(shape)


def _load_mnist_test(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    images = _read_idx(get("mnist_test/t10k-images-idx3-ubyte.gz"), 2051)  # (10000, 28, 28) uint8
    labels = _read_idx(get("mnist_test/t10k-labels-idx1-ubyte.gz"), 2049)
    if len(images) != len(labels):
        raise DataIntegrityError(f"mnist_test: {len(images)} images but {len(labels)} labels.")
    return MultiModalDataset(
        "mnist_test", [_f32(images.reshape(len(images), -1)) / np.float32(255)], _labels(labels, 0), ["mnist"],
        [str(d) for d in range(10)],
        description=(
            "The MNIST test set (LeCun et al., 1998), 'MNIST-test' in the deep-clustering tables: 10000 digits, "
            "28 x 28 pixels scaled from 0..255 to [0, 1], row by row (x.reshape(28, 28) is the upright image)."
        ),
        citation="lecun1998mnist",
    )


def _load_caltech2v(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    view1 = _loadmat(get("caltech2v/view1.mat"))["fea"]
    view2 = _loadmat(get("caltech2v/view2.mat"))["fea"]
    labels = _labels(_loadmat(get("caltech2v/L.mat"))["labels"], 0)
    return MultiModalDataset(
        "caltech2v", [_f32(view1), _f32(view2)], labels, ["wavelet", "centrist"], [f"class {c}" for c in range(7)],
        description=(
            "Caltech101-7 (Fei-Fei et al., 2004), 7 classes x 200: wavelet moments (40) and CENTRIST (254). "
            "Features are unscaled (MFLVC min-max scales each view)."
        ),
        citation="feifei2004caltech",
    )


# UCI Multiple Features: name and meaning of each view, keyed by its number of columns.
_MFEAT = {
    76: ("fou", "Fourier coefficients of the character shapes"),
    216: ("fac", "profile correlations"),
    64: ("kar", "Karhunen-Loeve coefficients"),
    240: ("pix", "pixel averages in 2 x 3 windows"),
    47: ("zer", "Zernike moments"),
    6: ("mor", "morphological features"),
}


def _load_mfeat(get: Callable, get_many: Callable, text_features: str | None, texts: bool) -> MultiModalDataset:
    mat = _loadmat(get("mfeat/Mfeat.mat"))
    views = [_f32(X) for X in mat["X"].ravel()]
    widths = sorted(X.shape[1] for X in views)
    if widths != sorted(_MFEAT):
        raise DataIntegrityError(f"mfeat: unexpected view widths {widths}; expected {sorted(_MFEAT)}.")
    names = [_MFEAT[X.shape[1]][0] for X in views]  # the file's order is fac, fou, kar, mor, pix, zer
    return MultiModalDataset(
        "mfeat", views, _labels(mat["Y"], 1), names, [str(d) for d in range(10)],
        description=(
            "UCI Multiple Features handwritten digits (Duin, UCI repository): 2000 samples, 10 classes x 200, "
            "6 views: " + "; ".join(f"{n} = {_MFEAT[X.shape[1]][1]} ({X.shape[1]})" for n, X in zip(names, views)) + "."
        ),
        citation="duin1998mfeat",
    )


_LOADERS: dict[str, Callable[..., MultiModalDataset]] = {
    "wikipedia": _load_wikipedia,
    "pascal_sentences": _load_pascal_sentences,
    "bdgp": _load_bdgp,
    "cub10": _load_cub10,
    "mnist_usps": _load_mnist_usps,
    "caltech2v": _load_caltech2v,
    "mfeat": _load_mfeat,
    "usps": _load_usps,
    "mnist_test": _load_mnist_test,
}
_TEXT_FEATURES = {"wikipedia": ("lda", "minilm"), "pascal_sentences": ("minilm",)}


def available() -> list[str]:
    """Names accepted by :func:`load`."""
    return list(_LOADERS)


def load(
    name: str,
    data_home: str | os.PathLike | None = None,
    download: bool = True,
    *,
    text_features: str | None = None,
    texts: bool = True,
) -> MultiModalDataset:
    """Load a real multi-modal dataset as a :class:`MultiModalDataset`.

    Parameters
    ----------
    name : str
        One of :func:`available`: ``wikipedia`` (image SIFT-BoVW 128 + text 10), ``pascal_sentences``
        (caption embedding 384 only), ``bdgp`` (image 1750 + keywords 79), ``cub10`` (image 1024 +
        text 300), ``mnist_usps`` (784 + 784), ``caltech2v`` (40 + 254), ``mfeat`` (6 views), and two single-view
        digit sets for the DEC/IDEC chapter: ``usps`` (9298 x 256) and ``mnist_test`` (10000 x 784).
    data_home : str or path, optional
        Data directory; default ``$MMC_TEACH_DATA``, else the user cache (:func:`get_data_home`).
    download : bool, default True
        Download missing or corrupt files from their public URL. With ``False`` such a file raises.
    text_features : {"lda", "minilm"} or None
        Wikipedia's text view: ``"lda"`` (default, 10 LDA topic proportions, from the source) or
        ``"minilm"`` (384-d all-MiniLM-L6-v2 embeddings, a derived file without public URL).
        The view is still named ``"text"``. Pascal Sentences only has ``"minilm"``.
    texts : bool, default True
        Read the raw texts into ``.texts`` (Wikipedia: 2866 small files). ``False`` skips them.

    Returns
    -------
    MultiModalDataset

    Raises
    ------
    ValueError
        Unknown ``name`` or ``text_features``.
    DataIntegrityError
        A file has the wrong checksum and could not be replaced.
    DataNotFoundError
        A file is missing and could not be downloaded.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a dataset name (str), got {type(name).__name__}.")
    key = name.strip().lower().replace("-", "_")
    if key not in _LOADERS:
        raise ValueError(f"Unknown dataset name {name!r}. Known names: {', '.join(available())}.")
    allowed = _TEXT_FEATURES.get(key, ())
    if text_features is not None and text_features not in allowed:
        options = f"one of {allowed}" if allowed else "None (this dataset has no alternative text features)"
        raise ValueError(f"text_features={text_features!r} is not valid for {key!r}; use {options}.")

    def get(relpath: str) -> Path:
        return fetch(relpath, data_home, download)

    def get_many(relpaths: Sequence[str]) -> list[Path]:
        return fetch_many(relpaths, data_home, download)

    return _LOADERS[key](get, get_many, text_features, texts)


def sample_image_paths(data_home: str | os.PathLike | None = None, download: bool = True) -> list[Path]:
    """Paths of the 47 Pascal Sentences images that are available (all class aeroplane), sorted.

    For figures only: the file name matches ``load("pascal_sentences").sample_ids``.
    """
    prefix = "pascal_sentences/sample_images/"
    return fetch_many(sorted(p for p in REGISTRY if p.startswith(prefix)), data_home, download)


# --------------------------------------------------------------------------- derived embeddings


def embed_texts_minilm(
    texts: Sequence[str], batch_size: int = 64, device: str | None = None
) -> np.ndarray:
    """All-MiniLM-L6-v2 sentence embeddings, the recipe of the ``derived/`` files.

    The same computation as :func:`mmc_teach.text.minilm_embeddings` without its on-disk cache:
    wiki-markup quotes ``''`` removed, whitespace collapsed, ``normalize_embeddings=True``,
    256 tokens at most. Needs ``pip install "mmc_teach[text]"``. Results agree with the shipped
    files to about 1e-6.

    Returns
    -------
    ndarray of float32, shape (len(texts), 384), rows of unit length.
    """
    from .text import minilm_embeddings

    return minilm_embeddings(texts, cache=False, batch_size=batch_size, device=device)
