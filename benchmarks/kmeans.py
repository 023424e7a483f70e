"""Wall time, inertia and memory of mmc_teach.KMeans against scikit-learn, from 600 points to 10^6.

Run from the repository root, alone on the machine (other jobs inflate every time)::

    MMC_TEACH_DATA=/path/to/data python benchmarks/kmeans.py --threads 2 --out results/kmeans.json

Sizes: the two real sets the chapters use (CUB-10 600 x 1024 and MNIST-USPS 5000 x 1568, k = 10,
``n_init=10``) and three synthetic ones at the sizes embeddings are clustered at (Gaussian blobs,
float32, ``n_init=1``): 200,000 x 64 with k = 50, 1,000,000 x 32 with k = 100, and a codebook,
100,000 x 256 with k = 1000. For every size and seed both libraries fit the same float32 data with
the same ``n_init``, default ``tol``, the same ``random_state`` and the same thread count
(``torch.set_num_threads`` for ours, threadpoolctl for scikit-learn's OpenMP/BLAS).

Printed per size:

- the median wall time over the seeds and the ratio ours / scikit-learn (< 1: ours is faster);
  ``algorithm="lloyd"`` (no bounds) is timed on the first seeds too, to show what the bounds buy;
- the mean over the seeds of the inertia ratio ours / scikit-learn (< 1: ours found a lower
  objective) and the mean iterations (the libraries draw different seeds, so single runs differ);
  the ratio of the mean inertias with its standard error, because unpaired runs differ by chance;
- where a difference comes from: the inertia ratio when both run to convergence from the same
  centres (the iterations alone), and the ratio of the k-means++ potentials alone (the seeding),
  over more draws than full fits (``SEEDING_DRAWS``), with its standard error;
- the Lloyd loop alone: both start from the same centres (scikit-learn's k-means++) and run at
  most 10 iterations with ``tol=0`` (median of 3), so the time ratio compares the loops, fixed
  costs (validation, centring, the final inertia) included.

``--device cuda`` runs ours on a GPU (the data passed as NumPy arrays, so every fit includes the
copy to the device) against scikit-learn on the CPU threads. Then the peak memory of one fit at 10^6 points, each in a fresh process, at the default
``chunk_size`` and at an eighth of it: the distance blocks are ``chunk x n_init x k`` floats, and the
rest grows with n only (the data copies, the labels and the bounds), never with ``n x k``.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import time

import numpy as np
import torch
from sklearn.cluster import KMeans as SKKMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from threadpoolctl import threadpool_limits

from _measure import REPO, load_average, run_child, write_json
from mmc_teach.datasets import load
from mmc_teach.kmeans import _BLOCK_ELEMENTS, KMeans

# name, n, d, k, n_init, seeds timed with both libraries, seeds timed with algorithm="lloyd"
SIZES = {
    "cub10": ("CUB-10 image", 600, 1024, 10, 10, 10, 3),
    "mnist_usps": ("MNIST-USPS concat", 5000, 1568, 10, 10, 20, 3),
    "blobs_200k": ("blobs", 200_000, 64, 50, 1, 20, 3),
    "blobs_1m": ("blobs", 1_000_000, 32, 100, 1, 20, 3),
    "codebook": ("blobs (codebook)", 100_000, 256, 1000, 1, 10, 2),
}
# k-means++ alone, draws per library: cheaper than full fits, so more of them (the codebook's k = 1000
# seeding is most of its fit time).
SEEDING_DRAWS = {"cub10": 40, "mnist_usps": 40, "blobs_200k": 20, "blobs_1m": 20, "codebook": 10}


def data(key: str) -> tuple[np.ndarray, int]:
    name, n, d, k = SIZES[key][:4]
    if key == "cub10":
        return load("cub10").views[0].astype(np.float32), k
    if key == "mnist_usps":
        return np.hstack(load("mnist_usps").views).astype(np.float32), k
    return blobs(n, d, k), k


def blobs(n: int, d: int, k: int) -> np.ndarray:
    """Gaussian blobs as scikit-learn's ``make_blobs`` draws them (centres in [-10, 10]^d, std 4), in float32."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(-10, 10, size=(k, d)).astype(np.float32)
    X = rng.standard_normal((n, d), dtype=np.float32)  # float32 draws: no float64 copy of 10^6 rows
    X *= 4.0
    X += centres[rng.integers(0, k, size=n)]
    return X


def ratio_of_means(ours: list[float], theirs: list[float]) -> tuple[float, float]:
    """``mean(ours) / mean(theirs)`` and its standard error (delta method; independent draws).

    The two libraries draw different random numbers, so single runs are not paired: a mean ratio
    within about two standard errors of 1 is what two equally good seedings give.
    """
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    ratio = a.mean() / b.mean()
    rel_var = a.var(ddof=1) / (len(a) * a.mean() ** 2) + b.var(ddof=1) / (len(b) * b.mean() ** 2)
    return float(ratio), float(ratio * np.sqrt(rel_var))


