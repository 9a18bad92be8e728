"""CRDs: generated from the pydantic models, not stale, valid for the API server,
and they accept the documented examples and reject bad specs at the right field."""
from __future__ import annotations

import pathlib

import jsonschema
import kubernetes_validate
import pytest
import yaml

from ponder.common.crd_models import ConsolidationPolicySpec, ModelPoolSpec, RoutingPolicySpec
from ponder_operator import crdgen
from ponder_operator.crds import KINDS, all_crds, kind
from ponder_operator.modelpool import InvalidSpec, validate
from ponder_operator.schema import to_jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "docs" / "examples"
K8S_VERSIONS = ["1.30.0", "1.33.0"]
MODELS = {"ModelPool": ModelPoolSpec, "RoutingPolicy": RoutingPolicySpec, "ConsolidationPolicy": ConsolidationPolicySpec}


def _validator(kind_name: str) -> jsonschema.Draft4Validator:
    c = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind_name)
    return jsonschema.Draft4Validator(to_jsonschema(c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]))


def _walk(node, path=""):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def test_generated_files_are_fresh():
    assert crdgen.stale() == [], "run: python -m ponder_operator.crdgen"


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_crds_valid_for_api_server(version):
    for c in all_crds():
        kubernetes_validate.validate(c, version, strict=True)


def test_schemas_are_structural():
    for c in all_crds():
        schema = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, node in _walk(schema):
            assert "$ref" not in node and "anyOf" not in node and "const" not in node, path
            assert node.get("additionalProperties") is not False, path
            if "properties" in node and not path.endswith("properties") and "oneOf[" not in path.rsplit(".", 1)[-1]:
                assert node.get("type") == "object", path
            for branch in node.get("oneOf", []):
                assert not {"type", "default", "description", "nullable"} & set(branch), path


