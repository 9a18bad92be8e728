"""RoutingPolicy, ModelPools and ConsolidationPolicies of a namespace -> the
ConfigMap the router and the consolidator read (pure).

The ConfigMap (name from ``RoutingPolicy.spec.config_map``) holds
``ponder.yaml``: a ``PonderConfig`` whose pools are the namespace's valid
ModelPools at their Service addresses and whose routing is the policy's spec, and
``consolidation.yaml``: ``{"policies": [{"name": ..., <ConsolidationPolicy spec>}]}``.
Mounted as a volume (not ``subPath``), the kubelet updates the files in place
and the services reload them without a restart.

With several RoutingPolicies in one namespace the oldest (creation time, then
name) owns the ConfigMap and the others report ``Conflict``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from ponder.common.config import PonderConfig, RedisConfig, RouterConfig
from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec
from ponder_operator import names
from ponder_operator.settings import Settings


class MissingPools(LookupError):
    """Policies reference pools that are not (valid) ModelPools in the namespace."""

    def __init__(self, missing: dict[str, list[str]]):
        self.missing = missing  # policy name -> missing pool names
        super().__init__(
            "; ".join(f"{p}: unknown pools {sorted(set(v))}" for p, v in sorted(missing.items()))
        )


@dataclass
class NamespaceState:
    """Validated custom resources of one namespace."""

    namespace: str
    pools: dict[str, ModelPoolSpec] = field(default_factory=dict)
    routing: list[tuple[str, str, RoutingPolicySpec]] = field(default_factory=list)  # (created, name, spec)
    consolidation: dict[str, ConsolidationPolicySpec] = field(default_factory=dict)


def owner_policy(state: NamespaceState) -> tuple[str, RoutingPolicySpec] | None:
    """The RoutingPolicy that owns the namespace's config: oldest, then by name."""
    if not state.routing:
        return None
    created, name, spec = min(state.routing, key=lambda t: (t[0], t[1]))
    return name, spec


def ponder_config(state: NamespaceState, policy: RoutingPolicySpec, settings: Settings) -> PonderConfig:
    """``PonderConfig`` for the router; raises ``MissingPools`` for unknown references."""
    tiered = policy.tiers.all()
    missing = [p for p in tiered if p not in state.pools]
    if policy.fallback_pool and policy.fallback_pool not in state.pools:
        missing.append(policy.fallback_pool)
    if missing:
        raise MissingPools({"routing": missing})
    selected = sorted(set(tiered)) if tiered else sorted(state.pools)
    pools = [
        state.pools[n].to_pool_config(n, address=names.pool_address(n, state.namespace, settings.pool_grpc_port))
        for n in selected
    ]
    return PonderConfig(
        pools=pools or [],
        routing=policy.to_routing_config(),
        router=RouterConfig(host="0.0.0.0", port=settings.router_port),
        # No URL: it carries the Redis password, so the router and the consolidator
        # take it from their env (PONDER_REDIS_URL), never from this ConfigMap.
        redis=RedisConfig(outcome_maxlen=settings.outcome_maxlen),
    )


def consolidation_doc(state: NamespaceState) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """``consolidation.yaml`` with the policies whose pool exists, and the others'
    missing pools (reported on those policies; the rest of the config still applies)."""
    missing = {n: [s.pool] for n, s in state.consolidation.items() if s.pool not in state.pools}
    policies = [
        {"name": n, **s.model_dump(mode="json")} for n, s in sorted(state.consolidation.items()) if n not in missing
    ]
    return {"policies": policies}, missing


def config_map(state: NamespaceState, settings: Settings) -> dict[str, Any] | None:
    """The ConfigMap manifest, or None when the namespace has no RoutingPolicy or no pools."""
    owner = owner_policy(state)
    if owner is None or not state.pools:
        return None
    name, policy = owner
    cfg = ponder_config(state, policy, settings)
    consolidation, _ = consolidation_doc(state)
    data = {
        "ponder.yaml": yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True), sort_keys=False),
        "consolidation.yaml": yaml.safe_dump(consolidation, sort_keys=False),
    }
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": policy.config_map,
            "namespace": state.namespace,
            "labels": {**names.MANAGED_BY, "app.kubernetes.io/name": "ponder-config", "ponder.dev/routing-policy": name},
        },
        "data": data,
    }

