"""TS-10 to TS-13 and TS-20: variables, values, sizes, results, and refusals that change nothing.

Limits are probed at their exact byte boundaries: a value of exactly the limit is accepted
and one byte more is refused, with multi-byte characters straddling the limit, and every
refusal must leave the task exactly as it was.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    AnonymousAccessError,
    ExpiredRecords,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    StoreConfig,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
    canonical_json,
)
from conformance.checks.task_store import (
    OWNER,
    live_status_other_than,
    refused,
    refused_create,
    require_json,
    same_json,
    state_of,
    stored_result,
    stray_errors_break,
)
from conformance.harness import FakeClock, Harness, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies import json_values

pytestmark = pytest.mark.conformance_target("store")

INTRUDER = "mallory"
#: Characters of one to four UTF-8 bytes that JSON writes as they are (no escapes).
WIDE_CHARS = st.sampled_from(["x", "é", "ß", "€", "中", "🔑"])
NAMES = st.sampled_from(["a", "b", "c", "é", "🔑", ""])


def _width(char: str) -> int:
    return len(char.encode("utf-8"))


def _text(nbytes: int, char: str) -> str:
    """Exactly ``nbytes`` UTF-8 bytes: as many ``char`` as fit, then ASCII."""
    return char * (nbytes // _width(char)) + "x" * (nbytes % _width(char))


def _straddling(nbytes: int, char: str) -> str:
    """Exactly ``nbytes`` UTF-8 bytes ending with ``char``, so a cut at ``nbytes - 1`` would split it."""
    return "x" * (nbytes - _width(char)) + char


def _depth(value: Any) -> int:
    """Container depth: a scalar 0, ``[]`` and ``{"a": 1}`` 1 (SPEC TS-11)."""
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _nested(depth: int, leaf: Any = 1, kind: type = list) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind is list else {"k": value}
    return value


def _shaped(data: st.DataObject, depth: int) -> Any:
    """A drawn value whose container depth is exactly ``depth``, with shallower siblings at every level."""
    if depth == 0:
        return data.draw(st.sampled_from([0, -1.5, "s", True, None, ""]))
    inner = _shaped(data, depth - 1)
    siblings = [_shaped(data, data.draw(st.integers(0, depth - 1))) for _ in range(data.draw(st.integers(0, 2)))]
    items = siblings[:]
    items.insert(data.draw(st.integers(0, len(siblings))), inner)
    if data.draw(st.booleans()):
        return items
    return {f"k{n}": item for n, item in enumerate(items)}


# ---------------------------------------------------------------- TS-10: merging variables


@covers("TS-10", "TS-4")
@examples(20)
@given(
    updates=st.lists(
        st.dictionaries(NAMES, st.one_of(st.none(), st.none(), json_values(max_leaves=4)), max_size=4),
        min_size=1,
        max_size=6,
    )
)
def test_variables_merge_at_the_top_level_and_null_deletes(
    harness: Harness, make_store: Callable[..., SyncStore], updates: list[dict[str, Any]]
) -> None:
    store = make_store()
    task = store.create(OWNER, "m")
    model: dict[str, Any] = {}
    config_depth = harness.store_config(store).max_depth
    for update in updates:
        if any(_depth(v) > config_depth for v in update.values()):
            continue  # too deep for the default limit: TS-11's business, not the merge's
        written = store.set_variables(task.task_id, OWNER, update)
        for name, value in update.items():
            if value is None:
                model.pop(name, None)
            else:
                model[name] = value
        require_json("TS-10", written.variables, model, f"set_variables({update!r}) left {written.variables!r}; merging into the previous map gives {model!r} "
                "(each name replaces, a top-level null deletes, a nested null is a value)")
        require("TS-4", written.version == task.version + 1,
                f"set_variables({update!r}) moved the version {task.version} -> {written.version}; every write adds exactly one")
        require("TS-10", store.get(task.task_id, OWNER) == written, "get after set_variables disagrees with what it returned")
        task = written


@covers("TS-10", "TS-13")
def test_terminal_tasks_keep_their_variables_and_result(store: SyncStore) -> None:
    for terminal in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED):
        task = store.create(OWNER, "m")
        store.set_variables(task.task_id, OWNER, {"a": 1, "b": 2})
        if terminal is TaskStatus.CANCELLED:
            store.set_result(task.task_id, OWNER, "staged")
            store.cancel(task.task_id, OWNER)
        else:
            store.complete_with_result(task.task_id, OWNER, terminal, None, "staged")
        for what, call, clause in (
            ("set_variables({'a': 2})", lambda: store.set_variables(task.task_id, OWNER, {"a": 2}), "TS-10"),
            ("set_variables({'a': None})", lambda: store.set_variables(task.task_id, OWNER, {"a": None}), "TS-10"),
            ("set_variables({})", lambda: store.set_variables(task.task_id, OWNER, {}), "TS-10"),
            ("set_result('other')", lambda: store.set_result(task.task_id, OWNER, "other"), "TS-13"),
            ("set_result(None)", lambda: store.set_result(task.task_id, OWNER, None), "TS-13"),
        ):
            refused(clause, store, task.task_id, InvalidTransitionError, call, f"{what} on a {terminal.value} task")
        require("TS-13", store.get_result(task.task_id, OWNER) == "staged", f"the {terminal.value} task's result changed")


# ---------------------------------------------------------------- TS-11: plain, bounded JSON


@covers("TS-11", "SEC-5")
@examples(20)
@given(limit=st.integers(min_value=1, max_value=4), data=st.data())
def test_depth_limit_is_exact(limited_store: Callable[..., SyncStore], limit: int, data: st.DataObject) -> None:
    store = limited_store(config=StoreConfig(max_depth=limit))
    task = store.create(OWNER, "m")
    fits = _shaped(data, limit)
    deeper = _shaped(data, limit + 1)
    written = store.set_variables(task.task_id, OWNER, {"v": fits, "w": _shaped(data, limit)})
    require_json("TS-11", written.variables["v"], fits, f"a variable of depth exactly max_depth={limit} ({fits!r}) did not read back")
    written = store.set_result(task.task_id, OWNER, fits)
    require_json("TS-11", stored_result(store, task.task_id), fits, f"a result of depth exactly {limit} did not read back")
    for what, call in (
        ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"v": deeper})),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, deeper)),
        ("complete_with_result", lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, deeper)),
    ):
        error = refused("TS-11", store, task.task_id, VariableValidationError, call,
                         f"{what} of a value of depth {limit + 1} with max_depth={limit} ({deeper!r:.80})")
        require("TS-11", error.reason == "depth", f"{what} of a value too deep was refused with reason {error.reason!r}, not 'depth'")


@covers("TS-11", "SEC-5")
def test_depth_counts_containers_only(limited_store: Callable[..., SyncStore]) -> None:
    store = limited_store(config=StoreConfig(max_depth=2))
    task = store.create(OWNER, "m")
    shallow: tuple[Any, ...] = (7, "s", None, [], {}, [[]], {"a": {"b": 1}}, [{"k": 1}], {"a": []}, [[1, 2], {"k": 3}], [1, [2], {"x": "y"}])
    for fits in shallow:
        store.set_variables(task.task_id, OWNER, {"v": fits})
        store.set_result(task.task_id, OWNER, fits)
    too_deep: tuple[Any, ...] = ([[[]]], {"a": {"b": {}}}, [{"k": [1, [2]]}], {"a": [{"b": 1}]})
    for deeper in too_deep:
        refused("TS-11", store, task.task_id, VariableValidationError, lambda: store.set_variables(task.task_id, OWNER, {"v": deeper}),
                 f"set_variables of {deeper!r} (depth 3) with max_depth=2")


@covers("TS-11", "SEC-5")
def test_deep_bombs_are_refused_quickly(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    store.set_variables(task.task_id, OWNER, {"keep": [1]})
    cyclic_list: list[Any] = []
    cyclic_list.append(cyclic_list)
    cyclic_dict: dict[str, Any] = {}
    cyclic_dict["self"] = cyclic_dict
    bombs = {
        "a list nested 50,000 deep": _nested(50_000),
        "an object nested 50,000 deep": _nested(50_000, kind=dict),
        "a list that contains itself": cyclic_list,
        "an object that contains itself": cyclic_dict,
    }
    for name, bomb in bombs.items():
        deep = not name.endswith("itself")
        calls = (
            ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"v": bomb})),
            ("set_result", lambda: store.set_result(task.task_id, OWNER, [bomb])),
            ("complete_with_result", lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, [bomb])),
        )
        for method, call in calls:
            elapsed = 0.0

            def timed(call: Callable[[], Any] = call) -> Any:
                nonlocal elapsed
                started = time.monotonic()
                try:
                    return call()
                finally:
                    elapsed = time.monotonic() - started

            error = refused("TS-11", store, task.task_id, VariableValidationError, timed, f"{method} of {name}")
            require("TS-11", elapsed < 2.0, f"{method} of {name} took {elapsed:.1f} s to refuse; the check must stop at max_depth + 1")
            if deep and method == "set_variables":
                require("TS-11", error.reason == "depth", f"{method} of {name} was refused with reason {error.reason!r}, not 'depth'")


@covers("TS-11", "SEC-6")
@examples(20)
@given(char=WIDE_CHARS, data=st.data())
def test_strings_are_bounded_in_utf8_bytes(limited_store: Callable[..., SyncStore], char: str, data: st.DataObject) -> None:
    limit = 16
    store = limited_store(config=StoreConfig(max_string_bytes=limit))
    task = store.create(OWNER, "m")
    exact = _text(limit, char) if data.draw(st.booleans(), label="fill first") else _straddling(limit, char)
    over = _straddling(limit + 1, char)
    places: list[tuple[str, Callable[[str], Callable[[], Any]], Callable[[TaskRecord, str], bool]]] = [
        ("a variable value", lambda s: lambda: store.set_variables(task.task_id, OWNER, {"v": s}),
         lambda t, s: t.variables.get("v") == s),
        ("a nested value", lambda s: lambda: store.set_variables(task.task_id, OWNER, {"n": [1, {"k": s}]}),
         lambda t, s: t.variables.get("n") == [1, {"k": s}]),
        ("an object key", lambda s: lambda: store.set_variables(task.task_id, OWNER, {"o": {s: 1}}),
         lambda t, s: t.variables.get("o") == {s: 1}),
        ("a variable name", lambda s: lambda: store.set_variables(task.task_id, OWNER, {s: 1}),
         lambda t, s: t.variables.get(s) == 1),
        ("a result", lambda s: lambda: store.set_result(task.task_id, OWNER, [s]),
         lambda t, s: stored_result(store, task.task_id) == [s]),
        ("a status message", lambda s: lambda: store.update_status(task.task_id, OWNER, live_status_other_than(store, task.task_id), s),
         lambda t, s: t.status_message == s),
        ("a completion message", lambda s: lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, s, 1),
         lambda t, s: t.status_message == s),
    ]
    order = data.draw(st.permutations(range(len(places) - 1)), label="order")
    for index in [*order, len(places) - 1]:  # completion last: it ends the task
        where, make, stored = places[index]
        error = refused("TS-11", store, task.task_id, VariableValidationError, make(over),
                         f"{where} of {limit + 1} UTF-8 bytes ({over!r}) with max_string_bytes={limit}")
        require("TS-11", error.reason == "string", f"{where} one byte too long was refused with reason {error.reason!r}, not 'string'")
        accepted = make(exact)()
        require("TS-11", stored(accepted, exact) and stored(store.get(task.task_id, OWNER), exact),
                f"{where} of exactly {limit} UTF-8 bytes ({exact!r}) was not stored as given")


@covers("TS-11", "SEC-8")
def test_values_must_be_plain_json(store: SyncStore) -> None:
    # A value that is not JSON must be refused cleanly: a stray TypeError or ValueError for one is TS-11's failure.
    with stray_errors_break("TS-11", Exception):
        _values_must_be_plain_json(store)


def _values_must_be_plain_json(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    not_json: list[tuple[Any, str]] = [
        (float("nan"), "number"), (float("inf"), "number"), (float("-inf"), "number"),
        (2**64, "number"), (-(2**63) - 1, "number"), (10**30, "number"),
        ("\ud800", "unicode"), ("ok\udfff", "unicode"), ({"\udc00": 1}, "unicode"),
        ((1, 2), "type"), ({1, 2}, "type"), (b"x", "type"), (bytearray(b"x"), "type"), ({1: "a"}, "type"),
        ({("a",): 1}, "type"), (object(), "type"), (uuid.uuid4(), "type"), ([1, (2,)], "type"),
    ]
    for value, reason in not_json:
        for method, call in (
            ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"v": value})),
            ("set_result", lambda: store.set_result(task.task_id, OWNER, value)),
        ):
            error = refused("TS-11", store, task.task_id, VariableValidationError, call, f"{method} of {value!r:.40}")
            require("TS-11", error.reason == reason, f"{method} of {value!r:.40} was refused with reason {error.reason!r}, expected {reason!r}")
    huge = 10**5000  # its repr is refused by Python itself; the kit's call descriptions say so instead
    for method, call in (
        ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"v": huge})),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, [huge])),
    ):
        error = refused("TS-11", store, task.task_id, VariableValidationError, call, f"{method} of an integer of 5,001 digits")
        require("TS-11", error.reason == "number", f"{method} of 10**5000 was refused with reason {error.reason!r}, expected 'number'")
    not_maps: tuple[Any, ...] = (None, [("a", 1)], "a=1", {1: "a"}, {None: 1}, 5)  # hostile: none is a map of names to values
    for not_a_map in not_maps:
        error = refused("TS-11", store, task.task_id, VariableValidationError, lambda: store.set_variables(task.task_id, OWNER, not_a_map),
                        f"set_variables with {not_a_map!r} instead of a map of names to values")
        require("TS-11", error.reason == "type", f"set_variables with {not_a_map!r} was refused with reason {error.reason!r}, expected 'type'")
    not_messages: tuple[Any, ...] = (5, b"msg", ["m"])  # hostile: none is a string
    for message in not_messages:
        error = refused("TS-11", store, task.task_id, VariableValidationError,
                        lambda: store.update_status(task.task_id, OWNER, TaskStatus.WORKING, message), f"update_status with the message {message!r}")
        require("TS-11", error.reason == "type", f"update_status with the message {message!r} was refused with reason {error.reason!r}, expected 'type'")
    edges = {"max": 2**64 - 1, "min": -(2**63), "big": 1e308, "tiny": 5e-324, "negzero": -0.0, "odd": "\u2028\x00\"\\",
             "key": {"": "", "🔑": []}, "bools": [True, False, 1, 0, 1.0], "null": [None]}
    written = store.set_variables(task.task_id, OWNER, edges)
    require_json("TS-11", written.variables, edges, f"edge values {edges!r} read back as {store.get(task.task_id, OWNER).variables!r}")
    require_json("TS-11", store.get(task.task_id, OWNER).variables, edges, f"edge values {edges!r} read back as {store.get(task.task_id, OWNER).variables!r}")


# ---------------------------------------------------------------- TS-12: sizes


@covers("TS-12", "SEC-6")
@examples(20)
@given(first=st.integers(min_value=24, max_value=150), char=WIDE_CHARS, other=WIDE_CHARS)
def test_merged_variables_are_bounded_exactly(limited_store: Callable[..., SyncStore], first: int, char: str, other: str) -> None:
    limit = 200
    store = limited_store(config=StoreConfig(max_variable_bytes=limit))
    task = store.create(OWNER, "m")
    a = {"a": _text(first - len(canonical_json({"a": ""})), char)}
    store.set_variables(task.task_id, OWNER, a)

    room = limit - len(canonical_json({**a, "b": ""}))
    over = {"b": _straddling(room + 1, other)}
    error = refused("TS-12", store, task.task_id, VariableSizeExceededError, lambda: store.set_variables(task.task_id, OWNER, over),
                     f"set_variables adding 'b' so the merged map is {limit + 1} bytes (existing 'a' is {first} bytes)")
    require("TS-12", (error.limit_bytes, error.actual_bytes) == (limit, limit + 1),
            f"VariableSizeExceededError(limit_bytes={error.limit_bytes!r}, actual_bytes={error.actual_bytes!r}); "
            f"the merged map is {limit + 1} bytes of canonical JSON, the limit {limit}")
    exact = {"b": _text(room, other)}
    written = store.set_variables(task.task_id, OWNER, exact)
    require("TS-12", len(canonical_json(written.variables)) == limit,
            f"a merge to exactly max_variable_bytes={limit} was not stored as given: {written.variables!r}")
    refused("TS-12", store, task.task_id, VariableSizeExceededError, lambda: store.set_variables(task.task_id, OWNER, {"c": 0}),
             f"set_variables({{'c': 0}}) onto {limit} bytes of variables (the merged map counts, not the increment)")

    # Deleting 'a' in the same call makes room for 'c'.
    room = limit - len(canonical_json({**exact, "c": ""}))
    too_big = {"a": None, "c": _straddling(room + 1, char)}
    error = refused("TS-12", store, task.task_id, VariableSizeExceededError, lambda: store.set_variables(task.task_id, OWNER, too_big),
                     f"set_variables deleting 'a' and adding 'c' to a merged map of {limit + 1} bytes")
    require("TS-12", error.actual_bytes == limit + 1, f"actual_bytes is {error.actual_bytes!r}; the merged map (after the deletion) is {limit + 1}")
    fits = {"a": None, "c": _text(room, char)}
    written = store.set_variables(task.task_id, OWNER, fits)
    require("TS-12", set(written.variables) == {"b", "c"} and len(canonical_json(written.variables)) == limit,
            f"deleting 'a' while adding 'c' should leave exactly {limit} bytes of 'b' and 'c'; got {written.variables!r}")


@covers("TS-12", "SEC-6")
@examples(20)
@given(shape=st.sampled_from(["string", "list", "object"]), char=WIDE_CHARS)
def test_result_size_is_bounded_exactly(limited_store: Callable[..., SyncStore], shape: str, char: str) -> None:
    limit = 64
    store = limited_store(config=StoreConfig(max_result_bytes=limit))

    def result(text: str) -> Any:
        return text if shape == "string" else [text, 1] if shape == "list" else {"r": text, "n": None}

    room = limit - len(canonical_json(result("")))
    exact, over = result(_text(room, char)), result(_straddling(room + 1, char))
    task = store.create(OWNER, "m")
    for method, call in (
        ("set_result", lambda: store.set_result(task.task_id, OWNER, over)),
        ("complete_with_result", lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, over)),
    ):
        error = refused("TS-12", store, task.task_id, VariableSizeExceededError, call, f"{method} of a {limit + 1}-byte {shape} ({over!r})")
        require("TS-12", (error.limit_bytes, error.actual_bytes) == (limit, limit + 1),
                f"{method}: VariableSizeExceededError(limit_bytes={error.limit_bytes!r}, actual_bytes={error.actual_bytes!r}); "
                f"expected {limit} and {limit + 1}")
    store.set_result(task.task_id, OWNER, exact)
    require_json("TS-12", stored_result(store, task.task_id), exact, f"a result of exactly {limit} bytes did not read back")
    store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, exact)
    require_json("TS-12", store.get_result(task.task_id, OWNER), exact, f"a completion with exactly {limit} bytes did not read back")


# ---------------------------------------------------------------- TS-13: results


@covers("TS-13")
def test_null_is_a_result_and_absence_is_not_ready(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    error = expect_error("TS-13", NotReadyError, lambda: store.get_result(task.task_id, OWNER), "get_result before any result")
    require("TS-13", error.status is TaskStatus.WORKING, f"NotReadyError.status is {error.status!r}, expected working")
    staged = store.set_result(task.task_id, OWNER, None)
    require("TS-13", staged.has_result is True and staged.result is None and staged.status is TaskStatus.WORKING,
            f"set_result(None) returned has_result={staged.has_result!r} result={staged.result!r}; null is a result")
    require("TS-13", stored_result(store, task.task_id) is None, "the task holds no null result after set_result(None)")
    done = store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, None)
    require("TS-13", done.has_result and store.get_result(task.task_id, OWNER) is None, "a null final result is not a result")
    for status in (TaskStatus.CANCELLED, TaskStatus.FAILED, TaskStatus.INPUT_REQUIRED):
        other = store.create(OWNER, "m")
        if status is TaskStatus.CANCELLED:
            store.cancel(other.task_id, OWNER)
        else:
            store.update_status(other.task_id, OWNER, status)
        error = expect_error("TS-13", NotReadyError, lambda: store.get_result(other.task_id, OWNER), f"get_result of a {status.value} task without result")
        require("TS-13", error.status is status, f"NotReadyError.status is {error.status!r} for a {status.value} task")


@covers("TS-13")
@examples(20)
@given(values=st.lists(json_values(), min_size=3, max_size=3), status=st.sampled_from([TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED]))
def test_results_and_variables_round_trip_and_replace_until_terminal(make_store: Callable[..., SyncStore], values: list[Any], status: TaskStatus) -> None:
    store = make_store()
    task = store.update_status(store.create(OWNER, "m").task_id, OWNER, status)
    first, second, final = values
    if max(_depth(v) for v in values) > 9:
        return  # beyond the default depth once wrapped: TS-11 tests refusals
    for value in (first, second):
        written = store.set_result(task.task_id, OWNER, value)
        require("TS-13", written.has_result and same_json(written.result, value) and same_json(stored_result(store, task.task_id), value),
                f"set_result({value!r}) read back as {stored_result(store, task.task_id)!r}")
        require("TS-13", written.status is status, f"set_result changed the status to {written.status!r}")
    variables = {"v": [first], "w": {"x": second}}
    written = store.set_variables(task.task_id, OWNER, variables)
    require_json("TS-13", written.variables, variables, f"variables {variables!r} read back as {store.get(task.task_id, OWNER).variables!r}")
    require_json("TS-13", store.get(task.task_id, OWNER).variables, variables, f"variables {variables!r} read back as {store.get(task.task_id, OWNER).variables!r}")
    store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, final)
    require_json("TS-13", store.get_result(task.task_id, OWNER), final, f"the final result {final!r} did not read back")


@covers("TS-13")
def test_callers_get_copies(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    given_vars: dict[str, Any] = {"list": [1, 2], "obj": {"k": "v"}}
    store.set_variables(task.task_id, OWNER, given_vars)
    given_vars["list"].append(3)
    given_vars["obj"]["k"] = "changed by the caller"
    given_vars["new"] = 1
    result = {"items": [1]}
    store.set_result(task.task_id, OWNER, result)
    result["items"].append(2)
    read = store.get(task.task_id, OWNER)
    require_json("TS-13", read.variables, {"list": [1, 2], "obj": {"k": "v"}}, f"changing the caller's map after set_variables changed the stored variables: {read.variables!r}")
    require_json("TS-13", read.result, {"items": [1]}, "changing the caller's result after set_result changed it")
    read.variables["list"].append(99)
    read.result["items"].append(99)
    require_json("TS-13", store.get(task.task_id, OWNER).variables, {"list": [1, 2], "obj": {"k": "v"}}, "mutating the variables of a returned task changed the stored task")
    require_json("TS-13", stored_result(store, task.task_id), {"items": [1]}, "mutating a returned result changed the stored one")
    done = store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, {"items": [1]})
    store.get_result(done.task_id, OWNER)["items"].append(99)
    require_json("TS-13", store.get_result(done.task_id, OWNER), {"items": [1]}, "mutating what get_result returned changed the stored result")


# ---------------------------------------------------------------- TS-20: refusals change nothing, checks in order


REFUSING = StoreConfig(
    max_tasks_per_owner=3,
    max_variable_bytes=60,
    max_result_bytes=30,
    max_depth=2,
    max_string_bytes=10,
    default_ttl_ms=60_000,
    max_ttl_ms=120_000,
)


def _everything(store: SyncStore, ids: list[str]) -> tuple[Any, ...]:
    """All a caller can see: the owner's listing and each task with its result."""
    listing: list[str] = []
    cursor = None
    while True:
        page = store.list(OWNER, cursor=cursor, limit=2)
        listing.extend(t.task_id for t in page.tasks)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    return (tuple(listing), tuple(state_of(store, i) for i in ids), store.list(INTRUDER).tasks)


