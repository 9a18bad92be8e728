"""Fault runs against real processes on loopback: a supervised redis-server, two `ponder pool-serve`
processes with the `sim` backend (a latency-model test double) and `ponder router-serve`.

Load: open loop at 80 % of the router's measured capacity, from one client process whose
retry policy is a client library's: UNAVAILABLE / RESOURCE_EXHAUSTED retried up to 3 times
with backoff (honouring grpc-retry-pushback-ms). Per scenario: ``sent`` (requests),
``answered``, ``failed_retryable`` (ended UNAVAILABLE / RESOURCE_EXHAUSTED, or ABORTED with
partial usage, after retries), ``retried`` (client retries), ``lost`` (any other end: an
INTERNAL / UNKNOWN status, or no end within the deadline).

Scenarios:
- kill_pool: kill -9 the `small` pool process mid-run; it is started again 1 s later (as
  Ray Serve restarts a replica); the router retries within its budget and falls back;
- restart_redis: kill -9 redis-server mid-run; the supervisor restarts it with its data.
  ``outcome_records_lost`` counts answered request ids missing from the outcome stream once
  the router has stopped (its spill file replayed), ``contexts_lost`` stored contexts gone;
- sigterm_router: SIGTERM the router with streams in flight: each ends with its answer or
  UNAVAILABLE within router.grace_s, the process exits 0;
- backend_crash: the `small` pool process dies and stays down 3 s: its breaker opens, the
  fallback pool serves, and after its restart a half-open probe closes the breaker. The router's
  Status is polled meanwhile: ``small_states_seen`` lists each (health / breaker) change.

``--backend llamacpp`` runs the pools on the real local GGUF (Gemma 3 270M through
llama.cpp, in the pool process, so killing it is the backend crashing) instead of `sim`;
use a shorter ``--seconds`` and ``--scenarios backend_crash`` on a small machine.

Also: the hypothesis fuzz of every Router RPC (tests/integration/test_fuzz_rpcs.py) at
``--fuzz-examples`` per RPC and kind, ``throughput_rps_one_core`` (router pinned to one CPU,
closed loop) and ``added_p99_ms_at_80pct`` (p99 through the router minus p99 straight to the
pool, both open loop at 80 % of that throughput, run side by side).

Usage: .venv/bin/python bench/faults.py [--seconds S] [--fuzz-examples N] [--scenarios A,B] [--backend sim|llamacpp]
Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import ROOT, emit, free_port, percentile, wait_port, write_config  # noqa: E402

sys.path.insert(0, str(ROOT / "services"))  # this tree's ponder, also under an editable install of another

import grpc  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402

from ponder.common.redis_server import LocalRedis  # noqa: E402
from ponder.router.contexts import ContextStore  # noqa: E402
from ponder.v1 import pool_pb2, pool_pb2_grpc, router_pb2, router_pb2_grpc  # noqa: E402

RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "services"), str(ROOT / "operators")])}
ENV.pop("REDIS_URL", None)
GRACE_S = 3.0
CALL_TIMEOUT_S = {"sim": 10.0, "llamacpp": 60.0}  # per call; llama.cpp pools run one request at a time
timeout_s = CALL_TIMEOUT_S["sim"]


def spawn(*args: str, env: dict | None = None, cpu: int | None = None) -> subprocess.Popen:
    pre = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
    return subprocess.Popen([*pre, sys.executable, "-m", "ponder.cli", *args], env=env or ENV, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Stack:
    def __init__(self, tmp: pathlib.Path, redis_url: str, backend: str = "sim"):
        self.ports = {"small": free_port(), "reasoning": free_port(), "router": free_port()}
        if backend == "llamacpp":  # the real local GGUF (Gemma 3 270M), one thread per pool, short answers
            from ponder.pools.models import ensure_default_gguf

            engine = {"kind": "llamacpp", "model_path": str(ensure_default_gguf()), "n_ctx": 512, "n_threads": 1}
            extra = {"max_tokens_default": 8}
        else:
            engine, extra = {"kind": "sim", "ttft_ms": 2, "tpot_ms": 1, "output_tokens": 16}, {}
        self.cfg = {
            "pools": [{"name": n, "backend": engine, "address": f"127.0.0.1:{self.ports[n]}", "tier": t, **extra}
                      for n, t in (("small", "small"), ("reasoning", "reasoning"))],
            "routing": {"strategies": ["single"], "fallback_pool": "reasoning",
                        "resilience": {"breaker_failures": 3, "breaker_open_s": 1.0}},
            "router": {"port": self.ports["router"], "grace_s": GRACE_S},
            "redis": {"url": redis_url, "outcome_spill_path": str(tmp / "outcomes.spill")},
            "voting": {"enabled": False},
        }
        self.path = write_config(tmp / "ponder.yaml", self.cfg)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, cpu: int | None = None) -> None:
        if name == "router":
            self.procs[name] = spawn("router-serve", "--config", str(self.path), cpu=cpu)
        else:
            self.procs[name] = spawn("pool-serve", "--config", str(self.path), "--pool", name,
                                     "--port", str(self.ports[name]))
        wait_port(self.ports[name], 120, self.procs[name])

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        self.procs[name].send_signal(sig)

    @property
    def router(self) -> str:
        return f"127.0.0.1:{self.ports['router']}"

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()


class Tally:
    def __init__(self):
        self.sent = self.answered = self.failed_retryable = self.retried = self.lost = 0
        self.ok_ids: list[str] = []
        self.pools: dict[str, int] = {}
        self.lost_codes: dict[str, int] = {}

    def result(self) -> dict:
        return {"sent": self.sent, "answered": self.answered, "failed_retryable": self.failed_retryable,
                "retried": self.retried, "lost": self.lost, "answered_by_pool": self.pools,
                "lost_codes": self.lost_codes}


async def one_request(stub, tally: Tally, rid: str, stream: bool, deadline_s: float | None = None) -> None:
    """One logical request with a client library's retry policy."""
    deadline_s = deadline_s or timeout_s
    tally.sent += 1
    for attempt in range(4):
        try:
            req = router_pb2.GenerateRequest(prompt="hello", request_id=f"{rid}-{attempt}")
            if stream:
                final = None
                async for ev in stub.GenerateStream(req, timeout=deadline_s):
                    if ev.HasField("final"):
                        final = ev.final
                resp = final
            else:
                resp = await stub.Generate(req, timeout=deadline_s)
            tally.answered += 1
            tally.ok_ids.append(req.request_id)
            tally.pools[resp.plan.pool] = tally.pools.get(resp.plan.pool, 0) + 1
            return
        except grpc.aio.AioRpcError as e:
            code = e.code()
            if code in RETRYABLE and attempt < 3:
                tally.retried += 1
                md = dict(e.trailing_metadata() or ())
                wait_ms = float(md.get("grpc-retry-pushback-ms", 50 * 2 ** attempt))
                await asyncio.sleep(min(wait_ms, 2000) / 1000)
                continue
            if code in RETRYABLE or code == grpc.StatusCode.ABORTED:
                tally.failed_retryable += 1
            else:
                tally.lost += 1
                tally.lost_codes[code.name] = tally.lost_codes.get(code.name, 0) + 1
            return


