"""Benchmark of chapter "DEC and IDEC": DEC and IDEC against k-means on the input and on the AE embedding.

Data: MNIST (the 5000 digits of ``mnist_usps`` view 0, pixels in [0, 1]), USPS (the 5000 digits of
``mnist_usps`` view 1, resampled to 28 x 28) and the CUB-10 image view (600 x 1024 GoogLeNet
features), all used as they are (no standardisation).

Per data set and seed (0..4 by default):

- ``k-means (input)``: :class:`mmc_teach.KMeans` (``n_init=20``) on the raw input;
- the autoencoder is pretrained ONCE with DEC's defaults (:func:`mmc_teach.nn.pretrain_autoencoder`,
  ``pretrain_epochs``, ``pretrain_lr``, ``noise``, ``batch_size`` of :class:`mmc_teach.DEC`, or the
  per-data-set overrides below) and shared by the next three rows, so they differ only in what
  happens after pretraining;
- ``AE + k-means``: k-means (``n_init=20``) on the embedding;
- ``DEC`` and ``IDEC``: ``DEC(k, autoencoder=ae, pretrain_epochs=0, random_state=seed)``, i.e. the
  library defaults for the clustering phase.

Wall times: ``pretrain`` is reported once; the times of DEC and IDEC are their clustering phases
(add the pretraining for a from-scratch ``DEC(k).fit``).

Usage::

    python benchmarks/dec.py [--seeds 0 1 2 3 4] [--datasets mnist_usps usps cub10] [--out FILE] [--threads 2]
    python benchmarks/dec.py --summary FILE     # print the table of a (partial) results file

Every finished run is appended to ``--out`` as one JSON line, so a long run can be summarised
while it is still going and several processes (e.g. one per seed) may share one file.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mmc_teach import DEC, IDEC, KMeans
from mmc_teach._base import seeded
from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate
from mmc_teach.nn import MLPAutoencoder, as_tensor, encode_in_batches, pretrain_autoencoder

METRICS = ("acc", "nmi", "ari")
METHODS = ("k-means (input)", "AE + k-means", "DEC", "IDEC")
# CUB-10 has only 600 samples (3 mini-batches per pass): more passes give the autoencoder a
# comparable number of updates.
OVERRIDES = {"mnist_usps": {}, "usps": {}, "cub10": {"pretrain_epochs": 300}}
# name -> (data set, view)
SOURCES = {"mnist_usps": ("mnist_usps", 0), "usps": ("mnist_usps", 1), "cub10": ("cub10", 0)}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dec.jsonl"


def run_seed(name: str, seed: int, out: Path) -> None:
    dataset, view = SOURCES[name]
    data = load(dataset)
    X, y, k = data.views[view], data.labels, data.n_clusters
    params = {**DEC().get_params(), **OVERRIDES[name]}
    device = torch.device("cpu")

    def record(method: str, labels: np.ndarray, seconds: float, **extra) -> None:
        scores = {m: v for m, v in evaluate(y, labels).items() if m in METRICS}
        row = {"dataset": name, "seed": seed, "method": method, **scores, "seconds": seconds, **extra}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{name:10s} seed {seed}  {method:16s} " + "  ".join(f"{m} {scores[m]:.3f}" for m in METRICS) + f"  {seconds:7.1f} s", flush=True)

    t = time.perf_counter()
    km = KMeans(k, n_init=20, random_state=seed, device="cpu").fit(X)
    record("k-means (input)", km.labels_, time.perf_counter() - t)

    t = time.perf_counter()
    Xt = as_tensor(X, device)
    with seeded(seed) as generator:
        ae = MLPAutoencoder(X.shape[1], params["hidden_dims"])
        history = pretrain_autoencoder(
            ae, Xt, epochs=params["pretrain_epochs"], batch_size=params["batch_size"],
            lr=params["pretrain_lr"], noise=params["noise"], generator=generator,
        )
    pretrain_s = time.perf_counter() - t
    z = encode_in_batches(ae, Xt)
    t = time.perf_counter()
    km = KMeans(k, n_init=20, random_state=seed, device="cpu").fit(z)
    record("AE + k-means", km.labels_, time.perf_counter() - t, pretrain_seconds=pretrain_s,
           final_reconstruction=history[-1]["reconstruction"])

    for cls in (DEC, IDEC):
        t = time.perf_counter()
        est = cls(k, autoencoder=ae, pretrain_epochs=0, random_state=seed, device="cpu",
                  **{p: v for p, v in OVERRIDES[name].items() if p != "pretrain_epochs"}).fit(X, y)
        # y only fills the monitoring columns of history_ (never the loss); kept to show the curves.
        record(cls.__name__, est.labels_, time.perf_counter() - t, pretrain_seconds=pretrain_s,
               epochs_run=est.n_iter_, converged=est.converged_,
               acc_curve=[round(h["acc"], 4) for h in est.history_])


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = ["| data | method | seeds | ACC | NMI | ARI | wall s |", "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for method in METHODS:
            sel = [r for r in rows if r["dataset"] == name and r["method"] == method]
            if not sel:
                continue
            cells = [f"{np.mean([r[m] for r in sel]):.3f} ± {np.std([r[m] for r in sel]):.3f}" for m in METRICS]
            secs = np.mean([r["seconds"] for r in sel])
            if method != "k-means (input)":
                pre = np.mean([r["pretrain_seconds"] for r in sel])
                wall = f"{secs:.0f} (+{pre:.0f} pretrain)"
            else:
                wall = f"{secs:.1f}"
            lines.append(f"| {name} | {method} | {len(sel)} | " + " | ".join(cells) + f" | {wall} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["mnist_usps", "usps", "cub10"], choices=sorted(OVERRIDES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--summary", type=Path, default=None, help="only print the table of this results file")
    args = parser.parse_args()
    if args.summary is not None:
        print(summary(args.summary))
        return
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads", flush=True)
    for name in args.datasets:
        for seed in args.seeds:
            run_seed(name, seed, args.out)
    print(summary(args.out))


if __name__ == "__main__":
    main()