def seeding_potentials(X: np.ndarray, k: int, draws: int) -> dict[str, list[float]]:
    """Inertia of the k-means++ centres alone (no Lloyd step), ours and scikit-learn's, per draw."""
    from mmc_teach.kmeans import kmeans_plusplus

    centred = X - X.mean(0)
    Xt = torch.from_numpy(centred)
    x_sq = (centred.astype(np.float64) ** 2).sum(1)

    def potential(centres: np.ndarray) -> float:
        c = centres.astype(np.float64)
        best = np.full(len(X), np.inf)
        for s in range(0, len(X), 20_000):  # exact float64 distances, chunked
            block = centred[s : s + 20_000].astype(np.float64)
            d = x_sq[s : s + 20_000, None] - 2 * block @ c.T + (c**2).sum(1)[None]
            best[s : s + 20_000] = d.min(1)
        return float(np.clip(best, 0, None).sum())

    ours = [potential(kmeans_plusplus(Xt, k, np.random.RandomState(seed))[0].numpy()) for seed in range(draws)]
    theirs = [potential(sk_kmeans_plusplus(centred, k, random_state=seed)[0]) for seed in range(draws)]
    return {"ours": ours, "sklearn": theirs}


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


MEMORY = r"""
import json, resource, numpy as np
from mmc_teach.kmeans import KMeans
{blobs_source}
X = blobs({n}, {d}, {k})
KMeans(2, n_init=1, random_state=0, device="cpu").fit(X[:500])  # thread pools and lazy imports first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
KMeans({k}, n_init={n_init}, random_state=0, device="cpu", chunk_size={chunk}).fit(X)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"before_fit_mib": before, "peak_mib": peak, "data_mib": X.nbytes / 2**20}}))
"""


