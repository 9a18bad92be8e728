"""Thin Kubernetes API layer for the handlers: apply, read, list, patch status.

Every call carries a request timeout (``Settings.request_timeout_s``), so a hung
connection to the API server fails and is retried instead of stalling a handler.
``covers`` decides whether a live object already holds the desired fields: the
API server fills in KubeRay's CRD defaults, so comparing whole specs would
replace the RayService on every pass.

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


def covers(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live`` (mappings
    compared key by key, recursively; lists element by element and of equal length;
    fields only ``live`` has, such as server defaults, are ignored)."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(k in live and covers(live[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(covers(a, b) for a, b in zip(live, desired))
    if isinstance(desired, (int, float)) and not isinstance(desired, bool) and isinstance(live, (int, float)):
        return live == desired
    return live == desired


def classify(status: int | None) -> tuple[str, float | None]:
    """("temporary", delay_s) or ("permanent", None) for an API error status (None: no response)."""
    if status in (400, 422):
        return "permanent", None
    if status in _TEMPORARY_DELAY_S:
        return "temporary", _TEMPORARY_DELAY_S[status]
    return "temporary", 15.0


class Kube:
    """The API calls the operator makes; constructed once at startup and kept in kopf's memo."""

    def __init__(self, api_client: Any, timeout_s: float = 10.0):
        from kubernetes import client

        self.t = timeout_s
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.discovery = client.DiscoveryV1Api(api_client)

    @classmethod
    def from_env(cls, timeout_s: float = 10.0) -> "Kube":
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        return cls(client.ApiClient(), timeout_s)

    # ---- generic apply
    def apply(self, obj: dict[str, Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            if kind == "RayService":
                self._apply_custom("ray.io", "v1", "rayservices", ns, name, obj)
            elif kind == "Service":
                try:
                    self.core.patch_namespaced_service(name, ns, obj, _request_timeout=self.t)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    self.core.create_namespaced_service(ns, obj, _request_timeout=self.t)
            elif kind == "ConfigMap":
                try:
                    self.core.replace_namespaced_config_map(name, ns, obj, _request_timeout=self.t)
                except ApiException as e:
                    if e.status != 404:
                        raise
                    self.core.create_namespaced_config_map(ns, obj, _request_timeout=self.t)
            else:
                raise ValueError(f"cannot apply kind {kind}")
        except ApiException as e:
            raise ApiFailure(kind, name, e.status, e.reason) from None

    def _apply_custom(self, group: str, version: str, plural: str, ns: str, name: str, obj: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            live = self.custom.get_namespaced_custom_object(group, version, ns, plural, name, _request_timeout=self.t)
        except ApiException as e:
            if e.status != 404:
                raise
            self.custom.create_namespaced_custom_object(group, version, ns, plural, obj, _request_timeout=self.t)
            return
        body = {**obj, "metadata": {**obj["metadata"], "resourceVersion": live["metadata"]["resourceVersion"]}}
        meta = {k: obj["metadata"].get(k) or {} for k in ("labels", "annotations", "ownerReferences")}
        if not covers(live.get("spec"), obj.get("spec")) or not covers(live["metadata"], meta):
            body["metadata"]["annotations"] = {**(live["metadata"].get("annotations") or {}),
                                               **(obj["metadata"].get("annotations") or {})}
            self.custom.replace_namespaced_custom_object(group, version, ns, plural, name, body, _request_timeout=self.t)

    # ---- reads
    def get_rayservice(self, ns: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object("ray.io", "v1", ns, "rayservices", name,
                                                            _request_timeout=self.t)
        except ApiException as e:
            if e.status == 404:
                return None
            raise ApiFailure("RayService", name, e.status, e.reason) from None

    def list_ponder(self, ns: str | None, plural: str) -> list[dict]:
        """Objects of one ponder kind in a namespace (None: in every namespace)."""
        from kubernetes.client.exceptions import ApiException

        try:
            if ns:
                items = self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, plural, _request_timeout=self.t)
            else:
                items = self.custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=self.t)
            items = items["items"]
        except ApiException as e:
            raise ApiFailure(plural, ns, e.status, e.reason) from None
        kinds = {"modelpools": "ModelPool", "routingpolicies": "RoutingPolicy", "consolidationpolicies": "ConsolidationPolicy"}
        return [{"apiVersion": f"{GROUP}/{VERSION}", "kind": kinds[plural], **i} for i in items]

    def patch_status(self, plural: str, ns: str, name: str, status: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, plural, name, {"status": status},
                                                              _request_timeout=self.t)
        except ApiException as e:
            raise ApiFailure(plural, name, e.status, e.reason) from None

    def router_metrics(self, ns: str, service: str, port: int, timeout_s: float = 3.0) -> list[str]:
        """Prometheus text from every ready endpoint of the router's Service."""
        slices = self.discovery.list_namespaced_endpoint_slice(
            ns, label_selector=f"kubernetes.io/service-name={service}", _request_timeout=self.t)
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


    def get_ponder(self, ns: str, plural: str, name: str) -> dict | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name, _request_timeout=self.t)
        except ApiException as e:
            if e.status == 404:
                return None
            raise ApiFailure(plural, name, e.status, e.reason) from None

    def delete_ponder(self, ns: str, plural: str, name: str) -> None:
        """Delete with foreground propagation: the object goes after its children."""
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, plural, name, propagation_policy="Foreground", _request_timeout=self.t)
        except ApiException as e:
            if e.status != 404:
                raise ApiFailure(plural, name, e.status, e.reason) from None

    def remove_finalizer(self, ns: str, plural: str, name: str, finalizer: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj = self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name, _request_timeout=self.t)
            keep = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
            body = {"metadata": {"finalizers": keep, "resourceVersion": obj["metadata"]["resourceVersion"]}}
            self.custom.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, body, _request_timeout=self.t)
        except ApiException as e:
            if e.status not in (404, 409):
                raise ApiFailure(plural, name, e.status, e.reason) from None

    def list_rayservices(self, ns: str | None, label_selector: str) -> list[dict]:
        from kubernetes.client.exceptions import ApiException

        try:
            if ns:
                out = self.custom.list_namespaced_custom_object("ray.io", "v1", ns, "rayservices",
                                                                label_selector=label_selector, _request_timeout=self.t)
            else:
                out = self.custom.list_cluster_custom_object("ray.io", "v1", "rayservices",
                                                             label_selector=label_selector, _request_timeout=self.t)
        except ApiException as e:
            if e.status == 404:  # KubeRay's CRD is gone: no RayService can remain
                return []
            raise ApiFailure("RayService", ns or "*", e.status, e.reason) from None
        return out["items"]


class ApiFailure(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (None: no response)."""

    def __init__(self, kind: str, name: str, status: int | None, reason: str | None):
        self.kind, self.name, self.status, self.reason = kind, name, status, reason
        super().__init__(f"{kind} {name}: API error {status} {reason or ''}".strip())
