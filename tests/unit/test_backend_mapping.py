"""Pure mappings: GenParams -> llama.cpp kwargs, chat turns -> prompt, PoolConfig -> Serve options."""
from __future__ import annotations

from ponder.common.config import PoolConfig, Replicas
from ponder.pools.backends.base import GenParams, flatten_messages
from ponder.pools.backends.llamacpp import completion_kwargs
from ponder.pools.serve_app import deployment_options


def test_completion_kwargs_maps_every_field():
    p = GenParams(prompt="hi", max_tokens=7, temperature=0.2, top_p=0.9, top_k=5, stop=("\n", "END"), seed=3)
    assert completion_kwargs(p) == {
        "max_tokens": 7,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 5,
        "stop": ["\n", "END"],
        "stream": True,
        "seed": 3,
    }


def test_completion_kwargs_without_stop_or_seed():
    kw = completion_kwargs(GenParams(prompt="hi", max_tokens=1))
    assert kw["stop"] is None
    assert "seed" not in kw
    assert (kw["temperature"], kw["top_p"], kw["top_k"], kw["stream"]) == (0.8, 0.95, 40, True)


def test_completion_kwargs_keeps_seed_zero():
    assert completion_kwargs(GenParams(prompt="hi", max_tokens=1, seed=0))["seed"] == 0


def test_flatten_messages_labels_roles_and_ends_with_assistant():
    turns = (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello!"), ("user", "2+2?"))
    assert flatten_messages(turns) == "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: 2+2?\nAssistant:"


def test_flatten_messages_unknown_role_and_no_turns():
    assert flatten_messages((("tool", "42"),)) == "Tool: 42\nAssistant:"
    assert flatten_messages(()) == "Assistant:"


def test_deployment_options_fixed_replicas():
    cfg = PoolConfig(name="small", replicas=Replicas(min=2, max=2), num_cpus=1.5, num_gpus=0, max_queued_requests=32)
    opts = deployment_options(cfg)
    assert opts["name"] == "pool-small"
    assert opts["num_replicas"] == 2
    assert "autoscaling_config" not in opts
    assert opts["ray_actor_options"] == {"num_cpus": 1.5, "num_gpus": 0.0}
    assert opts["max_ongoing_requests"] == 32
    assert opts["health_check_period_s"] > 0 and opts["graceful_shutdown_timeout_s"] > 0


def test_deployment_options_autoscaling():
    cfg = PoolConfig(name="reasoning", replicas=Replicas(min=0, max=4, target_ongoing_requests=3.0), num_cpus=0, num_gpus=1)
    opts = deployment_options(cfg)
    assert "num_replicas" not in opts
    assert opts["autoscaling_config"] == {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 3.0}
    assert opts["ray_actor_options"] == {"num_cpus": 0.0, "num_gpus": 1.0}


def test_deployment_options_defaults():
    opts = deployment_options(PoolConfig(name="p"))
    assert opts["num_replicas"] == 1
    assert opts["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.0}
