"""``python -m ponder_operator.uninstall``: the chart's pre-delete hook.

Helm deletes a release's Deployments and RBAC before any custom resource it
did not create itself, and never deletes CRDs; ModelPools applied with
``kubectl`` would outlive the operator and keep their RayServices (and GPU
pods) running. The hook runs while the operator still runs: it deletes every
RoutingPolicy, ConsolidationPolicy and ModelPool in the watched namespaces
with foreground propagation, so Kubernetes' garbage collector removes the
RayServices and Services they own, and waits until none of those objects and
no RayService the operator made remains.

``pending`` is the pure rule; ``run`` drives it through the API. Objects left
by an older operator with kopf's finalizer get it removed once half the
timeout has passed, so they cannot block the uninstall. Exit status 0 when
everything is gone, 1 on timeout (listing what is left).
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from typing import Any, Callable

from ponder_operator import names

KINDS = ("routingpolicies", "consolidationpolicies", "modelpools")
KOPF_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
OWNED = f"app.kubernetes.io/managed-by={names.MANAGED_BY['app.kubernetes.io/managed-by']}"
log = logging.getLogger("ponder.operator.uninstall")


def pending(objects: dict[str, list[dict]], rayservices: list[dict]) -> list[str]:
    """What still exists, as ``kind namespace/name`` lines (empty: the uninstall is done)."""
    out = [f"{plural} {o['metadata'].get('namespace')}/{o['metadata']['name']}"
           for plural in KINDS for o in objects.get(plural, [])]
    out += [f"rayservices {r['metadata'].get('namespace')}/{r['metadata']['name']}" for r in rayservices]
    return out


def run(kube: Any, namespaces: list[str | None], timeout_s: float, poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Delete and wait; returns the exit status."""
    start = clock()
    stripped = False
    while True:
        objects = {p: [o for ns in namespaces for o in kube.list_ponder(ns, p)] for p in KINDS}
        rayservices = [r for ns in namespaces for r in kube.list_rayservices(ns, OWNED)]
        left = pending(objects, rayservices)
        if not left:
            log.info("no ponder object and no RayService left")
            return 0
        elapsed = clock() - start
        if elapsed >= timeout_s:
            log.error("timed out after %.0f s; still present: %s", elapsed, "; ".join(left))
            return 1
        for plural in KINDS:
            for o in objects[plural]:
                meta = o["metadata"]
                if not meta.get("deletionTimestamp"):
                    kube.delete_ponder(meta["namespace"], plural, meta["name"])
                elif not stripped and elapsed >= timeout_s / 2 and KOPF_FINALIZER in (meta.get("finalizers") or []):
                    kube.remove_finalizer(meta["namespace"], plural, meta["name"], KOPF_FINALIZER)
        stripped = stripped or elapsed >= timeout_s / 2
        log.info("waiting for %d objects", len(left))
        sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ponder_operator.uninstall", description=__doc__.splitlines()[0])
    ap.add_argument("--namespace", "-n", action="append", default=[], help="Namespace to clean (repeatable).")
    ap.add_argument("--all-namespaces", "-A", action="store_true", help="Clean every namespace.")
    ap.add_argument("--timeout-s", type=float, default=600.0, help="Give up after this long (exit 1).")
    args = ap.parse_args(argv)
    if not args.namespace and not args.all_namespaces:
        ap.error("give --all-namespaces or at least one --namespace")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ponder_operator.kube import Kube

    return run(Kube.from_env(), [None] if args.all_namespaces else args.namespace, args.timeout_s)


if __name__ == "__main__":
    sys.exit(main())
