"""Which recipe makes DEC work? Pretraining curves and clustering-phase knobs on MNIST-5000 / USPS.

A measurement script, not a benchmark of the library's defaults: it chooses those defaults.
Data: ``mmc_teach.datasets.load("mnist_usps")``, view 0 (5,000 MNIST digits, pixels in [0, 1]) or
view 1 (5,000 USPS digits resampled to 784 pixels in [0, 1]), 10 classes.

Two kinds of experiment, each appended to ``benchmarks/results/dec_recipe.json`` (atomic
rewrite after every measurement, so a killed run loses at most the point in progress):

``pretrain``
    ONE training run per recipe; at each checkpoint epoch the embedding is clustered with
    :class:`mmc_teach.KMeans` (``n_init=10``) and ACC/NMI/ARI, the reconstruction MSE and the
    cumulative training wall time (k-means excluded) are logged, so one run gives the whole
    "epochs -> AE + k-means" curve. The encoder/decoder weights at every checkpoint are saved
    to ``--cache`` (never committed) for the ``cluster`` experiments.
``cluster``
    DEC or IDEC started from a saved autoencoder: ``mmc_teach.DEC`` / ``mmc_teach.IDEC`` with
    ``autoencoder=`` and ``pretrain_epochs=0`` wherever the library has the knob (Adam lr,
    ``update_interval``, ``tol``, ``n_init``, ``gamma``); ``tol=0`` runs give the whole ACC curve
    and the ``delta_label`` trace, from which the epoch at which any ``tol`` would have stopped is read.
    A clustering phase with SGD (the papers' optimiser) is not in the library, so
    :func:`sgd_clustering_phase` below is a minimal loop for the study only.

Options the library lacks and this script writes its own minimal loop for (what
``pretrain_autoencoder`` / ``DEC`` would need to offer them): ``optimizer="sgd"`` with
``momentum``, ``weight_decay``, ``shuffle=False`` (batches in order), greedy layer-wise
pretraining, and an ``optimizer`` choice for the clustering phase. With
``--optimizer adam --noise 0.2 --shuffle`` the pretraining loop below draws its random numbers in
the same order as :func:`mmc_teach.nn.pretrain_autoencoder` (same permutation, then the mask per
batch), so the "current" recipe is the library's.

Usage::

    python benchmarks/dec_recipe.py pretrain --name current --epochs 100 --checkpoints 10 25 50 100
    python benchmarks/dec_recipe.py pretrain --name no-noise --noise 0 ...
    python benchmarks/dec_recipe.py cluster --ae current@100 --method DEC --lr 1e-4 --tol 0 --epochs 60
    python benchmarks/dec_recipe.py summary

Findings of the run committed in ``results/dec_recipe.json`` (2026-12-01, 1 torch thread, 2 shared
cores, 1-min load average 1-6.4 from other jobs; print all tables with ``summary``)
-------------------------------------------------------------------------------------------------

- Pretraining: every recipe tried plateaus at AE + k-means ACC 0.55-0.62 on MNIST-5000 (seed 0),
  far from 0.75: Adam 1e-3/batch 256/noise 0.2 (the library's) 0.595 at epoch 50, 0.600 at 100;
  without noise 0.576 at 50; batch 64 0.576 at 25 and 0.564 at 50; DEC-keras' MNIST recipe (SGD lr 1,
  momentum 0.9, no noise) 0.548 at 100. The 500-500-1000-10 encoder is the best and twice as fast
  (0.622 at 50 epochs, 2.6 s/epoch vs 5.0 s for 500-500-2000-10). Most of the gain is in the first
  25-50 epochs; 50 -> 100 adds 0.005.
- k-means ``n_init`` on the embedding does not matter beyond 5 (0.601-0.602 for 5-50).
- Clustering phase (same AE, seed 0): the library's Adam lr 1e-3 gains +0.037 and freezes after
  ~9 epochs (tol 1e-3 stops it then, at the plateau: tol does not stop early there); Adam 1e-4
  +0.050 (plateau after ~23 epochs); SGD lr 0.01 momentum 0.9 (the papers') +0.059 and still rising
  after 40 epochs (tol 1e-3 never fires; tol 1e-2 would stop it after 10 epochs at +0.03).
  IDEC with gamma 0.1 (Adam 1e-3) +0.035, with gamma 0.01 +0.045 and still rising at 30 epochs.
- USPS view: AE + k-means 0.476 (50 epochs), k-means on the pixels 0.465, DEC (SGD 0.01) 0.479.
- Five seeds of the fastest good recipe (500-500-1000-10, Adam 1e-3, batch 256, noise 0.2, 50
  epochs, then DEC with SGD 0.01 momentum 0.9 for 40 epochs): AE + k-means 0.603 ± 0.029, DEC
  0.647 ± 0.012 (about 130 s pretraining + 80 s clustering on one thread).
- Not tried for lack of machine time: greedy layer-wise pretraining, the authors' input scale
  (x 5.1), weight decay, more than 100 pretraining epochs, smaller ``update_interval``, batches in
  order, more data (the reference numbers are on 10,000-70,000 digits, these on 5,000).
- Added 2026-12-03 (``results/dec_more_data.json``, ``--extra-view 1``, seeds 0-2): pretraining on the
  5,000 MNIST plus the 5,000 USPS digits and clustering the MNIST embedding gives AE + k-means 0.654 at
  150 epochs, against 0.637 for the same seeds on MNIST alone (``dec.jsonl``): within the seed spread.
  At 50 epochs it is ahead (0.654 against 0.588, ``dec_latent.json``), because an epoch has twice the steps.
  ``results/dec_latent.json``: code size 2 / 10 / 50 after 50 epochs, 0.386 / 0.588 / 0.619 (3 seeds).

What the reference implementations do (read at their current HEAD; facts, file:line)
----------------------------------------------------------------------------------------

- XifengGuo/DEC-keras ``DEC.py``: architecture d-500-500-2000-10 (l. 321); pretraining is plain
  MSE without input noise (l. 143, 171; Keras ``fit`` shuffles), ``batch_size`` 256 (l. 275);
  for MNIST 300 epochs with SGD lr 1, momentum 0.9 and a uniform fan-in init of limit
  sqrt(1/fan_in) (l. 296-301, the same bound as torch's default ``Linear`` weight init); for USPS
  Adam (Keras default lr 1e-3), 50 epochs (l. 294, 308-310). Clustering phase: SGD lr 0.01,
  momentum 0.9 (l. 332), KL loss ``'kld'`` (sum over clusters, mean over the batch), k-means
  ``n_init=20`` (l. 205), ``update_interval`` 140 iterations on MNIST-70k (about half a pass),
  30 on USPS (l. 297, 309), ``tol`` 1e-3, ``maxiter`` 2e4 (l. 195, 276-279), and mini-batches
  taken IN ORDER (the shuffle is commented out, l. 246-250). ``datasets.py`` scales MNIST to
  [0, 1] (l. 101). Its README reports MNIST-70k AE + k-means 0.88, DEC 0.91; USPS-9298 0.71 / 0.76.
- XifengGuo/IDEC ``IDEC.py``: loss weights ``[gamma, 1]`` on (``'kld'``, ``'mse'``), gamma 0.1
  (l. 48, 64-66, 173); clustering optimiser Adam for MNIST, SGD lr 0.1 momentum 0.99 otherwise
  (l. 183-190); k-means ``n_init=20`` (l. 96); in-order batches (l. 137-145);
  ``update_interval`` 140, ``tol`` 1e-3 (l. 85-87). Keras' ``'kld'`` does not divide by K; a
  PyTorch ``F.kl_div(..., reduction='mean')`` averages over all n*K entries, i.e. divides the
  per-sample KL by K as well (10x smaller clustering weight for K = 10).
- piiswrong/dec (the authors' Caffe code): MNIST pixels times 0.02, i.e. in [0, 5.1]
  (``dec/dec.py`` l. 375); greedy layer-wise denoising pretraining, 50,000 iterations per layer,
  dropout 0.2 on the layer input for all but the first layer and on the hidden code, then
  100,000 iterations of end-to-end fine-tuning without dropout, SGD lr 0.1 momentum 0.9 decayed
  x0.1 every 20,000 iterations, no weight decay (``dec/pretrain.py`` l. 58-76, 102-113, 124-142,
  180-184); clustering phase SGD lr 0.01 momentum 0.9 (``dec/dec.py`` l. 727-733), batch 256
  read in order from the database (l. 630, 746), target refresh every 160 iterations on MNIST
  (l. 751), stop when fewer than 0.1 % of labels change (l. 706), k-means ``n_init=20`` (l. 341).

All runs use ``torch.set_num_threads(--threads)`` (1 by default; the study machine has 2 cores
shared with other jobs) and record the thread count and the load average beside the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mmc_teach import DEC, IDEC, KMeans
from mmc_teach.datasets import load
from mmc_teach.losses import kl_clustering_loss, soft_assignment, target_distribution
from mmc_teach.metrics import evaluate
from mmc_teach.nn import MLPAutoencoder, as_tensor, encode_in_batches

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "dec_recipe.json"
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "mmc_teach_dec_recipe"
METRICS = ("acc", "nmi", "ari")


# ----------------------------------------------------------------------------- bookkeeping
def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"pretrain": {}, "cluster": {}}


def save_results(path: Path, results: dict[str, Any]) -> None:
    """Write the whole file to a temporary sibling and rename it: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(results, fh, indent=1)
    os.replace(tmp, path)


