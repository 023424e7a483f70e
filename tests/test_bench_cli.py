"""The benchmark command line around the runs: partial reports, exit status, --out, concurrent writes, render.

Tiny fake data sets stand in for the real ones (``datasets.load`` is monkeypatched), and where the
training itself is not the point ``run_pair`` is replaced by a stub that returns fixed numbers.
"""

from __future__ import annotations

import json
import os
import re
from types import SimpleNamespace

import numpy as np
import pytest

from mmc_teach import bench, datasets
from mmc_teach.__main__ import main


def _fake_data(name: str) -> SimpleNamespace:
    rng = np.random.RandomState(0)
    labels = np.repeat([0, 1], 20)
    n_views = 6 if name.startswith("six") else 2
    views = [rng.normal(size=(40, 3)) + 3 * labels[:, None] for _ in range(n_views)]
    return SimpleNamespace(name=name, views=views, labels=labels, n_clusters=2)


@pytest.fixture
def fake_data(monkeypatch):
    monkeypatch.setattr(datasets, "load", lambda name, data_home=None: _fake_data(name))


def _stub_run_pair(method, data, seed, device=None, schedule="cpu"):
    return {"seed": seed, **{m: 0.5 for m in bench.METRICS}, "wall_time_s": 0.1, "peak_memory_mib": 1.0}


def _bench(out, *args: str) -> int:
    return main(["bench", "--device", "cpu", "--quick", "--no-progress", "--seeds", "1", "--out", str(out), *args])


