"""Run ``pytest --nbval`` on the chapters several times in a row and report flaky cells.

    python benchmarks/nbval_repeat.py            # 3 runs over book/*.ipynb
    python benchmarks/nbval_repeat.py --runs 5 book/02_kmeans.ipynb

A cell that fails in some runs but not all is flaky (its output is not reproducible); a cell
that fails in every run is simply broken. Prints one line per run (time, failures) and a summary;
exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAILED = re.compile(r"^FAILED (\S+)", re.MULTILINE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="default: every book/*.ipynb")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    notebooks = args.notebooks or sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book").glob("*.ipynb"))
    failures: Counter[str] = Counter()
    any_failed = False
    for run in range(1, args.runs + 1):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pytest", "--nbval", "-q", "-rf", *notebooks],
                              cwd=ROOT, capture_output=True, text=True)
        cells = FAILED.findall(proc.stdout)
        failures.update(cells)
        any_failed |= proc.returncode != 0
        print(f"run {run}: {time.perf_counter() - start:.0f} s, exit {proc.returncode}, {len(cells)} failing cells")
    flaky = sorted(c for c, n in failures.items() if n < args.runs)
    broken = sorted(c for c, n in failures.items() if n == args.runs)
    print(f"flaky cells ({len(flaky)}):", *flaky, sep="\n  ")
    print(f"always failing cells ({len(broken)}):", *broken, sep="\n  ")
    return 1 if any_failed else 0


if __name__ == "__main__":
    sys.exit(main())