@covers("TS-20", "SEC-6")
def test_refusals_leave_the_store_exactly_as_it_was(limited_store: Callable[..., SyncStore]) -> None:
    store = limited_store(config=REFUSING)
    live = store.create(OWNER, "m")
    store.set_variables(live.task_id, OWNER, {"a": "x"})
    store.set_result(live.task_id, OWNER, [1])
    waiting = store.update_status(store.create(OWNER, "m").task_id, OWNER, TaskStatus.INPUT_REQUIRED, "need input")
    done = store.create(OWNER, "m")
    store.complete_with_result(done.task_id, OWNER, TaskStatus.COMPLETED, "ok", {"r": 1})
    ids = [live.task_id, waiting.task_id, done.task_id]
    L, D = live.task_id, done.task_id
    refusals: list[tuple[type[TaskError], str, Callable[[], Any]]] = [
        (ResourceExhaustedError, "a fourth create", lambda: store.create(OWNER, "m")),
        (TtlExceededError, "create(ttl=0)", lambda: store.create(OWNER, "m", ttl=0)),
        (TtlExceededError, "create(ttl=120001)", lambda: store.create(OWNER, "m", ttl=120_001)),
        (AnonymousAccessError, "set_variables by ''", lambda: store.set_variables(L, "", {"b": 1})),
        (VariableValidationError, "create with an 11-byte method", lambda: store.create(OWNER, "m" * 11)),
        (VariableValidationError, "set_variables 3 deep", lambda: store.set_variables(L, OWNER, {"b": [[[1]]]})),
        (VariableValidationError, "set_variables of NaN beside a valid name", lambda: store.set_variables(L, OWNER, {"b": 1, "c": float("nan")})),
        (VariableValidationError, "set_result of an 11-byte string", lambda: store.set_result(L, OWNER, "x" * 11)),
        (VariableValidationError, "update_status with an 11-byte message", lambda: store.update_status(L, OWNER, TaskStatus.WORKING, "m" * 11)),
        (VariableValidationError, "complete_with_result 3 deep", lambda: store.complete_with_result(L, OWNER, TaskStatus.COMPLETED, None, [[[0]]])),
        (VariableSizeExceededError, "set_variables to 66 bytes", lambda: store.set_variables(L, OWNER, {"b": "y" * 10, "c": "z" * 10, "d": "w" * 10, "e": 1})),
        (VariableSizeExceededError, "set_result past 30 bytes", lambda: store.set_result(L, OWNER, ["a" * 10] * 3)),
        (VariableSizeExceededError, "complete_with_result past 30 bytes", lambda: store.complete_with_result(L, OWNER, TaskStatus.FAILED, "x", ["a" * 10] * 3)),
        (InvalidTransitionError, "update_status(completed -> working)", lambda: store.update_status(D, OWNER, TaskStatus.WORKING)),
        (InvalidTransitionError, "set_variables on a completed task", lambda: store.set_variables(D, OWNER, {"a": 2})),
        (InvalidTransitionError, "set_result on a completed task", lambda: store.set_result(D, OWNER, 1)),
        (InvalidTransitionError, "complete_with_result on a completed task", lambda: store.complete_with_result(D, OWNER, TaskStatus.FAILED, None, 1)),
        (InvalidTransitionError, "cancel of a completed task", lambda: store.cancel(D, OWNER)),
        (InvalidTransitionError, "update_status to 'bogus'", lambda: store.update_status(L, OWNER, "bogus")),
        (InvalidTransitionError, "complete_with_result(working)", lambda: store.complete_with_result(L, OWNER, TaskStatus.WORKING, None, 1)),
        (TaskNotFoundError, "cancel by another owner", lambda: store.cancel(L, INTRUDER)),
        (TaskNotFoundError, "set_variables by another owner", lambda: store.set_variables(L, INTRUDER, {"a": 9})),
        (TaskNotFoundError, "cancel of a never-issued id", lambda: store.cancel(uuid.uuid4().hex, OWNER)),
        (InvalidCursorError, "list with a forged cursor", lambda: store.list(OWNER, cursor="nope")),
        (NotReadyError, "get_result of a task without result", lambda: store.get_result(waiting.task_id, OWNER)),
    ]
    before = _everything(store, ids)
    for error_type, what, call in refusals:
        expect_error("TS-20", error_type, call, what)
        after = _everything(store, ids)
        require("TS-20", after == before, f"{what} was refused with {error_type.__name__}, yet the store changed: {before!r} -> {after!r}")