def test_an_interrupted_run_leaves_the_complete_report_and_a_marked_partial_one(fake_data, monkeypatch, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a,two_b") == 0  # a real k-means run
    complete = out.read_bytes()
    assert json.loads(complete)["complete"] is True
    assert not bench.partial_path(out).exists()

    def interrupted_on_the_second_pair(method, data, *args, **kwargs):
        if data.name == "two_b":
            raise KeyboardInterrupt
        return _stub_run_pair(method, data, *args, **kwargs)

    monkeypatch.setattr(bench, "run_pair", interrupted_on_the_second_pair)
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a,two_b") == 130
    assert out.read_bytes() == complete
    partial = bench.partial_path(out)
    assert partial == tmp_path / "bench.partial.json"
    report = json.loads(partial.read_text())
    assert report["complete"] is False and report["missing_pairs"] == ["kmeans/two_b"]
    assert [r["dataset"] for r in report["results"]] == ["two_a"]
    assert "interrupted" in capsys.readouterr().err

    assert main(["render", str(partial)]) == 0
    shown = capsys.readouterr().out
    assert shown.startswith("**PARTIAL REPORT") and "kmeans/two_b" in shown and "not run" in shown
    assert bench.render_table(report, fmt="html").startswith("<p><strong>PARTIAL REPORT")
    assert main(["render", str(out)]) == 0
    assert capsys.readouterr().out.startswith("| method | two_a | two_b |")


def test_a_checkpoint_that_cannot_be_written_does_not_stop_the_run(fake_data, monkeypatch, tmp_path):
    def full_disk(report, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(bench, "run_pair", _stub_run_pair)
    monkeypatch.setattr(bench, "write_json", full_disk)
    with pytest.warns(UserWarning, match="could not write the checkpoint"):
        report = bench.run_benchmark(["kmeans", "dec"], ["two_a"], seeds=1, verbose=False, checkpoint=tmp_path / "p.json")
    assert [r["method"] for r in report["results"]] == ["kmeans", "dec"] and report["complete"] is True


def test_every_pair_failing_is_a_nonzero_exit_and_keeps_out(fake_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    out.write_text('{"complete": true, "meta": {}, "results": []}\n')
    # a real run: k-means refuses the negative seed, so the one pair fails
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a", "--seed", "-5") == 1
    err = capsys.readouterr().err
    assert "every pair failed" in err and "kmeans/two_a" in err
    assert out.read_text() == '{"complete": true, "meta": {}, "results": []}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


@pytest.mark.parametrize("args,message", [
    (["--methods", ",", "--datasets", "two_a"], "--methods names no method"),
    (["--methods", "kmeans", "--datasets", ","], "--datasets names no data set"),
    (["--methods", "jecl", "--datasets", "six_a"], "jecl/six_a: needs exactly 2 views, six_a has 6"),
    (["--methods", "kmeans", "--datasets", "two_a", "--seeds", "0"], "at least one seed"),
])
def test_nothing_to_run_is_a_nonzero_exit_with_a_message(fake_data, monkeypatch, tmp_path, capsys, args, message):
    monkeypatch.setattr(bench, "run_pair", _stub_run_pair)
    out = tmp_path / "bench.json"
    assert main(["bench", "--no-progress", "--out", str(out), *args]) != 0
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_inapplicable_pair_is_named_when_others_run(fake_data, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "run_pair", _stub_run_pair)
    out = tmp_path / "bench.json"
    assert _bench(out, "--methods", "kmeans,jecl", "--datasets", "six_a") == 0
    assert "skipped (not applicable) jecl/six_a: needs exactly 2 views, six_a has 6" in capsys.readouterr().err
    report = json.loads(out.read_text())
    assert [r["method"] for r in report["results"]] == ["kmeans"]
    assert report["meta"]["inapplicable"] == ["jecl/six_a: needs exactly 2 views, six_a has 6"]


def _no_training(*args, **kwargs):
    raise AssertionError("training started although --out cannot be written")


@pytest.mark.parametrize("case", ["directory", "under_a_file", "unwritable"])
def test_a_bad_out_fails_before_any_training(monkeypatch, tmp_path, capsys, case):
    monkeypatch.setattr(datasets, "load", _no_training)
    monkeypatch.setattr(bench, "run_pair", _no_training)
    (tmp_path / "a_file").write_text("x")
    out = {"directory": tmp_path, "under_a_file": tmp_path / "a_file" / "bench.json",
           "unwritable": tmp_path / "bench.json"}[case]
    if case == "unwritable":  # the tests may run as root, where chmod does not stop a write
        def refused(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(bench.tempfile, "TemporaryFile", refused)
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a") == 2
    err = capsys.readouterr().err
    expected = {"directory": "is a directory", "under_a_file": "a_file is a file, not a directory",
                "unwritable": "Permission denied"}[case]
    assert err.startswith("mmc-teach bench: error: --out:") and expected in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_two_writers_of_one_path_do_not_break_each_other(monkeypatch, tmp_path):
    """A second write lands between the first one's write and its rename (as two runs on one --out can)."""
    path = tmp_path / "bench.json"
    real_replace = bench.os.replace
    interleaved = []

    def replace_after_another_writer(src, dst):
        if not interleaved:
            interleaved.append(src)
            bench.write_json({"writer": 2}, path)
        real_replace(src, dst)

    monkeypatch.setattr(bench.os, "replace", replace_after_another_writer)
    bench.write_json({"writer": 1}, path)
    assert json.loads(path.read_text()) == {"writer": 1}  # the last rename wins, both writes were whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]


BAD_REPORTS = [
    ([1, 2], "JSON object with 'meta' and 'results'; got list"),
    ({"meta": {}}, "has no 'results'"),
    ({"results": [{"method": "dec", "dataset": "cub10", "std": {"acc": 0.1}}]}, "results[0] (dec/cub10) has neither 'mean' nor 'error'"),
    ({"results": [{"dataset": "cub10"}]}, "results[0] has no 'method'"),
    ({"results": [{"method": "dec", "dataset": "cub10", "mean": {"nmi": 1}, "std": {"nmi": 0}}]}, "has no 'acc' in its 'mean'"),
]


@pytest.mark.parametrize("report,message", BAD_REPORTS)
def test_render_names_what_a_malformed_report_lacks(tmp_path, capsys, report, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        bench.render_table(report)
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    assert main(["render", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mmc-teach render: error: {path}:") and message in err


def test_render_of_a_file_that_is_not_json_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text('{"results": [')
    assert main(["render", str(path)]) == 2
    assert main(["render", str(tmp_path / "absent.json")]) == 2
    err = capsys.readouterr().err
    assert "Expecting value" in err and "No such file" in err


def test_a_complete_report_renders_without_a_partial_marker():
    report = json.loads(open("results/bench.json").read())
    assert report.get("complete", True)
    assert bench.render_table(report).startswith("| method |")
    assert bench.render_table(report, fmt="html").startswith("<table>")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_out_directory_fails_before_any_training(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(datasets, "load", _no_training)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert _bench(locked / "bench.json", "--methods", "kmeans", "--datasets", "two_a") == 2
    finally:
        locked.chmod(0o700)
    assert "cannot write" in capsys.readouterr().err and not list(locked.iterdir())


def test_update_replaces_only_the_pairs_it_reruns(fake_data, monkeypatch, tmp_path, capsys):
    out = tmp_path / "bench.json"
    monkeypatch.setattr(bench, "run_pair", _stub_run_pair)
    assert _bench(out, "--methods", "kmeans,cmmc", "--datasets", "two_a,two_b") == 0
    before = json.loads(out.read_text())

    def better_cmmc(method, data, seed, device=None, schedule="cpu"):
        return {**_stub_run_pair(method, data, seed), "acc": 0.9}

    monkeypatch.setattr(bench, "run_pair", better_cmmc)
    assert _bench(out, "--methods", "cmmc", "--datasets", "two_b", "--update") == 0
    after = json.loads(out.read_text())
    acc = {(e["method"], e["dataset"]): e["mean"]["acc"] for e in after["results"]}
    assert acc == {("kmeans", "two_a"): 0.5, ("cmmc", "two_a"): 0.5, ("kmeans", "two_b"): 0.5, ("cmmc", "two_b"): 0.9}
    assert [(e["method"], e["dataset"]) for e in after["results"]] == [(e["method"], e["dataset"]) for e in before["results"]]
    assert list(after["meta"]["updated_pairs"]) == ["cmmc/two_b"]
    assert after["meta"]["date"] == before["meta"]["date"]


def test_update_refuses_other_seeds_and_a_missing_report_before_training(fake_data, monkeypatch, tmp_path, capsys):
    out = tmp_path / "bench.json"
    monkeypatch.setattr(bench, "run_pair", _stub_run_pair)
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a", "--update") == 2  # nothing to update yet
    assert "--update needs a complete report" in capsys.readouterr().err and not out.exists()
    assert _bench(out, "--methods", "kmeans", "--datasets", "two_a") == 0
    kept = out.read_bytes()
    monkeypatch.setattr(bench, "run_pair", _no_training)
    assert main(["bench", "--device", "cpu", "--quick", "--no-progress", "--seeds", "2", "--out", str(out),
                 "--methods", "kmeans", "--datasets", "two_a", "--update"]) == 2
    assert "seeds" in capsys.readouterr().err and out.read_bytes() == kept


def test_update_keeps_a_good_pair_when_its_rerun_fails():
    old = {"complete": True, "meta": {"schedule": "cpu", "seeds": [0]},
           "results": [{"method": "cmmc", "dataset": "a", "error": None, "mean": {"acc": 0.9}}]}
    new = {"complete": True, "meta": {"schedule": "cpu", "seeds": [0]},
           "results": [{"method": "cmmc", "dataset": "a", "error": "RuntimeError: boom", "runs": []}]}
    merged = bench.update_report(old, new)
    assert merged["results"] == old["results"] and merged["meta"]["updated_pairs"] == {}
