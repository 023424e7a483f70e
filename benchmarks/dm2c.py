"""Benchmark of chapter "Mixed-modal clustering and DM2C": DM2C against k-means and IDEC baselines.

Protocol (DM2C, Jiang et al. 2019, with a fixed split seed):
- ``mixed_modal_split(dataset, test_size=1/3, random_state=0)``: stratified 2/3 train, 1/3 test,
  then each pair keeps ONE modality (probability 1/2 each);
- each modality is standardised with its own training statistics;
- every method is fitted on the training samples of both modalities and produces ONE labelling of
  all of them; metrics (ACC, ARI, NMI, F, purity) are computed on all training samples together
  ("train") and on the held-out samples labelled by ``predict`` ("test");
- seeds 0..4 change the networks and k-means, never the split;
- each run also records, per modality, the ACC of its training samples alone (their own matching)
  and the number of clusters they occupy.

Baselines (all see the same mixed samples):
- ``kmeans-separate``: k-means on each modality alone; nothing links cluster j of one modality to
  cluster j of the other, which is the point of the mixed-modal setting;
- ``kmeans-common``: each modality projected by PCA to the same width (the smaller one, at most 50),
  samples pooled, one k-means (the paper's baselines also pooled PCA-reduced features);
- ``kmeans-pooled`` (only where both modalities have the same features, MNIST-USPS: 784 pixels):
  k-means on the pooled standardised features themselves, no projection;
- ``idec-common``: IDEC on the same pooled matrix.

DM2C variants (``--ablation-seeds``, 3 by default) change one thing each against the default row:
the space unified into, the gradient-penalty critic, no cycle term, no critics, the official code's
cycle reconstruction term (``lambda_cyc_rec=1``) and the official code's schedule (generators every
batch, critics every 5th: ``n_critic=1, n_generator=5``).

Usage: ``python benchmarks/dm2c.py [--seeds 5] [--datasets wikipedia mnist_usps] [--methods ...]
[--merge] [--out FILE]``. Writes a JSON file (default ``benchmarks/results/dm2c.json``) and prints
mean +- std tables. ``--merge`` keeps the entries of the file that this run does not recompute.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.preprocessing import StandardScaler

from mmc_teach import DM2C, IDEC, KMeans
from mmc_teach.bench import write_json
from mmc_teach.datasets import load
from mmc_teach.pairing import mixed_modal_split
from mmc_teach.metrics import evaluate

METRICS = ("acc", "ari", "nmi", "f", "purity")
# The paper's Table 2 (Wikipedia; VGG-19 image and bag-of-words text features, PCA to 2048).
PAPER_WIKIPEDIA = {
    "k-means": (0.2291, 0.0166, 0.1003, 0.1857, 0.2301),
    "IDEC": (0.2153, 0.0375, 0.0849, 0.1654, 0.2606),
    "DM2C (paper)": (0.2720, 0.0558, 0.1543, 0.1878, 0.3075),
}
# Per data set: which space DM2C unifies into (see the chapter) and its settings.
DM2C_SETTINGS = {
    "wikipedia": {"unify": "b"},
    "mnist_usps": {"unify": "a"},
}
# One change each against DM2C_SETTINGS.
VARIANTS = {
    "dm2c-gp": {"critic": "wgan-gp"},
    "dm2c-no-cycle": {"cycle": False},
    "dm2c-no-critic": {"adversarial": False},
    "dm2c-cycle-reconstruction": {"lambda_cyc_rec": 1.0},
    "dm2c-official-schedule": {"n_critic": 1, "n_generator": 5},
}
ABLATIONS = {
    name: {**({"dm2c-unify-other": {"unify": "a" if base["unify"] == "b" else "b"}}),
           **{variant: {**base, **change} for variant, change in VARIANTS.items()}}
    for name, base in DM2C_SETTINGS.items()
}


def prepare(name: str):
    ds = load(name, texts=False) if name == "wikipedia" else load(name)
    split = mixed_modal_split(ds, test_size=1 / 3, random_state=0)
    scalers = [StandardScaler().fit(V) for V in split.train_views]
    train = [s.transform(V).astype(np.float32) for s, V in zip(scalers, split.train_views)]
    test = [s.transform(V).astype(np.float32) for s, V in zip(scalers, split.test_views)]
    return ds, split, train, test


def common_space(train, test):
    """PCA of each modality to the same width, so that the samples can be pooled naively."""
    width = min(50, *(V.shape[1] for V in train))
    pcas = [PCA(width, random_state=0).fit(V) for V in train]
    return ([p.transform(V) for p, V in zip(pcas, train)], [p.transform(V) for p, V in zip(pcas, test)])


def run_method(method: str, params: dict, ds, train, test, seed: int):
    """Return (train labels per modality, test labels per modality)."""
    k = ds.n_clusters
    if method == "kmeans-separate":
        models = [KMeans(k, n_init=20, random_state=seed).fit(V) for V in train]
        return [m.labels_ for m in models], [m.predict(V) for m, V in zip(models, test)]
    if method == "kmeans-pooled":
        model = KMeans(k, n_init=20, random_state=seed).fit(np.vstack(train))
        cut = len(train[0])
        return [model.labels_[:cut], model.labels_[cut:]], [model.predict(V) for V in test]
    if method in ("kmeans-common", "idec-common"):
        tr, te = common_space(train, test)
        pooled = np.vstack(tr).astype(np.float32)
        if method == "kmeans-common":
            model = KMeans(k, n_init=20, random_state=seed).fit(pooled)
        else:
            model = IDEC(k, hidden_dims=(500, 500, 2000, 10), random_state=seed).fit(pooled)
        labels = model.labels_
        cut = len(tr[0])
        return [labels[:cut], labels[cut:]], [model.predict(V.astype(np.float32)) for V in te]
    model = DM2C(k, random_state=seed, **params).fit(train)
    # DM2C's labels run over the first modality's samples, then the second's.
    return np.split(model.labels_, [len(train[0])]), np.split(model.predict(test), [len(test[0])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--ablation-seeds", type=int, default=3, help="seeds for the DM2C variants")
    parser.add_argument("--datasets", nargs="+", default=["wikipedia", "mnist_usps"])
    parser.add_argument("--methods", nargs="*", default=None, help="subset of methods to run")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "dm2c.json"))
    parser.add_argument("--note", default="", help="measurement conditions, stored in the file")
    parser.add_argument("--merge", action="store_true", help="keep the entries of --out that this run does not recompute")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    report = {"protocol": __doc__, "machine": platform.platform(), "torch": torch.__version__,
              "note": args.note, "paper_wikipedia": PAPER_WIKIPEDIA, "results": {}}
    if args.merge and out.exists():
        previous = json.loads(out.read_text())
        report["results"] = previous["results"]
        report["merged_from"] = previous.get("merged_from", []) + [previous.get("note", previous.get("machine", ""))]
    for name in args.datasets:
        ds, split, train, test = prepare(name)
        y_train, y_test = np.concatenate(split.train_labels), np.concatenate(split.test_labels)
        # IDEC last: it is the slowest baseline and the JSON is rewritten after every method.
        same_features = len({V.shape[1] for V in train}) == 1
        methods = {"kmeans-separate": {}, "kmeans-common": {}, **({"kmeans-pooled": {}} if same_features else {}),
                   "dm2c": DM2C_SETTINGS[name], **ABLATIONS[name], "idec-common": {}}
        if args.methods:
            methods = {m: p for m, p in methods.items() if m in args.methods}
        report["results"].setdefault(name, {})
        for method, params in methods.items():
            runs = []
            n_seeds = args.ablation_seeds if method in ABLATIONS[name] else args.seeds
            for seed in range(n_seeds):
                start = time.perf_counter()
                lab_train, lab_test = run_method(method, params, ds, train, test, seed)
                wall = time.perf_counter() - start
                runs.append({
                    "seed": seed, "wall_time_s": round(wall, 1),
                    "train": {m: round(v, 4) for m, v in evaluate(y_train, np.concatenate(lab_train)).items()},
                    "test": {m: round(v, 4) for m, v in evaluate(y_test, np.concatenate(lab_test)).items()},
                    # Each modality's training samples alone (own cluster-to-class matching), and how
                    # many clusters they occupy: a pooled score can rise because one half collapses.
                    "train_per_modality": [{"acc": round(evaluate(y, lab)["acc"], 4),
                                            "clusters_used": int(len(np.unique(lab)))}
                                           for y, lab in zip(split.train_labels, lab_train)],
                })
                print(name, method, seed, runs[-1], flush=True)
            summary = {part: {m: [float(np.mean([r[part][m] for r in runs])), float(np.std([r[part][m] for r in runs]))]
                              for m in METRICS} for part in ("train", "test")}
            report["results"][name][method] = {"params": params, "runs": runs, "summary": summary}
            write_json(report, out)  # after every method, atomically: an interrupted run keeps what finished
    for name, rows in report["results"].items():
        for part in ("train", "test"):
            print(f"\n{name} ({part}): " + " | ".join(METRICS))
            for method, entry in rows.items():
                cells = " | ".join(f"{entry['summary'][part][m][0]:.3f} ± {entry['summary'][part][m][1]:.3f}" for m in METRICS)
                print(f"{method:18s} | {cells}")


if __name__ == "__main__":
    main()
