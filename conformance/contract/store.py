"""The TaskStore contract: the domain API above a StorageBackend, and the limits it enforces.

The store owns every rule (owners, states, limits, expiry); the backend below it is a dumb
versioned key-value store. Defaults follow the seeds (SPEC TS clauses): limits are design
signals that tasks hold lightweight coordination state, not bulk data.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from conformance.contract.task import TaskPage, TaskRecord, TaskStatus

#: The ten coroutine methods every task store implements, in the order the SPEC lists them (TS-1).
STORE_METHODS: tuple[str, ...] = (
    "create",
    "get",
    "update_status",
    "set_variables",
    "set_result",
    "get_result",
    "complete_with_result",
    "list",
    "cancel",
    "cleanup_expired",
)


def _positive(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class StoreConfig:
    """The limits a task store enforces; every one is checked before anything is written."""

    #: Canonical JSON of the merged variables map, in bytes; a map of exactly this size is accepted.
    max_variable_bytes: int = 1_048_576
    #: Canonical JSON of a result, in bytes (BK-14 sizes records for variables plus a result of this size).
    max_result_bytes: int = 1_048_576
    #: TTL given to a task created without one, in ms; None: such tasks never expire.
    default_ttl_ms: int | None = 3_600_000
    #: Largest TTL a caller may request, in ms; larger requests are refused, never clamped. None: no maximum.
    max_ttl_ms: int | None = 86_400_000
    #: Deepest nesting of containers in one value (a scalar has depth 0, ``{}`` and ``[]`` depth 1).
    max_depth: int = 10
    #: Longest string (values and object keys alike), in UTF-8 bytes.
    max_string_bytes: int = 65_536
    #: Live (unexpired) tasks one owner may hold, terminal ones included.
    max_tasks_per_owner: int = 100
    #: Tasks per page when ``list`` is given no limit.
    default_page_size: int = 50
    #: The pollInterval reported on every task, in ms.
    poll_interval_ms: int = 500

    def __post_init__(self) -> None:
        for name in (
            "max_variable_bytes",
            "max_result_bytes",
            "max_depth",
            "max_string_bytes",
            "max_tasks_per_owner",
            "default_page_size",
            "poll_interval_ms",
        ):
            _positive(name, getattr(self, name))
        for name in ("default_ttl_ms", "max_ttl_ms"):
            if getattr(self, name) is not None:
                _positive(name, getattr(self, name))
        if self.max_ttl_ms is not None and (self.default_ttl_ms is None or self.default_ttl_ms > self.max_ttl_ms):
            raise ValueError("default_ttl_ms must be set and at most max_ttl_ms when max_ttl_ms is set")


#: Bytes a stored task record may need beyond its variables, result and two strings: ids,
#: timestamps, numbers and field names (about 1 KB) and the owner id (up to SecurityConfig's
#: 1,024 bytes, 6 KB in JSON), with room to spare.
RECORD_OVERHEAD_BYTES = 16 * 1024
#: Strings a record holds whole, each up to ``max_string_bytes``: the request method and the
#: status message; in JSON each may grow six-fold (a control character is ``\\u00XX``).
_RECORD_STRINGS, _JSON_GROWTH = 2, 6


def worst_case_record_bytes(config: StoreConfig) -> int:
    """The largest record a task store with these limits (and the default owner limit) can ask its backend to keep."""
    return (config.max_variable_bytes + config.max_result_bytes
            + _RECORD_STRINGS * _JSON_GROWTH * config.max_string_bytes + RECORD_OVERHEAD_BYTES)


def fit_to_record_limit(config: StoreConfig, record_limit: int) -> StoreConfig:
    """``config`` with its size limits lowered, if need be, so every task it accepts fits ``record_limit`` (BK-14).

    Why: the seeds' defaults need records of up to 2.9 MB; on an engine that stores less (a
    DynamoDB item holds 400 KB) a store must refuse oversized values as a validation error
    up front, not fail with StorageFullError after the caller's work is done.
    """
    if worst_case_record_bytes(config) <= record_limit:
        return config
    strings = max(1, min(config.max_string_bytes, record_limit // 64))
    values = (record_limit - RECORD_OVERHEAD_BYTES - _RECORD_STRINGS * _JSON_GROWTH * strings) // 2
    if values < 1:
        raise ValueError(f"a record limit of {record_limit} bytes leaves no room for task values")
    return replace(config, max_string_bytes=strings, max_variable_bytes=min(config.max_variable_bytes, values),
                   max_result_bytes=min(config.max_result_bytes, values))


@dataclass(frozen=True)
class SecurityConfig:
    """Who may own tasks. Anonymous owners are refused by default (seed: v1.0 security model)."""

    allow_anonymous: bool = False
    #: Owner ids that mean "no authenticated identity".
    anonymous_owner_ids: frozenset[str] = field(default_factory=lambda: frozenset({"", "local"}))
    #: Longest usable owner id in UTF-8 bytes. Owners are hashed into keys, so this bounds only
    #: the record; 1,024 holds any OAuth subject, e-mail address or URL-shaped identity.
    max_owner_id_bytes: int = 1024

    def refuses(self, owner_id: object) -> bool:
        """Whether ``owner_id`` may not own tasks (SPEC TS-3).

        An owner that is not a string of Unicode scalar values cannot be recorded in a
        JSON record at all, and an oversized one would bloat every record, so both are
        refused whatever ``allow_anonymous`` says: neither is a usable identity.
        """
        if not isinstance(owner_id, str):
            return True
        try:
            size = len(owner_id.encode("utf-8"))
        except UnicodeEncodeError:
            return True
        if size > self.max_owner_id_bytes:
            return True
        return owner_id in self.anonymous_owner_ids and not self.allow_anonymous


@runtime_checkable
class TaskStore(Protocol):
    """What a task store offers. Every method is a coroutine; every failure is a ``TaskError``.

    ``owner_id`` comes from the authorisation context, never from the client: a task is
    visible only to the owner that created it, and to anyone else it does not exist.
    """

    config: StoreConfig

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        """Create a task in ``working`` with a fresh id; ``ttl`` in ms, None for the default."""
        ...

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """The task, if this owner holds it and it has not expired."""
        ...

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None
    ) -> TaskRecord:
        """Move the task to ``status``; the message replaces the previous one (None clears it)."""
        ...

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        """Merge ``variables`` into the task's; a ``None`` value deletes that variable."""
        ...

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        """Store the result of a task that is not yet terminal (``None`` is a real result)."""
        ...

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        """The stored result; NotReadyError if the task holds none."""
        ...

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None, result: Any
    ) -> TaskRecord:
        """Move the task to a terminal status and store its result in one atomic write."""
        ...

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        """One page of the owner's live tasks, newest first (a limit below 1 is a ValueError: a server bug)."""
        ...

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        """Cancel a task that is not terminal."""
        ...

    async def cleanup_expired(self) -> int:
        """Remove every expired task; return how many were removed."""
        ...
