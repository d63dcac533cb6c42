"""The oracle for TaskStore: a pure, sequential model of the task-store contract (SPEC TS clauses).

Like ``conformance.models.kv``, states are immutable and hashable and ``expect`` is a pure
function of (state, operation), so the same model serves a step-by-step machine and a
linearizability search. Time is injected: a state carries ``now``.

Task ids are chosen by the store, so a model cannot predict them. A ``Create`` operation
therefore carries the id the store *returned* (``assigned_id``, None if the create raised)
as part of the observed operation: the model checks that id is well formed and never
issued before, and then uses it as the new task's id. A cursor is opaque too, so a
``ListTasks`` names the position a cursor token stands for (``IssuedCursor``, built from
the last task of the page that returned the token) or a token the store never issued
(``ForgedCursor``); the model never parses a store's tokens.

The model shares no validation code with the reference store: its value check is written
separately (level by level instead of a stack) so the two can disagree when one is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from conformance.contract.capabilities import ExpiredRecords
from conformance.contract.record import LATEST_TIMESTAMP_MS, canonical_json
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import (
    TaskPage,
    TaskRecord,
    TaskStatus,
    can_transition,
    coerce_status,
)
from conformance.contract.task_errors import TaskError
from conformance.models.expectation import Expectation
from conformance.models.operation import Operation, show

_INT_RANGE = (-(2**63), 2**64 - 1)

#: Shown where the model expected a fresh id and the store returned none (or a used one).
FRESH_ID = "<a fresh id never issued before>"


def _ms(posix_seconds: float) -> int:
    return round(posix_seconds * 1000)


# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Create(Operation):
    owner_id: str
    request_method: str
    ttl: int | None
    #: The id the store returned; None if it raised.
    assigned_id: str | None = None

    keywords = ("ttl",)
    hidden = ("assigned_id",)


@dataclass(frozen=True)
class Get(Operation):
    task_id: str
    owner_id: str


@dataclass(frozen=True)
class UpdateStatus(Operation):
    task_id: str
    owner_id: str
    status: Any
    status_message: str | None = None


@dataclass(frozen=True)
class SetVariables(Operation):
    task_id: str
    owner_id: str
    variables: Any = field(hash=False)


@dataclass(frozen=True)
class SetResult(Operation):
    task_id: str
    owner_id: str
    result: Any = field(hash=False)


@dataclass(frozen=True)
class GetResult(Operation):
    task_id: str
    owner_id: str


@dataclass(frozen=True)
class CompleteWithResult(Operation):
    task_id: str
    owner_id: str
    status: Any
    status_message: str | None
    result: Any = field(hash=False)


@dataclass(frozen=True)
class IssuedCursor:
    """A token the store returned to ``owner_id``, standing for the position after this task."""

    owner_id: str
    created_ms: int
    task_id: str


@dataclass(frozen=True)
class ForgedCursor:
    """A token the store never issued (garbage, tampered, truncated)."""

    token: str


@dataclass(frozen=True)
class ListTasks(Operation):
    owner_id: str
    cursor: IssuedCursor | ForgedCursor | None = None
    limit: int | None = None

    method = "list"
    keywords = ("cursor", "limit")


@dataclass(frozen=True)
class Cancel(Operation):
    task_id: str
    owner_id: str


@dataclass(frozen=True)
class CleanupExpired(Operation):
    pass


TaskOperation = Create | Get | UpdateStatus | SetVariables | SetResult | GetResult | CompleteWithResult | ListTasks | Cancel | CleanupExpired


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class TaskView:
    """A task as compared: times in whole ms, variables and result as canonical JSON bytes."""

    task_id: str
    owner_id: str
    request_method: str
    status: TaskStatus
    status_message: str | None
    created_ms: int
    updated_ms: int
    ttl: int | None
    poll_interval: int
    variables: bytes
    result: bytes | None

    @classmethod
    def of(cls, record: TaskRecord) -> TaskView:
        return cls(
            task_id=record.task_id,
            owner_id=record.owner_id,
            request_method=record.request_method,
            status=record.status,
            status_message=record.status_message,
            created_ms=_ms(record.created_at),
            updated_ms=_ms(record.last_updated_at),
            ttl=record.ttl,
            poll_interval=record.poll_interval,
            variables=canonical_json(record.variables),
            result=canonical_json(record.result) if record.has_result else None,
        )

    def describe(self) -> str:
        result = "no result" if self.result is None else f"result {show(self.result.decode())}"
        return f"task {self.task_id} {self.status.value} vars {show(self.variables.decode())} {result}"


@dataclass(frozen=True)
class PageView:
    tasks: tuple[TaskView, ...]
    has_more: bool

    def describe(self) -> str:
        return f"page [{', '.join(t.task_id[:8] for t in self.tasks)}]{' + more' if self.has_more else ''}"


@dataclass(frozen=True)
class JsonValue:
    """A result read back, as canonical JSON bytes."""

    data: bytes


@dataclass(frozen=True)
class Returned:
    value: object

    def describe(self) -> str:
        value = self.value
        if isinstance(value, (TaskView, PageView)):
            return f"returned {value.describe()}"
        if isinstance(value, JsonValue):
            return f"returned {show(value.data.decode())}"
        return f"returned {value!r}"


@dataclass(frozen=True)
class Raised:
    """An error by class name, with the figures the contract pins (e.g. size limit and actual size)."""

    error: str
    figures: tuple[tuple[str, object], ...] = ()

    def describe(self) -> str:
        return f"raised {self.error}({', '.join(f'{k}={v!r}' for k, v in self.figures)})"


Outcome = Returned | Raised

_FIGURES: dict[str, tuple[str, ...]] = {
    "VariableSizeExceededError": ("limit_bytes", "actual_bytes"),
    "ResourceExhaustedError": ("limit",),
    "NotReadyError": ("status",),
}


def observe(op: TaskOperation, result: object = None, error: BaseException | None = None) -> Outcome:
    """Turn what a store did for ``op`` into a comparable outcome."""
    if error is not None:
        if not isinstance(error, TaskError):
            return Raised(f"{type(error).__name__} (not a TaskError)")
        name = type(error).__name__
        return Raised(name, tuple((f, getattr(error, f, None)) for f in _FIGURES.get(name, ())))
    if isinstance(result, TaskRecord):
        return Returned(TaskView.of(result))
    if isinstance(result, TaskPage):
        return Returned(PageView(tuple(TaskView.of(t) for t in result.tasks), result.next_cursor is not None))
    if isinstance(op, GetResult):
        try:
            return Returned(JsonValue(canonical_json(result)))
        except (TypeError, ValueError, RecursionError):
            return Returned(f"<not JSON: {type(result).__name__}>")
    return Returned(result)


def cursor_after(owner_id: str, page: PageView) -> IssuedCursor:
    """The position a page's next cursor stands for: after its last task."""
    last = page.tasks[-1]
    return IssuedCursor(owner_id, last.created_ms, last.task_id)


