"""Fast direct tests of GenericTaskStore and the TaskStore model (draft SPEC section TS).

Each test drives the store on asyncio through ``anyio.run``, over the reference
InMemoryBackend (or a small double defined here) with a FakeClock shared by store and
backend, so expiry is tested to the millisecond without sleeping. The last tests drive
random operation sequences through the store and the pure model and compare every outcome.
"""

from __future__ import annotations

import base64
import inspect
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.checks.task_store import OWNER
from conformance.contract.backend import StorageBackend, VersionedRecord
from conformance.contract.capabilities import ExpiredRecords
from conformance.contract.errors import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    VersionConflictError,
)
from conformance.contract.record import (
    canonical_json,
    format_timestamp,
    validate_envelope,
)
from conformance.contract.store import (
    STORE_METHODS,
    SecurityConfig,
    StoreConfig,
    TaskStore,
)
from conformance.contract.task import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    TaskPage,
    TaskRecord,
    TaskStatus,
)
from conformance.contract.task_errors import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    TASK_ERRORS,
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
    VariableSizeExceededError,
    VariableValidationError,
)
from conformance.contract.task_schema import TASK_WIRE_SCHEMA, validate_task_wire
from conformance.harness.clock import FakeClock
from conformance.models.tasks import (
    Cancel,
    CleanupExpired,
    CompleteWithResult,
    Create,
    ForgedCursor,
    Get,
    GetResult,
    IssuedCursor,
    ListTasks,
    SetResult,
    SetVariables,
    TaskModel,
    TaskOperation,
    UpdateStatus,
    cursor_after,
    observe,
)
from conformance.strategies.tasks import (
    NEVER_ISSUED,
    SMALL_LIMITS,
    request_methods,
    small_values,
    status_messages,
    statuses,
    ttls,
    variable_maps,
)
from conformance.taskstore import (
    TASK_RECORD_SCHEMA,
    GenericTaskStore,
    decode_record,
    load_record_document,
    owner_prefix,
    task_key,
)
from conformance.taskstore.codec import copy_json
from reference_backend.memory import InMemoryBackend
from testbed.backends.correct import HidingBackend

OTHER = "bob"
SECRET_OWNER = "owner-7f3a-secret"


# ---------------------------------------------------------------- doubles and helpers


class Wrapper:
    """Delegates to a backend, recording calls; ``pause`` yields to the loop around each call."""

    def __init__(self, inner: Any, pause: bool = False) -> None:
        self.inner = inner
        self.pause = pause
        self.calls: list[str] = []
        self.fail: dict[str, BaseException | Callable[[], Any]] = {}

    def _method(name: str) -> Callable[..., Awaitable[Any]]:  # type: ignore[misc]
        async def call(self: Wrapper, *args: Any) -> Any:
            self.calls.append(name)
            if self.pause:
                await anyio.sleep(0)
            planted = self.fail.get(name)
            if isinstance(planted, BaseException):
                raise planted
            if planted is not None:
                return planted()
            result = await getattr(self.inner, name)(*args)
            if self.pause:
                await anyio.sleep(0)
            return result

        call.__name__ = name
        return call

    get = _method("get")
    put = _method("put")
    put_if_version = _method("put_if_version")
    delete = _method("delete")
    list_by_prefix = _method("list_by_prefix")
    cleanup_expired = _method("cleanup_expired")


def make(
    config: StoreConfig | None = None,
    security: SecurityConfig | None = None,
    backend: Any = None,
    clock: FakeClock | None = None,
) -> tuple[GenericTaskStore, Any, FakeClock]:
    clock = clock or FakeClock()
    backend = backend if backend is not None else InMemoryBackend(clock=clock)
    return GenericTaskStore(backend, config=config, security=security, clock=clock), backend, clock


def run(fn: Callable[[], Awaitable[Any]]) -> Any:
    return anyio.run(fn, backend="asyncio")


async def snapshot(backend: Any) -> dict[str, tuple[bytes, int]]:
    return {k: (r.data, r.version) for k, r in await backend.list_by_prefix("")}


async def raises(error: type[BaseException], awaitable: Awaitable[Any]) -> BaseException:
    try:
        await awaitable
    except error as exc:
        return exc
    raise AssertionError(f"expected {error.__name__}")


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


async def in_status(store: GenericTaskStore, status: TaskStatus, owner: str = OWNER) -> TaskRecord:
    task = await store.create(owner, "tools/call")
    if status is TaskStatus.WORKING:
        return task
    return await store.update_status(task.task_id, owner, status)


# ---------------------------------------------------------------- TS-1: the API and its defaults


def test_store_satisfies_protocol() -> None:
    store, backend, _ = make()
    assert isinstance(store, TaskStore)
    protocol_methods = {n for n, v in vars(TaskStore).items() if inspect.iscoroutinefunction(v)}
    assert protocol_methods == set(STORE_METHODS) and len(STORE_METHODS) == 10
    assert all(inspect.iscoroutinefunction(getattr(store, name)) for name in STORE_METHODS)
    assert isinstance(backend, StorageBackend)
    assert isinstance(store.config, StoreConfig)
    assert isinstance(HidingBackend(FakeClock()), StorageBackend)


def test_config_defaults_follow_the_seeds() -> None:
    config, security = StoreConfig(), SecurityConfig()
    assert config.max_variable_bytes == 1_048_576
    assert config.max_result_bytes == 1_048_576
    assert config.default_ttl_ms == 3_600_000
    assert config.max_ttl_ms == 86_400_000
    assert config.max_depth == 10
    assert config.max_string_bytes == 65_536
    assert config.max_tasks_per_owner == 100
    assert config.default_page_size == 50
    assert config.poll_interval_ms == 500
    assert security.allow_anonymous is False
    assert security.anonymous_owner_ids == frozenset({"", "local"})
    with pytest.raises(ValueError):
        StoreConfig(max_depth=0)
    with pytest.raises(ValueError):
        StoreConfig(default_ttl_ms=10, max_ttl_ms=5)


# ---------------------------------------------------------------- TS-2: errors and their codes


def test_error_codes() -> None:
    invalid = {
        TaskNotFoundError,
        TaskExpiredError,
        InvalidTransitionError,
        NotReadyError,
        VariableSizeExceededError,
        VariableValidationError,
        TtlExceededError,
        AnonymousAccessError,
        InvalidCursorError,
    }
    internal = {ConcurrentModificationError, ResourceExhaustedError, StorageFullError, TaskStoreError}
    assert invalid | internal == set(TASK_ERRORS)
    for cls in TASK_ERRORS:
        assert issubclass(cls, TaskError)
        assert cls.code == (INVALID_PARAMS if cls in invalid else INTERNAL_ERROR), cls
    assert issubclass(TaskExpiredError, TaskNotFoundError)
    err = ConcurrentModificationError("t", 3, 4)
    assert (err.expected_version, err.actual_version) == (3, 4)
    size = VariableSizeExceededError("variables", 10, 11)
    assert (size.limit_bytes, size.actual_bytes) == (10, 11)


