"""The benchmark runner behind the chapter "Benchmarks and reproduction".

``python -m mmc_teach bench`` (or ``mmc-teach bench``) runs every applicable method/dataset pair
over several seeds and writes one JSON file; ``python -m mmc_teach render`` turns that file into
a Markdown or HTML table and a figure. Every number in the chapter comes from such a file.

Protocol (the same for every method, so the table compares like with like):

- each view is standardised (zero mean, unit variance per feature, constant features left at 0);
- ``kmeans``, ``dec`` and ``idec`` cluster the concatenation of the standardised views; DEC and IDEC
  start from one shared autoencoder pretraining per seed (as in the IDEC paper);
- ``jecl`` and ``cmmc`` take the paired views (CMMC's views min-max scaled to [0, 1] instead, as in
  MFLVC's code);
- ``dm2c`` takes the mixed-modal split of a two-view data set (:func:`mmc_teach.pairing.mixed_modal_split`
  with its fixed split seed 0), is fitted on the training half and scored on all its samples;
- metrics are those of :func:`mmc_teach.metrics.evaluate`; wall time covers ``fit`` and ``predict``;
- hyperparameters come from ``SCHEDULES`` and ``DATASET_OVERRIDES`` (``"cpu"`` by default) and are written into the report.

A report says whether it is complete: ``"complete": false`` and ``"missing_pairs"`` mark a run that
stopped early (the command line writes those checkpoints to ``<out>.partial.json`` and replaces
``--out`` only with a complete report); :func:`render_table` shows a partial report as such.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .cmmc import PAPER_SCHEDULE
from .utils import standardise

__all__ = [
    "METHODS", "DATASETS", "SCHEDULES", "DATASET_OVERRIDES", "schedule_params", "run_pair", "run_benchmark",
    "render_table", "render_figure", "write_json", "check_output_path", "partial_path", "update_report",
]

METRICS = ("acc", "nmi", "ari", "f", "purity")
DATASETS = ("wikipedia", "cub10", "bdgp", "mnist_usps", "caltech2v")
# Methods that see one view per sample (the mixed-modal split) instead of the paired views.
MIXED_MODAL_METHODS = ("dm2c",)


# Hyperparameters per schedule; anything not named is the estimator's default.
# - "paper": the papers' networks and epochs (meant for a GPU): the estimators' defaults, except
#   CMMC, whose defaults are its CPU schedule (mmc_teach.cmmc.PAPER_SCHEDULE is MFLVC's);
# - "cpu" (the default): smaller networks / fewer epochs so that the whole table runs in about an
#   hour on a 2-core CPU; the per-method chapters show what the longer schedules add;
# - "quick": a few epochs, for smoke tests only.
SCHEDULES: dict[str, dict[str, dict[str, Any]]] = {
    "paper": {**{method: {} for method in ("kmeans", "dec", "idec", "jecl", "dm2c")}, "cmmc": dict(PAPER_SCHEDULE)},
    "cpu": {
        "kmeans": {},
        "dec": {"pretrain_epochs": 50},
        "idec": {"pretrain_epochs": 50},
        "jecl": {"hidden_dims": (512, 256, 10), "pretrain_epochs": 30, "epochs": 30},
        "dm2c": {"pretrain_epochs": 50, "epochs": 50},
        # CMMC's defaults are a CPU schedule whose phase lengths follow the data set's size.
        "cmmc": {},
    },
    "quick": {
        "kmeans": {"n_init": 2},
        "dec": {"pretrain_epochs": 2, "epochs": 2},
        "idec": {"pretrain_epochs": 2, "epochs": 2},
        "jecl": {"pretrain_epochs": 2, "epochs": 2},
        "dm2c": {"pretrain_epochs": 2, "epochs": 2},
        "cmmc": {"pretrain_epochs": 2, "contrastive_epochs": 2, "finetune_epochs": 1},
    },
}


# Per data set changes to a schedule (none at present: CMMC's "auto" epochs replaced the ones it had).
DATASET_OVERRIDES: dict[str, dict[tuple[str, str], dict[str, Any]]] = {"cpu": {}}


RAW_RESULTS_URL = "https://raw.githubusercontent.com/mmc-teach/mmc_teach/main/"


def load_result(relative_path: str, root: str | os.PathLike | None = None) -> Any:
    """A committed result file (``results/...`` or ``benchmarks/results/...``), parsed.

    It is read from the repository: ``root``, else the working directory or its parent when that is
    ``book/`` (where the chapters run). Without a clone (Colab) it is fetched from GitHub. A
    ``.jsonl`` file gives a list of rows, a ``.json`` file its object.
    """
    base = Path(root) if root is not None else (Path.cwd().parent if Path.cwd().name == "book" else Path.cwd())
    path = base / relative_path
    if path.exists():
        text = path.read_text()
    else:
        import urllib.request

        with urllib.request.urlopen(RAW_RESULTS_URL + relative_path, timeout=30) as response:
            text = response.read().decode()
    if relative_path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def schedule_params(schedule: str, method: str, dataset: str) -> dict[str, Any]:
    """The hyperparameters ``method`` gets on ``dataset`` under ``schedule`` (beyond its defaults)."""
    return {**SCHEDULES[schedule][method], **DATASET_OVERRIDES.get(schedule, {}).get((method, dataset), {})}


def _run_kmeans(data: Any, seed: int, device: str | None, params: dict) -> tuple[np.ndarray, np.ndarray]:
    from .kmeans import KMeans

    X = np.hstack([standardise(v) for v in data.views])
    return data.labels, KMeans(data.n_clusters, random_state=seed, device=device, **params).fit_predict(X)


def _shared_autoencoder(data: Any, X: np.ndarray, seed: int, device: str | None, params: dict) -> Any:
    """DEC's autoencoder, pretrained once per (data set, seed, settings) and shared by DEC and IDEC as
    in IDEC's paper; the disk cache (:func:`mmc_teach.nn.pretrained_autoencoder`) makes a rerun of one
    pair, or a later run, reuse it."""
    from .dec import DEC
    from .nn import pretrained_autoencoder

    defaults = {**DEC(data.n_clusters).get_params(), **params}
    return pretrained_autoencoder(X, defaults["hidden_dims"], epochs=defaults["pretrain_epochs"],
                                  batch_size=defaults["batch_size"], lr=defaults["pretrain_lr"],
                                  noise=defaults["noise"], random_state=seed, device=device)


def _run_single_view_deep(name: str) -> Callable:
    def run(data: Any, seed: int, device: str | None, params: dict) -> tuple[np.ndarray, np.ndarray]:
        from . import dec

        estimator = {"dec": dec.DEC, "idec": dec.IDEC}[name]
        X = np.hstack([standardise(v) for v in data.views])
        ae = _shared_autoencoder(data, X, seed, device, params)
        params = {**params, "pretrain_epochs": 0}
        # verbose=False in every runner: the benchmark draws one bar over its pairs, none per epoch beneath it.
        model = estimator(data.n_clusters, random_state=seed, device=device, autoencoder=ae, verbose=False, **params)
        return data.labels, model.fit_predict(X)

    return run


def _run_paired(name: str) -> Callable:
    def run(data: Any, seed: int, device: str | None, params: dict) -> tuple[np.ndarray, np.ndarray]:
        import importlib

        from sklearn.preprocessing import minmax_scale

        module = importlib.import_module(f".{name}", __package__)
        estimator = getattr(module, name.upper())
        # CMMC takes every view min-max scaled to [0, 1], as MFLVC's code does (chapter "CMMC").
        scale = (lambda v: minmax_scale(v).astype(np.float32)) if name == "cmmc" else standardise
        views = [scale(v) for v in data.views]
        model = estimator(data.n_clusters, random_state=seed, device=device, verbose=False, **params)
        return data.labels, model.fit_predict(views)

    return run


def _run_dm2c(data: Any, seed: int, device: str | None, params: dict) -> tuple[np.ndarray, np.ndarray]:
    from .pairing import mixed_modal_split
    from .dm2c import DM2C

    split = mixed_modal_split(data, random_state=0)
    views = [standardise(X) for X in split.train_views]
    model = DM2C(data.n_clusters, random_state=seed, device=device, verbose=False, **params).fit(views)
    return np.concatenate(split.train_labels), model.labels_  # both: the first modality's samples, then the second's


# method -> (runner, which data sets it applies to)
METHODS: dict[str, tuple[Callable, Callable[[Any], bool]]] = {
    "kmeans": (_run_kmeans, lambda d: True),
    "dec": (_run_single_view_deep("dec"), lambda d: True),
    "idec": (_run_single_view_deep("idec"), lambda d: True),
    "jecl": (_run_paired("jecl"), lambda d: len(d.views) == 2),
    "dm2c": (_run_dm2c, lambda d: len(d.views) == 2),
    "cmmc": (_run_paired("cmmc"), lambda d: len(d.views) >= 2),
}
# What the applicability tests above require, for the message that names a skipped pair.
_REQUIRES = {"jecl": "exactly 2 views", "dm2c": "exactly 2 views", "cmmc": "at least 2 views"}


def _inapplicable(method: str, data: Any) -> str:
    return f"{method}/{data.name}: needs {_REQUIRES.get(method, 'another kind of data')}, {data.name} has {len(data.views)}"


def _peak_memory_mib() -> float:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_pair(method: str, data: Any, seed: int, device: str | None = None, schedule: str = "cpu") -> dict:
    """Run one method on one data set with one seed; return metrics, wall time and peak memory."""
    from .metrics import evaluate

    runner, _ = METHODS[method]
    params = schedule_params(schedule, method, data.name)
    start = time.perf_counter()
    y_true, y_pred = runner(data, seed, device, params)
    wall = time.perf_counter() - start
    scores = evaluate(y_true, y_pred)
    return {"seed": seed, **{m: round(float(scores[m]), 6) for m in METRICS}, "wall_time_s": round(wall, 3),
            "peak_memory_mib": round(_peak_memory_mib(), 1)}


def _summary(runs: list[dict]) -> tuple[dict, dict]:
    mean = {m: round(float(np.mean([r[m] for r in runs])), 6) for m in (*METRICS, "wall_time_s")}
    std = {m: round(float(np.std([r[m] for r in runs])), 6) for m in (*METRICS, "wall_time_s")}
    return mean, std


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def run_benchmark(
    methods: Sequence[str],
    datasets: Sequence[str],
    seeds: int | Sequence[int] = 5,
    device: str | None = None,
    schedule: str = "cpu",
    data_home: str | None = None,
    verbose: bool = True,
    checkpoint: str | os.PathLike | None = None,
) -> dict:
    """Run every applicable (method, dataset) pair over ``seeds``; a failing pair is recorded, not fatal.

    Pairs a method does not apply to (JECL on a six-view data set, say) are listed in
    ``meta["inapplicable"]``; ``ValueError`` when no pair applies at all. The report's ``"complete"``
    is true once every pair has run (``"missing_pairs"`` names the others until then).

    With ``checkpoint``, the report so far is written there (atomically) after every pair, so a
    long run that is stopped still leaves every finished pair on disk, marked ``"complete": false``.
    Give it a file of its own (the command line uses :func:`partial_path`), not a complete report
    you want to keep. A checkpoint that cannot be written is a warning; the run goes on.
    """
    import torch

    from . import __version__
    from ._base import get_device, progress
    from .datasets import load

    if schedule not in SCHEDULES:
        raise ValueError(f"schedule={schedule!r} is not one of {sorted(SCHEDULES)}.")
    if not methods:
        raise ValueError(f"no method given; choose from {sorted(METHODS)}.")
    if not datasets:
        raise ValueError("no data set given.")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {sorted(METHODS)}.")
    seed_list = list(range(seeds)) if isinstance(seeds, int) else [int(s) for s in seeds]
    if not seed_list:
        raise ValueError("seeds must name at least one seed.")
    resolved = get_device(None if device in (None, "auto") else device)
    loaded = {name: load(name, data_home=data_home) for name in datasets}
    pairs = [(m, d) for d in datasets for m in methods if METHODS[m][1](loaded[d])]
    inapplicable = [_inapplicable(m, loaded[d]) for d in datasets for m in methods if not METHODS[m][1](loaded[d])]
    if not pairs:
        raise ValueError("no method applies to the chosen data sets (" + "; ".join(inapplicable) + ").")
    meta = {
        "package_version": __version__,
        "git_commit": _git_commit(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(resolved),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seeds": seed_list,
        "schedule": schedule,
        "hyperparameters": {f"{m}/{d}": {k: list(v) if isinstance(v, tuple) else v
                                         for k, v in schedule_params(schedule, m, d).items()}
                            for m, d in pairs},
        "inapplicable": inapplicable,
    }
    results: list[dict] = []
    missing = [f"{m}/{d}" for m, d in pairs]
    report = {"complete": False, "missing_pairs": missing, "meta": meta, "results": results}
    bar = progress(pairs, verbose, desc="bench")
    for method, name in bar:
        entry: dict[str, Any] = {"method": method, "dataset": name, "runs": [], "error": None}
        try:
            for seed in seed_list:
                entry["runs"].append(run_pair(method, loaded[name], seed, str(resolved), schedule))
            entry["mean"], entry["std"] = _summary(entry["runs"])
        except Exception as err:  # one broken pair must not stop the whole benchmark
            entry["error"] = f"{type(err).__name__}: {err}"
            entry["traceback"] = traceback.format_exc(limit=5)
        results.append(entry)
        missing.remove(f"{method}/{name}")
        report["complete"] = not missing
        meta["peak_memory_mib"] = round(_peak_memory_mib(), 1)
        if checkpoint is not None:
            try:
                write_json(report, checkpoint)
            except OSError as err:  # a full disk must not throw away the pairs still to come
                warnings.warn(f"could not write the checkpoint {checkpoint}: {err}; the run goes on.", stacklevel=2)
    report["complete"] = True
    meta["peak_memory_mib"] = round(_peak_memory_mib(), 1)
    return report


def update_report(old: dict, new: dict) -> dict:
    """``old`` with the (method, data set) pairs of ``new`` replaced or added; the other pairs kept.

    Rerunning one method after a change to it should not cost the hour of the whole table. The
    reports must share the schedule and the seeds (else their numbers are not comparable), and a
    complete ``old``. A pair that failed in ``new`` replaces nothing. The top-level ``meta`` stays that
    of ``old``; ``meta["updated_pairs"]`` records, for every replaced pair, the commit, date, machine
    and torch of the run that produced it.
    """
    for key in ("schedule", "seeds"):
        if old["meta"].get(key) != new["meta"].get(key):
            raise ValueError(f"cannot update a report made with {key}={old['meta'].get(key)!r} by one made "
                             f"with {key}={new['meta'].get(key)!r}: the numbers would not be comparable.")
    if not old.get("complete", True) or not new.get("complete", True):
        raise ValueError("both reports must be complete (a .partial.json is not).")
    meta = dict(old["meta"])
    meta["hyperparameters"] = {**old["meta"].get("hyperparameters", {}), **new["meta"].get("hyperparameters", {})}
    provenance = {key: new["meta"].get(key) for key in ("git_commit", "date", "machine", "torch_version", "device")}
    fresh = {(e["method"], e["dataset"]): e for e in new["results"] if not e.get("error")}
    updated = dict(meta.get("updated_pairs", {}))
    for method, name in fresh:
        updated[f"{method}/{name}"] = provenance
    results = [fresh.pop((e["method"], e["dataset"]), e) for e in old["results"]]
    results.extend(fresh.values())
    meta["updated_pairs"] = updated
    meta["peak_memory_mib"] = max(old["meta"].get("peak_memory_mib", 0.0), new["meta"].get("peak_memory_mib", 0.0))
    return {**old, "complete": True, "meta": meta, "results": results}


def partial_path(out: str | os.PathLike) -> Path:
    """Where the command line checkpoints a run whose complete report goes to ``out``: ``bench.partial.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".partial.json") if out.suffix == ".json" else out.with_name(out.name + ".partial.json")


