"""Benchmark of chapter "Contrastive multi-modal clustering (CMMC)".

Protocol (MFLVC's, Xu et al. 2022, the published successor of CMMC, on the same files):
- every view is min-max scaled to [0, 1] per feature, as MFLVC's code does for Caltech. MNIST-USPS
  is in [0, 1] already; BDGP's image view is not: 1,725 of its 1,750 columns have a maximum below
  0.5, so the scaling changes it (MFLVC feeds BDGP unscaled);
- :class:`mmc_teach.CMMC` is fitted on the paired views; ``labels_`` are scored with
  :func:`mmc_teach.metrics.evaluate`; the wall time covers ``fit``;
- seeds 0..4 change the networks, the batch order and k-means.

Schedules (``--schedule``, several may be given; each is one row per data set):
- ``default``: the estimator's defaults, i.e. what ``CMMC(k).fit(views)`` does;
- ``cpu``: the benchmark runner's earlier CPU schedule, x-256-256-128 with epochs chosen per data set
  (MNIST-USPS 10/30/20, BDGP 10/20/20, Caltech-2V 20/100/50);
- ``uniform``: x-256-256-128 and 10/30/20 epochs on every data set;
- ``steps``: x-256-256-128, epochs from a number of gradient steps (pretraining >= 200 batches,
  contrastive training >= 600 batches, at least 10 and 30 epochs), 20 fine-tuning epochs
  (``steps_ft50``: 50 -- the estimator's defaults since this study,
  ``benchmarks/results/cmmc_schedules.json``);
- ``full``: MFLVC's network x-500-500-2000-512 and schedule (200 reconstruction epochs,
  50 contrastive -- 10 on BDGP --, 50 fine-tuning; k-means with 100 restarts). Meant for a GPU;
- ``long_pretrain``: the defaults with pretraining of at least 1000 mini-batches (MFLVC's 200 epochs of
  Caltech-2V's 5 batches); ``paper_net``: the defaults with MFLVC's x-500-500-2000-512 network
  (results of both, beside ``default`` and ``full``: ``benchmarks/results/cmmc_pretraining.json``).

Studies (``--study``):
- ``main``: CMMC as it is;
- ``ablation``: also the three ablated models (no feature module, no label module, no fine-tuning;
  the last is read off the full model's fit, see :func:`run`);
- ``views``: ``mfeat`` only -- CMMC on all six views and on two three-view subsets (min-max scaled views,
  and standardised ones), against k-means on the standardised concatenation of the same views and on
  each view alone (``--append`` runs only the rows the results file lacks);
- ``temperature``: the feature-contrastive temperature ``tau_feature`` at 0.1, 0.5 (the default) and 2.0,
  with the last contrastive epoch's feature loss (the chapter's exercise on temperature);
- ``deviations`` (compare with the ``CMMC`` row of the ablation): MFLVC's code where it differs from
  ``mmc_teach.CMMC``: cross-entropy applied to the
  already-softmaxed outputs in fine-tuning, one Adam optimiser for both phases against one per phase,
  and dropping the last partial batch (see :class:`MFLVCVariant`).

Usage: ``python benchmarks/cmmc.py [--schedule default ...] [--study main|ablation|deviations]
[--seeds 5] [--datasets mnist_usps bdgp caltech2v] [--out FILE]``. Prints mean +- std tables and
writes a JSON file (default ``benchmarks/results/cmmc_<study>.json``), rewritten after every row.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mmc_teach import CMMC
from mmc_teach.cmmc import PAPER_SCHEDULE
from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate

# MFLVC's reported ACC (Xu et al. 2022), as collected in the project's reference notes.
PUBLISHED_ACC = {"mnist_usps": 0.995, "bdgp": 0.989, "caltech2v": 0.606}

CPU_NET = {"hidden_dims": (256, 256, 128), "high_dim": 128, "n_init": 10}
_CPU_EPOCHS = {"mnist_usps": (10, 30, 20), "bdgp": (10, 20, 20), "caltech2v": (20, 100, 50)}


def _epochs(pretrain: int, contrastive: int, finetune: int) -> dict:
    return {"pretrain_epochs": pretrain, "contrastive_epochs": contrastive, "finetune_epochs": finetune}


def _steps_schedule(n: int, batch_size: int = 256) -> dict:
    """Epochs that give every data set about the same number of gradient steps."""
    per_epoch = math.ceil(n / batch_size)
    return {**CPU_NET, **_epochs(max(10, math.ceil(200 / per_epoch)), max(30, math.ceil(600 / per_epoch)), 20)}


# schedule name -> (data set name, number of samples) -> hyperparameters
SCHEDULES: dict[str, Callable[[str, int], dict]] = {
    "default": lambda name, n: {},
    "cpu": lambda name, n: {**CPU_NET, **_epochs(*_CPU_EPOCHS.get(name, (10, 30, 20)))},
    "uniform": lambda name, n: {**CPU_NET, **_epochs(10, 30, 20)},
    "steps": lambda name, n: _steps_schedule(n),
    "steps_ft50": lambda name, n: {**_steps_schedule(n), "finetune_epochs": 50},
    "full": lambda name, n: {**PAPER_SCHEDULE, **({"contrastive_epochs": 10} if name == "bdgp" else {})},
    # What closes the gap to the full schedule: its longer pretraining, or its wider network?
    "long_pretrain": lambda name, n: {"pretrain_epochs": max(10, math.ceil(1000 / math.ceil(n / 256)))},
    "paper_net": lambda name, n: {"hidden_dims": PAPER_SCHEDULE["hidden_dims"]},
}


class MFLVCVariant(CMMC):
    """CMMC with one of MFLVC's implementation choices, for the ``deviations`` study only.

    ``softmax_ce``: fine-tuning applies ``cross_entropy`` to ``softmax(logits)``, i.e. softmax twice
    (MFLVC's ``CrossEntropyLoss()(qs[v], p_hat)``); ``fresh_adam``: fine-tuning gets a new Adam
    instead of continuing the contrastive phase's; ``drop_last``: the contrastive phase skips the last
    partial batch (MFLVC's ``DataLoader(drop_last=True)``).
    """

    def __init__(self, n_clusters: int, *, deviation: str = "", **params) -> None:
        super().__init__(n_clusters, **params)
        self.deviation = deviation

    def _finetune_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.deviation == "softmax_ce":
            return F.cross_entropy(torch.softmax(logits, dim=1), targets, reduction="sum")
        return super()._finetune_loss(logits, targets)

    def _phase_optimizer(self, net: torch.nn.Module, optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
        if self.deviation == "fresh_adam":
            return torch.optim.Adam(net.parameters(), lr=self.lr)
        return optimizer

    def _contrastive_batches(self, n: int, generator: torch.Generator):
        batches = super()._contrastive_batches(n, generator)
        if self.deviation == "drop_last" and n % self.batch_size:
            return [idx for idx in batches if len(idx) == self.batch_size]
        return batches


STUDIES = {
    "main": {"CMMC": {}},
    # "w/o fine-tuning" is read off the full model's fit (see run), so it has no switches here.
    "ablation": {"CMMC": {}, "w/o feature module": {"feature_contrast": False},
                 "w/o label module": {"label_contrast": False}},
    # ex-cmmc-4 of the chapter: the feature temperature (the default is 0.5).
    "temperature": {"tau_feature 0.1": {"tau_feature": 0.1}, "tau_feature 0.5": {},
                    "tau_feature 2.0": {"tau_feature": 2.0}},
    "deviations": {"CE on softmax (MFLVC)": {"deviation": "softmax_ce"},
                   "new Adam for fine-tuning": {"deviation": "fresh_adam"},
                   "drop last batch (MFLVC)": {"deviation": "drop_last"}},
}


def min_max(X: np.ndarray) -> np.ndarray:
    """Scale every feature to [0, 1]; constant features become 0. Missing (all-NaN) rows stay NaN
    and do not count (``benchmarks/pairing.py``); without NaN this is the plain min-max scaling."""
    low, span = np.nanmin(X, axis=0), np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
    return ((X - low) / np.where(span > 0, span, 1.0)).astype(np.float32)


def run(views: list[np.ndarray], labels: np.ndarray, n_clusters: int, params: dict, seed: int,
        device: str | None) -> dict[str, dict]:
    """One fit; returns the row of the variant and, for the full model, also the "w/o fine-tuning" row.

    A model without fine-tuning is the full model stopped after the contrastive phase (the same seed
    draws the same networks, batches and k-means up to there), so its labels are the full model's
    ``labels_before_finetune_`` and need no fit of their own (``tests/test_cmmc.py`` checks the equality).
    """
    estimator = MFLVCVariant if "deviation" in params else CMMC
    start = time.perf_counter()
    model = estimator(n_clusters, random_state=seed, device=device, **params).fit(views)
    rows = {"fit": {**evaluate(labels, model.labels_), "seconds": time.perf_counter() - start}}
    contrastive = [rec for rec in model.history_ if rec["phase"] == "contrastive"]
    if contrastive and "feature_contrastive" in contrastive[-1]:
        # The last epoch's feature loss (Eq. cmmc-feature); its scale depends on tau_feature.
        rows["fit"]["final_feature_contrastive"] = float(contrastive[-1]["feature_contrastive"])
    if model.finetune:
        rows["before fine-tuning"] = evaluate(labels, model.labels_before_finetune_)
    return rows


def summarise(rows: list[dict]) -> dict:
    return {key: (float(np.mean([r[key] for r in rows])), float(np.std([r[key] for r in rows])))
            for key in ("acc", "nmi", "ari", "seconds", "final_feature_contrastive") if key in rows[0]}


# The "views" study (mfeat only): CMMC on several views at once against k-means on the standardised
# concatenation of the same views and on each of them alone.
VIEW_SUBSETS = {"all six": ("fou", "fac", "kar", "pix", "zer", "mor"),
                "fou, kar, zer": ("fou", "kar", "zer"), "fac, pix, mor": ("fac", "pix", "mor")}


def views_study(seeds: int, device: str | None, done: dict | None = None) -> dict:
    """CMMC and k-means baselines on view subsets of ``mfeat``; one row per (subset, method).

    CMMC gets min-max scaled views (the protocol of the other data sets) and, as a second row,
    standardised ones (the baselines' preprocessing). Rows already in ``done`` are kept, not rerun.
    """
    from mmc_teach import KMeans
    from mmc_teach.utils import standardise

    data = load("mfeat")
    runs: dict = {subset: dict(rows) for subset, rows in (done or {}).items()}
    for subset, names in VIEW_SUBSETS.items():
        picked = [data.views[data.view_names.index(v)] for v in names]

        def kmeans(seed: int, X: np.ndarray) -> dict:
            return evaluate(data.labels, KMeans(data.n_clusters, n_init=10, random_state=seed).fit_predict(X))

        methods = {"CMMC": lambda seed: run([min_max(X) for X in picked], data.labels, data.n_clusters, {}, seed,
                                            device)["fit"],
                   "CMMC, standardised views": lambda seed: run([standardise(X) for X in picked], data.labels,
                                                                data.n_clusters, {}, seed, device)["fit"],
                   "k-means, concatenation": lambda seed: kmeans(seed, np.hstack([standardise(X) for X in picked]))}
        for name, X in zip(names, picked):
            methods[f"k-means, {name} alone"] = lambda seed, X=X: kmeans(seed, standardise(X))
        for method, fit in methods.items():
            if method in runs.get(subset, {}):
                continue
            per_seed = [{"seed": seed, **fit(seed)} for seed in range(seeds)]
            runs.setdefault(subset, {})[method] = {"per_seed": per_seed, "summary": summarise(per_seed)}
            s = runs[subset][method]["summary"]
            print(f"mfeat {subset:14s} {method:24s} ACC {s['acc'][0]:.3f}+-{s['acc'][1]:.3f} "
                  f"NMI {s['nmi'][0]:.3f}+-{s['nmi'][1]:.3f}", flush=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedule", nargs="+", choices=sorted(SCHEDULES), default=["default"])
    parser.add_argument("--study", choices=sorted([*STUDIES, "views"]), default="main")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["mnist_usps", "bdgp", "caltech2v"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--append", action="store_true", help="add the rows to those already in --out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out or Path(__file__).parent / "results" / f"cmmc_{args.study}.json")
    results: dict = {"study": args.study, "schedules": args.schedule, "seeds": list(range(args.seeds)),
                     "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "threads": args.threads,
                     "torch": torch.__version__, "settings": {}, "runs": {}}
    if args.study == "views":
        done = json.loads(out.read_text())["runs"]["mfeat"] if args.append and out.exists() else None
        results["runs"] = {"mfeat": views_study(args.seeds, args.device, done)}
        results["settings"] = {"mfeat": {"view subsets": VIEW_SUBSETS}}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"results written to {out}")
        return
    if args.append and out.exists():
        previous = json.loads(out.read_text())
        results["schedules"] = list(dict.fromkeys(previous["schedules"] + args.schedule))
        results["seeds"] = previous["seeds"] if previous["seeds"] == results["seeds"] else "per data set, see per_seed"
        results["settings"], results["runs"] = previous["settings"], previous["runs"]
    for name in args.datasets:
        data = load(name)
        views = [min_max(X) for X in data.views]
        for schedule in args.schedule:
            params = SCHEDULES[schedule](name, len(data.labels))
            results["settings"].setdefault(name, {})[schedule] = params
            for variant, switches in STUDIES[args.study].items():
                label = variant if len(results["schedules"]) == 1 else f"{schedule}: {variant}"
                rows: dict[str, list[dict]] = {}
                for seed in range(args.seeds):
                    fitted = run(views, data.labels, data.n_clusters, {**params, **switches}, seed, args.device)
                    row = fitted["fit"]
                    rows.setdefault(label, []).append({"seed": seed, **row, "load_average": round(os.getloadavg()[0], 2)})
                    if variant == "CMMC" and args.study == "ablation":
                        rows.setdefault("w/o fine-tuning", []).append({"seed": seed, **fitted["before fine-tuning"]})
                    print(f"{name:10s} {label:32s} seed {seed}: ACC {row['acc']:.3f} NMI {row['nmi']:.3f} "
                          f"ARI {row['ari']:.3f} ({row['seconds']:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)
                for key, per_seed in rows.items():
                    results["runs"].setdefault(name, {})[key] = {"per_seed": per_seed, "summary": summarise(per_seed)}
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))

    print(f"\nCMMC, study '{args.study}', {args.seeds} seeds, mean +- std (MFLVC's reported ACC)")
    print(f"{'data set':10s} {'variant':32s} {'ACC':>13s} {'NMI':>13s} {'ARI':>13s} {'time/run':>10s}  reported")
    for name, per_variant in results["runs"].items():
        for variant, entry in per_variant.items():
            s = entry["summary"]
            cells = " ".join(f"{s[k][0]:.3f}+-{s[k][1]:.3f}" for k in ("acc", "nmi", "ari"))
            seconds = f"{s['seconds'][0]:9.0f}s" if "seconds" in s else f"{'-':>10s}"
            print(f"{name:10s} {variant:32s} {cells} {seconds}  {PUBLISHED_ACC.get(name, float('nan')):.3f}")
    print(f"results written to {out}")


if __name__ == "__main__":
    main()