def test_error_messages_never_name_the_owner() -> None:
    config = StoreConfig(max_tasks_per_owner=1, max_variable_bytes=20, max_depth=1, max_string_bytes=8, default_ttl_ms=1000, max_ttl_ms=1000)

    async def body() -> None:
        store, backend, clock = make(config)
        task = await store.create(SECRET_OWNER, "m")
        errors: list[BaseException] = [
            await raises(ResourceExhaustedError, store.create(SECRET_OWNER, "m")),
            await raises(TtlExceededError, store.create(SECRET_OWNER, "m", ttl=5000)),
            await raises(VariableSizeExceededError, store.set_variables(task.task_id, SECRET_OWNER, {"a": "x" * 8, "b": "y" * 8})),
            await raises(VariableValidationError, store.set_variables(task.task_id, SECRET_OWNER, {"a": [[1]]})),
            await raises(NotReadyError, store.get_result(task.task_id, SECRET_OWNER)),
            await raises(InvalidCursorError, store.list(SECRET_OWNER, cursor="bogus")),
            await raises(TaskNotFoundError, store.get(task.task_id, OTHER)),
            await raises(AnonymousAccessError, store.get(task.task_id, "")),
        ]
        await store.cancel(task.task_id, SECRET_OWNER)
        errors.append(await raises(InvalidTransitionError, store.cancel(task.task_id, SECRET_OWNER)))
        clock.advance(2)
        errors.append(await raises(TaskExpiredError, store.get(task.task_id, SECRET_OWNER)))
        for error in errors:
            assert SECRET_OWNER not in str(error), error
            assert "owner-7f3a" not in repr(error.args), error

    run(body)


# ---------------------------------------------------------------- TS-3: anonymous owners


def test_anonymous_owners_are_refused() -> None:
    async def body() -> None:
        inner = InMemoryBackend(clock=FakeClock())
        spy = Wrapper(inner)
        store, _, _ = make(backend=spy)
        some_id = uuid.uuid4().hex
        for owner in ("", "local"):
            calls: list[Awaitable[Any]] = [
                store.create(owner, "m"),
                store.get(some_id, owner),
                store.update_status(some_id, owner, TaskStatus.COMPLETED),
                store.set_variables(some_id, owner, {"a": 1}),
                store.set_result(some_id, owner, 1),
                store.get_result(some_id, owner),
                store.complete_with_result(some_id, owner, TaskStatus.COMPLETED, None, 1),
                store.list(owner),
                store.cancel(some_id, owner),
            ]
            for call in calls:
                error = await raises(AnonymousAccessError, call)
                assert error.code == INVALID_PARAMS
        assert spy.calls == [], "refused before the backend is touched"

        allowed, _, _ = make(security=SecurityConfig(allow_anonymous=True))
        task = await allowed.create("local", "m")
        assert (await allowed.get(task.task_id, "local")).owner_id == "local"
        assert (await allowed.list("")).tasks == ()

    run(body)


def test_unusable_owner_ids_are_refused() -> None:
    async def body() -> None:
        store, _, _ = make(security=SecurityConfig(allow_anonymous=True))
        for owner in (None, 42, "\ud800", "x" * 1025, "é" * 513):
            await raises(AnonymousAccessError, store.create(owner, "m"))  # type: ignore[arg-type]
        await store.create("é" * 512, "m")
        assert SecurityConfig().max_owner_id_bytes == 1024

    run(body)


# ---------------------------------------------------------------- TS-4: create


def test_create_starts_working_with_fresh_ids() -> None:
    async def body() -> None:
        store, backend, clock = make()
        first = await store.create(OWNER, "tools/call")
        assert first.status is TaskStatus.WORKING and first.status_message is None
        assert re.fullmatch(r"[0-9a-f]{32}", first.task_id)
        assert uuid.UUID(first.task_id).version == 4
        assert first.created_at == first.last_updated_at == round(clock() * 1000) / 1000
        assert first.ttl == 3_600_000 and first.poll_interval == 500
        assert first.expires_at == first.created_at + 3600
        assert first.variables == {} and not first.has_result
        assert first.owner_id == OWNER and first.request_method == "tools/call"
        assert first.version == 2, "a pending write, then the confirming compare-and-swap"
        wire = first.to_wire()
        validate_task_wire(wire)
        assert wire == {
            "taskId": first.task_id,
            "status": "working",
            "createdAt": format_timestamp(first.created_at),
            "lastUpdatedAt": format_timestamp(first.created_at),
            "ttl": 3_600_000,
            "pollInterval": 500,
        }
        assert await store.get(first.task_id, OWNER) == first
        ids = {first.task_id} | {(await store.create(OWNER, "m")).task_id for _ in range(40)}
        assert len(ids) == 41
        # A wall clock between milliseconds: times are rounded to the millisecond the record keeps.
        odd = GenericTaskStore(InMemoryBackend(clock=lambda: 1_800_000_000.1236), clock=lambda: 1_800_000_000.1236)
        task = await odd.create(OWNER, "m")
        assert task.created_at == task.last_updated_at == 1_800_000_000.124
        assert await odd.get(task.task_id, OWNER) == task

    run(body)


def test_create_refuses_bad_request_method() -> None:
    async def body() -> None:
        store, backend, _ = make(StoreConfig(max_string_bytes=8))
        await raises(VariableValidationError, store.create(OWNER, None))  # type: ignore[arg-type]
        await raises(VariableValidationError, store.create(OWNER, "é" * 5))
        await raises(VariableValidationError, store.create(OWNER, "\udc00"))
        assert await snapshot(backend) == {}
        await store.create(OWNER, "é" * 4)

    run(body)


def test_every_mutation_updates_last_updated_at() -> None:
    async def body() -> None:
        store, _, clock = make()
        task = await store.create(OWNER, "m")
        steps: list[Callable[[str], Awaitable[TaskRecord]]] = [
            lambda t: store.update_status(t, OWNER, TaskStatus.WORKING, "step"),
            lambda t: store.set_variables(t, OWNER, {"a": 1}),
            lambda t: store.set_result(t, OWNER, {"partial": True}),
            lambda t: store.cancel(t, OWNER),
        ]
        version = task.version
        for step in steps:
            clock.advance(1.5)
            updated = await step(task.task_id)
            assert updated.last_updated_at == clock()
            assert updated.created_at == task.created_at
            assert updated.version == version + 1
            version = updated.version

    run(body)


# ---------------------------------------------------------------- TS-5: TTL


