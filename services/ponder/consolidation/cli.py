"""``ponder consolidator-serve`` and ``ponder context put|get|consolidate|jobs|delete``.

``add_parser(subparsers)`` adds both commands; each sets ``func`` returning the
exit code (0 ok, 1 failed or unreachable, 2 bad input).
"""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import sys
import time

import grpc
from google.protobuf.json_format import MessageToDict

DEFAULT_ADDRESS = "127.0.0.1:50061"


def _address(args) -> str:
    return args.address or os.environ.get("PONDER_CONSOLIDATOR_ADDRESS") or DEFAULT_ADDRESS


def _dict(msg) -> dict:
    return MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def default_policy_file(config: str | None) -> str | None:
    """consolidation.yaml beside the config file (where the operator's ConfigMap puts it), if present."""
    if not config:
        return None
    p = pathlib.Path(config).with_name("consolidation.yaml")
    return str(p) if p.exists() else None


def cmd_serve(args) -> int:
    from ponder.common.config import load_config
    from ponder.consolidation.servicer import start

    cfg = load_config(args.config)
    redis_url = os.environ.get("REDIS_URL") or os.environ.get("PONDER_REDIS_URL") or cfg.redis.url
    if not redis_url:
        print("error: redis.url: the consolidator needs Redis (set REDIS_URL or redis.url)", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else int(os.environ.get("PONDER_CONSOLIDATOR_PORT") or cfg.consolidator.port)
    host = args.host or cfg.consolidator.host
    policy = args.policy_file or cfg.consolidator.policy_file or default_policy_file(args.config)

    async def main() -> None:
        srv = await start(cfg, redis_url, f"{host}:{port}", args.pool_address, policy)
        print(f"consolidator on {host}:{srv.port} (policies: {policy or 'defaults'})", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await srv.stop(5.0)

    asyncio.run(main())
    return 0


async def _rpc(args, fn):
    from ponder.v1 import consolidation_pb2_grpc

    from ponder.client.config import ClientConfig
    from ponder.common.auth import bearer_interceptors

    # TLS and the API key from the environment (PONDER_TLS_CA, PONDER_TLS_CERT/KEY, PONDER_API_KEY).
    cc = ClientConfig.resolve(_address(args))
    async with cc.channel(interceptors=bearer_interceptors(cc.api_key)) as ch:
        return await fn(consolidation_pb2_grpc.ConsolidatorStub(ch))


def _text(args) -> str:
    if args.text is not None:
        return args.text
    if args.file:
        return pathlib.Path(args.file).read_text()
    return sys.stdin.read()


def cmd_context(args) -> int:
    from ponder.v1 import consolidation_pb2 as pb

    op = args.context_op

    async def run(stub):
        if op == "put":
            req = pb.PutContextRequest(context_id=args.context_id, text=_text(args), tenant=args.tenant or "")
            if args.ttl_s is not None:
                req.ttl_s = args.ttl_s
            return await stub.PutContext(req, timeout=args.timeout)
        if op == "get":
            return await stub.GetContext(pb.GetContextRequest(context_id=args.context_id, include_text=args.text), timeout=args.timeout)
        if op == "delete":
            return await stub.DeleteContext(pb.DeleteContextRequest(context_id=args.context_id), timeout=args.timeout)
        if op == "jobs":
            return await stub.Jobs(pb.JobsRequest(context_id=args.context_id), timeout=args.timeout)
        job = await stub.Consolidate(pb.ConsolidateRequest(
            context_id=args.context_id, strategy=args.strategy or "", passes=args.passes or 0, pool=args.pool or ""),
            timeout=args.timeout)
        deadline = time.monotonic() + args.wait_s
        while args.wait_s > 0 and job.state not in ("done", "failed", "superseded") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            job = (await stub.Jobs(pb.JobsRequest(job_id=job.job_id), timeout=args.timeout)).jobs[0]
        return job

    try:
        resp = asyncio.run(_rpc(args, run))
    except grpc.aio.AioRpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 2 if e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND) else 1
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json or op in ("jobs", "delete"):
        print(json.dumps(_dict(resp)))
        return 0
    if op == "put":
        print(f"{resp.context_id}: version {resp.version[:12]}, {resp.chars} chars, ~{resp.tokens} tokens")
    elif op == "get":
        i = resp.info
        print(f"{i.context_id}: version {i.version[:12]}, ~{i.tokens} tokens raw")
        if resp.HasField("consolidated"):
            c = resp.consolidated
            print(f"  consolidated ({c.strategy}, {c.passes} passes): ~{c.tokens} tokens "
                  f"({i.tokens / max(c.tokens, 1):.1f}x fewer), cost {c.compute_units:.1f} CU, used {c.uses}x, "
                  f"{c.amortised_compute_units:.2f} CU per use")
        else:
            print("  no consolidated form of this version yet")
        if args.text:
            print(resp.consolidated.text if resp.HasField("consolidated") else resp.raw_text)
    else:
        print(f"job {resp.job_id}: {resp.state} ({resp.strategy} on {resp.pool}, step {resp.steps_done}/{resp.steps_total}, "
              f"{resp.compute_units:.1f} CU){' ' + resp.error if resp.error else ''}")
        if resp.state == "deferred":
            wait = max(0.0, resp.not_before - time.time())
            print(f"  deferred by the policy's min_interval_s: runs in {wait:.0f}s or later")
        return 1 if resp.state == "failed" else 0
    return 0


def add_parser(subparsers) -> None:
    s = subparsers.add_parser("consolidator-serve", help="run the sleep-time consolidator (context store and idle-only jobs)")
    s.add_argument("--config", help="ponder.yaml")
    s.add_argument("--host", help="bind address (default consolidator.host)")
    s.add_argument("--port", type=int, help="gRPC port (default $PONDER_CONSOLIDATOR_PORT or consolidator.port)")
    s.add_argument("--policy-file", help="consolidation.yaml (default: beside --config)")
    s.add_argument("--pool-address", help="Serve gRPC proxy host:port for pools without an address")
    s.set_defaults(func=cmd_serve)

    c = subparsers.add_parser("context", help="store, read and consolidate long contexts")
    sub = c.add_subparsers(dest="context_op", required=True)
    ops = {
        "put": "store a context (text from --text, --file or stdin)",
        "get": "versions, sizes and the consolidated form",
        "consolidate": "queue a consolidation job",
        "jobs": "a context's consolidation jobs",
        "delete": "remove a context",
    }
    for op, help_ in ops.items():
        p = sub.add_parser(op, help=help_)
        p.add_argument("context_id")
        p.add_argument("--address", help=f"consolidator host:port (default $PONDER_CONSOLIDATOR_ADDRESS or {DEFAULT_ADDRESS})")
        p.add_argument("--timeout", type=float, default=30.0)
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if op == "put":
            p.add_argument("--text")
            p.add_argument("--file")
            p.add_argument("--ttl-s", type=float)
            p.add_argument("--tenant")
        if op == "get":
            p.add_argument("--text", action="store_true", help="print the text sent to the model")
        if op == "consolidate":
            p.add_argument("--strategy", help="e.g. extractive, rethink or extractive+rethink (default: the consolidator's)")
            p.add_argument("--passes", type=int, help="rethink passes")
            p.add_argument("--pool", help="pool whose model and idleness the job uses")
            p.add_argument("--wait-s", type=float, default=0.0, help="wait up to this long for the job to end")
        p.set_defaults(func=cmd_context)
