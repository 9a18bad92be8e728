"""One root exception, a few categories, and the one table from category to gRPC status.

Every error ponder raises on purpose is a ``PonderError``. Each concrete error
(anywhere in the package) subclasses exactly one *category* below; the
category alone decides the status code a client sees, through ``GRPC_STATUS``,
which every server applies at its boundary (``grpcutil.boundary_handler``), and
through ``HTTP_STATUS`` on the OpenAI-compatible HTTP front.
Concrete errors take structured fields and build their own message.

Categories and what they promise a client:

============================  ===================  ==============================================
category                      status               meaning for the caller
============================  ===================  ==============================================
``InvalidArgument``           INVALID_ARGUMENT     fix the named field; retrying cannot help
``NotFound``                  NOT_FOUND            the named object does not exist
``FailedPrecondition``        FAILED_PRECONDITION  the system is not set up for this call
``Unavailable``               UNAVAILABLE          transient; safe to retry (maybe elsewhere)
``ResourceExhausted``         RESOURCE_EXHAUSTED   overloaded or over quota; retry after backoff
``DeadlineExceeded``          DEADLINE_EXCEEDED    the deadline passed before an answer
``Aborted``                   ABORTED              the work started and could not finish
``Internal``                  INTERNAL             a bug or an engine fault; not retryable
============================  ===================  ==============================================

Anything that is not a ``PonderError`` is a bug and maps to INTERNAL.
"""
from __future__ import annotations

import functools
import re

import grpc


class PonderError(Exception):
    """Root of every error ponder raises on purpose."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @classmethod
    def from_message(cls, message: str) -> "PonderError":
        """An instance of ``cls`` carrying only ``message`` (for statuses received from another service)."""
        err = cls.__new__(cls)
        PonderError.__init__(err, message)
        return err

    def __reduce__(self):
        # Subclasses take structured fields, not the message: rebuild from the
        # instance's fields so errors survive pickling (Ray moves them between processes).
        return _restore, (type(self), self.__dict__.copy())


def _restore(cls: type[PonderError], state: dict) -> PonderError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


# ----------------------------------------------------------------- categories
class InvalidArgument(PonderError):
    """A request field is missing, malformed or out of range; ``field`` is its path."""

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class NotFound(PonderError):
    """A named object (context, job, key) does not exist."""


class FailedPrecondition(PonderError):
    """The system is not in a state (or not configured) to serve this call."""


class Unavailable(PonderError):
    """Transient: a service or upstream did not answer. Retrying may succeed."""


class ResourceExhausted(PonderError):
    """Overloaded or over a limit; retry after backing off."""


class DeadlineExceeded(PonderError):
    """The deadline passed in ``where``."""

    def __init__(self, where: str, timeout_s: float):
        self.where, self.timeout_s = where, timeout_s
        super().__init__(f"deadline of {timeout_s:.3f}s exceeded in {where}")


class Aborted(PonderError):
    """Work started and could not be finished (a vote that failed a step)."""


class Internal(PonderError):
    """An engine fault or a broken invariant; not retryable."""


class Unauthenticated(PonderError):
    """The call carries no credentials, or ones that are not valid."""


class PermissionDenied(PonderError):
    """The caller is known but its key lacks the right this call needs."""


GRPC_STATUS: dict[type[PonderError], grpc.StatusCode] = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    Aborted: grpc.StatusCode.ABORTED,
    Internal: grpc.StatusCode.INTERNAL,
    Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    PonderError: grpc.StatusCode.INTERNAL,
}
# The same categories as HTTP statuses, for the OpenAI-compatible front (and any HTTP door).
HTTP_STATUS: dict[type[PonderError], int] = {
    InvalidArgument: 400,
    NotFound: 404,
    FailedPrecondition: 400,
    Unavailable: 503,
    ResourceExhausted: 429,
    DeadlineExceeded: 504,
    Aborted: 409,
    Unauthenticated: 401,
    PermissionDenied: 403,
    Internal: 500,
    PonderError: 500,
}
_CATEGORY_OF_STATUS = {code: cls for cls, code in GRPC_STATUS.items() if cls is not PonderError}

# Statuses a caller may retry (before any output reached its client).
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})


@functools.lru_cache(maxsize=None)
def status_of(cls: type[BaseException]) -> grpc.StatusCode:
    """The status code for an exception class: its nearest category in ``GRPC_STATUS``; INTERNAL otherwise."""
    for base in cls.__mro__:
        code = GRPC_STATUS.get(base)  # type: ignore[arg-type]
        if code is not None:
            return code
    return grpc.StatusCode.INTERNAL


def http_status(err: BaseException) -> int:
    """The HTTP status for any exception: its nearest category in ``HTTP_STATUS``; 500 otherwise."""
    for base in type(err).__mro__:
        code = HTTP_STATUS.get(base)  # type: ignore[arg-type]
        if code is not None:
            return code
    return 500


def grpc_status(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """Map any exception to (code, message); unknown exceptions become INTERNAL."""
    if isinstance(err, PonderError):
        return status_of(type(err)), err.message
    return grpc.StatusCode.INTERNAL, f"internal error: {type(err).__name__}: {err}"


def from_status(code: grpc.StatusCode, message: str) -> PonderError:
    """The category error for a status received from another service (INTERNAL for codes without one)."""
    return _CATEGORY_OF_STATUS.get(code, Internal).from_message(message)


# ----------------------------------------------------------------- shared concrete errors
class ConfigError(FailedPrecondition):
    """A config file or CR failed validation; ``problems`` is [(field path, message)]."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" for path, msg in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


