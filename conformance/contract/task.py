"""The task as a TaskStore hands it out: its status machine, its record, and a page of a listing.

These are plain values with no storage in them, shared by the reference store, the model
and the suite. The wire form (``TaskRecord.to_wire``) is the MCP 2025-11-25 ``Task`` object.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from conformance.contract.record import format_timestamp


class TaskStatus(str, enum.Enum):
    """The five MCP task statuses; the value is the wire spelling."""

    WORKING = "working"
    INPUT_REQUIRED = "input_required"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Terminal statuses never change again (MCP: terminal tasks MUST NOT transition)."""
        return self in TERMINAL_STATUSES


#: Statuses a task can never leave.
TERMINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED})

#: Every task starts here (MCP: tasks MUST begin in working).
INITIAL_STATUS = TaskStatus.WORKING

#: The MCP state machine, plus a non-terminal status "moving" to itself (SPEC TS-8): that is a
#: refresh of the status message, not a transition, and servers need it to report progress.
TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WORKING: frozenset(
        {TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.INPUT_REQUIRED: frozenset(
        {TaskStatus.INPUT_REQUIRED, TaskStatus.WORKING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.COMPLETED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


def can_transition(current: TaskStatus, requested: TaskStatus) -> bool:
    """Whether a task in ``current`` may be set to ``requested`` (SPEC TS-8)."""
    return requested in TRANSITIONS[current]


def coerce_status(value: object) -> TaskStatus | None:
    """The TaskStatus a caller meant (an enum member or its wire spelling), or None if it names none."""
    if isinstance(value, TaskStatus):
        return value
    if isinstance(value, str):
        try:
            return TaskStatus(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class TaskRecord:
    """One task as the store holds it.

    Times are POSIX seconds at millisecond precision (the record stores RFC 3339 with
    milliseconds, so nothing finer could survive a round trip). ``ttl`` and
    ``poll_interval`` are milliseconds; ``ttl`` None means the task never expires.
    ``has_result`` distinguishes "no result" from a result that is JSON ``null``.
    ``version`` is the storage backend's version of the record, raised by every write.
    """

    task_id: str
    owner_id: str
    request_method: str
    status: TaskStatus
    status_message: str | None
    created_at: float
    last_updated_at: float
    ttl: int | None
    poll_interval: int
    expires_at: float | None
    variables: dict[str, Any] = field(default_factory=dict, hash=False)
    has_result: bool = False
    result: Any = field(default=None, hash=False)
    version: int = 0

    @property
    def is_terminal(self) -> bool:
        """Whether the task can no longer change."""
        return self.status.is_terminal

    def is_expired(self, now: float) -> bool:
        """Strictly past its expiry, the same boundary backends use (SPEC BK-15, TS-15)."""
        return self.expires_at is not None and now > self.expires_at

    def to_wire(self) -> dict[str, Any]:
        """The MCP ``Task`` object (``TASK_WIRE_SCHEMA``): what ``tasks/get`` and ``tasks/list`` answer."""
        wire: dict[str, Any] = {
            "taskId": self.task_id,
            "status": self.status.value,
            "createdAt": format_timestamp(self.created_at),
            "lastUpdatedAt": format_timestamp(self.last_updated_at),
            "ttl": self.ttl,
            "pollInterval": self.poll_interval,
        }
        if self.status_message is not None:
            wire["statusMessage"] = self.status_message
        return wire


@dataclass(frozen=True)
class TaskPage:
    """One page of an owner's tasks, newest first; ``next_cursor`` is present exactly while more remain."""

    tasks: tuple[TaskRecord, ...]
    next_cursor: str | None = None