@covers("TS-20")
def test_checks_run_in_the_documented_order(harness: Harness, limited_store: Callable[..., SyncStore], clock: FakeClock | None) -> None:
    config = StoreConfig(max_tasks_per_owner=2, max_variable_bytes=30, max_result_bytes=20, max_depth=2,
                         max_string_bytes=8, default_ttl_ms=60_000, max_ttl_ms=120_000)
    store = limited_store(config=config)
    mine = store.create(OWNER, "m")
    theirs = store.create(INTRUDER, "m")
    missing = uuid.uuid4().hex
    cases: list[tuple[type[TaskError], str, Callable[[], Any]]] = [
        # The owner comes first.
        (AnonymousAccessError, "create('', bad method, ttl=0)", lambda: store.create("", "m" * 9, ttl=0)),
        (AnonymousAccessError, "set_variables(missing id, '', NaN)", lambda: store.set_variables(missing, "", {"v": float("nan")})),
        (AnonymousAccessError, "list('', forged cursor)", lambda: store.list("", cursor="bogus")),
    ]
    # The call's own arguments come before the lookup: they never reveal whether a task exists.
    for whose, task_id in (("a never-issued id", missing), ("another owner's task", theirs.task_id)):
        cases += [
            (InvalidTransitionError, f"update_status to 'bogus' on {whose}", partial(store.update_status, task_id, OWNER, "bogus")),
            (VariableValidationError, f"update_status with a 9-byte message on {whose}", partial(store.update_status, task_id, OWNER, TaskStatus.WORKING, "m" * 9)),
            (VariableValidationError, f"set_variables 3 deep on {whose}", partial(store.set_variables, task_id, OWNER, {"v": [[[1]]]})),
            (VariableValidationError, f"set_result of a 9-byte string on {whose}", partial(store.set_result, task_id, OWNER, "x" * 9)),
            (VariableSizeExceededError, f"set_result of 23 bytes on {whose}", partial(store.set_result, task_id, OWNER, ["x" * 8, "y" * 8])),
            (VariableValidationError, f"set_result both too big and too deep on {whose} (shape before size)",
             partial(store.set_result, task_id, OWNER, ["x" * 8, "y" * 8, [[0]]])),
            (InvalidTransitionError, f"complete_with_result(working) on {whose}", partial(store.complete_with_result, task_id, OWNER, TaskStatus.WORKING, None, 1)),
            (VariableValidationError, f"complete_with_result 3 deep on {whose}",
             partial(store.complete_with_result, task_id, OWNER, TaskStatus.COMPLETED, None, [[[1]]])),
        ]
    for error_type, what, call in cases:
        error = expect_error("TS-20", error_type, call, what)
        require("TS-20", type(error) is error_type,
                f"{what} raised {type(error).__name__}; the first failing check in the SPEC's order gives {error_type.__name__}")

    # The task's state comes before the size of the merged variables.
    store.set_variables(mine.task_id, OWNER, {"a": "x" * 8})
    store.complete_with_result(mine.task_id, OWNER, TaskStatus.COMPLETED, None, 1)
    expect_error("TS-20", InvalidTransitionError, lambda: store.set_variables(mine.task_id, OWNER, {"b": "y" * 8, "c": "z" * 8}),
                 "set_variables past the size limit on a completed task (state before merged size)")
    # Arguments come before the quota (the owner's quota is now full).
    store.create(OWNER, "m")
    for error_type, what, call in (
        (TtlExceededError, "create(ttl=0) with the quota full", lambda: store.create(OWNER, "m", ttl=0)),
        (VariableValidationError, "create with a 9-byte method with the quota full", lambda: store.create(OWNER, "m" * 9)),
    ):
        expect_error("TS-20", error_type, call, what)
    refused_create("TS-20", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"), "a valid create with the quota full")
    if clock is None:
        return
    # Expiry comes before the task's state; the lookup (owner) before expiry.
    clock.advance(60.001)
    expired = TaskExpiredError if harness.capabilities.expired_records is ExpiredRecords.KEPT_UNTIL_CLEANUP else TaskNotFoundError
    expect_error("TS-20", expired, lambda: store.set_variables(mine.task_id, OWNER, {"b": 1}),
                 "set_variables on an expired completed task (expiry before state)")
    error = expect_error("TS-20", TaskNotFoundError, lambda: store.set_variables(theirs.task_id, OWNER, {"b": 1}),
                         "set_variables on another owner's expired task (lookup before expiry)")
    require("TS-20", type(error) is TaskNotFoundError, f"another owner's expired task raised {type(error).__name__}, not TaskNotFoundError")
