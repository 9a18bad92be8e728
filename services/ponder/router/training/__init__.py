"""Training and evaluation of difficulty routers from outcome tables."""
from ponder.router.training.metrics import (
    Curve, MetricUndefined, apgr, cpt, expected_calibration_error, oracle_curve, pgr, random_curve, router_curve,
)
from ponder.router.training.outcomes import OutcomeError, OutcomeTable, load_outcomes

__all__ = [
    "Curve", "MetricUndefined", "OutcomeError", "OutcomeTable", "apgr", "cpt", "expected_calibration_error",
    "load_outcomes", "oracle_curve", "pgr", "random_curve", "router_curve",
]
