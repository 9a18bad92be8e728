"""``ponder report``: run the benchmarks (``--quick`` or full) or read saved results (``--from DIR``), write Markdown + PNGs."""
from __future__ import annotations

import pathlib


def cmd_report(args) -> int:
    from ponder.report.build import build_report
    from ponder.report.runner import run_benchmarks

    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    out = pathlib.Path(args.out)
    if args.from_dir:
        src = pathlib.Path(args.from_dir)
    else:
        src = pathlib.Path(args.results or out / "results")
        run_benchmarks(src, quick=args.quick, names=only, bench_dir=args.bench_dir)
    md = build_report(src, out, only)
    print(f"wrote {md}")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="run the benchmarks (or read their saved JSON) and write a Markdown report with plots")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--from", dest="from_dir", metavar="DIR",
                     help="build from saved results (NAME.json per benchmark, as `ponder report` saves them)")
    src.add_argument("--quick", action="store_true", help="run the quick set (smaller samples; a few minutes)")
    p.add_argument("--out", default="docs/report", help="folder for report.md and the PNGs (default docs/report)")
    p.add_argument("--results", metavar="DIR", help="where runs save their JSON (default OUT/results)")
    p.add_argument("--only", metavar="NAMES", help="comma-separated sections (router_cv, budget, overhead, voting_scale)")
    p.add_argument("--bench-dir", type=pathlib.Path, help="the benchmarks' folder (default: bench/ of this checkout)")
    p.set_defaults(func=cmd_report)
