"""From paired to unpaired: how clustering degrades as fewer samples have both views (the sweep of chapter 09_pairing).

Protocol:
- :func:`mmc_teach.pairing.pairing_split` with ``paired_fraction`` rho (test part 1/3, split seed =
  run seed): rho = 1 is paired data, rho = 0 DM2C's mixed-modal split. Scores are on the training
  part (clustering is transductive), over all its samples, whatever views they have;
- ``k-means (mean-imputed)``: every view standardised on its observed rows, a missing row replaced by
  the view's mean (0 after standardising), the views concatenated, :class:`mmc_teach.KMeans` (``n_init=20``);
- ``k-means per view (aligned)``: k-means on each standardised view alone (its observed rows); the
  second view's clusters renamed to the first's by the Hungarian matching of the two labellings on
  the samples that have both views; a sample takes its first view's cluster where it has that view.
  Without pairs nothing aligns the two labellings, and they are left as k-means numbered them;
- ``CMMC``: the estimator's defaults on the min-max scaled views (as ``benchmarks/cmmc.py``), missing
  rows all NaN, which CMMC reads as missing (see its docstring);
- ``DM2C``: ``DM2C(...).fit(views, paired=True)`` on the standardised views (as ``benchmarks/dm2c.py``,
  with its space to unify into per data set), the pairs also training the translation;
- ``JECL``: the main benchmark's ``cpu`` schedule (:func:`mmc_teach.bench.schedule_params`) on the
  standardised views, the first view as JECL's "image" and the second as its "text"; a sample
  without one of them is clustered by the other (missing rows all NaN, see JECL's docstring).

Usage: ``python benchmarks/pairing.py [--datasets mnist_usps bdgp wikipedia] [--fractions 1 0.75 0.5 0.25 0.1 0]
[--seeds 0 1 2 3 4] [--methods ...] [--out FILE]``; each finished run is appended to the JSON-lines file
(default ``benchmarks/results/pairing.jsonl``), and the table of mean +- std is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from cmmc import min_max  # benchmarks/cmmc.py: the CMMC protocol's scaling, NaN rows left out
from dm2c import DM2C_SETTINGS  # benchmarks/dm2c.py: the space DM2C unifies into, per data set
from mmc_teach import CMMC, DM2C, JECL
from mmc_teach.bench import schedule_params
from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate
from mmc_teach.pairing import aligned_per_view_kmeans, mean_imputed_kmeans, pairing_split
from mmc_teach.utils import standardise

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "pairing.jsonl"
METHODS = ("k-means (mean-imputed)", "k-means per view (aligned)", "CMMC", "DM2C", "JECL")


def run(name: str, rho: float, seed: int, out: Path, methods: tuple[str, ...] = METHODS) -> None:
    data = load(name)
    split = pairing_split(data, rho, random_state=seed)
    y, k = split.train_labels, split.n_clusters
    base = {"dataset": name, "paired_fraction": rho, "seed": seed,
            "n_train": len(y), "n_paired": int(split.train_present.all(axis=1).sum())}
    fits = {
        "k-means (mean-imputed)": lambda: mean_imputed_kmeans(split.train_views, k, random_state=seed, device="cpu"),
        "k-means per view (aligned)": lambda: aligned_per_view_kmeans(split.train_views, k, random_state=seed,
                                                                      device="cpu"),
        "CMMC": lambda: CMMC(k, random_state=seed, device="cpu").fit(
            [min_max(X) for X in split.train_views]).labels_,
        "DM2C": lambda: DM2C(k, random_state=seed, device="cpu", **DM2C_SETTINGS.get(name, {})).fit(
            [standardise(X) for X in split.train_views], paired=True).labels_,
        "JECL": lambda: JECL(k, random_state=seed, device="cpu", **schedule_params("cpu", "jecl", name)).fit(
            [standardise(X) for X in split.train_views]).labels_,
    }
    for method in methods:
        fit = fits[method]
        start = time.perf_counter()
        labels = fit()
        row = {**base, "method": method, **{m: v for m, v in evaluate(y, labels).items() if m in ("acc", "nmi", "ari")},
               "seconds": round(time.perf_counter() - start, 1), "load_average": round(os.getloadavg()[0], 2)}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{name:10s} rho {rho:4.2f} seed {seed}  {method:24s} ACC {row['acc']:.3f}  NMI {row['nmi']:.3f}"
              f"  ({row['seconds']:.0f} s)", flush=True)


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = ["| data | paired fraction | method | seeds | ACC | NMI |", "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for rho in sorted({r["paired_fraction"] for r in rows if r["dataset"] == name}, reverse=True):
            for method in METHODS:
                sel = [r for r in rows if (r["dataset"], r["paired_fraction"], r["method"]) == (name, rho, method)]
                if sel:
                    cells = " | ".join(f"{np.mean([r[m] for r in sel]):.3f} ± {np.std([r[m] for r in sel]):.3f}"
                                       for m in ("acc", "nmi"))
                    lines.append(f"| {name} | {rho:g} | {method} | {len(sel)} | {cells} |")
    return "\n".join(lines)


# The ends of the axis against the benchmarks of their own settings: rho = 1 against the paired main
# benchmark (results/bench.json: all samples, not the training two thirds), rho = 0 DM2C against its
# mixed-modal benchmark (benchmarks/results/dm2c.json: the same training part for split seed 0).
REFERENCES = {1.0: {"k-means (mean-imputed)": "kmeans", "CMMC": "cmmc", "JECL": "jecl"}, 0.0: {"DM2C": "dm2c"}}


def references(rows: list[dict]) -> str:
    root = Path(__file__).resolve().parents[1]
    bench = {(r["method"], r["dataset"]): r for r in json.loads((root / "results" / "bench.json").read_text())["results"]}
    dm2c = json.loads((root / "benchmarks" / "results" / "dm2c.json").read_text())["results"]
    lines = ["| data | paired fraction | method | ACC here | ACC in its own benchmark |", "|---|---|---|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for rho, methods in REFERENCES.items():
            for method, key in methods.items():
                acc = [r["acc"] for r in rows if (r["dataset"], r["paired_fraction"], r["method"]) == (name, rho, method)]
                if not acc:
                    continue
                if rho == 1.0 and (key, name) in bench:
                    entry = bench[(key, name)]
                    theirs = f"{entry['mean']['acc']:.3f} ± {entry['std']['acc']:.3f} (results/bench.json)"
                elif rho == 0.0 and name in dm2c:
                    mean, std = dm2c[name]["dm2c"]["summary"]["train"]["acc"]
                    theirs = f"{mean:.3f} ± {std:.3f} (benchmarks/results/dm2c.json)"
                else:
                    continue
                lines.append(f"| {name} | {rho:g} | {method} | {np.mean(acc):.3f} ± {np.std(acc):.3f} | {theirs} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist_usps", "bdgp", "wikipedia"])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.75, 0.5, 0.25, 0.1, 0.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--summary", action="store_true", help="only print the table of --out")
    args = parser.parse_args()
    if not args.summary:
        torch.set_num_threads(args.threads)
        print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        for name in args.datasets:
            for rho in args.fractions:
                for seed in args.seeds:
                    run(name, rho, seed, args.out, tuple(args.methods))
    print(summary(args.out))
    print("\nThe ends of the axis against the benchmarks of their own settings:")
    print(references([json.loads(line) for line in args.out.read_text().splitlines() if line.strip()]))


if __name__ == "__main__":
    main()
