"""ponder.yaml loading: defaults, and errors that name the field path of every problem."""
from __future__ import annotations

import pytest

from ponder.common.config import Cost, LlamaCppBackend, SimBackend, Speed, load_config, parse_config
from ponder.common.errors import ConfigError


def problems(data) -> dict[str, str]:
    with pytest.raises(ConfigError) as ei:
        parse_config(data, "test.yaml")
    assert ei.value.source == "test.yaml"
    return dict(ei.value.problems)


def test_defaults_give_a_small_and_a_thinking_reasoning_pool():
    cfg = load_config()
    assert cfg.pool_names == ["small", "reasoning"]
    small, reasoning = cfg.pool("small"), cfg.pool("reasoning")
    assert small.tier == "small" and small.thinking is None
    assert reasoning.tier == "reasoning" and reasoning.thinking is not None
    assert reasoning.thinking.budget_tokens == 256
    assert "{prompt}" in reasoning.thinking.prompt_template
    assert reasoning.max_tokens_default == 32
    assert isinstance(small.backend, LlamaCppBackend)
    assert cfg.routing.policy.name == "threshold"
    assert cfg.routing.fallback_pool is None


def test_parse_none_and_empty_file_give_defaults(tmp_path):
    assert parse_config(None).pool_names == ["small", "reasoning"]
    f = tmp_path / "ponder.yaml"
    f.write_text("")
    assert load_config(f).pool_names == ["small", "reasoning"]


def test_load_config_reads_yaml(tmp_path):
    f = tmp_path / "ponder.yaml"
    f.write_text(
        "pools:\n"
        "  - name: fast\n"
        "    backend: {kind: sim, ttft_ms: 1, tpot_ms: 2}\n"
        "    replicas: {min: 1, max: 3}\n"
        "routing:\n"
        "  fallback_pool: fast\n"
    )
    cfg = load_config(f)
    (pool,) = cfg.pools
    assert pool.name == "fast"
    assert isinstance(pool.backend, SimBackend)
    assert (pool.backend.ttft_ms, pool.backend.tpot_ms) == (1.0, 2.0)
    assert (pool.replicas.min, pool.replicas.max) == (1, 3)
    assert pool.model_label() == "sim"
    assert cfg.routing.fallback_pool == "fast"


def test_backend_field_path_drops_the_union_tag():
    got = problems({"pools": [{"name": "a"}, {"name": "b", "backend": {"kind": "llamacpp", "n_ctx": 1}}]})
    assert list(got) == ["pools[1].backend.n_ctx"]
    assert "128" in got["pools[1].backend.n_ctx"]


def test_sim_backend_field_path_drops_the_union_tag():
    got = problems({"pools": [{"name": "a", "backend": {"kind": "sim", "tpot_ms": -1}}]})
    assert list(got) == ["pools[0].backend.tpot_ms"]


def test_unknown_backend_kind_names_the_backend():
    got = problems({"pools": [{"name": "a", "backend": {"kind": "tpu"}}]})
    assert list(got) == ["pools[0].backend"]


def test_replicas_min_above_max():
    got = problems({"pools": [{"name": "a", "replicas": {"min": 3, "max": 2}}]})
    assert list(got) == ["pools[0].replicas"]
    assert "min (3) must be <= max (2)" in got["pools[0].replicas"]


def test_max_tokens_default_above_limit():
    got = problems({"pools": [{"name": "a", "max_tokens_default": 100, "max_tokens_limit": 10}]})
    assert list(got) == ["pools[0]"]
    assert "max_tokens_default (100)" in got["pools[0]"]


def test_duplicate_pool_names():
    got = problems({"pools": [{"name": "a"}, {"name": "b"}, {"name": "a"}]})
    assert list(got) == ["<root>"]
    assert "unique" in got["<root>"] and "['a']" in got["<root>"]


def test_unknown_fallback_pool():
    got = problems({"pools": [{"name": "a"}], "routing": {"fallback_pool": "zzz"}})
    assert list(got) == ["<root>"]
    assert "routing.fallback_pool 'zzz'" in got["<root>"]


