"""How cost grows with n: k-means fit and one DEC clustering epoch at n = 1k .. 100k.

    python benchmarks/scaling.py [--device cpu] [--out results/scaling.json]

Data: MNIST-USPS digits (both views stacked, 10,000 x 784) resampled with replacement plus a little
noise to reach each n, so the geometry stays that of real digits. Prints a table and the fitted
log-log slope (1.0 = linear in n); writes the numbers as JSON for the benchmark chapter.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from mmc_teach import DEC, KMeans
from mmc_teach._base import get_device
from mmc_teach.bench import write_json
from mmc_teach.datasets import load

SIZES = (1_000, 3_000, 10_000, 30_000, 100_000)


def digits(n: int, seed: int = 0) -> np.ndarray:
    data = load("mnist_usps")
    pool = np.vstack(data.views)
    rng = np.random.RandomState(seed)
    X = pool[rng.randint(0, len(pool), size=n)]
    return (X + rng.normal(scale=0.01, size=X.shape)).astype(np.float32)


def time_it(fn, repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs: other processes only ever add time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/scaling.json")
    args = parser.parse_args()
    device = str(get_device(args.device))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    print(f"device {device}, torch threads {torch.get_num_threads()}")
    print(f"{'n':>8} {'kmeans fit (s)':>15} {'DEC epoch (s)':>14}")
    for n in sizes:
        X = digits(n)
        t_kmeans = time_it(lambda: KMeans(10, n_init=1, max_iter=20, tol=0, random_state=0, device=device).fit(X), args.repeats)
        # One clustering epoch = (DEC with 4 epochs - DEC with 1 epoch) / 3, both without pretraining:
        # the difference removes the set-up and the k-means initialisation. tol=0: no early stop.
        def dec(epochs: int) -> None:
            DEC(10, pretrain_epochs=0, epochs=epochs, tol=0, random_state=0, device=device, n_init=1).fit(X)
        t_dec = max((time_it(lambda: dec(4), args.repeats) - time_it(lambda: dec(1), args.repeats)) / 3, 0.0)
        rows.append({"n": n, "kmeans_s": round(t_kmeans, 4), "dec_epoch_s": round(t_dec, 4)})
        print(f"{n:>8} {t_kmeans:>15.3f} {t_dec:>14.3f}")
    ns = np.log([r["n"] for r in rows])
    slopes = {key: float(np.polyfit(ns, np.log([max(r[key], 1e-6) for r in rows]), 1)[0]) for key in ("kmeans_s", "dec_epoch_s")}
    print("log-log slope: " + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()))
    write_json({"device": device, "torch_threads": torch.get_num_threads(), "rows": rows,
                "slopes": {k: round(v, 3) for k, v in slopes.items()}}, args.out)


if __name__ == "__main__":
    main()
