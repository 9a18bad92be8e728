"""The Helm chart rendered offline with Helm's own engine (helm-python-sdk) for the
default values and each example; every object validated with kubernetes-validate
(strict) for Kubernetes 1.30 and 1.33, custom resources against their schemas."""
from __future__ import annotations

import pathlib

import jsonschema
import kubernetes_validate
import pytest
import yaml

helm = pytest.importorskip("helm_python")
from helm_python.errors import HelmError  # noqa: E402

from ponder.common.config import PonderConfig  # noqa: E402
from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec  # noqa: E402
from ponder_operator.crds import all_crds  # noqa: E402
from ponder_operator.schema import to_jsonschema  # noqa: E402

CHART = pathlib.Path(__file__).resolve().parents[2] / "helm" / "ponder"
VALUES = {"default": {}} | {p.stem: yaml.safe_load(p.read_text()) for p in sorted((CHART / "examples").glob("*.yaml"))}
K8S_VERSIONS = ["1.30.0", "1.33.0"]
PONDER_MODELS = {"ModelPool": ModelPoolSpec, "RoutingPolicy": RoutingPolicySpec, "ConsolidationPolicy": ConsolidationPolicySpec}
SERVICE_MONITOR = {  # subset of monitoring.coreos.com/v1 ServiceMonitor used by the chart
    "type": "object", "required": ["spec"],
    "properties": {"spec": {"type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
                            "properties": {"selector": {"type": "object"}, "endpoints": {"type": "array", "items": {
                                "type": "object", "additionalProperties": False,
                                "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                               "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}}}}}}},
}


def render(values: dict, **kw) -> list[dict]:
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values=values, name=kw.pop("name", "demo"), namespace=kw.pop("namespace", "ponder"), **kw)
    docs = []
    for path, text in sorted(out.items()):
        if path.endswith(".yaml"):
            docs += [d for d in yaml.safe_load_all(text) if d]
    return docs


@pytest.fixture(scope="module", params=sorted(VALUES))
def rendered(request):
    return request.param, render(VALUES[request.param])


def _crd_validators():
    return {c["spec"]["names"]["kind"]: jsonschema.Draft4Validator(
        to_jsonschema(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"])) for c in all_crds()}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_valid(rendered, version):
    _, docs = rendered
    crds = _crd_validators()
    for d in docs:
        if d["kind"] in crds:
            errors = [e.message for e in crds[d["kind"]].iter_errors(d)]
            assert not errors, (d["metadata"]["name"], errors)
            PONDER_MODELS[d["kind"]].model_validate(d["spec"])
        elif d["kind"] == "ServiceMonitor":
            jsonschema.Draft7Validator(SERVICE_MONITOR).validate(d)
        else:
            kubernetes_validate.validate(d, version, strict=True)


def test_chart_crds_valid():
    with helm.Chart.load(str(CHART)) as chart:
        crds = [yaml.safe_load(c["data"]) for c in chart.crds]
    assert {c["metadata"]["name"] for c in crds} == {c["metadata"]["name"] for c in all_crds()}
    for c in crds:
        for v in K8S_VERSIONS:
            kubernetes_validate.validate(c, v, strict=True)


def test_expected_objects(rendered):
    name, docs = rendered
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for k in [("Deployment", "demo-ponder-router"), ("Service", "demo-ponder-router"),
              ("Deployment", "demo-ponder-operator"), ("ServiceAccount", "demo-ponder-operator"),
              ("StatefulSet", "demo-ponder-redis"), ("RoutingPolicy", "demo-ponder"),
              ("NetworkPolicy", "demo-ponder-router")]:
        assert k in kinds, (name, k)
    if name == "values-gpu-vllm":
        assert ("ServiceMonitor", "demo-ponder-router") in kinds
        assert {n for k, n in kinds if k == "ModelPool"} == {"small", "reasoning", "softcot"}


def test_security_and_probes(rendered):
    _, docs = rendered
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = d["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert c["resources"]["requests"] and c["resources"]["limits"]
        if d["metadata"]["name"].endswith("-router"):
            c = pod["containers"][0]
            assert c["readinessProbe"]["grpc"]["port"] == 50051 and c["livenessProbe"]["grpc"]["port"] == 50051
            assert c["command"] == ["ponder", "router-serve", "--config", "/etc/ponder/ponder.yaml"]


def test_redis_persistence_and_external():
    docs = render({})
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "--appendonly" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    ext = render({"redis": {"enabled": False, "externalUrl": "redis://cache:6379/1"}})
    assert not [d for d in ext if d["kind"] == "StatefulSet"]
    op = next(d for d in ext if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-operator"))
    env = {e["name"]: e.get("value") for e in op["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["PONDER_REDIS_URL"] == "redis://cache:6379/1"


def test_without_operator_chart_writes_ponder_yaml():
    docs = render({"operator": {"enabled": False}, "config": {"routing": {"max_samples": 4}}})
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    cfg = PonderConfig.model_validate(yaml.safe_load(cm["data"]["ponder.yaml"]))
    assert cfg.routing.max_samples == 4 and cfg.router.host == "0.0.0.0" and cfg.redis.url.startswith("redis://demo-ponder-redis")
    assert not [d for d in docs if d["kind"] in ("ModelPool", "ClusterRole")]


def test_namespaced_rbac_is_least_privilege():
    docs = render({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "demo-ponder-operator"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    cluster_roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
    assert cluster_roles == {"demo-ponder-operator-discovery"}
    for r in roles:
        for rule in r["rules"]:
            assert "delete" not in rule["verbs"] and "*" not in rule["verbs"] and "secrets" not in rule["resources"]


@pytest.mark.parametrize("bad,needle", [
    ({"router": {"replicas": 0}}, "replicas"),
    ({"pools": [{"name": "x", "spec": {"tier": "huge"}}]}, "tier"),
    ({"redis": {"externalUrl": "http://nope"}}, "externalUrl"),
    ({"routerr": {}}, "routerr"),
])
def test_values_schema_rejects(bad, needle):
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(HelmError) as e:
            chart.validate_schema(bad)
    assert needle in str(e.value)


@pytest.mark.parametrize("values", sorted(VALUES))
def test_lint(values):
    for kube in ("v1.30.0", "v1.33.0"):
        report = helm.lint(str(CHART), VALUES[values], strict=True, kube_version=kube)
        errors = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not errors, errors