def test_ttl_default_and_maximum() -> None:
    async def body() -> None:
        store, backend, _ = make()
        assert (await store.create(OWNER, "m")).ttl == 3_600_000
        top = await store.create(OWNER, "m", ttl=86_400_000)
        assert top.ttl == 86_400_000 and top.to_wire()["ttl"] == 86_400_000
        assert (await store.create(OWNER, "m", ttl=1)).ttl == 1
        before = await snapshot(backend)
        for bad in (86_400_001, 0, -5, 1.5, True, "1000", 10**30):
            error = await raises(TtlExceededError, store.create(OWNER, "m", ttl=bad))  # type: ignore[arg-type]
            assert error.max_ms == 86_400_000 and error.requested_ms == bad
        assert await snapshot(backend) == before, "refused, never clamped and never written"

        unlimited, _, clock = make(StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
        forever = await unlimited.create(OWNER, "m")
        assert forever.ttl is None and forever.expires_at is None and forever.to_wire()["ttl"] is None
        clock.advance(10**7)
        assert (await unlimited.get(forever.task_id, OWNER)).task_id == forever.task_id

    run(body)


# ---------------------------------------------------------------- TS-6: quota


def test_quota_counts_live_tasks() -> None:
    async def body() -> None:
        store, backend, clock = make(StoreConfig(max_tasks_per_owner=3, default_ttl_ms=1000, max_ttl_ms=10_000))
        short = await store.create(OWNER, "m")
        done = await store.create(OWNER, "m", ttl=10_000)
        await store.complete_with_result(done.task_id, OWNER, TaskStatus.COMPLETED, None, 1)
        await store.create(OWNER, "m", ttl=10_000)
        before = await snapshot(backend)
        error = await raises(ResourceExhaustedError, store.create(OWNER, "m"))
        assert error.limit == 3 and error.code == INTERNAL_ERROR
        assert await snapshot(backend) == before, "terminal tasks count; the refusal wrote nothing"
        await store.create(OTHER, "m")  # quotas are per owner
        clock.advance(1.001)  # ``short`` expires: it no longer counts
        assert (await store.get(done.task_id, OWNER)).status is TaskStatus.COMPLETED
        await raises(TaskExpiredError, store.get(short.task_id, OWNER))
        await store.create(OWNER, "m")
        await raises(ResourceExhaustedError, store.create(OWNER, "m"))

    run(body)


def test_concurrent_creates_never_exceed_quota() -> None:
    async def body() -> None:
        clock = FakeClock()
        backend = Wrapper(InMemoryBackend(clock=clock), pause=True)
        store, _, _ = make(StoreConfig(max_tasks_per_owner=3), backend=backend, clock=clock)
        await store.create(OWNER, "m")
        outcomes: list[object] = []
        pages: list[int] = []

        async def create() -> None:
            try:
                outcomes.append(await store.create(OWNER, "m"))
            except (ResourceExhaustedError, ConcurrentModificationError) as exc:
                outcomes.append(exc)

        async def watch() -> None:
            for _ in range(30):
                pages.append(len((await store.list(OWNER)).tasks))

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(create)
            group.start_soon(watch)
        created = [o for o in outcomes if isinstance(o, TaskRecord)]
        listed = (await store.list(OWNER)).tasks
        assert 1 + len(created) <= 3 and len(listed) == 1 + len(created)
        assert {t.task_id for t in listed} >= {t.task_id for t in created}
        assert max(pages) <= 3, "pending creates are never listed"
        assert len(await snapshot(backend.inner)) == len(listed), "refused creates removed their pending record"
        lost = [o for o in outcomes if isinstance(o, ConcurrentModificationError)]
        assert all(o.expected_version is None and o.code == INTERNAL_ERROR for o in lost)
        if len(listed) < 3:
            assert lost, "with a slot free, a refusal is a lost race (retryable), not a full quota"
        for _ in range(3 - len(listed)):  # retried one at a time, the free slots are taken
            await store.create(OWNER, "m")
        await raises(ResourceExhaustedError, store.create(OWNER, "m"))
        assert len((await store.list(OWNER)).tasks) == 3

    run(body)


# ---------------------------------------------------------------- TS-7: owner isolation


HOSTILE_OWNERS = ["a", "a:b", "a:", "a/b", "a/", "A", "a ", "a\x00b", "ä", "a%2Fb", "tasks/", "*", "a" * 300]


def test_owner_keys_cannot_collide() -> None:
    async def body() -> None:
        store, backend, _ = make()
        mine: dict[str, str] = {}
        for owner in HOSTILE_OWNERS:
            mine[owner] = (await store.create(owner, "m")).task_id
        prefixes = {owner: owner_prefix(owner) for owner in HOSTILE_OWNERS}
        assert len(set(prefixes.values())) == len(HOSTILE_OWNERS)
        for owner, prefix in prefixes.items():
            assert re.fullmatch(r"tasks/[0-9a-f]{64}/", prefix)
            others = [p for o, p in prefixes.items() if o != owner]
            assert not any(other.startswith(prefix) or prefix.startswith(other) for other in others)
            page = await store.list(owner)
            assert [t.task_id for t in page.tasks] == [mine[owner]]
            assert len(task_key(owner, mine[owner]).encode()) <= 1024

    run(body)


def test_other_owner_task_is_not_found_identically() -> None:
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m")
        missing = uuid.uuid4().hex
        before = await snapshot(backend)

        def calls(task_id: str) -> list[Awaitable[Any]]:
            return [
                store.get(task_id, OTHER),
                store.update_status(task_id, OTHER, TaskStatus.COMPLETED),
                store.set_variables(task_id, OTHER, {"a": 1}),
                store.set_result(task_id, OTHER, 1),
                store.get_result(task_id, OTHER),
                store.complete_with_result(task_id, OTHER, TaskStatus.FAILED, None, None),
                store.cancel(task_id, OTHER),
            ]

        for theirs, absent in zip(calls(task.task_id), calls(missing)):
            a = await raises(TaskNotFoundError, theirs)
            b = await raises(TaskNotFoundError, absent)
            assert type(a) is type(b) is TaskNotFoundError
            assert str(a) == str(b).replace(missing, task.task_id)
            assert (a.__cause__, a.__context__, b.__cause__, b.__context__) == (None, None, None, None)
        for junk in ("", "../x", "A" * 32, 7, None):
            await raises(TaskNotFoundError, store.get(junk, OWNER))  # type: ignore[arg-type]
        assert await snapshot(backend) == before
        assert (await store.list(OTHER)).tasks == ()

    run(body)


def test_defense_in_depth_owner_check() -> None:
    async def body() -> None:
        store, backend, _ = make()
        theirs = await store.create(OTHER, "m")
        data = (await backend.get(task_key(OTHER, theirs.task_id))).data
        # A record of bob's planted under alice's prefix (a buggy migration, a hash collision):
        await backend.put(task_key(OWNER, theirs.task_id), data)
        await raises(TaskNotFoundError, store.get(theirs.task_id, OWNER))
        await raises(TaskNotFoundError, store.cancel(theirs.task_id, OWNER))
        assert (await store.list(OWNER)).tasks == ()
        await store.create(OWNER, "m")
        assert len((await store.list(OWNER)).tasks) == 1
        # A record whose id does not match its key is not that task either.
        mine = await store.create(OWNER, "m")
        other_id = uuid.uuid4().hex
        await backend.put(task_key(OWNER, other_id), (await backend.get(task_key(OWNER, mine.task_id))).data)
        await raises(TaskNotFoundError, store.get(other_id, OWNER))
        assert other_id not in {t.task_id for t in (await store.list(OWNER)).tasks}

    run(body)


# ---------------------------------------------------------------- TS-8 and TS-9: statuses


@pytest.mark.parametrize("start", list(TaskStatus))
def test_status_transitions_follow_mcp(start: TaskStatus) -> None:
    async def body() -> None:
        store, backend, _ = make()
        for target in TaskStatus:
            task = await in_status(store, start)
            before = await snapshot(backend)
            if target in TRANSITIONS[start]:
                updated = await store.update_status(task.task_id, OWNER, target, "note")
                assert updated.status is target and updated.status_message == "note"
            else:
                error = await raises(InvalidTransitionError, store.update_status(task.task_id, OWNER, target))
                assert (error.current, error.requested) == (start, target)
                assert await snapshot(backend) == before
        allowed = {s for s in TaskStatus if s in TRANSITIONS[start]}
        if start.is_terminal:
            assert allowed == set()
        else:
            assert allowed == set(TaskStatus), "every move from a live status, itself included (a refresh)"

    run(body)


def test_status_message_replaces_and_strings_are_accepted() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        task = await store.update_status(task.task_id, OWNER, "input_required", "need a date")  # type: ignore[arg-type]
        assert task.status is TaskStatus.INPUT_REQUIRED and task.status_message == "need a date"
        assert task.to_wire()["statusMessage"] == "need a date"
        task = await store.update_status(task.task_id, OWNER, TaskStatus.WORKING)
        assert task.status_message is None and "statusMessage" not in task.to_wire()
        for bad in ("finished", 3, None):
            error = await raises(InvalidTransitionError, store.update_status(task.task_id, OWNER, bad))  # type: ignore[arg-type]
            assert error.code == INVALID_PARAMS
        await raises(VariableValidationError, store.update_status(task.task_id, OWNER, TaskStatus.WORKING, 5))  # type: ignore[arg-type]

    run(body)


def test_cancel() -> None:
    async def body() -> None:
        store, backend, _ = make()
        for start in (TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED):
            task = await in_status(store, start)
            task = await store.update_status(task.task_id, OWNER, start, "busy")
            cancelled = await store.cancel(task.task_id, OWNER)
            assert cancelled.status is TaskStatus.CANCELLED and cancelled.status_message is None
        for terminal in TERMINAL_STATUSES:
            task = await in_status(store, terminal)
            before = await snapshot(backend)
            error = await raises(InvalidTransitionError, store.cancel(task.task_id, OWNER))
            assert error.code == INVALID_PARAMS and error.current is terminal
            assert await snapshot(backend) == before
            assert (await store.get(task.task_id, OWNER)).status is terminal

    run(body)


# ---------------------------------------------------------------- TS-10: variables


def test_variables_merge_and_null_deletes() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        task = await store.set_variables(task.task_id, OWNER, {"a": 1, "b": {"x": [1, None]}, "c": "keep"})
        task = await store.set_variables(task.task_id, OWNER, {"a": None, "b": {"y": 2}, "missing": None, "d": False})
        assert task.variables == {"b": {"y": 2}, "c": "keep", "d": False}, "top-level replace, nested null is a value"
        assert (await store.get(task.task_id, OWNER)).variables == task.variables
        same = await store.set_variables(task.task_id, OWNER, {})
        assert same.variables == task.variables and same.version == task.version + 1

    run(body)


@pytest.mark.parametrize("terminal", sorted(TERMINAL_STATUSES, key=lambda s: s.value))
def test_variables_and_result_are_frozen_after_terminal(terminal: TaskStatus) -> None:
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m")
        await store.set_variables(task.task_id, OWNER, {"a": 1})
        await store.complete_with_result(task.task_id, OWNER, terminal, None, "final")
        before = await snapshot(backend)
        await raises(InvalidTransitionError, store.set_variables(task.task_id, OWNER, {"a": 2}))
        await raises(InvalidTransitionError, store.set_variables(task.task_id, OWNER, {"a": None}))
        await raises(InvalidTransitionError, store.set_result(task.task_id, OWNER, "other"))
        await raises(
            InvalidTransitionError, store.complete_with_result(task.task_id, OWNER, terminal, None, "again")
        )
        assert await snapshot(backend) == before
        assert await store.get_result(task.task_id, OWNER) == "final"

    run(body)


# ---------------------------------------------------------------- TS-11: value validation


def test_value_depth_convention() -> None:
    async def body() -> None:
        store, _, _ = make(StoreConfig(max_depth=3))
        task = await store.create(OWNER, "m")
        for ok in (5, "s", None, [], {}, nested(3), nested(3, kind="dict"), [{"k": [0]}], {"a": {"b": {"c": 1}}}):
            await store.set_variables(task.task_id, OWNER, {"v": ok})
        await store.set_result(task.task_id, OWNER, nested(3))
        for bad in (nested(4), nested(4, kind="dict"), [[[[]]]], {"a": {"b": {"c": {}}}}, nested(2, nested(2))):
            error = await raises(VariableValidationError, store.set_variables(task.task_id, OWNER, {"v": bad}))
            assert error.reason == "depth"
            error = await raises(VariableValidationError, store.set_result(task.task_id, OWNER, bad))
            assert error.reason == "depth"

    run(body)


def test_deep_values_refused_without_recursion() -> None:
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m")
        before = await snapshot(backend)
        cyclic: list[Any] = []
        cyclic.append(cyclic)
        for bomb in (nested(100_000), nested(100_000, kind="dict"), cyclic):
            await raises(VariableValidationError, store.set_variables(task.task_id, OWNER, {"v": bomb}))
            await raises(VariableValidationError, store.set_result(task.task_id, OWNER, bomb))
            await raises(
                VariableValidationError,
                store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, bomb),
            )
        assert await snapshot(backend) == before

    run(body)


