"""Backend kinds register with their config model; the engine asks the backend how many requests it runs."""
from __future__ import annotations

from typing import ClassVar, Literal

import pytest

from ponder.common import config
from ponder.common.config import BACKEND_CONFIGS, BackendConfig, PoolConfig, TransformersBackend, parse_config
from ponder.common.errors import ConfigError
from ponder.pools.backends import backend_class, make_backend
from ponder.pools.backends.base import Backend


def test_every_registered_kind_resolves_to_a_backend_of_that_kind():
    for kind, cls in BACKEND_CONFIGS.items():
        fields = {"base_url": "http://x/v1", "model": "m"} if kind == "openai" else {"model": "m"} if kind == "vllm" else {}
        impl = backend_class(cls(**fields))
        assert issubclass(impl, Backend)
        assert impl.kind == kind
        assert impl.accepts_embeddings == cls.accepts_embeddings


def test_registry_refuses_a_repeated_kind_and_a_missing_implementation():
    class Again(BackendConfig):
        kind: Literal["sim"] = "sim"
        implementation: ClassVar[str] = "x:Y"

    with pytest.raises(ValueError, match="backend kind 'sim' registered twice"):
        config.register_backends(config.SimBackend, Again)

    class Nowhere(BackendConfig):
        kind: Literal["nowhere"] = "nowhere"

    with pytest.raises(ValueError, match="names no implementation"):
        config.register_backends(Nowhere)


def test_config_reaches_the_transformers_backend_by_its_kind():
    cfg = parse_config({"pools": [{"name": "t", "backend": {"kind": "transformers", "device": "cpu"}}]})
    b = cfg.pools[0].backend
    assert isinstance(b, TransformersBackend) and b.device == "cpu"
    assert cfg.pools[0].model_label().startswith("gemma-3-270m")
    engine = make_backend(b)
    assert (engine.kind, engine.max_concurrency, engine.accepts_embeddings) == ("transformers", 1, True)


def test_bad_transformers_field_has_a_path_without_the_union_tag():
    with pytest.raises(ConfigError) as ei:
        parse_config({"pools": [{"name": "t", "backend": {"kind": "transformers", "device": "tpu"}}]})
    assert [p for p, _ in ei.value.problems] == ["pools[0].backend.device"]


def test_softcot_block_rules():
    with pytest.raises(ValueError, match="tier 'softcot' needs softcot"):
        PoolConfig(name="s", tier="softcot", backend=TransformersBackend())
    with pytest.raises(ValueError, match="only valid for tier 'softcot'"):
        PoolConfig(name="s", backend=TransformersBackend(), softcot={"projection_path": "p"})
    with pytest.raises(ValueError, match=r"accepts input embeddings \['transformers', 'vllm'\], not 'llamacpp'"):
        PoolConfig(name="s", tier="softcot", softcot={"projection_path": "p"})
    with pytest.raises(ValueError, match=r"placeholders \['\{thoughts\}'\]"):
        PoolConfig(name="s", tier="softcot", backend=TransformersBackend(),
                   softcot={"projection_path": "p", "backbone_template": "{prompt}"})
    ok = PoolConfig(name="s", tier="softcot", backend=TransformersBackend(), softcot={"projection_path": "p"})
    assert ok.softcot.num_thought_tokens == 4 and ok.softcot.on_by_default


def test_the_modelpool_softcot_block_survives_into_the_pool_config():
    from ponder.common.crd_models import ModelPoolSpec

    spec = ModelPoolSpec(tier="softcot", backend={"kind": "transformers"},
                         softcot={"projection_path": "/models/p.safetensors", "num_thought_tokens": 6})
    pool = spec.to_pool_config("sc")
    assert pool.softcot.projection_path == "/models/p.safetensors" and pool.softcot.num_thought_tokens == 6


def test_operator_gpu_need_comes_from_the_backend_config():
    assert config.VLLMBackend.needs_gpu and not TransformersBackend.needs_gpu
