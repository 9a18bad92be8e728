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
from ponder_operator.schema import cel_violations, to_jsonschema  # noqa: E402

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


def render_stream(values: dict) -> str:
    """The manifests as ``helm template`` prints them: one ``# Source`` document per file."""
    with helm.Chart.load(str(CHART)) as chart:
        out = chart.render(values=values, name="demo", namespace="ponder")
    return "".join(f"---\n# Source: {p}\n{t.rstrip()}\n" for p, t in sorted(out.items())
                   if p.endswith(".yaml") and t.strip())


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
            schema = next(c for c in all_crds() if c["spec"]["names"]["kind"] == d["kind"])
            spec_schema = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            assert not cel_violations(spec_schema, d["spec"], "spec"), d["metadata"]["name"]  # server-side rules
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


def _deployment(docs: list[dict], suffix: str) -> dict:
    return next(d for d in docs if d["kind"] in ("Deployment", "StatefulSet") and d["metadata"]["name"].endswith(suffix))


def _env(workload: dict) -> dict:
    return {e["name"]: e for e in workload["spec"]["template"]["spec"]["containers"][0].get("env", [])}


def test_redis_persistence_and_external():
    docs = render({})
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "8Gi"
    assert "--appendonly" in sts["spec"]["template"]["spec"]["containers"][0]["args"]
    ext = render({"redis": {"enabled": False, "externalUrl": "redis://cache:6379/1"}})
    assert not [d for d in ext if d["kind"] in ("StatefulSet", "Secret")]
    env = _env(_deployment(ext, "-router"))
    assert env["PONDER_REDIS_URL"]["value"] == "redis://cache:6379/1" and "REDIS_PASSWORD" not in env


def test_redis_auth_memory_and_no_eviction():
    docs = render({})
    secret = next(d for d in docs if d["kind"] == "Secret")
    assert secret["metadata"]["name"] == "demo-ponder-redis" and len(secret["data"]["password"]) > 40
    sts = _deployment(docs, "-redis")
    args = sts["spec"]["template"]["spec"]["containers"][0]["args"]
    opt = {args[i]: args[i + 1] for i in range(0, len(args), 2)}
    assert opt["--protected-mode"] == "yes" and opt["--requirepass"] == "$(REDIS_PASSWORD)"
    assert opt["--maxmemory"] == "768mb" and opt["--maxmemory-policy"] == "noeviction"
    limit = sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    assert limit == "1Gi" and 768 < 1024
    env = _env(sts)
    assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {"name": "demo-ponder-redis", "key": "password"}
    for suffix in ("-router",):
        env = _env(_deployment(docs, suffix))
        names = list(env)
        assert names.index("REDIS_PASSWORD") < names.index("PONDER_REDIS_URL")  # $(VAR) needs it defined first
        assert env["PONDER_REDIS_URL"]["value"] == "redis://:$(REDIS_PASSWORD)@demo-ponder-redis.ponder.svc:6379/0"
    assert "PONDER_REDIS_URL" not in _env(_deployment(docs, "-operator"))
    assert _env(_deployment(docs, "-operator"))["PONDER_OUTCOME_MAXLEN"]["value"] == "100000"
    own = render({"redis": {"auth": {"existingSecret": "mine", "existingSecretKey": "pw"}}})
    assert not [d for d in own if d["kind"] == "Secret"]
    assert _env(_deployment(own, "-router"))["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "mine", "key": "pw"}


def test_uninstall_hook_runs_before_helm_deletes_the_operator():
    docs = render({"operator": {"watchNamespaces": ["team-a"], "uninstallTimeoutS": 300}})
    job = next(d for d in docs if d["kind"] == "Job")
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-delete" and "hook-succeeded" in ann["helm.sh/hook-delete-policy"]
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "demo-ponder-operator" and pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["command"] == ["python", "-m", "ponder_operator.uninstall", "--namespace=team-a",
                                               "--timeout-s=300"]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["namespace"] == "team-a")
    ponder = next(r for r in role["rules"] if r["apiGroups"] == ["ponder.dev"] and "modelpools" in r["resources"])
    assert "delete" in ponder["verbs"]
    assert not [d for d in render({"operator": {"enabled": False}}) if d["kind"] == "Job"]


def test_operator_probes_and_leader_election_flags():
    docs = render({})
    c = _deployment(docs, "-operator")["spec"]["template"]["spec"]["containers"][0]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in c["ports"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in c["command"]
    assert {"--lease-duration-s=15", "--renew-deadline-s=10", "--renew-period-s=2"} <= set(c["command"])
    from ponder_operator.__main__ import parse_args

    args = parse_args([a for a in c["command"] if a.startswith("--")])  # the chart's flags parse
    assert args.renew_deadline_s == 10


def test_leader_election_order_refused_at_render():
    with pytest.raises(HelmError, match="renewDeadlineS"):
        render({"operator": {"leaderElection": {"renewDeadlineS": 20}}})


def test_pod_template_overrides_on_the_charts_deployments():
    extra = {"podAnnotations": {"a": "b"}, "podLabels": {"team": "ml"},
             "extraEnv": [{"name": "X", "value": "1"}], "extraEnvFrom": [{"secretRef": {"name": "s"}}],
             "extraVolumes": [{"name": "certs", "secret": {"secretName": "ca"}}],
             "extraVolumeMounts": [{"name": "certs", "mountPath": "/certs"}],
             "serviceAccountAnnotations": {"iam.gke.io/gcp-service-account": "x@y"}}
    docs = render({"router": extra, "operator": extra})
    for suffix in ("-router", "-operator"):
        d = _deployment(docs, suffix)
        tpl = d["spec"]["template"]
        assert tpl["metadata"]["annotations"] == {"a": "b"} and tpl["metadata"]["labels"]["team"] == "ml"
        c = tpl["spec"]["containers"][0]
        assert _env(d)["X"]["value"] == "1" and c["envFrom"] == [{"secretRef": {"name": "s"}}]
        assert {"name": "certs", "mountPath": "/certs"} in c["volumeMounts"]
        assert {"name": "certs", "secret": {"secretName": "ca"}} in tpl["spec"]["volumes"]
        sa = next(x for x in docs if x["kind"] == "ServiceAccount" and x["metadata"]["name"].endswith(suffix))
        assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "x@y"}
        assert tpl["metadata"]["labels"]["app.kubernetes.io/component"] == suffix[1:]


