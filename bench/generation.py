"""Output tokens/s for the same prompt and model: through the router (Ray Serve pool) vs llama.cpp directly.

Both sides decode greedily with the same GGUF, prompt, thread count and
max_tokens; runs alternate (direct, router, direct, ...) and the median of
each side is compared. The direct side runs in its own fresh process (as the
pool replica does), driven over a pipe, so neither side shares a process
with Ray's driver or the router. Decode rate = (tokens - 1) / (last token time - first
token time), so it measures the serving path's effect on generation itself;
end-to-end rates (including time to first token) are reported too.

Usage: .venv/bin/python bench/generation.py [--tokens N] [--runs R] [--plot PNG]
Prints one JSON object; target: ratio >= 0.95.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import statistics
import subprocess
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import emit, free_port  # noqa: E402

import grpc  # noqa: E402

from ponder import stack  # noqa: E402
from ponder.common import eventloop  # noqa: E402
from ponder.common.config import LlamaCppBackend, PonderConfig, PoolConfig, RouterConfig, ServeConfig  # noqa: E402
from ponder.common.telemetry import Tracing  # noqa: E402
from ponder.pools.models import ensure_default_gguf  # noqa: E402
from ponder.router.server import start_router  # noqa: E402
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc  # noqa: E402

PROMPT = "Here is a short story about a lighthouse keeper who"
THREADS = 2


DIRECT = """
import json, sys, time
from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=1024, n_threads=int(sys.argv[2]), n_batch=512, verbose=False)
print("ready", flush=True)
for line in sys.stdin:
    tokens = int(line)
    t0 = time.perf_counter()
    times = []
    for chunk in llm.create_completion(sys.argv[3], max_tokens=tokens, temperature=0.0, stream=True):
        c = chunk["choices"][0]
        if c["text"] or not c.get("finish_reason"):
            times.append(time.perf_counter())
    print(json.dumps({"n": len(times), "first": times[0] - t0, "last": times[-1] - t0}), flush=True)
"""


class Direct:
    """llama.cpp called directly through llama-cpp-python, in a child process."""

    def __init__(self, gguf: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", DIRECT, gguf, str(THREADS), PROMPT],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def run(self, tokens: int) -> dict:
        self.proc.stdin.write(f"{tokens}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)


async def router_run(stub, tokens: int) -> dict:
    req = router_pb2.GenerateRequest(
        prompt=PROMPT, sampling=common_pb2.SamplingParams(max_tokens=tokens, temperature=0.0)
    )
    t0 = time.perf_counter()
    times, tokens = [], 0
    async for ev in stub.GenerateStream(req, timeout=600):
        if ev.HasField("delta"):
            times.append(time.perf_counter())
        else:
            tokens = ev.final.usage.output_tokens
    # Chunks may carry several tokens (pools coalesce); the first carries one.
    return {"n": tokens, "chunks": len(times), "first": times[0] - t0, "last": times[-1] - t0}


def rates(r: dict) -> tuple[float, float]:
    decode = (r["n"] - 1) / (r["last"] - r["first"])
    e2e = r["n"] / r["last"]
    return decode, e2e


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--stream-interval-ms", type=float, default=LlamaCppBackend().stream_interval_ms,
                    help="the pool's token coalescing interval (default: the config default)")
    ap.add_argument("--plot")
    args = ap.parse_args()
    gguf = str(ensure_default_gguf())
    backend = LlamaCppBackend(model_path=gguf, n_ctx=1024, n_threads=THREADS, stream_interval_ms=args.stream_interval_ms)
    cfg = PonderConfig(
        pools=[PoolConfig(name="small", backend=backend, max_tokens_limit=4096)],
        serve=ServeConfig(grpc_port=free_port(), http_port=free_port()),
        router=RouterConfig(port=0),
    )
    llm = Direct(gguf)
    address = stack.deploy_pools(cfg, say=lambda m: None)
    direct, routed = [], []
    try:
        async def run_all():
            handle = await start_router(cfg, address, None, Tracing("bench"), address="127.0.0.1:0")
            async with grpc.aio.insecure_channel(handle.address) as ch:
                stub = router_pb2_grpc.RouterStub(ch)
                # Warm both sides with a full-length run: the first decode in a
                # fresh process pays for thread-pool start-up and page faults.
                await router_run(stub, args.tokens)
                llm.run(args.tokens)
                for _ in range(args.runs):
                    direct.append(llm.run(args.tokens))
                    routed.append(await router_run(stub, args.tokens))
            await handle.stop(0)

        eventloop.run(run_all())  # the loop the served router runs on
    finally:
        llm.close()
        stack.shutdown_pools()
    d_dec = [rates(r)[0] for r in direct]
    r_dec = [rates(r)[0] for r in routed]
    d_e2e = [rates(r)[1] for r in direct]
    r_e2e = [rates(r)[1] for r in routed]
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(d_dec, "o-", label="llama.cpp direct")
        ax.plot(r_dec, "s-", label="ponder router -> Serve pool")
        ax.set_xlabel("run")
        ax.set_ylabel("decode tokens/s")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot)
    med = statistics.median
    emit({
        "bench": "generation",
        "tokens": args.tokens,
        "stream_interval_ms": args.stream_interval_ms,
        "runs": args.runs,
        "tokens_generated": [r["n"] for r in routed],
        "router_chunks": [r["chunks"] for r in routed],
        "direct_tokens_per_s": round(med(d_dec), 2),
        "router_tokens_per_s": round(med(r_dec), 2),
        "ratio": round(med(r_dec) / med(d_dec), 4),
        "direct_e2e_tokens_per_s": round(med(d_e2e), 2),
        "router_e2e_tokens_per_s": round(med(r_e2e), 2),
        "e2e_ratio": round(med(r_e2e) / med(d_e2e), 4),
        "target": {"ratio": 0.95},
    })


if __name__ == "__main__":
    main()
