"""The store gallery: deliberately broken task stores, one realistic bug each.

Each class is the reference ``GenericTaskStore`` over a fresh reference ``InMemoryBackend``
sharing the store's clock, changed only where its bug lives. ``violates`` names the TS
clause the bug breaks, and the one-line docstring describes the bug the way the engineer
who wrote it would recognise it. Every class is a ``--store`` factory:
``Cls(*, clock=None, config=None, security=None)``. The kit must fail every one of them,
naming that clause; ``GALLERY`` lists them in a stable order.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable, Mapping
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
    VariableValidationError,
)
from conformance.contract.task_errors import shown
from conformance.contract.task_schema import check_size, check_string, check_value, check_variables, merge_variables
from reference_backend import GenericTaskStore, InMemoryBackend
from reference_backend.store import KEY_ROOT, owner_prefix

Clock = Callable[[], float]

#: What a well-formed task id looks like (uuid4 hex).
_TASK_ID = re.compile(r"[0-9a-f]{32}")


class _BrokenStore(GenericTaskStore):
    """Base of the gallery: the reference store over its own reference backend, plus the clause its bug breaks."""

    violates: ClassVar[str]
    #: For a race: the clause the race machines report it under (they must catch it too).
    races: ClassVar[str | None] = None

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

    def _measured(self, incoming: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        return merged

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        now = self._clock()
        self._check_owner(owner_id)
        self._validate(variables)
        key, record = await self._load(task_id, owner_id, now)
        self._check_mutable(record, "variables")
        merged = self._merge(record.variables, variables)
        check_size(self._measured(variables, merged), "variables", self.config.max_variable_bytes)
        updated = replace(record, variables=merged, last_updated_at=self._stamp(now))
        return await self._write(key, updated, record.version)


# --- Owners (TS-7) ------------------------------------------------------------------------


class ForeignTaskSaysOwned(_BrokenStore):
    """On a miss, searches every owner's tasks so another owner's task gets a clearer "belongs to another owner"."""

    violates = "TS-7"

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

    def _measured(self, incoming: dict[str, Any], merged: dict[str, Any]) -> dict[str, Any]:
        return incoming


class StringLengthInCharacters(_VariablesBy):
    """Measures strings with len(), so the limit counts characters and a 4-byte emoji counts as one."""

    violates = "TS-11"

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
]