# ---------------------------------------------------------------- state


@dataclass(frozen=True)
class ModelTask:
    task_id: str
    owner_id: str
    request_method: str
    status: TaskStatus
    status_message: str | None
    created_ms: int
    updated_ms: int
    ttl: int | None
    variables: bytes = b"{}"
    result: bytes | None = None

    def expired(self, now: float) -> bool:
        return self.ttl is not None and now > (self.created_ms + self.ttl) / 1000


@dataclass(frozen=True)
class TaskState:
    """The tasks held, every id ever issued, and the time; treat as immutable."""

    tasks: Mapping[str, ModelTask] = field(default_factory=dict)
    issued: frozenset[str] = frozenset()
    now: float = 0.0

    def __hash__(self) -> int:
        return hash((frozenset(self.tasks.items()), self.issued, self.now))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TaskState)
            and self.now == other.now
            and self.issued == other.issued
            and dict(self.tasks) == dict(other.tasks)
        )

    def at(self, now: float) -> TaskState:
        return TaskState(self.tasks, self.issued, now)

    def with_task(self, task: ModelTask) -> TaskState:
        return TaskState({**self.tasks, task.task_id: task}, self.issued | {task.task_id}, self.now)

    def without(self, *task_ids: str) -> TaskState:
        gone = set(task_ids)
        return TaskState({k: v for k, v in self.tasks.items() if k not in gone}, self.issued, self.now)