def test_without_operator_chart_writes_ponder_yaml():
    docs = render({"operator": {"enabled": False}, "config": {"routing": {"max_samples": 4}}})
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    cfg = PonderConfig.model_validate(yaml.safe_load(cm["data"]["ponder.yaml"]))
    assert cfg.routing.max_samples == 4 and cfg.router.host == "0.0.0.0" and cfg.redis.url is None
    assert cfg.redis.outcome_maxlen == 100000
    assert not [d for d in docs if d["kind"] in ("ModelPool", "ClusterRole")]


def test_namespaced_rbac_is_least_privilege():
    docs = render({"operator": {"watchNamespaces": ["team-a", "team-b"]}})
    roles = [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "demo-ponder-operator"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    cluster_roles = {d["metadata"]["name"] for d in docs if d["kind"] == "ClusterRole"}
    assert cluster_roles == {"demo-ponder-operator-discovery"}
    for r in roles:
        for rule in r["rules"]:
            assert "*" not in rule["verbs"] and "secrets" not in rule["resources"]
            if "delete" in rule["verbs"]:  # only ponder's own objects, for the uninstall hook
                assert rule["apiGroups"] == ["ponder.dev"] and not [x for x in rule["resources"] if "/" in x]


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


# yamllint's default rules, except what Helm's toYaml cannot follow: it writes block
# sequences unindented under their key, and flow mappings keep the chart's one-line style.
YAMLLINT = """
extends: default
rules:
  document-start: disable
  line-length: {max: 160}
  indentation: {spaces: consistent, indent-sequences: whatever}
  braces: {max-spaces-inside: 1}
  brackets: {max-spaces-inside: 1}
  truthy: {check-keys: false}
"""


@pytest.mark.parametrize("values", sorted(VALUES))
def test_yamllint_clean(values):
    """Rendered manifests, values and examples; key-duplicates catches repeated labels in pod templates."""
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    conf = YamlLintConfig(YAMLLINT)
    stream = render_stream(VALUES[values])
    problems = [f"{p} | {stream.splitlines()[p.line - 1][:80]}" for p in linter.run(stream, conf)]
    for f in [CHART / "values.yaml", CHART / "Chart.yaml", *sorted((CHART / "examples").glob("*.yaml"))]:
        problems += [f"{f.name}: {p}" for p in linter.run(f.read_text(), conf)]
    assert not problems, "\n".join(problems)


def test_router_serves_the_openai_api_on_http_port_unless_zero():
    docs = render({})
    router = _deployment(docs, "-router")
    ports = {p["name"]: p["containerPort"] for p in router["spec"]["template"]["spec"]["containers"][0]["ports"]}
    assert ports["http"] == 8080 and _env(router)["PONDER_HTTP_PORT"]["value"] == "8080"
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-router"))
    assert {"name": "http", "port": 8080, "targetPort": "http", "appProtocol": "http"} in svc["spec"]["ports"]
    off = _deployment(render({"router": {"httpPort": 0}}), "-router")
    assert "PONDER_HTTP_PORT" not in _env(off)
    assert "http" not in {p["name"] for p in off["spec"]["template"]["spec"]["containers"][0]["ports"]}


def test_grafana_dashboard_configmap_for_the_sidecar_queries_real_metrics():
    import json
    import re

    assert not [d for d in render({}) if d["metadata"]["name"].endswith("-dashboard")]
    docs = render({"metrics": {"grafanaDashboard": {"enabled": True, "annotations": {"grafana_folder": "ponder"}}}})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "ponder"}
    dash = json.loads(cm["data"]["ponder.json"])
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    # Every ponder series a panel reads is one the router exports.
    from prometheus_client import generate_latest

    from ponder.common.config import PoolConfig
    from ponder.router.metrics import RouterMetrics

    m = RouterMetrics([PoolConfig(name="small")])
    m.answered("small", "single", "OK", 1.0, 0.1)
    m.set_budget_source(lambda: type("B", (), {"lambda_per_cu": lambda self: 0.1})())
    exported = set(re.findall(r"^(ponder_\w+?)(?:\{| )", generate_latest(m.registry).decode(), re.M))
    used = {n for e in exprs for n in re.findall(r"\b(ponder_\w+)", e)}
    assert used and used <= exported, used - exported
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for needle in ("requests", "error", "latency", "strategy", "tier", "compute units", "λ", "queue", "replicas"):
        assert needle in titles
