"""LockedDictStore: a complete task store over a plain dict guarded by one lock.

Written from SPEC.md (TaskStore TS-1..TS-23, Security SEC-3..SEC-9, CC-2) and the public
contract alone. There is no StorageBackend underneath: every call takes one ``anyio.Lock``,
reads the clock once, runs every check, and only then mutates the dict, so each call is
atomic (linearizable, CC-2) and a refused call changes nothing (TS-20).

Deliberate choices (reasonable for the MCP layer above, even where SPEC.md pins other forms):

* a new task has ``version`` 1 and every successful mutation raises it by one (there is no
  pending record to confirm, so nothing costs a second version);
* task ids are ``str(uuid.uuid4())``, the 36-character dashed form (MCP only asks for unique
  strings);
* values must be *exactly* plain containers and scalars (``type(x) is dict`` ...): a dict or
  list subclass may carry behaviour (``__iter__``, ``__eq__``) that serialisation would not
  see, so it is refused with reason ``type``;
* cursors are base64url (unpadded) of canonical JSON holding the keyset position and an
  HMAC-SHA256 tag over (owner, position) under a per-instance secret, accepted only in
  exactly the form written;
* ConcurrentModificationError is never raised: one lock means no contention to report.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from conformance.contract.record import LATEST_TIMESTAMP_MS, canonical_json
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import (
    TERMINAL_STATUSES,
    TaskPage,
    TaskRecord,
    TaskStatus,
)
from conformance.contract.task_errors import (
    AnonymousAccessError,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    TaskExpiredError,
    TaskNotFoundError,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
)

__all__ = ["LockedDictStore"]

#: Integers are bounded to 64 bits (TS-11): beyond them JSON readers lose or refuse them.
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: Scalars accepted as-is (exact types, so no subclass smuggles behaviour in).
_SCALARS = (str, int, float, bool, type(None))
#: Unpadded base64url, the only alphabet a cursor of ours is written in.
_CURSOR_RE = re.compile(r"[A-Za-z0-9_-]+")
_CURSOR_KEYS = frozenset({"at", "id", "tag"})


def _copy(value: Any) -> Any:
    """A deep copy of an already validated plain-JSON value, iteratively (callers get copies, TS-13).

    Why not copy.deepcopy: it recurses, and a store configured with a large ``max_depth``
    must not die of RecursionError on its own data.
    """
    if type(value) not in (dict, list):
        return value
    root: Any = {} if type(value) is dict else []
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        if type(source) is dict:
            for key, item in source.items():
                if type(item) is dict or type(item) is list:
                    child: Any = {} if type(item) is dict else []
                    target[key] = child
                    stack.append((item, child))
                else:
                    target[key] = item
        else:
            for item in source:
                if type(item) is dict or type(item) is list:
                    child = {} if type(item) is dict else []
                    target.append(child)
                    stack.append((item, child))
                else:
                    target.append(item)
    return root


@dataclass
class _Task:
    """The store's own mutable copy of one task; never handed out (``snapshot`` copies it)."""

    task_id: str
    owner_id: str
    request_method: str
    status: TaskStatus
    status_message: str | None
    created_ms: int
    updated_ms: int
    ttl: int | None
    poll_interval: int
    expires_ms: int | None
    variables: dict[str, Any] = field(default_factory=dict)
    has_result: bool = False
    result: Any = None
    version: int = 1

    def expired(self, now: float) -> bool:
        """Strictly past expiry (TS-15, BK-15): at the instant itself the task is live."""
        return self.expires_ms is not None and now > self.expires_ms / 1000

    def snapshot(self) -> TaskRecord:
        """An independent TaskRecord: later mutations of either side never show in the other."""
        return TaskRecord(
            task_id=self.task_id,
            owner_id=self.owner_id,
            request_method=self.request_method,
            status=self.status,
            status_message=self.status_message,
            created_at=self.created_ms / 1000,
            last_updated_at=self.updated_ms / 1000,
            ttl=self.ttl,
            poll_interval=self.poll_interval,
            expires_at=None if self.expires_ms is None else self.expires_ms / 1000,
            variables=_copy(self.variables),
            has_result=self.has_result,
            result=_copy(self.result),
            version=self.version,
        )

    @property
    def order(self) -> tuple[int, str]:
        """Listing key: newest first, then task id ascending, a total order (TS-16)."""
        return (-self.created_ms, self.task_id)


