"""Router-added latency: (client -> router -> sim pool) minus (client -> the same sim pool),
and the router's CPU time per request.

The pool (sim backend with zero latency, so only the serving path is timed),
the router (with its Redis outcome log on) and this client run as separate
processes, as in production. Calls through the router and direct calls are
interleaved so machine noise hits both alike. Concurrency 1 and 16. The
router's CPU per request (µs) comes from its own process counters
(/proc/PID/stat user + system time) over each run: a figure that does not
depend on how busy the machine is.

``--baseline REV`` also starts the router of git revision REV (checked out
into a temporary worktree) against the same pool and interleaves its calls
with the others, so before/after figures come from one run.

The floor is measured alongside: a bare grpc.aio relay (``bench/_relay.py``,
no logic, the router's event loop) between client and pool. Its added
latency and CPU are what one extra Python gRPC hop costs on this machine;
the ``floor`` object reports them, and ``router_own_cpu_us_per_request`` is
the router's CPU beyond the relay's.

Usage: .venv/bin/python bench/overhead.py [--calls N] [--baseline REV] [--plot PNG]
Prints one JSON object; targets: added_p50_ms <= 1.0 at concurrency 1 and <= 4.0 at 16.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import pathlib

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import PONDER, emit, free_port, percentile, quantiles, wait_port, write_config  # noqa: E402

import grpc  # noqa: E402

from ponder.common.redis_server import LocalRedis  # noqa: E402
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc  # noqa: E402

PROMPT = "What is the capital of France?"


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc)."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(routers: dict[str, tuple[str, int]], pool_addr: str, calls: int, concurrency: int,
                  pool_pid: int) -> dict:
    """Interleave calls through every router in ``routers`` (name -> (address, pid)) and direct to the pool."""
    channels = [grpc.aio.insecure_channel(a) for a, _ in routers.values()]
    stubs = {name: router_pb2_grpc.RouterStub(ch) for name, ch in zip(routers, channels)}
    pch = grpc.aio.insecure_channel(pool_addr)
    pool = pool_pb2_grpc.ModelPoolStub(pch)
    sampling = common_pb2.SamplingParams(max_tokens=8)
    rreq = router_pb2.GenerateRequest(prompt=PROMPT, sampling=sampling)
    preq = pool_pb2.PoolGenerateRequest(prompt=PROMPT, sampling=sampling)
    meta = (("application", "small"),)
    lat: dict[str, list[float]] = {}

    async def via(name: str):
        t = time.perf_counter()
        await stubs[name].Generate(rreq, timeout=10)
        lat[name].append((time.perf_counter() - t) * 1000)

    async def direct():
        t = time.perf_counter()
        await pool.Generate(preq, metadata=meta, timeout=10)
        lat["direct"].append((time.perf_counter() - t) * 1000)

    paths = [direct, *(lambda n=n: via(n) for n in routers)]
    lat = {k: [] for k in ["direct", *routers]}
    for _ in range(200):  # warm every path (channels, caches)
        for f in paths:
            await f()
    lat = {k: [] for k in ["direct", *routers]}
    cpu0 = {name: cpu_s(pid) for name, (_, pid) in routers.items()}
    pool_cpu0 = cpu_s(pool_pid)

    async def worker(n: int, offset: int):
        for i in range(n):
            # Rotate which path goes first so none always follows another.
            k = (i + offset) % len(paths)
            for f in paths[k:] + paths[:k]:
                await f()

    per = calls // concurrency
    await asyncio.gather(*(worker(per, j) for j in range(concurrency)))
    cpu1 = {name: cpu_s(pid) for name, (_, pid) in routers.items()}
    pool_cpu1 = cpu_s(pool_pid)
    for ch in channels:
        await ch.close()
    await pch.close()
    d = lat["direct"]
    # The pool serves every path's calls; its CPU per call is what one bare grpc.aio hop costs here.
    pool_calls = len(d) + sum(len(lat[n]) for n in routers)
    out = {"calls": len(d), "direct_p50_ms": round(percentile(d, 50), 4), "direct_p99_ms": round(percentile(d, 99), 4),
           "pool_cpu_us_per_request": round((pool_cpu1 - pool_cpu0) / pool_calls * 1e6, 1), "_direct": d}
    for name in routers:
        r = lat[name]
        out[name] = {
            "router_p50_ms": round(percentile(r, 50), 4),
            "router_p99_ms": round(percentile(r, 99), 4),
            "added_p50_ms": round(percentile(r, 50) - percentile(d, 50), 4),
            "added_p99_ms": round(percentile(r, 99) - percentile(d, 99), 4),
            "router_cpu_us_per_request": round((cpu1[name] - cpu0[name]) / len(r) * 1e6, 1),
            "_router": r,
        }
    return out


def baseline_tree(rev: str, tmp: pathlib.Path) -> pathlib.Path:
    """A worktree of ``rev`` whose router the baseline runs (removed by the caller)."""
    root = pathlib.Path(__file__).resolve().parent.parent
    where = tmp / "baseline"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(where), rev], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return where


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--baseline", metavar="REV", help="also measure the router of this git revision, side by side")
    ap.add_argument("--plot")
    args = ap.parse_args()
    load_start = os.getloadavg()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    pool_port, router_port, base_port = free_port(), free_port(), free_port()
    cfg = {
        "pools": [{
            "name": "small",
            "backend": {"kind": "sim", "ttft_ms": 0, "tpot_ms": 0, "output_tokens": 8, "max_concurrency": 1000},
            "address": f"127.0.0.1:{pool_port}",
        }],
        "router": {"port": router_port},
    }
    path = write_config(tmp / "ponder.yaml", cfg)
    procs = []
    base_tree = baseline_tree(args.baseline, tmp) if args.baseline else None
    with LocalRedis(tmp / "redis") as redis:
        env = {**os.environ, "REDIS_URL": redis.url}
        try:
            pool = subprocess.Popen([PONDER, "pool-serve", "--config", str(path), "--pool", "small", "--port", str(pool_port)],
                                    env=env, stderr=subprocess.DEVNULL)
            procs.append(pool)
            router = subprocess.Popen([PONDER, "router-serve", "--config", str(path)], env=env, stderr=subprocess.DEVNULL)
            procs.append(router)
            routers = {"current": (f"127.0.0.1:{router_port}", router.pid)}
            relay_port = free_port()
            relay = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).resolve().parent / "_relay.py"),
                                      str(relay_port), f"127.0.0.1:{pool_port}"], env=env, stderr=subprocess.DEVNULL)
            procs.append(relay)
            routers["floor"] = (f"127.0.0.1:{relay_port}", relay.pid)
            if base_tree is not None:
                base_cfg = write_config(tmp / "baseline.yaml", {**cfg, "router": {"port": base_port}})
                base_env = {**env, "PYTHONPATH": f"{base_tree / 'services'}:{base_tree / 'operators'}"}
                base = subprocess.Popen([sys.executable, "-m", "ponder.cli", "router-serve", "--config", str(base_cfg)],
                                        env=base_env, cwd=base_tree, stderr=subprocess.DEVNULL)
                procs.append(base)
                routers["baseline"] = (f"127.0.0.1:{base_port}", base.pid)
                wait_port(base_port, proc=base)
            wait_port(pool_port, proc=pool)
            wait_port(router_port, proc=router)
            wait_port(relay_port, proc=relay)
            c1 = asyncio.run(measure(routers, f"127.0.0.1:{pool_port}", args.calls, 1, pool.pid))
            c16 = asyncio.run(measure(routers, f"127.0.0.1:{pool_port}", args.calls, 16, pool.pid))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
            if base_tree is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(base_tree)],
                               cwd=pathlib.Path(__file__).resolve().parent.parent, check=False)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, (name, res) in zip(axes, [("concurrency 1", c1), ("concurrency 16", c16)]):
            ax.hist(res["_direct"], bins=80, alpha=0.6, label="client -> pool")
            for name in routers:
                ax.hist(res[name]["_router"], bins=80, alpha=0.6, label=f"client -> router ({name}) -> pool")
            ax.set_title(name)
            ax.set_xlabel("latency (ms)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    for r in (c1, c16):
        # Latency quantiles 0..100 % per path: the CDFs a report draws from this JSON alone.
        r["cdf_ms"] = {"direct": quantiles(r.pop("_direct")), **{n: quantiles(r[n].pop("_router")) for n in routers}}
    cur1, cur16 = c1["current"], c16["current"]
    floor = {
        name: {k: res["floor"][k] for k in ("added_p50_ms", "added_p99_ms", "router_cpu_us_per_request")}
        for name, res in (("concurrency_1", c1), ("concurrency_16", c16))
    }
    out = {
        "bench": "overhead",
        "added_p50_ms": cur1["added_p50_ms"],
        "added_p99_ms": cur1["added_p99_ms"],
        "router_cpu_us_per_request": cur1["router_cpu_us_per_request"],
        "router_own_cpu_us_per_request": round(cur1["router_cpu_us_per_request"] - c1["floor"]["router_cpu_us_per_request"], 1),
        "pool_cpu_us_per_request": c1["pool_cpu_us_per_request"],
        "floor": floor,
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in os.getloadavg()]},
        "concurrency_1": c1,
        "concurrency_16": {"added_p50_ms": cur16["added_p50_ms"], "added_p99_ms": cur16["added_p99_ms"],
                           "router_cpu_us_per_request": cur16["router_cpu_us_per_request"], **c16},
        "target": {"added_p50_ms": 1.0, "concurrency_16_added_p50_ms": 4.0},
        "meets_target": cur1["added_p50_ms"] <= 1.0 and cur16["added_p50_ms"] <= 4.0,
    }
    if "baseline" in routers:
        out["baseline"] = {
            "revision": args.baseline,
            "added_p50_ms": c1["baseline"]["added_p50_ms"],
            "added_p99_ms": c1["baseline"]["added_p99_ms"],
            "router_cpu_us_per_request": c1["baseline"]["router_cpu_us_per_request"],
            "concurrency_16": {k: c16["baseline"][k] for k in ("added_p50_ms", "added_p99_ms", "router_cpu_us_per_request")},
        }
    emit(out)


if __name__ == "__main__":
    main()
