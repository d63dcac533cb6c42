"""Reproductions: a failure's calls replayed outside the kit, and how a failure reads.

The galleries prove each broken target's script exits 1 (``assert_fails_for_clause``); here,
that a fixed target's exits 0, that the replay compares answers up to the target's freedoms
and no further, and that a failure opens with its clause and its calls.
"""

from __future__ import annotations

import math

import pytest

from conformance.contract import StoreConfig, TaskStatus
from conformance.report.replay import Renaming, decode, encode, observe
from tests.conftest import reproductions, run_kit, run_reproduction

# ------------------------------------------------------------------ values survive the script


def test_values_round_trip_at_any_depth_and_with_cycles() -> None:
    looped: list[object] = [1]
    looped.append(looped)
    deep: list[object] = []
    tip = deep
    for _ in range(100_000):
        tip.append([])
        tip = tip[0]  # type: ignore[assignment]
    values: list[object] = [{}, (), {"a": [1, 2.5, None, True]}, 2**5000, b"\x00", {1, 2}, frozenset({3}), (1, (2, 3)),
                            StoreConfig(), TaskStatus.WORKING, "\ud800", -0.0]
    for value in values:
        back = decode(encode(value))
        assert back == value and type(back) is type(value), value
    assert math.isnan(decode(encode(float("nan"))))
    back_loop = decode(encode(looped))
    assert back_loop[1] is back_loop
    depth, tip = 0, decode(encode(deep))
    while tip:
        tip, depth = tip[0], depth + 1
    assert depth == 100_000


# ------------------------------------------------------------------ answers up to the target's freedoms


def _put(version: int) -> object:
    return observe("backend", "put", version, None, None, set())


def test_versions_match_up_to_a_renaming_that_keeps_their_order() -> None:
    renaming = Renaming()
    assert renaming.differs(_put(1), _put(7)) is None
    assert renaming.differs(_put(2), _put(9)) is None  # another counter, the same order
    assert renaming.differs(_put(2), _put(9)) is None
    assert renaming.differs(_put(3), _put(8)) is not None  # below a version it must exceed
    assert Renaming().differs(_put(2), _put(2)) is None
    shared = Renaming()
    assert shared.differs(_put(1), _put(5)) is None
    assert shared.differs(_put(2), _put(5)) is not None  # two recorded versions cannot become one


def test_a_listing_in_another_order_or_a_reworded_backend_error_is_the_same_answer() -> None:
    from conformance.contract import NotFoundError, TaskNotFoundError, VersionedRecord

    a, b = ("a", VersionedRecord(b"1", 1)), ("b", VersionedRecord(b"2", 1))
    listed = observe("backend", "list_by_prefix", [a, b], None, None, set())
    assert Renaming().differs(listed, observe("backend", "list_by_prefix", (b, a), None, None, set())) is None
    assert Renaming().differs(listed, observe("backend", "list_by_prefix", [a], None, None, set())) is not None
    worded, reworded = NotFoundError("k"), NotFoundError("k")
    reworded.args = ("no such key",)
    assert Renaming().differs(observe("backend", "get", None, worded, None, set()),
                              observe("backend", "get", None, reworded, None, set())) is None
    store = [observe("store", "get", None, TaskNotFoundError("t", message), None, set()) for message in ("not found", "gone")]
    assert Renaming().differs(*store) is not None  # a store's wording is judged (TS-7: another owner's task reads as missing)


def test_an_error_is_judged_by_its_type_figures_and_message() -> None:
    from conformance.contract import NotFoundError, VersionConflictError

    conflict = observe("backend", "put_if_version", None, VersionConflictError("k", 1, 2), None, set())
    swapped = observe("backend", "put_if_version", None, VersionConflictError("k", 2, 1), None, set())
    assert Renaming().differs(conflict, conflict) is None
    assert Renaming().differs(conflict, swapped) is not None
    missing = observe("backend", "get", None, NotFoundError("k"), None, set())
    assert Renaming().differs(conflict, missing) is not None


