"""Data files that are faulty in ways a user can cause: a directory in the file's place, a file
edited in place, a download killed half-way. No network: the server runs on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_datasets import DATA, PAYLOAD, files_under, needs_data, register, server  # noqa: F401 (fixture)

from mmc_teach import datasets as D


def test_directory_in_place_of_a_file_gives_a_clear_error(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    register(monkeypatch, "toy/toy.bin", PAYLOAD, server.base + "/toy.bin")
    target = tmp_path / "toy" / "toy.bin"
    target.mkdir(parents=True)
    for download in (True, False):
        with pytest.raises(D.DataNotFoundError) as info:
            D.fetch("toy/toy.bin", data_home=tmp_path, download=download)
        message = str(info.value)
        assert "'toy/toy.bin'" in message and f"{target} is a directory" in message
    assert target.is_dir() and files_under(tmp_path) == []  # nothing downloaded, nothing removed


def _edit_in_place(path: Path) -> None:
    """Flip one bit and restore the modification time: same size, same mtime, other content."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_file_changed_in_place_is_never_used(monkeypatch, tmp_path):
    register(monkeypatch, "toy/toy.bin", PAYLOAD, "http://127.0.0.1:9/toy.bin")
    target = tmp_path / "toy" / "toy.bin"
    target.parent.mkdir()
    target.write_bytes(PAYLOAD)
    assert D.fetch("toy/toy.bin", data_home=tmp_path, download=False) == target
    _edit_in_place(target)
    with pytest.raises(D.DataIntegrityError, match="wrong sha256"):
        D.fetch("toy/toy.bin", data_home=tmp_path, download=False)


@needs_data
def test_dataset_edited_in_place_is_rejected(tmp_path):
    shutil.copytree(Path(DATA, "caltech2v"), tmp_path / "caltech2v")
    assert D.load("caltech2v", data_home=tmp_path, download=False).n_samples == 1400
    _edit_in_place(tmp_path / "caltech2v" / "L.mat")  # one label changed
    with pytest.raises(D.DataIntegrityError, match="'caltech2v/L.mat'"):
        D.load("caltech2v", data_home=tmp_path, download=False)


@needs_data
@pytest.mark.parametrize("relpath", ["usps/usps.h5", "mnist_test/t10k-images-idx3-ubyte.gz"])
def test_digit_file_truncated_or_edited_is_rejected(tmp_path, relpath):
    name = relpath.split("/")[0]
    shutil.copytree(Path(DATA, name), tmp_path / name)
    target = tmp_path / relpath
    _edit_in_place(target)
    with pytest.raises(D.DataIntegrityError, match=f"'{relpath}'"):
        D.load(name, data_home=tmp_path, download=False)
    target.write_bytes(target.read_bytes()[:1000])  # a truncated copy
    with pytest.raises(D.DataIntegrityError, match=f"'{relpath}'"):
        D.load(name, data_home=tmp_path, download=False)


def _parts(folder: Path) -> list[Path]:
    return sorted(folder.glob(".toy.bin.*.part"))


def _wait_for_partial_download(folder: Path) -> None:
    deadline = time.monotonic() + 20
    def received() -> int:  # bytes in the hidden temporary files (a .part file or a .part folder)
        return sum(f.stat().st_size for part in _parts(folder) for f in [part, *part.rglob("*")] if f.is_file())

    while not received():
        assert time.monotonic() < deadline, "the download did not start"
        time.sleep(0.02)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_killed_download_is_cleaned_up_by_the_next_load(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    server.hold["/toy.bin"] = release = threading.Event()
    register(monkeypatch, "toy/toy.bin", PAYLOAD, server.base + "/toy.bin")
    (tmp_path / "toy").mkdir()
    code = (
        "import sys; from mmc_teach import datasets as D; "
        f"D.REGISTRY['toy/toy.bin'] = D.RegistryEntry({D.REGISTRY['toy/toy.bin'].sha256!r}, {server.base + '/toy.bin'!r}); "
        "D.fetch('toy/toy.bin', data_home=sys.argv[1])"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(D.__file__).resolve().parents[1]))
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env)
    try:
        _wait_for_partial_download(tmp_path / "toy")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert _parts(tmp_path / "toy"), "a killed download leaves its hidden folder"
    release.set()
    path = D.fetch("toy/toy.bin", data_home=tmp_path)
    assert path.read_bytes() == PAYLOAD
    assert files_under(tmp_path) == [path] and _parts(tmp_path / "toy") == []


def test_a_running_download_is_not_cleaned_up(server, monkeypatch, tmp_path):
    server.routes["/toy.bin"] = PAYLOAD
    server.hold["/toy.bin"] = release = threading.Event()
    register(monkeypatch, "toy/toy.bin", PAYLOAD, server.base + "/toy.bin")
    (tmp_path / "toy").mkdir()
    results = []
    worker = threading.Thread(target=lambda: results.append(D.fetch("toy/toy.bin", data_home=tmp_path)))
    worker.start()
    try:
        _wait_for_partial_download(tmp_path / "toy")
        live = _parts(tmp_path / "toy")
        with pytest.raises(D.DataNotFoundError, match="download=False"):  # a second load meanwhile
            D.fetch("toy/toy.bin", data_home=tmp_path, download=False)
        assert _parts(tmp_path / "toy") == live  # the running download's folder was left alone
    finally:
        release.set()
        worker.join(timeout=30)
    assert results and results[0].read_bytes() == PAYLOAD and files_under(tmp_path) == results


def test_read_only_data_folder_with_a_missing_file_names_the_folder(monkeypatch, tmp_path):
    """A read-only disk (simulated: the tests may run as root, whom chmod does not stop)."""
    register(monkeypatch, "toy/toy.bin", PAYLOAD, "http://127.0.0.1:9/toy.bin")
    (tmp_path / "toy").mkdir()

    def read_only(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(D.tempfile, "mkdtemp", read_only)
    with pytest.raises(D.DataNotFoundError, match=r"'toy/toy.bin' was not found .* cannot write to .*Read-only file system"):
        D.fetch("toy/toy.bin", data_home=tmp_path, download=True)
    assert files_under(tmp_path) == []  # nothing half-written
