"""Peak memory of one training epoch per method at n = 2k, 8k and 32k samples.

    python benchmarks/memory.py                 # this working tree
    python benchmarks/memory.py --baseline 6fd7be7 --methods CMMC   # the same for an earlier commit

Synthetic data of MNIST-USPS width (two views of 784 features, uniform in [0, 1]; the numbers of
a clustering do not matter here, only the sizes). Every (method, n) runs in a fresh process that
builds the data, records its resident memory, fits one epoch of every phase of the method with its
default architecture, and reports the peak resident memory (``ru_maxrss``). The check: memory must
not grow with n beyond the data itself, ``peak(32k) <= 1.5 * peak(2k) + data(32k)``.
The wall time of that one-epoch fit is recorded too (``fit_seconds``): it should grow linearly with n.
Output: a table on stdout and ``benchmarks/results/memory.json``.
"""

from __future__ import annotations

import argparse

from _measure import REPO, package_root, run_child, write_json

FIT = r"""
import json, resource, time, numpy as np
n = {n}
rng = np.random.default_rng(0)  # float32 draws: no float64 temporary inflates the peak
X, Y = rng.random((n, 784), dtype=np.float32), rng.random((n, 784), dtype=np.float32)
data_mib = (X.nbytes + Y.nbytes) / 2**20
import mmc_teach
method = "{method}"
# import everything the fit uses before the baseline, so the figure is training, not imports
from mmc_teach import kmeans, nn, metrics
getattr(mmc_teach, method)
start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
clock = time.perf_counter()
if method in ("DEC", "IDEC"):
    getattr(mmc_teach, method)(10, pretrain_epochs=1, epochs=1, random_state=0).fit(X)
elif method == "JECL":
    mmc_teach.JECL(10, pretrain_epochs=1, epochs=1, random_state=0).fit([X, Y])
elif method == "DM2C":
    mmc_teach.DM2C(10, pretrain_epochs=1, epochs=1, random_state=0).fit([X[: n // 2], Y[n // 2 :]])
elif method == "CMMC":
    mmc_teach.CMMC(10, pretrain_epochs=1, contrastive_epochs=1, finetune_epochs=1, random_state=0).fit([X, Y])
seconds = time.perf_counter() - clock
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"peak_mib": peak, "before_fit_mib": start, "data_mib": data_mib, "fit_seconds": seconds}}))
"""

METHODS = ("DEC", "IDEC", "JECL", "DM2C", "CMMC")
SIZES = (2000, 8000, 32000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to measure instead of this working tree")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="default benchmarks/results/memory.json (or memory_<rev>.json)")
    args = parser.parse_args()
    root = package_root(args.baseline)
    report: dict = {"baseline": args.baseline, "sizes": list(SIZES), "results": {}}
    print(f"{'method':6s} " + "".join(f"{f'peak at {n // 1000}k':>14s}" for n in SIZES)
          + f"{'data at 32k':>13s}{'bound':>9s}  within", flush=True)
    for method in args.methods.split(","):
        rows = {n: run_child(FIT.format(method=method, n=n), root, args.threads) for n in SIZES}
        small, large = rows[SIZES[0]], rows[SIZES[-1]]
        bound = 1.5 * small["peak_mib"] + large["data_mib"]
        ok = large["peak_mib"] <= bound
        report["results"][method] = {"per_n": {str(n): r for n, r in rows.items()}, "bound_mib": bound, "within": ok}
        print(f"{method:6s} " + "".join(f"{rows[n]['peak_mib']:10.0f} MiB" for n in SIZES)
              + f"{large['data_mib']:9.0f} MiB{bound:6.0f} MiB  {'yes' if ok else 'NO'}", flush=True)
        print(f"{'':6s} " + "".join(f"{rows[n]['fit_seconds']:12.1f} s" for n in SIZES) + "  (one epoch of every phase)", flush=True)
    suffix = f"_{args.baseline}" if args.baseline else ""
    write_json(report, args.out or REPO / "benchmarks" / "results" / f"memory{suffix}.json")


if __name__ == "__main__":
    main()
