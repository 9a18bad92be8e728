"""The chart's answer for drain and API keys: preStop wait plus grace inside terminationGracePeriodSeconds,
a keys Secret mounted where the router reads it, and the router bound beyond loopback (so auth is on)."""
from __future__ import annotations

import yaml

from ponder.common.auth import auth_required
from ponder.common.config import parse_config
from test_helm_chart import _deployment, _env, render


def test_drain_timings_fit_the_termination_grace_period():
    pod = _deployment(render({"router": {"drainDelaySeconds": 7, "graceSeconds": 20}}), "-router")["spec"]["template"]["spec"]
    (c,) = [c for c in pod["containers"] if c["name"] == "router"]
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 7}}
    assert pod["terminationGracePeriodSeconds"] == 7 + 20 + 5


def test_keys_secret_is_mounted_and_named_to_the_router_and_the_consolidator():
    docs = render({"router": {"auth": {"keysSecret": "ponder-api-keys"}}})
    for suffix, container in (("-router", "router"), ("-consolidator", "consolidator")):
        dep = _deployment(docs, suffix)
        assert _env(dep)["PONDER_AUTH_KEYS_FILE"]["value"] == "/etc/ponder-keys/keys.json"
        pod = dep["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["api-keys"]["secret"]["secretName"] == "ponder-api-keys"
        (c,) = [c for c in pod["containers"] if c["name"] == container]
        assert {"name": "api-keys", "mountPath": "/etc/ponder-keys", "readOnly": True} in c["volumeMounts"]
        assert "PONDER_AUTH_KEYS_FILE" not in _env(_deployment(render({}), suffix))


def test_auth_is_on_in_the_chart_and_off_for_ponder_up_on_loopback():
    cm = next(d for d in render({"operator": {"enabled": False}}) if d["kind"] == "ConfigMap" and "ponder.yaml" in d.get("data", {}))
    assert auth_required(parse_config(yaml.safe_load(cm["data"]["ponder.yaml"])))
    assert not auth_required(parse_config({}))  # ponder up: 127.0.0.1


CERTIFICATE = {  # subset of cert-manager.io/v1 Certificate used by the chart
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "cert-manager.io/v1"},
        "spec": {"type": "object", "additionalProperties": False,
                 "required": ["secretName", "issuerRef", "dnsNames"],
                 "properties": {
                     "secretName": {"type": "string", "minLength": 1},
                     "duration": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
                     "renewBefore": {"type": "string", "pattern": "^[0-9]+(h|m|s)$"},
                     "privateKey": {"type": "object", "properties": {
                         "algorithm": {"enum": ["RSA", "ECDSA", "Ed25519"]}, "size": {"type": "integer"},
                         "rotationPolicy": {"enum": ["Never", "Always"]}}},
                     "usages": {"type": "array", "items": {"enum": [
                         "server auth", "client auth", "digital signature", "key encipherment"]}},
                     "dnsNames": {"type": "array", "items": {"type": "string", "minLength": 1}},
                     "ipAddresses": {"type": "array", "items": {"type": "string"}},
                     "issuerRef": {"type": "object", "required": ["name"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string", "minLength": 1},
                                                  "kind": {"enum": ["Issuer", "ClusterIssuer"]},
                                                  "group": {"type": "string"}}}}}},
}
TLS_CERT_MANAGER = {"tls": {"enabled": True, "clientAuth": "require",
                            "certManager": {"enabled": True, "issuerRef": {"name": "ponder-ca"},
                                            "dnsNames": ["ponder.example.com"]}}}


def _valid(docs):
    import jsonschema
    import kubernetes_validate

    for d in docs:
        if d["kind"] == "Certificate":
            jsonschema.Draft7Validator(CERTIFICATE).validate(d)
        elif d["apiVersion"].startswith(("apps/", "v1", "networking.k8s.io/", "policy/", "rbac.")):
            kubernetes_validate.validate(d, "1.33.0", strict=True)


