"""Budget controller: dual ascent on lambda, state shared through Redis."""
import numpy as np
import pytest

from ponder.common.errors import InvalidArgument
from ponder.router.budget import BudgetController, DualAscent, dual_step

WEAK_CU, STRONG_CU = 10.0, 100.0


def replay_gains(n=3000, seed=0):
    # Per-request accuracy gain of the strong pool over the weak one.
    return np.random.default_rng(seed).beta(2, 5, size=n)


def choose_cost(gain: float, lam: float) -> float:
    return STRONG_CU if gain - lam * STRONG_CU > -lam * WEAK_CU else WEAK_CU


def test_dual_step_rule():
    assert dual_step(0.5, 200, 100, 0.1, 10) == pytest.approx(0.6)
    assert dual_step(0.0, 50, 100, 0.1, 10) == 0.0  # clipped at zero
    assert dual_step(9.99, 1000, 100, 0.1, 10) == 10.0  # clipped at nu_max


def test_in_process_controller_converges_on_replayed_stream():
    target = 40.0
    ctl = DualAscent(target_compute_units=target, step=0.05)
    costs = []
    for g in replay_gains():
        c = choose_cost(g, ctl.lambda_per_cu())
        ctl.observe(c)
        costs.append(c)
    realised = np.mean(costs[1000:]) / target
    assert 0.95 <= realised <= 1.05
    assert ctl.nu > 0


async def test_redis_controller_converges_and_matches_in_process(redis_client):
    target = 40.0
    ctl = BudgetController(redis_client, target, key="t:budget", step=0.05)
    ref = DualAscent(target_compute_units=target, step=0.05)
    costs = []
    for g in replay_gains(2000):
        c = choose_cost(g, ctl.lambda_per_cu())
        await ctl.observe(c)
        ref.observe(c)
        costs.append(c)
    assert ctl.nu == pytest.approx(ref.nu, rel=1e-9)
    assert 0.95 <= np.mean(costs[500:]) / target <= 1.05
    st = await ctl.state()
    assert st["count"] == 2000
    assert st["mean_compute_units"] == pytest.approx(np.mean(costs))


async def test_replicas_and_restarts_share_lambda(redis_client):
    a = BudgetController(redis_client, 50.0, key="t:b2", step=0.1, initial_nu=0.2)
    b = BudgetController(redis_client, 50.0, key="t:b2", step=0.1, initial_nu=0.2)
    await a.observe(150.0)  # nu 0.2 + 0.1 * 2 = 0.4
    await b.observe(150.0)  # continues from a's state: 0.6
    assert b.nu == pytest.approx(0.6)
    restarted = BudgetController(redis_client, 50.0, key="t:b2", step=0.1, initial_nu=0.2)
    assert restarted.nu == pytest.approx(0.2)
    await restarted.refresh()
    assert restarted.nu == pytest.approx(0.6)
    assert restarted.lambda_per_cu() == pytest.approx(0.6 / 50.0)


async def test_refresh_uses_injected_clock(redis_client):
    now = [100.0]
    a = BudgetController(redis_client, 10.0, key="t:b3", step=0.1, refresh_s=5.0, clock=lambda: now[0])
    b = BudgetController(redis_client, 10.0, key="t:b3", step=0.1, refresh_s=5.0, clock=lambda: now[0])
    await b.refresh()
    await a.observe(30.0)  # 0.1 + 0.1 * 2 = 0.3
    now[0] += 1.0
    assert await b.refresh() == pytest.approx(0.1 / 10.0)  # cached
    now[0] += 5.0
    assert await b.refresh() == pytest.approx(0.3 / 10.0)


def test_bad_inputs(redis_client):
    with pytest.raises(InvalidArgument, match="target_compute_units"):
        BudgetController(redis_client, 0.0)
