"""Samples per second of one training epoch, per method, before and after a change, in one run.

    python benchmarks/throughput.py                      # against the commit before the shared loop
    python benchmarks/throughput.py --baseline HEAD~3 --repeats 5

Data: MNIST-USPS (5,000 pairs of 784-pixel digits; the single-view methods use the MNIST view, DM2C
a mixed split of 2,500 MNIST and 2,500 USPS digits). Each method runs with the baseline's default
architecture (DEC/IDEC pinned to its 500-500-2000-10, CMMC to its 500-500-2000; DM2C's is unchanged); an epoch's time is ``(t(3 epochs) - t(1 epoch)) / 2`` so that pretraining-free setup
(k-means initialisation, target computation before the first step) cancels. Versions alternate
within every repeat so that a change in the machine's load hits both alike; the figure is the
median over repeats, and the ratio ``after / before`` of samples per second is what compares.
Output: a table on stdout and ``benchmarks/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from _measure import REPO, load_average, package_root, run_child, write_json

BEFORE = "6fd7be7"  # the last commit with one hand-written loop per method

# Fit with E epochs of the method's own training phase and no pretraining; prints the seconds.
FIT = r"""
import json, time, numpy as np
from mmc_teach import datasets
ds = datasets.load("mnist_usps")
X, Y = ds.views
E = {epochs}
method = "{method}"
t = time.perf_counter()
if method == "pretraining":
    import torch
    from mmc_teach.nn import MLPAutoencoder, pretrain_autoencoder
    torch.manual_seed(0)
    pretrain_autoencoder(MLPAutoencoder(784, (500, 500, 2000, 10)), torch.from_numpy(X), epochs=E)
elif method in ("DEC", "IDEC"):
    import mmc_teach
    # The architecture pinned: the defaults changed after the baseline (2000- to 1000-wide third layer).
    getattr(mmc_teach, method)(10, hidden_dims=(500, 500, 2000, 10), pretrain_epochs=0, epochs=E, tol=0.0,
                               random_state=0).fit(X)
elif method == "JECL":
    from mmc_teach import JECL
    JECL(10, pretrain_epochs=0, epochs=E, tol=0.0, random_state=0).fit([X, Y])
elif method == "DM2C":
    from mmc_teach import DM2C
    DM2C(10, pretrain_epochs=0, epochs=E, random_state=0).fit([X[:2500], Y[2500:]])
elif method == "CMMC":
    from mmc_teach import CMMC
    # The baseline's default network (the default became 256-256-128 after it).
    CMMC(10, hidden_dims=(500, 500, 2000), pretrain_epochs=0, contrastive_epochs=E, finetune=False,
         random_state=0).fit([X, Y])
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""

METHODS = ("pretraining", "DEC", "IDEC", "JECL", "DM2C", "CMMC")
SAMPLES = {"pretraining": 5000, "DEC": 5000, "IDEC": 5000, "JECL": 5000, "DM2C": 5000, "CMMC": 5000}


def epoch_seconds(method: str, root: Path, threads: int) -> float:
    one = run_child(FIT.format(method=method, epochs=1), root, threads)["seconds"]
    three = run_child(FIT.format(method=method, epochs=3), root, threads)["seconds"]
    return max(three - one, 1e-9) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BEFORE, help="git revision of the 'before' library (default %(default)s)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "throughput.json"))
    args = parser.parse_args()
    roots = {"before": package_root(args.baseline), "after": package_root(None)}
    loads = [load_average()]
    times: dict[str, dict[str, list[float]]] = {}
    for method in args.methods.split(","):
        times[method] = {"before": [], "after": []}
        for _ in range(args.repeats):
            for version, root in roots.items():
                times[method][version].append(epoch_seconds(method, root, args.threads))
        loads.append(load_average())
        b, a = (statistics.median(times[method][v]) for v in ("before", "after"))
        print(f"{method:12s} before {SAMPLES[method] / b:8.0f} samples/s   after {SAMPLES[method] / a:8.0f} samples/s"
              f"   ratio {b / a:5.2f}", flush=True)
    report = {"baseline": args.baseline, "threads": args.threads, "repeats": args.repeats,
              "load_average_1min": loads, "epoch_seconds": times,
              "samples_per_second": {m: {v: SAMPLES[m] / statistics.median(t[v]) for v in t} for m, t in times.items()},
              "ratio_after_over_before": {m: statistics.median(t["before"]) / statistics.median(t["after"])
                                          for m, t in times.items()}}
    write_json(report, args.out)
    print(f"load average (1 min) during the run: {', '.join(loads)}")


if __name__ == "__main__":
    main()
