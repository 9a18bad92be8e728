"""Shared benchmark helpers: percentiles, process-tree memory, free ports, config files, JSON output."""
from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Shared outcome tables, read in place beside the project.
DATA_DIR = ROOT.parent / "shared" / "data"
# RouteLLM's MMLU outcome tables.
MMLU_DIR = DATA_DIR / "routellm-mmlu"
MMLU_WEAK = "mistralai/Mixtral-8x7B-Instruct-v0.1"
MMLU_STRONG = "gpt-4-1106-preview"
PONDER = str(pathlib.Path(sys.executable).parent / "ponder")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile, q in [0, 100]."""
    s = sorted(values)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, int(round(q / 100 * (len(s) - 1)))))
    return s[k]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: pathlib.Path, cfg: dict) -> pathlib.Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


def wait_port(port: int, timeout_s: float = 120.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listening on {port} after {timeout_s}s")


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def tree_memory_mb(root: int) -> tuple[float, float]:
    """(sum of RSS, sum of PSS) over a process tree, in MiB. PSS splits shared pages fairly."""
    rss = pss = 0
    for pid in tree_pids(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss / 1024, pss / 1024


def emit(result: dict) -> None:
    """Print the one JSON object a benchmark reports, last."""
    print(json.dumps(result, sort_keys=True))


def thin(values, points: int = 201) -> list[float]:
    """At most ``points`` evenly spaced entries of ``values`` (first and last always kept), rounded for JSON.
    Lets a benchmark's JSON carry the series its plot draws without carrying every sample."""
    n = len(values)
    if n <= points:
        idx = range(n)
    else:
        idx = sorted({round(i * (n - 1) / (points - 1)) for i in range(points)})
    return [round(float(values[i]), 6) for i in idx]


def quantiles(values, points: int = 101) -> list[float]:
    """``points`` nearest-rank quantiles from 0 to 100 % (a CDF's support), in the values' unit; [] when empty."""
    if not len(values):
        return []
    return [round(percentile(values, 100 * i / (points - 1)), 6) for i in range(points)]


def spread(items: list, count: int) -> list:
    """``count`` items evenly spread over ``items`` (all of them when count is 0 or covers the list)."""
    if count <= 0 or count >= len(items):
        return list(items)
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)] if count > 1 else [items[0]]
