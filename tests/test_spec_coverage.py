"""SPEC.md and the shipped suite agree in both directions: every clause names tests that exist
and carry it, every suite test names clauses that exist and list it, and the kind of target a
test declares it drives agrees with the targets of its clauses."""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import conformance.suite
from conformance import spec

ROOT = Path(__file__).resolve().parent.parent


def _suite_functions() -> Iterator[tuple[str, ModuleType, Any]]:
    """Every test function in the suite as ``module.py::name``, with its module and the function."""
    for info in pkgutil.iter_modules(conformance.suite.__path__):
        if not info.name.startswith("test_"):
            continue
        module = importlib.import_module(f"conformance.suite.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("test_") and callable(value):
                yield f"{info.name}.py::{name}", module, value


def _suite_tests() -> Iterator[tuple[str, tuple[str, ...]]]:
    """Every suite test with the clauses its marker names."""
    for test, _module, function in _suite_functions():
        marks = [m for m in getattr(function, "pytestmark", []) if m.name == "conformance_clause"]
        yield test, tuple(c for m in marks for c in m.args)


def _declared_kinds() -> Iterator[tuple[str, tuple[Any, ...]]]:
    """Every suite test with the arguments of the ``conformance_target`` mark closest to it (the
    function's own, else its module's ``pytestmark``), or ``()`` if it declares none."""
    for test, module, function in _suite_functions():
        for marks in (getattr(function, "pytestmark", []), getattr(module, "pytestmark", [])):
            found = [m for m in (marks if isinstance(marks, list) else [marks]) if m.name == spec.TARGET_MARKER]
            if found:
                yield test, tuple(found[0].args)
                break
        else:
            yield test, ()


SPEC_TEXT = (ROOT / "SPEC.md").read_text(encoding="utf-8")
CLAUSES = spec.parse_clauses(SPEC_TEXT)


def clause_text(clause_id: str) -> str:
    start = SPEC_TEXT.index(f"### {clause_id} ")
    following = SPEC_TEXT.find("\n### ", start + 1)
    return SPEC_TEXT[start : following if following != -1 else None]
TESTS = dict(_suite_tests())
DECLARED = dict(_declared_kinds())


def test_spec_shipped_in_package_is_the_root_spec() -> None:
    assert spec.clauses() == CLAUSES


def test_clause_ids_are_numbered_without_gaps() -> None:
    by_prefix: dict[str, list[int]] = {}
    for clause_id in CLAUSES:
        prefix, _, number = clause_id.partition("-")
        by_prefix.setdefault(prefix, []).append(int(number))
    for prefix, numbers in by_prefix.items():
        assert numbers == list(range(1, len(numbers) + 1)), f"{prefix} clauses are not numbered 1..n in order: {numbers}"


def _project_test_exists(reference: str) -> bool:
    """Whether ``tests/file.py::name`` names a test function defined in that file."""
    path, _, name = reference.partition("::")
    source = ROOT / path
    return source.is_file() and re.search(rf"^(async )?def {re.escape(name)}\(", source.read_text(encoding="utf-8"), re.MULTILINE) is not None


@pytest.mark.parametrize("clause_id", sorted(CLAUSES))
def test_every_clause_names_existing_tests_that_carry_it(clause_id: str) -> None:
    clause = CLAUSES[clause_id]
    assert clause.tests, f"{clause_id} names no test"
    if all(t.startswith("tests/") for t in clause.tests):
        assert clause.target == spec.REFERENCE_ONLY, f"{clause_id} is checked by no shipped test, yet its Target is not reference only"
    for test in clause.tests:
        if test.startswith("tests/"):
            assert _project_test_exists(test), f"{clause_id} names {test}, which does not exist"
            continue
        assert test in TESTS, f"{clause_id} names {test}, which the suite does not have"
        assert clause_id in TESTS[test], f"{clause_id} names {test}, but that test's @covers is {TESTS[test]}"


@pytest.mark.parametrize("test", sorted(TESTS))
def test_every_suite_test_names_clauses_that_list_it(test: str) -> None:
    named = TESTS[test]
    assert named, f"{test} has no @covers(...) clause"
    for clause_id in named:
        assert clause_id in CLAUSES, f"{test} covers {clause_id}, which SPEC.md does not define"
        assert test in CLAUSES[clause_id].tests, f"{test} covers {clause_id}, but SPEC.md's {clause_id} does not list it"


@pytest.mark.parametrize("clause_id", sorted(CLAUSES))
def test_every_clause_says_what_kind_of_rule_it_is_and_why(clause_id: str) -> None:
    """Judge the contract, not the reference: each clause names its kind and what relies on it."""
    clause = CLAUSES[clause_id]
    assert clause.kind in spec.KINDS, f"{clause_id} names no kind of rule (a 'Kind: **...**' line with one of {spec.KINDS})"
    line = next(line for line in clause_text(clause_id).splitlines() if line.startswith("Kind:"))
    assert len(line.split(":", 2)[-1].strip()) > 20, f"{clause_id}'s Kind line gives no reason"
    if clause.kind == "reference only":
        assert all(t.startswith("tests/") for t in clause.tests), f"{clause_id} is reference only, yet a shipped test checks it"


@pytest.mark.parametrize("clause_id", sorted(CLAUSES))
def test_every_clause_names_the_target_it_judges(clause_id: str) -> None:
    """What applies to a run is the SPEC's data: each clause's Target, consistent with its Kind and its tests."""
    clause = CLAUSES[clause_id]
    assert clause.target in spec.TARGETS, f"{clause_id} names no target (a 'Target: **...**' line with one of {spec.TARGETS})"
    assert (clause.target == spec.REFERENCE_ONLY) == (clause.kind == "reference only"), (
        f"{clause_id}: Target **{clause.target}** and Kind **{clause.kind}** disagree on whether it is reference only"
    )
    kinds = {DECLARED[test][0] for test in clause.tests if DECLARED.get(test)}
    if clause.target == "both":
        assert kinds == set(spec.TARGET_KINDS), f"{clause_id} judges both, yet only {sorted(kinds)} tests check it"
    elif clause.target != spec.REFERENCE_ONLY:
        assert kinds == {clause.target}, f"{clause_id} judges a {clause.target}, yet {sorted(kinds)} tests check it"


@pytest.mark.parametrize("test", sorted(TESTS))
def test_every_suite_test_declares_the_kind_of_target_it_drives(test: str) -> None:
    """The plugin deselects by this declaration, so a test without one would run against every target."""
    declared = DECLARED[test]
    assert len(declared) == 1 and declared[0] in spec.TARGET_KINDS, (
        f"{test} declares {declared!r}; give its module pytestmark = pytest.mark.{spec.TARGET_MARKER}(one of {spec.TARGET_KINDS})"
    )
    for clause_id in TESTS[test]:
        target = CLAUSES[clause_id].target if clause_id in CLAUSES else None
        assert target in (declared[0], "both"), f"{test} drives a {declared[0]}, yet covers {clause_id}, which judges a {target}"
