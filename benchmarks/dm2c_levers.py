"""DM2C's levers, one at a time, on the two protocols of issue 32 (five seeds per row).

Data and protocol
- ``wikipedia``: the DM2C mixed split of ``benchmarks/dm2c.py`` (stratified 2/3 train, each pair keeps one
  modality, split seed 0, each modality z-scored on its training rows); scores on the 1,910 training samples.
- ``mnist_usps``: the fully unpaired protocol of SMILE and CPMN (:func:`mmc_teach.pairing.disjoint_views_split`,
  every pair keeps one view by a fair coin, split seed 0, each view z-scored); scores on all 5,000 kept views.

Every row changes ONE thing against the base settings (``BASE``: the defaults of ``DM2C`` with the space
unified into chosen per data set as in ``benchmarks/dm2c.py``). The training levers need a fit each:
``cycle-reconstruction-0.1`` / ``-1`` (``lambda_cyc_rec``), ``official-schedule`` (``n_critic=1,
n_generator=5``), ``gradient-penalty`` (``critic="wgan-gp"``), ``epochs-E`` (E joint epochs; 100 is the
base) and ``official-recipe`` (the official code's settings together: architecture, learning rate, schedule,
epochs, cycle reconstruction). The clustering levers reuse the base fit of the same seed (the networks are the same, only the
final k-means differs): ``unify-other`` (the other latent space), ``kmeans-standardised`` (unified codes
z-scored before k-means), ``kmeans-n_init-1`` / ``-100``. The input lever ``views-minus1-1`` fits the
defaults on views scaled as SMILE scales them (each view's range mapped to [-1, 1]) instead of z-scored. Each line of
``benchmarks/results/dm2c_levers.jsonl`` is one (data set, seed, lever): ACC, NMI, ARI over all scored
samples, per-modality ACC (own matching) and clusters used, seconds (fit + k-means), and for the fits the
per-epoch cycle loss and Wasserstein estimate (``history``).

Usage: ``python benchmarks/dm2c_levers.py --dataset mnist_usps [--seeds 0 1 2 3 4] [--levers ...]
[--threads 1]``. Seeds run outermost, so an interrupted study holds every lever for its first seeds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

from mmc_teach import DM2C, KMeans
from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate
from mmc_teach.pairing import disjoint_views_split, mixed_modal_split

OUT = Path(__file__).resolve().parent / "results" / "dm2c_levers.jsonl"
BASE = {"wikipedia": {"unify": "b"}, "mnist_usps": {"unify": "a"}}
FIT_LEVERS = {
    "base": {},
    "cycle-reconstruction-0.1": {"lambda_cyc_rec": 0.1},
    "cycle-reconstruction-1": {"lambda_cyc_rec": 1.0},
    "official-schedule": {"n_critic": 1, "n_generator": 5},
    "gradient-penalty": {"critic": "wgan-gp"},
    "epochs-0": {"epochs": 0},
    "epochs-25": {"epochs": 25},
    "epochs-50": {"epochs": 50},
    "epochs-200": {"epochs": 200},
    "epochs-400": {"epochs": 400},
    # The official code's recipe as a whole (jiangyangby/DM2C's README commands: 1024-256-128 autoencoders,
    # 150 + 220 epochs, generators every batch and critics every 5th, cycle reconstruction weight 1, critic
    # learning rate 5e-5; its pretraining and generators use 1e-4, DM2C's one ``lr``, where its joint
    # autoencoder updates use 5e-4).
    "official-recipe": {"hidden_dims": (1024, 256, 128), "lr": 1e-4, "critic_lr": 5e-5, "pretrain_epochs": 150,
                        "epochs": 220, "n_critic": 1, "n_generator": 5, "lambda_cyc_rec": 1.0},
}
KMEANS_LEVERS = ("unify-other", "kmeans-standardised", "kmeans-n_init-1", "kmeans-n_init-100")
# Input levers: the same defaults on differently prepared views. SMILE scales each view of its MNIST-USPS
# to [-1, 1] by the view's global minimum and maximum (docs/research/dm2c_fully_unpaired_protocol.md).
INPUT_LEVERS = ("views-minus1-1",)


def views_of(name: str, scaling: str = "z-score") -> tuple[list[np.ndarray], list[np.ndarray], int]:
    """The views to cluster (z-scored per feature, or ``"minus1-1"``: each view's global range mapped to
    [-1, 1]), their labels, and k."""
    if name == "wikipedia":
        split = mixed_modal_split(load("wikipedia", texts=False), test_size=1 / 3, random_state=0)
    else:
        split = disjoint_views_split(load(name), random_state=0)
    if scaling == "minus1-1":
        views = [(2 * (V - V.min()) / (V.max() - V.min()) - 1).astype(np.float32) for V in split.train_views]
    else:
        views = [StandardScaler().fit_transform(V).astype(np.float32) for V in split.train_views]
    return views, list(split.train_labels), split.n_clusters


def row(name: str, seed: int, lever: str, labels: np.ndarray, ys: list[np.ndarray], seconds: float, **extra) -> dict:
    y = np.concatenate(ys)
    scores = evaluate(y, labels)
    halves = np.split(labels, [len(ys[0])])
    return {"dataset": name, "seed": seed, "lever": lever, "n": int(len(y)),
            **{m: round(float(scores[m]), 4) for m in ("acc", "nmi", "ari")},
            "per_modality_acc": [round(float(evaluate(t, h)["acc"]), 4) for t, h in zip(ys, halves)],
            "clusters_used": [int(len(np.unique(h))) for h in halves],
            "seconds": round(seconds, 1), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(BASE), required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--levers", nargs="+", default=[*FIT_LEVERS, *KMEANS_LEVERS, *INPUT_LEVERS])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name = args.dataset
    views, ys, k = views_of(name)
    rescaled = views_of(name, "minus1-1") if "views-minus1-1" in args.levers else None
    for seed in args.seeds:
        if rescaled is not None:
            start = time.perf_counter()
            model = DM2C(k, random_state=seed, **BASE[name]).fit(rescaled[0])
            r = row(name, seed, "views-minus1-1", model.labels_, ys, time.perf_counter() - start, params={})
            with OUT.open("a") as fh:
                fh.write(json.dumps(r) + "\n")
            print(f"{name} seed {seed} views-minus1-1 acc {r['acc']:.3f} nmi {r['nmi']:.3f}", flush=True)
        for lever in (lv for lv in FIT_LEVERS if lv in args.levers or (lv == "base" and set(args.levers) & set(KMEANS_LEVERS))):
            start = time.perf_counter()
            model = DM2C(k, random_state=seed, **{**BASE[name], **FIT_LEVERS[lever]}).fit(views)
            seconds = time.perf_counter() - start
            history = {key: [round(h[key], 5) for h in model.history_] for key in ("cycle", "wasserstein")
                       if model.history_ and key in model.history_[0]}
            results = [row(name, seed, lever, model.labels_, ys, seconds, params=FIT_LEVERS[lever], history=history)]
            if lever == "base":
                codes = model.transform(views)
                # ``unify`` only chooses the space after training: the same networks, the other space.
                other = model.set_params(unify="b" if model.unify == "a" else "a").transform(views)
                for km_lever, X, n_init in (("unify-other", other, 20),
                                            ("kmeans-standardised", StandardScaler().fit_transform(codes), 20),
                                            ("kmeans-n_init-1", codes, 1), ("kmeans-n_init-100", codes, 100)):
                    if km_lever not in args.levers:
                        continue
                    start = time.perf_counter()
                    labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(X)
                    results.append(row(name, seed, km_lever, labels, ys, seconds + time.perf_counter() - start))
            with OUT.open("a") as fh:
                for r in results:
                    if r["lever"] in args.levers:
                        fh.write(json.dumps(r) + "\n")
                        print(f"{name} seed {seed} {r['lever']:26s} acc {r['acc']:.3f} nmi {r['nmi']:.3f} "
                              f"halves {r['per_modality_acc']} {r['seconds']:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
