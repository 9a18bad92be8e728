"""``ponder``: the command line.

  ponder up [--config FILE]                 run the local stack in the foreground
  ponder ask TEXT [--stream] [--budget N] [--pool NAME] [--json]
  ponder plan TEXT [--json]                 the plan the router would choose
  ponder status [--json]                    pools, health, load and real models
  ponder top [--metrics URL] [--json]       live view: pools, load, plan mix, CU/s, errors
  ponder feedback REQUEST_ID --correct|--wrong|--score S
  ponder router-serve --config FILE         the router alone (Kubernetes)
  ponder pool-serve --config FILE --pool N  one pool as a plain gRPC server (no Ray)
  ponder router train|eval|cv|retrain       difficulty routers from outcome tables
  ponder vote hanoi|add                     MAKER voting on a decomposed task
  ponder consolidator-serve --config FILE   the sleep-time consolidator alone
  ponder context put|get|consolidate ID     stored long contexts
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

from google.protobuf.json_format import MessageToDict

from ponder.common import eventloop
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


def _request_kwargs(args) -> dict[str, Any]:
    """``ponder.client`` keyword arguments from the request flags."""
    kw = dict(max_tokens=getattr(args, "max_tokens", None), temperature=getattr(args, "temperature", None),
              seed=getattr(args, "seed", None), budget_cu=args.budget, max_latency_ms=getattr(args, "max_latency_ms", None),
              pool=args.pool or "", strategy=args.strategy or "", samples=args.samples, thinking_budget=args.thinking,
              context_id=getattr(args, "context_id", None) or "")
    return kw


def _client(args):
    from ponder.client import Client

    return Client(_address(args), api_key=getattr(args, "api_key", None), timeout_s=args.timeout)


def _rpc_failed(e: PonderError, address: str) -> int:
    from ponder.common.errors import Unavailable

    if isinstance(e, Unavailable) and "connect" in e.message.lower():
        return _fail(f"no router at {address} ({e.message}); start one with `ponder up`")
    code = getattr(e, "grpc_code", None)
    return _fail(f"{code.name if code else type(e).__name__}: {e.message}", 2)


# ---------------------------------------------------------------- commands
def cmd_ask(args) -> int:
    from ponder.client import Delta

    try:
        with _client(args) as client:
            if not args.stream:
                answer = client.generate(args.text, **_request_kwargs(args))
            else:
                for ev in client.stream(args.text, **_request_kwargs(args)):
                    if isinstance(ev, Delta):
                        if not args.json:
                            style = "\x1b[2m" if ev.thinking and sys.stdout.isatty() else ""
                            print(f"{style}{ev.text}\x1b[0m" if style else ev.text, end="", flush=True)
                    else:
                        answer = ev
                if not args.json:
                    print()
    except PonderError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(answer.raw)))
    elif not args.stream:
        print(answer.text)
    if not args.json:
        p, u = answer.plan, answer.usage
        sim = " [simulated]" if answer.simulated else ""
        print(
            f"-- {p.pool}/{p.strategy} x{p.samples} think={p.thinking_budget} | {u.prompt_tokens}+{u.output_tokens} tokens, "
            f"{u.compute_units:.1f} CU, {u.latency_ms:.0f} ms | {answer.model}{sim}",
            file=sys.stderr,
        )
    return 0


def cmd_plan(args) -> int:
    try:
        with _client(args) as client:
            resp = client.plan(args.text, **_request_kwargs(args)).raw
    except PonderError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(resp.plan)))
        return 0
    p = resp.plan
    print(f"pool={p.pool} strategy={p.strategy} samples={p.samples} thinking_budget={p.thinking_budget} "
          f"expected={p.expected_compute_units:.1f} CU, {p.expected_latency_ms:.0f} ms  (policy {p.policy})")
    print(f"reason: {p.reason}")
    if p.clamped:
        print(f"clamped: {p.clamped}")
    if len(p.candidates) > 1:
        print("candidates:")
        for c in p.candidates:
            flag = " " if c.feasible else "x"
            print(f" {flag} {c.pool}/{c.strategy} n={c.samples} think={c.thinking_budget} "
                  f"acc={c.expected_accuracy:.3f} cost={c.expected_compute_units:.1f} "
                  f"latency={c.expected_latency_ms:.0f}ms score={c.score:.4f} {c.note}"
                  + (f" [clamped {c.clamped}]" if c.clamped else ""))
    return 0


def cmd_status(args) -> int:
    try:
        with _client(args) as client:
            resp = client.status().raw
    except PonderError as e:
        return _rpc_failed(e, _address(args))
    if args.json:
        print(json.dumps(_to_dict(resp)))
        return 0
    print(f"ponder {resp.version} at {_address(args)}; policy {resp.policy}; outcome log {resp.outcome_log or '-'}; "
          f"OpenAI API {resp.http.url or 'off'}")
    for p in resp.pools:
        health = "up" if p.healthy else f"DOWN ({p.error})"
        s = p.stats
        sim = " [simulated]" if s.simulated else ""
        print(f"  {p.name:<12} {p.tier:<10} {p.backend:<9} {health:<6} model={p.model}{sim}")
        b = p.breaker
        if b.state and b.state != "closed":
            print(f"  {'':<12} breaker {b.state} ({b.consecutive_failures} failures; "
                  f"probe in {b.retry_after_s:.1f}s)")
        if p.healthy:
            print(f"  {'':<12} queue={s.queue_depth} running={s.running} tokens/s={s.tokens_per_s:.1f} "
                  f"requests={s.requests_total}")
    return 0


def cmd_feedback(args) -> int:
    try:
        with _client(args) as client:
            client.feedback(args.request_id, correct=args.correct, score=args.score)
    except PonderError as e:
        return _rpc_failed(e, _address(args))
    print(f"recorded feedback for {args.request_id}", file=sys.stderr)
    return 0


def cmd_up(args) -> int:
    from ponder import stack

    cfg = stack.with_http_front(load_config(args.config))
    cfg = stack.prepare_models(cfg)
    redis_url, local_redis = stack.start_redis(cfg)
    try:
        pool_address = stack.deploy_pools(cfg)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            await stack.run_router(cfg, pool_address, redis_url, stop, consolidator=True)

        eventloop.run(main())
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

    eventloop.run(main())
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
        eventloop.freeze_startup_heap()
        print(f"pool {pool.name!r} ({engine.backend.kind}: {engine.backend.model}) on {args.host}:{port}", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await stop_server(server, health, [SERVICE], cfg.router.grace_s)
        await engine.close()

    eventloop.run(main())
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
    from ponder.consolidation import cli as consolidation_cli
    from ponder import cli_keys
    from ponder.router import cli_router
    from ponder.softcot import cli as softcot_cli
    from ponder.tasksets import cli as samples_cli
    from ponder.voting import cli as vote_cli

    from ponder import top
    from ponder.report import cli as report_cli

    cli_router.add_parser(sub)
    vote_cli.add_parser(sub)
    consolidation_cli.add_parser(sub)
    top.add_parser(sub)
    cli_keys.add_parser(sub)
    softcot_cli.add_parser(sub)
    samples_cli.add_parser(sub)
    report_cli.add_parser(sub)
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
