"""What the OpenAI-compatible HTTP hop adds over the gRPC path, side by side in one run.

One sim pool (zero latency, so only the serving path is timed) and one router
(``router-serve`` with its Redis outcome log and the HTTP front on) run as
separate processes. This client interleaves, call by call, a gRPC
``Router.Generate`` and the same request as ``POST /v1/chat/completions``
(httpx with a kept-alive connection; the official ``openai`` client and a
minimal pre-encoded HTTP/1.1 client, reported apart: the first includes a
Python client library's CPU, the last isolates the server-side hop), rotating which goes first,
so machine noise hits every path alike. Concurrency 1 and 8.

Usage: .venv/bin/python bench/http_overhead.py [--calls N]
Prints one JSON object; target: http_added_p50_ms <= 1.0 (the hop: minimal HTTP client's p50 minus
the gRPC client's p50, concurrency 1); httpx_added_p50_ms and openai_client_added_p50_ms add each
library's client-side CPU on top.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, emit, free_port, percentile, wait_port, write_config  # noqa: E402

import grpc  # noqa: E402
import httpx  # noqa: E402

from ponder.common.redis_server import LocalRedis  # noqa: E402
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc  # noqa: E402

PROMPT = "What is the capital of France?"


async def measure(grpc_addr: str, http_url: str, calls: int, concurrency: int) -> dict:
    import openai

    ch = grpc.aio.insecure_channel(grpc_addr)
    stub = router_pb2_grpc.RouterStub(ch)
    http = httpx.AsyncClient(base_url=http_url, limits=httpx.Limits(max_keepalive_connections=64))
    oai = openai.AsyncOpenAI(base_url=http_url, api_key="bench", max_retries=0)
    rreq = router_pb2.GenerateRequest(prompt=PROMPT, sampling=common_pb2.SamplingParams(max_tokens=8))
    body = {"model": "ponder/auto", "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 8}
    lat: dict[str, list[float]] = {}

    async def via_grpc():
        t = time.perf_counter()
        await stub.Generate(rreq, timeout=10)
        lat["grpc"].append((time.perf_counter() - t) * 1000)

    async def via_httpx():
        t = time.perf_counter()
        r = await http.post("/chat/completions", json=body)
        r.raise_for_status()
        lat["httpx"].append((time.perf_counter() - t) * 1000)

    async def via_openai():
        t = time.perf_counter()
        await oai.chat.completions.create(**body)
        lat["openai_client"].append((time.perf_counter() - t) * 1000)

    # A minimal HTTP/1.1 client (one pre-encoded request, one kept-alive connection per worker):
    # what the server-side hop costs, without a Python client library's own CPU.
    host, port = http_url.split("//")[1].split("/")[0].split(":")
    payload = json.dumps(body).encode()
    raw_req = (f"POST /v1/chat/completions HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(payload)}\r\n\r\n").encode() + payload
    conns: dict[int, tuple] = {}

    async def via_raw():
        task = id(asyncio.current_task())
        if task not in conns:
            conns[task] = await asyncio.open_connection(host, int(port))
        reader, writer = conns[task]
        t = time.perf_counter()
        writer.write(raw_req)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        lat["raw_http"].append((time.perf_counter() - t) * 1000)

    names = ["grpc", "httpx", "openai_client", "raw_http"]
    paths = [via_grpc, via_httpx, via_openai, via_raw]
    lat = {k: [] for k in names}
    for _ in range(100):  # warm every path
        for f in paths:
            await f()
    lat = {k: [] for k in names}

    async def worker(n: int, offset: int):
        await asyncio.sleep(0)  # each worker is its own task: its own raw connection
        for i in range(n):
            k = (i + offset) % len(paths)
            for f in paths[k:] + paths[:k]:
                await f()

    await asyncio.gather(*(worker(calls // concurrency, j) for j in range(concurrency)))
    for _, writer in conns.values():
        writer.close()
    await ch.close()
    await http.aclose()
    await oai.close()
    g = lat["grpc"]
    out = {"calls": len(g), "grpc_p50_ms": round(percentile(g, 50), 4), "grpc_p99_ms": round(percentile(g, 99), 4)}
    for name in ("httpx", "openai_client", "raw_http"):
        v = lat[name]
        out[f"{name}_p50_ms"] = round(percentile(v, 50), 4)
        out[f"{name}_p99_ms"] = round(percentile(v, 99), 4)
        out[f"{name}_added_p50_ms"] = round(percentile(v, 50) - percentile(g, 50), 4)
        out[f"{name}_added_p99_ms"] = round(percentile(v, 99) - percentile(g, 99), 4)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ponder-bench-"))
    pool_port, router_port, http_port = free_port(), free_port(), free_port()
    cfg = {
        "pools": [{
            "name": "small",
            "backend": {"kind": "sim", "ttft_ms": 0, "tpot_ms": 0, "output_tokens": 8, "max_concurrency": 1000},
            "address": f"127.0.0.1:{pool_port}",
        }],
        "router": {"port": router_port, "http_port": http_port},
    }
    path = write_config(tmp / "ponder.yaml", cfg)
    procs = []
    cli = [sys.executable, "-m", "ponder.cli"]
    with LocalRedis(tmp / "redis") as redis:
        env = {**os.environ, "REDIS_URL": redis.url,
               "PYTHONPATH": os.pathsep.join([str(ROOT / "services"), str(ROOT / "operators"), os.environ.get("PYTHONPATH", "")])}
        try:
            pool = subprocess.Popen([*cli, "pool-serve", "--config", str(path), "--pool", "small", "--port", str(pool_port)],
                                    env=env, stderr=subprocess.DEVNULL)
            procs.append(pool)
            router = subprocess.Popen([*cli, "router-serve", "--config", str(path)], env=env, stderr=subprocess.DEVNULL)
            procs.append(router)
            wait_port(pool_port, proc=pool)
            wait_port(router_port, proc=router)
            wait_port(http_port, proc=router)
            url = f"http://127.0.0.1:{http_port}/v1"
            c1 = asyncio.run(measure(f"127.0.0.1:{router_port}", url, args.calls, 1))
            c8 = asyncio.run(measure(f"127.0.0.1:{router_port}", url, args.calls, 8))
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
    emit({
        "bench": "http_overhead",
        # The hop itself: HTTP front vs gRPC servicer, each driven by a client that costs ~nothing.
        "http_added_p50_ms": c1["raw_http_added_p50_ms"],
        "http_added_p99_ms": c1["raw_http_added_p99_ms"],
        "grpc_p50_ms": c1["grpc_p50_ms"],
        "http_p50_ms": c1["raw_http_p50_ms"],
        # What an application sees with a Python client library (its own CPU included).
        "httpx_added_p50_ms": c1["httpx_added_p50_ms"],
        "openai_client_added_p50_ms": c1["openai_client_added_p50_ms"],
        "concurrency_1": c1,
        "concurrency_8": c8,
        "target": {"http_added_p50_ms": 1.0},
        "meets_target": c1["raw_http_added_p50_ms"] <= 1.0,
    })


if __name__ == "__main__":
    main()
