"""Voting at scale: Towers of Hanoi with 20 disks (1,048,575 steps) with the scripted sampler.

Usage: .venv/bin/python bench/voting_scale.py [--disks 20] [--p 0.99] [--target 0.95] [--plot PNG]

The sampler is ``sim:P`` (a simulated test double, not a model): each sample
is correct with probability p, otherwise the step's one plausible wrong move,
the worst case for voting. k comes from ``choose_k(p, steps, target)``. The
million-step run uses the synchronous fast path: ``ScriptedSampler.outcomes``
hands parsed results to ``vote_sync``, the same ``VoteCounter`` rule the
service runs, on the real Hanoi state machine (the winner's next state becomes
the state; a wrong winner is counted and the run continues from the correct
state so every error is seen). A smaller run through the full async solver
(prompt text, rendering, parsing) checks the two paths agree. The cost curve
runs s = 2^d - 1 steps for d = 10..disks and compares the samples used with
Theta(s ln s). Prints one JSON object last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import time

from ponder.voting import Hanoi, ScriptedSampler, SolveConfig, StepResult, choose_k, expected_samples_per_step, solve
from ponder.voting.kchoice import task_success
from ponder.voting.rule import vote_sync


def run_fast(disks: int, p: float, k: int, seed: int, cap: int = 10_000) -> dict:
    task = Hanoi(disks)
    sim = ScriptedSampler(p, seed=seed)
    rng = random.Random(seed)
    state = task.initial_state()
    steps = wrong = samples = 0
    t0 = time.perf_counter()
    while not task.done(state):
        right = task.oracle(state)
        d = vote_sync(lambda n: sim.outcomes(task, state, steps, n, rng), k, cap)
        samples += d.samples
        if d.winner != right:
            wrong += 1
        state = task.apply(state, right if d.winner != right else d.winner)
        steps += 1
    wall = time.perf_counter() - t0
    return {"disks": disks, "steps": steps, "wrong_steps": wrong, "samples": samples, "wall_time_s": round(wall, 3),
            "solved": task.verify(state) and steps == task.total_steps()}


async def run_full(disks: int, p: float, k: int, seed: int) -> dict:
    task = Hanoi(disks)
    state, steps, wrong, samples = task.initial_state(), 0, 0, 0
    t0 = time.perf_counter()
    async for ev in solve(task, ScriptedSampler(p, seed=seed), SolveConfig(k=k, seed=seed, max_samples_per_step=10_000)):
        if isinstance(ev, StepResult):
            wrong += ev.winner != task.oracle(state)
            samples += ev.samples
            state = task.apply(state, ev.winner)
            steps += 1
        else:
            summary = ev
    return {"disks": disks, "steps": steps, "wrong_steps": wrong, "samples_per_step": samples / steps,
            "wall_time_s": round(time.perf_counter() - t0, 3), "success": summary.success}


def plot(curve: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = [c["steps"] for c in curve]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(s, [c["samples"] for c in curve], "o-", label="measured samples")
    ax.loglog(s, [c["theory_samples"] for c in curve], "x--", label="theory s * E[samples | k(s)]")
    c0 = curve[-1]["samples"] / (s[-1] * math.log(s[-1]))
    ax.loglog(s, [c0 * x * math.log(x) for x in s], ":", label="c * s ln s")
    ax.set_xlabel("steps s")
    ax.set_ylabel("samples")
    ax.set_title("Hanoi with sim sampler (simulated), k from formula")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--disks", type=int, default=20)
    ap.add_argument("--p", type=float, default=0.99)
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-path-disks", type=int, default=12)
    ap.add_argument("--min-curve-disks", type=int, default=10)
    ap.add_argument("--plot")
    args = ap.parse_args(argv)

    steps = (1 << args.disks) - 1
    k = choose_k(args.p, steps, args.target)
    theory = expected_samples_per_step(args.p, k)
    main_run = run_fast(args.disks, args.p, k, args.seed)
    print(f"hanoi {args.disks} disks: {main_run}", file=sys.stderr)

    kf = choose_k(args.p, (1 << args.full_path_disks) - 1, args.target)
    full = asyncio.run(run_full(args.full_path_disks, args.p, kf, args.seed))
    full["k"], full["theory_samples_per_step"] = kf, expected_samples_per_step(args.p, kf)
    print(f"full async path: {full}", file=sys.stderr)

    curve = []
    for d in range(args.min_curve_disks, args.disks + 1):
        s = (1 << d) - 1
        kd = choose_k(args.p, s, args.target)
        r = main_run if d == args.disks else run_fast(d, args.p, kd, args.seed + d)
        curve.append({
            "disks": d, "steps": s, "k": kd, "samples": r["samples"], "wrong_steps": r["wrong_steps"],
            "theory_samples": round(s * expected_samples_per_step(args.p, kd), 1),
            "samples_per_s_ln_s": round(r["samples"] / (s * math.log(s)), 4),
        })
        print(f"curve: {curve[-1]}", file=sys.stderr)
    if args.plot:
        plot(curve, args.plot)

    sps = main_run["samples"] / main_run["steps"]
    out = {
        "benchmark": "voting_scale",
        "sampler": f"sim:{args.p:g} (simulated)",
        "task": f"hanoi-{args.disks}",
        "steps": main_run["steps"],
        "k": k,
        "target_success": args.target,
        "predicted_task_success": round(task_success(args.p, k, steps), 5),
        "wrong_steps": main_run["wrong_steps"],
        "solved": main_run["solved"],
        "samples": main_run["samples"],
        "samples_per_step": round(sps, 5),
        "theory_samples_per_step": round(theory, 5),
        "samples_per_step_error_pct": round(100 * (sps - theory) / theory, 3),
        "within_10pct": abs(sps - theory) / theory <= 0.10,
        "wall_time_s": main_run["wall_time_s"],
        "steps_per_s": round(main_run["steps"] / main_run["wall_time_s"], 1),
        "full_path_check": full,
        "cost_curve": curve,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
