"""OTLP export in the chart: off by default; with an endpoint, every ponder container (and every pool pod the
operator creates) gets the OTel exporter env, its own service name and its pod as resource attributes."""
from __future__ import annotations

import kubernetes_validate
import pytest

from ponder_operator import modelpool
from ponder_operator.settings import Settings
from test_helm_chart import CHART, HelmError, _deployment, _env, helm, render
from test_operator_reconcile import CPU

OTLP = {"observability": {"otlp": {"endpoint": "http://otel-collector.observability:4317", "samplerRatio": 0.25,
                                   "resourceAttributes": {"deployment.environment": "prod"},
                                   "headersSecret": "otel-auth"}}}
COMPONENTS = {"-router": "ponder-router", "-consolidator": "ponder-consolidator", "-operator": "ponder-operator"}


def _otel(env: dict) -> dict:
    return {k: v for k, v in env.items() if k.startswith("OTEL_") or "OTEL" in k}


def test_rendered_manifests_stay_yamllint_clean():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    from test_helm_chart import YAMLLINT, render_stream

    stream = render_stream(OTLP)
    assert not [str(p) for p in linter.run(stream, YamlLintConfig(YAMLLINT))]


def test_off_by_default():
    docs = render({})
    for suffix in COMPONENTS:
        assert _otel(_env(_deployment(docs, suffix))) == {}, suffix


def test_endpoint_reaches_every_ponder_container_with_its_service_name():
    docs = render(OTLP)
    for suffix, service in COMPONENTS.items():
        workload = _deployment(docs, suffix)
        kubernetes_validate.validate(workload, "1.33.0", strict=True)
        env = _env(workload)
        names = [e["name"] for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4317"
        assert env["OTEL_TRACES_EXPORTER"]["value"] == "otlp"
        assert env["OTEL_SERVICE_NAME"]["value"] == service
        assert env["OTEL_TRACES_SAMPLER"]["value"] == "parentbased_traceidratio"
        assert float(env["OTEL_TRACES_SAMPLER_ARG"]["value"]) == 0.25
        assert env["OTEL_EXPORTER_OTLP_HEADERS"]["valueFrom"] == {"secretKeyRef": {"name": "otel-auth", "key": "headers"}}
        attrs = dict(a.split("=", 1) for a in env["OTEL_RESOURCE_ATTRIBUTES"]["value"].split(","))
        assert attrs["k8s.pod.name"] == "$(OTEL_POD_NAME)" and attrs["service.namespace"] == "demo"
        assert attrs["deployment.environment"] == "prod"
        # Kubernetes expands $(VAR) only from variables defined earlier in the list.
        assert names.index("OTEL_POD_NAME") < names.index("OTEL_RESOURCE_ATTRIBUTES")
        assert env["OTEL_POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    op = _env(_deployment(docs, "-operator"))
    assert op["PONDER_POOL_OTEL_RESOURCE_ATTRIBUTES"]["value"] == "service.namespace=demo,service.version=0.1.0," \
                                                                   "deployment.environment=prod"


@pytest.mark.parametrize("bad,needle", [
    ({"observability": {"otlp": {"samplerRatio": 2}}}, "samplerRatio"),
    ({"observability": {"otlp": {"endpont": "x"}}}, "endpont"),
])
def test_values_schema_rejects(bad, needle):
    with helm.Chart.load(str(CHART)) as chart:
        with pytest.raises(HelmError) as e:
            chart.validate_schema(bad)
    assert needle in str(e.value)


def test_operator_hands_the_endpoint_on_to_pool_pods():
    op_env = {e["name"]: e.get("value", "") for e in _deployment(render(OTLP), "-operator")["spec"]["template"]["spec"]
              ["containers"][0]["env"] if "value" in e}
    settings = Settings.from_env(op_env)
    spec = modelpool.parse_spec("small", CPU)
    rs = modelpool.rayservice("small", "ponder", spec, settings)
    groups = [rs["spec"]["rayClusterConfig"]["headGroupSpec"], *rs["spec"]["rayClusterConfig"]["workerGroupSpecs"]]
    for g in groups:
        env = {e["name"]: e for e in g["template"]["spec"]["containers"][0]["env"]}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4317"
        assert env["OTEL_SERVICE_NAME"]["value"] == "ponder-pool-small"
        attrs = env["OTEL_RESOURCE_ATTRIBUTES"]["value"]
        assert "ponder.pool=small" in attrs and "deployment.environment=prod" in attrs and "service.namespace=demo" in attrs
    off = modelpool.rayservice("small", "ponder", spec, Settings())
    head = off["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["env"]
    assert not [e for e in head if e["name"].startswith("OTEL_")]
