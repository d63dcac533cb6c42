"""TS-4, TS-5, TS-8, TS-9, TS-14: creating tasks, their TTL, and the MCP status machine."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any, Self

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    INVALID_PARAMS,
    InvalidTransitionError,
    NotReadyError,
    StoreConfig,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
    TtlExceededError,
    VariableValidationError,
)
from conformance.checks.task_store import OWNER, refused_create
from conformance.harness import FakeClock, Harness, SyncStore
from conformance.harness.answers import is_int
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require

pytestmark = pytest.mark.conformance_target("store")

TASK_ID = re.compile(r"^[0-9a-f]{32}$")

W, I, C, F, X = (TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
#: TS-8, spelled out: every status a live task may be set to (itself included: a refresh), none from a terminal one.
ALLOWED: dict[TaskStatus, set[TaskStatus]] = {W: {W, I, C, F, X}, I: {W, I, C, F, X}, C: set(), F: set(), X: set()}
TERMINAL = (C, F, X)


def _millis(seconds: float) -> int:
    return round(seconds * 1000)


def _at_millis(value: float, expected: float) -> bool:
    """``value`` is the instant ``expected`` at millisecond precision."""
    return abs(value - _millis(expected) / 1000) < 1e-6


class _Now:
    """The instant a call happened: exact with the clock the store stamps with, a wall-clock window otherwise."""

    def __init__(self, clock: FakeClock | None) -> None:
        self.clock = clock
        self.low = self.high = 0.0

    def __enter__(self) -> Self:
        self.low = self.clock() if self.clock else time.time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.high = self.clock() if self.clock else time.time()

    def holds(self, stamp: float) -> bool:
        if self.clock is not None:
            return _at_millis(stamp, self.low)
        return _millis(self.low) - 1 <= _millis(stamp) <= _millis(self.high) + 1

    def describe(self) -> str:
        return f"{self.low:.3f}" if self.clock else f"between {self.low:.3f} and {self.high:.3f} (wall clock)"


def _in_status(store: SyncStore, status: TaskStatus, owner: str = OWNER) -> TaskRecord:
    task = store.create(owner, "tools/call")
    return task if status is W else store.update_status(task.task_id, owner, status)


# ---------------------------------------------------------------- TS-4: create


@covers("TS-4")
def test_create_starts_a_working_task(harness: Harness, store: SyncStore, store_clock: FakeClock | None) -> None:
    config = harness.store_config(store)
    with _Now(store_clock) as now:
        task = store.create(OWNER, "tools/call")
    require("TS-4", task.status is W and task.status_message is None,
            f"a new task is {task.status!r} with message {task.status_message!r}; it must be working with no message")
    require("TS-4", task.variables == {} and task.has_result is False,
            f"a new task holds variables {task.variables!r} and has_result={task.has_result!r}; it must hold neither")
    require("TS-4", (task.owner_id, task.request_method) == (OWNER, "tools/call"),
            f"create('alice', 'tools/call') returned owner {task.owner_id!r} and method {task.request_method!r}")
    require("TS-4", task.created_at == task.last_updated_at and now.holds(task.created_at),
            f"createdAt={task.created_at!r} lastUpdatedAt={task.last_updated_at!r}; both must be the creation instant "
            f"{now.describe()} at millisecond precision")
    require("TS-4", (task.ttl, task.poll_interval) == (config.default_ttl_ms, config.poll_interval_ms),
            f"a task created without a TTL has ttl={task.ttl!r} pollInterval={task.poll_interval!r}; "
            f"the store's config says {config.default_ttl_ms!r} and {config.poll_interval_ms!r}")
    require("TS-4", isinstance(task.task_id, str) and task.task_id != "", f"task id {task.task_id!r} is not a non-empty string")
    require("TS-4", is_int(task.version) and task.version >= 1, f"a new task has version {task.version!r}; versions are ints from 1")
    require("TS-4", store.get(task.task_id, OWNER) == task, "get right after create does not return the task create returned")
    error = expect_error("TS-4", NotReadyError, lambda: store.get_result(task.task_id, OWNER), "get_result of a new task")
    require("TS-4", error.status is W, f"a new task's NotReadyError.status is {error.status!r}, expected working")


@covers("TS-4")
def test_task_ids_are_never_reused(store: SyncStore, clock: FakeClock | None) -> None:
    seen: set[str] = set()
    for owner in ("alice", "bob", "carol"):
        for _ in range(12):
            task = store.create(owner, "m", ttl=1 if clock else None)
            require("TS-4", task.task_id not in seen, f"create returned the id {task.task_id} a second time")
            seen.add(task.task_id)
    if clock is None:
        return
    clock.advance(0.002)  # every task above has expired
    store.cleanup_expired()
    for owner in ("alice", "bob", "carol"):
        for _ in range(12):
            task = store.create(owner, "m")
            require("TS-4", task.task_id not in seen,
                    f"create returned {task.task_id}, the id of a task that expired and was cleaned up; ids are never reused")
            seen.add(task.task_id)


@covers("TS-4", "SEC-6", "TS-11")
@examples(20)
@given(char=st.sampled_from(["é", "€", "🔑", "ß", "中"]), data=st.data())
def test_request_method_is_a_bounded_string(limited_store: Callable[..., SyncStore], char: str, data: st.DataObject) -> None:
    store = limited_store(config=StoreConfig(max_string_bytes=16))
    width = len(char.encode())
    wide = data.draw(st.integers(min_value=0, max_value=16 // width), label="wide characters")
    exact = "m" * (16 - wide * width) + char * wide
    task = store.create(OWNER, exact)  # a refusal here breaks TS-11's string limit, named by the harness
    require("TS-4", task.request_method == exact and store.get(task.task_id, OWNER).request_method == exact,
            f"a request method of exactly max_string_bytes=16 UTF-8 bytes ({exact!r}) did not read back")
    over = "m" * (17 - width) + char  # 17 bytes, its last character straddling the limit
    # Any: most of these are hostile, not strings at all.
    refusals: list[tuple[Any, str]] = [(over, "a 17-byte method"), (None, "None"), (5, "an int"), (b"tools/call", "bytes"), ("m\ud800", "a lone surrogate")]
    for method, what in refusals:
        # Strings are bounded in UTF-8 bytes and must be strings: TS-11's rule, for request methods too.
        refused_create("TS-11", store, OWNER, VariableValidationError, lambda: store.create(OWNER, method), f"create with {what} as request method ({method!r})")
    listed = store.list(OWNER).tasks
    require("TS-4", [t.task_id for t in listed] == [task.task_id], f"refused creates left tasks behind: the owner lists {len(listed)}")


@covers("TS-4", "TS-5")
def test_every_mutation_stamps_last_updated_at(store: SyncStore, store_clock: FakeClock | None) -> None:
    task = store.create(OWNER, "m")
    other = store.create(OWNER, "m")
    steps: list[tuple[str, str, Callable[[], TaskRecord]]] = [
        (task.task_id, "update_status(input_required)", lambda: store.update_status(task.task_id, OWNER, I)),
        (task.task_id, "update_status(working, 'step')", lambda: store.update_status(task.task_id, OWNER, W, "step")),
        (task.task_id, "set_variables", lambda: store.set_variables(task.task_id, OWNER, {"a": 1})),
        (task.task_id, "set_variables({})", lambda: store.set_variables(task.task_id, OWNER, {})),
        (task.task_id, "set_result", lambda: store.set_result(task.task_id, OWNER, {"partial": True})),
        (task.task_id, "cancel", lambda: store.cancel(task.task_id, OWNER)),
        (other.task_id, "complete_with_result", lambda: store.complete_with_result(other.task_id, OWNER, C, None, 1)),
    ]
    before = {task.task_id: task, other.task_id: other}
    for task_id, what, step in steps:
        if store_clock is not None:
            store_clock.advance(1.5)
        with _Now(store_clock) as now:
            updated = step()
        previous = before[task_id]
        require("TS-4", now.holds(updated.last_updated_at),
                f"{what} left lastUpdatedAt at {updated.last_updated_at!r}; every write sets it to now ({now.describe()})")
        require("TS-4", updated.created_at == previous.created_at, f"{what} changed createdAt from {previous.created_at} to {updated.created_at}")
        require("TS-4", updated.version > previous.version,
                f"{what} moved the version from {previous.version} to {updated.version}; every write raises it")
        require("TS-5", updated.expires_at == previous.expires_at and updated.ttl == previous.ttl,
                f"{what} moved the expiry from {previous.expires_at} to {updated.expires_at}; updates never extend the TTL")
        require("TS-4", store.get(task_id, OWNER) == updated, f"get after {what} does not return the task {what} returned")
        before[task_id] = updated
    reread = store.get(task.task_id, OWNER)
    store.get_result(task.task_id, OWNER)
    store.list(OWNER)
    require("TS-4", store.get(task.task_id, OWNER) == reread, "reads (get, get_result, list) changed the task")


# ---------------------------------------------------------------- TS-5: TTL


@covers("TS-5")
@examples(20)
@given(data=st.data())
def test_ttl_is_the_default_or_kept_exactly(harness: Harness, make_store: Callable[..., SyncStore], clock: FakeClock | None,
                                            data: st.DataObject) -> None:
    store = make_store()
    config = harness.store_config(store)
    top = config.max_ttl_ms if config.max_ttl_ms is not None else 10**10
    ttl = data.draw(st.one_of(st.none(), st.sampled_from([1, 2, top - 1, top]), st.integers(min_value=1, max_value=top)), label="ttl")
    task = store.create(OWNER, "m", ttl=ttl)
    want = config.default_ttl_ms if ttl is None else ttl
    require("TS-5", task.ttl == want and task.to_wire()["ttl"] == want,
            f"create(ttl={ttl!r}) made a task with ttl {task.ttl!r}; expected {want!r} (kept exactly, never clamped)")
    expected_expiry = None if want is None else task.created_at + want / 1000
    require("TS-5", (task.expires_at is None) == (expected_expiry is None)
            and (expected_expiry is None or (task.expires_at is not None and abs(task.expires_at - expected_expiry) < 1e-6)),
            f"create(ttl={ttl!r}) expires at {task.expires_at!r}; the TTL runs from createdAt {task.created_at!r}")
    if clock is not None or want is None or want >= 60_000:  # on a wall clock, a tiny TTL may run out before the read
        require("TS-5", store.get(task.task_id, OWNER).ttl == want, f"the TTL {want!r} did not read back")


@covers("TS-5", "SEC-9")
@examples(20)
@given(data=st.data())
def test_ttl_outside_range_is_refused_never_clamped(harness: Harness, make_store: Callable[..., SyncStore], data: st.DataObject) -> None:
    store = make_store()
    config = harness.store_config(store)
    top = config.max_ttl_ms if config.max_ttl_ms is not None else None
    bad = [
        st.integers(max_value=0),
        st.sampled_from([0, -1, True, False, 1.0, 1000.5, "1000", b"1000", [1000]]),
        st.floats(allow_nan=False),
    ]
    if top is not None:
        bad += [st.integers(min_value=top + 1), st.just(top + 1)]
    ttl = data.draw(st.one_of(*bad), label="ttl")
    error = refused_create("TS-5", store, OWNER, TtlExceededError, lambda: store.create(OWNER, "m", ttl=ttl), f"create(ttl={ttl!r}) with max_ttl_ms={top!r}")
    require("TS-5", type(error.requested_ms) is type(ttl) and error.requested_ms == ttl and error.max_ms == top,
            f"TtlExceededError(requested_ms={error.requested_ms!r}, max_ms={error.max_ms!r}); expected {ttl!r} and {top!r}")
    require("TS-5", error.code == INVALID_PARAMS, f"TtlExceededError carries code {error.code}, expected -32602")
    listed = store.list(OWNER).tasks
    require("TS-5", listed == (), f"a refused create(ttl={ttl!r}) left {len(listed)} task(s) behind")


@covers("TS-5")
def test_ttl_runs_from_creation(store: SyncStore, fake_clock: FakeClock) -> None:
    task = store.create(OWNER, "m", ttl=1000)
    fake_clock.advance(0.6)
    store.set_variables(task.task_id, OWNER, {"a": 1})
    store.update_status(task.task_id, OWNER, I, "still going")
    fake_clock.advance(0.4)  # exactly createdAt + ttl: still live
    live = store.get(task.task_id, OWNER)
    require("TS-5", live.ttl == 1000 and live.expires_at == task.expires_at,
            f"after two updates the task's ttl/expiry are {live.ttl!r}/{live.expires_at!r}; they were {task.ttl!r}/{task.expires_at!r}")
    fake_clock.advance(0.001)
    expect_error("TS-5", TaskNotFoundError, lambda: store.get(task.task_id, OWNER),
                 "get 1 ms past createdAt + ttl of a task updated 400 ms earlier (updates never extend the TTL)")


@covers("TS-5")
def test_no_default_ttl_means_never_expiring(limited_store: Callable[..., SyncStore], fake_clock: FakeClock) -> None:
    store = limited_store(config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
    forever = store.create(OWNER, "m")
    require("TS-5", forever.ttl is None and forever.expires_at is None,
            f"with default_ttl_ms=None a task got ttl {forever.ttl!r}, expiry {forever.expires_at!r}; it must never expire")
    long = store.create(OWNER, "m", ttl=10**12)  # no maximum: 31 years are kept
    require("TS-5", long.ttl == 10**12, f"with max_ttl_ms=None, create(ttl=10**12) made ttl {long.ttl!r}")
    fake_clock.advance(10**7)
    require("TS-5", store.get(forever.task_id, OWNER).task_id == forever.task_id, "a task without a TTL expired")
    require("TS-5", store.cleanup_expired() == 0, "cleanup removed a task without a TTL")


@covers("TS-5", "TS-2", "SEC-9")
def test_ttl_without_maximum_never_escapes_as_a_foreign_error(limited_store: Callable[..., SyncStore]) -> None:
    """With no maximum, a TTL too long to write down must still be kept or refused as a TaskError."""
    store = limited_store(config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
    for ttl in (10**15, 2**53, 2**63 - 1, 10**30):
        try:
            task = store.create(OWNER, "m", ttl=ttl)
        except TtlExceededError:
            continue
        require("TS-5", task.ttl == ttl and store.get(task.task_id, OWNER).ttl == ttl,
                f"with max_ttl_ms=None, create(ttl={ttl}) made ttl {task.ttl!r}; kept exactly or refused, never changed")


# ---------------------------------------------------------------- TS-8: the status machine


@covers("TS-8")
def test_status_changes_follow_the_mcp_machine(store: SyncStore) -> None:
    for start in TaskStatus:
        for target in TaskStatus:
            task = _in_status(store, start)
            if target in ALLOWED[start]:
                updated = store.update_status(task.task_id, OWNER, target, "note")
                require("TS-8", updated.status is target and updated.status_message == "note",
                        f"update_status({start.value} -> {target.value}, 'note') returned {updated.status!r} / {updated.status_message!r}")
                require("TS-8", store.get(task.task_id, OWNER) == updated, f"get after {start.value} -> {target.value} disagrees")
            else:
                error = expect_error("TS-8", InvalidTransitionError, lambda: store.update_status(task.task_id, OWNER, target, "note"),
                                     f"update_status({start.value} -> {target.value})")
                require("TS-8", (error.current, error.requested) == (start, target),
                        f"{start.value} -> {target.value}: InvalidTransitionError(current={error.current!r}, requested={error.requested!r})")
                require("TS-8", error.code == INVALID_PARAMS, f"InvalidTransitionError carries code {error.code}, expected -32602")
                require("TS-8", store.get(task.task_id, OWNER) == task, f"the refused move {start.value} -> {target.value} changed the task")


@covers("TS-8")
def test_status_takes_its_wire_spelling_and_nothing_else(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    for spelling in ("input_required", "working"):
        task = store.update_status(task.task_id, OWNER, spelling)
        require("TS-8", task.status is TaskStatus(spelling), f"update_status({spelling!r}) made the task {task.status!r}")
    bogus_statuses: tuple[Any, ...] = ("finished", "WORKING", "Working", " working", "", None, 3, TaskStatus)  # hostile: not all are str
    for bogus in bogus_statuses:
        expect_error("TS-8", InvalidTransitionError, lambda: store.update_status(task.task_id, OWNER, bogus),
                     f"update_status to the non-status {bogus!r}")
    require("TS-8", store.get(task.task_id, OWNER) == task, "refused status arguments changed the task")


@covers("TS-8")
def test_status_message_is_replaced_and_cleared(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    task = store.update_status(task.task_id, OWNER, I, "need a date")
    require("TS-8", task.status_message == "need a date" and task.to_wire().get("statusMessage") == "need a date",
            f"the status message reads {task.status_message!r}")
    task = store.update_status(task.task_id, OWNER, W, "got it")
    require("TS-8", task.status_message == "got it", f"a new status kept the old message {task.status_message!r}")
    task = store.update_status(task.task_id, OWNER, I)
    require("TS-8", task.status_message is None and "statusMessage" not in task.to_wire(),
            f"update_status without a message must clear the old one; it reads {task.status_message!r}")
    require("TS-8", store.get(task.task_id, OWNER).status_message is None, "the cleared message came back on get")


# ---------------------------------------------------------------- TS-9: cancel


@covers("TS-9")
def test_cancel_cancels_live_tasks_and_clears_the_message(store: SyncStore) -> None:
    for start in (W, I):
        task = store.update_status(_in_status(store, start).task_id, OWNER, start, "busy")
        cancelled = store.cancel(task.task_id, OWNER)
        require("TS-9", cancelled.status is X and cancelled.status_message is None,
                f"cancel of a {start.value} task returned {cancelled.status!r} with message {cancelled.status_message!r}")
        require("TS-9", cancelled.version > task.version, f"cancel moved the version {task.version} -> {cancelled.version}")
        require("TS-9", store.get(task.task_id, OWNER) == cancelled, "get after cancel disagrees with what cancel returned")


@covers("TS-9")
def test_cancel_refuses_terminal_tasks_and_cancelled_stays_cancelled(store: SyncStore) -> None:
    for terminal in TERMINAL:
        task = _in_status(store, terminal)
        error = expect_error("TS-9", InvalidTransitionError, lambda: store.cancel(task.task_id, OWNER), f"cancel of a {terminal.value} task")
        require("TS-9", error.code == INVALID_PARAMS, f"cancel of a terminal task raised code {error.code}, expected -32602")
        require("TS-9", store.get(task.task_id, OWNER) == task, f"a refused cancel changed the {terminal.value} task")
    task = store.cancel(store.create(OWNER, "m").task_id, OWNER)
    late: tuple[tuple[str, Callable[[], TaskRecord]], ...] = (
        ("update_status(completed)", lambda: store.update_status(task.task_id, OWNER, C, "finished late")),
        ("complete_with_result(completed)", lambda: store.complete_with_result(task.task_id, OWNER, C, "late", {"r": 1})),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, {"r": 1})),
    )
    for what, call in late:
        expect_error("TS-9", InvalidTransitionError, lambda: call(), f"{what} after cancel (the work completed later)")
    require("TS-9", store.get(task.task_id, OWNER) == task, "a cancelled task changed after the work completed")


# ---------------------------------------------------------------- TS-14: complete_with_result


@covers("TS-14")
def test_complete_with_result_writes_status_message_and_result_at_once(store: SyncStore) -> None:
    for start in (W, I):
        for terminal in TERMINAL:
            task = _in_status(store, start)
            task = store.set_variables(task.task_id, OWNER, {"k": start.value})
            result = {"outcome": terminal.value, "items": [1, None, "é"]}
            done = store.complete_with_result(task.task_id, OWNER, terminal, "bye", result)
            require("TS-14", (done.status, done.status_message, done.has_result, done.result) == (terminal, "bye", True, result),
                    f"complete_with_result({start.value} -> {terminal.value}, 'bye', {result!r}) returned "
                    f"{done.status!r} / {done.status_message!r} / has_result={done.has_result} / {done.result!r}")
            require("TS-14", done.version > task.version,
                    f"complete_with_result moved the version {task.version} -> {done.version}; a write raises it")
            require("TS-14", done.variables == task.variables, f"complete_with_result changed the variables to {done.variables!r}")
            require("TS-14", store.get(task.task_id, OWNER) == done and store.get_result(task.task_id, OWNER) == result,
                    "get/get_result after complete_with_result disagree with what it returned")


@covers("TS-14")
def test_complete_with_result_takes_only_terminal_statuses(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    theirs = store.create("bob", "m")
    not_terminal: tuple[Any, ...] = (W, I, "working", "input_required", "done", None)  # hostile: None is not a status at all
    for status in not_terminal:
        for task_id, whose in ((task.task_id, "a live task"), (uuid.uuid4().hex, "a never-issued id"), (theirs.task_id, "another owner's task")):
            error = expect_error("TS-14", InvalidTransitionError, lambda: store.complete_with_result(task_id, OWNER, status, None, 1),
                                 f"complete_with_result with the non-terminal status {status!r} on {whose} (refused before the task is read)")
            if isinstance(status, TaskStatus) or status in ("working", "input_required"):
                # TS-2: the refusal names the status asked for; .current is free (the task may not have been read).
                require("TS-14", error.requested == TaskStatus(status),
                        f"complete_with_result({status!r}) refused with .requested={error.requested!r}; expected {TaskStatus(status)!r}")
    require("TS-14", store.get(task.task_id, OWNER) == task and store.get(theirs.task_id, "bob") == theirs,
            "refused complete_with_result calls changed a task")
    for terminal in TERMINAL:
        done = _in_status(store, terminal)
        for again in TERMINAL:
            expect_error("TS-14", InvalidTransitionError, lambda: store.complete_with_result(done.task_id, OWNER, again, "again", 2),
                         f"complete_with_result({again.value}) on a {terminal.value} task")
        require("TS-14", store.get(done.task_id, OWNER) == done, f"refused completions changed the {terminal.value} task")
