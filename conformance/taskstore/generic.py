"""GenericTaskStore: every task rule, over any StorageBackend.

The backend is a dumb versioned key-value store; this class decides owners, statuses,
limits and expiry, and writes one canonical JSON record per task (TASK_RECORD_SCHEMA).

How it avoids the seed's weak spots (SPEC TS clauses):

* Owner isolation is structural: a task lives at ``tasks/<sha256(owner)>/<task id>``. Every
  owner's prefix has the same length and contains only hex digits and two slashes, so no
  owner's prefix can match another owner's key whatever characters owners contain, and
  every key fits BK-13's 1,024 bytes. Every read re-checks the owner in the record anyway;
  a mismatch is TaskNotFoundError, built exactly like a missing task's.
* Every mutation is read, check, then one ``put_if_version``; a conflict surfaces as
  ConcurrentModificationError, never retried. Every check happens before the write, so a
  refused operation changes nothing.
* Values are validated by an iterative walk before anything recursive sees them, and every
  record is decoded again before it is written, so a record that cannot be read back is
  never stored.
* The quota cannot be raced past: create writes its record as *pending* (invisible to get
  and list), recounts the owner's live tasks including other pending creates, and either
  confirms its record with a CAS or deletes it and refuses: ResourceExhaustedError if the
  settled tasks alone fill the quota, ConcurrentModificationError if only creates in flight
  do (a lost race; a retry may succeed).
* Expiry is judged by the store itself (clock strictly past ``expiresAt``), so an expired
  task is gone to every operation whether the backend keeps or hides expired records.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import contextlib
import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anyio

from conformance.contract.backend import StorageBackend, VersionedRecord
from conformance.contract.errors import (
    CapacityExceededError,
    NotFoundError,
    VersionConflictError,
)
from conformance.contract.record import LATEST_TIMESTAMP_MS, canonical_json
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import (
    INITIAL_STATUS,
    TaskPage,
    TaskRecord,
    TaskStatus,
    can_transition,
    coerce_status,
)
from conformance.contract.task_errors import (
    AnonymousAccessError,
    ConcurrentModificationError,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    StorageFullError,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskStoreError,
    TtlExceededError,
    VariableValidationError,
)
from conformance.taskstore.codec import decode_record, encode_record
from conformance.taskstore.values import (
    check_size,
    check_string,
    check_value,
    check_variables,
    merge_variables,
)

#: Every task key starts with this; the owner's digest and the task id follow.
KEY_ROOT = "tasks/"

_TASK_ID = re.compile(r"[0-9a-f]{32}")
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,200}")
_CURSOR_KEYS = frozenset({"i", "o", "t"})


def owner_prefix(owner_id: str) -> str:
    """The key prefix holding exactly one owner's tasks."""
    return f"{KEY_ROOT}{hashlib.sha256(owner_id.encode('utf-8')).hexdigest()}/"


def task_key(owner_id: str, task_id: str) -> str:
    """The key of one task of one owner."""
    return owner_prefix(owner_id) + task_id


def _millis(posix_seconds: float) -> int:
    return round(posix_seconds * 1000)


def _sort_key(record: TaskRecord) -> tuple[int, str]:
    """Newest first, ties broken by task id: a total order, so pages never skip or repeat."""
    return (-_millis(record.created_at), record.task_id)


#: How long a pending record stays live at least, whatever the task's TTL: the time a create
#: needs between its pending write and its confirmation, with a wide margin.
PENDING_GRACE_MS = 60_000


