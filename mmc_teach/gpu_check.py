"""One command for a GPU machine: ``python -m mmc_teach gpu-check``.

A GPU is at hand only now and then, for minutes, so the check is ready before one is. For every
estimator of the book it fits a short schedule on real data (the 5,000 pairs of ``mnist_usps``)
twice, on the CPU and on the GPU, with the same seed, and records:

- ``on_device``: after ``fit``, every parameter and buffer of the fitted networks (and every
  fitted tensor) lies on the GPU (``None`` for k-means, which keeps NumPy results);
- ``numpy_io``: ``predict`` (and ``transform``) accept NumPy input and return NumPy arrays;
- ``acc_cpu``, ``acc_gpu`` and ``acc_agree``: the two fits' ACC against the labels, which must
  agree within ``ACC_TOLERANCE`` (GPU kernels round differently, so the runs are not bitwise equal);
- ``host_syncs``: how often the GPU fit made the host wait for the device (CUDA's sync debug mode
  counts them; the training loops read their losses back once per epoch, not once per step);
- ``peak_gpu_mib`` and ``seconds_cpu`` / ``seconds_gpu``.

It also times k-means on 10^6 points on the GPU against scikit-learn's on the CPU. Everything goes
to ``results/gpu.json`` with the device name and the torch and CUDA versions, and a table is printed.
Without a GPU it says so and exits 0 (so CI can call it); ``--require`` makes that an error.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = ["ACC_TOLERANCE", "check_estimators", "render_gpu_table", "run_gpu_check"]

#: Largest ACC difference between the CPU and the GPU fit of one seed that counts as agreement.
ACC_TOLERANCE = 0.05


def _tensors_of(value: Any) -> list[torch.Tensor]:
    """Every tensor a fitted attribute holds: a module's parameters and buffers, tensors, and both
    inside lists, tuples and dicts (DM2C keeps one autoencoder per modality in a list)."""
    if isinstance(value, torch.nn.Module):
        return [*value.parameters(), *value.buffers()]
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors_of(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors_of(item)]
    return []


def fitted_tensors_on(model: Any, device: torch.device) -> bool | None:
    """Whether every tensor of ``model``'s fitted state lies on ``device``'s type (cuda, cpu, mps);
    ``None`` for a model that keeps no tensor (k-means keeps NumPy centres and labels)."""
    tensors = [t for value in vars(model).values() for t in _tensors_of(value)]
    return all(t.device.type == device.type for t in tensors) if tensors else None


def _specs(data: Any) -> list[tuple[str, Callable[[str], Any], Any, np.ndarray]]:
    """(name, estimator for a device, what ``fit`` and ``predict`` take, the true labels of what it
    labels) for each estimator."""
    from sklearn.preprocessing import minmax_scale

    from .cmmc import CMMC
    from .dec import DEC, IDEC
    from .dm2c import DM2C
    from .jecl import JECL
    from .kmeans import KMeans
    from .pairing import mixed_modal_split
    from .utils import standardise

    k = data.n_clusters
    views = [standardise(v) for v in data.views]
    concatenated = np.hstack(views)
    split = mixed_modal_split(data, random_state=0)  # DM2C labels the first modality's samples, then the second's
    mixed = [standardise(v) for v in split.train_views]
    short = {"pretrain_epochs": 5, "epochs": 5, "random_state": 0}
    return [
        ("KMeans", lambda d: KMeans(k, n_init=4, random_state=0, device=d), concatenated, data.labels),
        ("DEC", lambda d: DEC(k, **short, device=d), concatenated, data.labels),
        ("IDEC", lambda d: IDEC(k, **short, device=d), concatenated, data.labels),
        ("JECL", lambda d: JECL(k, **short, device=d), views, data.labels),
        ("DM2C", lambda d: DM2C(k, **short, device=d), mixed, np.concatenate(split.train_labels)),
        ("CMMC", lambda d: CMMC(k, pretrain_epochs=5, contrastive_epochs=5, finetune_epochs=2, random_state=0, device=d),
         [minmax_scale(v).astype(np.float32) for v in data.views], data.labels),
    ]


def _fit(make: Callable[[str], Any], X: Any, device: torch.device) -> tuple[Any, float, int]:
    """Fit once; return the model, the seconds and, on CUDA, the host syncs the fit made."""
    model = make(str(device))
    syncs = 0
    start = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                model.fit(X)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        syncs = sum("synchroniz" in str(w.message) for w in caught)
        torch.cuda.synchronize(device)
    else:
        model.fit(X)
    return model, time.perf_counter() - start, syncs


def check_estimators(data: Any, device: str | torch.device = "cuda", names: list[str] | None = None) -> list[dict]:
    """Fit each estimator (or those in ``names``) on the CPU and on ``device``; one record each."""
    from .metrics import clustering_accuracy

    device = torch.device(device)
    records = []
    for name, make, X, y in _specs(data):
        if names is not None and name not in names:
            continue
        cpu_model, cpu_seconds, _ = _fit(make, X, torch.device("cpu"))
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        model, seconds, syncs = _fit(make, X, device)
        predicted = model.predict(X)
        embedded = model.transform(X) if hasattr(model, "transform") else np.empty(0)
        acc_cpu = clustering_accuracy(y, cpu_model.labels_)
        acc_gpu = clustering_accuracy(y, model.labels_)
        records.append({
            "estimator": name,
            "on_device": fitted_tensors_on(model, device),
            "numpy_io": isinstance(predicted, np.ndarray) and isinstance(embedded, np.ndarray),
            "acc_cpu": round(float(acc_cpu), 4),
            "acc_gpu": round(float(acc_gpu), 4),
            "acc_agree": bool(abs(acc_cpu - acc_gpu) <= ACC_TOLERANCE),
            "host_syncs": syncs if device.type == "cuda" else None,
            "peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else None,
            "seconds_cpu": round(cpu_seconds, 2),
            "seconds_gpu": round(seconds, 2),
        })
    return records


def kmeans_at_a_million(device: str | torch.device = "cuda", n: int = 1_000_000, seed: int = 0) -> dict:
    """Our k-means on the device against scikit-learn's on the CPU: blobs, k = 100, 32 features, n_init 1."""
    from sklearn.cluster import KMeans as SklearnKMeans
    from sklearn.datasets import make_blobs

    from .kmeans import KMeans

    X, _ = make_blobs(n_samples=n, n_features=32, centers=100, random_state=seed)
    X = X.astype(np.float32)
    start = time.perf_counter()
    ours = KMeans(100, n_init=1, random_state=seed, device=str(device)).fit(X)
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    theirs = SklearnKMeans(100, n_init=1, random_state=seed).fit(X)
    sklearn_seconds = time.perf_counter() - start
    return {"n": n, "k": 100, "features": 32, "seconds_ours": round(ours_seconds, 2),
            "seconds_sklearn_cpu": round(sklearn_seconds, 2), "inertia_ratio": round(float(ours.inertia_ / theirs.inertia_), 4)}


