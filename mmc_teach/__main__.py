"""Command line: ``python -m mmc_teach bench ...`` and ``python -m mmc_teach render ...``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    from .bench import DATASETS, METHODS

    parser = argparse.ArgumentParser(prog="mmc-teach", description="Benchmarks of the mmc_teach book.")
    commands = parser.add_subparsers(dest="command", required=True)

    bench = commands.add_parser("bench", help="run methods x data sets x seeds and write a JSON report")
    bench.add_argument("--methods", type=_csv, default=list(METHODS), help="comma-separated, from: " + ",".join(METHODS))
    bench.add_argument("--datasets", type=_csv, default=list(DATASETS), help="comma-separated data set names")
    bench.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ..., N-1)")
    bench.add_argument("--seed", type=int, default=None, help="run this one seed only (rerun a single result)")
    bench.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    bench.add_argument("--schedule", choices=["cpu", "paper", "quick"], default="cpu",
                       help="cpu (default: about an hour on 2 cores), paper (the papers' settings), quick (smoke test)")
    bench.add_argument("--quick", action="store_true", help="the same as --schedule quick")
    bench.add_argument("--data-home", default=None, help="data directory (default: $MMC_TEACH_DATA or the cache)")
    bench.add_argument("--out", default="results/bench.json", help="where to write the JSON report")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")

    render = commands.add_parser("render", help="render a JSON report as a table and a figure")
    render.add_argument("report", help="the JSON written by `bench`")
    render.add_argument("--metric", default="acc", help="acc, nmi, ari, f, purity or wall_time_s")
    render.add_argument("--format", dest="fmt", choices=["markdown", "html"], default="markdown")
    render.add_argument("--out", default=None, help="write the table here instead of printing it")
    render.add_argument("--figure", default=None, help="also save a bar chart (PNG) here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from . import bench as bench_module

    args = build_parser().parse_args(argv)
    if args.command == "bench":
        report = bench_module.run_benchmark(
            args.methods, args.datasets, seeds=[args.seed] if args.seed is not None else args.seeds,
            device=args.device, schedule="quick" if args.quick else args.schedule, data_home=args.data_home, verbose=not args.no_progress,
            checkpoint=args.out,
        )
        bench_module.write_json(report, args.out)
        failed = [f"{r['method']}/{r['dataset']}: {r['error']}" for r in report["results"] if r["error"]]
        print(f"wrote {args.out}: {len(report['results'])} pairs, {len(failed)} failed")
        for line in failed:
            print("  failed", line, file=sys.stderr)
        return 0
    with open(args.report) as handle:
        report = json.load(handle)
    table = bench_module.render_table(report, args.metric, args.fmt)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(table + "\n")
    else:
        print(table)
    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        bench_module.render_figure(report, args.metric, args.figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