def test_string_limits_apply_to_values_and_keys() -> None:
    async def body() -> None:
        store, _, _ = make(StoreConfig(max_string_bytes=8))
        task = await store.create(OWNER, "m")
        await store.set_variables(task.task_id, OWNER, {"é" * 4: ["€" + "xxxxx", {"k" * 8: "🔑" * 2}]})
        cases = [
            {"v": "x" * 9},
            {"v": "é" * 4 + "x"},
            {"é" * 4 + "x": 1},
            {"v": {"k" * 9: 1}},
            {"v": ["🔑" * 2 + "x"]},
        ]
        for bad in cases:
            error = await raises(VariableValidationError, store.set_variables(task.task_id, OWNER, bad))
            assert error.reason == "string"
        error = await raises(VariableValidationError, store.set_result(task.task_id, OWNER, {"k": "x" * 9}))
        assert error.reason == "string"
        await raises(VariableValidationError, store.update_status(task.task_id, OWNER, TaskStatus.WORKING, "x" * 9))

    run(body)


def test_non_json_values_refused() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        bad_values = [float("nan"), float("inf"), (1, 2), {1, 2}, b"x", {1: "a"}, 2**64, -(2**63) - 1, "\ud800", object()]
        for bad in bad_values:
            await raises(VariableValidationError, store.set_variables(task.task_id, OWNER, {"v": bad}))
            await raises(VariableValidationError, store.set_result(task.task_id, OWNER, bad))
        for not_a_map in (None, [("a", 1)], "a=1", {1: "a"}):
            await raises(VariableValidationError, store.set_variables(task.task_id, OWNER, not_a_map))  # type: ignore[arg-type]
        task = await store.set_variables(task.task_id, OWNER, {"v": [2**64 - 1, -(2**63), 1e308, -0.0, "\u2028\x00"]})
        assert (await store.get(task.task_id, OWNER)).variables == task.variables

    run(body)


# ---------------------------------------------------------------- TS-12: sizes


def test_variable_size_on_merged_map() -> None:
    async def body() -> None:
        store, backend, _ = make(StoreConfig(max_variable_bytes=30))
        task = await store.create(OWNER, "m")
        exact = {"a": "x" * 22}  # {"a":"xxx..."} is 30 bytes of canonical JSON
        assert len(canonical_json(exact)) == 30
        task = await store.set_variables(task.task_id, OWNER, exact)
        before = await snapshot(backend)
        error = await raises(VariableSizeExceededError, store.set_variables(task.task_id, OWNER, {"b": 1}))
        assert (error.limit_bytes, error.actual_bytes) == (30, len(canonical_json({**exact, "b": 1})))
        assert await snapshot(backend) == before
        task = await store.set_variables(task.task_id, OWNER, {"a": None, "b": 1})  # the merged map is what counts
        assert task.variables == {"b": 1}
        multibyte = {"a": "é" * 11}  # 22 UTF-8 bytes, not 11 characters, are measured
        assert len(canonical_json(multibyte)) == 30
        await store.set_variables(task.task_id, OWNER, {"b": None, **multibyte})

    run(body)


def test_result_size_bounded() -> None:
    async def body() -> None:
        store, _, _ = make(StoreConfig(max_result_bytes=10))
        task = await store.create(OWNER, "m")
        await store.set_result(task.task_id, OWNER, "x" * 8)
        error = await raises(VariableSizeExceededError, store.set_result(task.task_id, OWNER, "x" * 9))
        assert (error.limit_bytes, error.actual_bytes) == (10, 11)
        await raises(
            VariableSizeExceededError, store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, [0] * 5)
        )

    run(body)