class _Refusal(Exception):
    """Internal: a check failed; carries the expectation to return."""

    def __init__(self, clause: str, error: str, figures: tuple[tuple[str, object], ...] = ()) -> None:
        super().__init__(error)
        self.clause = clause
        self.outcome = Raised(error, figures)


# ---------------------------------------------------------------- the model


class TaskModel:
    """The TaskStore contract as a pure function from (state, operation) to expectation."""

    def __init__(
        self,
        config: StoreConfig | None = None,
        security: SecurityConfig | None = None,
        expired_records: ExpiredRecords = ExpiredRecords.KEPT_UNTIL_CLEANUP,
    ) -> None:
        self.config = config if config is not None else StoreConfig()
        self.security = security if security is not None else SecurityConfig()
        self.expired_records = expired_records

    def initial(self, now: float = 0.0) -> TaskState:
        return TaskState({}, frozenset(), now)

    # ------------------------------------------------------------ checks, in the store's order

    def _owner(self, owner_id: object) -> None:
        ok = False
        if isinstance(owner_id, str):
            try:
                ok = len(owner_id.encode("utf-8")) <= self.security.max_owner_id_bytes
            except UnicodeEncodeError:
                ok = False
        if not ok or (owner_id in self.security.anonymous_owner_ids and not self.security.allow_anonymous):
            raise _Refusal("TS-3", "AnonymousAccessError")

    def _string_ok(self, text: str) -> bool:
        try:
            return len(text.encode("utf-8")) <= self.config.max_string_bytes
        except UnicodeEncodeError:
            return False

    def _text(self, text: object, optional: bool) -> None:
        if text is None and optional:
            return
        if not isinstance(text, str) or not self._string_ok(text):
            raise _Refusal("TS-11", "VariableValidationError")

    def _storable(self, value: Any) -> bool:
        """Level by level: items on level d sit inside d containers; a container there has depth d + 1."""
        level, depth = [value], 0
        while level:
            below: list[Any] = []
            for item in level:
                if item is None or isinstance(item, bool):
                    continue
                if isinstance(item, int):
                    if not _INT_RANGE[0] <= item <= _INT_RANGE[1]:
                        return False
                elif isinstance(item, float):
                    if not math.isfinite(item):
                        return False
                elif isinstance(item, str):
                    if not self._string_ok(item):
                        return False
                elif isinstance(item, (list, dict)):
                    if depth + 1 > self.config.max_depth:
                        return False
                    if isinstance(item, dict):
                        if not all(isinstance(k, str) and self._string_ok(k) for k in item):
                            return False
                        below.extend(item.values())
                    else:
                        below.extend(item)
                else:
                    return False
            level, depth = below, depth + 1
        return True

    def _result(self, result: Any) -> bytes:
        if not self._storable(result):
            raise _Refusal("TS-11", "VariableValidationError")
        data = canonical_json(result)
        limit = self.config.max_result_bytes
        if len(data) > limit:
            raise _Refusal("TS-12", "VariableSizeExceededError", (("limit_bytes", limit), ("actual_bytes", len(data))))
        return data

    def _status(self, status: object) -> TaskStatus:
        target = coerce_status(status)
        if target is None:
            raise _Refusal("TS-8", "InvalidTransitionError")
        return target

    def _lookup(self, state: TaskState, task_id: object, owner_id: str) -> ModelTask:
        task = state.tasks.get(task_id) if isinstance(task_id, str) else None
        if task is None or task.owner_id != owner_id:
            raise _Refusal("TS-7", "TaskNotFoundError")
        if task.expired(state.now):
            hidden = self.expired_records is ExpiredRecords.HIDDEN
            raise _Refusal("TS-15", "TaskNotFoundError" if hidden else "TaskExpiredError")
        return task

    def _live(self, state: TaskState, owner_id: str) -> list[ModelTask]:
        return [t for t in state.tasks.values() if t.owner_id == owner_id and not t.expired(state.now)]

    # ------------------------------------------------------------ expectations

    def expect(self, state: TaskState, op: TaskOperation) -> Expectation:
        try:
            return self._expect(state, op)
        except _Refusal as refusal:
            return Expectation(refusal.clause, (refusal.outcome,), state)

    def _done(self, clause: str, state: TaskState, task: ModelTask) -> Expectation:
        return Expectation(clause, (Returned(self.view(task)),), state.with_task(task))

    def view(self, task: ModelTask) -> TaskView:
        return TaskView(
            task_id=task.task_id,
            owner_id=task.owner_id,
            request_method=task.request_method,
            status=task.status,
            status_message=task.status_message,
            created_ms=task.created_ms,
            updated_ms=task.updated_ms,
            ttl=task.ttl,
            poll_interval=self.config.poll_interval_ms,
            variables=task.variables,
            result=task.result,
        )

    @staticmethod
    def inert(op: TaskOperation, outcome: Outcome) -> bool:
        """Whether this outcome of ``op`` leaves unchanged every state it is allowed from.

        Reads and refusals never write. A write that changes nothing in one state (a
        set_variables deleting a name the task lacks, on a clock that has not moved) changes
        the task in another, so no write is inert: the linearizability checker may place an
        inert call first among its rivals, and must not do so for any other.
        """
        return isinstance(op, (Get, GetResult, ListTasks)) or isinstance(outcome, Raised)

    def _expect(self, state: TaskState, op: TaskOperation) -> Expectation:
        now_ms = _ms(state.now)
        if isinstance(op, CleanupExpired):
            expired = [k for k, t in state.tasks.items() if t.expired(state.now)]
            hidden = self.expired_records is ExpiredRecords.HIDDEN
            counts = range(len(expired) + 1) if hidden else [len(expired)]
            return Expectation("TS-22", tuple(Returned(n) for n in counts), state.without(*expired))
        self._owner(op.owner_id)
        if isinstance(op, Create):
            return self._create(state, op, now_ms)
        if isinstance(op, ListTasks):
            return self._list(state, op)
        if isinstance(op, Get):
            return Expectation("TS-7", (Returned(self.view(self._lookup(state, op.task_id, op.owner_id))),), state)
        if isinstance(op, GetResult):
            task = self._lookup(state, op.task_id, op.owner_id)
            not_ready = Raised("NotReadyError", (("status", task.status),))
            if task.result is None:
                return Expectation("TS-13", (not_ready,), state)
            if not task.status.is_terminal:
                # A staged result of a live task: the protocol layer asks only once the task is terminal,
                # so answering it or "not ready" are both the contract (TS-13).
                return Expectation("TS-13", (Returned(JsonValue(task.result)), not_ready), state)
            return Expectation("TS-13", (Returned(JsonValue(task.result)),), state)
        if isinstance(op, UpdateStatus):
            target = self._status(op.status)
            self._text(op.status_message, optional=True)
            task = self._lookup(state, op.task_id, op.owner_id)
            if not can_transition(task.status, target):
                raise _Refusal("TS-8", "InvalidTransitionError")
            changed = replace(task, status=target, status_message=op.status_message, updated_ms=now_ms)
            if target is task.status:
                # Setting a live status to itself is no MCP transition: a store may refresh the message or refuse (TS-8).
                refused = Raised("InvalidTransitionError")
                after = state.with_task(changed)
                return Expectation("TS-8", (Returned(self.view(changed)), refused),
                                   lambda outcome: state if isinstance(outcome, Raised) else after)
            return self._done("TS-8", state, changed)
        if isinstance(op, Cancel):
            task = self._lookup(state, op.task_id, op.owner_id)
            if task.status.is_terminal:
                raise _Refusal("TS-9", "InvalidTransitionError")
            return self._done("TS-9", state, replace(task, status=TaskStatus.CANCELLED, status_message=None, updated_ms=now_ms))
        if isinstance(op, SetVariables):
            return self._set_variables(state, op, now_ms)
        if isinstance(op, SetResult):
            data = self._result(op.result)
            task = self._lookup(state, op.task_id, op.owner_id)
            if task.status.is_terminal:
                raise _Refusal("TS-13", "InvalidTransitionError")
            return self._done("TS-13", state, replace(task, result=data, updated_ms=now_ms))
        if isinstance(op, CompleteWithResult):
            target = self._status(op.status)
            if not target.is_terminal:
                raise _Refusal("TS-14", "InvalidTransitionError")
            self._text(op.status_message, optional=True)
            data = self._result(op.result)
            task = self._lookup(state, op.task_id, op.owner_id)
            if task.status.is_terminal:
                raise _Refusal("TS-14", "InvalidTransitionError")
            done = replace(task, status=target, status_message=op.status_message, result=data, updated_ms=now_ms)
            return self._done("TS-14", state, done)
        raise TypeError(f"not a task operation: {op!r}")

    def _create(self, state: TaskState, op: Create, now_ms: int) -> Expectation:
        self._text(op.request_method, optional=False)
        if op.ttl is None:
            ttl = self.config.default_ttl_ms
        else:
            maximum = self.config.max_ttl_ms
            if (
                not isinstance(op.ttl, int)
                or isinstance(op.ttl, bool)
                or op.ttl < 1
                or (maximum is not None and op.ttl > maximum)
            ):
                raise _Refusal("TS-5", "TtlExceededError")
            if now_ms + op.ttl > LATEST_TIMESTAMP_MS:
                raise _Refusal("TS-5", "TtlExceededError")
            ttl = op.ttl
        limit = self.config.max_tasks_per_owner
        if len(self._live(state, op.owner_id)) >= limit:
            raise _Refusal("TS-6", "ResourceExhaustedError", (("limit", limit),))
        fresh = isinstance(op.assigned_id, str) and op.assigned_id != "" and op.assigned_id not in state.issued
        task = ModelTask(
            task_id=op.assigned_id if fresh else FRESH_ID,  # type: ignore[arg-type]
            owner_id=op.owner_id,
            request_method=op.request_method,
            status=TaskStatus.WORKING,
            status_message=None,
            created_ms=now_ms,
            updated_ms=now_ms,
            ttl=ttl,
        )
        if not fresh:
            return Expectation("TS-4", (Returned(self.view(task)),), state)
        return self._done("TS-4", state, task)

    def _set_variables(self, state: TaskState, op: SetVariables, now_ms: int) -> Expectation:
        incoming = op.variables
        if not isinstance(incoming, dict) or not all(
            isinstance(name, str) and self._string_ok(name) and self._storable(value) for name, value in incoming.items()
        ):
            raise _Refusal("TS-11", "VariableValidationError")
        task = self._lookup(state, op.task_id, op.owner_id)
        if task.status.is_terminal:
            raise _Refusal("TS-10", "InvalidTransitionError")
        merged = json.loads(task.variables)
        for name, value in incoming.items():
            if value is None:
                merged.pop(name, None)
            else:
                merged[name] = value
        data = canonical_json(merged)
        limit = self.config.max_variable_bytes
        if len(data) > limit:
            raise _Refusal("TS-12", "VariableSizeExceededError", (("limit_bytes", limit), ("actual_bytes", len(data))))
        return self._done("TS-10", state, replace(task, variables=data, updated_ms=now_ms))

    def _list(self, state: TaskState, op: ListTasks) -> Expectation:
        size = self.config.default_page_size if op.limit is None else op.limit
        tasks = sorted(self._live(state, op.owner_id), key=lambda t: (-t.created_ms, t.task_id))
        cursor = op.cursor
        if isinstance(cursor, ForgedCursor) or (isinstance(cursor, IssuedCursor) and cursor.owner_id != op.owner_id):
            raise _Refusal("TS-17", "InvalidCursorError")
        if isinstance(cursor, IssuedCursor):
            position = (-cursor.created_ms, cursor.task_id)
            tasks = [t for t in tasks if (-t.created_ms, t.task_id) > position]
        page = PageView(tuple(self.view(t) for t in tasks[:size]), len(tasks) > size)
        return Expectation("TS-16", (Returned(page),), state)
