"""One root exception; each subclass carries structured fields and builds its message.

``GRPC_STATUS`` is the one table that maps domain errors to gRPC status codes;
servicers never pick codes themselves.
"""
from __future__ import annotations

import grpc


class PonderError(Exception):
    """Root of every error ponder raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __reduce__(self):
        # Subclasses take structured fields, not the message: rebuild from the
        # instance's fields so errors survive pickling (Ray moves them between processes).
        return _restore, (type(self), self.__dict__.copy())


def _restore(cls: type[PonderError], state: dict) -> PonderError:
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message", ""))
    err.__dict__.update(state)
    return err


class ConfigError(PonderError):
    """A config file or CR failed validation; ``problems`` is [(field path, message)]."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {path}: {msg}" for path, msg in problems)
        super().__init__(f"invalid config {source}:\n{lines}")


class InvalidArgument(PonderError):
    """A request field is missing, malformed or out of range."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class UnknownPool(InvalidArgument):
    def __init__(self, field: str, pool: str, known: list[str]):
        self.pool = pool
        super().__init__(field, f"unknown pool {pool!r}; configured pools: {', '.join(known)}")


class PoolUnavailable(PonderError):
    """The pool did not answer (down, not started, or refusing load)."""

    code = grpc.StatusCode.UNAVAILABLE

    def __init__(self, pool: str, detail: str):
        self.pool = pool
        self.detail = detail
        super().__init__(f"pool {pool!r} unavailable: {detail}")


class PoolOverloaded(PonderError):
    """A pool replica's queue is full."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, pool: str, queued: int, max_queued: int):
        self.pool, self.queued, self.max_queued = pool, queued, max_queued
        super().__init__(f"pool {pool!r} queue is full ({queued}/{max_queued} requests)")


class DeadlineExceeded(PonderError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED

    def __init__(self, where: str, timeout_s: float):
        self.where, self.timeout_s = where, timeout_s
        super().__init__(f"deadline of {timeout_s:.3f}s exceeded in {where}")


class BudgetInfeasible(PonderError):
    """No plan fits the request's caps: the budget itself is the bad argument."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, detail: str):
        self.field = field
        super().__init__(f"{field}: {detail}")


class BackendError(PonderError):
    """The model engine failed while generating."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, backend: str, detail: str):
        self.backend = backend
        super().__init__(f"{backend} backend failed: {detail}")


class DependencyMissing(PonderError):
    """An optional package or program is not installed; the message says how to get it."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, what: str, how: str):
        self.what, self.how = what, how
        super().__init__(f"{what} is not installed: {how}")


def grpc_status(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """Map any exception to (code, message); unknown exceptions become INTERNAL."""
    if isinstance(err, PonderError):
        return err.code, err.message
    return grpc.StatusCode.INTERNAL, f"internal error: {type(err).__name__}: {err}"