async def open_loop(address: str, rate: float, seconds: float, tag: str, events=(), stream: bool = False) -> Tally:
    """Send ``rate`` requests/s for ``seconds``; ``events`` are (at_s, callable) run on schedule."""
    tally = Tally()
    async with grpc.aio.insecure_channel(address) as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        tasks, t0, i = [], time.monotonic(), 0
        pending = sorted(events, key=lambda e: e[0])
        # Events run in a thread beside the load (a pool restart waits for its model; sending goes on).
        fired: list[asyncio.Task] = []
        while (now := time.monotonic() - t0) < seconds:
            while pending and pending[0][0] <= now:
                fired.append(asyncio.create_task(asyncio.to_thread(pending.pop(0)[1])))
                await asyncio.sleep(0)
            tasks.append(asyncio.create_task(one_request(stub, tally, f"{tag}-{i}", stream)))
            i += 1
            await asyncio.sleep(max(0.0, i / rate - (time.monotonic() - t0)))
        for _, fn in pending:
            fired.append(asyncio.create_task(asyncio.to_thread(fn)))
        await asyncio.gather(*fired)
        await asyncio.gather(*tasks)
    return tally


async def capacity(address: str, seconds: float, concurrency: int = 32) -> float:
    """Closed-loop requests/s through the router."""
    done = 0
    async with grpc.aio.insecure_channel(address) as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        end = time.monotonic() + seconds

        async def worker():
            nonlocal done
            while time.monotonic() < end:
                await stub.Generate(router_pb2.GenerateRequest(prompt="hello"), timeout=timeout_s)
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / seconds


