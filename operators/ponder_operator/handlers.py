"""kopf handlers: they only wire the pure reconcile functions to the API.

- ModelPool create/update/resume: validate, render RayService + Service, adopt,
  apply, then refresh the namespace's ConfigMap. Invalid spec: Ready=False
  (InvalidSpec) and ``PermanentError``; API errors: Ready=False (ApiError) and
  ``TemporaryError`` with the delay from ``kube.classify``.
- ModelPool timer: status from the RayService and difficulty-aware floor.
- RoutingPolicy / ConsolidationPolicy and ModelPool deletion: refresh the
  namespace's ConfigMap.

Run with ``python -m ponder_operator`` (Lease leader election, then kopf), or
``kopf run -m ponder_operator.handlers --all-namespaces --standalone`` for one
replica.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import kopf

from ponder.common.crd_models import GROUP, VERSION, ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec
from ponder_operator import demand, modelpool, names, routing
from ponder_operator import status as st
from ponder_operator.kube import ApiFailure, Kube, classify
from ponder_operator.modelpool import InvalidSpec
from ponder_operator.settings import Settings

POOLS, ROUTING, CONSOLIDATION = "modelpools", "routingpolicies", "consolidationpolicies"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _retry(e: ApiFailure) -> Exception:
    kind, delay = classify(e.status)
    if kind == "permanent":
        return kopf.PermanentError(str(e))
    return kopf.TemporaryError(str(e), delay=delay)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.networking.error_backoffs = [1, 2, 5, 10, 30, 60]
    if "settings" not in memo:
        memo.settings = Settings.from_env()
    if "kube" not in memo:
        memo.kube = Kube.from_env()


# ----------------------------------------------------------------- ModelPool
@kopf.on.create(GROUP, VERSION, POOLS)
@kopf.on.update(GROUP, VERSION, POOLS)
@kopf.on.resume(GROUP, VERSION, POOLS)
def reconcile_pool(name: str, namespace: str, spec: Any, status: Any, meta: Any, body: Any,
                   memo: kopf.Memo, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
    gen = meta.get("generation")
    old = dict(status or {})
    try:
        children = modelpool.children(name, namespace, dict(spec), memo.settings, old.get("replicasFloor"))
    except InvalidSpec as e:
        patch.status.update(st.invalid_status(gen, old, str(e), _now()))
        raise kopf.PermanentError(f"invalid ModelPool spec: {e}") from None
    try:
        for child in children:
            kopf.adopt(child, owner=body)
            memo.kube.apply(child)
        rs = memo.kube.get_rayservice(namespace, names.rayservice_name(name))
    except ApiFailure as e:
        patch.status.update(st.invalid_status(gen, old, str(e), _now(), reason="ApiError"))
        raise _retry(e) from None
    patch.status.update(st.pool_status(name, namespace, gen, rs, old, _now(), memo.settings.pool_grpc_port))
    _sync_quietly(namespace, memo, logger)


@kopf.on.delete(GROUP, VERSION, POOLS, optional=True)
def pool_deleted(namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _sync_quietly(namespace, memo, logger)


@kopf.timer(GROUP, VERSION, POOLS, interval=15, initial_delay=5, idle=None)
def observe_pool(name: str, namespace: str, spec: Any, status: Any, meta: Any, body: Any,
                 memo: kopf.Memo, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
    try:
        parsed = modelpool.parse_spec(name, dict(spec))
    except InvalidSpec:
        return  # reported by reconcile_pool
    old = dict(status or {})
    gen = meta.get("generation")
    try:
        rs = memo.kube.get_rayservice(namespace, names.rayservice_name(name))
    except ApiFailure as e:
        raise _retry(e) from None
    new = st.pool_status(name, namespace, gen, rs, old, _now(), memo.settings.pool_grpc_port)
    if parsed.autoscaling.demand.enabled:
        new.update(_demand_floor(name, namespace, parsed, old, body, memo, logger))
    patch.status.update(new)


def _demand_floor(name: str, namespace: str, spec: ModelPoolSpec, old: dict, body: Any,
                  memo: kopf.Memo, logger: logging.Logger) -> dict:
    s: Settings = memo.settings
    now = time.time()
    if old.get("plannedDemandAt") and now - float(old["plannedDemandAt"]) < s.demand_poll_s:
        return {}
    try:
        texts = memo.kube.router_metrics(s.namespace, s.router_metrics_service, s.router_metrics_port)
    except Exception as e:  # router down or unreachable: keep the current floor
        logger.warning("planned demand unavailable: %s", e)
        return {}
    prev = None
    if old.get("plannedDemandAt") is not None and old.get("replicasFloor") is not None:
        prev = demand.Floor(int(old["replicasFloor"]), float(old.get("plannedDemandCuPerS") or 0.0),
                            float(old["plannedDemandAt"]), old.get("floorRaisedAt"))
    f = demand.next_floor(spec, demand.parse_demand(texts).get(name, 0.0), now, prev)
    if prev is None or f.floor != prev.floor:
        rs = modelpool.rayservice(name, namespace, spec, s, f.floor)
        kopf.adopt(rs, owner=body)
        try:
            memo.kube.apply(rs)
        except ApiFailure as e:
            raise _retry(e) from None
        logger.info("replica floor of %s set to %d (planned %.1f cu/s)", name, f.floor, f.demand)
    return {"replicasFloor": f.floor, "plannedDemandCuPerS": f.demand, "plannedDemandAt": f.at,
            "floorRaisedAt": f.raised_at}


# ----------------------------------------------------------------- policies
@kopf.on.create(GROUP, VERSION, ROUTING)
@kopf.on.update(GROUP, VERSION, ROUTING)
@kopf.on.resume(GROUP, VERSION, ROUTING)
@kopf.on.create(GROUP, VERSION, CONSOLIDATION)
@kopf.on.update(GROUP, VERSION, CONSOLIDATION)
@kopf.on.resume(GROUP, VERSION, CONSOLIDATION)
def reconcile_policy(name: str, namespace: str, body: Any, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    try:
        outcome = sync_namespace(namespace, memo)
    except ApiFailure as e:
        raise _retry(e) from None
    reason = outcome.get((body["kind"], name))
    if reason == "InvalidSpec":
        raise kopf.PermanentError(f"invalid {body['kind']} spec")
    if reason == "PoolNotFound":
        raise kopf.TemporaryError("referenced pools do not exist yet", delay=30)


@kopf.on.delete(GROUP, VERSION, ROUTING, optional=True)
@kopf.on.delete(GROUP, VERSION, CONSOLIDATION, optional=True)
def policy_deleted(namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _sync_quietly(namespace, memo, logger)


def _sync_quietly(namespace: str, memo: kopf.Memo, logger: logging.Logger) -> None:
    try:
        sync_namespace(namespace, memo)
    except ApiFailure as e:
        logger.warning("config of namespace %s not refreshed: %s", namespace, e)


def sync_namespace(namespace: str, memo: kopf.Memo) -> dict[tuple[str, str], str]:
    """Rebuild the namespace's ConfigMap and the policies' status; returns the Ready
    reason per (kind, name) of each policy."""
    kube: Kube = memo.kube
    now = _now()
    state = routing.NamespaceState(namespace)
    invalid: dict[tuple[str, str], tuple[dict, str]] = {}
    objs = {p: [o for o in kube.list_ponder(namespace, p) if not o["metadata"].get("deletionTimestamp")]
            for p in (POOLS, ROUTING, CONSOLIDATION)}
    for o in objs[POOLS]:
        try:
            state.pools[o["metadata"]["name"]] = modelpool.parse_spec(o["metadata"]["name"], o.get("spec"))
        except InvalidSpec:
            pass
    for plural, model in ((ROUTING, RoutingPolicySpec), (CONSOLIDATION, ConsolidationPolicySpec)):
        for o in objs[plural]:
            n = o["metadata"]["name"]
            try:
                parsed = modelpool.validate(model, o["kind"], n, o.get("spec"))
            except InvalidSpec as e:
                invalid[(o["kind"], n)] = (o, str(e))
                continue
            if plural == ROUTING:
                state.routing.append((o["metadata"].get("creationTimestamp", ""), n, parsed))
            else:
                state.consolidation[n] = parsed
    owner = routing.owner_policy(state)
    outcome: dict[tuple[str, str], str] = {}
    messages: dict[tuple[str, str], str] = {}
    cm_name = None
    if owner is not None:
        key = ("RoutingPolicy", owner[0])
        try:
            cm = routing.config_map(state, memo.settings)
        except routing.MissingPools as e:
            outcome[key], messages[key] = "PoolNotFound", str(e)
        else:
            if cm is None:
                outcome[key], messages[key] = "PoolNotFound", "no valid ModelPool in the namespace"
            else:
                owner_obj = next(o for o in objs[ROUTING] if o["metadata"]["name"] == owner[0])
                kopf.adopt(cm, owner=owner_obj)
                kube.apply(cm)
                cm_name = cm["metadata"]["name"]
                outcome[key], messages[key] = "Applied", f"written to ConfigMap {cm_name}"
    for _, n, _spec in state.routing:
        key = ("RoutingPolicy", n)
        if key not in outcome:
            outcome[key], messages[key] = "Conflict", f"RoutingPolicy {owner[0]} owns this namespace's config"
    _, missing = routing.consolidation_doc(state)
    for n in state.consolidation:
        key = ("ConsolidationPolicy", n)
        if n in missing:
            outcome[key], messages[key] = "PoolNotFound", f"unknown pool {missing[n][0]!r}"
        else:
            outcome[key], messages[key] = "Applied", "written to consolidation.yaml" if cm_name else "waiting for a RoutingPolicy"
    for key, (o, msg) in invalid.items():
        outcome[key], messages[key] = "InvalidSpec", msg
    by_key = {(o["kind"], o["metadata"]["name"]): o for p in (ROUTING, CONSOLIDATION) for o in objs[p]}
    for key, reason in outcome.items():
        o = by_key[key]
        gen = o["metadata"].get("generation")
        ok = "True" if reason == "Applied" else "False"
        cond = st.condition("Ready", ok, reason, messages[key], gen)
        new = {"observedGeneration": gen, "configMap": cm_name,
               "conditions": st.merge_conditions((o.get("status") or {}).get("conditions"), [cond], now)}
        kube.patch_status(ROUTING if key[0] == "RoutingPolicy" else CONSOLIDATION, namespace, key[1], new)
    return outcome
