"""The store gallery: deliberately broken task stores, one realistic bug each.

Each class is the reference ``GenericTaskStore`` over a fresh reference ``InMemoryBackend``
sharing the store's clock, changed only where its bug lives. ``violates`` names the SPEC.md
clause the bug breaks (TS, CC or SEC), and the one-line docstring describes the bug the way
the engineer who wrote it would recognise it. Every class is a ``--store`` factory:
``Cls(*, clock=None, config=None, security=None)``. The kit must fail every one of them,
naming that clause; ``GALLERY`` lists them in a stable order.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import replace
from typing import Any, ClassVar

import anyio

from conformance import (
    InvalidCursorError,
    NotReadyError,
    SecurityConfig,
    StoreConfig,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskPage,
    TaskRecord,
    TaskStatus,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
    VersionedRecord,
)
from conformance.contract.errors import NotFoundError
from conformance.contract.record import canonical_json
from conformance.contract.task_errors import shown
from conformance.taskstore.codec import decode_record, encode_record
from conformance.taskstore.generic import (
    KEY_ROOT,
    GenericTaskStore,
    owner_prefix,
    task_key,
)
from conformance.taskstore.values import (
    check_size,
    check_string,
    check_value,
    check_variables,
    merge_variables,
)
from reference_backend import InMemoryBackend

Clock = Callable[[], float]

#: What a well-formed task id looks like (uuid4 hex).
_TASK_ID = re.compile(r"[0-9a-f]{32}")


class _BrokenStore(GenericTaskStore):
    """Base of the gallery: the reference store over its own reference backend, plus the clause its bug breaks."""

    violates: ClassVar[str]
    #: For a race: the clause the race machines report it under (they must catch it too).
    races: ClassVar[str | None] = None
    #: Other clauses whose text states the same rule (a SEC clause is a BK or TS rule under attack):
    #: a first failure under one of them names the bug's rule too (benchmarks/detection.py).
    also: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, *, clock: Clock | None = None, config: StoreConfig | None = None, security: SecurityConfig | None = None
    ) -> None:
        super().__init__(InMemoryBackend(clock=clock), config=config, security=security, clock=clock)


class _VariablesBy(_BrokenStore):
    """The reference's set_variables with its validate, merge and measure steps as hooks for the bugs to change."""

    def _validate(self, variables: Any) -> None:
        check_variables(variables, self.config.max_depth, self.config.max_string_bytes)

    def _merge(self, current: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
        return merge_variables(current, incoming)

    def _measured(self, current: Mapping[str, Any], incoming: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        return merged

    def _check_size(self, measured: dict[str, Any]) -> None:
        check_size(measured, "variables", self.config.max_variable_bytes)

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        now = self._clock()
        self._check_owner(owner_id)
        self._validate(variables)
        key, record = await self._load(task_id, owner_id, now)
        self._check_mutable(record, "variables")
        merged = self._merge(record.variables, variables)
        self._check_size(self._measured(record.variables, variables, merged))
        updated = replace(record, variables=merged, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)


# --- Owners (TS-7) ------------------------------------------------------------------------


class ForeignTaskSaysOwned(_BrokenStore):
    """On a miss, searches every owner's tasks so another owner's task gets a clearer "belongs to another owner"."""

    violates = "TS-7"
    also = ('SEC-3',)  # the same rule, stated in SPEC.md under these clauses too

    async def _load(self, task_id: object, owner_id: str, now: float) -> tuple[str, TaskRecord]:
        try:
            return await super()._load(task_id, owner_id, now)
        except TaskExpiredError:
            raise
        except TaskNotFoundError:
            if not await self._held_elsewhere(task_id, owner_id):
                raise
        raise TaskNotFoundError(task_id, f"task {shown(task_id)} belongs to another owner")

    async def _held_elsewhere(self, task_id: object, owner_id: str) -> bool:
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            return False
        mine = owner_prefix(owner_id)
        listed = await self._call(self.backend.list_by_prefix, KEY_ROOT)
        return any(key.endswith("/" + task_id) and not key.startswith(mine) for key, _ in listed)


class SeedPrefixListing(_BrokenStore):
    """Selects an owner's tasks by the seed's task:{owner}: key prefix, so owner "a" also gets owner "a:b"'s tasks."""

    violates = "TS-7"
    also = ('SEC-3',)  # the same rule, stated in SPEC.md under these clauses too

    async def _scan(self, owner_id: str, now: float) -> list[tuple[TaskRecord, bool]]:
        prefix = f"task:{owner_id}:"
        found: list[tuple[TaskRecord, bool]] = []
        for _key, stored in await self._call(self.backend.list_by_prefix, KEY_ROOT):
            record, pending = self._decode(stored)
            if f"task:{record.owner_id}:{record.task_id}".startswith(prefix) and not record.is_expired(now):
                found.append((record, pending))
        return found


# --- TTL and quota (TS-5, TS-6) -------------------------------------------------------------


class TtlClamped(_BrokenStore):
    """A TTL over the maximum is quietly cut down to the maximum instead of refused, as most servers do."""

    violates = "TS-5"
    also = ('SEC-9',)  # the same rule, stated in SPEC.md under these clauses too

    def _resolve_ttl(self, ttl: object, *context: Any) -> int | None:
        maximum = self.config.max_ttl_ms
        if maximum is not None and isinstance(ttl, int) and not isinstance(ttl, bool) and ttl > maximum:
            return maximum
        return super()._resolve_ttl(ttl, *context)


class QuotaCountsExpired(_BrokenStore):
    """Counts the owner's records with one prefix listing, so expired tasks use up the quota until cleanup runs."""

    violates = "TS-6"

    async def _settled_count(self, owner_id: str, now: float) -> int:
        return len(await self._call(self.backend.list_by_prefix, owner_prefix(owner_id)))


class QuotaCheckThenCreate(_BrokenStore):
    """Checks the quota, then creates in another round trip with no reservation: racing creates all take the last slot."""

    violates = "CC-2"
    also = ('TS-6', 'SEC-9')  # the same rule, stated in SPEC.md under these clauses too
    races = "CC-2"

    async def _scan(self, owner_id: str, now: float) -> list[tuple[TaskRecord, bool]]:
        # Creates in flight are invisible to the count, so the recount after writing proves nothing.
        settled = [(record, pending) for record, pending in await super()._scan(owner_id, now) if not pending]
        await anyio.sleep(0)  # the count's round trip back; the create follows in another
        return settled


# --- Status machine (TS-8, TS-9, TS-14) -----------------------------------------------------


class ReopensCompleted(_BrokenStore):
    """Lets a completed task go back to working, so a server can retry a finished tool call."""

    violates = "TS-8"

    def _check_transition(self, record: TaskRecord, target: TaskStatus) -> None:
        if record.status is TaskStatus.COMPLETED and target is TaskStatus.WORKING:
            return
        super()._check_transition(record, target)


class CancelAlwaysWins(_BrokenStore):
    """cancel skips the transition check: cancelling a finished task simply marks it cancelled."""

    violates = "TS-9"

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        now = self._clock()
        self._check_owner(owner_id)
        key, record = await self._load(task_id, owner_id, now)
        updated = replace(record, status=TaskStatus.CANCELLED, status_message=None, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)


class CompleteWithAnyStatus(_BrokenStore):
    """complete_with_result takes any status, the seed's way: "complete" with working just stages the result."""

    violates = "TS-14"

    def _completion_status(self, status: object) -> TaskStatus:
        return self._status_argument(status)  # terminal or not


# --- Variables (TS-10, TS-11, TS-12, TS-20) -------------------------------------------------


class NullStoredAsValue(_VariablesBy):
    """Merges with {**old, **new}, so a None value is stored as null instead of deleting the variable."""

    violates = "TS-10"

    def _merge(self, current: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
        return {**current, **incoming}


class VariablesWritableAfterTerminal(_BrokenStore):
    """Only the result is frozen once a task is terminal; variables stay writable so post-processing can annotate it."""

    violates = "TS-10"

    def _check_mutable(self, record: TaskRecord, what: str) -> None:
        if what != "variables":
            super()._check_mutable(record, what)


class SizeOfIncomingMap(_VariablesBy):
    """Checks the size of the map passed in, not of the merged variables, so small writes grow a task without bound."""

    violates = "TS-12"
    also = ('SEC-6',)  # the same rule, stated in SPEC.md under these clauses too

    def _measured(self, current: Mapping[str, Any], incoming: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        return incoming


class StringLengthInCharacters(_VariablesBy):
    """Measures strings with len(), so the limit counts characters and a 4-byte emoji counts as one."""

    violates = "TS-11"
    also = ('SEC-6',)  # the same rule, stated in SPEC.md under these clauses too

    def _shape(self, value: Any, what: str) -> None:
        """Types, depth and surrogates as the reference checks them; the length is checked below."""
        check_value(value, what, self.config.max_depth, sys.maxsize)

    def _check_lengths(self, value: Any, what: str) -> None:
        limit = self.config.max_string_bytes
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                if len(item) > limit:
                    raise VariableValidationError(what, "string", f"a string of {len(item)} characters exceeds {limit}")
            elif isinstance(item, list):
                stack.extend(item)
            elif isinstance(item, dict):
                stack.extend(item)
                stack.extend(item.values())

    def _validate(self, variables: Any) -> None:
        check_variables(variables, self.config.max_depth, sys.maxsize)
        self._check_lengths(variables, "variables")

    def _check_result(self, result: Any) -> None:
        self._shape(result, "result")
        self._check_lengths(result, "result")
        check_size(result, "result", self.config.max_result_bytes)

    def _check_text(self, text: object, what: str, *, optional: bool) -> None:
        if text is None and optional:
            return
        if not isinstance(text, str):
            raise VariableValidationError(what, "type", "must be a string")
        check_string(text, what, sys.maxsize)
        self._check_lengths(text, what)


def _nesting(value: Any) -> int:
    """Containers deep, the obvious recursive way."""
    if isinstance(value, dict):
        return 1 + max(map(_nesting, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_nesting, value), default=0)
    return 0


class RecursiveDepthCheck(_VariablesBy):
    """Measures nesting with a recursive helper before validating, so a deeply nested value blows the stack."""

    violates = "TS-11"

    def _too_deep(self, value: Any, what: str) -> None:
        if _nesting(value) > self.config.max_depth:
            raise VariableValidationError(what, "depth", f"nesting deeper than {self.config.max_depth} levels")

    def _validate(self, variables: Any) -> None:
        if isinstance(variables, dict):
            for value in variables.values():
                self._too_deep(value, "variables")
        super()._validate(variables)

    def _check_result(self, result: Any) -> None:
        self._too_deep(result, "result")
        super()._check_result(result)


class SalvagesRefusedVariables(_BrokenStore):
    """When a map is refused, still stores the names that passed validation before re-raising (best effort)."""

    violates = "TS-20"

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        try:
            return await super().set_variables(task_id, owner_id, variables)
        except VariableValidationError:
            if isinstance(variables, dict):
                await self._salvage(task_id, owner_id, variables)
            raise

    async def _salvage(self, task_id: str, owner_id: str, variables: dict[Any, Any]) -> None:
        kept: dict[str, Any] = {}
        for name, value in variables.items():
            try:
                check_variables({name: value}, self.config.max_depth, self.config.max_string_bytes)
            except VariableValidationError:
                continue
            kept[name] = value
        if kept:
            try:
                await super().set_variables(task_id, owner_id, kept)
            except TaskError:
                pass


# --- Results (TS-13) ------------------------------------------------------------------------


class NullResultIsNoResult(_BrokenStore):
    """get_result tests "result is None", so a task whose result is null reads as having no result."""

    violates = "TS-13"

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        now = self._clock()
        self._check_owner(owner_id)
        _, record = await self._load(task_id, owner_id, now)
        if record.result is None:
            raise NotReadyError(task_id, record.status)
        return record.result


# --- Expiry (TS-15) -------------------------------------------------------------------------


class LateWorkerUpdatesExpired(_BrokenStore):
    """update_status skips the expiry check, so a worker finishing after the TTL can still record its outcome."""

    violates = "TS-15"

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None
    ) -> TaskRecord:
        now = self._clock()
        self._check_owner(owner_id)
        target = self._status_argument(status)
        self._check_text(status_message, "status message", optional=True)
        key, record = await self._load(task_id, owner_id, -math.inf)  # judged as of "never expired"
        self._check_transition(record, target)
        updated = replace(record, status=target, status_message=status_message, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)


# --- Listing (TS-16, TS-17) -----------------------------------------------------------------


class CursorOnCreatedAtOnly(_BrokenStore):
    """Resumes a listing after the cursor's createdAt alone, so tasks sharing that millisecond are skipped."""

    violates = "TS-16"

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        now = self._clock()
        self._check_owner(owner_id)
        size = self.config.default_page_size if limit is None else limit
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        after = None if cursor is None else self._read_cursor(owner_id, cursor)
        tasks = sorted(
            (r for r, pending in await self._scan(owner_id, now) if not pending),
            key=lambda r: (-round(r.created_at * 1000), r.task_id),
        )
        if after is not None:
            tasks = [r for r in tasks if -round(r.created_at * 1000) > after[0]]
        page = tuple(tasks[:size])
        more = len(tasks) > size
        return TaskPage(page, self._make_cursor(owner_id, page[-1]) if more else None)


class ForgedCursorRestarts(_BrokenStore):
    """A cursor that does not decode starts the listing again from the first page, the seed's way."""

    violates = "TS-17"

    def _read_cursor(self, owner_id: str, cursor: object) -> tuple[int, str] | None:  # type: ignore[override]
        try:
            return super()._read_cursor(owner_id, cursor)
        except InvalidCursorError:
            return None


# --- Security (SEC-3 .. SEC-9) --------------------------------------------------------------


class _KeyedByTaskId(_BrokenStore):
    """Keeps each task at tasks/<task id>, its owner only inside the record: the owner check on read is the only guard."""

    @staticmethod
    def _unowned(key: str) -> str:
        """The reference's ``tasks/<sha256(owner)>/<task id>`` without the owner: ``tasks/<task id>``."""
        return KEY_ROOT + key.rpartition("/")[2] if key.startswith(KEY_ROOT) else key

    async def _call(self, method: Callable[..., Any], *args: Any, passing: tuple[type[Exception], ...] = ()) -> Any:
        if args and isinstance(args[0], str):
            args = (self._unowned(args[0]), *args[1:])
        return await super()._call(method, *args, passing=passing)

    async def _discard(self, key: str) -> None:
        await super()._discard(self._unowned(key))

    async def _scan(self, owner_id: str, now: float) -> list[tuple[TaskRecord, bool]]:
        found: list[tuple[TaskRecord, bool]] = []
        for key, stored in await self._call(self.backend.list_by_prefix, KEY_ROOT):
            record, pending = self._decode(stored)
            if record.owner_id == owner_id and key == KEY_ROOT + record.task_id and not record.is_expired(now):
                found.append((record, pending))
        return found

    async def _by_id(self, task_id: object) -> tuple[str, TaskRecord]:
        """The task stored under this id, whoever owns it, expired or not; else what a missing task raises."""
        if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
            raise TaskNotFoundError(task_id)
        key = KEY_ROOT + task_id
        try:
            stored = await self._call(self.backend.get, key, passing=(NotFoundError,))
        except NotFoundError:
            stored = None  # raised below, outside the handler, so no backend error rides along as context
        if stored is None:
            raise TaskNotFoundError(task_id)
        record, pending = self._decode(stored)
        if pending or record.task_id != task_id:
            raise TaskNotFoundError(task_id)
        return key, record


class ForeignErrorChainsCause(_KeyedByTaskId):
    """On an owner mismatch raises TaskNotFoundError from a PermissionError, so the traceback keeps the real reason."""

    violates = "SEC-3"
    also = ('TS-7',)  # the same rule, stated in SPEC.md under these clauses too

    async def _load(self, task_id: object, owner_id: str, now: float) -> tuple[str, TaskRecord]:
        key, record = await self._by_id(task_id)
        if record.owner_id != owner_id:
            raise TaskNotFoundError(task_id) from PermissionError(f"task {shown(task_id)} belongs to another owner")
        if record.is_expired(now):
            raise TaskExpiredError(task_id)
        return key, record


class OwnerCheckedAfterWrite(_KeyedByTaskId):
    """Mutations load the task by id and compare-and-swap the change, and only then check that the caller owns it."""

    violates = "SEC-3"
    also = ('TS-7', 'TS-20')  # the same rule, stated in SPEC.md under these clauses too

    async def _load(self, task_id: object, owner_id: str, now: float) -> tuple[str, TaskRecord]:
        _, record = await self._by_id(task_id)
        if record.is_expired(now):
            raise TaskExpiredError(task_id)
        return task_key(owner_id, record.task_id), record  # the caller's key, checked against the record later

    @staticmethod
    def _check_holder(key: str, record: TaskRecord) -> None:
        if key != task_key(record.owner_id, record.task_id):
            raise TaskNotFoundError(record.task_id)

    async def _write(self, key: str, record: TaskRecord, expected_version: int) -> TaskRecord:
        written = await super()._write(key, record, expected_version)
        self._check_holder(key, written)
        return written

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        record = await super().get(task_id, owner_id)
        self._check_holder(task_key(owner_id, task_id), record)
        return record

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        await self.get(task_id, owner_id)
        return await super().get_result(task_id, owner_id)


class ForeignExpiredSaysExpired(_KeyedByTaskId):
    """Checks expiry before ownership, so anyone asking about an expired task is told it expired."""

    violates = "SEC-3"
    also = ('TS-7', 'TS-15')  # the same rule, stated in SPEC.md under these clauses too

    async def _load(self, task_id: object, owner_id: str, now: float) -> tuple[str, TaskRecord]:
        key, record = await self._by_id(task_id)
        if record.is_expired(now):
            raise TaskExpiredError(task_id)
        if record.owner_id != owner_id:
            raise TaskNotFoundError(task_id)
        return key, record


class QuotaByOwnerPrefix(_BrokenStore):
    """Counts an owner's tasks for the quota by the seed's task:{owner}: prefix, so tasks of "a:b" use up "a"'s quota."""

    violates = "SEC-4"
    also = ('TS-6',)  # the same rule, stated in SPEC.md under these clauses too

    #: Set while a create runs: both its counts (before and after writing) go by the prefix; listings do not.
    _counting: ClassVar[ContextVar[bool]] = ContextVar("counting", default=False)

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        token = self._counting.set(True)
        try:
            return await super().create(owner_id, request_method, ttl)
        finally:
            self._counting.reset(token)

    async def _scan(self, owner_id: str, now: float) -> list[tuple[TaskRecord, bool]]:
        if self._counting.get():
            return await SeedPrefixListing._scan(self, owner_id, now)  # type: ignore[arg-type]
        return await super()._scan(owner_id, now)


class ResultDepthUnchecked(_BrokenStore):
    """Checks a result's types and strings but not its depth: only variables get the depth limit."""

    violates = "SEC-5"
    also = ('TS-11',)  # the same rule, stated in SPEC.md under these clauses too

    def _check_result(self, result: Any) -> None:
        check_value(result, "result", sys.maxsize, self.config.max_string_bytes)
        check_size(result, "result", self.config.max_result_bytes)


class DepthLimitOffByOne(_VariablesBy):
    """The depth check compares with > where it meant >=, so values one level deeper than max_depth get through."""

    violates = "SEC-5"
    also = ('TS-11',)  # the same rule, stated in SPEC.md under these clauses too

    def _validate(self, variables: Any) -> None:
        check_variables(variables, self.config.max_depth + 1, self.config.max_string_bytes)

    def _check_result(self, result: Any) -> None:
        check_value(result, "result", self.config.max_depth + 1, self.config.max_string_bytes)
        check_size(result, "result", self.config.max_result_bytes)


class SizeMeasuredWithAsciiEscapes(_VariablesBy):
    """Measures the merged variables as len(json.dumps(merged)), so \\u escapes and ", " separators count too."""

    violates = "SEC-6"
    also = ('TS-12',)  # the same rule, stated in SPEC.md under these clauses too

    def _check_size(self, measured: dict[str, Any]) -> None:
        size, limit = len(json.dumps(measured)), self.config.max_variable_bytes
        if size > limit:
            raise VariableSizeExceededError("variables", limit, size)


class DeletionsCountedInSize(_VariablesBy):
    """Measures {**current, **incoming}, deletions still there as nulls, so a deletion meant to make room counts."""

    violates = "SEC-6"
    also = ('TS-12',)  # the same rule, stated in SPEC.md under these clauses too

    def _measured(self, current: Mapping[str, Any], incoming: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        return {**current, **incoming}


#: The stored record's own top-level fields; in the flat layout every other attribute is a variable.
_RECORD_FIELDS = ("format", "expiresAt", "ownerId", "requestMethod", "task", "pending", "result")


class VariablesSpreadIntoRecord(_BrokenStore):
    """Stores each variable as a top-level attribute of the task's document (one item per task, DynamoDB style)."""

    violates = "SEC-7"

    def _encode(self, record: TaskRecord, *, pending: bool = False) -> tuple[bytes, TaskRecord]:
        document = json.loads(encode_record(record, pending=pending))
        document.update(document.pop("variables"))  # after the task's own fields
        data = canonical_json(document)
        return data, self._decode(VersionedRecord(data, record.version))[0]

    def _decode(self, stored: object) -> tuple[TaskRecord, bool]:
        if isinstance(stored, VersionedRecord) and isinstance(stored.data, bytes):
            document = json.loads(stored.data)
            fields = {name: document.pop(name) for name in _RECORD_FIELDS if name in document}
            stored = replace(stored, data=canonical_json({**fields, "variables": document}))
        return super()._decode(stored)


def _compact(value: Any) -> Any:
    """``value`` with every float cut to 12 significant digits."""
    if isinstance(value, float):
        return float(format(value, ".12g"))
    if isinstance(value, list):
        return [_compact(item) for item in value]
    if isinstance(value, dict):
        return {name: _compact(item) for name, item in value.items()}
    return value


class CompactFloats(_BrokenStore):
    """Writes floats with 12 significant digits ("%.12g") to keep records small."""

    violates = "SEC-8"

    def _encode(self, record: TaskRecord, *, pending: bool = False) -> tuple[bytes, TaskRecord]:
        compact = replace(record, variables=_compact(record.variables), result=_compact(record.result))
        return super()._encode(compact, pending=pending)


class ValidatesByDumping(_VariablesBy):
    """Decides whether a value is JSON by trying json.dumps on it, after checking its depth and strings."""

    violates = "SEC-8"
    also = ('TS-11',)  # the same rule, stated in SPEC.md under these clauses too

    def _check_json(self, value: Any, what: str) -> None:
        limit = self.config.max_depth
        stack = [(value, 0)]
        while stack:
            item, depth = stack.pop()
            if isinstance(item, str):
                check_string(item, what, self.config.max_string_bytes)
            elif isinstance(item, (list, tuple, dict)):
                if depth + 1 > limit:
                    raise VariableValidationError(what, "depth", f"nesting deeper than {limit} levels")
                children = [*item, *item.values()] if isinstance(item, dict) else item
                stack.extend((child, depth + 1) for child in children)
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise VariableValidationError(what, "type", f"not JSON: {exc}") from None

    def _validate(self, variables: Any) -> None:
        names_only = dict.fromkeys(variables) if isinstance(variables, dict) else variables
        check_variables(names_only, self.config.max_depth, self.config.max_string_bytes)  # the map and its names
        for value in variables.values():
            self._check_json(value, "variables")

    def _check_result(self, result: Any) -> None:
        self._check_json(result, "result")
        check_size(result, "result", self.config.max_result_bytes)


class TtlCheckedInSeconds(_BrokenStore):
    """Compares the requested TTL with the maximum in whole seconds (ttl // 1000 > max_ttl_ms // 1000)."""

    violates = "SEC-9"
    also = ('TS-5',)  # the same rule, stated in SPEC.md under these clauses too

    def _resolve_ttl(self, ttl: object, now: float) -> int | None:
        maximum = self.config.max_ttl_ms
        if maximum is not None and isinstance(ttl, int) and not isinstance(ttl, bool) and maximum < ttl and ttl // 1000 <= maximum // 1000:
            super()._resolve_ttl(maximum, now)  # every other check, on the maximum the seconds comparison lets it pass as
            return ttl
        return super()._resolve_ttl(ttl, now)


# --- Misses found by measuring the kit from outside (issue 13) -----------------------------


class CreatedAtFromWallClock(_BrokenStore):
    """Stamps a new task's times from the wall clock instead of the clock it was given."""

    violates = "TS-4"

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        given = self._clock
        self._clock = time.time
        try:
            return await super().create(owner_id, request_method, ttl)
        finally:
            self._clock = given


class CreateWritesBeforeTtlRefusal(_BrokenStore):
    """Writes the new task first and checks its TTL afterwards, leaving the task behind when it refuses."""

    violates = "TS-5"
    also = ("TS-20",)  # the same rule, stated in SPEC.md under these clauses too

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        try:
            self._resolve_ttl(ttl, self._clock())
        except TtlExceededError:
            await super().create(owner_id, request_method, None)  # written with the default TTL...
            raise  # ...and then refused
        return await super().create(owner_id, request_method, ttl)


class GetResultNeverReady(_BrokenStore):
    """Answers get_result with NotReadyError whatever the task holds, finished or not."""

    violates = "TS-13"

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        task = await self.get(task_id, owner_id)
        raise NotReadyError(task_id, task.status)


class LastPageLosesItsCursor(_BrokenStore):
    """Offers a next cursor only while more than one task follows the page, so a lone last task is never listed."""

    violates = "TS-16"

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        page = await super().list(owner_id, cursor, limit)
        if page.next_cursor is None:
            return page
        following = await super().list(owner_id, page.next_cursor, limit)
        return page if len(following.tasks) > 1 else TaskPage(page.tasks, None)


class CleanupAtTheExpiryInstant(_BrokenStore):
    """Sweeps expired tasks itself, counting a task as expired at its expiresAt instant (the boundary is exclusive)."""

    violates = "TS-22"
    also = ("TS-15",)  # the same rule, stated in SPEC.md under these clauses too

    async def cleanup_expired(self) -> int:
        now = self._clock()
        removed = 0
        for key, stored in await self.backend.list_by_prefix(KEY_ROOT):
            record, _pending = decode_record(stored.data, stored.version)
            if record.expires_at is not None and now >= record.expires_at and await self.backend.delete(key):
                removed += 1
        return removed


GALLERY: list[type[_BrokenStore]] = [
    ForeignTaskSaysOwned,
    SeedPrefixListing,
    TtlClamped,
    QuotaCountsExpired,
    QuotaCheckThenCreate,
    ReopensCompleted,
    CancelAlwaysWins,
    CompleteWithAnyStatus,
    NullStoredAsValue,
    VariablesWritableAfterTerminal,
    SizeOfIncomingMap,
    StringLengthInCharacters,
    RecursiveDepthCheck,
    SalvagesRefusedVariables,
    NullResultIsNoResult,
    LateWorkerUpdatesExpired,
    CursorOnCreatedAtOnly,
    ForgedCursorRestarts,
    ForeignErrorChainsCause,
    OwnerCheckedAfterWrite,
    ForeignExpiredSaysExpired,
    QuotaByOwnerPrefix,
    ResultDepthUnchecked,
    DepthLimitOffByOne,
    SizeMeasuredWithAsciiEscapes,
    DeletionsCountedInSize,
    VariablesSpreadIntoRecord,
    CompactFloats,
    ValidatesByDumping,
    TtlCheckedInSeconds,
    CreatedAtFromWallClock,
    CreateWritesBeforeTtlRefusal,
    GetResultNeverReady,
    LastPageLosesItsCursor,
    CleanupAtTheExpiryInstant,
]
