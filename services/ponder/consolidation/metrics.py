"""Prometheus metrics of one consolidator process (served on ``$PONDER_METRICS_PORT``)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, start_http_server


class ConsolidatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Counter("ponder_consolidator_jobs_total", "Jobs that reached an end state.", ["state"],
                            registry=self.registry)
        self.steps = Counter("ponder_consolidator_steps_total", "Strategy steps run.", ["strategy"], registry=self.registry)
        self.retries = Counter("ponder_consolidator_retries_total", "Failed attempts retried later.", ["pool"],
                               registry=self.registry)
        self.compute_units = Counter("ponder_consolidator_compute_units_total", "Compute units spent consolidating.",
                                     ["strategy"], registry=self.registry)
        self.tokens = Counter("ponder_consolidator_model_tokens_total", "Model tokens read (in) and written (out).",
                              ["strategy", "direction"], registry=self.registry)

    def step(self, strategy: str, tokens_in: int, tokens_out: int, cu: float) -> None:
        self.steps.labels(strategy).inc()
        self.compute_units.labels(strategy).inc(cu)
        self.tokens.labels(strategy, "in").inc(tokens_in)
        self.tokens.labels(strategy, "out").inc(tokens_out)

    def serve(self, port: int, host: str = "0.0.0.0"):
        return start_http_server(port, addr=host, registry=self.registry)
