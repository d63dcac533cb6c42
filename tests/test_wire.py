"""The wire protocol: values and errors cross it unchanged, and every way a process can go wrong is one line."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    StorageError,
    TaskRecord,
    TaskStatus,
    VersionConflictError,
)
from conformance.contract.task_errors import (
    AnonymousAccessError,
    ConcurrentModificationError,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    StorageFullError,
    TaskExpiredError,
    TaskNotFoundError,
    TaskStoreError,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
)
from conformance.contract.backend import BACKEND_METHODS
from conformance.harness.target import TargetError, load_command_target
from conformance.strategies.hostile import bomb
from conformance.wire.codec import ERROR_TYPES, FIGURES, Inexpressible, error_in, error_out, exact_json, task_in, task_out
from conformance.wire.schema import document, first_problem
from tests.conftest import assert_passes_whole_kit, run_kit, usage_error_line

SERVE = f"{sys.executable} -m conformance.serve"
BAD = f"{sys.executable} -m testbed.wire.bad_server"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_exact_json_writes_what_json_writes(value: Any) -> None:
    assert exact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@pytest.mark.parametrize(
    ("value", "what"),
    [((1, 2), "tuple"), ({1: "a"}, "map key of type int"), (math.nan, "nan"), ([math.inf], "inf"), ({1, 2}, "set"),
     (b"x", "bytes"), ("\ud800", "lone surrogate"), (TaskStatus, "EnumType")],
)
def test_exact_json_refuses_what_json_would_change(value: Any, what: str) -> None:
    with pytest.raises(Inexpressible, match=what):
        exact_json(value)


def test_exact_json_refuses_a_cycle_but_writes_shared_values_and_depth_bombs() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(Inexpressible, match="contains itself"):
        exact_json({"a": cycle})
    shared = [1]
    assert exact_json([shared, {"s": shared}]) == '[[1],{"s":[1]}]'
    deep = exact_json(bomb(200_000, "alternating"))
    assert deep == '{"k":[' * 100_000 + "0" + "]}" * 100_000


ERRORS: list[BaseException] = [
    NotFoundError("k\x00é"), VersionConflictError("k", 1, 2), CapacityExceededError("too big"), BackendError("down"),
    TaskNotFoundError("t1"), TaskExpiredError("t2"), InvalidTransitionError("no", TaskStatus.COMPLETED, TaskStatus.WORKING),
    NotReadyError("t3", TaskStatus.WORKING), ConcurrentModificationError("t4", 3, 4), ConcurrentModificationError(None, None, None, "lost"),
    VariableSizeExceededError("variables", 10, 11), VariableValidationError("variables", "depth", "too deep", ("a", 0, "b")),
    TtlExceededError(-5, 1000), AnonymousAccessError(), ResourceExhaustedError(3), StorageFullError("full"),
    InvalidCursorError(), TaskStoreError("unreadable"), ValueError("limit must be at least 1"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_cross_the_wire_with_their_figures(error: BaseException) -> None:
    sent = json.loads(json.dumps(error_out(error)))
    assert first_problem("reply.error", {"id": 1, "error": sent}) is None
    received = error_in(lambda: "call()", "BK-3", sent)
    assert type(received) is type(error) and str(received) == str(error)
    figures = {name: getattr(error, name) for name in FIGURES if name in vars(error)}
    assert {name: getattr(received, name) for name in figures} == figures


def test_every_contract_error_has_a_wire_name_in_the_schema() -> None:
    named = set(document()["$defs"]["error"]["properties"]["type"]["enum"])
    assert set(ERROR_TYPES) <= named


def test_an_error_outside_the_contract_keeps_its_name_and_is_no_storage_error() -> None:
    received = error_in(lambda: "get('k')", "BK-3", error_out(KeyError("k")))
    assert type(received).__name__ == "KeyError" and not isinstance(received, StorageError)


def test_a_task_crosses_the_wire_unchanged() -> None:
    task = TaskRecord("t", "alice", "tools/call", TaskStatus.INPUT_REQUIRED, "waiting", 1_800_000_000.123, 1_800_000_001.5, 60_000,
                      500, 1_800_000_060.123, {"a": [1, None]}, True, None, 2)
    sent = json.loads(json.dumps(task_out(task)))
    assert first_problem("reply.store.get", {"id": 1, "ok": sent}) is None
    assert task_in(sent) == task


# ------------------------------------------------------------------ processes that go wrong before the first test


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("no-such-command-xyz", "cannot start: No such file or directory"),
        ("sh -c 'echo boom >&2; exit 3'", "exited with code 3; its stderr ended: boom"),
        ("sh -c 'echo hello world; sleep 30'", "wrote line 1 of stdout, which is not a protocol reply"),
        ("sleep 30", "did not answer 'hello' within 1 s"),
        (f"{SERVE} --store reference_backend:in_memory_task_store", "it implements a store, and --backend-command runs the backend suite"),
        ("", "--backend-command is empty"),
    ],
)
def test_a_process_that_cannot_serve_is_one_line(command: str, expected: str) -> None:
    with pytest.raises(TargetError) as caught:
        load_command_target(command, "--backend-command", "backend", BACKEND_METHODS, timeout=1.0)
    message = str(caught.value)
    assert expected in message and "\n" not in message, message


def test_the_plugin_reports_a_missing_command_as_a_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = run_kit(pytester, "--backend-command=no-such-command-xyz")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot start" in usage_error_line(result)


def test_one_target_at_a_time(pytester: pytest.Pytester) -> None:
    result, _ = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", f"--store-command={SERVE} --store x:y")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "give one target, not --backend and --store-command" in usage_error_line(result)


# ------------------------------------------------------------------ processes that go wrong during the run


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("crash", "exited with code 7; its stderr ended: bad_server: giving up"),
        ("garbage", "which is not a protocol reply (a JSON object with an id and one of ok, error): 'panic: not a reply'"),
        ("unknown-id", "replied to id 1000000000, which the kit never sent"),
    ],
)
def test_a_process_that_breaks_mid_run_stops_the_run_in_one_line(pytester: pytest.Pytester, mode: str, expected: str) -> None:
    result, verdict = run_kit(pytester, f"--backend-command={BAD} {mode} 12")
    assert result.ret == pytest.ExitCode.INTERRUPTED, result.stdout.str()[-3000:]
    assert verdict is not None and verdict["violated"] == ["BK-19"]
    stop = [line for line in result.stdout.lines if line.startswith("!") and "Interrupted: conformance:" in line]
    assert len(stop) == 1 and expected in stop[0], result.stdout.str()[-3000:]
    assert sum(expected in line for line in result.stdout.lines if line.startswith("E ")) == 1


def test_a_process_that_stops_answering_is_a_timeout(pytester: pytest.Pytester) -> None:
    result, verdict = run_kit(pytester, f"--backend-command={BAD} hang 12", "--conformance-timeout=0.5")
    assert result.ret != 0 and verdict is not None and verdict["violated"] == ["BK-19"]
    result.stdout.fnmatch_lines(["*did not complete within 0.5 s*", "*calls timed out*stopping*"])


@pytest.mark.parametrize(("mode", "clause"), [("off-schema", "BK-2"), ("foreign-error", "BK-3")])
def test_a_wrong_answer_is_judged_by_its_clause(pytester: pytest.Pytester, mode: str, clause: str) -> None:
    result, verdict = run_kit(pytester, f"--backend-command={BAD} {mode} 3", "--conformance-clause=BK-5", "--conformance-clause=BK-4")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and verdict is not None
    assert clause in verdict["violated"], verdict["violated"]
    if mode == "off-schema":
        result.stdout.fnmatch_lines(["*was answered off the protocol's schema: ok*", "*Captured stderr of the target process*",
                                     "bad_server: answering put * with a string"])


# ------------------------------------------------------------------ the reference, served


@pytest.mark.slow
def test_the_reference_backend_served_over_the_wire_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    assert_passes_whole_kit(pytester, f"--backend-command={SERVE} --backend reference_backend:InMemoryBackend", loops=["asyncio"])


@pytest.mark.slow
def test_the_reference_store_served_over_the_wire_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    verdict = assert_passes_whole_kit(pytester, f"--store-command={SERVE} --store reference_backend:in_memory_task_store", loops=["trio"])
    skipped = [nodeid for nodeid, test in verdict["tests"].items() if test.get("outcome") == "skipped"]
    assert skipped, "values JSON cannot carry are skipped across the wire, and the report says so"
