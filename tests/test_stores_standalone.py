"""Direct tests of the store gallery, without the kit: each broken store really has its bug.

Every gallery bug has its own demonstration, and each demonstration is also run against
correct stores (the reference, and the gallery's own bases, whose hooks must default to the
reference's behaviour), where it must fail: a demonstration that passed everywhere would
prove nothing about the bug. Each runs on asyncio and trio through ``anyio.run``, with a
FakeClock shared by the store and its backend.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from conformance import (
    NotReadyError,
    ResourceExhaustedError,
    StoreConfig,
    TaskExpiredError,
    TaskNotFoundError,
    TaskStatus,
    TaskStore,
    VariableSizeExceededError,
    VariableValidationError,
    canonical_json,
)
from conformance.checks.task_store import OWNER
from conformance.harness.clock import FakeClock
from conformance.spec import parse_clauses
from conformance.strategies.tasks import NEVER_ISSUED
from reference_backend import GenericTaskStore, InMemoryBackend, in_memory_task_store
from testbed.stores import broken
from testbed.stores.broken import GALLERY

LOOPS = ["asyncio", "trio"]
ROOT = Path(__file__).resolve().parents[1]

async def shows_quota_raced_past(make: Make, clock: FakeClock) -> None:
    store = make(StoreConfig(max_tasks_per_owner=2))
    await new_task(store)
    async with anyio.create_task_group() as group:
        for _ in range(2):
            group.start_soon(raised, store.create(OWNER, METHOD))
    assert len((await store.list(OWNER, limit=10)).tasks) == 3  # over the quota of 2


#: Correct stores the demonstrations must fail on: the reference, and the gallery's bases.
CORRECT: list[Callable[..., Any]] = [
    in_memory_task_store, broken._BrokenStore, broken._VariablesBy, broken._KeyedByTaskId,
]

CLAUSES = parse_clauses((ROOT / "SPEC.md").read_text(encoding="utf-8"))

METHOD = "tools/call"

Make = Callable[..., Any]
Demonstration = Callable[[Make, FakeClock], Awaitable[None]]


async def raised(call: Awaitable[Any]) -> BaseException | None:
    """The exception the awaitable raised, or None if it returned."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


async def new_task(store: Any, owner: str = OWNER, ttl: int | None = None) -> str:
    return (await store.create(owner, METHOD, ttl)).task_id


async def finished_task(store: Any) -> str:
    task_id = await new_task(store)
    await store.update_status(task_id, OWNER, TaskStatus.COMPLETED)
    return task_id


# --- The gallery: one demonstration per bug ------------------------------------------------


async def shows_foreign_task_told_apart(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, "bob")
    foreign = await raised(store.get(task_id, OWNER))
    missing = await raised(store.get(NEVER_ISSUED, OWNER))
    assert isinstance(foreign, TaskNotFoundError) and isinstance(missing, TaskNotFoundError)
    assert str(foreign).replace(task_id, "<id>") != str(missing).replace(NEVER_ISSUED, "<id>"), (foreign, missing)


async def shows_prefix_listing(make: Make, clock: FakeClock) -> None:
    store = make()
    await new_task(store, "a:b")
    assert len((await store.list("a")).tasks) == 1


async def shows_clamped_ttl(make: Make, clock: FakeClock) -> None:
    store = make()
    maximum = store.config.max_ttl_ms
    assert await raised(store.create(OWNER, METHOD, maximum + 1)) is None
    assert [task.ttl for task in (await store.list(OWNER)).tasks] == [maximum]


async def shows_expired_tasks_in_quota(make: Make, clock: FakeClock) -> None:
    store = make(StoreConfig(max_tasks_per_owner=2))
    await new_task(store, ttl=1000)
    await new_task(store, ttl=1000)
    clock.advance(2)
    assert (await store.list(OWNER)).tasks == ()
    assert isinstance(await raised(store.create(OWNER, METHOD)), ResourceExhaustedError)