def test_enums_defaults_bounds_required():
    spec = kind("ModelPool").spec
    s = next(c for c in all_crds() if c["spec"]["names"]["kind"] == "ModelPool")
    props = s["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert props["tier"]["enum"] == ["small", "reasoning", "softcot"] and props["tier"]["default"] == "small"
    assert props["autoscaling"]["properties"]["metric"]["enum"] == ["ongoing_requests", "queue_depth", "tokens_per_second"]
    assert props["replicas"]["properties"]["max"]["minimum"] == 1
    assert props["cost"]["properties"]["output_token_cu"]["exclusiveMinimum"] is True
    assert props["backend"]["required"] == ["kind"]
    assert spec is ModelPoolSpec


def test_printer_columns_and_status():
    for c in all_crds():
        v = c["spec"]["versions"][0]
        assert v["subresources"] == {"status": {}}
        names = [col["name"] for col in v["additionalPrinterColumns"]]
        assert {"Ready", "Reason", "Age"} <= set(names)
        status = v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        assert {"conditions", "observedGeneration"} <= set(status)


def _examples():
    for p in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(p.read_text()):
            yield p.name, doc


@pytest.mark.parametrize("name,doc", list(_examples()), ids=lambda x: x if isinstance(x, str) else "")
def test_doc_examples_valid(name, doc):
    errors = list(_validator(doc["kind"]).iter_errors(doc))
    assert not errors, [e.message for e in errors]
    validate(MODELS[doc["kind"]], doc["kind"], doc["metadata"]["name"], doc["spec"])
    from ponder_operator.schema import cel_violations

    assert not cel_violations(_spec_schema(doc["kind"]), doc["spec"], "spec")


def _pool(**spec):
    return {"apiVersion": "ponder.dev/v1alpha1", "kind": "ModelPool", "metadata": {"name": "p"}, "spec": spec}


INVALID_SCHEMA = [
    (_pool(tier="huge"), "spec.tier"),
    (_pool(backend={"kind": "tpu"}), "spec.backend.kind"),
    (_pool(backend={"kind": "vllm"}), "spec.backend"),  # model required for vllm
    (_pool(replicas={"min": 1, "max": 0}), "spec.replicas.max"),
    (_pool(autoscaling={"target": 0}), "spec.autoscaling.target"),
    (_pool(autoscaling={"metric": "gpu_util"}), "spec.autoscaling.metric"),
    (_pool(cost={"output_token_cu": -1}), "spec.cost.output_token_cu"),
    (_pool(resources={"memory": "lots"}), "spec.resources.memory"),
    (_pool(tolerations=[{"operator": "Maybe"}]), "spec.tolerations[0].operator"),
    (_pool(replica={"min": 1}), "spec"),  # unknown field (kubectl strict field validation)
    ({"apiVersion": "ponder.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "r"},
      "spec": {"strategies": ["Tele pathy"]}}, "spec.strategies[0]"),
    ({"apiVersion": "ponder.dev/v1alpha1", "kind": "RoutingPolicy", "metadata": {"name": "r"},
      "spec": {"budget": {"target_cu_per_request": 0}}}, "spec.budget.target_cu_per_request"),
    ({"apiVersion": "ponder.dev/v1alpha1", "kind": "ConsolidationPolicy", "metadata": {"name": "c"},
      "spec": {"passes": []}}, "spec"),  # pool required
    ({"apiVersion": "ponder.dev/v1alpha1", "kind": "ConsolidationPolicy", "metadata": {"name": "c"},
      "spec": {"pool": "small", "schedule": "nightly"}}, "spec.schedule"),
]


def _path(err: jsonschema.ValidationError) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


@pytest.mark.parametrize("doc,field", INVALID_SCHEMA)
def test_invalid_crs_rejected_by_schema(doc, field):
    errors = list(_validator(doc["kind"]).iter_errors(doc))
    assert errors, "accepted an invalid CR"
    assert field in {_path(e) for e in errors}, [(_path(e), e.message) for e in errors]


INVALID_SEMANTIC = [
    ({"replicas": {"min": 3, "max": 2}}, "spec.replicas"),
    ({"tier": "softcot"}, "spec"),
    ({"replicas": {"min": 0, "max": 2}}, "spec"),
    ({"backend": {"kind": "vllm", "model": "m", "tensor_parallel_size": 2}, "resources": {"gpus": 1}}, "spec"),
    ({"backend": {"kind": "openai", "base_url": "ftp://x", "model": "m"}}, "spec.backend.base_url"),
    ({"max_tokens_default": 100, "max_tokens_limit": 10}, "spec"),
    ({"node_selector": {"bad key!": "x"}}, "spec.node_selector"),
]


@pytest.mark.parametrize("spec,field", INVALID_SEMANTIC)
def test_invalid_specs_rejected_by_models_with_path(spec, field):
    """Cross-field rules the schema cannot express fail in the operator with the path."""
    with pytest.raises(InvalidSpec) as e:
        validate(ModelPoolSpec, "ModelPool", "p", spec)
    assert field in [p for p, _ in e.value.problems]


def test_name_length_limit():
    with pytest.raises(InvalidSpec) as e:
        validate(ModelPoolSpec, "ModelPool", "x" * 41, {})
    assert e.value.problems[0][0] == "metadata.name"


def test_every_kind_listed():
    assert {k.kind for k in KINDS} == set(MODELS)


def test_conditions_are_a_bounded_map_and_status_is_closed():
    for c in all_crds():
        status = c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert "x-kubernetes-preserve-unknown-fields" not in status
        conds = status["properties"]["conditions"]
        assert conds["x-kubernetes-list-type"] == "map" and conds["x-kubernetes-list-map-keys"] == ["type"]
        assert conds["maxItems"] == 8
        item = conds["items"]
        assert {"type", "status", "reason", "lastTransitionTime"} <= set(item["required"])
        assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    cols = {col["name"] for col in kind("RoutingPolicy").columns and
            next(c for c in all_crds() if c["spec"]["names"]["kind"] == "RoutingPolicy")
            ["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert "Classifier" not in cols


# ----------------------------------------------------------------- CEL rules == pydantic validators
def _spec_schema(kind_name: str) -> dict:
    c = next(c for c in all_crds() if c["spec"]["names"]["kind"] == kind_name)
    return c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


VLLM = {"kind": "vllm", "model": "m"}
# (kind, spec); each invalid one breaks exactly one cross-field rule the field schema cannot express.
CROSS_FIELD = [
    ("ModelPool", {}, True),
    ("ModelPool", {"replicas": {"min": 3, "max": 3}}, True),
    ("ModelPool", {"replicas": {"min": 5, "max": 1}}, False),
    ("ModelPool", {"max_tokens_default": 100, "max_tokens_limit": 50}, False),
    ("ModelPool", {"max_tokens_default": 50, "max_tokens_limit": 50}, True),
    ("ModelPool", {"tier": "softcot"}, False),
    ("ModelPool", {"tier": "softcot", "backend": {"kind": "transformers"},
                   "softcot": {"assistant_model": "a", "projection_path": "p"}}, True),
    ("ModelPool", {"tier": "softcot", "softcot": {"assistant_model": "a", "projection_path": "p"}}, False),
    ("ModelPool", {"tier": "small", "softcot": {"assistant_model": "a", "projection_path": "p"}}, False),
    ("ModelPool", {"tier": "small", "softcot": None}, True),
    ("ModelPool", {"replicas": {"min": 0, "max": 2}}, False),
    ("ModelPool", {"replicas": {"min": 0, "max": 2}, "autoscaling": {"scale_to_zero": True}}, True),
    ("ModelPool", {"backend": VLLM}, False),
    ("ModelPool", {"backend": VLLM, "resources": {"gpus": 1}}, True),
    ("ModelPool", {"backend": {**VLLM, "tensor_parallel_size": 4}, "resources": {"gpus": 2}}, False),
    ("ModelPool", {"backend": {**VLLM, "tensor_parallel_size": 4}, "resources": {"gpus": 4}}, True),
    ("ModelPool", {"autoscaling": {"downscale_to_zero_delay_s": 60}, "ray_version": "2.40.0"}, False),
    ("ModelPool", {"autoscaling": {"downscale_to_zero_delay_s": 60}, "ray_version": "2.41.0"}, True),
    ("ModelPool", {"autoscaling": {"downscale_to_zero_delay_s": 60}, "ray_version": "2.100.3"}, True),
    ("ModelPool", {"autoscaling": {"downscale_to_zero_delay_s": 60}, "ray_version": "3.0.0"}, True),
    ("ModelPool", {"autoscaling": {"downscale_to_zero_delay_s": 60}, "ray_version": "1.99.0"}, False),
    ("ModelPool", {"ray_version": "2.9.0"}, True),
    ("ModelPool", {"node_selector": {"nvidia.com/gpu.present": "true"}}, True),
    ("ModelPool", {"pod": {"volumes": [{"name": "c", "emptyDir": {}}],
                           "volumeMounts": [{"name": "c", "mountPath": "/c"}]}}, True),
    ("ModelPool", {"pod": {"volumeMounts": [{"name": "c", "mountPath": "/c"}]}}, False),
    ("ModelPool", {"pod": {"volumes": [{"name": "c", "emptyDir": {}}, {"name": "c", "secret": {}}]}}, False),
    ("ModelPool", {"pod": {"volumes": [{"name": "model-cache", "emptyDir": {}}]}}, False),
    ("RoutingPolicy", {}, True),
    ("RoutingPolicy", {"budget": {"target_cu_per_request": 500, "max_cu_per_request": 100}}, False),
    ("RoutingPolicy", {"strategies": ["single", "single"]}, False),
    ("RoutingPolicy", {"strategies": ["single", "vote"]}, True),
    ("ConsolidationPolicy", {"pool": "small"}, True),
]


@pytest.mark.parametrize("kind_name,spec,valid", CROSS_FIELD, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CROSS_FIELD)])
def test_cel_rules_and_pydantic_agree(kind_name, spec, valid):
    pytest.importorskip("celpy")
    from ponder_operator.schema import cel_violations

    from ponder_operator.schema import prune_nulls

    schema = _spec_schema(kind_name)
    assert not list(jsonschema.Draft4Validator(to_jsonschema(schema)).iter_errors(prune_nulls(schema, spec)))
    try:
        MODELS[kind_name].model_validate(spec)
        by_pydantic = True
    except Exception:
        by_pydantic = False
    problems = cel_violations(schema, spec, "spec")
    assert by_pydantic is valid
    assert (not problems) is valid, problems


def test_every_cel_rule_compiles_and_is_exercised():
    pytest.importorskip("celpy")
    from ponder.common.crd_models import CEL_RULES
    from ponder_operator.schema import cel_violations

    fired = set()
    for kind_name, spec, valid in CROSS_FIELD:
        for _, message in cel_violations(_spec_schema(kind_name), spec, "spec"):
            fired.add(message)
    declared = {r["message"] for rules in CEL_RULES.values() for r in rules}
    assert declared == fired, declared - fired
