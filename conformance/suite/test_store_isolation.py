"""TS-6, TS-7: the per-owner quota, and owners that can never see one another's tasks.

Concurrent creates against the quota are in test_store_concurrency.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import (
    INTERNAL_ERROR,
    ResourceExhaustedError,
    StoreConfig,
    TaskError,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
)
from conformance.harness import FakeClock, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require

OWNER = "alice"

#: Owner ids that collide under a careless key scheme, case folding, Unicode normalisation or trimming.
HOSTILE_OWNERS = [
    "a", "a:b", "a:", ":a", "A", "a ", " a", "a/", "a/b", "a\\b", "a\x00", "a\x00b", "a\n", "ß", "ss", "SS", "ẞ",
    "é", "e\u0301", "ａ", "İ", "i\u0307", "a%3Ab", "a%2Fb", "tasks/", "tasks", "*", "%", "?", "a*", "..", "a" * 300,
]
#: Pairs that must stay apart: one owner's tasks are invisible to the other.
CLASHING_PAIRS = [
    ("a", "a:b"), ("a:b", "a"), ("A", "a"), ("ß", "ss"), ("ss", "SS"), ("é", "e\u0301"), ("a", "a "), ("a/", "a"),
    ("a", "a\x00"), ("a", "ａ"), ("owner-7f3a-secret", "intruder-91c2-secret"),
]
#: Distinctive owners: a message that contains one of them names it.
SECRET_OWNER, INTRUDER = "owner-7f3a-secret", "intruder-91c2-secret"


def _walk(store: SyncStore, owner: str) -> list[str]:
    """The ids of every task the owner lists, page by page."""
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        page = store.list(owner, cursor=cursor, limit=3)
        ids.extend(t.task_id for t in page.tasks)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor
    require("TS-16", False, f"the listing of {owner!r} never ended")
    return ids


# ---------------------------------------------------------------- TS-6: the quota


@covers("TS-6")
@settings(max_examples=examples(20))
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
    error = expect_error("TS-6", ResourceExhaustedError, lambda: store.create(OWNER, "m"),
                         f"create number {limit + 1} with max_tasks_per_owner={limit} "
                         f"(held: {[t.status.value for t in mine]}; terminal tasks count)")
    require("TS-6", error.limit == limit and error.code == INTERNAL_ERROR,
            f"ResourceExhaustedError(limit={error.limit!r}) with code {error.code}; expected limit {limit} and -32603")
    listed = _walk(store, OWNER)
    require("TS-6", sorted(listed) == sorted(t.task_id for t in mine),
            f"after the refused create the owner lists {len(listed)} tasks, expected the {limit} it held: the refusal wrote something")
    require("TS-6", all(store.get(t.task_id, OWNER) == t for t in mine), "the refused create changed a task")
    others = [store.create("bob", "m") for _ in range(limit)]
    require("TS-6", len({t.task_id for t in others}) == limit, "another owner could not fill its own quota")


@covers("TS-6")
def test_expired_tasks_leave_the_quota(limited_store: Callable[..., SyncStore], fake_clock: FakeClock) -> None:
    store = limited_store(config=StoreConfig(max_tasks_per_owner=2))
    short = store.create(OWNER, "m", ttl=1000)
    store.create(OWNER, "m", ttl=60_000)
    fake_clock.advance(1.0)  # exactly at the short task's expiry: it is live and counts
    expect_error("TS-6", ResourceExhaustedError, lambda: store.create(OWNER, "m"),
                 "create while a task is exactly at its expiresAt (still live, so the quota is full)")
    fake_clock.advance(0.001)
    expect_error("TS-6", TaskNotFoundError, lambda: store.get(short.task_id, OWNER), "get 1 ms past expiry")
    fresh = store.create(OWNER, "m")  # the expired task no longer counts, cleaned up or not
    require("TS-6", store.get(fresh.task_id, OWNER) == fresh, "the create that took the expired task's slot did not stick")
    expect_error("TS-6", ResourceExhaustedError, lambda: store.create(OWNER, "m"), "create with two live tasks and max_tasks_per_owner=2")


# ---------------------------------------------------------------- TS-7: owner isolation


def _calls_as(store: SyncStore, task_id: str, owner: str) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("get", lambda: store.get(task_id, owner)),
        ("update_status", lambda: store.update_status(task_id, owner, TaskStatus.COMPLETED, "hijacked")),
        ("set_variables", lambda: store.set_variables(task_id, owner, {"a": 1})),
        ("set_result", lambda: store.set_result(task_id, owner, 1)),
        ("get_result", lambda: store.get_result(task_id, owner)),
        ("complete_with_result", lambda: store.complete_with_result(task_id, owner, TaskStatus.FAILED, None, None)),
        ("cancel", lambda: store.cancel(task_id, owner)),
    ]


def _raised(call: Callable[[], Any]) -> BaseException | Any:
    try:
        return call()
    except TaskError as exc:
        return exc


@covers("TS-7")
def test_another_owners_task_is_exactly_a_missing_task(store: SyncStore) -> None:
    for owner, intruder in CLASHING_PAIRS:
        task = store.create(owner, "m")
        task = store.set_result(task.task_id, owner, {"secret": owner})
        missing = uuid.uuid4().hex
        for (method, theirs), (_, absent) in zip(_calls_as(store, task.task_id, intruder), _calls_as(store, missing, intruder)):
            a, b = _raised(theirs), _raised(absent)
            what = f"{method} by {intruder!r} of {owner!r}'s task"
            require("TS-7", isinstance(a, TaskNotFoundError) and type(a) is type(b),
                    f"{what} answered {type(a).__name__}: {a}; a never-issued id answers {type(b).__name__}: {b}. "
                    "Another owner's task must raise exactly what a missing task raises")
            require("TS-7", a.code == b.code and str(a).replace(task.task_id, "<id>") == str(b).replace(missing, "<id>"),
                    f"{what}: message {str(a)!r} (code {a.code}) differs from a missing task's {str(b)!r} (code {b.code}) "
                    "beyond the id quoted")
            require("TS-7", (a.__cause__, a.__context__, b.__cause__, b.__context__) == (None, None, None, None),
                    f"{what}: the error carries a __cause__ or __context__ ({a.__cause__!r}, {a.__context__!r}), "
                    "which can betray that the task exists")
            if owner == SECRET_OWNER:
                require("TS-7", owner not in str(a) and intruder not in str(a), f"{what}: the message names an owner: {a}")
        listed = [t.task_id for t in store.list(intruder, limit=1_000).tasks]
        require("TS-7", task.task_id not in listed, f"{intruder!r}'s listing shows {owner!r}'s task {task.task_id}")
        require("TS-7", store.get(task.task_id, owner) == task, f"{intruder!r}'s refused calls changed {owner!r}'s task")
        require("TS-7", store.get_result(task.task_id, owner) == {"secret": owner}, f"{owner!r}'s result changed")


@covers("TS-7")
@settings(max_examples=examples(20))
@given(
    owners=st.lists(
        st.one_of(
            st.sampled_from(HOSTILE_OWNERS),
            st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8),
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
        listed = _walk(store, owner)
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


@covers("TS-7")
def test_malformed_task_ids_are_not_found(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    junk: list[object] = [
        "", "../x", "x", task.task_id.upper(), task.task_id + "\n", " " + task.task_id, task.task_id[:-1], task.task_id + "0",
        task.task_id[:8] + "-" + task.task_id[8:], "*", task.task_id[:16] + "*", "x" * 10_000, 7, None, task.task_id.encode(),
        [task.task_id], str(uuid.UUID(task.task_id)),
    ]
    for bad in junk:
        for method, call in _calls_as(store, bad, OWNER):  # type: ignore[arg-type]
            expect_error("TS-7", TaskNotFoundError, call, f"{method} with the malformed task id {bad!r:.60}")
    require("TS-7", store.get(task.task_id, OWNER) == task, "calls with malformed ids changed the owner's task")
