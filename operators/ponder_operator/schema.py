"""Pydantic JSON schema -> Kubernetes structural OpenAPI v3 schema, and back to
a JSON schema for offline validation.

``structural(model)`` inlines ``$ref``s, turns ``X | None`` into an optional
``X`` (not ``nullable``: the API server then prunes an explicit null, so CEL
rules see the field as absent, as pydantic sees None as unset),
numeric ``exclusiveMinimum`` into OpenAPI 3.0's boolean form, ``const`` into a
one-value ``enum``, free-form dicts into ``x-kubernetes-preserve-unknown-fields``
and a discriminated union into one object holding every variant's fields (no
per-variant defaults, since the API server would apply them to all variants)
plus a ``oneOf`` that ties each tag to its variant's required fields. Titles and
``additionalProperties: false`` go: unknown fields are pruned by the API server
and rejected by ``kubectl``'s strict field validation.

``to_jsonschema(openapi)`` makes a Draft 4 schema that behaves like the API
server with strict field validation (nullable, unknown fields rejected), so
tests and the chart can check custom resources without a cluster. Both raise
``ValueError`` on a schema construct they do not know.
"""
from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

_DROP = {"title", "discriminator", "$defs"}


def structural(model: type[BaseModel], rules: dict[str, list[dict[str, str]]] | None = None) -> dict[str, Any]:
    """The structural schema of ``model``; ``rules`` (model name -> CEL rules) become
    ``x-kubernetes-validations`` on the node of each named model (root included)."""
    js = model.model_json_schema(mode="validation")
    defs = js.pop("$defs", {})
    if rules:
        for name, node in [(model.__name__, js), *defs.items()]:
            if name in rules:
                node["x-kubernetes-validations"] = [dict(r) for r in rules[name]]
    return _convert(js, defs)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node["$ref"]
    if not ref.startswith("#/$defs/"):
        raise ValueError(f"unsupported $ref {ref!r}")
    target = defs[ref.split("/")[-1]]
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return merged


