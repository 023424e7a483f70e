"""Benchmark of chapter "JECL": the shape of the paper's Table II on CUB-10 and BDGP.

Preprocessing (the same input for every method of a data set, see :func:`prepare`):

- image view: centred per feature, then divided by ONE global standard deviation, which keeps the
  relative scale of the CNN / image features (per-feature standardisation blows up rare, nearly
  constant features);
- text view: rows L2-normalised (Doc2Vec and keyword vectors compare by direction), then centred
  and divided by one global standard deviation.

Rows per data set and seed (0..4 by default):

- ``k-means image`` / ``k-means text`` / ``k-means concat``: :class:`mmc_teach.KMeans` (``n_init=20``)
  on the prepared views and their concatenation, plus ``k-means concat (standardised)``, the
  per-feature standardised concatenation of chapter "Multi-modal data" (the reference 0.77 on CUB-10),
  and ``k-means concat (balanced)``, standardised views each divided by sqrt(d_v);
- one denoising autoencoder per view is pretrained ONCE per seed and shared by every deep row below,
  so the rows differ only in their clustering phase;
- ``DEC image`` / ``DEC text``: :class:`mmc_teach.DEC` on one view with that view's autoencoder;
  ``DEC concat``: DEC on the concatenation (its own autoencoder, same schedule);
- ``JECL`` and the ablations ``w/o alignment`` (beta = 0), ``w/o regularizer`` (gamma = 0) and
  ``w/o both``: :class:`mmc_teach.JECL` with the shared pair of autoencoders.

Schedules and the deep rows run per data set are in ``SCHEDULE`` and ``DEEP_ROWS`` (BDGP runs a
subset to fit a 2-core CPU).

Usage::

    python benchmarks/jecl.py [--seeds 0 1 2 3 4] [--datasets cub10 bdgp] [--out FILE] [--threads 1]
    python benchmarks/jecl.py --exercises [--datasets cub10 bdgp]   # the exercises' rows (EXERCISE_ROWS)
    python benchmarks/jecl.py --summary FILE [FILE ...]   # table of (partial) results files

Every finished run is appended to ``--out`` as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from mmc_teach import DEC, JECL, KMeans
from mmc_teach._base import seeded
from mmc_teach.datasets import load
from mmc_teach.metrics import evaluate
from mmc_teach.nn import MLPAutoencoder, as_tensor, pretrain_autoencoder
from mmc_teach.utils import standardise

METRICS = ("acc", "nmi", "ari")
METHODS = (
    "k-means image", "k-means text", "k-means concat (standardised)", "k-means concat (balanced)", "k-means concat",
    "DEC image", "DEC text", "DEC concat",
    "JECL", "JECL w/o alignment", "JECL w/o regularizer", "JECL w/o both",
)
ABLATIONS = {
    "JECL": {},
    "JECL w/o alignment": {"alignment": False},
    "JECL w/o regularizer": {"regularizer": False},
    "JECL w/o both": {"alignment": False, "regularizer": False},
}
# One schedule for every deep row of a data set (the JECL paper uses DEC's settings for all DEC
# components). CUB-10 has 600 samples (3 mini-batches per pass), so it gets more pretraining passes;
# BDGP (2500 x 1750) gets fewer passes and, to fit a 2-core CPU budget, only the rows the issue asks
# for (k-means baselines, DEC on the stronger text view, JECL).
SCHEDULE = {
    "cub10": {"hidden_dims": (512, 256, 10), "pretrain_epochs": 100, "epochs": 50, "batch_size": 256},
    "bdgp": {"hidden_dims": (512, 256, 10), "pretrain_epochs": 30, "epochs": 30, "batch_size": 256},
    "wikipedia": {"hidden_dims": (512, 256, 10), "pretrain_epochs": 30, "epochs": 30, "batch_size": 256},
}
# The chapter's exercises on JECL, measured here so that their solutions read results instead of
# predicting them (``--exercises``, written to their own file): ex-jecl-1 switches off the Hungarian
# matching of the text clusters to the image clusters (not the JSD term, which "w/o alignment" drops);
# ex-jecl-3 moves the image/text weight alpha of the joint target on BDGP, whose text view is the strong one.
EXERCISE_ROWS = {
    "cub10": {"JECL": {}, "JECL w/o cluster matching": {"align_clusters": False}},
    "bdgp": {"JECL alpha 0.2": {"alpha": 0.2}, "JECL": {}, "JECL alpha 0.8": {"alpha": 0.8}},
}
DEEP_ROWS = {
    "cub10": ("DEC image", "DEC text", "DEC concat", *ABLATIONS),
    "bdgp": ("DEC text", "JECL"),
    "wikipedia": ("DEC text", "JECL"),
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "jecl.jsonl"
EXERCISES_OUT = DEFAULT_OUT.with_name("jecl_exercises.jsonl")


def global_scale(X: np.ndarray) -> np.ndarray:
    """Centre each feature, divide by one global standard deviation (relative scales kept)."""
    X = np.asarray(X, dtype=np.float64)
    X = X - X.mean(axis=0)
    return (X / X.std()).astype(np.float32)


def prepare(views: list[np.ndarray]) -> list[np.ndarray]:
    """The benchmark's input: image globally scaled, text L2-normalised per row then globally scaled."""
    image, text = views
    norms = np.linalg.norm(text, axis=1, keepdims=True)
    return [global_scale(image), global_scale(text / np.where(norms > 0, norms, 1.0))]


