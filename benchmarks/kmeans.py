"""Wall time and inertia of mmc_teach.KMeans against scikit-learn (and faiss, when installed).

Run from the repository root::

    MMC_TEACH_DATA=/path/to/data python benchmarks/kmeans.py --repeats 3 --n-init 10 --threads 2 \
        --single-runs 10 --out results/kmeans.json

For every dataset it prints the median wall time of a few repeats (different seeds, the same seeds
for every library), the ratio ours / peer (< 1: ours is faster) and the inertia ratio
ours / peer of the best run per seed (< 1: ours found a lower objective). Every library gets the
same ``n_init``, the same float32 data and the same thread count (torch.set_num_threads for ours,
threadpoolctl for scikit-learn's OpenMP/BLAS, faiss.omp_set_num_threads).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from mmc_teach.datasets import load
from mmc_teach.kmeans import KMeans


def datasets(names: list[str]) -> list[tuple[str, np.ndarray, int]]:
    out = []
    if "cub10" in names:
        out.append(("CUB-10 image (600 x 1024)", load("cub10").views[0], 10))
    if "mnist_usps" in names:
        ds = load("mnist_usps")
        out.append(("MNIST-USPS concat (5000 x 1568)", np.hstack(ds.views), 10))
    if "synthetic" in names:
        X, _ = make_blobs(n_samples=200_000, n_features=64, centers=50, cluster_std=4.0, random_state=0)
        out.append(("synthetic blobs (200000 x 64)", X.astype(np.float32), 50))
    return out


def run_ours(X, k, n_init, seed, device):
    km = KMeans(k, n_init=n_init, random_state=seed, device=device).fit(X)
    if device is not None and str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return km.inertia_


def run_sklearn(X, k, n_init, seed, device):
    return SKKMeans(k, n_init=n_init, random_state=seed).fit(X).inertia_


def run_faiss(X, k, n_init, seed, device):
    import faiss

    km = faiss.Kmeans(X.shape[1], k, niter=300, nredo=n_init, seed=seed, verbose=False)
    km.train(np.ascontiguousarray(X))
    _, labels = km.index.search(X, 1)
    return float(((X.astype(np.float64) - km.centroids[labels[:, 0]]) ** 2).sum())


def timed(fn, *args):
    start = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="seeds per dataset (median time is reported)")
    parser.add_argument("--n-init", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="device for mmc_teach.KMeans (cpu, cuda, auto)")
    parser.add_argument("--datasets", nargs="+", default=["cub10", "mnist_usps", "synthetic"])
    parser.add_argument("--out", default=None, help="also write the numbers as JSON (e.g. results/kmeans.json)")
    parser.add_argument("--single-runs", type=int, default=0,
                        help="also fit N single runs (n_init=1, seeds 0..N-1) per library and compare their "
                             "inertias: tells a systematic quality gap from the luck of best-of-n_init")
    args = parser.parse_args()
    rows = []

    torch.set_num_threads(args.threads)
    peers = {"sklearn": run_sklearn}
    try:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        peers["faiss"] = run_faiss
    except ImportError:
        print("faiss not installed: comparing with scikit-learn only")
    device = None if args.device == "auto" else args.device
    print(f"n_init={args.n_init} threads={args.threads} repeats={args.repeats} device={args.device}")
    with threadpool_limits(limits=args.threads):
        # warm-up: first calls pay for thread pools and lazy imports
        small = np.random.RandomState(0).rand(500, 8).astype(np.float32)
        run_ours(small, 3, 1, 0, device)
        run_sklearn(small, 3, 1, 0, device)
        for name, X, k in datasets(args.datasets):
            times = {"ours": [], **{p: [] for p in peers}}
            inertias = {"ours": [], **{p: [] for p in peers}}
            for seed in range(args.repeats):
                for label, fn in [("ours", run_ours), *peers.items()]:
                    t, inertia = timed(fn, X, k, args.n_init, seed, device)
                    times[label].append(t)
                    inertias[label].append(inertia)
            med = {label: statistics.median(v) for label, v in times.items()}
            line = f"{name}, k={k}: ours {med['ours']:.2f} s"
            for peer in peers:
                ratio = np.mean(np.array(inertias["ours"]) / np.array(inertias[peer]))
                line += (
                    f" | {peer} {med[peer]:.2f} s, time ratio ours/{peer} {med['ours'] / med[peer]:.2f},"
                    f" inertia ratio {ratio:.5f} (max {max(np.array(inertias['ours']) / np.array(inertias[peer])):.5f})"
                )
            print(line, flush=True)
            single = {}
            if args.single_runs:
                single = {label: [fn(X, k, 1, seed, device) for seed in range(args.single_runs)]
                          for label, fn in [("ours", run_ours), *peers.items()]}
                for peer in peers:
                    print(f"  {args.single_runs} single runs: mean inertia ours/{peer} "
                          f"{np.mean(single['ours']) / np.mean(single[peer]):.5f}, best ours/{peer} "
                          f"{min(single['ours']) / min(single[peer]):.5f}", flush=True)
            rows.append({"dataset": name, "k": k, "median_s": med, "single_run_inertia": single,
                         "time_ratio": {p: round(med["ours"] / med[p], 4) for p in peers},
                         "inertia_ratio_mean": {p: round(float(np.mean(np.array(inertias["ours"]) / np.array(inertias[p]))), 6) for p in peers},
                         "inertia_ratio_max": {p: round(float(max(np.array(inertias["ours"]) / np.array(inertias[p]))), 6) for p in peers}})
    if args.out:
        from mmc_teach.bench import write_json

        write_json({"n_init": args.n_init, "threads": args.threads, "repeats": args.repeats, "device": args.device,
                    "rows": rows}, args.out)


if __name__ == "__main__":
    main()
