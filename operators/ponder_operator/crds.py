"""CustomResourceDefinition objects for the ponder custom resources (pure).

Each CRD's ``openAPIV3Schema`` comes from the spec and status models in
``ponder.common.crd_models`` through ``schema.structural``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ponder.common.crd_models import (
    CEL_RULES,
    GROUP,
    VERSION,
    ConsolidationPolicySpec,
    ModelPoolSpec,
    ModelPoolStatus,
    PolicyStatus,
    RoutingPolicySpec,
)
from ponder_operator.schema import structural

READY = '.status.conditions[?(@.type=="Ready")]'
# RayService names are capped at 47 characters; the operator derives child
# names with short prefixes, so pool names stay well below.
MAX_NAME = 40


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    short: str
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[tuple[str, str, str, str], ...]  # (name, type, jsonPath, description)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


_COMMON_TAIL = (
    ("Ready", "string", f"{READY}.status", "Ready condition status."),
    ("Reason", "string", f"{READY}.reason", "Ready condition reason."),
    ("Age", "date", ".metadata.creationTimestamp", "Time since creation."),
)

KINDS: tuple[Kind, ...] = (
    Kind(
        "ModelPool", "modelpools", "mpool", ModelPoolSpec, ModelPoolStatus,
        "A pool of one model served by a Ray Serve application on KubeRay, with its autoscaling policy.",
        (
            ("Tier", "string", ".spec.tier", "Role of the pool in plans."),
            ("Engine", "string", ".spec.backend.kind", "Backend engine."),
            ("Min", "integer", ".spec.replicas.min", "Minimum replicas."),
            ("Max", "integer", ".spec.replicas.max", "Maximum replicas."),
            ("Floor", "integer", ".status.replicasFloor", "Minimum after difficulty-aware scaling."),
            ("Reconciled", "string", '.status.conditions[?(@.type=="Reconciled")].status',
             "Children written for the current generation."),
            *_COMMON_TAIL,
        ),
    ),
    Kind(
        "RoutingPolicy", "routingpolicies", "rpolicy", RoutingPolicySpec, PolicyStatus,
        "How the router plans requests: pools per tier, policy, budget and strategies.",
        (
            ("Policy", "string", ".spec.policy.name", "Allocation policy."),
            ("Target", "number", ".spec.budget.target_cu_per_request", "Budget target in compute units per request."),
            ("ConfigMap", "string", ".status.configMap", "ConfigMap holding ponder.yaml."),
            *_COMMON_TAIL,
        ),
    ),
    Kind(
        "ConsolidationPolicy", "consolidationpolicies", "cpolicy", ConsolidationPolicySpec, PolicyStatus,
        "Sleep-time consolidation of stored contexts on an idle pool.",
        (
            ("Pool", "string", ".spec.pool", "Pool that runs the passes."),
            ("Schedule", "string", ".spec.schedule", "Cron window; empty: whenever idle."),
            *_COMMON_TAIL,
        ),
    ),
)


def kind(name: str) -> Kind:
    for k in KINDS:
        if k.kind == name:
            return k
    raise KeyError(name)


def crd(k: Kind) -> dict[str, Any]:
    spec = structural(k.spec, CEL_RULES)
    status = structural(k.status)
    root = {
        "type": "object",
        "description": k.description,
        "properties": {
            "apiVersion": {"type": "string", "description": "API version of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "required": ["spec"],
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {MAX_NAME}",
                "message": f"metadata.name must be at most {MAX_NAME} characters",
            }
        ],
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": k.crd_name, "labels": {"app.kubernetes.io/part-of": "ponder"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": k.kind,
                "listKind": f"{k.kind}List",
                "plural": k.plural,
                "singular": k.kind.lower(),
                "shortNames": [k.short],
                "categories": ["ponder"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": n, "type": t, "jsonPath": p, "description": d} for n, t, p, d in k.columns
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [crd(k) for k in KINDS]
