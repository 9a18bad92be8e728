"""Trace context carried through stored work: a job records its caller's traceparent, the worker continues it."""
from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ponder.common.telemetry import Tracing, context_from_traceparent, current_traceparent, trace_headers


def test_traceparent_round_trip_continues_the_trace():
    spans = InMemorySpanExporter()
    tracing = Tracing("test", spans, simple=True)
    assert current_traceparent() == "" and trace_headers() == {}
    with tracing.tracer.start_as_current_span("request") as req:
        tp = current_traceparent()
        assert trace_headers()["traceparent"] == tp
    version, trace_id, span_id, flags = tp.split("-")
    assert version == "00" and int(flags, 16) & 1 and int(trace_id, 16) == req.get_span_context().trace_id  # sampled
    # Later, elsewhere (a worker with no span of its own): the job's span is the request's child.
    with tracing.tracer.start_as_current_span("job", context=context_from_traceparent(tp)):
        pass
    job = next(s for s in spans.get_finished_spans() if s.name == "job")
    assert job.context.trace_id == req.get_span_context().trace_id and job.parent.span_id == int(span_id, 16)


def test_missing_or_malformed_traceparent_starts_a_new_trace():
    spans = InMemorySpanExporter()
    tracing = Tracing("test", spans, simple=True)
    for bad in ("", "00-nothex-0000000000000001-01", "garbage"):
        with tracing.tracer.start_as_current_span("job", context=context_from_traceparent(bad)):
            pass
    assert all(s.parent is None for s in spans.get_finished_spans())
    assert len({s.context.trace_id for s in spans.get_finished_spans()}) == 3
