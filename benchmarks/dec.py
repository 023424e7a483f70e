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

The papers' own data (``--datasets usps_9298 mnist_test``, results in
``results/dec_reproduction.jsonl``, the published rows beside them in ``results/dec_published.json``):
all 9,298 USPS digits at 16 x 16 and the 10,000 MNIST test
digits, the sets of the DEC/IDEC papers' tables. ``--recipe`` picks the settings:

- ``default``: :class:`mmc_teach.DEC`'s defaults, pixels in [0, 1];
- ``paper``: :attr:`mmc_teach.DEC.PAPER_RECIPE` (DEC-keras's settings) with DEC-keras's input
  scaling (USPS: pixels - 0.5; MNIST: pixels in [0, 1]); IDEC's clustering phase then uses
  :attr:`mmc_teach.IDEC.PAPER_RECIPE` (its reference code's SGD(0.1, 0.99));
- one lever changed from ``paper`` (``steps``, ``width-1000``, ``sgd-pretrain``, ``init-torch``,
  ``init-variance-scaling``, ``adam-clustering``, ``scale-unit``, ``scale-255``, ``scale-dec``,
  ``noise-0.2``): the table "what a DEC reproduction needs" of chapter 4; ``paper-mnist`` is
  DEC-keras's MNIST recipe (SGD(1, 0.9) pretraining for 300 passes, target every 140 steps);
  ``default-glorot`` is the library's defaults with Glorot's initialisation. ``steps`` pretrains
  one autoencoder for 40,000 gradient steps and scores AE + k-means and DEC at 2k (rounded to
  whole passes), 3k, 10k, 20k and 40k steps.

Wall times: ``pretrain`` is reported once; the times of DEC and IDEC are their clustering phases
(add the pretraining for a from-scratch ``DEC(k).fit``).

Usage::

    python benchmarks/dec.py [--seeds 0 1 2 3 4] [--datasets mnist_usps usps cub10] [--out FILE] [--threads 2]
    python benchmarks/dec.py --datasets usps_9298 --recipe paper --threads 1   # the papers' data
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
from mmc_teach._base import NonFiniteLossError, n_minibatches
from mmc_teach.nn import (
    MLPAutoencoder,
    as_tensor,
    encode_in_batches,
    initialize_weights,
    make_optimizer,
    pretrain_autoencoder,
)

METRICS = ("acc", "nmi", "ari")
METHODS = ("k-means (input)", "AE + k-means", "DEC", "IDEC")
# CUB-10 has only 600 samples (3 mini-batches per pass): more passes give the autoencoder a
# comparable number of updates.
OVERRIDES = {"mnist_usps": {}, "usps": {}, "cub10": {"pretrain_epochs": 300}, "usps_9298": {}, "mnist_test": {}}
# name -> (data set, view)
SOURCES = {
    "mnist_usps": ("mnist_usps", 0), "usps": ("mnist_usps", 1), "cub10": ("cub10", 0),
    "usps_9298": ("usps", 0), "mnist_test": ("mnist_test", 0),
}
PAPERS_DATA = ("usps_9298", "mnist_test")
REPRODUCTION_OUT = Path(__file__).resolve().parent / "results" / "dec_reproduction.jsonl"
# The papers' rows on the same data, with where each was read.
PUBLISHED = REPRODUCTION_OUT.with_name("dec_published.json")

# Input scalings of the pixels in [0, 1] that the loaders return.
SCALINGS = {
    "unit": lambda X: X,
    "centred": lambda X: X - 0.5,  # DEC-keras halves USPS pixels stored in [-1, 1]
    "255": lambda X: X * 255.0,  # what a user who forgets to scale passes
    "dec": lambda X: X * 255.0 * 0.02,  # DEC's original code multiplies 0..255 pixels by 0.02
}
# DEC-keras reads USPS in [-0.5, 0.5] and MNIST in [0, 1].
PAPER_SCALING = {"usps_9298": "centred", "mnist_test": "unit", "mnist_usps": "unit", "usps": "unit"}
# One lever changed from the paper recipe: (DEC parameters, input scaling or None for the paper's).
LEVERS = {
    "paper": ({}, None),
    "width-1000": ({"hidden_dims": (500, 500, 1000, 10)}, None),
    "sgd-pretrain": ({"pretrain_optimizer": "sgd", "pretrain_lr": 1.0}, None),
    "init-torch": ({"init": "torch"}, None),
    "init-variance-scaling": ({"init": "variance_scaling"}, None),
    "adam-clustering": ({"optimizer": "adam", "lr": 1e-3, "update_interval": None, "epochs": 50}, None),
    "noise-0.2": ({"noise": 0.2}, None),
    "scale-unit": ({}, "unit"),
    "scale-255": ({}, "255"),
    "scale-dec": ({}, "dec"),
    # DEC-keras's MNIST settings (run_exp.py): SGD(1, 0.9) pretraining from VarianceScaling for 300 passes,
    # the target every 140 mini-batches; not a lever but the reference's other recipe, for MNIST-test.
    "paper-mnist": ({"pretrain_optimizer": "sgd", "pretrain_lr": 1.0, "init": "variance_scaling",
                     "pretrain_epochs": 300, "update_interval": 140}, None),
}
# One change to the library's defaults, where a lever of the paper recipe mattered.
DEFAULT_LEVERS = {"default-glorot": {"init": "glorot"}}
STEP_CHECKPOINTS = (3000, 10000, 20000, 40000)
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dec.jsonl"


# The parameters of the clustering phase, passed to DEC/IDEC with the pretrained autoencoder.
CLUSTERING = ("epochs", "update_interval", "tol", "lr", "optimizer", "momentum", "batch_size", "alpha", "n_init")


def recipe(name: str, recipe_name: str) -> tuple[dict, str]:
    """DEC parameters and input scaling of a recipe (see the module docstring)."""
    if recipe_name == "default":
        return {**DEC().get_params(), **OVERRIDES[name]}, "unit"
    if recipe_name in DEFAULT_LEVERS:  # one change to the library's defaults
        return {**DEC().get_params(), **OVERRIDES[name], **DEFAULT_LEVERS[recipe_name]}, "unit"
    changes, scaling = LEVERS["paper" if recipe_name == "steps" else recipe_name]
    return {**DEC().get_params(), **DEC.PAPER_RECIPE, **changes}, scaling or PAPER_SCALING[name]


def run_seed(name: str, seed: int, out: Path, recipe_name: str = "default") -> None:
    dataset, view = SOURCES[name]
    data = load(dataset)
    params, scaling = recipe(name, recipe_name)
    X, y, k = SCALINGS[scaling](data.views[view]), data.labels, data.n_clusters
    device = torch.device("cpu")
    described = {"recipe": recipe_name, "scaling": scaling}

    def record(method: str, labels: np.ndarray, seconds: float, **extra) -> None:
        scores = {m: v for m, v in evaluate(y, labels).items() if m in METRICS}
        row = {"dataset": name, "seed": seed, "method": method, **described, **scores, "seconds": seconds, **extra}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{name:10s} seed {seed} {recipe_name:12s} {method:16s} " + "  ".join(f"{m} {scores[m]:.3f}" for m in METRICS)
              + f"  {seconds:7.1f} s", flush=True)

    if recipe_name == "default":  # k-means does not depend on the recipe (nor on a shift or scale of X)
        t = time.perf_counter()
        km = KMeans(k, n_init=20, random_state=seed, device="cpu").fit(X)
        record("k-means (input)", km.labels_, time.perf_counter() - t)

    Xt = as_tensor(X, device)
    per_pass = n_minibatches(len(X), params["batch_size"])
    checkpoints = [params["pretrain_epochs"]]  # in passes over the data
    if recipe_name == "steps":
        checkpoints += [-(-steps // per_pass) for steps in STEP_CHECKPOINTS]
    methods = (DEC, IDEC) if recipe_name in ("default", "paper") else (DEC,)
    with seeded(seed) as generator:
        ae = initialize_weights(MLPAutoencoder(X.shape[1], params["hidden_dims"]), params["init"])
        optimizer = make_optimizer(params["pretrain_optimizer"], ae.parameters(), params["pretrain_lr"], params["momentum"])
        done, pretrain_s = 0, 0.0
        for epochs in checkpoints:
            t = time.perf_counter()
            steps = {"pretrain_steps": epochs * per_pass}
            try:
                history = pretrain_autoencoder(
                    ae, Xt, epochs=epochs - done, batch_size=params["batch_size"], noise=params["noise"],
                    optimizer=optimizer, generator=generator,
                )
            except NonFiniteLossError as exc:  # a lever that diverges is a result too (SGD with lr 1)
                row = {"dataset": name, "seed": seed, "method": "AE + k-means", **described, **steps, "diverged": str(exc)}
                with out.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
                print(f"{name:10s} seed {seed} {recipe_name:12s} pretraining diverged: {exc}", flush=True)
                return
            pretrain_s += time.perf_counter() - t
            done = epochs
            z = encode_in_batches(ae, Xt)
            t = time.perf_counter()
            km = KMeans(k, n_init=20, random_state=seed, device="cpu").fit(z)
            record("AE + k-means", km.labels_, time.perf_counter() - t, pretrain_seconds=pretrain_s,
                   final_reconstruction=history[-1]["reconstruction"] if history else None, **steps)
            for cls in methods:
                t = time.perf_counter()
                own = {**params, **cls.PAPER_RECIPE} if recipe_name == "paper" else params  # IDEC's own SGD
                est = cls(k, autoencoder=ae, pretrain_epochs=0, random_state=seed, device="cpu",
                          **{p: own[p] for p in CLUSTERING}).fit(X, y)
                # y only fills the monitoring columns of history_ (never the loss); kept to show the curves.
                record(cls.__name__, est.labels_, time.perf_counter() - t, pretrain_seconds=pretrain_s,
                       epochs_run=est.n_iter_, converged=est.converged_,
                       acc_curve=[round(h["acc"], 4) for h in est.history_], **steps)


def summary(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    diverged = [r for r in rows if "diverged" in r]
    rows = [r for r in rows if "diverged" not in r]
    lines = ["| data | recipe | pretraining steps | method | seeds | ACC | NMI | ARI | wall s |", "|---|---|---|---|---|---|---|---|---|"]
    groups = dict.fromkeys((r["dataset"], r.get("recipe", "default"), r.get("pretrain_steps")) for r in rows)
    for name, recipe_name, steps in groups:
        for method in METHODS:
            sel = [r for r in rows if (r["dataset"], r.get("recipe", "default"), r.get("pretrain_steps")) == (name, recipe_name, steps)
                   and r["method"] == method]
            if not sel:
                continue
            cells = [f"{np.mean([r[m] for r in sel]):.3f} ± {np.std([r[m] for r in sel]):.3f}" for m in METRICS]
            secs = np.mean([r["seconds"] for r in sel])
            if method != "k-means (input)":
                pre = np.mean([r["pretrain_seconds"] for r in sel])
                wall = f"{secs:.0f} (+{pre:.0f} pretrain)"
            else:
                wall = f"{secs:.1f}"
            lines.append(f"| {name} | {recipe_name} | {steps or ''} | {method} | {len(sel)} | " + " | ".join(cells) + f" | {wall} |")
    lines += [f"{r['dataset']} {r.get('recipe')} seed {r['seed']}: pretraining diverged" for r in diverged]
    published = [p for p in json.loads(PUBLISHED.read_text())["rows"] if p["verified"] and p["dataset"] in {g[0] for g in groups}]
    if published:
        lines += ["", "Published on the same data (results/dec_published.json):"]
        lines += [f"- {p['dataset']} {p['method']}: ACC {p['acc']:.3f} ({p['source']})" for p in published]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["mnist_usps", "usps", "cub10"], choices=sorted(OVERRIDES))
    parser.add_argument("--recipe", default="default", choices=["default", "steps", *LEVERS, *DEFAULT_LEVERS],
                        help="default: DEC's defaults; paper: DEC.PAPER_RECIPE; the rest change one lever (module docstring)")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"default {DEFAULT_OUT.name}; {REPRODUCTION_OUT.name} for usps_9298, mnist_test or a --recipe")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--summary", type=Path, default=None, help="only print the table of this results file")
    args = parser.parse_args()
    if args.recipe != "default" and set(args.datasets) - set(PAPER_SCALING):
        parser.error(f"--recipe {args.recipe} applies to image data {sorted(PAPER_SCALING)} only")
    if args.summary is not None:
        print(summary(args.summary))
        return
    torch.set_num_threads(args.threads)
    # dec.jsonl holds the defaults on the chapter's data sets; every other run goes to the reproduction file
    args.out = args.out or (DEFAULT_OUT if args.recipe == "default" and not set(args.datasets) & set(PAPERS_DATA) else REPRODUCTION_OUT)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads", flush=True)
    for name in args.datasets:
        for seed in args.seeds:
            run_seed(name, seed, args.out, args.recipe)
    print(summary(args.out))


if __name__ == "__main__":
    main()