def test_tls_with_cert_manager_mounts_the_secret_into_router_and_consolidator():
    docs = render(TLS_CERT_MANAGER)
    _valid(docs)
    (cert,) = [d for d in docs if d["kind"] == "Certificate"]
    spec = cert["spec"]
    assert spec["secretName"] == "demo-ponder-tls" and spec["issuerRef"]["name"] == "ponder-ca"
    assert {"demo-ponder-router", "demo-ponder-router.ponder.svc", "demo-ponder-consolidator.ponder.svc",
            "ponder.example.com", "localhost"} <= set(spec["dnsNames"])
    assert spec["ipAddresses"] == ["127.0.0.1"] and "client auth" in spec["usages"]
    for suffix in ("-router", "-consolidator"):
        w = _deployment(docs, suffix)
        env = _env(w)
        assert env["PONDER_SERVE_TLS_CERT"]["value"] == "/etc/ponder-tls/tls.crt"
        assert env["PONDER_SERVE_TLS_KEY"]["value"] == "/etc/ponder-tls/tls.key"
        assert env["PONDER_SERVE_TLS_CA"]["value"] == "/etc/ponder-tls-ca/ca.crt"
        assert env["PONDER_SERVE_TLS_CLIENT_AUTH"]["value"] == "require"
        pod = w["spec"]["template"]["spec"]
        vols = {v["name"]: v for v in pod["volumes"]}
        assert vols["tls"]["secret"]["secretName"] == "demo-ponder-tls"
        assert vols["tls-ca"]["secret"]["secretName"] == "demo-ponder-tls"
        c = pod["containers"][0]
        mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
        assert mounts["tls"] == "/etc/ponder-tls" and mounts["tls-ca"] == "/etc/ponder-tls-ca"
        # The kubelet's gRPC probe cannot speak TLS: the port is probed by TCP.
        assert "grpc" not in c["readinessProbe"] and "tcpSocket" in c["readinessProbe"]


def test_tls_from_an_existing_secret_and_off_by_default():
    docs = render({"tls": {"enabled": True, "secretName": "my-tls"}})
    _valid(docs)
    assert not [d for d in docs if d["kind"] == "Certificate"]
    router = _deployment(docs, "-router")
    env = _env(router)
    assert env["PONDER_SERVE_TLS_CLIENT_AUTH"]["value"] == "none" and "PONDER_SERVE_TLS_CA" not in env
    assert {v["name"]: v for v in router["spec"]["template"]["spec"]["volumes"]}["tls"]["secret"]["secretName"] == "my-tls"
    plain = _deployment(render({}), "-router")
    assert not [k for k in _env(plain) if k.startswith("PONDER_SERVE_TLS")]
    assert "grpc" in plain["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]


def test_cert_manager_without_an_issuer_is_refused():
    import pytest
    from helm_python.errors import HelmError

    with pytest.raises(HelmError) as e:
        render({"tls": {"enabled": True, "certManager": {"enabled": True}}})
    assert "issuerRef.name" in str(e.value)


def test_pools_grpc_port_is_open_only_to_ponder_pods():
    docs = render({})
    (np,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "demo-ponder-pools"]
    _valid([np])
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ponder-pool"}
    grpc_rule = spec["ingress"][0]
    assert grpc_rule["ports"] == [{"port": 9000, "protocol": "TCP"}]
    comps = sorted(p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in grpc_rule["from"])
    assert comps == ["consolidator", "operator", "router"]
    assert not [d for d in render({"networkPolicy": {"enabled": False}}) if d["kind"] == "NetworkPolicy"]


def test_server_tls_environment_fills_an_unset_tls_section(tmp_path):
    import pytest

    from ponder.common.errors import ConfigError
    from ponder.common.tls import SERVER_ENV, effective_tls

    cfg = parse_config({})
    assert effective_tls(cfg.tls, {}) is cfg.tls
    env = {SERVER_ENV["cert_file"]: "/c", SERVER_ENV["key_file"]: "/k", SERVER_ENV["ca_file"]: "/ca",
           SERVER_ENV["client_auth"]: "require"}
    t = effective_tls(cfg.tls, env)
    assert (t.cert_file, t.key_file, t.ca_file, t.client_auth, t.enabled) == ("/c", "/k", "/ca", "require", True)
    with pytest.raises(ConfigError) as e:
        effective_tls(cfg.tls, {SERVER_ENV["cert_file"]: "/c"})
    assert "PONDER_SERVE_TLS_CERT" in str(e.value)
    own = parse_config({"tls": {"cert_file": "/mine", "key_file": "/k"}})
    assert effective_tls(own.tls, env).cert_file == "/mine"  # ponder.yaml wins


def test_tls_values_lint_and_render_clean():
    from yamllint import linter
    from yamllint.config import YamlLintConfig

    import test_helm_chart as th

    for values in (TLS_CERT_MANAGER, {"tls": {"enabled": True, "secretName": "my-tls", "caSecretName": "my-ca"}}):
        report = th.helm.lint(str(th.CHART), values, strict=True, kube_version="v1.33.0")
        assert not [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        stream = th.render_stream(values)
        assert not list(linter.run(stream, YamlLintConfig(th.YAMLLINT)))


def test_service_key_secret_reaches_the_router_environment():
    router = _deployment(render({"router": {"auth": {"serviceKeySecret": "ponder-service-key"}}}), "-router")
    assert _env(router)["PONDER_SERVICE_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "ponder-service-key", "key": "key"}
    assert "PONDER_SERVICE_KEY" not in _env(_deployment(render({}), "-router"))
