"""Leader election on a ``coordination.k8s.io/v1`` Lease.

Only the holder of the Lease runs the kopf handlers, so two operator replicas
never reconcile the same object at once; the other waits and takes over when
the holder stops renewing. ``decide`` is the pure rule; ``LeaseElector`` applies
it through the API with optimistic concurrency (``resourceVersion``), so two
candidates racing for an expired Lease cannot both win.

As in client-go, a candidate never compares the holder's ``renewTime`` with its
own clock (the two clocks may disagree by more than the lease): it remembers
when it last saw the Lease record change, by its own monotonic clock, and
takes the Lease only after ``leaseDurationSeconds`` pass with no change. The
holder keeps leading through failed renewals until ``renew_deadline_s`` passes
without a successful one (shorter than the lease, so it stops before anyone
may take over). Every API call carries a request timeout.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
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


@dataclass(frozen=True)
class Observed:
    """The Lease record last seen and when, on the candidate's own clock (seconds)."""

    record: tuple[Any, ...]
    at_s: float


def record_of(lease_spec: dict[str, Any]) -> tuple[Any, ...]:
    return (lease_spec.get("holderIdentity"), lease_spec.get("renewTime"), lease_spec.get("acquireTime"),
            lease_spec.get("leaseTransitions"), lease_spec.get("leaseDurationSeconds"))


def observe(prev: Observed | None, lease_spec: dict[str, Any] | None, local_s: float) -> Observed | None:
    """Update the observation: a changed record restarts the clock."""
    if lease_spec is None:
        return None
    rec = record_of(lease_spec)
    if prev is not None and prev.record == rec:
        return prev
    return Observed(rec, local_s)


def decide(lease_spec: dict[str, Any] | None, identity: str, now: dt.datetime, duration_s: int,
           observed: Observed | None = None, local_s: float = 0.0) -> Decision:
    """What a candidate does with the Lease's current spec (None: no Lease yet).

    The holder renews; anyone takes a Lease with no holder, or whose record has
    not changed for its ``leaseDurationSeconds`` since ``observed.at_s`` (local
    clock ``local_s``), incrementing ``leaseTransitions``; otherwise wait. ``now``
    only stamps the times written into the Lease.
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
    duration = int(lease_spec.get("leaseDurationSeconds") or duration_s)
    unchanged = observed is not None and observed.record == record_of(lease_spec)
    expired = unchanged and local_s >= observed.at_s + duration
    if not holder or expired:
        return Decision("acquire", {**fresh, "leaseTransitions": int(lease_spec.get("leaseTransitions") or 0) + 1})
    return Decision("wait", None)


class LeaseElector:
    """Acquire and keep a Lease through ``kubernetes.client.CoordinationV1Api``."""

    def __init__(self, api: Any, namespace: str, name: str, identity: str, duration_s: int = 15,
                 period_s: float = 2.0, clock: Callable[[], dt.datetime] | None = None,
                 monotonic: Callable[[], float] | None = None, renew_deadline_s: float | None = None,
                 timeout_s: float = 5.0):
        self.api, self.namespace, self.name, self.identity = api, namespace, name, identity
        self.duration_s, self.period_s, self.timeout_s = duration_s, period_s, timeout_s
        self.renew_deadline_s = renew_deadline_s if renew_deadline_s is not None else duration_s * 2 / 3
        if not period_s < self.renew_deadline_s < duration_s:
            raise ValueError(f"need renew period ({period_s} s) < renew deadline ({self.renew_deadline_s} s) "
                             f"< lease duration ({duration_s} s)")
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.monotonic = monotonic or time.monotonic
        self.observed: Observed | None = None

    def try_once(self) -> bool:
        """One round of ``decide``; True when this candidate holds the Lease afterwards."""
        from kubernetes.client.exceptions import ApiException

        try:
            lease = self.api.read_namespaced_lease(self.name, self.namespace, _request_timeout=self.timeout_s)
            current, version = lease.spec.to_dict() if lease.spec else {}, lease.metadata.resource_version
            current = {_camel(k): v for k, v in current.items() if v is not None}
            for key in ("renewTime", "acquireTime"):
                if isinstance(current.get(key), dt.datetime):
                    current[key] = _ts(current[key])
        except ApiException as e:
            if e.status != 404:
                raise
            current, version = None, None
        local = self.monotonic()
        self.observed = observe(self.observed, current, local)
        d = decide(current, self.identity, self.clock(), self.duration_s, self.observed, local)
        if d.action == "wait":
            return False
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": d.spec}
        try:
            if d.action == "create":
                self.api.create_namespaced_lease(self.namespace, body, _request_timeout=self.timeout_s)
            else:
                body["metadata"]["resourceVersion"] = version
                self.api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=self.timeout_s)
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
        """Renew every period; set ``lost`` once no renewal has succeeded for the renew
        deadline, which ends before the lease does, so others cannot take over first."""
        last_ok = self.monotonic()
        while not lost.is_set():
            await asyncio.sleep(self.period_s)
            if await asyncio.to_thread(self._safe_try):
                last_ok = self.monotonic()
            elif self.holding_lost(last_ok):
                log.error("lost lease %s/%s", self.namespace, self.name)
                lost.set()

    def holding_lost(self, last_ok_s: float) -> bool:
        """True when the last successful renewal is at least the renew deadline ago."""
        return self.monotonic() - last_ok_s >= self.renew_deadline_s

    def _safe_try(self) -> bool:
        try:
            return self.try_once()
        except Exception as e:  # API unreachable: count as not holding
            log.warning("lease round failed: %s", e)
            return False


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p.title() for p in rest)
