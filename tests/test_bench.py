"""The benchmark runner: a --quick run on two small data sets, its JSON and its rendered table."""

import json
import re

import numpy as np
import pytest

from mmc_teach.__main__ import main
from mmc_teach.bench import METRICS, render_table

METHODS = ["kmeans", "dec", "idec", "jecl", "dm2c", "cmmc"]
DATASETS = ["cub10", "caltech2v"]


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    code = main(["bench", "--methods", ",".join(METHODS), "--datasets", ",".join(DATASETS),
                 "--seeds", "2", "--device", "cpu", "--quick", "--no-progress", "--out", str(out)])
    assert code == 0
    return json.loads(out.read_text()), out


def test_report_structure(quick_report):
    report, _ = quick_report
    meta = report["meta"]
    for key in ("package_version", "git_commit", "torch_version", "device", "date", "seeds", "schedule", "peak_memory_mib"):
        assert key in meta
    assert meta["schedule"] == "quick" and meta["seeds"] == [0, 1] and meta["device"] == "cpu"
    assert meta["hyperparameters"]["dec/cub10"] == {"pretrain_epochs": 2, "epochs": 2}
    pairs = {(r["method"], r["dataset"]) for r in report["results"]}
    assert pairs == {(m, d) for m in METHODS for d in DATASETS}
    for entry in report["results"]:
        assert entry["error"] is None, f"{entry['method']}/{entry['dataset']}: {entry['error']}"
        assert [run["seed"] for run in entry["runs"]] == [0, 1]
        for metric in METRICS:
            values = [run[metric] for run in entry["runs"]]
            assert all(0.0 <= v <= 1.0 or metric == "ari" for v in values)
            assert entry["mean"][metric] == pytest.approx(sum(values) / len(values), abs=1e-6)
        assert all(run["wall_time_s"] > 0 for run in entry["runs"])


def test_rendered_table_matches_json(quick_report, tmp_path):
    report, path = quick_report
    table_path = tmp_path / "table.md"
    assert main(["render", str(path), "--metric", "nmi", "--out", str(table_path), "--figure", str(tmp_path / "fig.png")]) == 0
    lines = table_path.read_text().strip().splitlines()
    assert lines[0] == "| method | " + " | ".join(DATASETS) + " |"
    lookup = {(r["method"], r["dataset"]): r for r in report["results"]}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        method = cells[0]
        for dataset, cell in zip(DATASETS, cells[1:]):
            mean, std = (float(x) for x in re.findall(r"-?\d+\.\d+", cell))
            entry = lookup[(method, dataset)]
            # Each cell is the JSON value rounded to three decimals (a value such as 0.1705 sits on a
            # rounding boundary, so compare with Python's own rounding, not with a tolerance).
            assert mean == float(f"{entry['mean']['nmi']:.3f}")
            assert std == float(f"{entry['std']['nmi']:.3f}")
    assert (tmp_path / "fig.png").stat().st_size > 0
    assert render_table(report, "acc", "html").startswith("<table>")


def test_a_failing_pair_is_recorded_and_the_run_goes_on(monkeypatch, tmp_path):
    from mmc_teach import bench

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(bench.METHODS, "dec", (broken, lambda d: True))
    report = bench.run_benchmark(["dec", "kmeans"], ["caltech2v"], seeds=1, device="cpu", schedule="quick", verbose=False)
    by_method = {r["method"]: r for r in report["results"]}
    assert by_method["dec"]["error"] == "RuntimeError: boom"
    assert by_method["kmeans"]["error"] is None


def test_unknown_method_is_rejected():
    from mmc_teach.bench import run_benchmark

    with pytest.raises(ValueError, match="unknown method"):
        run_benchmark(["kmeanz"], ["cub10"], seeds=1)


@pytest.mark.parametrize("method", ["idec", "cmmc"])
def test_rerunning_one_pair_with_one_seed_gives_the_same_numbers(quick_report, tmp_path, method):
    report, _ = quick_report
    out = tmp_path / "one.json"
    assert main(["bench", "--methods", method, "--datasets", "caltech2v", "--seed", "1", "--device", "cpu",
                 "--quick", "--no-progress", "--out", str(out)]) == 0
    rerun = json.loads(out.read_text())["results"][0]["runs"][0]
    original = next(r for r in report["results"] if (r["method"], r["dataset"]) == (method, "caltech2v"))["runs"][1]
    assert rerun["seed"] == original["seed"] == 1
    assert {m: rerun[m] for m in METRICS} == {m: original[m] for m in METRICS}


def test_checkpoint_holds_every_finished_pair(tmp_path):
    from mmc_teach.bench import run_benchmark

    path = tmp_path / "partial.json"
    report = run_benchmark(["kmeans"], ["caltech2v", "cub10"], seeds=1, device="cpu", schedule="quick", verbose=False,
                           checkpoint=path)
    on_disk = json.loads(path.read_text())
    assert [r["dataset"] for r in on_disk["results"]] == ["caltech2v", "cub10"]
    assert on_disk["results"] == json.loads(json.dumps(report["results"]))
    assert not list(tmp_path.glob("*.tmp"))


def test_dataset_overrides_reach_the_estimator():
    from mmc_teach.bench import DATASET_OVERRIDES, SCHEDULES, schedule_params

    for (method, dataset), override in DATASET_OVERRIDES["cpu"].items():
        params = schedule_params("cpu", method, dataset)
        assert all(params[k] == v for k, v in override.items())
        assert set(params) >= set(SCHEDULES["cpu"][method])
    assert schedule_params("cpu", "cmmc", "mnist_usps") == SCHEDULES["cpu"]["cmmc"]


def test_load_result_reads_committed_files_from_the_root_or_book(tmp_path, monkeypatch):
    from pathlib import Path

    from mmc_teach.bench import load_result

    root = Path(__file__).resolve().parents[1]
    rows = load_result("results/kmeans.json", root=root)["rows"]
    assert {row["key"] for row in rows} >= {"cub10", "blobs_1m"}
    (tmp_path / "book").mkdir()
    (tmp_path / "r.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    monkeypatch.chdir(tmp_path / "book")
    assert load_result("r.jsonl") == [{"a": 1}, {"a": 2}]


def test_figure_marks_the_mixed_modal_method(quick_report):
    """DM2C's bars answer another task (one view per sample): hatched, and the legend says so."""
    import matplotlib

    matplotlib.use("Agg")
    from mmc_teach.bench import render_figure

    report, _ = quick_report
    fig = render_figure(report, "acc")
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "dm2c (mixed-modal data)" in labels and "cmmc" in labels
    hatched = {container.get_label(): {bar.get_hatch() for bar in container} for container in ax.containers
               if hasattr(container, "get_label") and container.get_label() in labels}
    assert hatched["dm2c (mixed-modal data)"] == {"//"} and hatched["cmmc"] == {None}


def test_run_pair_silences_the_estimators_bars_and_restores_the_setting(monkeypatch, capsys):
    import os

    from mmc_teach import bench
    from mmc_teach.datasets import MultiModalDataset

    rng = np.random.RandomState(0)
    data = MultiModalDataset(name="two", views=[rng.randn(60, 4).astype(np.float32), rng.randn(60, 3).astype(np.float32)],
                             labels=np.repeat([0, 1], 30), view_names=["a", "b"], class_names=["0", "1"])
    monkeypatch.setenv("MMC_TEACH_PROGRESS", "1")
    bench.run_pair("dm2c", data, seed=0, device="cpu", schedule="quick")
    assert capsys.readouterr().err == ""  # the benchmark's own bar is the only one
    assert os.environ["MMC_TEACH_PROGRESS"] == "1"