def test_task_ids_are_renamed_but_ties_in_a_listing_keep_their_order() -> None:
    from conformance.contract import TaskPage, TaskRecord

    def task(task_id: str) -> TaskRecord:
        return TaskRecord(task_id, "alice", "m", TaskStatus.WORKING, None, 1.0, 1.0, None, 500, None)

    def page(*ids: str) -> object:
        return observe("store", "list", TaskPage(tuple(task(i) for i in ids)), None, None, {1000})

    created = [observe("store", "create", task(i), None, None, {1000}) for i in ("a", "b")]
    same_order = Renaming()
    for recorded, replayed in zip(created, [observe("store", "create", task(i), None, None, {1000}) for i in ("x", "y")]):
        assert same_order.differs(recorded, replayed) is None
    assert same_order.differs(page("a", "b"), page("x", "y")) is None
    flipped = Renaming()
    for recorded, replayed in zip(created, [observe("store", "create", task(i), None, None, {1000}) for i in ("y", "x")]):
        assert flipped.differs(recorded, replayed) is None
    # "y" < "x" is false where "a" < "b" was true: the replay's ids tie-break the other way.
    assert flipped.differs(page("a", "b"), page("y", "x")) is not None


def test_a_timestamp_counts_only_as_the_injected_clock_or_not() -> None:
    from conformance.contract import TaskRecord

    def made_at(seconds: float) -> object:
        record = TaskRecord("t", "alice", "m", TaskStatus.WORKING, None, seconds, seconds, 1000, 500, seconds + 1)
        return observe("store", "create", record, None, None, {5000})

    assert Renaming().differs(made_at(5.0), made_at(5.0)) is None
    assert Renaming().differs(made_at(12.345), made_at(67.89)) is None  # both off the injected clock
    assert Renaming().differs(made_at(5.0), made_at(67.89)) is not None


# ------------------------------------------------------------------ scripts, end to end


def _script(pytester: pytest.Pytester, *args: str) -> str:
    scripts = pytester.path / "repro"
    result, verdict = run_kit(pytester, *args, f"--conformance-repro={scripts}", "--maxfail=1")
    assert verdict is not None and verdict["violated"], result.stdout.str()[-3000:]
    found = reproductions(verdict)
    assert found, result.stdout.str()[-3000:]
    return found[0]


def test_a_script_exits_1_while_the_bug_is_present_and_0_once_fixed(pytester: pytest.Pytester) -> None:
    script = _script(pytester, "--backend=testbed.backends.broken:CasCreatesMissing", "--conformance-clause=BK-9")
    broken = run_reproduction(script)
    assert broken.returncode == 1 and "REPRODUCED" in broken.stdout, broken.stdout
    fixed = run_reproduction(script, "--factory", "reference_backend:InMemoryBackend")
    assert fixed.returncode == 0 and "not reproduced" in fixed.stdout, fixed.stdout
    missing = run_reproduction(script, "--factory", "no_such_module:Backend")
    assert missing.returncode == 2 and "cannot load the target" in missing.stdout, missing.stdout


def test_a_store_script_replays_against_a_fixed_store(pytester: pytest.Pytester) -> None:
    script = _script(pytester, "--store=testbed.stores.broken:ForgedCursorRestarts", "--conformance-clause=TS-17")
    assert run_reproduction(script).returncode == 1
    assert run_reproduction(script, "--factory", "reference_backend:in_memory_task_store").returncode == 0


def test_a_race_script_keeps_the_recorded_order_and_says_how_faithful_it_is(pytester: pytest.Pytester) -> None:
    script = _script(pytester, "--backend=testbed.backends.broken:NonAtomicPut", "--conformance-clause=CC-4")
    broken = run_reproduction(script)
    assert broken.returncode == 1, broken.stdout
    assert "ran concurrently" in broken.stdout and "real-time order" in broken.stdout, broken.stdout
    assert run_reproduction(script, "--factory", "reference_backend:InMemoryBackend").returncode == 0


def test_a_failure_opens_with_its_clause_then_its_calls_then_its_script(pytester: pytest.Pytester) -> None:
    scripts = pytester.path / "repro"
    result, _ = run_kit(pytester, "--backend=testbed.backends.broken:CasCreatesMissing", "--conformance-clause=BK-9",
                        f"--conformance-repro={scripts}", "--maxfail=1")
    text = result.stdout.str()
    header = next(i for i, line in enumerate(result.outlines) if "test_cas_on_missing_key_raises_not_found" in line and "___" in line)
    assert result.outlines[header + 1].startswith("violates BK-9 (MUST): "), text
    assert "put_if_version('ghost'" in result.outlines[header + 3], text
    assert any(line.startswith(f"reproduce: python {scripts}") for line in result.outlines), text
    # The kit's machinery is not in the traceback: the test's line and the target's are.
    assert "conformance/spec.py" not in text and "conformance/harness" not in text, text
