"""OpenTelemetry tracing with W3C trace context carried in gRPC metadata.

The exporter follows the standard OTel environment variables:
``OTEL_TRACES_EXPORTER`` (``otlp`` | ``console`` | ``none``), ``OTEL_EXPORTER_OTLP_ENDPOINT``,
``OTEL_SERVICE_NAME``. With neither ``OTEL_TRACES_EXPORTER`` nor an OTLP endpoint
set, nothing is exported and spans are not recorded: a request that arrives
without a sampled trace context gets a non-recording span, which still carries
a trace id to the next hop (so ids flow) but costs none of the attribute and
span bookkeeping on the request path. A caller's sampled context is still
followed (its span recorded, so the sampled flag it passes on stays set).
Nothing here is a global: each server gets a ``Tracing`` object passed in.
"""
from __future__ import annotations

import os
from typing import Iterable, Sequence

from opentelemetry import context as otel_context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

_PROPAGATOR = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")


class Tracing:
    """A tracer provider plus helpers to move context in and out of gRPC metadata."""

    def __init__(self, service_name: str, exporter: SpanExporter | None = None, simple: bool = False):
        resource = Resource.create({"service.name": service_name})
        if exporter is None:  # nothing would read the spans: record only those a caller sampled
            self.provider = TracerProvider(resource=resource, sampler=ParentBased(root=ALWAYS_OFF))
        else:
            self.provider = TracerProvider(resource=resource)
        if exporter is not None:
            proc = SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
            self.provider.add_span_processor(proc)
        self.tracer: Tracer = self.provider.get_tracer("ponder")

    @classmethod
    def from_env(cls, default_service: str) -> "Tracing":
        name = os.environ.get("OTEL_SERVICE_NAME", default_service)
        choice = os.environ.get("OTEL_TRACES_EXPORTER")
        if choice is None:
            choice = "otlp" if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") else "none"
        choice = choice.split(",")[0].strip().lower()
        exporter: SpanExporter | None = None
        if choice == "otlp":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif choice == "console":
            exporter = ConsoleSpanExporter()
        elif choice != "none":
            raise ValueError(f"OTEL_TRACES_EXPORTER={choice!r} is not supported (otlp, console, none)")
        return cls(name, exporter)

    def shutdown(self) -> None:
        self.provider.shutdown()


def inject_metadata(extra: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """gRPC metadata carrying the current span's W3C trace context."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return [*extra, *carrier.items()]


def trace_headers() -> dict[str, str]:
    """W3C headers (``traceparent``, ``tracestate``) of the current span, for an HTTP call or an engine that
    continues the trace; {} outside a recording span."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


def current_traceparent() -> str:
    """The current span's W3C ``traceparent`` ("" outside a recording span): stored with work queued for later,
    so the worker that runs it continues the caller's trace."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent", "")


def context_from_traceparent(traceparent: str) -> otel_context.Context:
    """Context whose parent is the span ``traceparent`` names (an empty context for "" or a malformed value)."""
    return _PROPAGATOR.extract({"traceparent": traceparent} if traceparent else {})


def server_interceptor(tracing: Tracing):
    """OpenTelemetry's own grpc.aio server interceptor (one span per RPC, W3C context from the metadata),
    on this ``Tracing``'s provider."""
    from opentelemetry.instrumentation.grpc import aio_server_interceptor

    return aio_server_interceptor(tracer_provider=tracing.provider)


def extract_metadata(metadata: Iterable[tuple[str, str | bytes]] | None) -> otel_context.Context:
    """Context of the caller's span, from incoming gRPC metadata (empty when absent)."""
    carrier = {}
    for k, v in metadata or ():
        if k in TRACE_HEADERS:
            carrier[k] = v.decode() if isinstance(v, bytes) else v
    return _PROPAGATOR.extract(carrier)
