"""Thin Kubernetes API layer for the handlers: apply, read, list, patch status.

``classify`` is the one table from API errors to kopf outcomes: what may heal
(conflicts, throttling, server errors, missing KubeRay CRDs, RBAC being fixed)
is retried with a delay; a manifest the API server rejects (400, 422) is
permanent until the spec changes.
"""
from __future__ import annotations

import urllib.request
from typing import Any

from ponder.common.crd_models import GROUP, VERSION

_TEMPORARY_DELAY_S = {404: 60.0, 403: 60.0, 409: 2.0, 429: 10.0}


def classify(status: int | None) -> tuple[str, float | None]:
    """("temporary", delay_s) or ("permanent", None) for an API error status (None: no response)."""
    if status in (400, 422):
        return "permanent", None
    if status in _TEMPORARY_DELAY_S:
        return "temporary", _TEMPORARY_DELAY_S[status]
    return "temporary", 15.0


class Kube:
    """The API calls the operator makes; constructed once at startup and kept in kopf's memo."""

    def __init__(self, api_client: Any):
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)

    @classmethod
    def from_env(cls) -> "Kube":
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(client.ApiClient())

    # ---- generic apply
    def apply(self, obj: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            if kind == "RayService":
                self._apply_custom("ray.io", "v1", "rayservices", ns, name, obj)
            elif kind == "Service":
                try:
                    self.core.patch_namespaced_service(name, ns, obj)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    self.core.create_namespaced_service(ns, obj)
            elif kind == "ConfigMap":
                try:
                    self.core.replace_namespaced_config_map(name, ns, obj)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    self.core.create_namespaced_config_map(ns, obj)
            else:
                raise ValueError(f"cannot apply kind {kind}")
        except ApiException as e:
            raise ApiFailure(kind, name, e.status, e.reason) from None

    def _apply_custom(self, group: str, version: str, plural: str, ns: str, name: str, obj: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            live = self.custom.get_namespaced_custom_object(group, version, ns, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise
            self.custom.create_namespaced_custom_object(group, version, ns, plural, obj)
            return
        body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
        if live.get("spec") != obj.get("spec") or live["metadata"].get("labels") != obj["metadata"].get("labels"):
            self.custom.replace_namespaced_custom_object(group, version, ns, plural, name, body)

    # ---- reads
    def get_rayservice(self, ns: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayservices", name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise ApiFailure("RayService", name, e.status, e.reason) from None

    def list_ponder(self, ns: str, plural: str) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        try:
            items = self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural)["items"]
        except ApiException as e:
            raise ApiFailure(plural, ns, e.status, e.reason) from None
        kinds = {"modelpools": "ModelPool", "routingpolicies": "RoutingPolicy", "consolidationpolicies": "ConsolidationPolicy"}
        return [{"apiVersion": f"{GROUP}/{VERSION}", "kind": kinds[plural], **i} for i in items]

    def patch_status(self, plural: str, ns: str, name: str, status: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, plural, name, {"status": status})
        except ApiException as e:
            raise ApiFailure(plural, name, e.status, e.reason) from None

    def router_metrics(self, ns: str, service: str, port: int, timeout_s: float = 3.0) -> list[str]:
        """Prometheus text from every ready endpoint of the router's Service."""
        slices = self.discovery.list_namespaced_endpoint_slice(ns, label_selector=f"kubernetes.io/service-name={service}")
        texts = []
        for s in slices.items:
            for ep in s.endpoints or []:
                if ep.conditions and ep.conditions.ready is False:
                    continue
                for addr in ep.addresses or []:
                    host = f"[{addr}]" if ":" in addr else addr
                    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=timeout_s) as r:
                        texts.append(r.read().decode("utf-8", "replace"))
        return texts


class ApiFailure(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (None: no response)."""

    def __init__(self, kind: str, name: str, status: int | None, reason: str | None):
        self.kind, self.name, self.status, self.reason = kind, name, status, reason
        super().__init__(f"{kind} {name}: API error {status} {reason or ''}".strip())
