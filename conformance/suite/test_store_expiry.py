"""TS-15, TS-22: an expired task is gone to every operation, and cleanup removes exactly the expired.

Exact boundaries need the kit's clock (the tests skip, visibly, for a target that does not
take one). Whether a store can still see an expired record depends on its backend's
declared ``expired_records``: with ``KEPT_UNTIL_CLEANUP`` the store says TaskExpiredError,
with ``HIDDEN`` the record is gone and it says TaskNotFoundError, its base class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import (
    INVALID_PARAMS,
    ExpiredRecords,
    NotReadyError,
    ResourceExhaustedError,
    StoreConfig,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskStatus,
)
from conformance.checks.task_store import OWNER, raised, refused_create
from conformance.harness import FakeClock, Harness, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require

pytestmark = pytest.mark.conformance_target("store")

OTHER = "bob"


def _calls(store: SyncStore, task_id: str, owner: str) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("get", lambda: store.get(task_id, owner)),
        ("update_status", lambda: store.update_status(task_id, owner, TaskStatus.COMPLETED)),
        ("set_variables", lambda: store.set_variables(task_id, owner, {"a": 1})),
        ("set_result", lambda: store.set_result(task_id, owner, 1)),
        ("get_result", lambda: store.get_result(task_id, owner)),
        ("complete_with_result", lambda: store.complete_with_result(task_id, owner, TaskStatus.COMPLETED, None, 1)),
        ("cancel", lambda: store.cancel(task_id, owner)),
    ]


def _listed(store: SyncStore, owner: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = store.list(owner, cursor=cursor, limit=5)
        ids.extend(t.task_id for t in page.tasks)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor


def _expected_gone(harness: Harness) -> type[TaskError]:
    kept = harness.capabilities.expired_records is ExpiredRecords.KEPT_UNTIL_CLEANUP
    return TaskExpiredError if kept else TaskNotFoundError


@covers("TS-15", "TS-22")
def test_expired_task_is_gone_to_every_operation(harness: Harness, limited_store: Callable[..., SyncStore], fake_clock: FakeClock) -> None:
    store = limited_store(config=StoreConfig(max_tasks_per_owner=2))
    task = store.create(OWNER, "m", ttl=1000)
    task = store.set_result(task.task_id, OWNER, {"r": 1})
    keep = store.create(OWNER, "m", ttl=60_000)
    fake_clock.advance(1.0)  # exactly at expiresAt: still live (the boundary is exclusive)
    require("TS-15", store.get(task.task_id, OWNER) == task, "a task read at exactly its expiresAt instant is not the live task")
    answer = raised(lambda: store.get_result(task.task_id, OWNER))
    require("TS-15", answer == {"r": 1} or isinstance(answer, NotReadyError),  # a live task's staged result: either (TS-13)
            f"get_result at exactly expiresAt answered {answer!r}; the task is still live")
    require("TS-15", sorted(_listed(store, OWNER)) == sorted([task.task_id, keep.task_id]), "a task at exactly its expiresAt is not listed")
    refused_create("TS-15", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"), "create while a task sits exactly at expiresAt (it still counts)")

    fake_clock.advance(0.001)
    gone = _expected_gone(harness)
    mode = harness.capabilities.expired_records.value
    for method, call in _calls(store, task.task_id, OWNER):
        error = expect_error("TS-15", gone, call, f"{method} 1 ms past expiresAt (backend declares {mode})")
        require("TS-15", isinstance(error, TaskNotFoundError) and error.code == INVALID_PARAMS,
                f"{method} of an expired task raised {type(error).__name__} with code {error.code}; "
                "expected a TaskNotFoundError (TaskExpiredError is one) with -32602")
    for method, call in _calls(store, task.task_id, OTHER):
        error = expect_error("TS-15", TaskNotFoundError, call, f"{method} by another owner of an expired task")
        require("TS-15", type(error) is TaskNotFoundError,
                f"{method} by another owner of an expired task raised {type(error).__name__}; the owner is checked first, "
                "so it is plain TaskNotFoundError")
    require("TS-15", _listed(store, OWNER) == [keep.task_id], f"the listing still shows the expired task: {_listed(store, OWNER)}")
    fresh = store.create(OWNER, "m")  # the expired task no longer counts towards the quota
    require("TS-15", store.get(keep.task_id, OWNER) == keep, "the unexpired task changed")

    removed = store.cleanup_expired()
    kept = harness.capabilities.expired_records is ExpiredRecords.KEPT_UNTIL_CLEANUP
    require("TS-22", removed == 1 if kept else removed in (0, 1), f"cleanup_expired returned {removed} with one expired task")
    for method, call in _calls(store, task.task_id, OWNER):
        error = expect_error("TS-15", TaskNotFoundError, call, f"{method} of an expired task after cleanup")
        require("TS-15", type(error) is TaskNotFoundError, f"{method} after cleanup raised {type(error).__name__}; the record is gone")
    require("TS-15", sorted(_listed(store, OWNER)) == sorted([keep.task_id, fresh.task_id]), "cleanup changed the live tasks")


@covers("TS-15", "TS-22")
@examples(20)
@given(
    ttls=st.lists(st.tuples(st.sampled_from([OWNER, OTHER, "carol"]), st.integers(min_value=1, max_value=3000), st.integers(0, 400)),
                  min_size=1, max_size=10),
    wait=st.integers(min_value=0, max_value=4000),
)
# The boundary, every run: one task exactly at its expiry instant (live), one a millisecond past, one a millisecond short.
@example(ttls=[(OWNER, 1000, 0), (OTHER, 999, 0), (OWNER, 1001, 0)], wait=1000)
def test_cleanup_removes_exactly_the_expired(harness: Harness, make_store: Callable[..., SyncStore], fake_clock: FakeClock,
                                            ttls: list[tuple[str, int, int]], wait: int) -> None:
    store = make_store()
    tasks = []
    for owner, ttl, gap in ttls:
        fake_clock.advance(gap / 1000)
        tasks.append(store.create(owner, "m", ttl=ttl))
    fake_clock.advance(wait / 1000)
    now_ms = round(fake_clock() * 1000)
    expired = []
    for t in tasks:
        assert t.ttl is not None  # every task was created with a ttl (TS-5 checks that it reads back as given)
        if round(t.created_at * 1000) + t.ttl < now_ms:
            expired.append(t)
    live = [t for t in tasks if t not in expired]
    removed = store.cleanup_expired()
    if harness.capabilities.expired_records is ExpiredRecords.KEPT_UNTIL_CLEANUP:
        require("TS-22", removed == len(expired),
                f"cleanup_expired returned {removed}; exactly {len(expired)} of {len(tasks)} tasks are strictly past their expiry")
    else:
        require("TS-22", 0 <= removed <= len(expired), f"cleanup_expired returned {removed}; at most {len(expired)} tasks had expired")
    for task in live:
        require("TS-22", store.get(task.task_id, task.owner_id) == task,
                f"cleanup removed or changed a live task (created {task.created_at}, ttl {task.ttl} ms, now {now_ms / 1000})")
    for task in expired:
        error = expect_error("TS-15", TaskNotFoundError, lambda: store.get(task.task_id, task.owner_id), "get of an expired task after cleanup")
        require("TS-15", type(error) is TaskNotFoundError, f"after cleanup, get of an expired task raised {type(error).__name__}")
    require("TS-22", store.cleanup_expired() == 0, "a second cleanup_expired removed tasks again")
    for owner in (OWNER, OTHER, "carol"):
        require("TS-15", sorted(_listed(store, owner)) == sorted(t.task_id for t in live if t.owner_id == owner),
                f"{owner!r}'s listing after cleanup is not exactly its live tasks")


@covers("TS-22")
def test_cleanup_without_expired_tasks_removes_nothing(store: SyncStore) -> None:
    require("TS-22", store.cleanup_expired() == 0, "cleanup_expired on an empty store returned a count other than 0")
    tasks = [store.create(owner, "m") for owner in (OWNER, OTHER, OWNER)]
    done = store.complete_with_result(tasks[0].task_id, OWNER, TaskStatus.COMPLETED, None, 1)
    require("TS-22", store.cleanup_expired() == 0, "cleanup_expired removed tasks that are an hour from expiry")
    for task in [done, *tasks[1:]]:
        require("TS-22", store.get(task.task_id, task.owner_id) == task, "cleanup_expired changed a live task")
