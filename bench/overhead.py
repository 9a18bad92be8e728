"""Router-added latency: (client -> router -> sim pool) minus (client -> the same sim pool).

The pool (sim backend with zero latency, so only the serving path is timed),
the router (with its Redis outcome log on) and this client run as separate
processes, as in production. Calls through the router and direct calls are
interleaved so machine noise hits both alike. Concurrency 1 and 16.

Usage: .venv/bin/python bench/overhead.py [--calls N] [--plot PNG]
Prints one JSON object; targets: added_p50_ms <= 1.5 and added_p99_ms <= 5 (concurrency 1).
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
from _common import PONDER, emit, free_port, percentile, wait_port, write_config  # noqa: E402

import grpc  # noqa: E402

from ponder.common.redis_server import LocalRedis  # noqa: E402
from ponder.v1 import common_pb2, pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc  # noqa: E402

PROMPT = "What is the capital of France?"


async def measure(router_addr: str, pool_addr: str, calls: int, concurrency: int) -> dict:
    rch = grpc.aio.insecure_channel(router_addr)
    pch = grpc.aio.insecure_channel(pool_addr)
    router = router_pb2_grpc.RouterStub(rch)
    pool = pool_pb2_grpc.ModelPoolStub(pch)
    sampling = common_pb2.SamplingParams(max_tokens=8)
    rreq = router_pb2.GenerateRequest(prompt=PROMPT, sampling=sampling)
    preq = pool_pb2.PoolGenerateRequest(prompt=PROMPT, sampling=sampling)
    meta = (("application", "small"),)
    lat = {"router": [], "direct": []}

    async def via_router():
        t = time.perf_counter()
        await router.Generate(rreq, timeout=10)
        lat["router"].append((time.perf_counter() - t) * 1000)

    async def direct():
        t = time.perf_counter()
        await pool.Generate(preq, metadata=meta, timeout=10)
        lat["direct"].append((time.perf_counter() - t) * 1000)

    for _ in range(200):  # warm both paths (channels, caches)
        await via_router()
        await direct()
    lat = {"router": [], "direct": []}

    async def worker(n: int):
        for i in range(n):
            # Alternate which path goes first so neither always follows the other.
            if i % 2:
                await via_router()
                await direct()
            else:
                await direct()
                await via_router()

    per = calls // concurrency
    await asyncio.gather(*(worker(per) for _ in range(concurrency)))
    await rch.close()
    await pch.close()
    r, d = lat["router"], lat["direct"]
    return {
        "calls": len(r),
        "router_p50_ms": round(percentile(r, 50), 4),
        "router_p99_ms": round(percentile(r, 99), 4),
        "direct_p50_ms": round(percentile(d, 50), 4),
        "direct_p99_ms": round(percentile(d, 99), 4),
        "added_p50_ms": round(percentile(r, 50) - percentile(d, 50), 4),
        "added_p99_ms": round(percentile(r, 99) - percentile(d, 99), 4),
        "_router": r,
        "_direct": d,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--plot")
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    pool_port, router_port = free_port(), free_port()
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
    with LocalRedis(tmp / "redis") as redis:
        env = {**os.environ, "REDIS_URL": redis.url}
        try:
            pool = subprocess.Popen([PONDER, "pool-serve", "--config", str(path), "--pool", "small", "--port", str(pool_port)],
                                    env=env, stderr=subprocess.DEVNULL)
            procs.append(pool)
            router = subprocess.Popen([PONDER, "router-serve", "--config", str(path)], env=env, stderr=subprocess.DEVNULL)
            procs.append(router)
            wait_port(pool_port, proc=pool)
            wait_port(router_port, proc=router)
            c1 = asyncio.run(measure(f"127.0.0.1:{router_port}", f"127.0.0.1:{pool_port}", args.calls, 1))
            c16 = asyncio.run(measure(f"127.0.0.1:{router_port}", f"127.0.0.1:{pool_port}", args.calls, 16))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, (name, res) in zip(axes, [("concurrency 1", c1), ("concurrency 16", c16)]):
            ax.hist(res["_direct"], bins=80, alpha=0.6, label="client -> pool")
            ax.hist(res["_router"], bins=80, alpha=0.6, label="client -> router -> pool")
            ax.set_title(name)
            ax.set_xlabel("latency (ms)")
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    for r in (c1, c16):
        r.pop("_router")
        r.pop("_direct")
    emit({
        "bench": "overhead",
        "added_p50_ms": c1["added_p50_ms"],
        "added_p99_ms": c1["added_p99_ms"],
        "concurrency_1": c1,
        "concurrency_16": c16,
        "target": {"added_p50_ms": 1.5, "added_p99_ms": 5.0},
        "meets_target": c1["added_p50_ms"] <= 1.5 and c1["added_p99_ms"] <= 5.0,
    })


if __name__ == "__main__":
    main()
