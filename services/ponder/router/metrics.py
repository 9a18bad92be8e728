"""Prometheus metrics of one router process.

``ponder_router_planned_compute_units_per_second{pool,tier}`` is the demand the
router's plans imply: every plan adds its expected compute units to an
exponentially weighted rate with time constant ``tau_s`` (rate(t) =
sum_i cu_i * exp(-(t - t_i) / tau_s) / tau_s), read at scrape time. The operator
sums it over router pods to raise a pool's replica floor ahead of its queues.
The value is per process on purpose: a cluster-wide figure would be summed twice.
On Kubernetes the gauge also carries a ``namespace`` label ($PONDER_NAMESPACE, set
by the chart) so that same-named pools in two namespaces never share demand.
"""
from __future__ import annotations

import math
import os
import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

from ponder.common.config import PoolConfig


# Bound on the tenant label's values, so a flood of keys cannot blow up the series count.
MAX_TENANT_LABELS = 1000

class DecayingRate:
    """Exponentially weighted event rate (units per second) with time constant ``tau_s``."""

    def __init__(self, tau_s: float, clock: Callable[[], float]):
        self.tau_s, self.clock = tau_s, clock
        self.value = 0.0
        self.t = clock()

    def _decay(self, now: float) -> None:
        self.value *= math.exp(-max(0.0, now - self.t) / self.tau_s)
        self.t = now

    def add(self, amount: float) -> None:
        self._decay(self.clock())
        self.value += amount / self.tau_s

    def read(self) -> float:
        self._decay(self.clock())
        return self.value


class RouterMetrics:
    def __init__(self, pools: list[PoolConfig], tau_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 namespace: str | None = None):
        self.namespace = os.environ.get("PONDER_NAMESPACE", "") if namespace is None else namespace
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._tiers = {p.name: p.tier for p in pools}
        self._planned = {p.name: DecayingRate(tau_s, clock) for p in pools}
        self.requests = Counter(
            "ponder_router_requests", "Requests answered, by pool, strategy and gRPC status.",
            ["pool", "strategy", "code"], registry=self.registry,
        )
        self.tenant_requests = Counter(
            "ponder_router_tenant_requests", "Requests by tenant and gRPC status (tenants past the first "
            f"{MAX_TENANT_LABELS} are counted as 'other').", ["tenant", "code"], registry=self.registry,
        )
        self.tenant_compute_units = Counter(
            "ponder_router_tenant_compute_units", "Compute units spent, by tenant.", ["tenant"], registry=self.registry
        )
        self._tenants: set[str] = set()
        self.compute_units = Counter(
            "ponder_router_compute_units", "Compute units spent, as measured.", ["pool"], registry=self.registry
        )
        self.latency = Histogram(
            "ponder_router_latency_seconds", "Router receive to answer.", ["pool"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        # Label children by label values: prometheus_client's labels() validates and locks on every call.
        self._request_children: dict[tuple[str, str, str], object] = {}
        self._pool_children: dict[str, tuple[object, object]] = {}  # pool -> (compute units, latency)
        self._tenant_children: dict[tuple[str, str], object] = {}
        self._tenant_cu_children: dict[str, object] = {}
        self._budget_source: Callable[[], object | None] = lambda: None
        self.registry.register(self)

    def set_budget_source(self, source: Callable[[], object | None]) -> None:
        """Where the current budget controller is (it changes with config reloads)."""
        self._budget_source = source

    def set_pools(self, pools: list[PoolConfig]) -> None:
        """After a config reload: keep rates of pools that stay, add new ones, drop removed ones."""
        with self._lock:
            old = self._planned
            any_rate = next(iter(old.values()), None)
            tau, clock = (any_rate.tau_s, any_rate.clock) if any_rate else (60.0, time.monotonic)
            self._planned = {p.name: old.get(p.name) or DecayingRate(tau, clock) for p in pools}
            self._tiers = {p.name: p.tier for p in pools}

    def planned(self, pool: str, compute_units: float) -> None:
        with self._lock:
            rate = self._planned.get(pool)
            if rate is not None:
                rate.add(compute_units)

    def planned_rate(self, pool: str) -> float:
        with self._lock:
            return self._planned[pool].read()

    def answered(self, pool: str, strategy: str, code: str, compute_units: float, latency_s: float) -> None:
        key = (pool or "-", strategy or "-", code)
        child = self._request_children.get(key)
        if child is None:
            child = self._request_children[key] = self.requests.labels(*key)
        child.inc()
        if pool:
            pc = self._pool_children.get(pool)
            if pc is None:
                pc = self._pool_children[pool] = (self.compute_units.labels(pool), self.latency.labels(pool))
            pc[0].inc(compute_units)
            pc[1].observe(latency_s)

    def tenant_answered(self, tenant: str, code: str, compute_units: float) -> None:
        """Count one request of ``tenant``; past MAX_TENANT_LABELS distinct tenants, new ones share 'other'."""
        if tenant not in self._tenants:
            if len(self._tenants) >= MAX_TENANT_LABELS:
                tenant = "other"
            else:
                self._tenants.add(tenant)
        child = self._tenant_children.get((tenant, code))
        if child is None:
            child = self._tenant_children[(tenant, code)] = self.tenant_requests.labels(tenant, code)
        child.inc()
        if compute_units:
            cu = self._tenant_cu_children.get(tenant)
            if cu is None:
                cu = self._tenant_cu_children[tenant] = self.tenant_compute_units.labels(tenant)
            cu.inc(compute_units)

    def collect(self):
        g = GaugeMetricFamily(
            "ponder_router_planned_compute_units_per_second",
            "Compute units per second this router's plans send to each pool (exponentially weighted, 60 s).",
            labels=["pool", "tier", "namespace"] if self.namespace else ["pool", "tier"],
        )
        extra = [self.namespace] if self.namespace else []
        with self._lock:
            for name, rate in self._planned.items():
                g.add_metric([name, self._tiers[name], *extra], rate.read())
        yield g
        budget = self._budget_source()
        if budget is not None:
            lam = GaugeMetricFamily(
                "ponder_router_budget_lambda_per_cu",
                "Accuracy the policy trades per compute unit (the budget controller's dual variable / target).",
            )
            lam.add_metric([], budget.lambda_per_cu())
            yield lam

    def describe(self):
        return []

    def serve(self, port: int, host: str = "0.0.0.0"):
        """Start the /metrics HTTP endpoint; returns (server, thread)."""
        return start_http_server(port, addr=host, registry=self.registry)
