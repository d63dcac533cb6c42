"""SEC-3, SEC-4, SEC-9: owners who cannot reach each other's tasks or quota, and storage that cannot be exploded.

The owners are look-alikes of each other (``a`` and ``a:b``, case and Unicode variants, a NUL
suffix), drawn as families, so a store that builds keys, prefixes or counters from owner ids
the naive way merges two of them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from conformance import (
    ConcurrentModificationError,
    InvalidCursorError,
    ResourceExhaustedError,
    StoreConfig,
    TaskError,
    TaskRecord,
    TaskStatus,
    TtlExceededError,
)
from conformance.checks.task_store import (
    OWNER,
    calls_as,
    indistinguishable,
    listed_ids,
    raised,
    refused_create,
    state_of,
)
from conformance.harness import CheckedStore, FakeClock, Harness, SyncStore
from conformance.harness.together import run_together
from conformance.machines.isolation import OwnerIsolationMachine
from conformance.plugin.profiles import examples, machine, scaled
from conformance.spec import covers, expect_error, require
from conformance.strategies.owners import owner_families, owner_pairs

pytestmark = pytest.mark.conformance_target("store")

# ---------------------------------------------------------------- SEC-3: another owner's task is a missing task


@pytest.mark.conformance_machine
@covers("SEC-3", "SEC-4")
def test_owner_isolation_probe_machine(harness: Harness) -> None:
    assert settings.default is not None  # Hypothesis always has a profile loaded (its own default at least)
    budget = settings(max_examples=scaled(30), stateful_step_count=settings.default.stateful_step_count // 2)
    run_state_machine_as_test(machine(OwnerIsolationMachine.for_harness(harness)), settings=budget)


STATES = ("working", "input_required", "with a result", "completed", "failed", "cancelled", "expired")


def _bring_to(store: SyncStore, clock: FakeClock | None, owner: str, state: str) -> TaskRecord:
    task = store.create(owner, "m", ttl=1_000 if state == "expired" else None)
    if state == "input_required":
        store.update_status(task.task_id, owner, TaskStatus.INPUT_REQUIRED, "need input")
    elif state == "with a result":
        store.set_result(task.task_id, owner, {"secret": "result"})
    elif state in ("completed", "failed"):
        store.complete_with_result(task.task_id, owner, TaskStatus(state), "done", {"secret": "result"})
    elif state == "cancelled":
        store.cancel(task.task_id, owner)
    elif state == "expired":
        assert clock is not None
        clock.advance(2.0)
    return task


@covers("SEC-3")
@examples(20)
@given(pair=owner_pairs())
def test_intruders_get_exactly_what_a_missing_task_gets(
    make_store: Callable[..., SyncStore], store_clock: FakeClock | None, pair: tuple[str, str]
) -> None:
    """Every state in every example (expired last: it moves the clock), so no state depends on what Hypothesis draws."""
    owner, intruder = pair
    store = make_store()
    older = [store.create(owner, "m") for _ in range(2)]  # so the owner's listing pages and hands out a cursor
    for state in STATES:
        if state == "expired" and store_clock is None:
            continue  # expiry needs the kit's clock
        task = _bring_to(store, store_clock, owner, state)
        before = raised(lambda: state_of(store, task.task_id, owner))
        missing = uuid.uuid4().hex
        for (method, theirs), (_, absent) in zip(calls_as(store, task.task_id, intruder), calls_as(store, missing, intruder)):
            indistinguishable("SEC-3", raised(theirs), raised(absent), task.task_id, missing,
                              f"{method} by {intruder!r} of {owner!r}'s {state} task")
        after = raised(lambda: state_of(store, task.task_id, owner))
        require("SEC-3", repr(after) == repr(before) if state == "expired" else after == before,
                f"{intruder!r}'s refused calls changed {owner!r}'s {state} task: {before!r:.200} became {after!r:.200}")
        older.append(task)
    require("SEC-3", not set(listed_ids(store, intruder, "SEC-3")) & {t.task_id for t in older},
            f"{intruder!r}'s listing shows tasks of {owner!r}")
    page = store.list(owner, limit=1)
    if page.next_cursor is not None:
        expect_error("SEC-3", InvalidCursorError, lambda: store.list(intruder, cursor=page.next_cursor),
                     f"list by {intruder!r} with a cursor from {owner!r}'s listing")


# ---------------------------------------------------------------- SEC-4: quotas are per owner


@covers("SEC-4")
@examples(30)
@given(owners=owner_families(2, 4), data=st.data())
def test_lookalike_owners_never_share_a_quota(limited_store: Callable[..., SyncStore], owners: list[str], data: st.DataObject) -> None:
    limit = 2
    store = limited_store(config=StoreConfig(max_tasks_per_owner=limit))
    order = data.draw(st.permutations([owner for owner in owners for _ in range(limit)]), label="creates")
    held = dict.fromkeys(owners, 0)
    for owner in order:
        outcome = raised(lambda: store.create(owner, "m"))
        require("SEC-4", isinstance(outcome, TaskRecord),
                f"create number {held[owner] + 1} of {limit} by {owner!r} raised {outcome!r}; its look-alikes hold {held}: "
                "another owner's tasks used up this owner's quota")
        held[owner] += 1
    for owner in owners:
        refused_create("SEC-4", store, owner, ResourceExhaustedError, lambda: store.create(owner, "m"),
                     f"create by {owner!r} holding its {limit} tasks (look-alikes {owners!r} hold theirs)")


# ---------------------------------------------------------------- SEC-9: storage explosion

RACING_OWNERS = ("a", "a:b", "A", "a\x00")


@covers("SEC-9")
def test_racing_creates_never_overfill_any_owner(limited_store: Callable[..., SyncStore]) -> None:
    limit, racers = 2, 5
    for round_, settled in enumerate((0, 1, 2)):
        store = limited_store(config=StoreConfig(max_tasks_per_owner=limit))
        held = {owner: {store.create(owner, "m").task_id for _ in range(settled)} for owner in RACING_OWNERS}

        async def program(checked: CheckedStore) -> list[Any]:
            calls: list[Callable[[], Awaitable[Any]]] = [
                partial(checked.create, owner, "m") for _ in range(racers) for owner in RACING_OWNERS
            ]
            return await run_together(calls, catch=(TaskError,))

        outcomes = store.run(program)
        for owner in RACING_OWNERS:
            made = {o.task_id for o in outcomes if isinstance(o, TaskRecord) and o.owner_id == owner}
            what = f"round {round_}: {racers} racing creates each for {len(RACING_OWNERS)} look-alike owners, {settled} of {limit} slots taken"
            require("SEC-9", settled + len(made) <= limit, f"{what}: {owner!r} now holds {settled + len(made)} tasks")
            require("SEC-9", set(listed_ids(store, owner, "SEC-9")) == held[owner] | made,
                    f"{what}: {owner!r} lists other tasks than the {settled} it held and the {len(made)} creates that succeeded")
        for error in (o for o in outcomes if not isinstance(o, TaskRecord)):
            require("SEC-9", isinstance(error, (ResourceExhaustedError, ConcurrentModificationError)),
                    f"round {round_}: a refused create raised {type(error).__name__}: {error}")


@covers("SEC-9")
@examples(10)
@given(excess=st.sampled_from([1, 999, 1_000, 59_999, 86_400_000, 2**31, 2**62]))
def test_ttls_over_the_maximum_are_refused_never_clamped(harness: Harness, make_store: Callable[..., SyncStore], excess: int) -> None:
    store = make_store()
    maximum = harness.store_config(store).max_ttl_ms
    assume(maximum is not None)
    assert maximum is not None  # assume() ended the example otherwise
    asked = maximum + excess
    error = refused_create("SEC-9", store, OWNER, TtlExceededError, lambda: store.create(OWNER, "m", ttl=asked),
                         f"create with ttl={asked} ({excess} ms over max_ttl_ms={maximum})")
    require("SEC-9", (error.requested_ms, error.max_ms) == (asked, maximum),
            f"TtlExceededError carries requested_ms={error.requested_ms!r}, max_ms={error.max_ms!r}; expected {asked}, {maximum}")
    require("SEC-9", listed_ids(store, OWNER, "SEC-9") == [], "a create refused for its TTL left a task behind")
    kept = store.create(OWNER, "m", ttl=maximum)
    require("SEC-9", kept.ttl == maximum, f"create with ttl={maximum} (the maximum) reports ttl={kept.ttl}")
