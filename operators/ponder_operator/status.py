"""Status of ponder custom resources (pure): conditions and the RayService mapping.

A ModelPool has two conditions, written by two different handlers:
- ``Reconciled`` (the create/update handler): ``Applied`` (the RayService and
  Service for ``observedGeneration`` are written), ``InvalidSpec`` (the spec
  fails validation; fix it), ``ApiError`` (a child could not be written;
  retried with backoff).
- ``Ready`` (the watch on the owned RayService): ``Ready`` (application RUNNING
  with serving endpoints, on a RayService that has observed the spec of the
  pool's current generation), ``Updating`` (the RayService has not yet observed
  that spec), ``Deploying`` (RayService or application starting), ``NoEndpoints``
  (RUNNING but no pod passes KubeRay's serve readiness), ``DeployFailed``,
  ``Unhealthy``, or the reason of a failed ``Reconciled`` for this generation.
- RoutingPolicy / ConsolidationPolicy: ``Applied``, ``PoolNotFound``,
  ``Conflict`` (another RoutingPolicy in the namespace owns the ConfigMap),
  ``InvalidSpec``, ``ApiError``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ponder_operator import names
from ponder_operator.modelpool import active_cluster

_APP_REASONS = {
    "RUNNING": ("True", "Ready"),
    "DEPLOYING": ("False", "Deploying"),
    "NOT_STARTED": ("False", "Deploying"),
    "DELETING": ("False", "Deploying"),
    "DEPLOY_FAILED": ("False", "DeployFailed"),
    "UNHEALTHY": ("False", "Unhealthy"),
}


def now_rfc3339(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(ctype: str, status: str, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    c: dict[str, Any] = {"type": ctype, "status": status, "reason": reason, "message": message[:1024]}
    if generation is not None:
        c["observedGeneration"] = generation
    return c


def find(conditions: list[dict] | None, ctype: str) -> dict | None:
    return next((c for c in conditions or [] if c.get("type") == ctype), None)


def merge_conditions(old: list[dict] | None, new: list[dict], now: dt.datetime) -> list[dict]:
    """Replace conditions by type; keep ``lastTransitionTime`` when the status did not change."""
    prior = {c.get("type"): c for c in (old or [])}
    out = {t: c for t, c in prior.items() if t is not None}
    for c in new:
        before = prior.get(c["type"])
        keep = before is not None and before.get("status") == c["status"] and before.get("lastTransitionTime")
        out[c["type"]] = {**c, "lastTransitionTime": before["lastTransitionTime"] if keep else now_rfc3339(now)}
    return sorted(out.values(), key=lambda c: c["type"])


def pool_ready(pool: str, rayservice: dict | None, generation: int | None) -> tuple[dict[str, Any], str | None]:
    """Ready condition and Serve application status of a pool from its RayService.

    Ready is True only when (1) the RayService carries the ModelPool generation
    ``generation`` in its ``ponder.dev/pool-generation`` annotation, (2) KubeRay
    has observed the RayService's own generation (``status.observedGeneration``),
    (3) the active cluster's application is RUNNING and (4) it has serving
    endpoints. Reads ``status.activeServiceStatus.applicationStatuses[<pool>]``;
    an absent RayService or one without status counts as ``Deploying``.
    """
    if not rayservice:
        return condition("Ready", "False", "Deploying", "RayService not created yet", generation), None
    status = rayservice.get("status") or {}
    meta = rayservice.get("metadata") or {}
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    app = apps.get(pool)
    app_status = None if app is None else str(app.get("status") or "NOT_STARTED")
    written = (meta.get("annotations") or {}).get(names.POOL_GENERATION)
    if generation is not None and written != str(generation):
        msg = f"RayService holds the spec of generation {written or 'unknown'}, waiting for {generation}"
        return condition("Ready", "False", "Updating", msg, generation), app_status
    rs_gen, seen = meta.get("generation"), status.get("observedGeneration")
    if rs_gen is not None and (seen is None or int(seen) < int(rs_gen)):
        msg = f"KubeRay has not observed RayService generation {rs_gen} yet (observed {seen})"
        return condition("Ready", "False", "Updating", msg, generation), app_status
    if app is None:
        pending = (status.get("pendingServiceStatus") or {}).get("applicationStatuses") or {}
        app = pending.get(pool)
        if app is None:
            return condition("Ready", "False", "Deploying", "waiting for the Ray cluster and Serve", generation), None
        app_status = str(app.get("status") or "NOT_STARTED")
        if app_status == "RUNNING":  # pending cluster only: not serving traffic yet
            return condition("Ready", "False", "Deploying", "new cluster RUNNING, not yet active", generation), app_status
    cstatus, reason = _APP_REASONS.get(app_status, ("Unknown", "Deploying"))
    message = app.get("message") or _deployment_messages(app) or f"Serve application {app_status}"
    if reason == "Ready" and int(status.get("numServeEndpoints") or 0) == 0:
        cstatus, reason, message = "False", "NoEndpoints", "application RUNNING but no pod serves it yet"
    return condition("Ready", cstatus, reason, message, generation), app_status


def _deployment_messages(app: dict) -> str:
    deps = app.get("serveDeploymentStatuses") or {}
    msgs = [f"{n}: {d.get('status')} {d.get('message', '')}".strip() for n, d in sorted(deps.items()) if d.get("message")]
    return "; ".join(msgs)


def observed_status(
    pool: str, namespace: str, generation: int | None, rayservice: dict | None, old: dict | None,
    now: dt.datetime, grpc_port: int,
) -> dict[str, Any]:
    """The ModelPool status patch from its RayService (what the watch writes).

    It leaves ``observedGeneration`` and ``Reconciled`` to the reconcile handler;
    when ``Reconciled`` is False for ``generation`` (invalid spec, API error), Ready
    repeats that reason instead of the old RayService's state.
    """
    old = old or {}
    ready, app_status = pool_ready(pool, rayservice, generation)
    rec = find(old.get("conditions"), "Reconciled")
    if rec is not None and rec.get("status") == "False" and rec.get("observedGeneration") == generation:
        ready = condition("Ready", "False", rec["reason"], rec.get("message", ""), generation)
    return {
        "conditions": merge_conditions(old.get("conditions"), [ready], now),
        "rayService": names.rayservice_name(pool),
        "address": names.pool_address(pool, namespace, grpc_port),
        "applicationStatus": app_status,
        "activeCluster": active_cluster(rayservice),
    }


def reconciled_status(generation: int | None, old: dict | None, now: dt.datetime, reason: str = "Applied",
                      message: str = "RayService and Service written") -> dict[str, Any]:
    """The reconcile handler's patch: ``observedGeneration`` and ``Reconciled``; a
    failure (``reason`` other than ``Applied``) also sets Ready False with it."""
    ok = reason == "Applied"
    new = [condition("Reconciled", "True" if ok else "False", reason, message, generation)]
    if not ok:
        new.append(condition("Ready", "False", reason, message, generation))
    return {"observedGeneration": generation,
            "conditions": merge_conditions((old or {}).get("conditions"), new, now)}