class UnknownPool(InvalidArgument):
    def __init__(self, field: str, pool: str, known: list[str]):
        self.pool = pool
        super().__init__(field, f"unknown pool {pool!r}; configured pools: {', '.join(known)}")


class BudgetInfeasible(InvalidArgument):
    """No plan fits the request's caps: the cap itself is the bad argument."""

    def __init__(self, field: str, detail: str):
        super().__init__(field, detail)


class PoolUnavailable(Unavailable):
    """The pool did not answer (down, not started, or not deployed)."""

    def __init__(self, pool: str, detail: str):
        self.pool = pool
        self.detail = detail
        super().__init__(f"pool {pool!r} unavailable: {detail}")


class PoolOverloaded(ResourceExhausted):
    """A pool replica's queue is full."""

    def __init__(self, pool: str, queued: int, max_queued: int):
        self.pool, self.queued, self.max_queued = pool, queued, max_queued
        super().__init__(f"pool {pool!r} queue is full ({queued}/{max_queued} requests)")


class BackendUnavailable(Unavailable):
    """The model engine behind a pool cannot be reached (server down, process gone, connection refused)."""

    def __init__(self, backend: str, detail: str):
        self.backend = backend
        super().__init__(f"{backend} backend unreachable: {detail}")


class BackendError(Internal):
    """The model engine failed while generating (a fault, not an outage)."""

    def __init__(self, backend: str, detail: str):
        self.backend = backend
        super().__init__(f"{backend} backend failed: {detail}")


class DependencyMissing(FailedPrecondition):
    """An optional package or program is not installed; the message says how to get it."""

    def __init__(self, what: str, how: str):
        self.what, self.how = what, how
        super().__init__(f"{what} is not installed: {how}")


# "field.path[0]: problem", as every ponder service words INVALID_ARGUMENT details.
_FIELD_RE = re.compile(r"^([A-Za-z_][\w.\[\]]*): ")


def split_field(details: str) -> tuple[str | None, str]:
    """("field.path", "problem") from an INVALID_ARGUMENT message; (None, details) without a field."""
    m = _FIELD_RE.match(details)
    return (m.group(1), details[m.end():]) if m else (None, details)