def test_default_limits_fit_backend_records() -> None:
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m" * 65_536)
        big = "€" * 21_000  # 63,000 bytes per string
        variables = {f"v{i}": big for i in range(16)}
        task = await store.set_variables(task.task_id, OWNER, variables)
        result = [big] * 16
        await store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, "s" * 65_536, result)
        (_, record), = await backend.list_by_prefix("")
        assert len(record.data) < 4 * 1024 * 1024, "BK-14: records of a default store fit every backend"

    run(body)


# ---------------------------------------------------------------- TS-13 and TS-14: results


def test_null_result_is_a_result() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        error = await raises(NotReadyError, store.get_result(task.task_id, OWNER))
        assert error.status is TaskStatus.WORKING and error.code == INVALID_PARAMS
        staged = await store.set_result(task.task_id, OWNER, None)
        assert staged.has_result and staged.result is None and staged.status is TaskStatus.WORKING
        assert await store.get_result(task.task_id, OWNER) is None
        done = await store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, None)
        assert done.has_result and await store.get_result(task.task_id, OWNER) is None

    run(body)


def test_get_result_without_result_is_not_ready() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        await store.cancel(task.task_id, OWNER)
        error = await raises(NotReadyError, store.get_result(task.task_id, OWNER))
        assert error.status is TaskStatus.CANCELLED, "the status tells the caller no result will ever come"

    run(body)


def test_results_round_trip_and_replace_until_terminal() -> None:
    async def body() -> None:
        store, _, _ = make()
        task = await store.create(OWNER, "m")
        await store.set_result(task.task_id, OWNER, {"partial": 1})
        await store.set_result(task.task_id, OWNER, {"partial": 2, "list": [1.5, "é", None, True]})
        assert await store.get_result(task.task_id, OWNER) == {"partial": 2, "list": [1.5, "é", None, True]}
        first = await store.get_result(task.task_id, OWNER)
        first["partial"] = 99
        assert (await store.get_result(task.task_id, OWNER))["partial"] == 2, "callers get copies"

    run(body)


def test_no_poison_records() -> None:
    async def body() -> None:
        store, backend, _ = make(StoreConfig(max_tasks_per_owner=1))
        task = await store.create(OWNER, "m")
        await raises(VariableValidationError, store.set_result(task.task_id, OWNER, nested(5000)))
        await raises(VariableValidationError, store.set_result(task.task_id, OWNER, 10**5000))
        for _, record in await backend.list_by_prefix(""):
            load_record_document(record.data)
        await store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, nested(10))
        assert await store.get_result(task.task_id, OWNER) == nested(10)

    run(body)


def test_complete_with_result_terminal_only() -> None:
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m")
        before = await snapshot(backend)
        for status in (TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED, "working", "bogus"):
            await raises(
                InvalidTransitionError, store.complete_with_result(task.task_id, OWNER, status, None, 1)  # type: ignore[arg-type]
            )
        assert await snapshot(backend) == before
        for status in TERMINAL_STATUSES:
            live = await store.create(OWNER, "m")
            await store.set_variables(live.task_id, OWNER, {"k": 1})
            writes_before = (await backend.get(task_key(OWNER, live.task_id))).version
            done = await store.complete_with_result(live.task_id, OWNER, status, "bye", {"r": status.value})
            assert done.status is status and done.status_message == "bye" and done.result == {"r": status.value}
            assert done.version == writes_before + 1, "status, message and result in one write"
            assert done.variables == {"k": 1}

    run(body)


# ---------------------------------------------------------------- TS-15: expiry


def _expiring_calls(store: GenericTaskStore, task_id: str, owner: str) -> list[Awaitable[Any]]:
    return [
        store.get(task_id, owner),
        store.update_status(task_id, owner, TaskStatus.COMPLETED),
        store.set_variables(task_id, owner, {"a": 1}),
        store.set_result(task_id, owner, 1),
        store.get_result(task_id, owner),
        store.complete_with_result(task_id, owner, TaskStatus.COMPLETED, None, 1),
        store.cancel(task_id, owner),
    ]


def test_expired_tasks_are_gone() -> None:
    async def body() -> None:
        store, backend, clock = make(StoreConfig(max_tasks_per_owner=1))
        task = await store.create(OWNER, "m", ttl=1000)
        await store.set_result(task.task_id, OWNER, 1)
        clock.advance(1.0)  # exactly at expiresAt: still live
        assert (await store.get(task.task_id, OWNER)).task_id == task.task_id
        assert len((await store.list(OWNER)).tasks) == 1
        await raises(ResourceExhaustedError, store.create(OWNER, "m"))
        clock.advance(0.001)
        before = await snapshot(backend)
        for call in _expiring_calls(store, task.task_id, OWNER):
            error = await raises(TaskExpiredError, call)
            assert isinstance(error, TaskNotFoundError) and error.code == INVALID_PARAMS
        for call in _expiring_calls(store, task.task_id, OTHER):
            assert type(await raises(TaskNotFoundError, call)) is TaskNotFoundError
        assert await snapshot(backend) == before, "no write to an expired task"
        assert (await store.list(OWNER)).tasks == ()
        await store.create(OWNER, "m")  # the expired task no longer counts
        assert await store.cleanup_expired() == 1
        for call in _expiring_calls(store, task.task_id, OWNER):
            assert type(await raises(TaskNotFoundError, call)) is TaskNotFoundError

    run(body)


def test_expiry_same_with_hiding_backend() -> None:
    async def body() -> None:
        clock = FakeClock()
        store, backend, _ = make(StoreConfig(max_tasks_per_owner=1), backend=HidingBackend(clock), clock=clock)
        task = await store.create(OWNER, "m", ttl=1000)
        clock.advance(1.0)
        assert (await store.get(task.task_id, OWNER)).task_id == task.task_id
        clock.advance(0.001)
        for call in _expiring_calls(store, task.task_id, OWNER):
            await raises(TaskNotFoundError, call)  # TaskExpiredError is a TaskNotFoundError too
        assert (await store.list(OWNER)).tasks == ()
        await store.create(OWNER, "m")
        assert await store.cleanup_expired() in (0, 1)

    run(body)


def test_cleanup_delegates_to_backend() -> None:
    async def body() -> None:
        clock = FakeClock()
        spy = Wrapper(InMemoryBackend(clock=clock))
        store, _, _ = make(backend=spy, clock=clock)
        keep = await store.create(OWNER, "m", ttl=5000)
        for _ in range(3):
            await store.create(OTHER, "m", ttl=1000)
        clock.advance(2)
        spy.calls.clear()
        assert await store.cleanup_expired() == 3
        assert spy.calls == ["cleanup_expired"], "no scan-then-delete-by-key (the seed's TOCTOU)"
        assert (await store.get(keep.task_id, OWNER)).task_id == keep.task_id
        assert await store.cleanup_expired() == 0
        spy.fail["cleanup_expired"] = lambda: -1
        await raises(TaskStoreError, store.cleanup_expired())

    run(body)


# ---------------------------------------------------------------- TS-16 and TS-17: listing


