"""A complete task store over a private versioned key-value store, with bounded CAS retries.

Written from SPEC.md (TS, SEC, CC-2) and the public contract alone. The domain logic runs over
``_VersionedKV``, a dict that yields to the event loop inside every call the way a network
store would, so operations of different callers interleave between calls. Every mutation is
read, check, compare-and-swap; on a version conflict it re-reads and re-applies the rules, at
most ``MAX_ATTEMPTS`` times, and only then raises ``ConcurrentModificationError``.

Deliberate choices (see the module's report for the clauses they differ from):
- creates are atomic with the KV's create-if-absent, and the quota is a per-owner index record
  (live task ids with their expiry) updated by CAS; a task is listed only once its id is in the
  index, so the index CAS is the instant a create takes effect;
- task ids are ``secrets.token_urlsafe(16)`` (22 URL-safe characters), and a new task has version 1;
- conflicts are retried inside the store: a caller cannot tell a retried write from one that won
  at once, and a bounded retry adds no unbounded latency.
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
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import anyio.lowlevel

from conformance.contract.record import LATEST_TIMESTAMP_MS, canonical_json
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import (
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
    TaskExpiredError,
    TaskNotFoundError,
    TaskStoreError,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
    shown,
)

#: Attempts per mutation before a conflict surfaces (one try plus four retries).
MAX_ATTEMPTS = 5
#: The shape of the ids this store issues: 16 random bytes in unpadded base64url.
_TASK_ID_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
#: Characters a cursor may hold (unpadded base64url).
_CURSOR_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: The index record lives under the owner's prefix, so one scan reads index and tasks at one instant.
#: "#" never occurs in a base64url task id.
_INDEX_NAME = "#index"
_FORMAT = 1


# --------------------------------------------------------------------------- the private KV store


class _VersionedKV:
    """A versioned key-value store over a dict. Each call checkpoints once, then acts atomically.

    No lock: asyncio and trio run one task at a time, and each operation does all its work
    between two yields. Answers are values, never exceptions, so a store raising its own
    error after a miss never carries a ``__context__``.
    """

    def __init__(self) -> None:
        self._data: dict[str, tuple[int, bytes]] = {}

    async def get(self, key: str) -> tuple[int, bytes] | None:
        """(version, data), or None when the key holds nothing."""
        await anyio.lowlevel.checkpoint()
        return self._data.get(key)

    async def create_if_absent(self, key: str, data: bytes) -> bool:
        """Store ``data`` at version 1 if the key is empty; False (and nothing written) otherwise."""
        await anyio.lowlevel.checkpoint()
        if key in self._data:
            return False
        self._data[key] = (1, bytes(data))
        return True

    async def put_if_version(self, key: str, data: bytes, expected: int) -> tuple[bool, int | None]:
        """(True, new version) on success; (False, current version or None if missing) otherwise."""
        await anyio.lowlevel.checkpoint()
        current = self._data.get(key)
        if current is None:
            return False, None
        if current[0] != expected:
            return False, current[0]
        self._data[key] = (expected + 1, bytes(data))
        return True, expected + 1

    async def delete(self, key: str, expected: int | None = None) -> bool:
        """Remove the key (only at version ``expected`` if given); whether a record was removed."""
        await anyio.lowlevel.checkpoint()
        current = self._data.get(key)
        if current is None or (expected is not None and current[0] != expected):
            return False
        del self._data[key]
        return True

    async def scan(self, prefix: str) -> list[tuple[str, int, bytes]]:
        """Every (key, version, data) whose key starts with ``prefix`` literally, at one instant."""
        await anyio.lowlevel.checkpoint()
        return [(k, v, d) for k, (v, d) in self._data.items() if k.startswith(prefix)]


# --------------------------------------------------------------------------- value checks


def _check_string(text: object, what: str, limit: int, path: tuple[object, ...] = ()) -> None:
    """A storable string: a str of Unicode scalar values, at most ``limit`` UTF-8 bytes (TS-11)."""
    if not isinstance(text, str):
        raise VariableValidationError(what, "type", f"expected a string, got {type(text).__name__}", path)
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise VariableValidationError(what, "unicode", "string holds a lone surrogate", path) from None
    if size > limit:
        raise VariableValidationError(what, "string", f"string of {size} UTF-8 bytes; the limit is {limit}", path)


def _check_value(value: object, what: str, config: StoreConfig, path: tuple[object, ...] = ()) -> None:
    """Plain, bounded JSON, checked by an iterative walk that never goes past ``max_depth + 1``.

    Why iterative and bounded: a 100,000-deep bomb or a self-containing list must be refused
    with VariableValidationError in bounded time, never reach json.dumps or recursion (SEC-5).
    Depth counts containers: a scalar is 0, ``[]`` is 1.
    """
    stack: list[tuple[object, int, tuple[object, ...]]] = [(value, 0, path)]
    while stack:
        item, enclosing, where = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not _INT_MIN <= item <= _INT_MAX:
                raise VariableValidationError(what, "number", "integer outside -2**63..2**64-1", where)
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                raise VariableValidationError(what, "number", "number is not finite", where)
            continue
        if isinstance(item, str):
            _check_string(item, what, config.max_string_bytes, where)
            continue
        if isinstance(item, (dict, list)):
            level = enclosing + 1
            if level > config.max_depth:
                raise VariableValidationError(what, "depth", f"nested deeper than {config.max_depth}", where)
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise VariableValidationError(what, "type", "object keys must be strings", where)
                    _check_string(key, what, config.max_string_bytes, where + (key,))
                    stack.append((child, level, where + (key,)))
            else:
                for index, child in enumerate(item):
                    stack.append((child, level, where + (index,)))
            continue
        raise VariableValidationError(what, "type", f"{type(item).__name__} is not JSON", where)


# --------------------------------------------------------------------------- the store


class CasRetryStore:
    """A task store (``conformance.TaskStore``) whose rules run over ``_VersionedKV`` with CAS retries."""

    #: Ids this store can have issued; anything else is not found without a storage call (TS-7).
    task_id_pattern: re.Pattern[str] = _TASK_ID_RE

    @staticmethod
    def _new_task_id() -> str:
        """128 random bits, URL-safe: never reused (collisions are refused by create-if-absent anyway)."""
        return secrets.token_urlsafe(16)

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
        self._kv = _VersionedKV()

    # ----- small helpers

    def _now_ms(self) -> int:
        """The clock in whole milliseconds, rounded (records keep milliseconds; BK-15)."""
        return round(self._clock() * 1000)

    def _check_owner(self, owner_id: object) -> str:
        """TS-3: anonymous or unusable owners are refused before storage is touched."""
        if self.security.refuses(owner_id):
            raise AnonymousAccessError()
        assert isinstance(owner_id, str)
        return owner_id

    @staticmethod
    def _prefix(owner_id: str) -> str:
        """``t/<owner percent-encoded>/``: quoting never emits "/", so no owner's prefix holds another's keys."""
        return f"t/{quote(owner_id, safe='')}/"

    def _task_key(self, task_id: object, owner_id: str) -> str:
        """The key of a task, or TaskNotFoundError for an id this store can never have issued."""
        if not isinstance(task_id, str) or not self.task_id_pattern.match(task_id):
            raise TaskNotFoundError(task_id)
        return self._prefix(owner_id) + task_id

    def _resolve_ttl(self, ttl: object, now_ms: int) -> int | None:
        """TS-5: the default, or an integer in 1..max kept exactly; anything else refused, never clamped."""
        if ttl is None:
            resolved = self.config.default_ttl_ms
            if resolved is not None and now_ms + resolved > LATEST_TIMESTAMP_MS:
                raise TtlExceededError(resolved, self.config.max_ttl_ms)
            return resolved
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 1:
            raise TtlExceededError(ttl, self.config.max_ttl_ms)
        if self.config.max_ttl_ms is not None and ttl > self.config.max_ttl_ms:
            raise TtlExceededError(ttl, self.config.max_ttl_ms)
        if now_ms + ttl > LATEST_TIMESTAMP_MS:
            raise TtlExceededError(ttl, self.config.max_ttl_ms)
        return ttl

    def _check_message(self, message: object) -> None:
        if message is not None:
            _check_string(message, "status message", self.config.max_string_bytes)

    def _check_result(self, result: object) -> None:
        """TS-11 shape, then TS-12 size: a result's canonical JSON is bounded by max_result_bytes."""
        _check_value(result, "result", self.config)
        size = len(canonical_json(result))
        if size > self.config.max_result_bytes:
            raise VariableSizeExceededError("result", self.config.max_result_bytes, size)

    @staticmethod
    def _encode(record: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """Canonical bytes and their decoding: nothing is written that cannot be read back (TS-13)."""
        data = canonical_json(record)
        return data, json.loads(data)

    @staticmethod
    def _decode(data: bytes) -> dict[str, Any]:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise TaskStoreError("a stored record cannot be decoded") from exc
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise TaskStoreError("a stored record has an unknown layout")
        return document

    @staticmethod
    def _expired(record: dict[str, Any], now_ms: int) -> bool:
        """Strictly past expiresAt: at the instant itself the task is live (TS-15)."""
        expires = record["expiresMs"]
        return expires is not None and now_ms > expires

    @staticmethod
    def _to_task(record: dict[str, Any], version: int) -> TaskRecord:
        """A TaskRecord built from a freshly decoded record, so callers never share the store's objects."""
        expires = record["expiresMs"]
        return TaskRecord(
            task_id=record["taskId"],
            owner_id=record["ownerId"],
            request_method=record["requestMethod"],
            status=TaskStatus(record["status"]),
            status_message=record["statusMessage"],
            created_at=record["createdMs"] / 1000,
            last_updated_at=record["updatedMs"] / 1000,
            ttl=record["ttl"],
            poll_interval=record["pollInterval"],
            expires_at=None if expires is None else expires / 1000,
            variables=record["variables"],
            has_result="result" in record,
            result=record["result"]["value"] if "result" in record else None,
            version=version,
        )

    async def _read(self, task_id: object, owner_id: str) -> tuple[str, int, dict[str, Any]]:
        """Lookup then expiry (TS-7, TS-15): another owner's task is simply absent under this owner's key."""
        key = self._task_key(task_id, owner_id)
        got = await self._kv.get(key)
        if got is None:
            raise TaskNotFoundError(task_id)
        version, data = got
        record = self._decode(data)
        if record.get("ownerId") != owner_id or record.get("taskId") != task_id:
            raise TaskNotFoundError(task_id)  # defence in depth: the key layout should make this impossible
        if self._expired(record, self._now_ms()):
            raise TaskExpiredError(task_id)
        return key, version, record

    async def _mutate(
        self, task_id: object, owner_id: str, apply: Callable[[dict[str, Any], int], dict[str, Any]]
    ) -> TaskRecord:
        """Read, check, compare-and-swap; on a conflict re-read and re-check, at most MAX_ATTEMPTS times.

        ``apply`` gets a decoded copy of the record and the time, raises the state and size
        refusals, and returns the new record. Every refusal happens before the one write.
        """
        expected: int | None = None
        actual: int | None = None
        for _ in range(MAX_ATTEMPTS):
            key, version, record = await self._read(task_id, owner_id)
            now_ms = self._now_ms()
            updated = apply(record, now_ms)
            updated["updatedMs"] = now_ms
            data, decoded = self._encode(updated)
            ok, new_version = await self._kv.put_if_version(key, data, version)
            if ok:
                assert new_version is not None
                return self._to_task(decoded, new_version)
            if new_version is None:
                raise TaskNotFoundError(task_id)  # vanished between read and write (cleanup)
            expected, actual = version, new_version
        raise ConcurrentModificationError(task_id, expected, actual)

    # ----- TaskStore methods

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        """Write the record with create-if-absent, then admit it into the owner's index by CAS (TS-4..6).

        The record is invisible until its id is in the index (listings read both in one scan),
        so the index CAS is the instant the create takes effect, and the quota is counted on
        the index alone: concurrent creates can never take an owner past its limit.
        """
        owner = self._check_owner(owner_id)
        _check_string(request_method, "request method", self.config.max_string_bytes)
        now_ms = self._now_ms()
        ttl_ms = self._resolve_ttl(ttl, now_ms)
        prefix = self._prefix(owner)

        for _ in range(MAX_ATTEMPTS):  # only a (practically impossible) id collision loops here
            task_id = self._new_task_id()
            record: dict[str, Any] = {
                "format": _FORMAT,
                "taskId": task_id,
                "ownerId": owner,
                "requestMethod": request_method,
                "status": TaskStatus.WORKING.value,
                "statusMessage": None,
                "createdMs": now_ms,
                "updatedMs": now_ms,
                "ttl": ttl_ms,
                "expiresMs": None if ttl_ms is None else now_ms + ttl_ms,
                "pollInterval": self.config.poll_interval_ms,
                "variables": {},
            }
            data, decoded = self._encode(record)
            if await self._kv.create_if_absent(prefix + task_id, data):
                break
        else:
            raise ConcurrentModificationError(None, None, None, "could not allocate a fresh task id")

        key = prefix + task_id
        admitted = False
        try:
            admitted = await self._admit(prefix, task_id, decoded["expiresMs"])
        finally:
            if not admitted:
                with anyio.CancelScope(shield=True):
                    await self._kv.delete(key, 1)
        return self._to_task(decoded, 1)

    async def _admit(self, prefix: str, task_id: str, expires_ms: int | None) -> bool:
        """Add ``task_id`` to the owner's index by CAS if the owner holds fewer live tasks than the quota."""
        index_key = prefix + _INDEX_NAME
        limit = self.config.max_tasks_per_owner
        for _ in range(MAX_ATTEMPTS):
            got = await self._kv.get(index_key)
            now_ms = self._now_ms()
            live: dict[str, int | None] = {}
            if got is not None:
                stored = self._decode(got[1])["live"]
                # expired tasks leave the quota at once (TS-6), whether or not cleanup ran
                live = {tid: exp for tid, exp in stored.items() if exp is None or now_ms <= exp}
            if len(live) >= limit:
                raise ResourceExhaustedError(limit)
            live[task_id] = expires_ms
            data = canonical_json({"format": _FORMAT, "live": live})
            if got is None:
                if await self._kv.create_if_absent(index_key, data):
                    return True
            else:
                ok, _ = await self._kv.put_if_version(index_key, data, got[0])
                if ok:
                    return True
        raise ConcurrentModificationError(task_id, None, None)

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        """The task, if this owner holds it and it has not expired."""
        owner = self._check_owner(owner_id)
        _, version, record = await self._read(task_id, owner)
        return self._to_task(record, version)

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None
    ) -> TaskRecord:
        """TS-8: the MCP machine (a non-terminal status may refresh itself); the message is replaced."""
        owner = self._check_owner(owner_id)
        requested = coerce_status(status)
        if requested is None:
            raise InvalidTransitionError(f"{shown(status)} is not a task status", None, status)
        self._check_message(status_message)

        def apply(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
            current = TaskStatus(record["status"])
            if not can_transition(current, requested):
                raise InvalidTransitionError(
                    f"task {shown(task_id)} cannot move from {current.value} to {requested.value}", current, requested
                )
            record["status"] = requested.value
            record["statusMessage"] = status_message
            return record

        return await self._mutate(task_id, owner, apply)

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        """TS-10/12: top-level merge, None deletes; the merged map's canonical JSON is bounded."""
        owner = self._check_owner(owner_id)
        if not isinstance(variables, dict):
            raise VariableValidationError("variables", "type", "variables must be a mapping of names to values")
        for name, value in variables.items():
            if not isinstance(name, str):
                raise VariableValidationError("variables", "type", "variable names must be strings")
            _check_string(name, "variables", self.config.max_string_bytes, (name,))
            _check_value(value, "variables", self.config, (name,))
        incoming = dict(variables)

        def apply(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
            current = TaskStatus(record["status"])
            if current.is_terminal:
                raise InvalidTransitionError(
                    f"task {shown(task_id)} is {current.value}; its variables can no longer change", current, None
                )
            merged = record["variables"]
            for name, value in incoming.items():
                if value is None:
                    merged.pop(name, None)
                else:
                    merged[name] = value
            size = len(canonical_json(merged))
            if size > self.config.max_variable_bytes:
                raise VariableSizeExceededError("variables", self.config.max_variable_bytes, size)
            return record

        return await self._mutate(task_id, owner, apply)

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        """TS-13: store or replace the result of a live task; None is a result."""
        owner = self._check_owner(owner_id)
        self._check_result(result)

        def apply(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
            current = TaskStatus(record["status"])
            if current.is_terminal:
                raise InvalidTransitionError(
                    f"task {shown(task_id)} is {current.value}; its result can no longer change", current, None
                )
            record["result"] = {"value": result}
            return record

        return await self._mutate(task_id, owner, apply)

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        """The stored result whatever the status; NotReadyError (with the status) when there is none."""
        owner = self._check_owner(owner_id)
        _, _, record = await self._read(task_id, owner)
        if "result" not in record:
            raise NotReadyError(task_id, TaskStatus(record["status"]))
        return record["result"]["value"]

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None, result: Any
    ) -> TaskRecord:
        """TS-14: a terminal status, its message and the result in one write."""
        owner = self._check_owner(owner_id)
        requested = coerce_status(status)
        if requested is None or not requested.is_terminal:
            raise InvalidTransitionError(
                f"complete_with_result needs a terminal status, not {shown(getattr(status, 'value', status))}",
                None,
                status,
            )
        self._check_message(status_message)
        self._check_result(result)

        def apply(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
            current = TaskStatus(record["status"])
            if current.is_terminal:
                raise InvalidTransitionError(
                    f"task {shown(task_id)} is already {current.value}", current, requested
                )
            record["status"] = requested.value
            record["statusMessage"] = status_message
            record["result"] = {"value": result}
            return record

        return await self._mutate(task_id, owner, apply)

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        """TS-9: cancel a live task and clear its message; a terminal task is refused."""
        owner = self._check_owner(owner_id)

        def apply(record: dict[str, Any], now_ms: int) -> dict[str, Any]:
            current = TaskStatus(record["status"])
            if current.is_terminal:
                raise InvalidTransitionError(
                    f"task {shown(task_id)} is already {current.value}", current, TaskStatus.CANCELLED
                )
            record["status"] = TaskStatus.CANCELLED.value
            record["statusMessage"] = None
            return record

        return await self._mutate(task_id, owner, apply)

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        """TS-16/17: live admitted tasks, (createdAt desc, taskId asc), keyset cursor bound to the owner."""
        owner = self._check_owner(owner_id)
        if limit is None:
            limit = self.config.default_page_size
        elif not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        position = None if cursor is None else self._decode_cursor(cursor, owner)

        prefix = self._prefix(owner)
        entries = await self._kv.scan(prefix)  # index and records at one instant
        now_ms = self._now_ms()
        admitted: set[str] = set()
        for key, _, data in entries:
            if key == prefix + _INDEX_NAME:
                admitted = set(self._decode(data)["live"])
        tasks: list[tuple[int, str, TaskRecord]] = []
        for key, version, data in entries:
            name = key[len(prefix):]
            if name == _INDEX_NAME:
                continue
            record = self._decode(data)
            if record.get("ownerId") != owner or record.get("taskId") != name or name not in admitted:
                continue  # another owner's record (impossible by layout) or a create not yet admitted
            if self._expired(record, now_ms):
                continue
            tasks.append((record["createdMs"], name, self._to_task(record, version)))
        tasks.sort(key=lambda t: (-t[0], t[1]))
        if position is not None:
            at_ms, at_id = position
            tasks = [t for t in tasks if t[0] < at_ms or (t[0] == at_ms and t[1] > at_id)]
        page = tasks[:limit]
        next_cursor = None
        if len(tasks) > limit:
            last = page[-1]
            next_cursor = self._encode_cursor(owner, last[0], last[1])
        return TaskPage(tasks=tuple(t[2] for t in page), next_cursor=next_cursor)

    async def cleanup_expired(self) -> int:
        """Remove every expired task record, each by a delete conditional on the version judged expired."""
        removed = 0
        now_ms = self._now_ms()
        for key, version, data in await self._kv.scan("t/"):
            if key.endswith("/" + _INDEX_NAME):
                continue
            try:
                record = self._decode(data)
            except TaskStoreError:
                continue  # never destroy what cannot be read
            if self._expired(record, now_ms) and await self._kv.delete(key, version):
                removed += 1
        return removed

    # ----- cursors

    @staticmethod
    def _cursor_tag(owner_id: str, at_ms: int, at_id: str) -> str:
        """A 64-bit digest over owner and position: edits and other owners' cursors are refused (TS-17)."""
        material = b"cas-retry-cursor\x00" + canonical_json([owner_id, at_ms, at_id])
        return hashlib.sha256(material).hexdigest()[:16]

    def _encode_cursor(self, owner_id: str, at_ms: int, at_id: str) -> str:
        payload = canonical_json({"at": at_ms, "id": at_id, "tag": self._cursor_tag(owner_id, at_ms, at_id)})
        return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")

    def _decode_cursor(self, cursor: object, owner_id: str) -> tuple[int, str]:
        """The position a cursor stands for, accepted only in exactly the form this store wrote."""
        position = self._parse_cursor(cursor, owner_id)
        if position is None:
            raise InvalidCursorError()
        return position

    def _parse_cursor(self, cursor: object, owner_id: str) -> tuple[int, str] | None:
        if not isinstance(cursor, str) or len(cursor) > 512 or not _CURSOR_RE.match(cursor):
            return None
        try:
            payload = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            document = json.loads(payload)
        except (binascii.Error, ValueError):
            return None
        if base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii") != cursor:
            return None
        if not isinstance(document, dict) or set(document) != {"at", "id", "tag"}:
            return None
        at_ms, at_id, tag = document["at"], document["id"], document["tag"]
        if not isinstance(at_ms, int) or isinstance(at_ms, bool) or not isinstance(at_id, str) or not isinstance(tag, str):
            return None
        if canonical_json(document) != payload:
            return None
        if not hmac.compare_digest(tag, self._cursor_tag(owner_id, at_ms, at_id)):
            return None
        return at_ms, at_id
