"""The local stack behind ``ponder up``: models, Redis, Ray Serve pools and the router.

Start order: prepare model files (with progress) -> Redis -> Ray + one Serve
application per pool -> voting workers and consolidator -> router. ``stop`` undoes it in reverse. Pools with
their own ``address`` are external and are not deployed.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from typing import Callable

from ponder.common import eventloop
from ponder.common.config import LlamaCppBackend, PonderConfig
from ponder.common.redis_server import LocalRedis
from ponder.common.telemetry import Tracing
from ponder.pools.models import cache_dir, ensure_default_gguf

log = logging.getLogger(__name__)
Say = Callable[[str], None]


def say_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def progress_bar(label: str, say: Say = say_stderr) -> Callable[[int, int], None]:
    last = [-1]
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        pct = int(100 * done / max(total, 1))
        if pct == last[0] or (not tty and pct % 25 and pct != 100):
            return
        last[0] = pct
        bar = "#" * (pct // 4)
        if tty:
            print(f"\r  {label} [{bar:<25}] {pct:3d}% ({done >> 20}/{total >> 20} MiB)", end="", file=sys.stderr, flush=True)
            if done >= total:
                print(file=sys.stderr)
        else:
            say(f"  {label}: {pct}%")

    return report


def prepare_models(cfg: PonderConfig, say: Say = say_stderr) -> PonderConfig:
    """Resolve default model files before Ray starts; returns cfg with explicit paths."""
    needs_default = [p for p in cfg.pools if isinstance(p.backend, LlamaCppBackend) and not p.backend.model_path and not p.address]
    if not needs_default:
        return cfg
    say("preparing model gemma-3-270m Q4_K_M (verified by SHA-256)")
    path = str(ensure_default_gguf(progress=progress_bar("assembling GGUF", say)))
    say(f"  model ready: {path}")
    pools = []
    for p in cfg.pools:
        if p in needs_default:
            p = p.model_copy(update={"backend": p.backend.model_copy(update={"model_path": path})})
        pools.append(p)
    return cfg.model_copy(update={"pools": pools})


def deploy_pools(cfg: PonderConfig, say: Say = say_stderr) -> str | None:
    """Start Ray and Serve and deploy each local pool; return the Serve gRPC address."""
    local = [p for p in cfg.pools if not p.address]
    if not local:
        return None
    os.environ.setdefault("RAY_SERVE_ENABLE_ACCESS_LOG", "0")
    # Ray starts workers at nice 15 to keep drivers responsive; a pool replica
    # is the workload itself and must not yield the CPU to Ray's daemons.
    os.environ.setdefault("RAY_worker_niceness", "0")
    import ray
    from ray import serve
    from ray.serve.config import gRPCOptions, HTTPOptions
    from ray.serve.schema import LoggingConfig

    from ponder.pools.serve_app import SERVICER_FUNCTION, build_app

    say("starting Ray")
    t0 = time.monotonic()
    ray.init(
        num_cpus=cfg.serve.num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        ignore_reinit_error=True,
    )
    serve.start(
        http_options=HTTPOptions(host="127.0.0.1", port=cfg.serve.http_port),
        grpc_options=gRPCOptions(port=cfg.serve.grpc_port, grpc_servicer_functions=[SERVICER_FUNCTION]),
        logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
    )
    say(f"  Ray up in {time.monotonic() - t0:.1f}s; Serve gRPC on 127.0.0.1:{cfg.serve.grpc_port}")
    for p in local:
        t1 = time.monotonic()
        say(f"deploying pool {p.name!r} ({p.backend.kind}: {p.model_label()})")
        serve.run(
            build_app({"pool": p.model_dump(mode="json")}),
            name=p.name,
            route_prefix=f"/{p.name}",
            logging_config=LoggingConfig(enable_access_log=False, log_level="WARNING"),
        )
        say(f"  pool {p.name!r} ready in {time.monotonic() - t1:.1f}s")
    return f"127.0.0.1:{cfg.serve.grpc_port}"


UP_HTTP_PORT = 8080


def with_http_front(cfg: PonderConfig, port: int = UP_HTTP_PORT) -> PonderConfig:
    """``cfg`` with the OpenAI-compatible front on ``port`` unless ``router.http_port`` is already set (``ponder up``)."""
    if cfg.router.http_port is not None:
        return cfg
    return cfg.model_copy(update={"router": cfg.router.model_copy(update={"http_port": port})})


def shutdown_pools() -> None:
    import ray
    from ray import serve

    if ray.is_initialized():
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def start_redis(cfg: PonderConfig, say: Say = say_stderr) -> tuple[str, LocalRedis | None]:
    """(url, local server or None): REDIS_URL or redis.url when set, else our own redis-server."""
    url = os.environ.get("REDIS_URL") or cfg.redis.url
    if url:
        say(f"using Redis at {url}")
        return url, None
    local = LocalRedis(cache_dir() / "redis").start().supervise()
    say(f"started redis-server on {local.url} (data in {local.data_dir}; restarted with its data if it dies)")
    return local.url, local


async def start_consolidator(cfg: PonderConfig, pool_address: str | None, redis_url: str | None, say: Say = say_stderr):
    """The sleep-time consolidator in this process, unless disabled, external, or without Redis."""
    c = cfg.consolidator
    if not c.enabled or c.address or not redis_url:
        return None
    from ponder.consolidation.servicer import start

    srv = await start(cfg, redis_url, f"{c.host}:{c.port}", pool_address, c.policy_file)
    say(f"consolidator on {c.host}:{srv.port} (strategy {c.default_strategy}; runs only while pools are idle)")
    return srv


async def run_router(cfg: PonderConfig, pool_address: str | None, redis_url: str | None, stop_event,
                     say: Say = say_stderr, config_path: str | None = None, consolidator: bool = False) -> None:
    """Serve until ``stop_event``; with ``config_path``, apply edits to that file live.
    ``consolidator``: also run the consolidator in this process (``ponder up``; on Kubernetes
    it is its own Deployment)."""
    import asyncio

    from ponder.router.server import start_router, watch_config

    tracing = Tracing.from_env("ponder-router")
    voting = None
    voting_address = cfg.voting.address
    if cfg.voting.enabled and not voting_address:
        from ponder.voting.servicer import start_from_config

        host = pool_address.rsplit(":", 1)[0] if pool_address else "127.0.0.1"
        voting = await start_from_config(cfg, f"{cfg.voting.host}:{cfg.voting.port}", tracing, serve_host=host,
                                         redis_url=redis_url)
        local = "127.0.0.1" if cfg.voting.host in ("0.0.0.0", "::") else cfg.voting.host
        voting_address = f"{local}:{voting.port}"
        say(f"voting workers on {cfg.voting.host}:{voting.port}")
    consolidator = await start_consolidator(cfg, pool_address, redis_url, say) if consolidator else None
    handle = await start_router(cfg, pool_address, redis_url, tracing, voting_address=voting_address)
    eventloop.freeze_startup_heap()  # a serving process: the collector no longer rescans what startup built
    say(f"ponder is up: router on {cfg.router.host}:{handle.port} (gRPC). Try: ponder ask \"The capital of France is\"")
    if handle.http_url:
        say(f"OpenAI-compatible API at {handle.http_url} (model \"ponder/auto\" or a pool name)")
    watcher = asyncio.create_task(watch_config(config_path, handle, cfg.router.config_poll_s)) if config_path else None
    try:
        await stop_event.wait()
    finally:
        if watcher:
            watcher.cancel()
        say("shutting down router")
        await handle.stop(cfg.router.grace_s)
        if voting is not None:
            await voting.stop(cfg.router.grace_s)
        if consolidator is not None:
            await consolidator.stop(cfg.router.grace_s)
        tracing.shutdown()
