"""Leader election on a ``coordination.k8s.io/v1`` Lease.

Only the holder of the Lease runs the kopf handlers, so two operator replicas
never reconcile the same object at once; the other waits and takes over when
the holder stops renewing. ``decide`` is the pure rule; ``LeaseElector`` applies
it through the API with optimistic concurrency (``resourceVersion``), so two
candidates racing for an expired Lease cannot both win.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("ponder.operator.leader")


@dataclass(frozen=True)
class Decision:
    action: str  # "create" | "renew" | "acquire" | "wait"
    spec: dict[str, Any] | None


def _ts(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(s: str | None) -> dt.datetime | None:
    if not s:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return dt.datetime.strptime(s, fmt).replace(tzinfo=dt.timezone.utc)
        except ValueError:
            continue
    return None


def decide(lease_spec: dict[str, Any] | None, identity: str, now: dt.datetime, duration_s: int) -> Decision:
    """What a candidate does with the Lease's current spec (None: no Lease yet).

    The holder renews; anyone takes a Lease whose renewTime + duration has passed
    (or that has no holder), incrementing ``leaseTransitions``; otherwise wait.
    """
    fresh = {
        "holderIdentity": identity,
        "leaseDurationSeconds": duration_s,
        "acquireTime": _ts(now),
        "renewTime": _ts(now),
        "leaseTransitions": 0,
    }
    if lease_spec is None:
        return Decision("create", fresh)
    holder = lease_spec.get("holderIdentity")
    if holder == identity:
        return Decision("renew", {**lease_spec, "renewTime": _ts(now), "leaseDurationSeconds": duration_s})
    renewed = _parse(lease_spec.get("renewTime"))
    duration = int(lease_spec.get("leaseDurationSeconds") or duration_s)
    expired = renewed is None or now >= renewed + dt.timedelta(seconds=duration)
    if not holder or expired:
        return Decision("acquire", {**fresh, "leaseTransitions": int(lease_spec.get("leaseTransitions") or 0) + 1})
    return Decision("wait", None)


class LeaseElector:
    """Acquire and keep a Lease through ``kubernetes.client.CoordinationV1Api``."""

    def __init__(self, api: Any, namespace: str, name: str, identity: str, duration_s: int = 15,
                 period_s: float = 5.0, clock: Callable[[], dt.datetime] | None = None):
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self.duration_s, self.period_s = duration_s, period_s
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))

    def try_once(self) -> bool:
        """One round of ``decide``; True when this candidate holds the Lease afterwards."""
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace)
            current, version = lease.spec.to_dict() if lease.spec else {}, lease.metadata.resource_version
            current = {_camel(k): v for k, v in current.items() if v is not None}
            for key in ("renewTime", "acquireTime"):
                if isinstance(current.get(key), dt.datetime):
                    current[key] = _ts(current[key])
        except ApiException as e:
            if e.status != 404:
                raise
            current, version = None, None
        d = decide(current, self.identity, self.clock(), self.duration_s)
        if d.action == "wait":
            return False
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": d.spec}
        try:
            if d.action == "create":
                self.api.create_namespaced_lease(self.namespace, body)
            else:
                body["metadata"]["resourceVersion"] = version
                self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except ApiException as e:
            if e.status in (409, 422):
                return False  # someone else won the race
            raise
        if d.action != "renew":
            log.info("acquired lease %s/%s as %s", self.namespace, self.name, self.identity)
        return True

    async def acquire(self) -> None:
        while not await asyncio.to_thread(self._safe_try):
            await asyncio.sleep(self.period_s)

    async def keep(self, lost: asyncio.Event) -> None:
        """Renew every period; set ``lost`` when no renewal succeeded within the renew
        deadline (two periods short of the lease duration), before others may take over."""
        deadline_s = max(self.duration_s - 2 * self.period_s, self.period_s)
        last_ok = self.clock()
        while not lost.is_set():
            await asyncio.sleep(self.period_s)
            if await asyncio.to_thread(self._safe_try):
                last_ok = self.clock()
            elif (self.clock() - last_ok).total_seconds() >= deadline_s:
                log.error("lost lease %s/%s", self.namespace, self.name)
                lost.set()

    def _safe_try(self) -> bool:
        try:
            return self.try_once()
        except Exception as e:  # API unreachable: count as not holding
            log.warning("lease round failed: %s", e)
            return False


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