def test_bad_pool_name_pattern():
    got = problems({"pools": [{"name": "Not_DNS"}]})
    assert list(got) == ["pools[0].name"]


def test_extra_fields_are_forbidden_at_every_level():
    got = problems({"pools": [{"name": "a", "colour": "red"}], "routing": {"max_prompt_char": 5}, "nope": 1})
    assert set(got) == {"pools[0].colour", "routing.max_prompt_char", "nope"}
    assert all("xtra" in msg for msg in got.values())


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as ei:
        parse_config({"router": {"port": 70000}, "serve": {"grpc_port": 0}}, "multi.yaml")
    paths = [p for p, _ in ei.value.problems]
    assert paths == ["router.port", "serve.grpc_port"]
    assert "invalid config multi.yaml" in str(ei.value)
    assert "  router.port: " in str(ei.value)


def test_empty_pool_list_is_refused():
    assert list(problems({"pools": []})) == ["pools"]


@pytest.mark.parametrize("data,kind", [([1, 2], "list"), ("text", "str"), (3, "int")])
def test_non_mapping_is_refused(data, kind):
    got = problems(data)
    assert got == {"<root>": f"expected a mapping, got {kind}"}


def test_non_mapping_yaml_file(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(ConfigError) as ei:
        load_config(f)
    assert ei.value.source == str(f)
    assert ei.value.problems == [("<root>", "expected a mapping, got list")]


def test_malformed_yaml(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("pools: [\n  name: a\n")
    with pytest.raises(ConfigError) as ei:
        load_config(f)
    assert ei.value.source == str(f)
    ((path, msg),) = ei.value.problems
    assert path == "<yaml>"
    assert msg and "\n" not in msg


def test_missing_file(tmp_path):
    f = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as ei:
        load_config(f)
    assert ei.value.source == str(f)
    assert ei.value.problems == [("<file>", "No such file or directory")]
    assert str(f) in str(ei.value)


def test_field_errors_in_a_file_carry_the_path(tmp_path):
    f = tmp_path / "ponder.yaml"
    f.write_text("pools:\n  - name: a\n  - name: b\n    backend: {kind: llamacpp, n_ctx: 99999999}\n")
    with pytest.raises(ConfigError) as ei:
        load_config(f)
    assert [p for p, _ in ei.value.problems] == ["pools[1].backend.n_ctx"]


def test_cost_units():
    assert Cost().units(10, 5) == pytest.approx(10 * 0.1 + 5 * 1.0)
    assert Cost(prompt_token_cu=0.5, output_token_cu=2.0).units(4, 3) == pytest.approx(8.0)
    assert Cost(prompt_token_cu=0.0).units(1000, 0) == 0.0


def test_cost_output_price_must_be_positive():
    got = problems({"pools": [{"name": "a", "cost": {"output_token_cu": 0}}]})
    assert list(got) == ["pools[0].cost.output_token_cu"]


def test_default_speed_is_a_cpu_llamacpp_replica():
    s = Speed()
    assert (s.prefill_tokens_per_s, s.decode_tokens_per_s, s.concurrent_samples) == (288.0, 43.0, 1)
    assert all(p.speed == s for p in parse_config(None).pools)


@pytest.mark.parametrize(
    "speed,path",
    [
        ({"ttft_ms": 0}, "pools[0].speed.ttft_ms"),
        ({"prefill_tokens_per_s": -1}, "pools[0].speed.prefill_tokens_per_s"),
        ({"decode_tokens_per_s": 0}, "pools[0].speed.decode_tokens_per_s"),
        ({"concurrent_samples": 0}, "pools[0].speed.concurrent_samples"),
        ({"concurrent_samples": 1.5}, "pools[0].speed.concurrent_samples"),
        ({"tokens_per_s": 40}, "pools[0].speed.tokens_per_s"),
    ],
)
def test_bad_speed_names_the_field(speed, path):
    assert list(problems({"pools": [{"name": "a", "speed": speed}]})) == [path]
