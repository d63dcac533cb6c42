"""SEC-5 to SEC-8: what an attacker stores: depth bombs, sizes at the exact byte, injection text, inexact numbers.

Every value here is either kept exactly or refused cleanly with VariableValidationError or
VariableSizeExceededError, and a refusal leaves the task as it was. Bombs are built by
``conformance.strategies.hostile.bomb`` without recursion, and the kit never prints or
compares one with recursive code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import (
    StoreConfig,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
    VariableSizeExceededError,
    VariableValidationError,
    canonical_json,
)
from conformance.checks.task_store import (
    OWNER,
    listed_ids,
    refused,
    require_json,
    state_of,
    stored_result,
    stray_errors_break,
)
from conformance.harness import FakeClock, Harness, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies.hostile import (
    NON_JSON,
    SHAPES,
    bomb,
    exact_floats,
    exact_integers,
    hidden,
    injection_names,
    injection_texts,
    injection_values,
    same_number,
)

pytestmark = pytest.mark.conformance_target("store")


@dataclass(frozen=True)
class Position:
    """Where a nested value can hide: what is stored for it, through which call, and how deep that place already is."""

    where: str
    #: Containers the position itself adds around the value.
    levels: int
    #: What is stored for ``value``: the variable ``v``, or the result.
    wrap: Callable[[Any], Any]
    #: "variables", "result" or "completion" (the result of complete_with_result).
    call: str

    def store(self, store: SyncStore, task_id: str, value: Any) -> Any:
        stored = self.wrap(value)
        if self.call == "variables":
            return store.set_variables(task_id, OWNER, {"v": stored})
        if self.call == "result":
            return store.set_result(task_id, OWNER, stored)
        return store.complete_with_result(task_id, OWNER, TaskStatus.COMPLETED, None, stored)

    def read_back(self, store: SyncStore, task_id: str, written: Any) -> Any:
        """What the store holds there now: the written task's variable, or the stored result."""
        if self.call == "variables":
            return written.variables["v"]
        return stored_result(store, task_id) if self.call == "result" else store.get_result(task_id, OWNER)


POSITIONS: tuple[Position, ...] = (
    Position("a variable's value", 0, lambda value: value, "variables"),
    Position("inside a variable's object", 1, lambda value: {"inner": value}, "variables"),
    Position("at the end of a long list", 1, lambda value: [*range(1_000), value], "variables"),
    Position("a result", 0, lambda value: value, "result"),
    Position("the result of complete_with_result", 0, lambda value: value, "completion"),
)

BOMB_DEPTH = 100_000


def _readable(clause: str, store: SyncStore, task_id: str, what: str) -> None:
    """The task still reads through every door: get, get_result (or NotReadyError) and the owner's listing."""
    state_of(store, task_id)
    require(clause, task_id in listed_ids(store, OWNER, clause), f"after {what}, the owner's listing lost the task")


# ---------------------------------------------------------------- SEC-5: depth bombs


