"""kopf handlers: they only wire the pure reconcile functions to the API.

- ModelPool create/update/resume: validate, render RayService + Service, adopt,
  apply, then refresh the namespace's ConfigMap; status ``observedGeneration`` and
  ``Reconciled``. Invalid spec: Reconciled=False (InvalidSpec) and
  ``PermanentError``; API errors: Reconciled=False (ApiError) and
  ``TemporaryError`` with the delay from ``kube.classify``.
- RayService events (a watch on the RayServices the operator owns): the owning
  ModelPool's Ready condition, application status and active cluster; the pool
  Service follows the active cluster; a RayService deleted by hand is recreated.
- One demand loop per operator (not per object): every ``demand_poll_s`` it reads
  the routers' planned demand and moves each pool's replica floor.
- RoutingPolicy / ConsolidationPolicy and ModelPool deletion: refresh the
  namespace's ConfigMap.

No handler needs a finalizer (no timers or daemons, deletion handlers are
optional), so deleting a ModelPool never waits for the operator: Kubernetes'
garbage collector removes its RayService and Service through the owner
references, even after the operator is gone.

Run with ``python -m ponder_operator`` (Lease leader election, then kopf), or
``kopf run -m ponder_operator.handlers --all-namespaces --standalone`` for one
replica.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

import kopf

from ponder.common.crd_models import GROUP, VERSION, ConsolidationPolicySpec, RoutingPolicySpec
from ponder_operator import demand, modelpool, names, routing
from ponder_operator import status as st
from ponder_operator.kube import ApiFailure, Kube, classify
from ponder_operator.modelpool import InvalidSpec
from ponder_operator.settings import Settings

POOLS, ROUTING, CONSOLIDATION = "modelpools", "routingpolicies", "consolidationpolicies"
log = logging.getLogger("ponder.operator")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _retry(e: ApiFailure) -> Exception:
    kind, delay = classify(e.status)
    if kind == "permanent":
        return kopf.PermanentError(str(e))
    return kopf.TemporaryError(str(e), delay=delay)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.networking.request_timeout = 60
    settings.networking.error_backoffs = [1, 2, 5, 10, 30, 60]
    if "settings" not in memo:
        memo.settings = Settings.from_env()
    if "kube" not in memo:
        memo.kube = Kube.from_env(memo.settings.request_timeout_s)
    memo.demand_task = asyncio.create_task(demand_loop(memo))


@kopf.on.cleanup()
async def stop_demand_loop(memo: kopf.Memo, **_: Any) -> None:
    task = memo.get("demand_task")
    if task is not None:
        task.cancel()


# ----------------------------------------------------------------- ModelPool
@kopf.on.create(GROUP, VERSION, POOLS)
@kopf.on.update(GROUP, VERSION, POOLS)
@kopf.on.resume(GROUP, VERSION, POOLS)
def reconcile_pool(name: str, namespace: str, spec: Any, status: Any, meta: Any, body: Any,
                   memo: kopf.Memo, patch: kopf.Patch, logger: logging.Logger, **_: Any) -> None:
    gen = meta.get("generation")
    old = dict(status or {})
    s: Settings = memo.settings
    try:
        parsed = modelpool.parse_spec(name, dict(spec))
    except InvalidSpec as e:
        patch.status.update(st.reconciled_status(gen, old, _now(), "InvalidSpec", str(e)))
        raise kopf.PermanentError(f"invalid ModelPool spec: {e}") from None
    floor = demand.floor_for(parsed, old)
    rs = modelpool.rayservice(name, namespace, parsed, s, floor, gen)
    try:
        kopf.adopt(rs, owner=body)
        memo.kube.apply(rs)
        live = memo.kube.get_rayservice(namespace, names.rayservice_name(name))
        svc = modelpool.service(name, namespace, s, modelpool.active_cluster(live))
        kopf.adopt(svc, owner=body)
        memo.kube.apply(svc)
    except ApiFailure as e:
        patch.status.update(st.reconciled_status(gen, old, _now(), "ApiError", str(e)))
        raise _retry(e) from None
    new = st.reconciled_status(gen, old, _now())
    new.update(st.observed_status(name, namespace, gen, live, {**old, **new}, _now(), s.pool_grpc_port))
    if not parsed.autoscaling.demand.enabled and old.get("replicasFloor") is not None:
        new.update(demand.CLEARED)
    patch.status.update(new)
    _sync_quietly(namespace, memo, logger)


@kopf.on.delete(GROUP, VERSION, POOLS, optional=True)
def pool_deleted(namespace: str, memo: kopf.Memo, logger: logging.Logger, **_: Any) -> None:
    _sync_quietly(namespace, memo, logger)


@kopf.on.event("ray.io", "v1", "rayservices", labels={names.POOL_LABEL: kopf.PRESENT})
def rayservice_changed(event: dict, body: Any, namespace: str, labels: Any, memo: kopf.Memo,
                       logger: logging.Logger, **_: Any) -> None:
    """Status of the owning ModelPool from its RayService, on every change KubeRay makes."""
    pool = labels[names.POOL_LABEL]
    try:
        owner = memo.kube.get_ponder(namespace, POOLS, pool)
        if owner is None or owner["metadata"].get("deletionTimestamp"):
            return
        old = owner.get("status") or {}
        gen = owner["metadata"].get("generation")
        s: Settings = memo.settings
        rs = dict(body)
        if event.get("type") == "DELETED":  # removed by hand while its ModelPool lives: recreate it
            rs = None
            try:
                spec = modelpool.parse_spec(pool, owner.get("spec"))
            except InvalidSpec:
                spec = None  # reported by reconcile_pool
            if spec is not None:
                rs = modelpool.rayservice(pool, namespace, spec, s, demand.floor_for(spec, old), gen)
                kopf.adopt(rs, owner=owner)
                memo.kube.apply(rs)
                logger.info("RayService of pool %s/%s recreated", namespace, pool)
        new = st.observed_status(pool, namespace, gen, rs, old, _now(), s.pool_grpc_port)
        if new["activeCluster"] != old.get("activeCluster"):
            svc = modelpool.service(pool, namespace, s, new["activeCluster"])
            kopf.adopt(svc, owner=owner)
            memo.kube.apply(svc)
            logger.info("pool %s/%s now serves from cluster %s", namespace, pool, new["activeCluster"])
        if any(old.get(k) != v for k, v in new.items()):
            memo.kube.patch_status(POOLS, namespace, pool, new)
    except ApiFailure as e:
        logger.warning("status of ModelPool %s/%s not refreshed: %s", namespace, pool, e)


async def demand_loop(memo: kopf.Memo) -> None:
    """Every ``demand_poll_s``: one ``demand_pass`` in a worker thread; errors are logged."""
    s: Settings = memo.settings
    while True:
        try:
            await asyncio.to_thread(demand_pass, memo.kube, s, time.time())
        except Exception as e:  # keep the loop alive; the next pass retries
            log.warning("demand pass failed: %s", e)
        await asyncio.sleep(s.demand_poll_s)


def demand_pass(kube: Kube, s: Settings, now: float) -> None:
    """Read planned demand once and apply ``demand.step`` to every ModelPool."""
    pools = [p for ns in (s.watch_namespaces or (None,)) for p in kube.list_ponder(ns, POOLS)]
    readings: dict[tuple[str, str], float] | None = None
    if any((p.get("spec") or {}).get("autoscaling", {}).get("demand", {}).get("enabled") for p in pools):
        try:
            texts = kube.router_metrics(s.namespace, s.router_metrics_service, s.router_metrics_port)
            readings = demand.parse_demand(texts, namespace=s.namespace)
        except Exception as e:  # router down or unreachable: keep the current floors
            log.warning("planned demand unavailable: %s", e)
    for p in pools:
        meta = p["metadata"]
        ns, name = meta["namespace"], meta["name"]
        if meta.get("deletionTimestamp"):
            continue
        try:
            spec = modelpool.parse_spec(name, p.get("spec"))
        except InvalidSpec:
            continue  # reported by reconcile_pool
        status = p.get("status") or {}
        if not (spec.autoscaling.demand.enabled or status.get("replicasFloor") is not None):
            continue
        value = None if readings is None else readings.get((ns, name), 0.0)
        render, floor, patch = demand.step(spec, status, value, now)
        if render:
            rs = modelpool.rayservice(name, ns, spec, s, floor, meta.get("generation"))
            kopf.adopt(rs, owner=p)
            kube.apply(rs)
            log.info("replica floor of %s/%s set to %s (planned %s cu/s)", ns, name, floor, patch.get("plannedDemandCuPerS"))
        if patch:
            kube.patch_status(POOLS, ns, name, patch)


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