def check_output_path(path: str | os.PathLike) -> Path:
    """Make sure a report can be written to ``path`` (before hours of training); return it as a Path.

    Creates missing parent directories. Raises ``IsADirectoryError``, ``NotADirectoryError`` or
    ``PermissionError`` with a message naming the path.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory; give a file name such as {path / 'bench.json'}.")
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(f"cannot write {path}: {blocker} is a file, not a directory.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The only reliable test of writability (permissions, read-only mounts, ACLs) is to write.
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as err:
        raise PermissionError(f"cannot write {path}: {err.strerror or err} in {path.parent}.") from None
    return path


def write_json(report: dict, path: str | os.PathLike) -> None:
    """Write ``report`` atomically, so an interrupted run never leaves half a file.

    The temporary file has a unique name in the same directory, so two runs writing the same path
    never replace each other's half-written file; the last complete write wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            umask = os.umask(0)  # mkstemp creates 0600; give the report the permissions a plain open() would
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            file.write(json.dumps(report, indent=1, sort_keys=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _checked_results(report: Any, metric: str) -> list[dict]:
    """The report's results, after checking that each one has what a table cell needs."""
    if not isinstance(report, dict):
        raise ValueError(f"a benchmark report is a JSON object with 'meta' and 'results'; got {type(report).__name__}.")
    results = report.get("results")
    if not isinstance(results, list):
        what = "has no 'results'" if results is None else f"has 'results' of type {type(results).__name__}"
        raise ValueError(f"the report {what}; expected a list with one entry per method/data set pair.")
    for i, entry in enumerate(results):
        if not isinstance(entry, dict):
            raise ValueError(f"results[{i}] is of type {type(entry).__name__}, not an object.")
        absent = [repr(key) for key in ("method", "dataset") if key not in entry]
        if absent:
            raise ValueError(f"results[{i}] has no {' or '.join(absent)}; every entry names its method and data set.")
        if entry.get("error"):
            continue  # a failed pair has no numbers, only its error
        pair = f"{entry['method']}/{entry['dataset']}"
        for key in ("mean", "std"):
            if not isinstance(entry.get(key), dict):
                raise ValueError(f"results[{i}] ({pair}) has neither {key!r} nor 'error'.")
            if metric not in entry[key]:
                raise ValueError(f"results[{i}] ({pair}) has no {metric!r} in its {key!r}.")
    return results


def _missing_pairs(report: dict) -> list[str] | None:
    """The pairs a partial report has not run, or None for a complete report (older ones carry no marker)."""
    if report.get("complete", True):
        return None
    return [str(p) for p in report.get("missing_pairs", [])]


def _cell(entry: dict | None, metric: str, missing: bool = False) -> str:
    if entry is None:
        return "not run" if missing else "—"
    if entry.get("error"):
        return "error"
    return f"{entry['mean'][metric]:.3f} ± {entry['std'][metric]:.3f}"


def render_table(report: dict, metric: str = "acc", fmt: str = "markdown") -> str:
    """Methods as rows, data sets as columns, cells ``mean ± std`` of ``metric``.

    A partial report (``"complete": false``) gets a line above the table that says so, and its
    pairs not yet run appear as ``not run``; ``—`` marks a pair the method does not apply to.
    ``ValueError`` names what a malformed report lacks.
    """
    if metric not in (*METRICS, "wall_time_s"):
        raise ValueError(f"metric={metric!r} is not one of {(*METRICS, 'wall_time_s')}.")
    if fmt not in ("markdown", "html"):
        raise ValueError(f"fmt={fmt!r} must be 'markdown' or 'html'.")
    results = _checked_results(report, metric)
    missing = _missing_pairs(report)
    pending = {tuple(p.split("/", 1)) for p in missing or [] if "/" in p}
    methods = list(dict.fromkeys([r["method"] for r in results] + [m for m, _ in sorted(pending)]))
    datasets = list(dict.fromkeys([r["dataset"] for r in results] + [d for _, d in sorted(pending)]))
    lookup = {(r["method"], r["dataset"]): r for r in results}
    rows = [[m] + [_cell(lookup.get((m, d)), metric, (m, d) in pending) for d in datasets] for m in methods]
    header = ["method"] + datasets
    banner = None if missing is None else (
        f"PARTIAL REPORT: the run stopped before {len(missing)} of {len(results) + len(missing)} pairs"
        + (f" ({', '.join(missing)})" if missing else "") + "; these numbers are incomplete.")
    if fmt == "markdown":
        lines = [] if banner is None else [f"**{banner}**", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    note = "" if banner is None else f"<p><strong>{banner}</strong></p>"
    return f"{note}<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_figure(report: dict, metric: str = "acc", path: str | os.PathLike | None = None) -> Any:
    """Grouped bar chart of ``metric`` (mean ± std) per data set and method; the bars of a method that
    sees one view per sample (``MIXED_MODAL_METHODS``) are hatched and labelled as such."""
    import matplotlib.pyplot as plt

    results = [r for r in _checked_results(report, metric) if not r.get("error")]
    methods = list(dict.fromkeys(r["method"] for r in results))
    datasets = list(dict.fromkeys(r["dataset"] for r in results))
    lookup = {(r["method"], r["dataset"]): r for r in results}
    fig, ax = plt.subplots(figsize=(1.6 * len(datasets) + 2, 3.5))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        xs, means, stds = [], [], []
        for j, name in enumerate(datasets):
            if (method, name) in lookup:
                xs.append(j + i * width)
                means.append(lookup[(method, name)]["mean"][metric])
                stds.append(lookup[(method, name)]["std"][metric])
        # DM2C solves another task (one view per sample, the mixed-modal split): hatched and labelled so.
        mixed = method in MIXED_MODAL_METHODS
        ax.bar(xs, means, width, yerr=stds, label=f"{method} (mixed-modal data)" if mixed else method, capsize=2,
               hatch="//" if mixed else None, edgecolor="white" if mixed else None)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(datasets))], datasets)
    ax.set_ylabel(metric.upper())
    missing = _missing_pairs(report)
    if missing is not None:
        ax.set_title(f"partial report: {len(missing)} pairs not run", color="tab:red")
    ax.set_xlabel("data set")
    ax.legend(ncols=min(len(methods), 6), fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
