"""``ponder``: the command line.

  ponder up [--config FILE]                 run the local stack in the foreground
  ponder ask TEXT [--stream] [--budget N] [--pool NAME] [--json]
  ponder plan TEXT [--json]                 the plan the router would choose
  ponder status [--json]                    pools, health, load and real models
  ponder feedback REQUEST_ID --correct|--wrong|--score S
  ponder router-serve --config FILE         the router alone (Kubernetes)
  ponder pool-serve --config FILE --pool N  one pool as a plain gRPC server (no Ray)
  ponder router train|eval|cv|retrain       difficulty routers from outcome tables
  ponder vote hanoi|add                     MAKER voting on a decomposed task
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from ponder.common.config import load_config
from ponder.common.errors import PonderError

DEFAULT_ADDRESS = "127.0.0.1:50051"


def _address(args) -> str:
    return args.address or os.environ.get("PONDER_ADDRESS") or DEFAULT_ADDRESS


def _fail(msg: str, code: int = 1) -> int:
    print(f"error: {msg}", file=sys.stderr)
    return code


def _to_dict(msg) -> dict[str, Any]:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _request(args):
    from ponder.v1 import common_pb2, router_pb2

    req = router_pb2.GenerateRequest(prompt=args.text)
    if getattr(args, "max_tokens", None) is not None:
        req.sampling.max_tokens = args.max_tokens
    if getattr(args, "temperature", None) is not None:
        req.sampling.temperature = args.temperature
    if getattr(args, "seed", None) is not None:
        req.sampling.seed = args.seed
    if args.budget is not None:
        req.budget.max_compute_units = args.budget
    if getattr(args, "max_latency_ms", None) is not None:
        req.budget.max_latency_ms = args.max_latency_ms
    req.hints.CopyFrom(common_pb2.Hints(pool=args.pool or "", strategy=args.strategy or ""))
    if args.samples is not None:
        req.hints.samples = args.samples
    if args.thinking is not None:
        req.hints.thinking_budget = args.thinking
    if getattr(args, "context_id", None):
        req.context_id = args.context_id
    return req


async def _call(args, fn):
    from ponder.v1 import router_pb2_grpc

    async with grpc.aio.insecure_channel(_address(args)) as ch:
        return await fn(router_pb2_grpc.RouterStub(ch))


def _rpc_failed(e: grpc.aio.AioRpcError, address: str) -> int:
    if e.code() == grpc.StatusCode.UNAVAILABLE and "connect" in (e.details() or "").lower():
        return _fail(f"no router at {address} ({e.details()}); start one with `ponder up`")
    return _fail(f"{e.code().name}: {e.details()}", 2)


# ---------------------------------------------------------------- commands
def cmd_ask(args) -> int:
    req = _request(args)

    async def run(stub):
        if not args.stream:
            return await stub.Generate(req, timeout=args.timeout)
        final = None
        async for ev in stub.GenerateStream(req, timeout=args.timeout):
            if ev.HasField("delta"):
                if not args.json:
                    style = "\x1b[2m" if ev.delta.thinking and sys.stdout.isatty() else ""
                    print(f"{style}{ev.delta.text}\x1b[0m" if style else ev.delta.text, end="", flush=True)
            else:
                final = ev.final
        if not args.json:
            print()
        return final

    try:
        resp = asyncio.run(_call(args, run))
    except grpc.aio.AioRpcError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(resp)))
    elif not args.stream:
        print(resp.text)
    if not args.json:
        p, u = resp.plan, resp.usage
        sim = " [simulated]" if resp.simulated else ""
        print(
            f"-- {p.pool}/{p.strategy} x{p.samples} think={p.thinking_budget} | {u.prompt_tokens}+{u.output_tokens} tokens, "
            f"{u.compute_units:.1f} CU, {u.latency_ms:.0f} ms | {resp.model}{sim}",
            file=sys.stderr,
        )
    return 0


def cmd_plan(args) -> int:
    req = _request(args)
    try:
        resp = asyncio.run(_call(args, lambda stub: stub.Plan(req, timeout=args.timeout)))
    except grpc.aio.AioRpcError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(resp.plan)))
        return 0
    p = resp.plan
    print(f"pool={p.pool} strategy={p.strategy} samples={p.samples} thinking_budget={p.thinking_budget} "
          f"expected={p.expected_compute_units:.1f} CU, {p.expected_latency_ms:.0f} ms  (policy {p.policy})")
    print(f"reason: {p.reason}")
    if len(p.candidates) > 1:
        print("candidates:")
        for c in p.candidates:
            flag = " " if c.feasible else "x"
            print(f" {flag} {c.pool}/{c.strategy} n={c.samples} think={c.thinking_budget} "
                  f"acc={c.expected_accuracy:.3f} cost={c.expected_compute_units:.1f} "
                  f"latency={c.expected_latency_ms:.0f}ms score={c.score:.4f} {c.note}")
    return 0


def cmd_status(args) -> int:
    from ponder.v1 import router_pb2

    try:
        resp = asyncio.run(_call(args, lambda stub: stub.Status(router_pb2.StatusRequest(), timeout=args.timeout)))
    except grpc.aio.AioRpcError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(resp)))
        return 0
    print(f"ponder {resp.version} at {_address(args)}; policy {resp.policy}; outcome log {resp.outcome_log or '-'}")
    for p in resp.pools:
        health = "up" if p.healthy else f"DOWN ({p.error})"
        s = p.stats
        sim = " [simulated]" if s.simulated else ""
        print(f"  {p.name:<12} {p.tier:<10} {p.backend:<9} {health:<6} model={p.model}{sim}")
        if p.healthy:
            print(f"  {'':<12} queue={s.queue_depth} running={s.running} tokens/s={s.tokens_per_s:.1f} "
                  f"requests={s.requests_total}")
    return 0


def cmd_feedback(args) -> int:
    from ponder.v1 import router_pb2

    req = router_pb2.FeedbackRequest(request_id=args.request_id)
    if args.correct is not None:
        req.correct = args.correct
    if args.score is not None:
        req.score = args.score
    try:
        asyncio.run(_call(args, lambda stub: stub.Feedback(req, timeout=args.timeout)))
    except grpc.aio.AioRpcError as e:
        return _rpc_failed(e, _address(args))
    print(f"recorded feedback for {args.request_id}", file=sys.stderr)
    return 0


def cmd_up(args) -> int:
    from ponder import stack

    cfg = load_config(args.config)
    cfg = stack.prepare_models(cfg)
    redis_url, local_redis = stack.start_redis(cfg)
    try:
        pool_address = stack.deploy_pools(cfg)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stack.run_router(cfg, pool_address, redis_url, stop)

        asyncio.run(main())
    finally:
        stack.say_stderr("stopping pools and Ray")
        stack.shutdown_pools()
        if local_redis:
            local_redis.stop()
        stack.say_stderr("stopped")
    return 0


def cmd_router_serve(args) -> int:
    from ponder import stack

    cfg = load_config(args.config)
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("PONDER_REDIS_URL") or cfg.redis.url

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stack.run_router(cfg, args.pool_address, redis_url, stop, config_path=args.config)

    asyncio.run(main())
    return 0


def cmd_pool_serve(args) -> int:
    from ponder.common.telemetry import Tracing
    from ponder.pools.servicer import SERVICE, start_standalone
    from ponder.common.grpcutil import stop_server

    cfg = load_config(args.config)
    try:
        pool = cfg.pool(args.pool)
    except KeyError:
        return _fail(f"--pool: unknown pool {args.pool!r}; configured: {', '.join(cfg.pool_names)}", 2)

    async def main() -> None:
        tracing = Tracing.from_env(f"ponder-pool-{pool.name}")
        server, port, engine, health = await start_standalone(pool, f"{args.host}:{args.port}", tracing)
        print(f"pool {pool.name!r} ({engine.backend.kind}: {engine.backend.model}) on {args.host}:{port}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await stop_server(server, health, [SERVICE], 5.0)
        await engine.close()

    asyncio.run(main())
    return 0


# ---------------------------------------------------------------- parser
def _request_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the prompt")
    p.add_argument("--budget", type=float, help="max compute units for this request")
    p.add_argument("--max-latency-ms", type=float, help="latency cap: plans expected to take longer are cut or refused; "
                   "also the deadline")
    p.add_argument("--pool", help="force this pool")
    p.add_argument("--strategy", choices=["single", "best_of_n", "think"], help="force this strategy")
    p.add_argument("--samples", type=int, help="best_of_n sample count")
    p.add_argument("--thinking", type=int, help="thinking budget in tokens")
    p.add_argument("--max-tokens", type=int, help="output tokens (thinking excluded)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--context-id", help="use a stored (consolidated) context")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--address", help=f"router host:port (default $PONDER_ADDRESS or {DEFAULT_ADDRESS})")
    p.add_argument("--timeout", type=float, default=300.0, help="deadline in seconds")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ponder", description="Spend LLM compute per prompt.")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="run the local stack (router, pools on Ray Serve, Redis) in the foreground")
    p.add_argument("--config", help="ponder.yaml (default: built-in defaults)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("ask", help="ask a question")
    _request_args(p)
    p.add_argument("--stream", action="store_true", help="print tokens as they come")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("plan", help="show the plan the router would choose (dry run)")
    _request_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("status", help="pools, health, load and the model each runs")
    p.add_argument("--json", action="store_true")
    p.add_argument("--address")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("feedback", help="record whether an answer was right (training data for the router)")
    p.add_argument("request_id")
    verdict = p.add_mutually_exclusive_group()
    verdict.add_argument("--correct", dest="correct", action="store_true", default=None)
    verdict.add_argument("--wrong", dest="correct", action="store_false")
    p.add_argument("--score", type=float, help="quality in [0, 1]")
    p.add_argument("--address")
    p.add_argument("--timeout", type=float, default=10.0)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("router-serve", help="run the router alone")
    p.add_argument("--config", help="ponder.yaml")
    p.add_argument("--pool-address", help="Serve gRPC proxy host:port for pools without an address")
    p.set_defaults(func=cmd_router_serve)

    p = sub.add_parser("pool-serve", help="run one pool as a plain gRPC server, without Ray")
    p.add_argument("--config", help="ponder.yaml")
    p.add_argument("--pool", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.set_defaults(func=cmd_pool_serve)

    # Sub-commands that live beside their code; each sets ``func``.
    from ponder.router import cli_router
    from ponder.tasksets import cli as samples_cli
    from ponder.voting import cli as vote_cli

    cli_router.add_parser(sub)
    vote_cli.add_parser(sub)
    samples_cli.add_parser(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except PonderError as e:
        return _fail(e.message, 2)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
