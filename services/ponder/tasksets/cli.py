"""``ponder bench samples``: M samples per question from a pool, written as a resumable outcome table.

The pool is reached at ``--address`` (a standalone pool, or the Serve gRPC
proxy with ``--pool`` naming the application), or by name from ``--config``;
``--local`` starts a pool in this process instead: llama.cpp (``--model-path``,
default the Gemma 3 270M GGUF) or, on a GPU, vLLM (``--vllm-model``), with a
thinking phase so ``--think-samples`` works. Prints a per-question table (question, sample answers, correct count,
tokens, latency) and, with ``--json``, one JSON summary last. Exit 0 when the
table is complete, 2 for bad input, 1 when the pool fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import time

from ponder.common.errors import InvalidArgument, PonderError
from ponder.tasksets import TASKSETS, make_taskset
from ponder.tasksets.samples import TableSettings, draw_table, per_question

from ponder.pools.client import PoolClient

LOCAL_THINKING = {
    "budget_tokens": 48,
    "prompt_template": "{prompt} Let's think step by step.",
    "answer_prefix": " So the answer is",
    "stop": ["\n", "Q:"],
}


def add_parser(subparsers) -> argparse.ArgumentParser:
    existing = getattr(subparsers, "choices", {}).get("bench")
    bench = existing or subparsers.add_parser("bench", help="measurement tools that draw from pools")
    bsub = getattr(bench, "_ponder_sub", None)
    if bsub is None:
        bsub = bench.add_subparsers(dest="bench_command", required=True)
        bench._ponder_sub = bsub
    p = bsub.add_parser("samples", help="M samples per question from a pool -> outcome table (JSONL)")
    p.add_argument("--taskset", default="arith", choices=sorted(TASKSETS), help="generated task set")
    p.add_argument("--questions", type=int, default=280, help="questions in the task set")
    p.add_argument("--taskset-seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=16, help="plain samples per question (M)")
    p.add_argument("--think-samples", type=int, default=0, help="samples per question with a thinking phase")
    p.add_argument("--thinking-budget", type=int, default=48, help="thinking tokens for think samples")
    p.add_argument("--max-tokens", type=int, default=8, help="answer tokens per sample")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0, help="sampling seed (each sample's seed derives from it)")
    p.add_argument("--out", required=True, help="table path (JSONL); resumed when it exists")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--address", help="host:port of a pool (standalone, or the Serve proxy with --pool)")
    g.add_argument("--config", help="ponder.yaml; the pool named by --pool")
    g.add_argument("--local", action="store_true", help="start a llama.cpp pool in this process")
    p.add_argument("--pool", default="small", help="pool name (Serve application / config entry)")
    p.add_argument("--model-path", help="GGUF for --local (default: Gemma 3 270M)")
    p.add_argument("--vllm-model", help="for --local on a GPU: serve this model (local path or id) with vLLM instead")
    p.add_argument("--n-threads", type=int, help="llama.cpp threads for --local")
    p.add_argument("--concurrency", type=int, default=4, help="calls in flight")
    p.add_argument("--json", action="store_true", help="print one JSON summary last")
    p.add_argument("--quiet", action="store_true", help="no per-question table")
    p.set_defaults(func=run)
    return p


def _check(args) -> None:
    from ponder.common.errors import InvalidArgument

    for name in ("questions", "concurrency", "max_tokens"):
        if getattr(args, name) < 1:
            raise InvalidArgument(name.replace("_", "-"), f"must be >= 1, got {getattr(args, name)}")
    for name in ("samples", "think_samples"):
        if getattr(args, name) < 0:
            raise InvalidArgument(name.replace("_", "-"), f"must be >= 0, got {getattr(args, name)}")
    if args.samples + args.think_samples == 0:
        raise InvalidArgument("samples", "nothing to draw: --samples and --think-samples are both 0")
    if args.think_samples and args.thinking_budget < 1:
        raise InvalidArgument("thinking-budget", f"must be >= 1 with --think-samples, got {args.thinking_budget}")
    if not 0 <= args.temperature <= 2:
        raise InvalidArgument("temperature", f"must be in [0, 2], got {args.temperature}")


async def _local_pool(args):
    from ponder.common.config import LlamaCppBackend, PoolConfig, VLLMBackend
    from ponder.common.telemetry import Tracing
    from ponder.pools.servicer import start_standalone

    if args.vllm_model:
        backend = VLLMBackend(model=args.vllm_model, gpu_memory_utilization=0.8)
    else:
        backend = LlamaCppBackend(model_path=args.model_path, n_threads=args.n_threads)
    cfg = PoolConfig(name=args.pool, backend=backend, thinking=LOCAL_THINKING)
    server, port, engine, _ = await start_standalone(cfg, "127.0.0.1:0", Tracing("bench-samples"))
    return f"127.0.0.1:{port}", (server, engine)


async def _run(args) -> int:
    _check(args)
    questions = make_taskset(args.taskset, args.questions, args.taskset_seed)
    settings = TableSettings(args.taskset, args.questions, args.taskset_seed, args.temperature, args.top_p,
                             args.max_tokens, args.thinking_budget if args.think_samples else 0, args.seed)
    owned = None
    route = None
    if args.local:
        address, owned = await _local_pool(args)
    elif args.config:
        from ponder.common.config import load_config
        from ponder.voting.samplers import pool_targets

        targets = pool_targets(load_config(args.config))
        if args.pool not in targets:
            from ponder.common.errors import UnknownPool

            raise UnknownPool("pool", args.pool, sorted(targets))
        address, route = targets[args.pool].address, targets[args.pool].metadata
    else:
        address = args.address
    client = PoolClient(args.pool, address, route=route)
    t0 = time.monotonic()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if not args.quiet and (now - last[0] > 10 or done == total):
            last[0] = now
            print(f"  {done}/{total} samples ({now - t0:.0f} s)", file=sys.stderr)

    wants = {"plain": args.samples, "think": args.think_samples}
    try:
        rows = await draw_table(client, questions, pathlib.Path(args.out), settings,
                                {m: n for m, n in wants.items() if n}, args.concurrency, progress=progress)
    finally:
        await client.close()
        if owned:
            await owned[0].stop(0)
            await owned[1].close()
    ids = {q.id for q in questions}
    rows = [r for r in rows if r["id"] in ids]
    table = per_question(rows)
    if not args.quiet:
        print(f"{'id':8} {'mode':5} {'answer':>7} {'right':>6} {'tok':>5} {'ms':>7}  question / sample answers")
        for t in table:
            answers = " ".join("-" if a is None else str(a) for a in t["answers"])
            print(f"{t['id']:8} {t['mode']:5} {t['answer']:>7} {t['correct']:>3}/{t['samples']:<2} "
                  f"{t['mean_output_tokens']:>5} {t['mean_latency_ms']:>7}  {t['question'][:60]} | {answers}")
    summary = {"table": args.out, "questions": len(questions), "rows": len(rows),
               "model": rows[0]["model"] if rows else None,
               "accuracy": {m: round(sum(r["correct"] for r in rows if r["mode"] == m) /
                                     max(1, sum(r["mode"] == m for r in rows)), 4) for m in wants if wants[m]},
               "wall_time_s": round(time.monotonic() - t0, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"table {args.out}: {summary['rows']} samples over {len(questions)} questions, accuracy {summary['accuracy']}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except PonderError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2 if isinstance(e, InvalidArgument) else 1
