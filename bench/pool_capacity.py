"""Capacity of one pool replica in compute units per second: the figure a ModelPool's
``autoscaling.demand.replica_capacity_cu_per_s`` asks for.

The pool is built exactly as the operator builds it (``ModelPoolSpec.to_pool_config``,
the backend registry, ``PoolEngine``), in this process, like one Serve replica. A
closed loop of ``c`` concurrent clients sends a fixed mix of prompts (short and long
prompts, short and long answers) for ``--seconds`` at each level c = 1, 2, 4, ...;
each answered request counts ``cost.units(prompt_tokens, output + thinking tokens)``.
Per level it reports CU/s and latency percentiles. The capacity is the largest CU/s
among the levels whose p99 latency stays within ``--latency-slo-ms`` (default: no
limit, i.e. the saturated throughput); the ramp stops once a doubling of clients
adds under 5 % throughput.

Usage:
  .venv/bin/python bench/pool_capacity.py                       # the chart's default llama.cpp pool
  .venv/bin/python bench/pool_capacity.py --modelpool pool.yaml # a ModelPool manifest or its spec
  .venv/bin/python bench/pool_capacity.py --sim                 # the sim backend (test double), for a smoke run
Prints one JSON object last with ``replica_capacity_cu_per_s``, ``levels`` and the
``demand`` block to paste into the ModelPool.
"""
from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from _common import emit, percentile  # noqa: E402

import yaml  # noqa: E402

from ponder.common.crd_models import ModelPoolSpec  # noqa: E402
from ponder.pools.backends import make_backend  # noqa: E402
from ponder.pools.engine import PoolEngine, PoolRequest  # noqa: E402

# (prompt, max_tokens): a fixed mix, cycled by every client.
MIX = [
    ("What is the capital of France?", 16),
    ("Write one sentence about the sea.", 32),
    ("Summarise in two sentences why the sky looks blue during the day and red at sunset, "
     "mentioning Rayleigh scattering and the path length of sunlight through the atmosphere.", 48),
    ("List three prime numbers greater than ten.", 24),
]
DEFAULT_SPEC = {"tier": "small", "backend": {"kind": "llamacpp"}, "resources": {"cpu": "2", "memory": "4Gi"}}


def load_spec(path: str | None, sim: bool) -> ModelPoolSpec:
    data = DEFAULT_SPEC if path is None else yaml.safe_load(pathlib.Path(path).read_text())
    data = dict(data.get("spec", data))
    if sim:
        data["backend"] = {"kind": "sim", "ttft_ms": 20, "tpot_ms": 5, "output_tokens": 32, "max_concurrency": 8}
    return ModelPoolSpec.model_validate(data)


def capacity(levels: list[dict], slo_ms: float | None) -> float:
    """Largest ``cu_per_s`` among levels within the p99 SLO (all levels without one); 0 if none."""
    ok = [lv["cu_per_s"] for lv in levels if slo_ms is None or lv["p99_ms"] <= slo_ms]
    return max(ok, default=0.0)


async def run_level(engine: PoolEngine, spec: ModelPoolSpec, clients: int, seconds: float) -> dict:
    cost = spec.cost
    lat: list[float] = []
    units = 0.0
    stop_at = time.monotonic() + seconds

    async def client(k: int) -> None:
        nonlocal units
        i = k
        while time.monotonic() < stop_at:
            prompt, max_tokens = MIX[i % len(MIX)]
            i += 1
            t0 = time.monotonic()
            r = await engine.generate(PoolRequest(prompt=prompt, max_tokens=min(max_tokens, spec.max_tokens_limit),
                                                  temperature=0.0, seed=i))
            lat.append((time.monotonic() - t0) * 1000)
            units += cost.units(r.prompt_tokens, r.output_tokens + r.thinking_tokens)

    t0 = time.monotonic()
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.monotonic() - t0  # includes the requests still running at the deadline
    return {"clients": clients, "requests": len(lat), "cu_per_s": round(units / wall, 2),
            "p50_ms": round(percentile(lat, 50), 1), "p99_ms": round(percentile(lat, 99), 1)}


async def main(args: argparse.Namespace) -> dict:
    spec = load_spec(args.modelpool, args.sim)
    cfg = spec.to_pool_config("capacity")
    engine = PoolEngine(cfg, make_backend(cfg.backend))
    await engine.start()
    try:
        await run_level(engine, spec, 1, min(args.seconds, 3.0))  # warm-up (model load, caches)
        levels: list[dict] = []
        clients = 1
        while clients <= args.max_clients:
            lv = await run_level(engine, spec, clients, args.seconds)
            levels.append(lv)
            print(f"clients={clients}: {lv['cu_per_s']} CU/s, p50 {lv['p50_ms']} ms, p99 {lv['p99_ms']} ms",
                  file=sys.stderr)
            if len(levels) > 1 and lv["cu_per_s"] < 1.05 * levels[-2]["cu_per_s"]:
                break
            clients *= 2
    finally:
        await engine.close()
    cap = capacity(levels, args.latency_slo_ms)
    d = spec.autoscaling.demand
    return {
        "backend": cfg.backend.kind,
        "model": cfg.model_label(),
        "simulated": args.sim,
        "latency_slo_ms": args.latency_slo_ms,
        "levels": levels,
        "replica_capacity_cu_per_s": cap,
        "demand": {"enabled": True, "replica_capacity_cu_per_s": cap, "headroom": d.headroom,
                   "lookahead_s": d.lookahead_s, "dead_band": d.dead_band},
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modelpool", help="ModelPool manifest or spec (YAML); default: the chart's default pool.")
    ap.add_argument("--sim", action="store_true", help="Use the sim backend (a test double; smoke runs only).")
    ap.add_argument("--seconds", type=float, default=10.0, help="Duration of each load level.")
    ap.add_argument("--max-clients", type=int, default=8, help="Largest number of concurrent clients.")
    ap.add_argument("--latency-slo-ms", type=float, default=None, help="p99 latency a level must stay within.")
    emit(asyncio.run(main(ap.parse_args())))
