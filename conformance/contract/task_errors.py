"""The errors a TaskStore raises: one class per failure, each with the JSON-RPC code MCP implies.

A protocol layer answers a failed ``tasks/*`` request with ``error.code`` and never has to
parse a message. Two codes are used, as the MCP tasks specification (2025-11-25) implies:
``-32602`` (invalid params) for everything the requester asked wrongly and that a retry
cannot fix, ``-32603`` (internal error) for failures of the server side (contention,
capacity, the storage engine), which a caller may retry.

Messages never name an owner and never differ between "no such task" and "another
owner's task" (SPEC TS-2, TS-7): the only identifiers they quote are the ones the caller
supplied, shortened so a hostile id cannot flood logs.
"""

from __future__ import annotations

from typing import ClassVar

#: JSON-RPC 2.0 "Invalid params": the MCP code for unknown tasks, bad cursors, bad transitions.
INVALID_PARAMS = -32602
#: JSON-RPC 2.0 "Internal error": the MCP code for failures on the receiver's side.
INTERNAL_ERROR = -32603


def shown(value: object, limit: int = 80) -> str:
    """A caller-supplied value quoted for a message, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class TaskError(Exception):
    """Root of every error a TaskStore raises; ``code`` is the JSON-RPC error code to answer with."""

    code: ClassVar[int] = INTERNAL_ERROR


class TaskNotFoundError(TaskError):
    """No task with this id is visible to this owner: missing, another owner's, or gone with its TTL."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, task_id: object, message: str | None = None) -> None:
        super().__init__(message or f"task {shown(task_id)} not found")
        self.task_id = task_id


class TaskExpiredError(TaskNotFoundError):
    """The task's TTL has passed (the store can still see its record).

    A subclass of TaskNotFoundError on purpose: once cleanup or a backend's native expiry
    removes the record the same task is simply not found, so callers catch
    TaskNotFoundError and get one behaviour whatever the backend does (SPEC TS-15).
    """

    def __init__(self, task_id: object) -> None:
        super().__init__(task_id, f"task {shown(task_id)} has expired")


class InvalidTransitionError(TaskError):
    """The requested status change (or change of a terminal task) breaks the MCP state machine."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, message: str, current: object = None, requested: object = None) -> None:
        super().__init__(message)
        self.current = current
        self.requested = requested


class NotReadyError(TaskError):
    """The task holds no result (yet, or ever); ``status`` tells the caller which."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, task_id: object, status: object) -> None:
        state = getattr(status, "value", status)
        super().__init__(f"task {shown(task_id)} has no result (status {state})")
        self.task_id = task_id
        self.status = status


class ConcurrentModificationError(TaskError):
    """Another writer changed the task between this operation's read and its write; nothing was written.

    ``expected_version`` is the version this operation read, ``actual_version`` the one the
    backend holds (None where no single version is involved: a create that lost a quota race).
    No automatic retry: the caller decides (seed 000).
    """

    code: ClassVar[int] = INTERNAL_ERROR

    def __init__(
        self, task_id: object, expected_version: int | None, actual_version: int | None, message: str | None = None
    ) -> None:
        super().__init__(
            message
            or f"task {shown(task_id)} was modified concurrently "
            f"(expected version {expected_version}, actual {actual_version})"
        )
        self.task_id = task_id
        self.expected_version = expected_version
        self.actual_version = actual_version


class VariableSizeExceededError(TaskError):
    """The canonical JSON of the merged variables (or of a result) is larger than the limit."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, what: str, limit_bytes: int, actual_bytes: int) -> None:
        super().__init__(f"{what} take {actual_bytes} bytes of canonical JSON; the limit is {limit_bytes}")
        self.what = what
        self.limit_bytes = limit_bytes
        self.actual_bytes = actual_bytes


class VariableValidationError(TaskError):
    """A value is not storable: too deep, a string too long, or not plain JSON.

    ``path`` locates the offending value (keys and indexes from the value's root),
    truncated; ``reason`` is a short machine-readable word: ``depth``, ``string``, ``type``,
    ``number`` or ``unicode``.
    """

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, what: str, reason: str, detail: str, path: tuple[object, ...] = ()) -> None:
        where = "".join(f"[{shown(p, 24)}]" for p in path[:8]) + ("..." if len(path) > 8 else "")
        super().__init__(f"{what}{where}: {detail}")
        self.what = what
        self.reason = reason
        self.path = path


class TtlExceededError(TaskError):
    """The requested TTL is outside 1..max_ttl_ms (or not an integer); it is refused, never clamped."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self, requested_ms: object, max_ms: int | None) -> None:
        bound = "unbounded" if max_ms is None else f"at most {max_ms} ms"
        super().__init__(f"ttl {shown(requested_ms)} refused: it must be a positive integer, {bound}")
        self.requested_ms = requested_ms
        self.max_ms = max_ms


class AnonymousAccessError(TaskError):
    """The request carries no usable identity and the store does not allow anonymous tasks.

    Code -32602, not -32603: the server is working as configured and retrying can never
    succeed; the requester must authenticate (SPEC TS-3).
    """

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self) -> None:
        super().__init__("task storage requires an authenticated owner; anonymous access is disabled")


class ResourceExhaustedError(TaskError):
    """The owner already holds the maximum number of live tasks (counting creates in flight)."""

    code: ClassVar[int] = INTERNAL_ERROR

    def __init__(self, limit: int) -> None:
        super().__init__(f"task limit reached: at most {limit} live tasks per owner")
        self.limit = limit


class StorageFullError(TaskError):
    """The storage engine refused the write for lack of space or record size; the cause is chained."""

    code: ClassVar[int] = INTERNAL_ERROR


class InvalidCursorError(TaskError):
    """The cursor was not issued by this store for this owner; listing never restarts silently."""

    code: ClassVar[int] = INVALID_PARAMS

    def __init__(self) -> None:
        super().__init__("invalid cursor")


class TaskStoreError(TaskError):
    """The storage backend failed or returned a record the store cannot read; the cause is chained."""

    code: ClassVar[int] = INTERNAL_ERROR


#: Every concrete error, for exhaustive checks (codes, message hygiene).
TASK_ERRORS: tuple[type[TaskError], ...] = (
    TaskNotFoundError,
    TaskExpiredError,
    InvalidTransitionError,
    NotReadyError,
    ConcurrentModificationError,
    VariableSizeExceededError,
    VariableValidationError,
    TtlExceededError,
    AnonymousAccessError,
    ResourceExhaustedError,
    StorageFullError,
    InvalidCursorError,
    TaskStoreError,
)