def _convert(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return _convert(_resolve(node, defs), defs)
    if "anyOf" in node:
        return _nullable(node, defs)
    if "oneOf" in node:
        return _union(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            out["properties"] = {k: _convert(v, defs) for k, v in value.items()}
        elif key == "items":
            out["items"] = _convert(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out["additionalProperties"] = _convert(value, defs)
            elif value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "default" and value is None:
            continue
        else:
            out[key] = copy.deepcopy(value)
    if "type" not in out and "enum" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    elif out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True
    if "enum" in out and "type" not in out:
        out["type"] = _enum_type(out["enum"])
    return out


def _enum_type(values: list[Any]) -> str:
    kinds = {type(v) for v in values}
    if kinds == {str}:
        return "string"
    if kinds <= {int}:
        return "integer"
    raise ValueError(f"enum of mixed or unsupported types: {values!r}")


def _nullable(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    if len(options) != 1:
        raise ValueError(f"only 'X | None' unions are supported, got {node['anyOf']!r}")
    rest = {k: v for k, v in node.items() if k != "anyOf"}
    return _convert({**options[0], **rest}, defs)


def _union(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    tag = node.get("discriminator", {}).get("propertyName")
    if not tag:
        raise ValueError("oneOf is supported for discriminated unions only")
    variants = [_resolve(v, defs) if "$ref" in v else v for v in node["oneOf"]]
    props: dict[str, Any] = {}
    tags: list[str] = []
    branches: list[dict[str, Any]] = []
    for v in variants:
        conv = _convert({k: x for k, x in v.items() if k not in ("description",)}, defs)
        value = conv["properties"][tag]
        tag_value = value["enum"][0] if "enum" in value else value["default"]
        tags.append(tag_value)
        for name, schema in conv["properties"].items():
            if name != tag and name not in props:
                props[name] = {k: x for k, x in schema.items() if k != "default"}
        required = sorted(set(conv.get("required", [])) - {tag})
        branch: dict[str, Any] = {"properties": {tag: {"enum": [tag_value]}}}
        if required:
            branch["required"] = required
        branches.append(branch)
    out: dict[str, Any] = {
        "type": "object",
        "properties": {tag: {"type": "string", "enum": tags, "description": "Variant of this union."}, **props},
        "required": [tag],
        "oneOf": branches,
    }
    if "description" in node:
        out["description"] = node["description"]
    return out


def to_jsonschema(openapi: dict[str, Any]) -> dict[str, Any]:
    """Draft 4 JSON schema equivalent to a structural schema under strict field validation."""
    out: dict[str, Any] = {}
    preserve = openapi.get("x-kubernetes-preserve-unknown-fields", False)
    for key, value in openapi.items():
        if key.startswith("x-kubernetes-") or key == "nullable":
            continue
        if key == "properties":
            out["properties"] = {k: to_jsonschema(v) for k, v in value.items()}
        elif key == "items":
            out["items"] = to_jsonschema(value)
        elif key == "additionalProperties" and isinstance(value, dict):
            out["additionalProperties"] = to_jsonschema(value)
        elif key in ("oneOf", "anyOf", "allOf"):
            out[key] = [to_jsonschema(v) for v in value]
        elif key == "not":
            out["not"] = to_jsonschema(value)
        else:
            out[key] = copy.deepcopy(value)
    if "properties" in out and not preserve and "additionalProperties" not in out and openapi.get("type") == "object":
        out["additionalProperties"] = False
    if openapi.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    return out


def apply_defaults(openapi: dict[str, Any], obj: Any) -> Any:
    """A copy of ``obj`` with the schema's defaults filled in where fields are
    absent, as the API server does before it evaluates validation rules."""
    if isinstance(obj, dict) and openapi.get("type") == "object":
        out = dict(obj)
        for name, sub in (openapi.get("properties") or {}).items():
            if name not in out and "default" in sub:
                out[name] = copy.deepcopy(sub["default"])
            if name in out:
                out[name] = apply_defaults(sub, out[name])
        extra = openapi.get("additionalProperties")
        if isinstance(extra, dict):
            for name in set(out) - set(openapi.get("properties") or {}):
                out[name] = apply_defaults(extra, out[name])
        return out
    if isinstance(obj, list) and "items" in openapi:
        return [apply_defaults(openapi["items"], x) for x in obj]
    return obj


def prune_nulls(openapi: dict[str, Any], obj: Any) -> Any:
    """A copy of ``obj`` without null fields where the schema is not ``nullable``,
    as the API server prunes them before defaulting."""
    if isinstance(obj, dict):
        props = openapi.get("properties") or {}
        extra = openapi.get("additionalProperties") if isinstance(openapi.get("additionalProperties"), dict) else {}
        out = {}
        for k, v in obj.items():
            sub = props.get(k, extra)
            if v is None and not sub.get("nullable"):
                continue
            out[k] = prune_nulls(sub, v)
        return out
    if isinstance(obj, list):
        return [prune_nulls(openapi.get("items") or {}, x) for x in obj]
    return obj


def admitted(openapi: dict[str, Any], obj: Any) -> Any:
    """``obj`` as the API server holds it before validation: nulls pruned, defaults applied."""
    return apply_defaults(openapi, prune_nulls(openapi, obj))


def cel_violations(openapi: dict[str, Any], obj: Any, path: str = "") -> list[tuple[str, str]]:
    """Evaluate every ``x-kubernetes-validations`` rule of a structural schema on
    ``obj`` (as ``admitted``) with cel-python, offline; returns ``[(path, message)]``
    of the rules that fail. A rule that does not compile or evaluate raises
    ``ValueError`` naming it."""
    return _violations(openapi, admitted(openapi, obj), path)


def _violations(openapi: dict[str, Any], obj: Any, path: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if obj is None:
        return out
    for r in openapi.get("x-kubernetes-validations") or []:
        if not _cel(r["rule"], obj):
            out.append((path + r.get("fieldPath", ""), r.get("message", r["rule"])))
    if isinstance(obj, dict):
        for name, sub in (openapi.get("properties") or {}).items():
            if name in obj:
                out += _violations(sub, obj[name], f"{path}.{name}")
    elif isinstance(obj, list) and "items" in openapi:
        for i, x in enumerate(obj):
            out += _violations(openapi["items"], x, f"{path}[{i}]")
    return out


_PROGRAMS: dict[str, Any] = {}


def _cel(rule: str, value: Any) -> bool:
    import celpy

    prog = _PROGRAMS.get(rule)
    if prog is None:
        env = celpy.Environment()
        try:
            prog = env.program(env.compile(rule))
        except Exception as e:
            raise ValueError(f"CEL rule does not compile: {rule!r}: {e}") from None
        _PROGRAMS[rule] = prog
    result = prog.evaluate({"self": celpy.json_to_cel(value)})
    if isinstance(result, Exception):
        raise ValueError(f"CEL rule {rule!r} failed to evaluate on {value!r}: {result}")
    return bool(result)