class LockedDictStore:
    """A TaskStore keeping tasks in a dict under one lock; see the module docstring for its choices."""

    #: A new task's version: the one write that created it.
    FIRST_VERSION = 1

    @staticmethod
    def _new_id() -> str:
        """A fresh task id: a uuid4 in its standard dashed form (MCP asks only for unique strings)."""
        return str(uuid.uuid4())

    def __init__(
        self,
        *,
        clock: Callable[[], float] | None = None,
        config: StoreConfig = StoreConfig(),
        security: SecurityConfig = SecurityConfig(),
    ) -> None:
        self.config = config
        self.security = security
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._tasks: dict[str, _Task] = {}
        self._by_owner: dict[str, dict[str, _Task]] = {}
        # Ids ever issued, so an id is never reused even after cleanup removed its task (TS-4).
        self._issued: set[str] = set()
        self._secret = secrets.token_bytes(32)
        # Created lazily: an anyio.Lock must be made inside the running loop (asyncio or trio).
        self._lock: anyio.Lock | None = None

    # -- plumbing ---------------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        # No await between the test and the assignment, so two callers cannot both create one.
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    def _now(self) -> tuple[float, int]:
        """The clock now, raw (for expiry) and in whole milliseconds (for stamps, TS-4)."""
        now = float(self._clock())
        return now, round(now * 1000)

    def _owner(self, owner_id: object) -> str:
        """TS-3: refuse anonymous and unusable owners before anything else happens."""
        if self.security.refuses(owner_id):
            raise AnonymousAccessError()
        return str.__str__(owner_id)  # type: ignore[arg-type]  # an exact str, whatever subclass came in

    def _lookup(self, task_id: object, owner: str, now: float) -> _Task:
        """TS-7/TS-15: another owner's task is exactly a missing one; an own expired task says so.

        Raised outside any except block, so the error has no __cause__ and no __context__ (SEC-3).
        """
        task = self._tasks.get(task_id) if type(task_id) is str else None
        if task is None or task.owner_id != owner or task.task_id != task_id:
            raise TaskNotFoundError(task_id)
        if task.expired(now):
            raise TaskExpiredError(task_id)
        return task

    def _string(self, what: str, value: object, path: tuple[object, ...] = ()) -> None:
        """A storable string: exactly str, no lone surrogate, at most max_string_bytes UTF-8 bytes."""
        if type(value) is not str:
            raise VariableValidationError(what, "type", f"expected a string, got {type(value).__name__}", path)
        size = _utf8_size(value)
        if size is None:
            raise VariableValidationError(what, "unicode", "string holds a lone surrogate", path)
        if size > self.config.max_string_bytes:
            raise VariableValidationError(
                what, "string", f"string of {size} UTF-8 bytes exceeds {self.config.max_string_bytes}", path
            )

    def _value(self, what: str, value: object, path: tuple[object, ...] = ()) -> None:
        """TS-11: an iterative walk that never descends past max_depth + 1 (no RecursionError, SEC-5)."""
        limit = self.config.max_depth
        stack: list[tuple[object, int, tuple[object, ...]]] = [(value, 0, path)]
        while stack:
            item, level, where = stack.pop()
            kind = type(item)
            if kind is dict or kind is list:
                if level + 1 > limit:
                    raise VariableValidationError(what, "depth", f"nested deeper than {limit}", where)
                if kind is dict:
                    children: list[tuple[object, int, tuple[object, ...]]] = []
                    for key, child in item.items():  # type: ignore[union-attr]
                        self._string(what, key, where + (key,))
                        children.append((child, level + 1, where + (key,)))
                else:
                    children = [(child, level + 1, where + (i,)) for i, child in enumerate(item)]  # type: ignore[arg-type]
                stack.extend(reversed(children))
            elif kind is str:
                self._string(what, item, where)
            elif kind is bool or item is None:
                continue
            elif kind is int:
                if not _INT_MIN <= item <= _INT_MAX:  # type: ignore[operator]
                    raise VariableValidationError(what, "number", "integer outside the 64-bit range", where)
            elif kind is float:
                if not math.isfinite(item):  # type: ignore[arg-type]
                    raise VariableValidationError(what, "number", "NaN and infinities are not JSON", where)
            else:
                raise VariableValidationError(what, "type", f"{kind.__name__} is not a plain JSON value", where)

    def _result(self, result: object) -> int:
        """Shape (TS-11) then canonical size (TS-12) of a result, as argument checks; returns the size."""
        self._value("result", result)
        size = len(canonical_json(result))
        if size > self.config.max_result_bytes:
            raise VariableSizeExceededError("result", self.config.max_result_bytes, size)
        return size

    @staticmethod
    def _status(status: object) -> TaskStatus:
        """TS-8: a TaskStatus or its wire spelling; anything else is InvalidTransitionError."""
        if isinstance(status, TaskStatus):
            return status
        if isinstance(status, str):
            for member in TaskStatus:
                if member.value == status:
                    return member
        raise InvalidTransitionError(f"{status!r:.80} is not a task status", None, status)

    def _message(self, message: object) -> str | None:
        if message is None:
            return None
        self._string("status_message", message)
        return str.__str__(message)  # type: ignore[arg-type]

    @staticmethod
    def _live(task: _Task, requested: TaskStatus | None = None) -> None:
        """TS-8/TS-10/TS-13: a terminal task never changes again (``requested``: the status asked, if any)."""
        if task.status in TERMINAL_STATUSES:
            raise InvalidTransitionError(
                f"task is {task.status.value}; a terminal task never changes", task.status, requested
            )

    @staticmethod
    def _stamp(task: _Task, now_ms: int) -> TaskRecord:
        """Every successful mutation: lastUpdatedAt = now, version + 1 (TS-4)."""
        task.updated_ms = now_ms
        task.version += 1
        return task.snapshot()

    def _live_tasks(self, owner: str, now: float) -> list[_Task]:
        return [task for task in self._by_owner.get(owner, {}).values() if not task.expired(now)]

    # -- cursors (TS-17) ---------------------------------------------------------------------

    def _tag(self, owner: str, at: int, task_id: str) -> str:
        return hmac.new(self._secret, canonical_json([owner, at, task_id]), hashlib.sha256).hexdigest()[:32]

    def _encode_cursor(self, owner: str, task: _Task) -> str:
        payload = canonical_json({"at": task.created_ms, "id": task.task_id, "tag": self._tag(owner, task.created_ms, task.task_id)})
        return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")

    def _decode_cursor(self, owner: str, cursor: object) -> tuple[int, str] | None:
        """The position a cursor stands for, or None if this store did not write it for this owner."""
        if type(cursor) is not str or not _CURSOR_RE.fullmatch(cursor) or len(cursor) % 4 == 1:
            return None
        try:
            payload = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            document = json.loads(payload.decode("utf-8"))
        except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
            return None
        # Exactly the form written: re-encoding must give the very same string (no stray bits).
        if base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii") != cursor:
            return None
        if type(document) is not dict or set(document) != _CURSOR_KEYS:
            return None
        at, task_id, tag = document["at"], document["id"], document["tag"]
        if type(at) is not int or type(task_id) is not str or type(tag) is not str:
            return None
        try:
            if canonical_json(document) != payload:
                return None
        except (ValueError, UnicodeEncodeError):
            return None
        if not hmac.compare_digest(tag.encode("utf-8", "replace"), self._tag(owner, at, task_id).encode("ascii")):
            return None
        return at, task_id

    # -- the TaskStore methods ----------------------------------------------------------------

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        """TS-4/TS-5/TS-6: a working task with a fresh uuid4 id, refused TTLs never clamped."""
        owner = self._owner(owner_id)
        self._string("request_method", request_method)
        async with self._get_lock():
            now, now_ms = self._now()
            resolved = self._ttl(ttl, now_ms)
            if len(self._live_tasks(owner, now)) >= self.config.max_tasks_per_owner:
                raise ResourceExhaustedError(self.config.max_tasks_per_owner)
            task_id = self._new_id()
            while task_id in self._issued:  # practically never; the guarantee is cheap
                task_id = self._new_id()
            self._issued.add(task_id)
            task = _Task(
                task_id=task_id,
                owner_id=owner,
                request_method=str.__str__(request_method),
                status=TaskStatus.WORKING,
                status_message=None,
                created_ms=now_ms,
                updated_ms=now_ms,
                ttl=resolved,
                poll_interval=self.config.poll_interval_ms,
                expires_ms=None if resolved is None else now_ms + resolved,
                version=self.FIRST_VERSION,
            )
            self._tasks[task_id] = task
            self._by_owner.setdefault(owner, {})[task_id] = task
            return task.snapshot()

    def _ttl(self, ttl: object, now_ms: int) -> int | None:
        """TS-5: the default when None; otherwise an int in 1..max, whose expiry a timestamp can write."""
        maximum = self.config.max_ttl_ms
        if ttl is None:
            resolved = self.config.default_ttl_ms
            if resolved is not None and now_ms + resolved > LATEST_TIMESTAMP_MS:
                raise TtlExceededError(resolved, maximum)
            return resolved
        if type(ttl) is not int or ttl < 1 or (maximum is not None and ttl > maximum):
            raise TtlExceededError(ttl, maximum)
        if now_ms + ttl > LATEST_TIMESTAMP_MS:
            raise TtlExceededError(ttl, maximum)
        return ttl

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        owner = self._owner(owner_id)
        async with self._get_lock():
            now, _ = self._now()
            return self._lookup(task_id, owner, now).snapshot()

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None
    ) -> TaskRecord:
        """TS-8: MCP's machine; a non-terminal status may refresh itself, the message is replaced."""
        owner = self._owner(owner_id)
        requested = self._status(status)
        message = self._message(status_message)
        async with self._get_lock():
            now, now_ms = self._now()
            task = self._lookup(task_id, owner, now)
            self._live(task, requested)  # from a terminal status nothing is allowed, itself included
            task.status = requested
            task.status_message = message
            return self._stamp(task, now_ms)

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        """TS-10/TS-12: top-level merge, None deletes, the merged map bounded in canonical bytes."""
        owner = self._owner(owner_id)
        if type(variables) is not dict:
            raise VariableValidationError("variables", "type", "variables must be a plain dict")
        for name, value in variables.items():
            self._string("variables", name, (name,))
            if value is not None:
                self._value("variables", value, (name,))
        incoming = _copy(variables)
        async with self._get_lock():
            now, now_ms = self._now()
            task = self._lookup(task_id, owner, now)
            self._live(task)
            merged = dict(task.variables)
            for name, value in incoming.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            size = len(canonical_json(merged))
            if size > self.config.max_variable_bytes:
                raise VariableSizeExceededError("variables", self.config.max_variable_bytes, size)
            task.variables = merged
            return self._stamp(task, now_ms)

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        """TS-13: stage or replace the result of a live task; None is a result."""
        owner = self._owner(owner_id)
        self._result(result)
        stored = _copy(result)
        async with self._get_lock():
            now, now_ms = self._now()
            task = self._lookup(task_id, owner, now)
            self._live(task)
            task.has_result, task.result = True, stored
            return self._stamp(task, now_ms)

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        """TS-13: the result whatever the status; NotReadyError (with .status) when there is none."""
        owner = self._owner(owner_id)
        async with self._get_lock():
            now, _ = self._now()
            task = self._lookup(task_id, owner, now)
            if not task.has_result:
                raise NotReadyError(task_id, task.status)
            return _copy(task.result)

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None, result: Any
    ) -> TaskRecord:
        """TS-14: terminal statuses only, checked before the task is read; one atomic write."""
        owner = self._owner(owner_id)
        requested = self._status(status)
        if requested not in TERMINAL_STATUSES:
            raise InvalidTransitionError(
                f"complete_with_result needs a terminal status, not {requested.value}", None, status
            )
        message = self._message(status_message)
        self._result(result)
        stored = _copy(result)
        async with self._get_lock():
            now, now_ms = self._now()
            task = self._lookup(task_id, owner, now)
            self._live(task, requested)
            task.status, task.status_message = requested, message
            task.has_result, task.result = True, stored
            return self._stamp(task, now_ms)

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        """TS-16/TS-17: newest first by (createdAt desc, taskId asc), keyset cursors bound to the owner."""
        owner = self._owner(owner_id)
        if limit is None:
            limit = self.config.default_page_size
        elif type(limit) is bool or not isinstance(limit, int) or limit < 1:
            # A server bug, not a client error: MCP's tasks/list has no limit parameter.
            raise ValueError(f"limit must be a positive int, got {limit!r:.80}")
        position: tuple[int, str] | None = None
        if cursor is not None:
            position = self._decode_cursor(owner, cursor)
            if position is None:
                raise InvalidCursorError()
        async with self._get_lock():
            now, _ = self._now()
            tasks = sorted(self._live_tasks(owner, now), key=lambda t: t.order)
            if position is not None:
                after = (-position[0], position[1])
                tasks = [task for task in tasks if task.order > after]
            page = tasks[:limit]
            more = len(tasks) > limit
            return TaskPage(
                tasks=tuple(task.snapshot() for task in page),
                next_cursor=self._encode_cursor(owner, page[-1]) if more else None,
            )

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        """TS-9: working or input_required becomes cancelled with no message; terminal is refused."""
        owner = self._owner(owner_id)
        async with self._get_lock():
            now, now_ms = self._now()
            task = self._lookup(task_id, owner, now)
            if task.status in TERMINAL_STATUSES:
                raise InvalidTransitionError(
                    f"task is {task.status.value}; a terminal task cannot be cancelled", task.status, TaskStatus.CANCELLED
                )
            task.status, task.status_message = TaskStatus.CANCELLED, None
            return self._stamp(task, now_ms)

    async def cleanup_expired(self) -> int:
        """TS-22: remove exactly the tasks expired now, atomically under the lock, and count them."""
        async with self._get_lock():
            now, _ = self._now()
            gone = [task for task in self._tasks.values() if task.expired(now)]
            for task in gone:
                del self._tasks[task.task_id]
                owned = self._by_owner.get(task.owner_id)
                if owned is not None:
                    owned.pop(task.task_id, None)
                    if not owned:
                        del self._by_owner[task.owner_id]
            return len(gone)


def _utf8_size(text: str) -> int | None:
    """UTF-8 length of ``text``, or None if it holds a lone surrogate (not a Unicode scalar value)."""
    try:
        return len(text.encode("utf-8"))
    except UnicodeEncodeError:
        return None