async def _all_pages(store: GenericTaskStore, owner: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = await store.list(owner, cursor=cursor, limit=limit)
        pages.append([t.task_id for t in page.tasks])
        if page.next_cursor is None:
            return pages
        assert page.tasks, "a cursor is only given while more tasks exist"
        cursor = page.next_cursor


def test_listing_newest_first_with_ties() -> None:
    async def body() -> None:
        store, _, clock = make()
        created: list[TaskRecord] = []
        for burst in range(4):
            for _ in range(5):  # five tasks in the same millisecond
                created.append(await store.create(OWNER, "m"))
            clock.advance(0.001)
        expected = [t.task_id for t in sorted(created, key=lambda t: (-t.created_at, t.task_id))]
        for limit in (1, 2, 3, 7, 20, 50):
            pages = await _all_pages(store, OWNER, limit)
            flat = [i for page in pages for i in page]
            assert flat == expected, f"limit {limit}: pages skip, repeat or reorder"
            assert all(len(p) == limit for p in pages[:-1])
        default = await store.list(OWNER)
        assert len(default.tasks) == 20 and default.next_cursor is None

    run(body)


def test_next_cursor_only_while_more() -> None:
    async def body() -> None:
        store, _, _ = make(StoreConfig(default_page_size=3))
        assert await store.list(OWNER) == TaskPage((), None)
        for _ in range(3):
            await store.create(OWNER, "m")
        assert (await store.list(OWNER)).next_cursor is None, "exactly a page: no trailing empty page"
        await store.create(OWNER, "m")
        page = await store.list(OWNER)
        assert len(page.tasks) == 3 and page.next_cursor is not None
        for bad in (0, -1, 2.5, True, "3"):
            with pytest.raises(ValueError):
                await store.list(OWNER, limit=bad)  # type: ignore[arg-type]

    run(body)


def test_cursor_survives_deletion_of_its_task() -> None:
    async def body() -> None:
        store, _, clock = make(StoreConfig(default_ttl_ms=1000, max_ttl_ms=100_000))
        older = [await store.create(OWNER, "m", ttl=100_000) for _ in range(3)]
        clock.advance(0.01)
        newest = await store.create(OWNER, "m")  # ttl 1 s: will expire and be cleaned up
        page = await store.list(OWNER, limit=1)
        assert [t.task_id for t in page.tasks] == [newest.task_id]
        clock.advance(2)
        assert await store.cleanup_expired() == 1
        rest = await store.list(OWNER, cursor=page.next_cursor, limit=10)
        assert sorted(t.task_id for t in rest.tasks) == sorted(t.task_id for t in older)

    run(body)


def test_invalid_cursors_are_refused() -> None:
    async def body() -> None:
        store, _, _ = make()
        for _ in range(3):
            await store.create(OWNER, "m")
            await store.create(OTHER, "m")
        cursor = (await store.list(OWNER, limit=1)).next_cursor
        theirs = (await store.list(OTHER, limit=1)).next_cursor
        assert cursor and theirs
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

        def token(fields: Any) -> str:
            return base64.urlsafe_b64encode(json.dumps(fields).encode()).rstrip(b"=").decode()

        forged = [
            "",
            "1",
            "page=2",
            "bogus",
            cursor + "=",
            cursor[:-2],
            cursor + "A",
            "%%%",
            token({**decoded, "t": -1}),
            token({**decoded, "i": "x"}),
            token({**decoded, "extra": 1}),
            token([decoded]),
            token({**decoded, "t": True}),
            json.dumps(decoded),
            theirs,
            "x" * 10_000,
            5,
            b"bytes",
        ]
        for bad in forged:
            error = await raises(InvalidCursorError, store.list(OWNER, cursor=bad))  # type: ignore[arg-type]
            assert error.code == INVALID_PARAMS
        assert len((await store.list(OWNER, cursor=cursor, limit=10)).tasks) == 2

    run(body)


# ---------------------------------------------------------------- TS-18, TS-19: concurrency and failures


def test_cas_conflict_surfaces_without_retry() -> None:
    async def body() -> None:
        clock = FakeClock()
        backend = Wrapper(InMemoryBackend(clock=clock), pause=True)
        store, _, _ = make(backend=backend, clock=clock)
        task = await store.create(OWNER, "m")
        backend.calls.clear()
        outcomes: list[object] = []

        async def update(status: TaskStatus) -> None:
            try:
                outcomes.append(await store.update_status(task.task_id, OWNER, status, status.value))
            except ConcurrentModificationError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as group:
            group.start_soon(update, TaskStatus.COMPLETED)
            group.start_soon(update, TaskStatus.FAILED)
        winners = [o for o in outcomes if isinstance(o, TaskRecord)]
        losers = [o for o in outcomes if isinstance(o, ConcurrentModificationError)]
        assert len(winners) == 1 and len(losers) == 1
        assert (losers[0].expected_version, losers[0].actual_version) == (task.version, task.version + 1)
        assert losers[0].code == INTERNAL_ERROR and isinstance(losers[0].__cause__, VersionConflictError)
        assert backend.calls.count("put_if_version") == 2, "no automatic retry"
        assert await store.get(task.task_id, OWNER) == winners[0]

    run(body)


def test_backend_failures_are_mapped() -> None:
    async def body() -> None:
        clock = FakeClock()
        backend = Wrapper(InMemoryBackend(clock=clock))
        store, _, _ = make(backend=backend, clock=clock)
        task = await store.create(OWNER, "m")
        driver_error = ConnectionResetError("socket closed")
        backend_error = BackendError("driver failed")
        backend_error.__cause__ = driver_error
        cases: list[tuple[str, BaseException | Callable[[], Any], type[TaskError]]] = [
            ("put_if_version", backend_error, TaskStoreError),
            ("put_if_version", CapacityExceededError("item too large"), StorageFullError),
            ("put_if_version", KeyError("raw"), TaskStoreError),
            ("put_if_version", lambda: True, TaskStoreError),
            ("get", backend_error, TaskStoreError),
            ("get", VersionConflictError("k", 1, 2), TaskStoreError),
            ("get", lambda: VersionedRecord(b"not json", 1), TaskStoreError),
            ("get", lambda: VersionedRecord(b'{"expiresAt":null}', 1), TaskStoreError),
            ("get", lambda: VersionedRecord(b"[" * 100_000, 1), TaskStoreError),
            ("get", lambda: None, TaskStoreError),
        ]
        for method, failure, expected in cases:
            backend.fail = {method: failure}
            error = await raises(expected, store.set_variables(task.task_id, OWNER, {"a": 1}))
            assert type(error) is expected and error.code == INTERNAL_ERROR
            if isinstance(failure, BaseException):
                assert error.__cause__ is failure
        backend.fail = {"list_by_prefix": lambda: "nonsense"}
        await raises(TaskStoreError, store.list(OWNER))
        backend.fail = {"list_by_prefix": OSError("down")}
        await raises(TaskStoreError, store.create(OWNER, "m"))
        backend.fail = {"put": CapacityExceededError("full")}
        await raises(StorageFullError, store.create(OWNER, "m"))
        backend.fail = {}
        assert (await store.get(task.task_id, OWNER)).variables == {}

    run(body)


def test_vanished_record_is_not_found() -> None:
    async def body() -> None:
        clock = FakeClock()
        backend = Wrapper(InMemoryBackend(clock=clock))
        store, _, _ = make(backend=backend, clock=clock)
        task = await store.create(OWNER, "m")
        backend.fail = {"put_if_version": NotFoundError(task_key(OWNER, task.task_id))}
        error = await raises(TaskNotFoundError, store.cancel(task.task_id, OWNER))
        assert type(error) is TaskNotFoundError and error.__context__ is None

    run(body)


def test_failed_create_leaves_nothing_behind() -> None:
    async def body() -> None:
        clock = FakeClock()
        backend = Wrapper(InMemoryBackend(clock=clock))
        store, _, _ = make(backend=backend, clock=clock)
        backend.fail = {"put_if_version": BackendError("lost connection")}
        await raises(TaskStoreError, store.create(OWNER, "m"))
        backend.fail = {}
        assert await snapshot(backend.inner) == {}

    run(body)


# ---------------------------------------------------------------- TS-20, TS-21: refusals and records


def test_refused_operations_change_nothing() -> None:
    async def body() -> None:
        config = StoreConfig(max_tasks_per_owner=2, max_variable_bytes=40, max_depth=2, max_string_bytes=10)
        store, backend, _ = make(config)
        task = await store.create(OWNER, "m")
        await store.set_variables(task.task_id, OWNER, {"a": "x"})
        done = await store.create(OWNER, "m")
        await store.complete_with_result(done.task_id, OWNER, TaskStatus.COMPLETED, None, 1)
        refusals: list[tuple[type[TaskError], Awaitable[Any]]] = [
            (ResourceExhaustedError, store.create(OWNER, "m")),
            (TtlExceededError, store.create(OTHER, "m", ttl=0)),
            (AnonymousAccessError, store.create("", "m")),
            (VariableSizeExceededError, store.set_variables(task.task_id, OWNER, {"b": "y" * 10, "c": "z" * 10})),
            (VariableValidationError, store.set_variables(task.task_id, OWNER, {"b": [[[1]]]})),
            (VariableValidationError, store.set_result(task.task_id, OWNER, "x" * 11)),
            (InvalidTransitionError, store.update_status(done.task_id, OWNER, TaskStatus.WORKING)),
            (InvalidTransitionError, store.set_variables(done.task_id, OWNER, {"a": 1})),
            (TaskNotFoundError, store.cancel(task.task_id, OTHER)),
            (InvalidCursorError, store.list(OWNER, cursor="nope")),
        ]
        before = await snapshot(backend)
        for error, call in refusals:
            await raises(error, call)
            assert await snapshot(backend) == before, error.__name__

    run(body)


def test_records_follow_schema() -> None:
    async def body() -> None:
        store, backend, _ = make()
        a = await store.create(OWNER, "tools/call")
        await store.set_variables(a.task_id, OWNER, {"k": {"é": [1, 2.5, None]}})
        await store.complete_with_result(a.task_id, OWNER, TaskStatus.COMPLETED, "ok", None)
        b = await store.create(OWNER, "m")
        await store.update_status(b.task_id, OWNER, TaskStatus.INPUT_REQUIRED, "?")
        records = await backend.list_by_prefix("")
        assert len(records) == 2
        for key, record in records:
            document = load_record_document(record.data)
            validate_envelope(record.data)
            assert canonical_json(json.loads(record.data)) == record.data, "canonical JSON"
            assert document["pending"] is False and document["format"] == 1
            validate_task_wire(document["task"])
            assert key == task_key(document["ownerId"], document["task"]["taskId"])
        done = json.loads(dict(records)[task_key(OWNER, a.task_id)].data)
        assert done["result"] == {"value": None} and done["expiresAt"] == format_timestamp(a.expires_at or 0)
        assert "result" not in json.loads(dict(records)[task_key(OWNER, b.task_id)].data)
        assert TASK_RECORD_SCHEMA["$schema"] == TASK_WIRE_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        for bad in ({"taskId": "x"}, {**a.to_wire(), "status": "done"}, {**a.to_wire(), "extra": 1}, {**a.to_wire(), "ttl": -1}):
            with pytest.raises(ValueError):
                validate_task_wire(bad)

    run(body)



def test_every_decode_is_a_record_of_its_own() -> None:
    """Records are remembered by their bytes, but a caller who changes what it got changes nothing else."""
    async def body() -> None:
        store, backend, _ = make()
        task = await store.create(OWNER, "m")
        await store.set_variables(task.task_id, OWNER, {"k": {"nested": [1]}})
        await store.set_result(task.task_id, OWNER, {"r": [1]})
        stored = await backend.get(task_key(OWNER, task.task_id))
        first, _ = decode_record(stored.data, stored.version)
        first.variables["k"]["nested"].append(2)
        first.result["r"].append(2)
        again, pending = decode_record(stored.data, stored.version + 7)
        assert again.variables == {"k": {"nested": [1]}} and again.result == {"r": [1]} and not pending
        assert again.version == stored.version + 7 and first.version == stored.version
        got = await store.get(task.task_id, OWNER)
        got.variables["k"]["nested"].clear()
        assert (await store.get(task.task_id, OWNER)).variables == {"k": {"nested": [1]}}
        with pytest.raises(ValueError):
            decode_record(stored.data.replace(b'"pending":false', b'"pending":0'), 1)

    run(body)


def test_copies_of_deep_values_need_no_recursion() -> None:
    deep: Any = [{"leaf": 1}, "x"]
    for _ in range(5_000):
        deep = {"k": [deep, 2]}
    a, b = copy_json(deep), deep
    levels = 0
    while isinstance(b, dict):  # equal, and every container new, all the way down (== itself would recurse)
        assert type(a) is dict and a is not b and list(a) == ["k"] and a["k"] is not b["k"] and a["k"][1] == 2
        a, b, levels = a["k"][0], b["k"][0], levels + 1
    assert levels == 5_000 and a == b and a is not b and a[0] is not b[0]


# ---------------------------------------------------------------- the model, and the store against it


MODEL_CONFIG = SMALL_LIMITS
MODEL_OWNERS = ["alice", "alice", "a", "a:b", "é/x", ""]
_values, _statuses, _messages = small_values, statuses, status_messages
KINDS = ["create", "get", "status", "vars", "result", "get_result", "complete", "list", "walk", "cancel", "cleanup", "tick"]


class Differential:
    """Runs drawn operations on a store and judges each outcome against the model.

    Draws never depend on id values (uuid4, random per run), so an example replays and
    shrinks: tasks are picked by their position in creation order.
    """

    def __init__(self, data: st.DataObject, mode: ExpiredRecords) -> None:
        self.data = data
        self.clock = FakeClock()
        backend = HidingBackend(self.clock) if mode is ExpiredRecords.HIDDEN else InMemoryBackend(clock=self.clock)
        self.store = GenericTaskStore(backend, config=MODEL_CONFIG, clock=self.clock)
        self.model = TaskModel(MODEL_CONFIG, expired_records=mode)
        self.state = self.model.initial(self.clock())
        self.tokens: list[tuple[str, IssuedCursor]] = []
        self.created: list[str] = []
        self.history: list[str] = []

    def draw(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.data.draw(strategy)

    def judge(self, op: TaskOperation, outcome: Any) -> None:
        expectation = self.model.expect(self.state, op)
        self.history.append(f"{op.describe()} -> {outcome.describe()}")
        assert expectation.admits(outcome), (
            f"[{expectation.clause}] store and model disagree\n  "
            + "\n  ".join(self.history)
            + f"\n  the model expected {expectation.describe()}"
        )
        self.state = expectation.then(outcome)

    async def perform(self, op: TaskOperation, call: Callable[[], Awaitable[Any]]) -> Any:
        self.state = self.state.at(self.clock())
        try:
            raw = await call()
        except Exception as exc:  # noqa: BLE001 - judged against the model
            self.judge(op, observe(op, error=exc))
            return None
        self.judge(op, observe(op, raw))
        return raw

    def target(self) -> tuple[str, str]:
        """Mostly a known task with its own owner; sometimes another owner, an unknown or a malformed id."""
        known = [i for i in self.created if i in self.state.tasks]
        pick = self.draw(st.integers(0, len(known) + 1)) if known else 0
        task_id = known[pick] if pick < len(known) else ("not-an-id" if pick > len(known) else NEVER_ISSUED)
        owner = self.draw(st.sampled_from(MODEL_OWNERS))
        if pick < len(known) and self.draw(st.integers(0, 4)):
            owner = self.state.tasks[task_id].owner_id
        return task_id, owner

    async def create(self, owner: str) -> None:
        ttl = self.draw(ttls)
        method = self.draw(request_methods)
        self.state = self.state.at(self.clock())
        try:
            created: Any = await self.store.create(owner, method, ttl)
            error: BaseException | None = None
        except Exception as exc:  # noqa: BLE001 - judged against the model
            created, error = None, exc
        op = Create(owner, method, ttl, created.task_id if isinstance(created, TaskRecord) else None)
        if op.assigned_id is not None:
            self.created.append(op.assigned_id)
        self.judge(op, observe(op, created, error))

    async def list_page(self, owner: str, token: str | None, ref: IssuedCursor | ForgedCursor | None, limit: int | None) -> TaskPage | None:
        op = ListTasks(owner, ref, limit)
        page = await self.perform(op, lambda: self.store.list(owner, token, limit))
        if isinstance(page, TaskPage) and page.next_cursor is not None:
            ref = cursor_after(owner, observe(op, page).value)  # type: ignore[union-attr, arg-type]
            self.tokens.append((page.next_cursor, ref))
            return page
        return None

    async def walk(self, owner: str) -> None:
        """Page through a whole listing, each page judged: cursors continue exactly where pages end."""
        limit = self.draw(st.sampled_from([1, 2]))
        page = await self.list_page(owner, None, None, limit)
        for _ in range(6):
            if page is None:
                return
            token, ref = self.tokens[-1]
            page = await self.list_page(owner, token, ref, limit)

    async def list_once(self, owner: str) -> None:
        how = self.draw(st.sampled_from(["issued", "issued", "first", "forged"] if self.tokens else ["first"] * 5 + ["forged"]))
        token: str | None = None
        ref: IssuedCursor | ForgedCursor | None = None
        if how == "issued":
            token, ref = self.draw(st.sampled_from(self.tokens))
            if self.draw(st.booleans()):
                owner = ref.owner_id  # continue one's own listing, or replay another owner's cursor
        elif how == "forged":
            token, ref = "forged", ForgedCursor("forged")
        await self.list_page(owner, token, ref, self.draw(st.sampled_from([None, 1, 1, 3])))

    async def step(self) -> None:
        kind = self.draw(st.sampled_from(KINDS))
        if not self.state.tasks and kind != "create" and self.draw(st.integers(0, 3)):
            kind = "create"  # operations on tasks need tasks: spend most of them on live ones
        if kind == "tick":
            self.clock.advance(self.draw(st.integers(0, 400)) / 1000)
            self.history.append(f"clock -> +{self.clock() - 1_800_000_000:.3f}s")
            return
        task_id, owner = self.target()
        store, draw = self.store, self.draw
        if kind == "create":
            await self.create(owner)
        elif kind == "list":
            await self.list_once(owner)
        elif kind == "walk":
            await self.walk(owner)
        elif kind == "get":
            await self.perform(Get(task_id, owner), lambda: store.get(task_id, owner))
        elif kind == "get_result":
            await self.perform(GetResult(task_id, owner), lambda: store.get_result(task_id, owner))
        elif kind == "cancel":
            await self.perform(Cancel(task_id, owner), lambda: store.cancel(task_id, owner))
        elif kind == "cleanup":
            await self.perform(CleanupExpired(), store.cleanup_expired)
        elif kind == "status":
            status, message = draw(_statuses), draw(_messages)
            await self.perform(
                UpdateStatus(task_id, owner, status, message), lambda: store.update_status(task_id, owner, status, message)
            )
        elif kind == "vars":
            variables = draw(variable_maps)
            await self.perform(SetVariables(task_id, owner, variables), lambda: store.set_variables(task_id, owner, variables))
        elif kind == "result":
            result = draw(_values)
            await self.perform(SetResult(task_id, owner, result), lambda: store.set_result(task_id, owner, result))
        else:
            status, message, result = draw(_statuses), draw(_messages), draw(_values)
            await self.perform(
                CompleteWithResult(task_id, owner, status, message, result),
                lambda: store.complete_with_result(task_id, owner, status, message, result),
            )

    async def run(self) -> None:
        for _ in range(self.draw(st.integers(1, 30))):
            await self.step()


@pytest.mark.parametrize("mode", [ExpiredRecords.KEPT_UNTIL_CLEANUP, ExpiredRecords.HIDDEN], ids=lambda m: m.value)
@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_store_agrees_with_model(mode: ExpiredRecords, data: st.DataObject) -> None:
    anyio.run(Differential(data, mode).run, backend="asyncio")


def test_model_checks_assigned_ids() -> None:
    model = TaskModel(MODEL_CONFIG)
    state = model.initial(1_800_000_000.0)
    first = uuid.uuid4().hex
    expectation = model.expect(state, Create("alice", "m", None, first))
    assert expectation.clause == "TS-4" and first in expectation.after.issued
    state = expectation.after.without(first)  # cleaned up: the id stays issued
    for bad in (first, None, ""):  # reused, not a string, empty (any other fresh string is an id: MCP asks only uniqueness)
        expectation = model.expect(state, Create("alice", "m", None, bad))
        (allowed,) = expectation.allowed
        assert not expectation.admits(observe(Create("alice", "m", None, bad), None, TaskStoreError("x")))
        assert allowed.value.task_id != bad  # type: ignore[union-attr]


def test_model_names_clauses() -> None:
    model = TaskModel(MODEL_CONFIG)
    state = model.initial(1_800_000_000.0)
    tid = uuid.uuid4().hex
    state = model.expect(state, Create("alice", "m", None, tid)).after
    assert model.expect(state, Get(tid, "a")).clause == "TS-7"
    assert model.expect(state, Get(tid, "")).clause == "TS-3"
    assert model.expect(state, Create("alice", "m", 5000)).clause == "TS-5"
    assert model.expect(state, ListTasks("alice", ForgedCursor("x"))).clause == "TS-17"
    assert model.expect(state, SetVariables(tid, "alice", {"x": "y" * 7})).clause == "TS-11"
    assert model.expect(state, CompleteWithResult(tid, "alice", TaskStatus.WORKING, None, 1)).clause == "TS-14"
    later = state.at(state.now + 2)
    assert model.expect(later, Get(tid, "alice")).allowed[0].error == "TaskExpiredError"  # type: ignore[union-attr]
    hidden = TaskModel(MODEL_CONFIG, expired_records=ExpiredRecords.HIDDEN)
    assert hidden.expect(later, Get(tid, "alice")).allowed[0].error == "TaskNotFoundError"  # type: ignore[union-attr]
    assert {o.value for o in hidden.expect(later, CleanupExpired()).allowed} == {0, 1}  # type: ignore[union-attr]
    assert len({state, state.at(state.now)}) == 1, "states are hashable"


def test_messages_cut_long_ids_to_80_characters() -> None:
    """Reference only (TS-2): the reference quotes at most 80 characters of a caller's value in a message."""
    store = GenericTaskStore(InMemoryBackend())

    async def ask() -> TaskNotFoundError:
        try:
            await store.get("x" * 10_000, "alice")
        except TaskNotFoundError as error:
            return error
        raise AssertionError("a 10,000-character id was found")

    error = anyio.run(ask)
    assert "x" * 81 not in str(error) and "x" * 20 in str(error)
