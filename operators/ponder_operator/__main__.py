"""``python -m ponder_operator``: elect a leader through a Lease, then run kopf.

Every replica waits for the Lease ``ponder-operator`` in ``$PONDER_NAMESPACE``;
the holder runs the handlers in standalone mode and exits when it loses the
Lease (the Deployment restarts it as a candidate). A candidate answers
``/healthz`` itself while it waits; the leader answers through kopf's health
endpoint (same port), so one liveness/readiness probe covers both.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys

import kopf

from ponder_operator import handlers  # noqa: F401  (registers the handlers)
from ponder_operator.kube import Kube
from ponder_operator.leader import LeaseElector
from ponder_operator.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m ponder_operator", description=__doc__.splitlines()[0])
    ap.add_argument("--namespace", "-n", action="append", default=[], help="Namespace to watch (repeatable).")
    ap.add_argument("--all-namespaces", "-A", action="store_true", help="Watch every namespace.")
    ap.add_argument("--no-leader-election", action="store_true", help="Run the handlers at once (one replica only).")
    ap.add_argument("--lease-name", default="ponder-operator", help="Lease used for leader election.")
    ap.add_argument("--lease-duration-s", type=int, default=int(os.environ.get("PONDER_LEASE_DURATION_S", "15")))
    ap.add_argument("--renew-period-s", type=float, default=float(os.environ.get("PONDER_LEASE_RENEW_S", "2")),
                    help="How often the leader renews and candidates retry.")
    ap.add_argument("--renew-deadline-s", type=float, default=None,
                    help="The leader stops after this long without a successful renewal (default: 2/3 of the lease).")
    ap.add_argument("--liveness", default="http://0.0.0.0:8080/healthz", help="kopf liveness endpoint.")
    args = ap.parse_args(argv)
    if not args.namespace and not args.all_namespaces:
        ap.error("give --all-namespaces or at least one --namespace")
    deadline = args.renew_deadline_s if args.renew_deadline_s is not None else args.lease_duration_s * 2 / 3
    if not args.renew_period_s < deadline < args.lease_duration_s:
        ap.error(f"need --renew-period-s ({args.renew_period_s}) < renew deadline ({deadline}) "
                 f"< --lease-duration-s ({args.lease_duration_s})")
    args.renew_deadline_s = deadline
    return args


async def standby_health(url: str):
    """Serve 200 on the liveness URL's path while waiting for the Lease; returns the runner to stop."""
    from urllib.parse import urlparse

    from aiohttp import web

    u = urlparse(url)
    app = web.Application()
    app.router.add_get(u.path or "/", lambda _req: web.json_response({"leader": False}))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, u.hostname or "0.0.0.0", u.port or 8080).start()
    return runner


async def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    kube = Kube.from_env(settings.request_timeout_s)
    stop = asyncio.Event()
    keeper = None
    if not args.no_leader_election:
        from kubernetes import client

        identity = os.environ.get("POD_NAME") or socket.gethostname()
        elector = LeaseElector(client.CoordinationV1Api(), settings.namespace, args.lease_name, identity,
                               args.lease_duration_s, args.renew_period_s, renew_deadline_s=args.renew_deadline_s,
                               timeout_s=settings.request_timeout_s)
        logging.info("waiting for lease %s/%s as %s", settings.namespace, args.lease_name, identity)
        health = await standby_health(args.liveness)
        try:
            await elector.acquire()
        finally:
            await health.cleanup()
        keeper = asyncio.create_task(elector.keep(stop))
    memo = kopf.Memo(settings=settings, kube=kube)
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=args.all_namespaces,
            namespaces=args.namespace,
            stop_flag=stop,
            liveness_endpoint=args.liveness,
            memo=memo,
        )
    finally:
        if keeper is not None:
            keeper.cancel()
    return 1 if stop.is_set() else 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
