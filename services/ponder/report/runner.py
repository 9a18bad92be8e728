"""Run the benchmarks behind the report and save what each prints last as ``NAME.json``.

Each section's script runs as ``python bench/SCRIPT ARGS`` with this
interpreter and this package first on ``PYTHONPATH``, one after another (they
time things; running them side by side would skew each other). stdout's last
non-empty line is saved as ``NAME.json``, stderr as ``NAME.log``, and
``runs.json`` records the mode, revision, arguments and seconds per run
(kept across invocations into one folder). A
script that exits non-zero or prints no JSON raises ``BenchmarkFailed`` naming
the script and its log, after the results already saved.
"""
from __future__ import annotations

import datetime
import json
import os
import pathlib
import subprocess
import sys
import time

import ponder
from ponder.common.errors import Aborted, FailedPrecondition
from ponder.report.build import RUNS_FILE
from ponder.report.sections import SECTIONS, check_names


class BenchmarkFailed(Aborted):
    def __init__(self, script: str, log: pathlib.Path, why: str):
        self.script, self.log = script, log
        tail = log.read_text()[-800:] if log.exists() else ""
        super().__init__(f"bench/{script} {why}; see {log}" + (f"\n{tail}" if tail else ""))


class NoBenchDir(FailedPrecondition):
    def __init__(self, where: pathlib.Path):
        super().__init__(f"no benchmarks at {where}: they live in the source tree's bench/ folder; pass --bench-dir, "
                         f"or build from saved results with --from DIR")


def default_bench_dir() -> pathlib.Path:
    """``bench/`` of the source checkout this package runs from."""
    return pathlib.Path(ponder.__file__).resolve().parent.parent.parent / "bench"


def _revision(root: pathlib.Path) -> str:
    try:
        r = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return r.stdout.strip() or "unknown"


def run_benchmarks(out_dir: pathlib.Path, quick: bool, names: list[str] | None = None,
                   bench_dir: pathlib.Path | None = None, echo=print,
                   args_for: dict[str, list[str]] | None = None) -> pathlib.Path:
    """Run the sections' benchmarks (quick or full arguments, or ``args_for[name]`` where given) into ``out_dir``;
    returns ``out_dir``."""
    bench_dir = pathlib.Path(bench_dir or default_bench_dir())
    names = check_names(names)
    missing = [n for n in names if not (bench_dir / SECTIONS[n].script).is_file()]
    if missing:
        raise NoBenchDir(bench_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pkg_root = pathlib.Path(ponder.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(pkg_root), os.environ.get("PYTHONPATH")) if p),
           "MPLBACKEND": "Agg"}
    # Arguments given per benchmark make a "custom" run: neither the quick set's figures nor the full ones.
    mode = "custom" if args_for else "quick" if quick else "full"
    # Earlier runs into the same folder stay listed: a rerun of one benchmark keeps the others' records.
    old = out_dir / RUNS_FILE
    runs: dict = json.loads(old.read_text()) if old.exists() else {}
    runs.update({"mode": mode, "revision": _revision(bench_dir)})
    runs.setdefault("runs", {})
    for name in names:
        sec = SECTIONS[name]
        args = list((args_for or {}).get(name, sec.quick_args if quick else sec.full_args))
        log = out_dir / f"{name}.log"
        echo(f"running bench/{sec.script} {' '.join(args)}".rstrip())
        t0 = time.monotonic()
        with log.open("w") as err:
            proc = subprocess.run([sys.executable, str(bench_dir / sec.script), *args], stdout=subprocess.PIPE,
                                  stderr=err, text=True, env=env, cwd=bench_dir.parent)
        seconds = round(time.monotonic() - t0, 1)
        lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
        if proc.returncode != 0:
            raise BenchmarkFailed(sec.script, log, f"exited with status {proc.returncode}")
        try:
            result = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            result = None
        if not isinstance(result, dict):
            raise BenchmarkFailed(sec.script, log, "printed no JSON object last")
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        runs["runs"][name] = {"script": sec.script, "args": args, "seconds": seconds, "mode": mode}
        runs["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        (out_dir / RUNS_FILE).write_text(json.dumps(runs, indent=1, sort_keys=True) + "\n")
        echo(f"  {name}: {seconds} s")
    return out_dir