def pretrain(X: np.ndarray, seed: int, schedule: dict) -> MLPAutoencoder:
    with seeded(seed) as generator:
        ae = MLPAutoencoder(X.shape[1], schedule["hidden_dims"])
        pretrain_autoencoder(ae, as_tensor(X, torch.device("cpu")), epochs=schedule["pretrain_epochs"],
                             batch_size=schedule["batch_size"], generator=generator)
    return ae


def balanced(views: list[np.ndarray]) -> np.ndarray:
    """Standardised views, each divided by sqrt(d_v) so that every view has the same total variance."""
    return np.hstack([standardise(v) / np.sqrt(v.shape[1]) for v in views])


def run_seed(name: str, seed: int, out: Path, exercises: bool = False) -> None:
    data = load(name, texts=False)
    y, k = data.labels, data.n_clusters
    image, text = prepare(data.views)
    concat = np.hstack([image, text])

    def record(method: str, labels: np.ndarray, seconds: float, **extra: float) -> None:
        scores = {m: v for m, v in evaluate(y, labels).items() if m in METRICS}
        row = {"dataset": name, "seed": seed, "method": method, **scores, "seconds": seconds, **extra}
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(f"{name:6s} seed {seed}  {method:30s} " + "  ".join(f"{m} {scores[m]:.3f}" for m in METRICS)
              + f"  {seconds:6.1f} s", flush=True)

    schedule = SCHEDULE[name]
    dec_params = {p: v for p, v in schedule.items() if p not in ("hidden_dims", "pretrain_epochs")}
    if exercises:
        ae_image, ae_text = pretrain(image, seed, schedule), pretrain(text, seed, schedule)
        for method, switches in EXERCISE_ROWS[name].items():
            t = time.perf_counter()
            est = JECL(k, autoencoders=(ae_image, ae_text), pretrain_epochs=0, random_state=seed, device="cpu",
                       **dec_params, **switches).fit([image, text])
            # The alignment term of the first and the last epoch: how far the two views disagree.
            record(method, est.labels_, time.perf_counter() - t,
                   jsd_first_epoch=float(est.history_[0]["jsd"]), jsd_last_epoch=float(est.history_[-1]["jsd"]))
        return

    inputs = {"k-means image": image, "k-means text": text, "k-means concat": concat,
              "k-means concat (standardised)": np.hstack([standardise(v) for v in data.views]),
              "k-means concat (balanced)": balanced(data.views)}
    for method, X in inputs.items():
        t = time.perf_counter()
        record(method, KMeans(k, n_init=20, random_state=seed, device="cpu").fit(X).labels_, time.perf_counter() - t)

    rows = DEEP_ROWS[name]
    t = time.perf_counter()
    ae_image, ae_text = pretrain(image, seed, schedule), pretrain(text, seed, schedule)
    ae_concat = pretrain(concat, seed, schedule) if "DEC concat" in rows else None
    print(f"{name:6s} seed {seed}  pretraining {time.perf_counter() - t:.1f} s", flush=True)
    for method, X, ae in (("DEC image", image, ae_image), ("DEC text", text, ae_text), ("DEC concat", concat, ae_concat)):
        if method not in rows:
            continue
        t = time.perf_counter()
        est = DEC(k, autoencoder=ae, pretrain_epochs=0, random_state=seed, device="cpu", **dec_params).fit(X)
        record(method, est.labels_, time.perf_counter() - t)
    for method, switches in ABLATIONS.items():
        if method not in rows:
            continue
        t = time.perf_counter()
        est = JECL(k, autoencoders=(ae_image, ae_text), pretrain_epochs=0, random_state=seed, device="cpu",
                   **dec_params, **switches).fit([image, text])
        record(method, est.labels_, time.perf_counter() - t)


def summary(*paths: Path) -> str:
    """Mean ± std over seeds; several files (e.g. one per process) are merged, first row per run wins."""
    seen, rows = set(), []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                key = (row["dataset"], row["seed"], row["method"])
                if key not in seen:
                    seen.add(key)
                    rows.append(row)
    lines = ["| data | method | seeds | ACC | NMI | ARI | s per run |", "|---|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in rows):
        for method in dict.fromkeys([*METHODS, *(m for table in EXERCISE_ROWS.values() for m in table)]):
            sel = [r for r in rows if r["dataset"] == name and r["method"] == method]
            if sel:
                cells = [f"{np.mean([r[m] for r in sel]):.3f} ± {np.std([r[m] for r in sel]):.3f}" for m in METRICS]
                lines.append(f"| {name} | {method} | {len(sel)} | " + " | ".join(cells)
                             + f" | {np.mean([r['seconds'] for r in sel]):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=["cub10", "bdgp"], choices=["cub10", "bdgp", "wikipedia"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--exercises", action="store_true",
                        help=f"only the rows of the chapter's exercises (EXERCISE_ROWS), written to {EXERCISES_OUT.name} by default")
    parser.add_argument("--summary", type=Path, nargs="+", default=None, help="only print the table of these results files")
    args = parser.parse_args()
    if args.exercises and args.out == DEFAULT_OUT:
        args.out = EXERCISES_OUT
    if args.summary is not None:
        print(summary(*args.summary))
        return
    torch.set_num_threads(args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {args.threads} threads", flush=True)
    for name in args.datasets:
        for seed in args.seeds:
            run_seed(name, seed, args.out, exercises=args.exercises)
    print(summary(args.out))


if __name__ == "__main__":
    main()