@covers("SEC-5")
def test_depth_bombs_are_refused_wherever_they_hide(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    store.set_variables(task.task_id, OWNER, {"keep": [1]})
    for shape in SHAPES:
        value = bomb(BOMB_DEPTH, shape)
        for position in POSITIONS:
            what = f"{position.where}: {shape} nested {BOMB_DEPTH:,} deep"
            with stray_errors_break("SEC-5", RecursionError, hangs=True):
                error = refused("SEC-5", store, task.task_id, VariableValidationError,
                                lambda: position.store(store, task.task_id, value), what)
            require("SEC-5", error.reason == "depth", f"{what} was refused with reason {error.reason!r}, not 'depth'")
        _readable("SEC-5", store, task.task_id, f"refusing {shape} bombs")


@covers("SEC-5")
def test_depth_limit_holds_exactly_in_every_position(harness: Harness, make_store: Callable[..., SyncStore]) -> None:
    store = make_store()
    limit = harness.store_config(store).max_depth
    for shape in SHAPES:
        for position in POSITIONS:
            where = position.where
            deepest, deeper = (bomb(limit - position.levels + extra, shape, leaf="leaf") for extra in (0, 1))
            task = store.create(OWNER, "m")
            error = refused("SEC-5", store, task.task_id, VariableValidationError, lambda: position.store(store, task.task_id, deeper),
                            f"{where}: {shape} one level past max_depth={limit}")
            require("SEC-5", error.reason == "depth", f"{where}: one level too deep was refused with reason {error.reason!r}")
            what = f"{where}: {shape} at exactly max_depth={limit}"
            written = position.store(store, task.task_id, deepest)
            require_json("SEC-5", position.read_back(store, task.task_id, written), position.wrap(deepest), f"{what} did not read back as written")
            _readable("SEC-5", store, task.task_id, what)


# ---------------------------------------------------------------- SEC-6: sizes at the exact byte

SIZE_LIMIT = 256
#: Characters of one to four UTF-8 bytes that canonical JSON writes as they are (no escapes).
WIDE_CHARS = st.sampled_from(["x", "é", "ß", "€", "中", "🔑"])
SCENARIOS = ("many small variables", "grows because of what the task holds", "a deletion in the same call makes room")


def _fill(nbytes: int, char: str) -> str:
    """Exactly ``nbytes`` UTF-8 bytes: as many ``char`` as fit, then ASCII."""
    width = len(char.encode("utf-8"))
    return char * (nbytes // width) + "x" * (nbytes % width)


def _merged(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    merged = {**current, **incoming}
    return {name: value for name, value in merged.items() if value is not None}


@covers("SEC-6")
@examples(40)
@given(scenario=st.sampled_from(SCENARIOS), char=WIDE_CHARS, offset=st.sampled_from([-1, 0, 1]), data=st.data())
def test_size_limit_holds_at_the_exact_byte(
    limited_store: Callable[..., SyncStore], scenario: str, char: str, offset: int, data: st.DataObject
) -> None:
    store = limited_store(config=StoreConfig(max_variable_bytes=SIZE_LIMIT, max_string_bytes=SIZE_LIMIT))
    task = store.create(OWNER, "m")
    held: dict[str, Any] = {}
    incoming: dict[str, Any] = {}
    if scenario == "many small variables":
        count = data.draw(st.integers(4, 12), label="variables")
        incoming = {f"v{n}": data.draw(st.one_of(st.integers(-99, 99), st.text(char, max_size=3)), label=f"v{n}") for n in range(count)}
    elif scenario == "grows because of what the task holds":
        held = {"held": _fill(SIZE_LIMIT * 6 // 10, char)}
    else:
        held = {"held": _fill(SIZE_LIMIT * 5 // 10, char), "gone": _fill(SIZE_LIMIT * 4 // 10, char)}
        incoming = {"gone": None}
    if held:
        store.set_variables(task.task_id, OWNER, held)
    incoming["pad"] = ""
    target = SIZE_LIMIT + offset
    incoming["pad"] = _fill(target - len(canonical_json(_merged(held, incoming))), char)
    merged = _merged(held, incoming)
    assert len(canonical_json(merged)) == target
    what = f"{scenario}: a merge whose result is {target} canonical bytes with max_variable_bytes={SIZE_LIMIT} ({char!r} text)"
    if target <= SIZE_LIMIT:
        outcome = store.set_variables(task.task_id, OWNER, incoming)
        require_json("SEC-6", outcome.variables, merged, f"{what} was stored as {outcome.variables!r:.120}")
        return
    error = refused("SEC-6", store, task.task_id, VariableSizeExceededError,
                    lambda: store.set_variables(task.task_id, OWNER, incoming), what)
    require("SEC-6", (error.limit_bytes, error.actual_bytes) == (SIZE_LIMIT, target),
            f"{what} was refused with limit_bytes={error.limit_bytes}, actual_bytes={error.actual_bytes}; "
            f"expected {SIZE_LIMIT} and {target} (the canonical bytes of the merged map)")


# ---------------------------------------------------------------- SEC-7: data stays data

MALLORY = "mallory"


@covers("SEC-7")
@examples(40)
# The classic injection first: a variable named like the record's owner field.
@example(variables={"ownerId": MALLORY}, result={"ownerId": MALLORY}, message='"},"ownerId":"mallory', method="tools/call")
@given(
    variables=st.dictionaries(injection_names(), injection_values(), min_size=1, max_size=6),
    result=injection_values(),
    message=injection_texts(),
    method=injection_texts(),
)
def test_stored_data_never_reaches_the_records_own_fields(
    make_store: Callable[..., SyncStore], store_clock: FakeClock | None, variables: dict[str, Any], result: Any, message: str, method: str
) -> None:
    store = make_store()
    task = store.create(OWNER, method)

    def fixed(t: Any) -> tuple[Any, ...]:
        return (t.task_id, t.owner_id, t.request_method, t.created_at, t.ttl, t.expires_at)

    require("SEC-7", task.request_method == method, f"create with request method {method!r} stored {task.request_method!r}")
    steps: tuple[tuple[str, Callable[[], TaskRecord], TaskStatus], ...] = (
        ("set_variables", lambda: store.set_variables(task.task_id, OWNER, variables), TaskStatus.WORKING),
        ("update_status", lambda: store.update_status(task.task_id, OWNER, TaskStatus.INPUT_REQUIRED, message), TaskStatus.INPUT_REQUIRED),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, result), TaskStatus.INPUT_REQUIRED),
    )
    previous = task.version
    for method_name, call, status in steps:
        written = call()
        what = f"{method_name} with names and text {variables!r:.160}"
        require("SEC-7", fixed(written) == fixed(task) and written.status == status and written.version > previous,
                f"{what} changed the task's own fields: {fixed(task)!r:.200} (status working, version {task.version}) became "
                f"{fixed(written)!r:.200} (status {written.status.value}, version {written.version})")
        require("SEC-7", store.get(task.task_id, OWNER) == written, f"after {what}, get disagrees with what the call returned")
        previous = written.version
    stored = store.get(task.task_id, OWNER)
    require_json("SEC-7", stored.variables, _merged({}, variables), f"variables {variables!r:.160} read back as {stored.variables!r:.160}")
    require("SEC-7", stored.status_message == message, f"status message {message!r} read back as {stored.status_message!r}")
    require_json("SEC-7", stored_result(store, task.task_id), result, f"result {result!r:.160} did not read back exactly")
    require("SEC-7", listed_ids(store, OWNER, "SEC-7").count(task.task_id) == 1, "the owner's listing lost the task")
    require("SEC-7", task.task_id not in listed_ids(store, MALLORY, "SEC-7"), f"{MALLORY!r}, named in the data, lists the task")
    expect_error("SEC-7", TaskNotFoundError, lambda: store.get(task.task_id, MALLORY), f"get by {MALLORY!r}, named in the data")
    if store_clock is not None and task.ttl is not None:
        store_clock.advance(task.ttl / 1000 + 1)
        # TaskExpiredError is a TaskNotFoundError; a backend that hides expired records answers plain not-found (TS-15).
        expect_error("SEC-7", TaskNotFoundError, lambda: store.get(task.task_id, OWNER),
                     f"get {task.ttl} ms after creation, with variables named like the record's expiry")


# ---------------------------------------------------------------- SEC-8: exact JSON


@covers("SEC-8")
@examples(40)
@given(ints=st.lists(exact_integers(), min_size=1, max_size=4), floats=st.lists(exact_floats(), min_size=1, max_size=4))
def test_numbers_round_trip_exactly(make_store: Callable[..., SyncStore], ints: list[int], floats: list[float]) -> None:
    store = make_store()
    task = store.create(OWNER, "m")
    numbers = [*ints, *floats]
    store.set_variables(task.task_id, OWNER, {"ints": ints, "floats": floats, "first": numbers[0]})
    store.set_result(task.task_id, OWNER, numbers)
    read = store.get(task.task_id, OWNER).variables
    result = stored_result(store, task.task_id)
    for where, got, sent in (("variable", [*read["ints"], *read["floats"]], numbers), ("result", result, numbers),
                             ("scalar variable", [read["first"]], numbers[:1])):
        wrong = [(s, g) for s, g in zip(sent, got) if not same_number(s, g)]
        require("SEC-8", len(got) == len(sent) and not wrong,
                f"numbers in a {where} did not round-trip: sent {wrong[0][0]!r} ({type(wrong[0][0]).__name__}), read back "
                f"{wrong[0][1]!r} ({type(wrong[0][1]).__name__})" if wrong else f"a {where} of {len(sent)} numbers read back as {got!r:.80}")


@covers("SEC-8")
@examples(40)
@given(poison=st.sampled_from(NON_JSON), data=st.data())
def test_non_json_values_are_refused_wherever_they_hide(
    make_store: Callable[..., SyncStore], poison: tuple[str, Callable[[], Any]], data: st.DataObject
) -> None:
    name, make = poison
    value = data.draw(hidden(make()), label="value")
    store = make_store()
    task = store.create(OWNER, "m")
    store.set_variables(task.task_id, OWNER, {"keep": 1})
    for method, call in (
        ("set_variables", lambda: store.set_variables(task.task_id, OWNER, {"v": value})),
        ("set_result", lambda: store.set_result(task.task_id, OWNER, value)),
        ("complete_with_result", lambda: store.complete_with_result(task.task_id, OWNER, TaskStatus.COMPLETED, None, value)),
    ):
        with stray_errors_break("SEC-8", TypeError, ValueError, OverflowError):
            refused("SEC-8", store, task.task_id, VariableValidationError, call, f"{method} of {name} hidden in {value!r:.80}")
