"""The RayServices the operator renders: checked against the subset of KubeRay's
ray.io/v1 RayService schema they use, their pod templates against Kubernetes'
PodTemplateSpec, and serveConfigV2 against Ray Serve's own config schema."""
from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ponder_operator import modelpool
from ponder_operator.settings import Settings

from test_operator_reconcile import CPU, GPU, SOFTCOT

S = Settings()
_STR_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_TEMPLATE = {"type": "object", "required": ["spec"], "properties": {"metadata": {"type": "object"}, "spec": {"type": "object"}}}
# Subset of ray.io/v1 RayService (KubeRay >= 1.3) covering the fields ponder sets.
RAYSERVICE = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"enum": ["ray.io/v1"]},
        "kind": {"enum": ["RayService"]},
        "metadata": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string", "maxLength": 47}}},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["serveConfigV2", "rayClusterConfig"],
            "properties": {
                "serveConfigV2": {"type": "string"},
                "rayClusterConfig": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["headGroupSpec"],
                    "properties": {
                        "rayVersion": {"type": "string"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "autoscalerOptions": {
                            "type": "object", "additionalProperties": False,
                            "properties": {"upscalingMode": {"enum": ["Default", "Aggressive", "Conservative"]},
                                           "idleTimeoutSeconds": {"type": "integer", "minimum": 0}},
                        },
                        "headGroupSpec": {
                            "type": "object", "additionalProperties": False, "required": ["template"],
                            "properties": {"rayStartParams": _STR_MAP, "template": _TEMPLATE},
                        },
                        "workerGroupSpecs": {"type": "array", "items": {
                            "type": "object", "additionalProperties": False, "required": ["groupName", "template"],
                            "properties": {
                                "groupName": {"type": "string"},
                                "replicas": {"type": "integer", "minimum": 0},
                                "minReplicas": {"type": "integer", "minimum": 0},
                                "maxReplicas": {"type": "integer", "minimum": 0},
                                "rayStartParams": _STR_MAP,
                                "template": _TEMPLATE,
                            },
                        }},
                    },
                },
            },
        },
    },
}

SPECS = {"cpu": CPU, "gpu": GPU, "softcot": SOFTCOT, "fixed": {"replicas": {"min": 2, "max": 2}}}


@pytest.fixture(params=sorted(SPECS))
def rayservice(request):
    rs, _ = modelpool.children(request.param, "ns", SPECS[request.param], S)
    return rs


def test_rayservice_subset_schema(rayservice):
    jsonschema.Draft7Validator(RAYSERVICE).validate(rayservice)
    for group in rayservice["spec"]["rayClusterConfig"]["workerGroupSpecs"]:
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


@pytest.mark.parametrize("version", ["1.30.0", "1.33.0"])
def test_pod_templates_are_valid_kubernetes(rayservice, version):
    cluster = rayservice["spec"]["rayClusterConfig"]
    templates = [cluster["headGroupSpec"]["template"]] + [g["template"] for g in cluster["workerGroupSpecs"]]
    for t in templates:
        obj = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}, "template": t}
        kubernetes_validate.validate(obj, version, strict=True)


def test_service_is_valid_kubernetes():
    _, svc = modelpool.children("small", "ns", CPU, S)
    for v in ("1.30.0", "1.33.0"):
        kubernetes_validate.validate(svc, v, strict=True)


def test_serve_config_accepted_by_ray_serve(rayservice):
    schema = pytest.importorskip("ray.serve.schema")
    cfg = schema.ServeDeploySchema.parse_obj(yaml.safe_load(rayservice["spec"]["serveConfigV2"]))
    app = cfg.applications[0]
    assert app.import_path == "ponder.pools.serve_app:build_app"
    assert cfg.grpc_options.port == 9000
