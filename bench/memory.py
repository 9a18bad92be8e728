"""Peak memory of the whole process tree of `ponder up` with the two default pools.

Starts `ponder up` (default config except ports and cache dir), waits until the
router answers, sends one request to each pool so both models are loaded and
have generated, and samples the tree's memory every 0.2 s throughout.
Reports the sum of RSS (counts shared pages once per process, so it
over-states) and of PSS (shared pages split between processes).

Usage: .venv/bin/python bench/memory.py [--plot PNG]
Prints one JSON object; target: peak_rss_mb <= 3000.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import PONDER, emit, free_port, tree_memory_mb, tree_pids, wait_port, write_config  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--plot")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ponder-mem-"))
    router_port = free_port()
    cfg = {
        "router": {"port": router_port},
        "serve": {"grpc_port": free_port(), "http_port": free_port()},
    }
    path = write_config(tmp / "ponder.yaml", cfg)
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    proc = subprocess.Popen([PONDER, "up", "--config", str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: list[tuple[float, float, float]] = []
    stop = threading.Event()
    t0 = time.monotonic()

    def sample() -> None:
        while not stop.is_set():
            rss, pss = tree_memory_mb(proc.pid)
            samples.append((time.monotonic() - t0, rss, pss))
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    answers = {}
    try:
        wait_port(router_port, timeout_s=300, proc=proc)
        for pool in ("small", "reasoning"):
            out = subprocess.run(
                [PONDER, "ask", "The capital of France is", "--pool", pool, "--max-tokens", "16", "--json",
                 "--address", f"127.0.0.1:{router_port}"],
                capture_output=True, text=True, timeout=300,
            )
            if out.returncode != 0:
                raise RuntimeError(f"ask --pool {pool} failed: {out.stderr}")
            answers[pool] = json.loads(out.stdout)["usage"]["output_tokens"]
        time.sleep(2)
        processes = len(tree_pids(proc.pid))
    finally:
        stop.set()
        th.join()
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    peak_rss = max(s[1] for s in samples)
    peak_pss = max(s[2] for s in samples)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot([s[0] for s in samples], [s[1] for s in samples], label="sum RSS")
        ax.plot([s[0] for s in samples], [s[2] for s in samples], label="sum PSS")
        ax.axhline(3000, color="red", linestyle="--", label="target")
        ax.set_xlabel("seconds since `ponder up`")
        ax.set_ylabel("MiB")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    emit({
        "bench": "memory",
        "peak_rss_mb": round(peak_rss, 1),
        "peak_pss_mb": round(peak_pss, 1),
        "processes": processes,
        "output_tokens": answers,
        "exit_code": proc.returncode,
        "target": {"peak_rss_mb": 3000},
        "meets_target": peak_rss <= 3000,
    })


if __name__ == "__main__":
    main()