def run_gpu_check(device: str = "cuda", data_home: str | None = None, million: bool = True) -> dict:
    """The whole check as one report (see the module docstring)."""
    from .datasets import load

    data = load("mnist_usps", data_home=data_home)
    report = {
        "device": torch.cuda.get_device_name(0) if torch.device(device).type == "cuda" else str(device),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
        "acc_tolerance": ACC_TOLERANCE,
        "estimators": check_estimators(data, device),
    }
    if million:
        report["kmeans_1e6"] = kmeans_at_a_million(device)
    return report


def render_gpu_table(report: dict) -> str:
    """A Markdown table of a report of :func:`run_gpu_check`."""
    def cell(value: Any) -> str:
        return "-" if value is None else ("yes" if value is True else "NO" if value is False else str(value))

    columns = ["estimator", "on_device", "numpy_io", "acc_cpu", "acc_gpu", "acc_agree", "host_syncs", "peak_gpu_mib",
               "seconds_cpu", "seconds_gpu"]
    lines = [f"GPU check on {report['device']} (torch {report['torch_version']}, CUDA {report['cuda_version']})", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in report["estimators"]]
    if "kmeans_1e6" in report:
        km = report["kmeans_1e6"]
        lines += ["", f"k-means, {km['n']:,} x {km['features']}, k = {km['k']}: ours {km['seconds_ours']} s on the device, "
                      f"scikit-learn {km['seconds_sklearn_cpu']} s on the CPU, inertia ratio {km['inertia_ratio']}"]
    return "\n".join(lines)


def main(out: str = "results/gpu.json", require: bool = False, data_home: str | None = None) -> int:
    """The command: 0 when the check ran (or no GPU and not ``require``), 1 otherwise."""
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU on this machine; nothing was checked (GPU support is tested on the CPU only).")
        return 1 if require else 0
    from .bench import write_json

    report = run_gpu_check("cuda", data_home=data_home)
    write_json(report, out)  # atomically: a check killed half-way leaves no half-written file
    print(render_gpu_table(report))
    print(f"wrote {out}")
    failed = [r["estimator"] for r in report["estimators"]
              if r["on_device"] is False or not (r["numpy_io"] and r["acc_agree"])]
    if failed:
        print(f"gpu-check: failed for {', '.join(failed)}")
    return 1 if failed else 0
