"""TS-1, TS-2, TS-3, TS-21, TS-23: the TaskStore's methods and defaults, its errors, its owners, its wire form, its timeliness.

Every test drives the store through the TaskStore API only (behind the kit's checks, which
also verify each answer's type and that every failure is a TaskError). Nothing here looks
at keys, records or the backend below the store.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    STORE_METHODS,
    AnonymousAccessError,
    ConcurrentModificationError,
    ExpiredRecords,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    SecurityConfig,
    StorageFullError,
    StoreConfig,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskPage,
    TaskRecord,
    TaskStatus,
    TaskStore,
    TaskStoreError,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
    canonical_json,
    format_timestamp,
    parse_timestamp,
    validate_task_wire,
)
from conformance.checks.task_store import OWNER, refused_create
from conformance.harness import FakeClock, Harness, SyncStore
from conformance.harness.answers import refusal_clause
from conformance.harness.target import accepts_keyword
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies.tasks import map_of_exact_size

pytestmark = pytest.mark.conformance_target("store")

#: Owner ids distinctive enough that finding them in a message can only mean the message names them.
SECRET_OWNER = "owner-7f3a-secret"
INTRUDER = "intruder-91c2-secret"

#: TS-2's table: the JSON-RPC code each failure carries.
INVALID_PARAMS_ERRORS: tuple[type[TaskError], ...] = (
    TaskNotFoundError,
    TaskExpiredError,
    InvalidTransitionError,
    NotReadyError,
    VariableSizeExceededError,
    VariableValidationError,
    TtlExceededError,
    AnonymousAccessError,
    InvalidCursorError,
)
INTERNAL_ERRORS: tuple[type[TaskError], ...] = (
    ConcurrentModificationError,
    ResourceExhaustedError,
    StorageFullError,
    TaskStoreError,
)

#: Wire timestamps: RFC 3339 UTC with exactly three fractional digits.
WIRE_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _fresh_id() -> str:
    """A well-formed task id no store has issued (uuid4, like the ones stores issue)."""
    return uuid.uuid4().hex


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _secured_store(harness: Harness, make_store: Callable[..., SyncStore], security: SecurityConfig) -> SyncStore:
    """A store with the given owner rules, or a visible skip if the store factory cannot take them."""
    if harness.target.kind == "store" and not accepts_keyword(harness.target.factory, "security"):
        pytest.skip("the store factory does not accept security=, so owner rules cannot be set for this test")
    return make_store(security=security)


# ---------------------------------------------------------------- TS-1: the methods and the seeds' defaults


@covers("TS-1")
def test_store_offers_the_task_store_methods(store: SyncStore) -> None:
    raw = store.checked.raw
    not_coroutines = [name for name in STORE_METHODS if not inspect.iscoroutinefunction(getattr(raw, name, None))]
    require("TS-1", not not_coroutines, f"the store's {not_coroutines} are not coroutine methods (async def)")
    config = getattr(raw, "config", None)
    require("TS-1", isinstance(config, StoreConfig),
            f"the store's config attribute is {type(config).__name__}, not a conformance.StoreConfig")
    require("TS-1", isinstance(raw, TaskStore), f"{type(raw).__name__} does not satisfy the runtime-checkable conformance.TaskStore")

    task = store.create(OWNER, "tools/call")
    require("TS-1", isinstance(task, TaskRecord), f"create returned {type(task).__name__}, not a TaskRecord")
    for answer, method in (
        (store.get(task.task_id, OWNER), "get"),
        (store.update_status(task.task_id, OWNER, TaskStatus.INPUT_REQUIRED, "waiting"), "update_status"),
        (store.set_variables(task.task_id, OWNER, {"k": 1}), "set_variables"),
        (store.set_result(task.task_id, OWNER, {"partial": True}), "set_result"),
        (store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, "done", {"ok": True}), "complete_with_result"),
        (store.cancel(store.create(OWNER, "tools/call").task_id, OWNER), "cancel"),
    ):
        require("TS-1", isinstance(answer, TaskRecord), f"{method} returned {type(answer).__name__}, not a TaskRecord")
    require("TS-1", store.get_result(task.task_id, OWNER) == {"ok": True}, "get_result did not return the stored result")
    page = store.list(OWNER)
    require("TS-1", isinstance(page, TaskPage) and isinstance(page.tasks, tuple),
            f"list returned {type(page).__name__} holding {type(getattr(page, 'tasks', None)).__name__}; "
            "expected TaskPage(tasks: tuple[TaskRecord, ...], next_cursor)")
    removed = store.cleanup_expired()
    require("TS-1", isinstance(removed, int) and not isinstance(removed, bool), f"cleanup_expired returned {removed!r}, not an int")


@covers("TS-1", "TS-5", "TS-11", "TS-12", "SEC-6")
def test_default_limits_follow_the_seeds(harness: Harness, store: SyncStore) -> None:
    config = harness.store_config(store)
    # Over a backend that declares a record limit, the seeds' sizes lowered to fit it (BK-14).
    seeds = harness.fitted(StoreConfig())
    differing = {
        f.name: (getattr(config, f.name), getattr(seeds, f.name))
        for f in dataclasses.fields(StoreConfig)
        if getattr(config, f.name) != getattr(seeds, f.name)
    }
    require("TS-1", not differing,
            "a store opened without config= must use the seeds' limits; it differs in "
            + ", ".join(f"{name}={got!r} (seed {want!r})" for name, (got, want) in differing.items()))

    # The defaults are honoured, not only declared; a limit honoured wrongly breaks its own rule.
    task = store.create(OWNER, "tools/call")
    require("TS-1", (task.ttl, task.poll_interval) == (3_600_000, 500),
            f"a default task has ttl={task.ttl!r} pollInterval={task.poll_interval!r}; the seeds give 3600000 and 500")
    require("TS-5", store.create(OWNER, "m", ttl=86_400_000).ttl == 86_400_000, "the default maximum TTL 86400000 ms was not kept")
    refused_create("TS-5", store, OWNER, TtlExceededError, lambda: store.create(OWNER, "m", ttl=86_400_001), "create(ttl=86400001) under the default maximum")

    store.set_variables(task.task_id, OWNER, {"v": _nested(10)})
    error = expect_error("TS-11", VariableValidationError, lambda: store.set_variables(task.task_id, OWNER, {"v": _nested(11)}),
                         "a variable nested 11 deep under the default max_depth 10")
    require("TS-11", error.reason == "depth", f"a value 11 deep was refused with reason {error.reason!r}, expected 'depth'")

    longest = seeds.max_string_bytes
    store.set_variables(task.task_id, OWNER, {"v": "é" * (longest // 2) + "x" * (longest % 2)})  # exactly the limit in UTF-8
    error = expect_error("TS-11", VariableValidationError,
                         lambda: store.set_variables(task.task_id, OWNER, {"v": "é" * (longest // 2) + "x" * (longest % 2 + 1)}),
                         f"a string of {longest + 1:,} UTF-8 bytes under the default max_string_bytes {longest}")
    require("TS-11", error.reason == "string", f"a {longest + 1:,}-byte string was refused with reason {error.reason!r}, expected 'string'")

    writes: tuple[tuple[str, int, Callable[[str, dict[str, Any]], TaskRecord]], ...] = (
        ("variables", seeds.max_variable_bytes, lambda t, value: store.set_variables(t, OWNER, value)),
        ("result", seeds.max_result_bytes, lambda t, value: store.set_result(t, OWNER, value)),
    )
    for what, limit, write in writes:
        big = store.create(OWNER, "m")
        exact = map_of_exact_size(limit, longest)
        write(big.task_id, exact)
        last = max(exact)  # the short remainder: one more byte keeps every string under the string limit
        too_big = expect_error("TS-12", VariableSizeExceededError, lambda: write(big.task_id, {**exact, last: exact[last] + "x"}),
                             f"{what} of {limit + 1:,} bytes of canonical JSON under the default limit {limit}")
        require("TS-12", (too_big.limit_bytes, too_big.actual_bytes) == (limit, limit + 1),
                f"VariableSizeExceededError(limit_bytes={too_big.limit_bytes!r}, actual_bytes={too_big.actual_bytes!r}) for {what}; "
                f"expected the default {limit} and {limit + 1}")
    for anonymous in ("", "local"):
        expect_error("TS-1", AnonymousAccessError, lambda: store.create(anonymous, "m"), f"create({anonymous!r}, ...) with the default security")


@covers("TS-1", "TS-6", "TS-16", "SEC-4")
def test_default_quota_and_page_size(store: SyncStore) -> None:
    created = {store.create(OWNER, "m").task_id for _ in range(100)}
    error = refused_create("TS-6", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"), "the 101st create of one owner with default limits")
    require("TS-6", error.limit == 100, f"ResourceExhaustedError.limit is {error.limit!r}; the seeds allow 100 live tasks per owner")
    first = store.list(OWNER)
    require("TS-16", len(first.tasks) == 50 and first.next_cursor is not None,
            f"list() without a limit over 100 tasks returned {len(first.tasks)} tasks (next_cursor {first.next_cursor!r}); "
            "the default page size is 50")
    second = store.list(OWNER, cursor=first.next_cursor)
    listed = {t.task_id for t in first.tasks + second.tasks}
    require("TS-16", len(second.tasks) == 50 and second.next_cursor is None and listed == created,
            f"the second default page held {len(second.tasks)} tasks (next_cursor {second.next_cursor!r}); "
            "expected the other 50 and no cursor")


# ---------------------------------------------------------------- TS-2: errors, codes, messages


SMALL = StoreConfig(
    max_tasks_per_owner=2,
    max_variable_bytes=40,
    max_result_bytes=20,
    max_depth=2,
    max_string_bytes=8,
    default_ttl_ms=60_000,
    max_ttl_ms=120_000,
)


def _provoke_refusals(harness: Harness, store: SyncStore, clock: FakeClock | None, owner: str) -> list[tuple[str, type[TaskError], TaskError]]:
    """Provoke every refusal the API can reach on a SMALL store; return (what, expected class, error)."""
    found: list[tuple[str, type[TaskError], TaskError]] = []

    def expect(error_type: type[TaskError], method: str, call: Callable[[], Any], what: str) -> TaskError:
        # Whether the refusal comes at all is the rule of its own clause; its code and figures are TS-2's.
        clause = refusal_clause(error_type, method) or "TS-2"
        if method == "create":
            error = refused_create(clause, store, owner, error_type, call, what)
        else:
            error = expect_error(clause, error_type, call, what)
        found.append((what, error_type, error))
        return error

    missing = _fresh_id()
    expect(TaskNotFoundError, "get", lambda: store.get(missing, owner), "get of a never-issued id")
    expect(TtlExceededError, "create", lambda: store.create(owner, "m", ttl=120_001), "create(ttl=120001) with max_ttl_ms=120000")
    done = store.create(owner, "m")
    store.cancel(done.task_id, owner)
    expect(InvalidTransitionError, "cancel", lambda: store.cancel(done.task_id, owner), "cancel of a cancelled task")
    expect(InvalidTransitionError, "update_status", lambda: store.update_status(done.task_id, owner, TaskStatus.WORKING),
           "update_status(cancelled -> working)")
    live = store.create(owner, "m")
    expect(NotReadyError, "get_result", lambda: store.get_result(live.task_id, owner), "get_result of a task without a result")
    expect(VariableSizeExceededError, "set_variables", lambda: store.set_variables(live.task_id, owner, {"a": "x" * 8, "b": "y" * 8, "c": "z" * 8}),
           "set_variables of 46 bytes with max_variable_bytes=40")
    expect(VariableValidationError, "set_variables", lambda: store.set_variables(live.task_id, owner, {"v": [[[1]]]}),
           "set_variables of a value 3 deep with max_depth=2")
    expect(VariableValidationError, "set_variables", lambda: store.set_variables(live.task_id, owner, {"v": "x" * 9}),
           "set_variables of a 9-byte string with max_string_bytes=8")
    expect(AnonymousAccessError, "get", lambda: store.get(live.task_id, ""), "get by the anonymous owner ''")
    expect(InvalidCursorError, "list", lambda: store.list(owner, cursor="bogus"), "list with the cursor 'bogus'")
    expect(ResourceExhaustedError, "create", lambda: store.create(owner, "m"), "a third create with max_tasks_per_owner=2")
    expect(TaskNotFoundError, "get", lambda: store.get(live.task_id, INTRUDER), "get of the task by another owner")
    if clock is not None:
        clock.advance(60.001)  # past the default TTL of 60,000 ms
        if harness.capabilities.expired_records is ExpiredRecords.KEPT_UNTIL_CLEANUP:
            expect(TaskExpiredError, "get", lambda: store.get(live.task_id, owner), "get of an expired task (backend keeps expired records)")
        else:
            expect(TaskNotFoundError, "get", lambda: store.get(live.task_id, owner), "get of an expired task (backend hides expired records)")
    return found


@covers("TS-2", "TS-5", "TS-6", "TS-12")
def test_failures_carry_their_json_rpc_codes_and_figures(harness: Harness, limited_store: Callable[..., SyncStore], clock: FakeClock | None) -> None:
    store = limited_store(config=SMALL)
    for what, expected, error in _provoke_refusals(harness, store, clock, OWNER):
        want = INVALID_PARAMS if issubclass(expected, INVALID_PARAMS_ERRORS) else INTERNAL_ERROR
        require("TS-2", error.code == want,
                f"{what} raised {type(error).__name__} with code {error.code}; a {expected.__name__} carries {want}")
        # Each figure's value is its own clause's rule (how a size is measured is TS-12's); TS-2's is that it is there.
        if isinstance(error, VariableSizeExceededError):
            require("TS-12", (error.limit_bytes, error.actual_bytes) == (40, len(canonical_json({"a": "x" * 8, "b": "y" * 8, "c": "z" * 8}))),
                    f"{what}: VariableSizeExceededError(limit_bytes={error.limit_bytes!r}, actual_bytes={error.actual_bytes!r}); "
                    "expected 40 and the canonical JSON size of the merged map, 46")
        elif isinstance(error, VariableValidationError):
            require("TS-2", error.reason in ("depth", "string") and isinstance(error.path, tuple),
                    f"{what}: VariableValidationError(reason={error.reason!r}, path={error.path!r}); "
                    "expected reason 'depth' or 'string' and a tuple path")
            expected_reason = "depth" if "deep" in what else "string"
            require("TS-2", error.reason == expected_reason, f"{what}: reason is {error.reason!r}, expected {expected_reason!r}")
        elif isinstance(error, TtlExceededError):
            require("TS-5", (error.requested_ms, error.max_ms) == (120_001, 120_000),
                    f"{what}: TtlExceededError(requested_ms={error.requested_ms!r}, max_ms={error.max_ms!r}); expected 120001, 120000")
        elif isinstance(error, ResourceExhaustedError):
            require("TS-6", error.limit == 2, f"{what}: ResourceExhaustedError.limit is {error.limit!r}, expected 2")
        elif isinstance(error, NotReadyError):
            require("TS-2", error.status == TaskStatus.WORKING, f"{what}: NotReadyError.status is {error.status!r}, expected working")
        elif isinstance(error, InvalidTransitionError) and "update_status" in what:
            require("TS-2", (error.current, error.requested) == (TaskStatus.CANCELLED, TaskStatus.WORKING),
                    f"{what}: InvalidTransitionError(current={error.current!r}, requested={error.requested!r}); expected cancelled, working")


@covers("TS-2", "SEC-3")
def test_messages_never_name_an_owner(harness: Harness, limited_store: Callable[..., SyncStore], clock: FakeClock | None) -> None:
    store = limited_store(config=SMALL)
    refusals = _provoke_refusals(harness, store, clock, SECRET_OWNER)
    for what, _, error in refusals:
        for owner in (SECRET_OWNER, INTRUDER):
            shown = f"{error} {error.args!r}"
            require("TS-2", owner not in shown, f"{what} raised {type(error).__name__} whose message names the owner {owner!r}: {error}")


@covers("TS-2", "TS-7")
def test_long_ids_are_not_found_and_name_no_owner(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    long_id = "x" * 10_000
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("get", lambda: store.get(long_id, OWNER)),
        ("update_status", lambda: store.update_status(long_id, OWNER, TaskStatus.WORKING)),
        ("set_variables", lambda: store.set_variables(long_id, OWNER, {"a": 1})),
        ("set_result", lambda: store.set_result(long_id, OWNER, 1)),
        ("get_result", lambda: store.get_result(long_id, OWNER)),
        ("complete_with_result", lambda: store.complete_with_result(long_id, OWNER, TaskStatus.COMPLETED, None, 1)),
        ("cancel", lambda: store.cancel(long_id, OWNER)),
    ]
    for method, call in calls:
        error = expect_error("TS-7", TaskNotFoundError, call, f"{method} with a 10,000-character task id")
        require("TS-2", OWNER not in str(error), f"{method} with a 10,000-character id raised a message naming the owner: {error!s:.200}")
    require("TS-20", store.get(task.task_id, OWNER) == task, "refused calls changed an unrelated task")


# ---------------------------------------------------------------- TS-3: owners


def _every_method(store: SyncStore, owner: Any, task_id: str) -> list[tuple[str, Callable[[], Any]]]:
    """Each owner-taking method, called as ``owner`` (cleanup_expired takes no owner)."""
    return [
        ("create", lambda: store.create(owner, "tools/call")),
        ("get", lambda: store.get(task_id, owner)),
        ("update_status", lambda: store.update_status(task_id, owner, TaskStatus.WORKING, "x")),
        ("set_variables", lambda: store.set_variables(task_id, owner, {"a": 1})),
        ("set_result", lambda: store.set_result(task_id, owner, 1)),
        ("get_result", lambda: store.get_result(task_id, owner)),
        ("complete_with_result", lambda: store.complete_with_result(task_id, owner, TaskStatus.COMPLETED, None, 1)),
        ("list", lambda: store.list(owner)),
        ("cancel", lambda: store.cancel(task_id, owner)),
    ]


@covers("TS-3", "SEC-9")
def test_anonymous_owners_are_refused_by_every_method(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    for anonymous in ("", "local"):
        for method, call in _every_method(store, anonymous, task.task_id) + _every_method(store, anonymous, _fresh_id()):
            error = expect_error("TS-3", AnonymousAccessError, call, f"{method} by the anonymous owner {anonymous!r}")
            require("TS-3", error.code == INVALID_PARAMS, f"{method} by {anonymous!r}: AnonymousAccessError has code {error.code}, expected -32602")
        # The owner is checked before anything else about the call.
        no_method: Any = None  # hostile: a request method must be a string
        for what, call in (
            ("create with ttl=0", lambda: store.create(anonymous, "m", ttl=0)),
            ("create with a non-string method", lambda: store.create(anonymous, no_method)),
            ("get of a malformed id", lambda: store.get("not-an-id", anonymous)),
            ("set_variables of NaN", lambda: store.set_variables(task.task_id, anonymous, {"v": float("nan")})),
            ("update_status to a bogus status", lambda: store.update_status(task.task_id, anonymous, "bogus")),
            ("list with a forged cursor", lambda: store.list(anonymous, cursor="forged")),
        ):
            expect_error("TS-3", AnonymousAccessError, call, f"{what} by {anonymous!r}")
    require("TS-3", store.get(task.task_id, OWNER) == task, "refused anonymous calls changed alice's task")
    require("TS-3", isinstance(store.cleanup_expired(), int), "cleanup_expired takes no owner and is never refused")


@covers("TS-3", "SEC-9")
def test_unusable_owner_ids_are_refused_even_when_anonymous_is_allowed(harness: Harness, make_store: Callable[..., SyncStore]) -> None:
    store = _secured_store(harness, make_store, SecurityConfig(allow_anonymous=True))
    # Anonymous owners become usable, and they are distinct owners.
    local = store.create("local", "m")
    empty = store.create("", "m")
    require("TS-3", store.get(local.task_id, "local") == local and store.get(empty.task_id, "") == empty,
            "with allow_anonymous=True, the owners 'local' and '' cannot read their own tasks")
    require("TS-3", [t.task_id for t in store.list("local").tasks] == [local.task_id],
            "with allow_anonymous=True, 'local' does not list exactly its own task")
    expect_error("TS-3", TaskNotFoundError, lambda: store.get(local.task_id, ""), "get of local's task by ''")
    for unusable in (None, 42, b"alice", ["alice"], "\ud800", "a\udfffb", "x" * 1025, "é" * 513, "🔑" * 256 + "x"):
        for method, call in _every_method(store, unusable, local.task_id):
            expect_error("TS-3", AnonymousAccessError, call, f"{method} by the unusable owner {unusable!r:.40}")
    for usable in ("x" * 1024, "é" * 512, "🔑" * 256):
        task = store.create(usable, "m")
        require("TS-3", store.get(task.task_id, usable) == task and task.owner_id == usable,
                f"an owner id of exactly 1,024 UTF-8 bytes ({usable[:3]!r}...) was not usable")


@covers("TS-3", "SEC-9")
@examples(20)
@given(limit=st.integers(min_value=4, max_value=12), char=st.sampled_from(["é", "€", "🔑", "ß", "中"]), data=st.data())
def test_owner_ids_are_bounded_in_utf8_bytes(harness: Harness, make_store: Callable[..., SyncStore], limit: int, char: str, data: st.DataObject) -> None:
    store = _secured_store(harness, make_store, SecurityConfig(max_owner_id_bytes=limit))
    width = len(char.encode())
    wide = data.draw(st.integers(min_value=0, max_value=limit // width), label="wide characters")
    exact = char * wide + "o" * (limit - wide * width)
    task = store.create(exact, "m")
    require("TS-3", store.get(task.task_id, exact) == task,
            f"an owner id of exactly max_owner_id_bytes={limit} UTF-8 bytes ({exact!r}) was refused or lost")
    # One byte over, the last character straddling the limit.
    over = "o" * (limit + 1 - width) + char
    expect_error("TS-3", AnonymousAccessError, lambda: store.create(over, "m"),
                 f"create by an owner id of {limit + 1} UTF-8 bytes ({over!r}) with max_owner_id_bytes={limit}")
    expect_error("TS-3", AnonymousAccessError, lambda: store.list(over), f"list by an owner id of {limit + 1} UTF-8 bytes")


@covers("TS-3", "SEC-9")
def test_anonymous_owner_ids_are_configurable(harness: Harness, make_store: Callable[..., SyncStore]) -> None:
    store = _secured_store(harness, make_store, SecurityConfig(anonymous_owner_ids=frozenset({"guest"})))
    expect_error("TS-3", AnonymousAccessError, lambda: store.create("guest", "m"), "create by 'guest' with anonymous_owner_ids={'guest'}")
    task = store.create("local", "m")
    require("TS-3", store.get(task.task_id, "local") == task,
            "'local' is not in anonymous_owner_ids={'guest'}, yet its task cannot be read")


# ---------------------------------------------------------------- TS-21: tasks go out as MCP Task objects


def _check_wire(task: Any, owner: str, method: str, what: str) -> None:
    """The record's fields have the contract's types and its wire form is an MCP 2025-11-25 Task."""
    require("TS-21", isinstance(task, TaskRecord), f"{what} returned {type(task).__name__}, not a TaskRecord")
    require("TS-21", isinstance(task.status, TaskStatus), f"{what}: status is {task.status!r}, not a TaskStatus member")
    for name in ("created_at", "last_updated_at"):
        value = getattr(task, name)
        require("TS-21", isinstance(value, (int, float)) and not isinstance(value, bool),
                f"{what}: {name} is {value!r}, not POSIX seconds")
        require("TS-21", abs(value * 1000 - round(value * 1000)) < 0.01, f"{what}: {name}={value!r} is finer than a millisecond")
    for name in ("ttl", "poll_interval"):
        value = getattr(task, name)
        require("TS-21", (value is None and name == "ttl") or (isinstance(value, int) and not isinstance(value, bool) and value >= 0),
                f"{what}: {name} is {value!r}, not a non-negative int (ms)")
    require("TS-21", task.status_message is None or isinstance(task.status_message, str),
            f"{what}: status_message is {task.status_message!r}, not a str or None")
    require("TS-21", (task.owner_id, task.request_method) == (owner, method),
            f"{what}: owner_id/request_method are {task.owner_id!r}/{task.request_method!r}, expected {owner!r}/{method!r}")
    require("TS-21", isinstance(task.variables, dict) and isinstance(task.has_result, bool),
            f"{what}: variables is {type(task.variables).__name__}, has_result is {task.has_result!r}")
    try:
        wire = task.to_wire()
        validate_task_wire(wire)
    except Exception as exc:  # any failure to render is the finding
        require("TS-21", False, f"{what}: the task is not an MCP Task object: {type(exc).__name__}: {exc}")
        return
    for field, value in (("createdAt", task.created_at), ("lastUpdatedAt", task.last_updated_at)):
        require("TS-21", bool(WIRE_TIMESTAMP.match(wire[field])) and abs(parse_timestamp(wire[field]) - value) < 1e-6,
                f"{what}: {field} is {wire[field]!r}; expected RFC 3339 UTC with milliseconds, {format_timestamp(value)}")
    require("TS-21", ("statusMessage" in wire) == (task.status_message is not None),
            f"{what}: statusMessage must be present exactly when there is a message; wire is {wire}")


@covers("TS-21")
def test_tasks_go_out_as_mcp_task_objects(store: SyncStore) -> None:
    method = "tools/call"
    task = store.create(OWNER, method)
    _check_wire(task, OWNER, method, "create")
    _check_wire(store.create(OWNER, method, ttl=1234), OWNER, method, "create(ttl=1234)")
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("update_status(input_required, 'étape 1 🔑')", lambda: store.update_status(task.task_id, OWNER, TaskStatus.INPUT_REQUIRED, "étape 1 🔑")),
        ("update_status(working, None)", lambda: store.update_status(task.task_id, OWNER, "working")),
        ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"k": {"é": [1, 2.5, None]}})),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, None)),
        ("get", lambda: store.get(task.task_id, OWNER)),
        ("complete_with_result", lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.FAILED, "", {"error": "x"})),
        ("cancel", lambda: store.cancel(store.create(OWNER, method).task_id, OWNER)),
    ]
    for what, call in steps:
        _check_wire(call(), OWNER, method, what)
    page = store.list(OWNER, limit=2)
    while True:
        for listed in page.tasks:
            _check_wire(listed, OWNER, method, "a task in a list page")
        if page.next_cursor is None:
            break
        page = store.list(OWNER, cursor=page.next_cursor, limit=2)


@covers("TS-21")
def test_unlimited_ttl_goes_out_as_null(limited_store: Callable[..., SyncStore]) -> None:
    store = limited_store(config=StoreConfig(default_ttl_ms=None, max_ttl_ms=None))
    task = store.create(OWNER, "m")
    _check_wire(task, OWNER, "m", "create with default_ttl_ms=None")
    require("TS-21", task.ttl is None and task.to_wire()["ttl"] is None,
            f"a task without a TTL must carry ttl null on the wire; it carries {task.to_wire().get('ttl')!r}")


# ---------------------------------------------------------------- TS-23: every call answers in time


@covers("TS-23")
def test_every_method_answers_in_time(harness: Harness, store: SyncStore) -> None:
    budget = harness.timeout

    def timed(what: str, call: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return call()
        except TaskError as exc:
            return exc
        finally:
            elapsed = time.monotonic() - started
            require("TS-23", elapsed < budget, f"{what} took {elapsed:.1f} s; every call must answer within {budget:g} s")

    task = timed("create", lambda: store.create(OWNER, "tools/call"))
    require("TS-23", isinstance(task, TaskRecord), f"create answered {task!r}")
    tid = task.task_id
    calls: list[tuple[str, Callable[[], Any]]] = [
        ("get", lambda: store.get(tid, OWNER)),
        ("get of a missing task", lambda: store.get(_fresh_id(), OWNER)),
        ("update_status", lambda: store.update_status(tid, OWNER, TaskStatus.INPUT_REQUIRED, "busy")),
        ("set_variables", lambda: store.set_variables(tid, OWNER, {"a": 1})),
        ("set_variables of a deep value", lambda: store.set_variables(tid, OWNER, {"a": _nested(500)})),
        ("set_result", lambda: store.set_result(tid, OWNER, [1, 2])),
        ("get_result", lambda: store.get_result(tid, OWNER)),
        ("list", lambda: store.list(OWNER)),
        ("list with a forged cursor", lambda: store.list(OWNER, cursor="forged")),
        ("complete_with_result", lambda: store.complete_with_result(tid, OWNER, TaskStatus.COMPLETED, None, 3)),
        ("cancel of a terminal task", lambda: store.cancel(tid, OWNER)),
        ("cancel", lambda: store.cancel(store.create(OWNER, "m").task_id, OWNER)),
        ("create by an anonymous owner", lambda: store.create("", "m")),
        ("cleanup_expired", store.cleanup_expired),
    ]
    for what, call in calls:
        timed(what, call)
