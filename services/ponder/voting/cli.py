"""``ponder vote hanoi|add``: run a voting task in-process or on a Voting server.

``add_parser(subparsers)`` adds the ``vote`` command to the top-level parser;
the chosen subcommand's ``func`` (``run``) returns the exit code: 0 when the
task finished (and its own check, when it has one, passed), 1 when it failed,
2 for bad input.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import AsyncIterator

import grpc

from ponder.common.config import load_config
from ponder.common.errors import PonderError
from ponder.v1 import voting_pb2
from ponder.voting.client import VotingClient
from ponder.voting.convert import config_from_proto, step_to_proto, summary_to_dict, summary_to_proto, task_from_proto
from ponder.voting.samplers import SamplerRegistry, pool_targets
from ponder.voting.solver import StepResult, solve


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--k", type=int, help="fixed vote lead k (>= 1)")
    g.add_argument("--target-success", type=float, help="whole-task success wanted; k is derived (default 0.95)")
    p.add_argument("--p", type=float, help="per-step success estimate in (0.5, 1); unset: calibrate")
    p.add_argument("--calibration-steps", type=int, help="calibration states (default 32)")
    p.add_argument("--calibration-confidence", type=float,
                   help="one-sided confidence of the lower bound on p that k is chosen from (default 0.95)")
    p.add_argument("--sampler", default="sim:0.99", help="pool:NAME (a real model) or sim:P (simulated test double)")
    p.add_argument("--address", help="host:port of a Voting server; unset: run in this process")
    p.add_argument("--config", help="ponder.yaml for pool addresses (in-process runs with pool:NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, help="stop after this many steps")
    p.add_argument("--max-samples-per-step", type=int, help="sample cap per step (default 100)")
    p.add_argument("--retries", type=int, help="rounds of re-drawing failed samples per step (default 3)")
    p.add_argument("--json", action="store_true", help="print only the final summary as one JSON object")
    p.add_argument("--quiet", action="store_true", help="no per-step lines")
    p.set_defaults(func=run)


def add_parser(subparsers) -> argparse.ArgumentParser:
    vote = subparsers.add_parser("vote", help="solve a task step by step with first-to-ahead-by-k voting")
    sub = vote.add_subparsers(dest="vote_task", required=True)
    h = sub.add_parser("hanoi", help="Towers of Hanoi, one move per step")
    h.add_argument("--disks", type=int, required=True)
    _common(h)
    a = sub.add_parser("add", help="long addition, one digit with carry per step")
    a.add_argument("--digits", type=int, required=True)
    a.add_argument("--a", default="", help="first number (default: random from --seed)")
    a.add_argument("--b", default="", help="second number (default: random from --seed)")
    a.add_argument("--decomposition", default="", choices=["", "column", "count"],
                   help="column: one column sum per step (default); count: one successor (n -> n+1) per step")
    a.add_argument("--vary-prompts", action="store_true", help="other exemplars in each sample's prompt")
    _common(a)
    return vote


def request_from_args(args: argparse.Namespace) -> voting_pb2.SolveRequest:
    req = voting_pb2.SolveRequest(task="hanoi" if args.vote_task == "hanoi" else "addition", sampler=args.sampler, seed=args.seed)
    if args.vote_task == "hanoi":
        req.hanoi.disks = max(0, args.disks)
    else:
        req.addition.digits = max(0, args.digits)
        req.addition.a, req.addition.b = args.a, args.b
        req.addition.decomposition = args.decomposition
        req.addition.vary_prompts = args.vary_prompts
    v = req.voting
    if args.k is not None:
        if args.k < 1:
            raise PonderError(f"voting.k: must be >= 1, got {args.k}")
        v.k = args.k
    for name in ("target_success", "p", "max_steps", "max_samples_per_step", "retries", "calibration_steps",
                 "calibration_confidence"):
        value = getattr(args, name)
        if value is not None:
            setattr(v, name, value)
    return req


async def _local(req: voting_pb2.SolveRequest, config: str | None) -> AsyncIterator[voting_pb2.SolveEvent]:
    task, cfg = task_from_proto(req), config_from_proto(req)
    registry = SamplerRegistry(pool_targets(load_config(config)))
    try:
        sampler = registry.get(req.sampler, req.seed)
        async for item in solve(task, sampler, cfg):
            yield step_to_proto(item) if isinstance(item, StepResult) else summary_to_proto(item)
    finally:
        await registry.close()


async def _remote(req: voting_pb2.SolveRequest, address: str) -> AsyncIterator[voting_pb2.SolveEvent]:
    from ponder.client.config import ClientConfig
    from ponder.common.auth import bearer_interceptors
    from ponder.common.grpcutil import CHANNEL_OPTIONS

    # TLS and the API key from the environment (PONDER_TLS_CA, PONDER_TLS_CERT/KEY, PONDER_API_KEY).
    cc = ClientConfig.resolve(address)
    client = VotingClient(address, cc.channel(CHANNEL_OPTIONS, bearer_interceptors(cc.api_key)), owns_channel=True)
    try:
        async for ev in client.events(req):
            yield ev
    finally:
        await client.close()


async def _run(args: argparse.Namespace) -> int:
    req = request_from_args(args)
    events = _remote(req, args.address) if args.address else _local(req, args.config)
    summary = None
    async for ev in events:
        if ev.HasField("step"):
            if not (args.json or args.quiet):
                s = ev.step
                votes = ", ".join(f"{v.votes}" for v in s.votes)
                print(f"step {s.index}: {s.winner.replace(chr(10), ' | ')}  votes [{votes}] samples {s.samples} red flags {s.red_flags}")
        else:
            summary = ev.summary
    out = summary_to_dict(summary)
    if args.json:
        print(json.dumps(out))
    else:
        sim = " (SIMULATED sampler)" if summary.simulated else ""
        status = "succeeded" if summary.success else f"FAILED at step {summary.failed_step}: {summary.error}"
        print(f"{summary.task}{sim}: {status}")
        if summary.calibration_valid:
            print(f"  k={summary.k} from p >= {summary.p_lower_bound:.4f} (one-sided {summary.calibration_confidence:.0%} "
                  f"Wilson bound; {summary.calibration_correct}/{summary.calibration_valid} valid calibration samples "
                  f"correct, point estimate {summary.p_estimate:.4f})")
        print(f"  steps {summary.steps_completed}/{summary.steps_total}, k={summary.k}, p={summary.p:.4f}, "
              f"samples {summary.total_samples} ({summary.red_flags} red-flagged), "
              f"{summary.compute_units:.1f} compute units, {summary.wall_time_ms / 1000:.2f} s")
        print(f"  answer: {summary.answer}" + ("" if not summary.HasField("correct") else f" (correct: {summary.correct})"))
    return 0 if summary.success and not (summary.HasField("correct") and not summary.correct) else 1


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except PonderError as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except grpc.aio.AioRpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 2 if e.code() == grpc.StatusCode.INVALID_ARGUMENT else 1


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m ponder.voting.cli vote hanoi --disks 3``)."""
    parser = argparse.ArgumentParser(prog="ponder")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