def update_results(path: Path, kind: str, key: str, entry: dict[str, Any]) -> None:
    # Re-read before writing: another (sequential) run may have added entries in between.
    results = load_results(path)
    results.setdefault(kind, {})[key] = entry
    save_results(path, results)


def machine() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def view_data(view: int) -> tuple[np.ndarray, np.ndarray, int]:
    data = load("mnist_usps")
    return np.asarray(data.views[view], dtype=np.float32), np.asarray(data.labels), int(data.n_clusters)


def ae_kmeans(ae: MLPAutoencoder, Xt: torch.Tensor, y: np.ndarray, k: int, seed: int, n_init: int = 10) -> dict[str, float]:
    z = encode_in_batches(ae, Xt)
    km = KMeans(k, n_init=n_init, random_state=seed, device="cpu").fit(z)
    return {m: round(v, 4) for m, v in evaluate(y, km.labels_).items() if m in METRICS}


# ----------------------------------------------------------------------------- pretraining
def make_optimizer(params: Any, name: str, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"optimizer={name!r} is not 'adam' or 'sgd'.")


def batches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


def train_epoch(modules_in: nn.Module, modules_out: nn.Module, optimizer: torch.optim.Optimizer, X: torch.Tensor,
                args: argparse.Namespace, generator: torch.Generator) -> float:
    """One pass of denoising MSE training of ``modules_out(modules_in(x_noisy))`` against ``x``."""
    total = 0.0
    for idx in batches(len(X), args.batch_size, generator, args.shuffle):
        x = X[idx]
        if args.noise > 0:
            keep = torch.rand(x.shape, generator=generator) >= args.noise
            x_in = x * keep
        else:
            x_in = x
        loss = nn.functional.mse_loss(modules_out(modules_in(x_in)), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += float(loss.detach()) * len(idx)
    return total / len(X)


def layerwise_warmup(ae: MLPAutoencoder, X: torch.Tensor, args: argparse.Namespace, generator: torch.Generator) -> None:
    """DEC's greedy stage, shortened: each encoder layer with its mirrored decoder layer as a
    shallow denoising AE on the (clean) codes of the layers below, ``--layerwise-epochs`` passes each."""
    enc = [m for m in ae.encoder if isinstance(m, nn.Linear)]
    dec = [m for m in ae.decoder if isinstance(m, nn.Linear)][::-1]
    n_layers = len(enc)
    inputs = X
    for i, (e, d) in enumerate(zip(enc, dec)):
        # Hidden layers are ReLU on both sides; the embedding (last encoder) and the
        # reconstruction (last decoder) layers are linear, as in the stacked network.
        e_act = nn.Sequential(e) if i == n_layers - 1 else nn.Sequential(e, nn.ReLU())
        d_act = nn.Sequential(d) if i == 0 else nn.Sequential(d, nn.ReLU())
        params = [*e.parameters(), *d.parameters()]
        opt = make_optimizer(params, args.optimizer, args.lr, args.momentum, args.weight_decay)
        for _ in range(args.layerwise_epochs):
            train_epoch(e_act, d_act, opt, inputs, args, generator)
        with torch.no_grad():
            inputs = e_act(inputs)


def run_pretrain(args: argparse.Namespace) -> None:
    X, y, k = view_data(args.view)
    Xt = as_tensor(X, torch.device("cpu"))
    # --extra-view: pretrain on this view's digits and the other view's (10,000 digits, 784 pixels
    # each), and still cluster only this view's: more data for the autoencoder, the same task.
    X_train = Xt if args.extra_view is None else torch.cat([Xt, as_tensor(view_data(args.extra_view)[0], torch.device("cpu"))])
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    ae = MLPAutoencoder(X.shape[1], args.hidden)
    key = f"{args.name}/view{args.view}/seed{args.seed}"
    entry: dict[str, Any] = {
        "recipe": {n: getattr(args, n) for n in ("hidden", "optimizer", "lr", "momentum", "weight_decay", "batch_size",
                                                  "noise", "shuffle", "layerwise_epochs", "view", "extra_view", "seed")},
        "machine": machine(), "curve": [],
    }
    print(f"[{key}] {entry['recipe']} {entry['machine']}", flush=True)
    train_seconds = 0.0
    if args.layerwise_epochs > 0:
        t = time.perf_counter()
        layerwise_warmup(ae, X_train, args, generator)
        train_seconds += time.perf_counter() - t
        entry["layerwise_seconds"] = round(train_seconds, 1)
        entry["curve"].append({"epoch": 0, "seconds": round(train_seconds, 1), **ae_kmeans(ae, Xt, y, k, args.seed)})
        print(f"[{key}] after layer-wise: {entry['curve'][-1]}", flush=True)
    optimizer = make_optimizer(ae.parameters(), args.optimizer, args.lr, args.momentum, args.weight_decay)
    checkpoints = set(args.checkpoints)
    ae.train()
    for epoch in range(1, max(checkpoints) + 1):
        t = time.perf_counter()
        recon = train_epoch(ae.encoder, ae.decoder, optimizer, X_train, args, generator)
        train_seconds += time.perf_counter() - t
        if epoch in checkpoints:
            ae.eval()
            t = time.perf_counter()
            point = {"epoch": epoch, "seconds": round(train_seconds, 1), "reconstruction": round(recon, 6),
                     **ae_kmeans(ae, Xt, y, k, args.seed), "kmeans_seconds": 0.0,
                     "loadavg_1min": round(os.getloadavg()[0], 2)}
            point["kmeans_seconds"] = round(time.perf_counter() - t, 1)
            ae.train()
            entry["curve"].append(point)
            entry["seconds_per_epoch"] = round(train_seconds / epoch, 2)
            update_results(args.out, "pretrain", key, entry)
            args.cache.mkdir(parents=True, exist_ok=True)
            torch.save({"hidden": args.hidden, "state": ae.state_dict()}, args.cache / f"{args.name}_v{args.view}_s{args.seed}@{epoch}.pt")
            print(f"[{key}] {point}", flush=True)


# ----------------------------------------------------------------------------- clustering phase
def load_ae(args: argparse.Namespace, input_dim: int) -> MLPAutoencoder:
    name, epoch = args.ae.split("@")
    saved = torch.load(args.cache / f"{name}_v{args.view}_s{args.ae_seed}@{epoch}.pt")
    ae = MLPAutoencoder(input_dim, saved["hidden"])
    ae.load_state_dict(saved["state"])
    ae.eval()
    return ae


def sgd_clustering_phase(ae: MLPAutoencoder, X: torch.Tensor, y: np.ndarray, k: int, args: argparse.Namespace) -> dict[str, Any]:
    """DEC / IDEC's clustering phase with SGD + momentum (the papers' optimiser), same steps as
    :meth:`mmc_teach.DEC.fit` otherwise: k-means init, P on the full data every
    ``update_interval`` iterations, label-change stop at ``tol``."""
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    z = encode_in_batches(ae, X)
    km = KMeans(k, n_init=args.n_init, random_state=args.seed, device="cpu").fit(z)
    centers = nn.Parameter(torch.as_tensor(np.asarray(km.cluster_centers_), dtype=torch.float32).clone())
    params = list(ae.parameters()) if args.method == "IDEC" else list(ae.encoder.parameters())
    opt = make_optimizer([*params, centers], "sgd", args.lr, args.momentum, 0.0)
    n = len(X)
    update_interval = args.update_interval or -(-n // args.batch_size)
    labels = torch.as_tensor(np.asarray(km.labels_)).long()
    history, iteration, converged = [], 0, False
    ae.train()
    for epoch in range(1, args.epochs + 1):
        delta = float("nan")
        for idx in batches(n, args.batch_size, generator, True):
            if iteration % update_interval == 0:
                with torch.no_grad():
                    q_all = soft_assignment(encode_in_batches(ae, X), centers, 1.0)
                p_all = target_distribution(q_all)
                new = q_all.argmax(1)
                delta = float((new != labels).float().mean())
                labels = new
                if iteration > 0 and delta < args.tol:
                    converged = True
                    break
            x = X[idx]
            zb, x_hat = ae(x)
            loss = kl_clustering_loss(p_all[idx], soft_assignment(zb, centers, 1.0))
            if args.method == "IDEC":
                loss = nn.functional.mse_loss(x_hat, x) + args.gamma * loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            iteration += 1
        scores = evaluate(y, labels.numpy())
        history.append({"epoch": epoch, "delta_label": delta, "acc": scores["acc"], "nmi": scores["nmi"]})
        if converged:
            break
    ae.eval()
    with torch.no_grad():
        final = soft_assignment(encode_in_batches(ae, X), centers, 1.0).argmax(1).numpy()
    return {"labels": final, "history": history, "converged": converged}


def run_cluster(args: argparse.Namespace) -> None:
    X, y, k = view_data(args.view)
    Xt = as_tensor(X, torch.device("cpu"))
    ae = load_ae(args, X.shape[1])
    key = args.name or (f"{args.method}/{args.ae}/view{args.view}/{args.optimizer}-lr{args.lr}/ui{args.update_interval}"
                        f"/tol{args.tol}/ninit{args.n_init}/gamma{args.gamma}/seed{args.seed}")
    start = ae_kmeans(ae, Xt, y, k, args.seed, n_init=args.n_init)
    t = time.perf_counter()
    if args.optimizer == "adam":
        cls = IDEC if args.method == "IDEC" else DEC
        extra = {"gamma": args.gamma} if args.method == "IDEC" else {}
        est = cls(k, autoencoder=ae, pretrain_epochs=0, epochs=args.epochs, update_interval=args.update_interval,
                  tol=args.tol, lr=args.lr, batch_size=args.batch_size, n_init=args.n_init, random_state=args.seed,
                  device="cpu", **extra).fit(X, y)  # y only fills history_'s monitoring columns
        labels, converged = est.labels_, est.converged_
        history = [{"epoch": h["epoch"], "delta_label": h["delta_label"], "acc": h["acc"], "nmi": h["nmi"]} for h in est.history_]
    else:
        out = sgd_clustering_phase(ae, Xt, y, k, args)
        labels, converged, history = out["labels"], out["converged"], out["history"]
    seconds = time.perf_counter() - t
    final = {m: round(v, 4) for m, v in evaluate(y, labels).items() if m in METRICS}
    entry = {
        "settings": {n: getattr(args, n) for n in ("method", "ae", "ae_seed", "view", "optimizer", "lr", "momentum", "update_interval",
                                                    "tol", "n_init", "gamma", "epochs", "batch_size", "seed")},
        "machine": machine(), "start_ae_kmeans": start, "final": final, "seconds": round(seconds, 1),
        "seconds_per_epoch": round(seconds / max(len(history), 1), 2), "epochs_run": len(history), "converged": converged,
        "acc_curve": [round(h["acc"], 4) for h in history],
        "delta_label": [None if h["delta_label"] != h["delta_label"] else round(h["delta_label"], 5) for h in history],
    }
    entry["tol_would_stop"] = tol_stops(entry) if args.tol == 0 else None
    update_results(args.out, "cluster", key, entry)
    print(f"[{key}] start {start} -> final {final} in {seconds:.0f} s, {len(history)} epochs, converged={converged}", flush=True)
    print(f"   acc curve {entry['acc_curve']}", flush=True)


def run_kmeans(args: argparse.Namespace) -> None:
    """k-means ``n_init`` on a saved embedding: ACC and inertia over several k-means seeds (seconds each)."""
    X, y, k = view_data(args.view)
    if args.ae == "pixels":  # the baseline: k-means on the input itself
        z = as_tensor(X, torch.device("cpu"))
    else:
        z = encode_in_batches(load_ae(args, X.shape[1]), as_tensor(X, torch.device("cpu")))
    rows = {}
    for n_init in args.n_inits:
        scores, inertias, t = [], [], time.perf_counter()
        for seed in range(args.kmeans_seeds):
            km = KMeans(k, n_init=n_init, random_state=seed, device="cpu").fit(z)
            scores.append(evaluate(y, km.labels_)["acc"])
            inertias.append(float(km.inertia_))
        rows[str(n_init)] = {"acc_mean": round(float(np.mean(scores)), 4), "acc_std": round(float(np.std(scores)), 4),
                             "acc_min": round(min(scores), 4), "acc_max": round(max(scores), 4),
                             "inertia_mean": round(float(np.mean(inertias)), 2),
                             "seconds_per_fit": round((time.perf_counter() - t) / args.kmeans_seeds, 2)}
        print(f"[kmeans {args.ae} view{args.view}] n_init {n_init}: {rows[str(n_init)]}", flush=True)
    update_results(args.out, "kmeans_n_init", f"{args.ae}/view{args.view}/seed{args.ae_seed}",
                   {"kmeans_seeds": args.kmeans_seeds, "machine": machine(), "by_n_init": rows})


def tol_stops(entry: dict[str, Any]) -> dict[str, Any]:
    """Where a label-change ``tol`` would have stopped a ``tol=0`` run (update_interval = one pass).

    ``acc_curve[i]`` and ``delta_label[i]`` belong to the target update at the START of epoch
    i + 1, i.e. after i epochs of training; the stopping rule fires at the first update after
    the first (i >= 1) whose change is below tol, and the labels then are those of that update.
    """
    stops = {}
    for tol in (1e-2, 3e-3, 1e-3):
        hit = next((i for i, d in enumerate(entry["delta_label"]) if i >= 1 and d is not None and d < tol), None)
        stops[str(tol)] = None if hit is None else {"after_epochs": hit, "acc": entry["acc_curve"][hit]}
    return stops


# ----------------------------------------------------------------------------- summary
def summary(path: Path) -> str:
    """Markdown tables of everything measured so far in ``path``."""
    results = load_results(path)
    pre = results.get("pretrain", {})
    epochs = sorted({p["epoch"] for e in pre.values() for p in e["curve"]})
    lines = ["AE + k-means ACC (NMI) at each pretraining epoch; s/epoch = training wall time per epoch "
             "(k-means excluded), load = 1-min load average at the last checkpoint", "",
             "| recipe | " + " | ".join(f"ep {e}" for e in epochs) + " | s/epoch | threads | load |",
             "|---|" + "---|" * (len(epochs) + 3)]
    for key, e in pre.items():
        by_epoch = {p["epoch"]: p for p in e["curve"]}
        cells = [f"{by_epoch[ep]['acc']:.3f} ({by_epoch[ep]['nmi']:.3f})" if ep in by_epoch else "" for ep in epochs]
        load = e["curve"][-1].get("loadavg_1min", "")
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {e.get('seconds_per_epoch', '')} | {e['machine']['threads']} | {load} |")
    km = results.get("kmeans_n_init", {})
    if km:
        lines += ["", "k-means n_init on a fixed embedding (mean ± std ACC over k-means seeds)", "",
                  "| embedding | " + " | ".join(f"n_init {n}" for n in next(iter(km.values()))["by_n_init"]) + " |",
                  "|---|" + "---|" * len(next(iter(km.values()))["by_n_init"])]
        for key, e in km.items():
            lines.append(f"| {key} | " + " | ".join(f"{r['acc_mean']:.3f} ± {r['acc_std']:.3f}" for r in e["by_n_init"].values()) + " |")
    cl = results.get("cluster", {})
    if cl:
        lines += ["", "Clustering phase (tol=0 runs: the whole curve; 'tol stop' = training epochs done and ACC when that tol would have stopped)", "",
                  "| run | start ACC | final ACC (NMI) | best ACC (after epochs) | epochs | s/epoch | tol 1e-3 stop | tol 1e-2 stop |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, e in cl.items():
            curve = e["acc_curve"]
            best = int(np.argmax(curve)) if curve else 0
            stops = tol_stops(e) if e["settings"]["tol"] == 0 else {}
            fmt = lambda s: "never" if s is None else f"after {s['after_epochs']}: {s['acc']:.3f}"
            lines.append(f"| {key} | {e['start_ae_kmeans']['acc']:.3f} | {e['final']['acc']:.3f} ({e['final']['nmi']:.3f}) | "
                         f"{curve[best]:.3f} ({best}) | {e['epochs_run']} | {e['seconds_per_epoch']} | "
                         f"{fmt(stops.get('0.001')) if stops else ''} | {fmt(stops.get('0.01')) if stops else ''} |")
    # Seed spread: recipes pretrained with several seeds, and the clustering runs on them.
    groups: dict[str, list[str]] = {}
    for key in pre:
        name, view, _ = key.split("/")
        groups.setdefault(f"{name}/{view}", []).append(key)
    for group, keys in groups.items():
        if len(keys) < 2:
            continue
        lines += ["", f"Seed spread of {group} (seeds {', '.join(k.split('/')[-1][4:] for k in keys)}): mean ± std ACC", ""]
        for ep in epochs:
            accs = [p["acc"] for k in keys for p in pre[k]["curve"] if p["epoch"] == ep]
            if len(accs) == len(keys):
                lines.append(f"- AE + k-means, epoch {ep}: {np.mean(accs):.3f} ± {np.std(accs):.3f} {accs}")
        name, view = group.split("/")
        runs: dict[str, list[float]] = {}
        for key, e in cl.items():
            st = e["settings"]
            if st["ae"].split("@")[0] == name and f"view{st['view']}" == view and st["seed"] == st["ae_seed"]:
                label = key.rsplit("/seed", 1)[0]
                runs.setdefault(label, []).append(e["final"]["acc"])
        for label, accs in runs.items():
            if len(accs) >= 2:
                lines.append(f"- {label}: {np.mean(accs):.3f} ± {np.std(accs):.3f} over {len(accs)} seeds {accs}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--view", type=int, default=0, help="0: MNIST, 1: USPS (mnist_usps)")
    common.add_argument("--seed", type=int, default=0)
    common.add_argument("--threads", type=int, default=1)
    common.add_argument("--out", type=Path, default=DEFAULT_OUT)
    common.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    common.add_argument("--batch-size", dest="batch_size", type=int, default=256)
    common.add_argument("--lr", type=float, default=1e-3)
    common.add_argument("--momentum", type=float, default=0.9)

    p = sub.add_parser("pretrain", parents=[common])
    p.add_argument("--name", required=True)
    p.add_argument("--hidden", type=int, nargs="+", default=[500, 500, 2000, 10])
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    p.add_argument("--weight-decay", dest="weight_decay", type=float, default=0.0)
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--no-shuffle", dest="shuffle", action="store_false")
    p.add_argument("--layerwise-epochs", dest="layerwise_epochs", type=int, default=0)
    p.add_argument("--extra-view", dest="extra_view", type=int, default=None,
                   help="also pretrain on this view's digits (the clustering is still of --view)")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[10, 25, 50, 100])

    c = sub.add_parser("cluster", parents=[common])
    c.add_argument("--name", default=None)
    c.add_argument("--ae", required=True, help="NAME@EPOCH of a saved pretraining checkpoint")
    c.add_argument("--ae-seed", dest="ae_seed", type=int, default=0)
    c.add_argument("--method", choices=("DEC", "IDEC"), default="DEC")
    c.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    c.add_argument("--update-interval", dest="update_interval", type=int, default=None)
    c.add_argument("--tol", type=float, default=0.0)
    c.add_argument("--n-init", dest="n_init", type=int, default=20)
    c.add_argument("--gamma", type=float, default=0.1)
    c.add_argument("--epochs", type=int, default=50)

    km = sub.add_parser("kmeans", parents=[common])
    km.add_argument("--ae", required=True, help="NAME@EPOCH of a saved pretraining checkpoint, or 'pixels'")
    km.add_argument("--ae-seed", dest="ae_seed", type=int, default=0)
    km.add_argument("--n-inits", dest="n_inits", type=int, nargs="+", default=[1, 5, 10, 20, 50])
    km.add_argument("--kmeans-seeds", dest="kmeans_seeds", type=int, default=10)

    s = sub.add_parser("summary")
    s.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.command == "summary":
        print(summary(args.out))
        return
    torch.set_num_threads(args.threads)
    {"pretrain": run_pretrain, "cluster": run_cluster, "kmeans": run_kmeans}[args.command](args)


if __name__ == "__main__":
    main()