async def shows_reopened_task(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await finished_task(store)
    assert await raised(store.update_status(task_id, OWNER, TaskStatus.WORKING)) is None
    assert (await store.get(task_id, OWNER)).status is TaskStatus.WORKING


async def shows_terminal_cancelled(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await finished_task(store)
    assert await raised(store.cancel(task_id, OWNER)) is None
    assert (await store.get(task_id, OWNER)).status is TaskStatus.CANCELLED


async def shows_non_terminal_completion(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    assert await raised(store.complete_with_result(task_id, OWNER, TaskStatus.WORKING, "half", {"x": 1})) is None
    assert (await store.get(task_id, OWNER)).status is TaskStatus.WORKING
    assert await store.get_result(task_id, OWNER) == {"x": 1}


async def shows_null_kept(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    await store.set_variables(task_id, OWNER, {"a": 1, "b": 2})
    await store.set_variables(task_id, OWNER, {"a": None})
    assert (await store.get(task_id, OWNER)).variables == {"a": None, "b": 2}


async def shows_terminal_variables_changed(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await finished_task(store)
    assert await raised(store.set_variables(task_id, OWNER, {"note": "late"})) is None
    assert (await store.get(task_id, OWNER)).variables == {"note": "late"}


async def shows_increment_measured(make: Make, clock: FakeClock) -> None:
    limit = 64
    store = make(StoreConfig(max_variable_bytes=limit))
    task_id = await new_task(store)
    await store.set_variables(task_id, OWNER, {"a": "x" * 30})  # 36 bytes
    assert await raised(store.set_variables(task_id, OWNER, {"b": "y" * 30})) is None
    assert len(canonical_json((await store.get(task_id, OWNER)).variables)) > limit


async def shows_characters_counted(make: Make, clock: FakeClock) -> None:
    store = make(StoreConfig(max_string_bytes=16))
    task_id = await new_task(store)
    euros = "\u20ac" * 6  # 6 characters, 18 UTF-8 bytes
    assert await raised(store.set_variables(task_id, OWNER, {"s": euros})) is None
    assert await raised(store.update_status(task_id, OWNER, TaskStatus.WORKING, euros)) is None
    assert (await store.get(task_id, OWNER)).variables == {"s": euros}


def bomb(depth: int) -> list[Any]:
    """A list nested ``depth`` deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


async def shows_recursion_error(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    error = await raised(store.set_variables(task_id, OWNER, {"bomb": bomb(100_000)}))
    assert isinstance(error, RecursionError), error
    assert isinstance(await raised(store.set_result(task_id, OWNER, bomb(100_000))), RecursionError)


async def shows_partial_write(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    error = await raised(store.set_variables(task_id, OWNER, {"ok": 1, "bad": float("nan")}))
    assert isinstance(error, VariableValidationError), error
    assert (await store.get(task_id, OWNER)).variables == {"ok": 1}


async def shows_null_result_lost(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    await store.set_result(task_id, OWNER, None)
    assert isinstance(await raised(store.get_result(task_id, OWNER)), NotReadyError)


async def shows_expired_task_updated(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, ttl=1000)
    clock.advance(2)
    assert await raised(store.update_status(task_id, OWNER, TaskStatus.COMPLETED, "late")) is None


async def shows_ties_skipped(make: Make, clock: FakeClock) -> None:
    store = make()
    created = {await new_task(store) for _ in range(5)}  # the clock stands still: one millisecond
    seen: list[str] = []
    page = await store.list(OWNER, limit=2)
    seen += [task.task_id for task in page.tasks]
    while page.next_cursor is not None:
        page = await store.list(OWNER, page.next_cursor, 2)
        seen += [task.task_id for task in page.tasks]
    assert len(seen) == len(set(seen)) < len(created), seen


async def shows_forged_cursor_restarts(make: Make, clock: FakeClock) -> None:
    store = make()
    for _ in range(3):
        await new_task(store)
        clock.advance(0.001)
    first = await store.list(OWNER, limit=2)
    assert await raised(store.list(OWNER, "forged-cursor", 2)) is None
    assert await store.list(OWNER, "forged-cursor", 2) == first


# --- Security (SEC-3 .. SEC-9) ---------------------------------------------------------------


async def shows_cause_chained(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, "bob")
    error = await raised(store.get(task_id, OWNER))
    assert isinstance(error, TaskNotFoundError) and isinstance(error.__cause__, PermissionError), error


async def shows_intruder_write_lands(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, "bob")
    assert isinstance(await raised(store.cancel(task_id, OWNER)), TaskNotFoundError)
    assert (await store.get(task_id, "bob")).status is TaskStatus.CANCELLED


async def shows_expiry_told_to_intruder(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, "bob", ttl=1000)
    clock.advance(2)
    assert isinstance(await raised(store.get(task_id, OWNER)), TaskExpiredError)


async def shows_lookalike_quota(make: Make, clock: FakeClock) -> None:
    store = make(StoreConfig(max_tasks_per_owner=2))
    await new_task(store, "a:b")
    await new_task(store, "a:b")
    assert (await store.list("a")).tasks == ()
    assert isinstance(await raised(store.create("a", METHOD)), ResourceExhaustedError)


async def shows_deep_result_kept(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    too_deep = bomb(store.config.max_depth + 1)
    assert isinstance(await raised(store.set_variables(task_id, OWNER, {"v": too_deep})), VariableValidationError)
    assert await raised(store.set_result(task_id, OWNER, too_deep)) is None
    assert await store.get_result(task_id, OWNER) == too_deep


async def shows_depth_off_by_one(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    limit = store.config.max_depth
    assert await raised(store.set_variables(task_id, OWNER, {"v": bomb(limit + 1)})) is None
    assert await raised(store.set_result(task_id, OWNER, bomb(limit + 1))) is None
    assert isinstance(await raised(store.set_result(task_id, OWNER, bomb(limit + 2))), VariableValidationError)


async def shows_escapes_measured(make: Make, clock: FakeClock) -> None:
    limit = 64
    store = make(StoreConfig(max_variable_bytes=limit))
    task_id = await new_task(store)
    euros = {"s": "\u20ac" * 18}  # 62 canonical bytes; json.dumps writes 117
    assert len(canonical_json(euros)) <= limit
    assert isinstance(await raised(store.set_variables(task_id, OWNER, euros)), VariableSizeExceededError)


async def shows_deletion_counted(make: Make, clock: FakeClock) -> None:
    limit = 64
    store = make(StoreConfig(max_variable_bytes=limit))
    task_id = await new_task(store)
    await store.set_variables(task_id, OWNER, {"old": "x" * 40})
    assert len(canonical_json({"new": "y" * 50})) <= limit  # what the variables are once "old" is deleted
    error = await raised(store.set_variables(task_id, OWNER, {"old": None, "new": "y" * 50}))
    assert isinstance(error, VariableSizeExceededError), error


async def shows_variable_became_field(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, ttl=1000)
    await store.set_variables(task_id, OWNER, {"expiresAt": "9999-12-31T23:59:59.999Z"})
    clock.advance(2)
    assert await raised(store.get(task_id, OWNER)) is None


async def shows_float_digits_lost(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    await store.set_variables(task_id, OWNER, {"third": 1 / 3})
    await store.set_result(task_id, OWNER, 0.1 + 0.2)
    assert (await store.get(task_id, OWNER)).variables["third"] != 1 / 3
    assert await store.get_result(task_id, OWNER) == 0.3


async def shows_non_json_accepted(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    assert await raised(store.set_variables(task_id, OWNER, {"pair": (1, 2)})) is None
    assert (await store.get(task_id, OWNER)).variables == {"pair": [1, 2]}
    error = await raised(store.set_result(task_id, OWNER, float("nan")))
    assert not isinstance(error, VariableValidationError), error  # passes the check, fails later in the encoder


async def shows_ttl_over_by_milliseconds(make: Make, clock: FakeClock) -> None:
    store = make()
    maximum = store.config.max_ttl_ms
    assert await raised(store.create(OWNER, METHOD, maximum + 999)) is None
    assert [task.ttl for task in (await store.list(OWNER)).tasks] == [maximum + 999]


async def shows_wall_clock_stamps(make: Make, clock: FakeClock) -> None:
    store = make()
    task = await store.create(OWNER, METHOD)
    assert task.created_at != clock(), (task.created_at, clock())


async def shows_refused_ttl_written(make: Make, clock: FakeClock) -> None:
    store = make()
    assert isinstance(await raised(store.create(OWNER, METHOD, store.config.max_ttl_ms + 1)), Exception)
    assert len((await store.list(OWNER)).tasks) == 1  # the refused create left a task behind


async def shows_finished_result_not_ready(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store)
    await store.complete_with_result(task_id, OWNER, TaskStatus.COMPLETED, None, {"done": True})
    assert isinstance(await raised(store.get_result(task_id, OWNER)), NotReadyError)


async def shows_last_task_unlisted(make: Make, clock: FakeClock) -> None:
    store = make()
    created = {await new_task(store) for _ in range(3)}
    first = await store.list(OWNER, limit=2)
    listed = {task.task_id for task in first.tasks}
    if first.next_cursor is not None:
        listed |= {task.task_id for task in (await store.list(OWNER, cursor=first.next_cursor, limit=2)).tasks}
    assert listed != created, "every task was listed"


async def shows_cleanup_at_the_instant(make: Make, clock: FakeClock) -> None:
    store = make()
    task_id = await new_task(store, ttl=1000)
    clock.advance(1.0)  # exactly at expiresAt: still live
    assert await store.cleanup_expired() == 1
    assert isinstance(await raised(store.get(task_id, OWNER)), TaskNotFoundError)


DEMONSTRATIONS: dict[type[Any], Demonstration] = {
    broken.ForeignTaskSaysOwned: shows_foreign_task_told_apart,
    broken.SeedPrefixListing: shows_prefix_listing,
    broken.TtlClamped: shows_clamped_ttl,
    broken.QuotaCountsExpired: shows_expired_tasks_in_quota,
    broken.QuotaCheckThenCreate: shows_quota_raced_past,
    broken.ReopensCompleted: shows_reopened_task,
    broken.CancelAlwaysWins: shows_terminal_cancelled,
    broken.CompleteWithAnyStatus: shows_non_terminal_completion,
    broken.NullStoredAsValue: shows_null_kept,
    broken.VariablesWritableAfterTerminal: shows_terminal_variables_changed,
    broken.SizeOfIncomingMap: shows_increment_measured,
    broken.StringLengthInCharacters: shows_characters_counted,
    broken.RecursiveDepthCheck: shows_recursion_error,
    broken.SalvagesRefusedVariables: shows_partial_write,
    broken.NullResultIsNoResult: shows_null_result_lost,
    broken.LateWorkerUpdatesExpired: shows_expired_task_updated,
    broken.CursorOnCreatedAtOnly: shows_ties_skipped,
    broken.ForgedCursorRestarts: shows_forged_cursor_restarts,
    broken.ForeignErrorChainsCause: shows_cause_chained,
    broken.OwnerCheckedAfterWrite: shows_intruder_write_lands,
    broken.ForeignExpiredSaysExpired: shows_expiry_told_to_intruder,
    broken.QuotaByOwnerPrefix: shows_lookalike_quota,
    broken.ResultDepthUnchecked: shows_deep_result_kept,
    broken.DepthLimitOffByOne: shows_depth_off_by_one,
    broken.SizeMeasuredWithAsciiEscapes: shows_escapes_measured,
    broken.DeletionsCountedInSize: shows_deletion_counted,
    broken.VariablesSpreadIntoRecord: shows_variable_became_field,
    broken.CompactFloats: shows_float_digits_lost,
    broken.ValidatesByDumping: shows_non_json_accepted,
    broken.TtlCheckedInSeconds: shows_ttl_over_by_milliseconds,
    broken.CreatedAtFromWallClock: shows_wall_clock_stamps,
    broken.CreateWritesBeforeTtlRefusal: shows_refused_ttl_written,
    broken.GetResultNeverReady: shows_finished_result_not_ready,
    broken.LastPageLosesItsCursor: shows_last_task_unlisted,
    broken.CleanupAtTheExpiryInstant: shows_cleanup_at_the_instant,
}


def run(demonstration: Demonstration, factory: Callable[..., Any], loop: str) -> None:
    clock = FakeClock()

    def make(config: StoreConfig | None = None) -> Any:
        return factory(clock=clock, config=config)

    anyio.run(demonstration, make, clock, backend=loop)


def test_gallery_is_complete_and_stable() -> None:
    assert len(GALLERY) >= 14
    assert len(set(GALLERY)) == len(GALLERY)
    assert set(DEMONSTRATIONS) == set(GALLERY)
    assert len({cls.__name__ for cls in GALLERY}) == len(GALLERY)
    required = {"TS-5", "TS-6", "TS-7", "TS-8", "TS-9", "TS-10", "TS-11", "TS-12",
                "TS-13", "TS-14", "TS-15", "TS-16", "TS-17", "TS-20",
                "SEC-3", "SEC-4", "SEC-5", "SEC-6", "SEC-7", "SEC-8", "SEC-9"}
    assert required <= {cls.violates for cls in GALLERY}


@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_gallery_class_is_well_formed(broken_class: type[Any]) -> None:
    clause = CLAUSES.get(broken_class.violates)
    assert clause is not None, f"{broken_class.violates} is not a clause of SPEC.md"
    assert clause.level == "MUST"
    doc = inspect.getdoc(broken_class) or ""
    assert doc and "\n" not in doc and doc != inspect.getdoc(GenericTaskStore)
    parameters = inspect.signature(broken_class).parameters
    assert list(parameters) == ["clock", "config", "security"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is None for p in parameters.values())
    clock = FakeClock()
    store = broken_class(clock=clock)
    assert isinstance(store, GenericTaskStore) and isinstance(store, TaskStore)
    assert type(store.backend) is InMemoryBackend and store.backend._clock is clock and store._clock is clock
    assert isinstance(broken_class(), TaskStore)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_bug_is_present(broken_class: type[Any], loop: str) -> None:
    run(DEMONSTRATIONS[broken_class], broken_class, loop)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("correct", CORRECT, ids=lambda f: f.__name__)
@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_demonstration_fails_on_correct_stores(broken_class: type[Any], correct: Callable[..., Any], loop: str) -> None:
    with pytest.raises(AssertionError):
        run(DEMONSTRATIONS[broken_class], correct, loop)