def memory_rows(threads: int) -> list[dict]:
    n, d, k = 1_000_000, 32, 100
    rows = []
    for n_init in (1, 4):
        default = int(min(n, max(256, _BLOCK_ELEMENTS // (n_init * k))))
        for chunk in (default, default // 8):
            code = MEMORY.format(blobs_source=inspect.getsource(blobs), n=n, d=d, k=k, n_init=n_init, chunk=chunk)
            r = run_child(code, REPO, threads)
            r.update(n=n, d=d, k=k, n_init=n_init, chunk_size=chunk, block_mib=chunk * n_init * k * 4 / 2**20,
                     fit_extra_mib=r["peak_mib"] - r["before_fit_mib"])
            rows.append(r)
            print(f"  memory, {n:,} x {d}, k={k}, n_init={n_init}, chunk_size={chunk:>6}: distance block "
                  f"{r['block_mib']:5.1f} MiB, peak {r['peak_mib']:6.0f} MiB = {r['before_fit_mib']:5.0f} before the fit"
                  f" (the data is {r['data_mib']:.0f}) + {r['fit_extra_mib']:5.0f} during it", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="where mmc_teach.KMeans runs (e.g. cuda); scikit-learn runs on the CPU")
    parser.add_argument("--sizes", default=",".join(SIZES), help=f"comma-separated, of {', '.join(SIZES)}")
    parser.add_argument("--seeds-scale", type=float, default=1.0, help="multiply every seed count (quick runs)")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--out", default=None, help="also write the numbers as JSON (e.g. results/kmeans.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads}, load average {load_average()} at the start", flush=True)
    rows = []
    with threadpool_limits(limits=args.threads):
        small = np.random.RandomState(0).rand(500, 8).astype(np.float32)  # warm-up: thread pools, lazy imports
        KMeans(3, n_init=1, random_state=0, device=args.device).fit(small)
        SKKMeans(3, n_init=1, random_state=0).fit(small)
        for key in args.sizes.split(","):
            name, n, d, k, n_init, n_seeds, n_plain = SIZES[key]
            n_seeds, n_plain = max(1, round(n_seeds * args.seeds_scale)), max(1, round(n_plain * args.seeds_scale))
            X, k = data(key)
            runs = {"ours": [], "sklearn": [], "ours_lloyd": []}
            for seed in range(n_seeds):
                t, km = timed(lambda: KMeans(k, n_init=n_init, random_state=seed, device=args.device).fit(X))
                runs["ours"].append((t, km.inertia_, km.n_iter_))
                t, sk = timed(lambda: SKKMeans(k, n_init=n_init, random_state=seed).fit(X))
                runs["sklearn"].append((t, float(sk.inertia_), int(sk.n_iter_)))
                if seed < n_plain:
                    t, plain = timed(lambda: KMeans(k, n_init=n_init, random_state=seed, algorithm="lloyd", device=args.device).fit(X))
                    assert np.array_equal(plain.labels_, km.labels_), "the bounds changed a label"
                    runs["ours_lloyd"].append((t, plain.inertia_, plain.n_iter_))
            # the Lloyd loop alone, from the same start
            start = sk_kmeans_plusplus(X - X.mean(0), k, random_state=0)[0] + X.mean(0)
            loop_ours = statistics.median(
                timed(lambda: KMeans(k, init=start, max_iter=10, tol=0.0, device=args.device).fit(X))[0] for _ in range(3))
            loop_sk = statistics.median(
                timed(lambda: SKKMeans(k, init=start, n_init=1, max_iter=10, tol=0.0).fit(X))[0] for _ in range(3))
            # Where a difference in inertia comes from: the iterations (both from the same start,
            # run to convergence: ratio ~1 if the loops agree) or the seeding (its potential alone).
            same_start = (KMeans(k, init=start, device=args.device).fit(X).inertia_
                          / float(SKKMeans(k, init=start, n_init=1).fit(X).inertia_))
            seeding = seeding_potentials(X, k, max(2, round(SEEDING_DRAWS[key] * args.seeds_scale)))
            med = {lib: statistics.median(r[0] for r in v) for lib, v in runs.items()}
            ratios = [o[1] / s[1] for o, s in zip(runs["ours"], runs["sklearn"])]
            of_means, of_means_se = ratio_of_means([r[1] for r in runs["ours"]], [r[1] for r in runs["sklearn"]])
            seeding_ratio, seeding_se = ratio_of_means(seeding["ours"], seeding["sklearn"])
            row = {
                "key": key, "dataset": f"{name} ({n:,} x {d})", "n": n, "d": d, "k": k, "n_init": n_init,
                "seeds": n_seeds, "median_s": med,
                "time_ratio": med["ours"] / med["sklearn"],
                "time_ratio_lloyd": med["ours_lloyd"] / med["sklearn"],
                "bounds_speedup": statistics.median(r[0] for r in runs["ours_lloyd"])
                / statistics.median(r[0] for r in runs["ours"][: len(runs["ours_lloyd"])]),
                "inertia_ratio_mean": float(np.mean(ratios)), "inertia_ratio_min": float(min(ratios)),
                "inertia_ratio_max": float(max(ratios)),
                "inertia_ratio_of_means": of_means, "inertia_ratio_of_means_se": of_means_se,
                "same_start_inertia_ratio": same_start,
                "seeding_potential_ratio": seeding_ratio, "seeding_potential_ratio_se": seeding_se,
                "seeding_potentials": seeding,
                "iterations_mean": {lib: float(np.mean([r[2] for r in v])) for lib, v in runs.items() if lib != "ours_lloyd"},
                "loop_time_ratio": loop_ours / loop_sk,
                "runs": {lib: [{"seconds": t, "inertia": i, "n_iter": it} for t, i, it in v] for lib, v in runs.items()},
            }
            rows.append(row)
            print(f"{row['dataset']}, k={k}, n_init={n_init}, {n_seeds} seeds: median ours {med['ours']:.2f} s, "
                  f"scikit-learn {med['sklearn']:.2f} s, time ratio {row['time_ratio']:.2f} "
                  f"(without bounds {row['time_ratio_lloyd']:.2f}; the bounds are {row['bounds_speedup']:.1f}x faster); "
                  f"inertia ratio mean {row['inertia_ratio_mean']:.4f} (range {row['inertia_ratio_min']:.4f}-"
                  f"{row['inertia_ratio_max']:.4f}), ratio of the mean inertias {of_means:.4f} +- {of_means_se:.4f} "
                  f"(standard error); from the same start {same_start:.5f}; k-means++ alone, {len(seeding['ours'])} "
                  f"draws each: potential ratio {seeding_ratio:.4f} +- {seeding_se:.4f}; "
                  f"iterations {row['iterations_mean']['ours']:.1f} vs "
                  f"{row['iterations_mean']['sklearn']:.1f}; same start, 10 iterations: time ratio "
                  f"{row['loop_time_ratio']:.2f}", flush=True)
    memory = [] if args.no_memory else memory_rows(args.threads)
    print(f"load average {load_average()} at the end", flush=True)
    if args.out:
        write_json({"threads": args.threads, "device": args.device, "torch": torch.__version__,
                    "sklearn": __import__("sklearn").__version__, "rows": rows, "memory": memory}, args.out)


if __name__ == "__main__":
    main()