class GenericTaskStore:
    """A TaskStore over any StorageBackend. Give the store and its backend the same clock."""

    def __init__(
        self,
        backend: StorageBackend,
        *,
        config: StoreConfig | None = None,
        security: SecurityConfig | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.backend = backend
        self.config = config if config is not None else StoreConfig()
        self.security = security if security is not None else SecurityConfig()
        self._clock = clock or time.time

    # ------------------------------------------------------------ the TaskStore API

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        """Create a task in ``working`` with a fresh uuid4 id and the resolved TTL (TS-4, TS-5, TS-6)."""
        now = self._clock()
        self._check_owner(owner_id)
        self._check_text(request_method, "request method", optional=False)
        ttl_ms = self._resolve_ttl(ttl, now)
        limit = self.config.max_tasks_per_owner
        if await self._settled_count(owner_id, now) >= limit:
            raise ResourceExhaustedError(limit)
        created = _millis(now)
        record = TaskRecord(
            task_id=uuid.uuid4().hex,
            owner_id=owner_id,
            request_method=request_method,
            status=INITIAL_STATUS,
            status_message=None,
            created_at=created / 1000,
            last_updated_at=created / 1000,
            ttl=ttl_ms,
            poll_interval=self.config.poll_interval_ms,
            expires_at=None if ttl_ms is None else (created + ttl_ms) / 1000,
        )
        key = task_key(owner_id, record.task_id)
        # The pending record outlives a tiny TTL: a backend that hides expired records must still
        # hold it when the confirmation lands (a 1 ms task is created, then expires).
        pending = record if record.expires_at is None else replace(
            record, expires_at=max(record.expires_at, min(created + PENDING_GRACE_MS, LATEST_TIMESTAMP_MS) / 1000))
        try:
            version = await self._call(self.backend.put, key, self._encode(pending, pending=True)[0])
            if not isinstance(version, int) or isinstance(version, bool):
                raise TaskStoreError(f"backend put returned {type(version).__name__}, not a version")
        except TaskError:
            await self._discard(key)
            raise
        try:
            live = await self._scan(owner_id, now)
            if len(live) > limit:
                settled = sum(1 for other, pending in live if not pending)
                if settled >= limit:
                    raise ResourceExhaustedError(limit)
                # Only creates in flight (ours among them) push the count over: we lost a race,
                # not the quota. Retryable contention, reported as such (no automatic retry).
                raise ConcurrentModificationError(
                    None, None, None, "concurrent creates took the owner's free task slots; nothing was created"
                )
            return await self._write(key, record, version)
        except BaseException:
            await self._discard(key)
            raise

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """The task, if this owner holds it and it has not expired (TS-7, TS-15)."""
        now = self._clock()
        self._check_owner(owner_id)
        _, record = await self._load(task_id, owner_id, now)
        return record

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None
    ) -> TaskRecord:
        """Move the task along the MCP state machine; the message replaces the old one (TS-8)."""
        now = self._clock()
        self._check_owner(owner_id)
        target = self._status_argument(status)
        self._check_text(status_message, "status message", optional=True)
        key, record = await self._load(task_id, owner_id, now)
        self._check_transition(record, target)
        updated = replace(record, status=target, status_message=status_message, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        """Merge ``variables`` into a non-terminal task's; None deletes a name (TS-10, TS-11, TS-12)."""
        now = self._clock()
        self._check_owner(owner_id)
        check_variables(variables, self.config.max_depth, self.config.max_string_bytes)
        key, record = await self._load(task_id, owner_id, now)
        self._check_mutable(record, "variables")
        merged = merge_variables(record.variables, variables)
        check_size(merged, "variables", self.config.max_variable_bytes)
        updated = replace(record, variables=merged, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        """Store the result of a non-terminal task; None is a real result (TS-13)."""
        now = self._clock()
        self._check_owner(owner_id)
        self._check_result(result)
        key, record = await self._load(task_id, owner_id, now)
        self._check_mutable(record, "result")
        updated = replace(record, has_result=True, result=result, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        """The stored result, whatever the status; NotReadyError (carrying the status) if none (TS-13)."""
        now = self._clock()
        self._check_owner(owner_id)
        _, record = await self._load(task_id, owner_id, now)
        if not record.has_result:
            raise NotReadyError(task_id, record.status)
        return record.result

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None, result: Any
    ) -> TaskRecord:
        """Terminal status, message and result in one CAS write; only terminal statuses (TS-14)."""
        now = self._clock()
        self._check_owner(owner_id)
        target = self._completion_status(status)
        self._check_text(status_message, "status message", optional=True)
        self._check_result(result)
        key, record = await self._load(task_id, owner_id, now)
        self._check_transition(record, target)
        updated = replace(
            record,
            status=target,
            status_message=status_message,
            has_result=True,
            result=result,
            last_updated_at=self._stamp(now),
        )
        return await self._write(key, updated, record.version)

    def _completion_status(self, status: object) -> TaskStatus:
        """The status complete_with_result moves to: terminal, or the call is refused (TS-14)."""
        target = self._status_argument(status)
        if not target.is_terminal:
            raise InvalidTransitionError(
                f"complete_with_result needs a terminal status, not {target.value}", requested=target
            )
        return target

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        """Cancel a non-terminal task and clear its status message; terminal tasks refuse (TS-9)."""
        now = self._clock()
        self._check_owner(owner_id)
        key, record = await self._load(task_id, owner_id, now)
        self._check_transition(record, TaskStatus.CANCELLED)
        updated = replace(record, status=TaskStatus.CANCELLED, status_message=None, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        """One page of the owner's live tasks, newest first, resumable by cursor (TS-16, TS-17).

        ``limit`` is the server's choice, not a client parameter (MCP ``tasks/list`` has
        none), so a limit that is not a positive int is a programming error: ValueError.
        """
        now = self._clock()
        self._check_owner(owner_id)
        size = self.config.default_page_size if limit is None else limit
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        after = None if cursor is None else self._read_cursor(owner_id, cursor)
        tasks = sorted((r for r, pending in await self._scan(owner_id, now) if not pending), key=_sort_key)
        if after is not None:
            tasks = [r for r in tasks if _sort_key(r) > after]
        page = tuple(tasks[:size])
        more = len(tasks) > size
        return TaskPage(page, self._make_cursor(owner_id, page[-1]) if more else None)

    async def cleanup_expired(self) -> int:
        """Delegate to the backend, which decides and deletes atomically per record (TS-22, BK-16)."""
        removed = await self._call(self.backend.cleanup_expired)
        if not isinstance(removed, int) or isinstance(removed, bool) or removed < 0:
            raise TaskStoreError(f"backend cleanup_expired returned {type(removed).__name__}, not a count")
        return removed

    # ------------------------------------------------------------ argument checks (before any storage access)

    def _check_owner(self, owner_id: object) -> None:
        if self.security.refuses(owner_id):
            raise AnonymousAccessError()

    def _check_text(self, text: object, what: str, *, optional: bool) -> None:
        if text is None and optional:
            return
        if not isinstance(text, str):
            raise VariableValidationError(what, "type", "must be a string")
        check_string(text, what, self.config.max_string_bytes)

    def _check_result(self, result: Any) -> None:
        check_value(result, "result", self.config.max_depth, self.config.max_string_bytes)
        check_size(result, "result", self.config.max_result_bytes)

    def _resolve_ttl(self, ttl: object, now: float) -> int | None:
        if ttl is None:
            return self.config.default_ttl_ms
        maximum = self.config.max_ttl_ms
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1 or (maximum is not None and ttl > maximum):
            raise TtlExceededError(ttl, maximum)
        if _millis(now) + ttl > LATEST_TIMESTAMP_MS:
            raise TtlExceededError(ttl, maximum)  # no record could write an expiry past year 9999 (TS-5)
        return ttl

    @staticmethod
    def _status_argument(status: object) -> TaskStatus:
        target = coerce_status(status)
        if target is None:
            raise InvalidTransitionError("unknown task status", requested=status)
        return target

    @staticmethod
    def _check_transition(record: TaskRecord, target: TaskStatus) -> None:
        if not can_transition(record.status, target):
            raise InvalidTransitionError(
                f"a task in status {record.status.value} cannot move to {target.value}",
                current=record.status,
                requested=target,
            )

    @staticmethod
    def _check_mutable(record: TaskRecord, what: str) -> None:
        if record.is_terminal:
            raise InvalidTransitionError(
                f"the {what} of a task in terminal status {record.status.value} cannot change", current=record.status
            )

    @staticmethod
    def _stamp(now: float) -> float:
        return _millis(now) / 1000

    # ------------------------------------------------------------ storage

    async def _call(
        self, method: Callable[..., Any], *args: Any, passing: tuple[type[Exception], ...] = ()
    ) -> Any:
        """Call a backend method, turning its failures into TaskErrors with the cause chained (TS-19).

        Only the errors in ``passing`` (the ones the caller gives a domain meaning) get
        through; anything else a backend raises, contract error or not, is a backend failure.
        """
        try:
            return await method(*args)
        except passing:
            raise
        except CapacityExceededError as exc:
            raise StorageFullError("the storage engine refused the write: capacity exceeded") from exc
        except Exception as exc:
            raise TaskStoreError(f"the storage backend failed ({type(exc).__name__})") from exc

    @staticmethod
    def _encode(record: TaskRecord, *, pending: bool = False) -> tuple[bytes, TaskRecord]:
        """The record's bytes and the record read back from them: a record that cannot be read
        back is never written (no poison records, TS-13), and callers get exactly what a later
        read will return."""
        data = encode_record(record, pending=pending)
        try:
            readback, _ = decode_record(data, record.version)
        except ValueError as exc:  # pragma: no cover - validation upstream makes this unreachable
            raise TaskStoreError("refusing to write a record that cannot be read back") from exc
        return data, readback

    @staticmethod
    def _decode(stored: object) -> tuple[TaskRecord, bool]:
        """Decode what the backend returned; anything unreadable is a backend failure (TS-21)."""
        if not isinstance(stored, VersionedRecord) or not isinstance(stored.data, bytes):
            raise TaskStoreError(f"the backend returned {type(stored).__name__}, not a VersionedRecord")
        try:
            return decode_record(stored.data, stored.version)
        except ValueError as exc:
            raise TaskStoreError("the backend returned a record the store cannot read") from exc

    async def _load(self, task_id: object, owner_id: str, now: float) -> tuple[str, TaskRecord]:
        """Read one task, or raise exactly what a missing task raises (TS-7), or TaskExpiredError (TS-15)."""
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise TaskNotFoundError(task_id)
        key = task_key(owner_id, task_id)
        missing = False
        try:
            stored = await self._call(self.backend.get, key, passing=(NotFoundError,))
        except NotFoundError:
            missing = True  # raised below, outside the handler, so no backend error rides along as context
        if missing:
            raise TaskNotFoundError(task_id)
        record, pending = self._decode(stored)
        if pending or record.owner_id != owner_id or record.task_id != task_id:
            raise TaskNotFoundError(task_id)
        if record.is_expired(now):
            raise TaskExpiredError(task_id)
        return key, record

    async def _write(self, key: str, record: TaskRecord, expected_version: int) -> TaskRecord:
        """One compare-and-swap; the record handed back is decoded from the bytes written (TS-18)."""
        data, written = self._encode(record)
        vanished = False
        try:
            version = await self._call(
                self.backend.put_if_version, key, data, expected_version, passing=(NotFoundError, VersionConflictError)
            )
        except VersionConflictError as exc:
            raise ConcurrentModificationError(record.task_id, exc.expected, exc.actual) from exc
        except NotFoundError:
            vanished = True  # cleanup or native expiry removed it since it was read
        if vanished:
            raise TaskNotFoundError(record.task_id)
        if not isinstance(version, int) or isinstance(version, bool):
            raise TaskStoreError(f"backend put_if_version returned {type(version).__name__}, not a version")
        return replace(written, version=version)

    async def _discard(self, key: str) -> None:
        """Best-effort removal of a pending record; if it fails, the record stays invisible and expires."""
        with anyio.CancelScope(shield=True):
            with contextlib.suppress(Exception):
                await self.backend.delete(key)

    async def _scan(self, owner_id: str, now: float) -> builtins.list[tuple[TaskRecord, bool]]:
        """The owner's live records (pending ones flagged), owner and id re-checked on each (TS-7, TS-16)."""
        prefix = owner_prefix(owner_id)
        listed = await self._call(self.backend.list_by_prefix, prefix)
        if not isinstance(listed, (list, tuple)) or not all(isinstance(i, tuple) and len(i) == 2 for i in listed):
            raise TaskStoreError(f"backend list_by_prefix returned {type(listed).__name__}, not a list of pairs")
        found: builtins.list[tuple[TaskRecord, bool]] = []
        for key, stored in listed:
            record, pending = self._decode(stored)
            if record.owner_id != owner_id or key != prefix + record.task_id or record.is_expired(now):
                continue
            found.append((record, pending))
        return found

    async def _settled_count(self, owner_id: str, now: float) -> int:
        """Unexpired tasks of the owner, terminal ones included, creates still in flight not (TS-6).

        A pending record is a create that may yet roll back: refusing for the quota because of
        it would refuse a create no serial order refuses (CC-2 found this). Whether in-flight
        creates leave room is decided after writing our own pending record.
        """
        return sum(1 for _, pending in await self._scan(owner_id, now) if not pending)

    # ------------------------------------------------------------ cursors

    @staticmethod
    def _cursor_tag(owner_id: str, created: int, task_id: str) -> str:
        """A digest binding the position to its owner: any edit of a cursor no longer matches (TS-17)."""
        material = b"\x00".join([b"cursor", owner_id.encode("utf-8"), str(created).encode("ascii"), task_id.encode("ascii")])
        return hashlib.sha256(material).hexdigest()[:16]

    def _make_cursor(self, owner_id: str, last: TaskRecord) -> str:
        """An opaque token for the position after ``last``: a place in the order, not a page number."""
        created = _millis(last.created_at)
        body = canonical_json({"i": last.task_id, "o": self._cursor_tag(owner_id, created, last.task_id), "t": created})
        return base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")

    def _read_cursor(self, owner_id: str, cursor: object) -> tuple[int, str]:
        """The sort position a cursor names, or InvalidCursorError; never a silent restart (TS-17)."""
        if not isinstance(cursor, str) or not _CURSOR.fullmatch(cursor):
            raise InvalidCursorError()
        try:
            body = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            fields = json.loads(body.decode("utf-8"))
        except (binascii.Error, ValueError):
            raise InvalidCursorError() from None
        if not isinstance(fields, dict) or set(fields) != _CURSOR_KEYS:
            raise InvalidCursorError()
        task_id, tag, created = fields["i"], fields["o"], fields["t"]
        if (
            not isinstance(task_id, str)
            or not _TASK_ID.fullmatch(task_id)
            or not isinstance(created, int)
            or isinstance(created, bool)
            or created < 0
            or tag != self._cursor_tag(owner_id, created, task_id)
            or base64.urlsafe_b64encode(canonical_json(fields)).rstrip(b"=").decode("ascii") != cursor
        ):
            raise InvalidCursorError()
        return (-created, task_id)
