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


def test_keys_secret_is_mounted_and_named_to_the_router():
    docs = render({"router": {"auth": {"keysSecret": "ponder-api-keys"}}})
    router = _deployment(docs, "-router")
    assert _env(router)["PONDER_AUTH_KEYS_FILE"]["value"] == "/etc/ponder-keys/keys.json"
    vols = {v["name"]: v for v in router["spec"]["template"]["spec"]["volumes"]}
    assert vols["api-keys"]["secret"]["secretName"] == "ponder-api-keys"
    assert "PONDER_AUTH_KEYS_FILE" not in _env(_deployment(render({}), "-router"))


def test_auth_is_on_in_the_chart_and_off_for_ponder_up_on_loopback():
    cm = next(d for d in render({"operator": {"enabled": False}}) if d["kind"] == "ConfigMap" and "ponder.yaml" in d.get("data", {}))
    assert auth_required(parse_config(yaml.safe_load(cm["data"]["ponder.yaml"])))
    assert not auth_required(parse_config({}))  # ponder up: 127.0.0.1
