"""Command line: ``python -m mmc_teach bench ...``, ``render ...`` and ``gpu-check``.

Exit status: 0 when a report was written or rendered (``bench`` still lists its failed pairs); 1 when
every pair failed or the report could not be written; 2 for arguments that leave nothing to run, an
``--out`` that cannot be written (checked before any training) or a file that is not a benchmark
report; 130 when interrupted (``--out`` is left as it was, the finished pairs are in the partial file).
"""

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
    bench.add_argument("--out", default="results/bench.json", help="where to write the JSON report; until the run is complete it checkpoints to <name>.partial.json "
                       "next to it and leaves --out as it was")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar")
    bench.add_argument("--update", action="store_true",
                       help="replace only the pairs this run computes in the existing --out report and keep the others")

    render = commands.add_parser("render", help="render a JSON report as a table and a figure")
    render.add_argument("report", help="the JSON written by `bench`")
    render.add_argument("--metric", default="acc", help="acc, nmi, ari, f, purity or wall_time_s")
    render.add_argument("--format", dest="fmt", choices=["markdown", "html"], default="markdown")
    render.add_argument("--out", default=None, help="write the table here instead of printing it")
    render.add_argument("--figure", default=None, help="also save a bar chart (PNG) here")

    gpu = commands.add_parser("gpu-check", help="fit every estimator on the GPU and the CPU, compare, write results/gpu.json")
    gpu.add_argument("--out", default="results/gpu.json", help="where to write the JSON report")
    gpu.add_argument("--require", action="store_true", help="exit 1 when no GPU is found (default: say so and exit 0)")
    gpu.add_argument("--data-home", default=None, help="data directory (default: $MMC_TEACH_DATA or the cache)")
    return parser


def _error(command: str, message: object, status: int = 2) -> int:
    print(f"mmc-teach {command}: error: {message}", file=sys.stderr)
    return status


def _bench(args: argparse.Namespace) -> int:
    from . import bench as bench_module

    if not args.methods:
        return _error("bench", f"--methods names no method; choose from {','.join(bench_module.METHODS)}.")
    if not args.datasets:
        return _error("bench", "--datasets names no data set.")
    try:  # before any training: a bad --out must not cost a finished run
        out = bench_module.check_output_path(args.out)
    except OSError as err:
        return _error("bench", f"--out: {err}")
    previous = None
    if args.update:  # read before any training: a missing or broken --out must not cost a finished run
        try:
            with open(out) as handle:
                previous = json.load(handle)
            bench_module._checked_results(previous, "acc")
        except (OSError, ValueError) as err:
            return _error("bench", f"--update needs a complete report in --out: {out}: {err}")
        requested = {"seeds": [args.seed] if args.seed is not None else list(range(args.seeds)),
                     "schedule": "quick" if args.quick else args.schedule}
        for key, value in requested.items():
            if previous.get("meta", {}).get(key) != value:
                return _error("bench", f"--update: {out} was made with {key}={previous.get('meta', {}).get(key)!r}, "
                                       f"this run would use {value!r}: the numbers would not be comparable.")
    # Checkpoints go to a file of their own, so an interrupted run never replaces a complete --out.
    partial = bench_module.partial_path(out)
    try:
        report = bench_module.run_benchmark(
            args.methods, args.datasets, seeds=[args.seed] if args.seed is not None else args.seeds,
            device=args.device, schedule="quick" if args.quick else args.schedule, data_home=args.data_home,
            verbose=not args.no_progress, checkpoint=partial,
        )
    except KeyboardInterrupt:
        kept = f"the finished pairs are in {partial}" if partial.exists() else "no pair had finished"
        return _error("bench", f"interrupted; {out} left as it was, {kept}.", 130)
    except (ValueError, OSError) as err:  # bad arguments or data that cannot be loaded
        return _error("bench", err)
    for line in report["meta"]["inapplicable"]:
        print("  skipped (not applicable)", line, file=sys.stderr)
    failed = [f"{r['method']}/{r['dataset']}: {r['error']}" for r in report["results"] if r["error"]]
    for line in failed:
        print("  failed", line, file=sys.stderr)
    if len(failed) == len(report["results"]):
        partial.unlink(missing_ok=True)
        return _error("bench", f"every pair failed ({len(failed)}); {out} was not written.", 1)
    if previous is not None:
        try:
            report = bench_module.update_report(previous, report)
        except ValueError as err:
            return _error("bench", f"--update: {err} {out} left as it was, the new pairs are in {partial}.")
    try:
        bench_module.write_json(report, out)
    except OSError as err:
        return _error("bench", f"could not write {out} ({err}); the report is in {partial}.", 1)
    partial.unlink(missing_ok=True)
    print(f"wrote {out}: {len(report['results'])} pairs, {len(failed)} failed")
    return 0


def _render(args: argparse.Namespace) -> int:
    from . import bench as bench_module

    try:
        with open(args.report) as handle:
            report = json.load(handle)
        table = bench_module.render_table(report, args.metric, args.fmt)
    except (OSError, ValueError) as err:  # unreadable, not JSON, or not a benchmark report
        return _error("render", f"{args.report}: {err}")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 only when a usable report was written or rendered)."""
    args = build_parser().parse_args(argv)
    if args.command == "gpu-check":
        from .gpu_check import main as gpu_check

        return gpu_check(args.out, require=args.require, data_home=args.data_home)
    return _bench(args) if args.command == "bench" else _render(args)


if __name__ == "__main__":
    sys.exit(main())
