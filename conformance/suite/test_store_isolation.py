"""TS-6, TS-7: the per-owner quota, and owners that can never see one another's tasks.

Concurrent creates against the quota are in test_store_concurrency.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    INTERNAL_ERROR,
    ResourceExhaustedError,
    StoreConfig,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
)
from conformance.checks.task_store import (
    OWNER,
    calls_as,
    indistinguishable,
    listed_ids,
    raised,
    refused_create,
    stored_result,
)
from conformance.harness import FakeClock, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies.owners import CLASHING_PAIRS, HOSTILE_OWNERS, SECRET_OWNER

pytestmark = pytest.mark.conformance_target("store")

# ---------------------------------------------------------------- TS-6: the quota


@covers("TS-6", "SEC-4")
@examples(20)
@given(limit=st.integers(min_value=1, max_value=4), data=st.data())
def test_quota_counts_live_tasks_terminal_ones_included(limited_store: Callable[..., SyncStore], limit: int, data: st.DataObject) -> None:
    store = limited_store(config=StoreConfig(max_tasks_per_owner=limit))
    mine = []
    for n in range(limit):
        task = store.create(OWNER, "m")
        how = data.draw(st.sampled_from(["live", "input_required", "completed", "failed", "cancelled"]), label=f"task {n}")
        if how == "cancelled":
            task = store.cancel(task.task_id, OWNER)
        elif how == "input_required":
            task = store.update_status(task.task_id, OWNER, TaskStatus.INPUT_REQUIRED)
        elif how != "live":
            task = store.complete_with_result(task.task_id, OWNER, TaskStatus(how), None, {"n": n})
        mine.append(task)
    error = refused_create("TS-6", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"),
                         f"create number {limit + 1} with max_tasks_per_owner={limit} "
                         f"(held: {[t.status.value for t in mine]}; terminal tasks count)")
    require("TS-6", error.limit == limit and error.code == INTERNAL_ERROR,
            f"ResourceExhaustedError(limit={error.limit!r}) with code {error.code}; expected limit {limit} and -32603")
    listed = listed_ids(store, OWNER)
    require("TS-6", sorted(listed) == sorted(t.task_id for t in mine),
            f"after the refused create the owner lists {len(listed)} tasks, expected the {limit} it held: the refusal wrote something")
    require("TS-6", all(store.get(t.task_id, OWNER) == t for t in mine), "the refused create changed a task")
    others = [store.create("bob", "m") for _ in range(limit)]
    require("TS-6", len({t.task_id for t in others}) == limit, "another owner could not fill its own quota")


@covers("TS-6", "SEC-4")
def test_expired_tasks_leave_the_quota(limited_store: Callable[..., SyncStore], fake_clock: FakeClock) -> None:
    store = limited_store(config=StoreConfig(max_tasks_per_owner=2))
    short = store.create(OWNER, "m", ttl=1000)
    store.create(OWNER, "m", ttl=60_000)
    fake_clock.advance(1.0)  # exactly at the short task's expiry: it is live and counts
    refused_create("TS-6", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"),
                 "create while a task is exactly at its expiresAt (still live, so the quota is full)")
    fake_clock.advance(0.001)
    expect_error("TS-6", TaskNotFoundError, lambda: store.get(short.task_id, OWNER), "get 1 ms past expiry")
    fresh = store.create(OWNER, "m")  # the expired task no longer counts, cleaned up or not
    require("TS-6", store.get(fresh.task_id, OWNER) == fresh, "the create that took the expired task's slot did not stick")
    refused_create("TS-6", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"), "create with two live tasks and max_tasks_per_owner=2")


# ---------------------------------------------------------------- TS-7: owner isolation


@covers("TS-7", "SEC-3")
def test_another_owners_task_is_exactly_a_missing_task(store: SyncStore) -> None:
    for owner, intruder in CLASHING_PAIRS:
        task = store.create(owner, "m")
        task = store.set_result(task.task_id, owner, {"secret": owner})
        missing = uuid.uuid4().hex
        for (method, theirs), (_, absent) in zip(calls_as(store, task.task_id, intruder), calls_as(store, missing, intruder)):
            a, b = raised(theirs), raised(absent)
            what = f"{method} by {intruder!r} of {owner!r}'s task"
            indistinguishable("TS-7", a, b, task.task_id, missing, what)
            if owner == SECRET_OWNER:
                require("TS-7", owner not in str(a) and intruder not in str(a), f"{what}: the message names an owner: {a}")
        listed = [t.task_id for t in store.list(intruder, limit=1_000).tasks]
        require("TS-7", task.task_id not in listed, f"{intruder!r}'s listing shows {owner!r}'s task {task.task_id}")
        require("TS-7", store.get(task.task_id, owner) == task, f"{intruder!r}'s refused calls changed {owner!r}'s task")
        require("TS-7", stored_result(store, task.task_id, owner) == {"secret": owner}, f"{owner!r}'s result changed")


@covers("TS-7", "SEC-3")
@examples(20)
@given(
    owners=st.lists(
        st.one_of(
            st.sampled_from(HOSTILE_OWNERS),
            st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8),
        ).filter(lambda o: o not in ("", "local")),
        min_size=2,
        max_size=5,
        unique=True,
    ),
    data=st.data(),
)
def test_listings_never_show_another_owners_task(make_store: Callable[..., SyncStore], owners: list[str], data: st.DataObject) -> None:
    store = make_store()
    held: dict[str, list[TaskRecord]] = {owner: [] for owner in owners}
    for owner in data.draw(st.lists(st.sampled_from(owners), max_size=10), label="creators"):
        held[owner].append(store.create(owner, "m"))
    for owner in owners:
        listed = listed_ids(store, owner)
        want = sorted(t.task_id for t in held[owner])
        require("TS-7", sorted(listed) == want,
                f"{owner!r} lists {len(listed)} task(s) {sorted(set(listed) - set(want))[:3]} beyond/short of its own {len(want)}; "
                f"owners present: {owners!r}")
        for other in owners:
            if other == owner:
                continue
            for task in held[other]:
                error = expect_error("TS-7", TaskNotFoundError, lambda: store.get(task.task_id, owner),
                                     f"get by {owner!r} of {other!r}'s task")
                require("TS-7", type(error) is TaskNotFoundError, f"get by {owner!r} of {other!r}'s task raised {type(error).__name__}")
    for owner, tasks in held.items():
        for task in tasks:
            require("TS-7", task.owner_id == owner and store.get(task.task_id, owner) == task,
                    f"{owner!r}'s task reads back with owner {task.owner_id!r}")


@covers("TS-7", "SEC-3")
def test_malformed_task_ids_are_not_found(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    tid = task.task_id
    middle = len(tid) // 2
    junk: list[Any] = [  # hostile: calls_as takes a str id; several of these are not even strings
        "", "../x", "x", tid.upper(), tid.lower(), tid + "\n", " " + tid, tid[:-1], tid + "0", tid[:middle] + "-" + tid[middle:],
        "*", tid[:middle] + "*", tid + "\x00", "x" * 10_000, 7, None, tid.encode(), [tid],
    ]
    for bad in [j for j in junk if j != tid]:  # every id here differs from the one the store issued
        for method, call in calls_as(store, bad, OWNER):
            expect_error("TS-7", TaskNotFoundError, call, f"{method} with the malformed task id {bad!r:.60}")
    require("TS-7", store.get(task.task_id, OWNER) == task, "calls with malformed ids changed the owner's task")