async def latencies(address: str, rate: float, seconds: float, direct: bool) -> list[float]:
    out: list[float] = []
    async with grpc.aio.insecure_channel(address) as ch:
        if direct:
            stub = pool_pb2_grpc.ModelPoolStub(ch)
            call = lambda: stub.Generate(pool_pb2.PoolGenerateRequest(prompt="hello"), timeout=timeout_s)  # noqa: E731
        else:
            stub = router_pb2_grpc.RouterStub(ch)
            call = lambda: stub.Generate(router_pb2.GenerateRequest(prompt="hello"), timeout=timeout_s)  # noqa: E731

        async def timed():
            t = time.perf_counter()
            await call()
            out.append((time.perf_counter() - t) * 1000)

        tasks, t0, i = [], time.monotonic(), 0
        while time.monotonic() - t0 < seconds:
            tasks.append(asyncio.create_task(timed()))
            i += 1
            await asyncio.sleep(max(0.0, i / rate - (time.monotonic() - t0)))
        await asyncio.gather(*tasks)
    return out


async def stream_ids(url: str, stream: str) -> set[str]:
    r = aioredis.Redis.from_url(url)
    try:
        return {f[b"request_id"].decode() for _, f in await r.xrange(stream)}
    finally:
        await r.aclose()


def fuzz(examples: int) -> dict:
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as rep:
        env = {**ENV, "PONDER_FUZZ_EXAMPLES": str(examples), "PONDER_FUZZ_REPORT": rep.name}
        rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/integration/test_fuzz_rpcs.py"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        rows = [json.loads(x) for x in pathlib.Path(rep.name).read_text().splitlines() if x.strip()]
    return {"cases": sum(r["cases"] for r in rows), "crashes": sum(r["crashes"] for r in rows),
            "non_invalid_argument": sum(r["non_invalid_argument"] for r in rows),
            "unnamed_invalid_argument": sum(r["unnamed_invalid_argument"] for r in rows),
            "examples_per_rpc_and_kind": examples, "pytest_exit": rc}


async def run_kill_pool(stack: Stack, redis: LocalRedis, rate: float, s: float, out: dict) -> list[str]:
    t = await open_loop(stack.router, rate, s, "kill_pool", [
        (s * 0.3, lambda: stack.kill("small")), (s * 0.3 + 1.0, lambda: stack.start("small"))])
    out["scenarios"]["kill_pool"] = t.result()
    return t.ok_ids


async def run_restart_redis(stack: Stack, redis: LocalRedis, rate: float, s: float, out: dict) -> list[str]:
    rc = aioredis.Redis.from_url(redis.url)
    contexts = ContextStore(rc)
    for i in range(100):
        await contexts.put(f"fault-ctx-{i}", f"context {i}")
    await rc.aclose()
    t = await open_loop(stack.router, rate, s, "restart_redis", [(s * 0.3, lambda: os.kill(redis.proc.pid, signal.SIGKILL))])
    out["scenarios"]["restart_redis"] = {**t.result(), "redis_restarts": redis.restarts}
    for _ in range(100):  # the supervisor brings it back
        if redis.proc is not None and redis.proc.poll() is None and redis.restarts:
            break
        await asyncio.sleep(0.1)
    rc = aioredis.Redis.from_url(redis.url)
    lost_ctx = 0
    for i in range(100):
        try:
            await ContextStore(rc).resolve(f"fault-ctx-{i}")
        except Exception:  # noqa: BLE001 - counted
            lost_ctx += 1
    await rc.aclose()
    out["contexts_lost"] = lost_ctx
    return t.ok_ids


async def run_sigterm_router(stack: Stack, redis: LocalRedis, rate: float, s: float, out: dict) -> list[str]:
    t0 = time.monotonic()
    exit_code: list[int] = []
    t = await open_loop(stack.router, rate / 4, s, "sigterm_router", [
        (s * 0.5, lambda: stack.kill("router", signal.SIGTERM)),
        (s * 0.5 + 0.01, lambda: exit_code.append(stack.procs["router"].wait(GRACE_S + 10)))], stream=True)
    out["scenarios"]["sigterm_router"] = {**t.result(), "router_exit_code": exit_code[0] if exit_code else None,
                                          "drain_s": round(time.monotonic() - t0 - s * 0.5, 2)}
    stack.start("router", cpu=0)
    return t.ok_ids


async def watch_small(address: str, seen: list[str], stop: asyncio.Event) -> None:
    """Record each change of the `small` pool's (health, breaker state) as the router's Status reports it."""
    async with grpc.aio.insecure_channel(address) as ch:
        stub = router_pb2_grpc.RouterStub(ch)
        while not stop.is_set():
            try:
                st = await stub.Status(router_pb2.StatusRequest(), timeout=3)
                p = next(p for p in st.pools if p.name == "small")
                now = f"{'serving' if p.healthy else 'not_serving'}/{p.breaker.state or 'closed'}"
                if not seen or seen[-1] != now:
                    seen.append(now)
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.1)


