"""Status of ponder custom resources (pure): conditions and the RayService mapping.

Ready condition reasons
- ModelPool: ``Ready`` (application RUNNING with serving endpoints), ``Deploying``
  (RayService or application starting or updating), ``NoEndpoints`` (RUNNING but
  no pod passes KubeRay's serve readiness), ``DeployFailed`` (Serve could not
  build or deploy the application), ``Unhealthy`` (a replica fails its health
  checks), ``InvalidSpec`` (the spec fails validation; fix it), ``ApiError`` (the
  operator could not write a child; retried with backoff).
- RoutingPolicy / ConsolidationPolicy: ``Applied``, ``PoolNotFound``,
  ``Conflict`` (another RoutingPolicy in the namespace owns the ConfigMap),
  ``InvalidSpec``, ``ApiError``.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from ponder_operator import names

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

    Reads ``status.activeServiceStatus.applicationStatuses[<pool>]`` and
    ``status.numServeEndpoints``; a RayService that is absent or has no status yet
    counts as ``Deploying``.
    """
    status = (rayservice or {}).get("status") or {}
    if not rayservice:
        return condition("Ready", "False", "Deploying", "RayService not created yet", generation), None
    apps = (status.get("activeServiceStatus") or {}).get("applicationStatuses") or {}
    app = apps.get(pool)
    if app is None:
        pending = (status.get("pendingServiceStatus") or {}).get("applicationStatuses") or {}
        app = pending.get(pool)
        if app is None:
            return condition("Ready", "False", "Deploying", "waiting for the Ray cluster and Serve", generation), None
    app_status = str(app.get("status") or "NOT_STARTED")
    cstatus, reason = _APP_REASONS.get(app_status, ("Unknown", "Deploying"))
    message = app.get("message") or _deployment_messages(app) or f"Serve application {app_status}"
    if reason == "Ready" and int(status.get("numServeEndpoints") or 0) == 0 and "numServeEndpoints" in status:
        cstatus, reason, message = "False", "NoEndpoints", "application RUNNING but no pod serves it yet"
    return condition("Ready", cstatus, reason, message, generation), app_status


def _deployment_messages(app: dict) -> str:
    deps = app.get("serveDeploymentStatuses") or {}
    msgs = [f"{n}: {d.get('status')} {d.get('message', '')}".strip() for n, d in sorted(deps.items()) if d.get("message")]
    return "; ".join(msgs)


def pool_status(
    pool: str, namespace: str, generation: int | None, rayservice: dict | None, old: dict | None,
    now: dt.datetime, grpc_port: int,
) -> dict[str, Any]:
    """The ModelPool status patch for the current RayService status."""
    ready, app_status = pool_ready(pool, rayservice, generation)
    old = old or {}
    return {
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions"), [ready], now),
        "rayService": names.rayservice_name(pool),
        "address": names.pool_address(pool, namespace, grpc_port),
        "applicationStatus": app_status,
    }


def invalid_status(generation: int | None, old: dict | None, message: str, now: dt.datetime, reason: str = "InvalidSpec") -> dict:
    """Status patch for a spec the operator rejects or cannot apply."""
    c = condition("Ready", "False", reason, message, generation)
    return {"observedGeneration": generation, "conditions": merge_conditions((old or {}).get("conditions"), [c], now)}