async def run_backend_crash(stack: Stack, redis: LocalRedis, rate: float, s: float, out: dict) -> list[str]:
    seen: list[str] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_small(stack.router, seen, stop))
    t = await open_loop(stack.router, rate, s + 2, "backend_crash", [
        (0.5, lambda: stack.kill("small")), (3.5, lambda: stack.start("small"))])
    # Recovery: after breaker_open_s a half-open probe reaches the restarted pool and closes the breaker.
    late, t_rec, recovered_s = Tally(), time.monotonic(), None
    async with grpc.aio.insecure_channel(stack.router) as ch:
        while time.monotonic() - t_rec < 15 and recovered_s is None:
            await one_request(router_pb2_grpc.RouterStub(ch), late, f"after-{late.sent}", False)
            if late.pools.get("small"):
                recovered_s = round(time.monotonic() - t_rec, 2)
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    stop.set()
    await watcher
    out["scenarios"]["backend_crash"] = {**t.result(), "small_serving_again_after_s": recovered_s,
                                         "requests_until_recovered": late.sent, "lost_during_recovery": late.lost,
                                         "small_states_seen": seen}
    return t.ok_ids + late.ok_ids


RUNS = {"kill_pool": run_kill_pool, "restart_redis": run_restart_redis, "sigterm_router": run_sigterm_router,
        "backend_crash": run_backend_crash}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0, help="load per scenario")
    ap.add_argument("--fuzz-examples", type=int, default=10_000, help="per RPC and kind; 0 skips the fuzz run")
    ap.add_argument("--scenarios", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}")
    ap.add_argument("--backend", choices=["sim", "llamacpp"], default="sim",
                    help="pool engine: sim (test double) or llamacpp (the local Gemma 3 270M GGUF; use a short --seconds)")
    args = ap.parse_args()
    chosen = [x.strip() for x in args.scenarios.split(",") if x.strip()]
    unknown = sorted(set(chosen) - set(RUNS))
    if unknown:
        ap.error(f"--scenarios: unknown {unknown}; known: {list(RUNS)}")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="ponder-faults-"))
    redis = LocalRedis(tmp / "redis").start().supervise(poll_s=0.1)
    global timeout_s
    timeout_s = CALL_TIMEOUT_S[args.backend]
    stack = Stack(tmp, redis.url, args.backend)
    out: dict = {"scenarios": {}, "backend": args.backend}
    try:
        for n in ("small", "reasoning", "router"):
            stack.start(n, cpu=0 if n == "router" else None)
        conc = 32 if args.backend == "sim" else 4  # llama.cpp pools run one request at a time
        await capacity(stack.router, 1.0, conc)  # warm up
        rps = await capacity(stack.router, 4.0, conc)
        rate = 0.8 * rps
        out["throughput_rps_one_core"] = round(rps, 1)
        # Side by side, so machine noise hits both alike: the pool takes both loads at once.
        direct, via = await asyncio.gather(latencies(f"127.0.0.1:{stack.ports['small']}", rate, 4.0, direct=True),
                                           latencies(stack.router, rate, 4.0, direct=False))
        out["added_p99_ms_at_80pct"] = round(percentile(via, 99) - percentile(direct, 99), 2)
        out["p99_ms_at_80pct"] = {"router": round(percentile(via, 99), 2), "pool_direct": round(percentile(direct, 99), 2)}
        out["load_rps"] = round(rate, 1)
        ok_ids: list[str] = []
        for name in chosen:
            ok_ids += await RUNS[name](stack, redis, rate, args.seconds, out)

        stack.kill("router", signal.SIGTERM)
        stack.procs["router"].wait(30)
        stack.start("router", cpu=0)  # replays anything the last one spilled
        await asyncio.sleep(2.0)
        stored = await stream_ids(redis.url, "ponder:outcomes")
        out["outcome_records_lost"] = sum(1 for i in ok_ids if i not in stored)
        out["outcome_records_checked"] = len(ok_ids)
        out["lost_total"] = sum(v["lost"] for v in out["scenarios"].values())
    finally:
        stack.stop_all()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.fuzz_examples > 0:
        out["fuzz"] = fuzz(args.fuzz_examples)
    emit(out)


if __name__ == "__main__":
    asyncio.run(main())
