"""Clauses of SPEC.md as data: the verdict a failing check carries, the tests that cover each, and the runs that judge it.

SPEC.md is the single source of truth; it ships inside the package so a failure can quote
the clause it breaks. Tests name their clauses with ``@covers("BK-5")``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, TypeVar

import pytest

_HEADING = re.compile(r"^#{2,6}\s+(?P<id>[A-Z]+-\d+)\s+·\s+(?P<level>MUST|SHOULD|MAY)\s+·\s+(?P<title>.+?)\s*$")
_TESTS = re.compile(r"^Tests?:\s*(?P<tests>.+)$")
_TEST_NAME = re.compile(r"`([^`]+)`")
_KIND = re.compile(r"^Kind:\s*\*\*(?P<kind>[a-z ]+)\*\*")
#: The four kinds of rule (SPEC.md, "Kinds of rule"): what the layer above relies on, what it cannot
#: tell apart, what an implementation declares, and what only the reference does.
KINDS = ("contract", "freedom", "declared choice", "reference only")
_TARGET = re.compile(r"^Target:\s*\*\*(?P<target>[a-z ]+)\*\*")
#: The kinds of target a clause judges (SPEC.md, "Targets"): a backend's own rules, a task store's
#: (checked on a whole store, or on the kit's store over a backend), rules of both, and the
#: reference's, which no run of the kit checks.
REFERENCE_ONLY = "reference only"
TARGETS = ("backend", "store", "both", REFERENCE_ONLY)
#: What a run is given (``--backend`` or ``--store``), and so what a suite test declares it drives.
TARGET_KINDS = ("backend", "store")
#: The marker by which a suite test declares the kind of target it drives (one of ``TARGET_KINDS``).
TARGET_MARKER = "conformance_target"

F = TypeVar("F", bound=Callable[..., Any])
E = TypeVar("E", bound=BaseException)


@dataclass(frozen=True)
class Clause:
    """One numbered rule of the SPEC."""

    id: str
    level: str
    title: str
    tests: tuple[str, ...]
    #: The kind of its main rule, one of ``KINDS`` ("" if the clause names none).
    kind: str = ""
    #: The kind of target it judges, one of ``TARGETS`` ("" if the clause names none).
    target: str = ""

    def headline(self) -> str:
        return f"{self.id} ({self.level}): {self.title}"


class ContractViolation(AssertionError):
    """A check failed; it names the clause broken so the report can say which rule, not just which line."""

    def __init__(self, clause: str, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(f"[{clause}] {message}")
        self.clause = clause
        self.detail = message
        #: Machine-readable facts behind the failure (a race's clients and calls), copied into the JSON report.
        self.evidence = evidence or {}


def violation(clause: str, message: str) -> ContractViolation:
    """Build the exception for a broken clause (raise it at the call site, so tracebacks point there)."""
    return ContractViolation(clause, message)


def parse_clauses(text: str) -> dict[str, Clause]:
    """Read clauses from SPEC.md text: a heading ``### BK-5 · MUST · title``, then ``Kind:``, ``Target:`` and ``Tests:`` lines.

    A ``Target:`` value outside ``TARGETS`` is an error here, not a clause that silently
    applies to nothing.
    """
    clauses: dict[str, Clause] = {}
    current: dict[str, Any] | None = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            if current:
                clauses[current["id"]] = Clause(**current)
            current = {**heading.groupdict(), "tests": ()}
            continue
        kind = _KIND.match(line.strip())
        if kind and current is not None and not current.get("kind"):
            current["kind"] = kind.group("kind")
        target = _TARGET.match(line.strip())
        if target and current is not None and not current.get("target"):
            if target.group("target") not in TARGETS:
                raise ValueError(f"{current['id']}: Target **{target.group('target')}** is not one of {TARGETS}")
            current["target"] = target.group("target")
        tests = _TESTS.match(line.strip())
        if tests and current is not None:
            current["tests"] = current["tests"] + tuple(_TEST_NAME.findall(tests.group("tests")))
    if current:
        clauses[current["id"]] = Clause(**current)
    return clauses


@lru_cache(maxsize=1)
def clauses() -> dict[str, Clause]:
    """The clauses of the SPEC.md shipped with the package (empty if it is missing)."""
    try:
        text = resources.files("conformance").joinpath("SPEC.md").read_text(encoding="utf-8")
    except (FileNotFoundError, OSError):
        return {}
    return parse_clauses(text)


def judged_on(target: str, target_kind: str) -> bool:
    """Whether a run given a ``target_kind`` (``--backend`` or ``--store``) checks what judges ``target``.

    A ``--backend`` run checks the backend's own rules and, through the kit's GenericTaskStore
    over the backend, the store's; a ``--store`` run has no backend to call, so only the
    store's. Reference-only rules are the project's own tests' business, never a run's.
    """
    if target_kind not in TARGET_KINDS:
        raise ValueError(f"a run's target is one of {TARGET_KINDS}, not {target_kind!r}")
    if target == "backend":
        return target_kind == "backend"
    return target in ("store", "both")


def applies_to(clause: Clause, target_kind: str) -> bool:
    """Whether a run given a ``target_kind`` (``"backend"`` or ``"store"``) judges its target on ``clause``."""
    return judged_on(clause.target, target_kind)


def describe(clause_id: str) -> str:
    """The clause's headline, or its bare id if the SPEC does not know it."""
    found = clauses().get(clause_id)
    return found.headline() if found else clause_id


#: Clause prefix of the security gate: tests naming one carry the ``security`` marker (``-m security``).
SECURITY_PREFIX = "SEC-"


def covers(*clause_ids: str) -> Callable[[F], F]:
    """Mark a suite test with the clauses it checks (read by the report and the coverage self-test).

    A test that names a SEC clause is also marked ``security``, so ``pytest -m security`` is the
    security regression gate without a second list to keep in step with SPEC.md.
    """
    clause_mark = pytest.mark.conformance_clause(*clause_ids)
    if not any(c.startswith(SECURITY_PREFIX) for c in clause_ids):
        return clause_mark

    def mark(test: F) -> F:
        marked: F = pytest.mark.security(clause_mark(test))
        return marked

    return mark


#: The attribute on an error a target raised into a test: the ContractViolation it stands for if
#: nothing expected it (a call the test made to set up its state was refused).
UNEXPECTED = "conformance_unexpected"


def violations(exc: BaseException) -> list[tuple[ContractViolation, bool]]:
    """The violations a failure names, each with whether it is a refused setup call, looking inside exception groups
    (Hypothesis reports several bugs as one).

    An error the target raised that no check expected names the clause of the call that
    raised it (``UNEXPECTED``), not the test's: the test never reached its own check.
    """
    if isinstance(exc, ContractViolation):
        return [(exc, False)]
    unexpected = getattr(exc, UNEXPECTED, None)
    if isinstance(unexpected, ContractViolation):
        return [(unexpected, True)]
    if isinstance(exc, BaseExceptionGroup):
        return [found for inner in exc.exceptions for found in violations(inner)]
    return []


def clauses_of_exception(exc: BaseException) -> list[str]:
    """Clauses named by a failure (``violations``)."""
    return [violation.clause for violation, _setup in violations(exc)]


def setup_failures(exc: BaseException) -> list[str]:
    """The "could not set up" lines of a failure: target errors no check expected."""
    return [violation.detail for violation, setup in violations(exc) if setup]


def unique(items: Iterable[str]) -> list[str]:
    """Keep first occurrences, in order."""
    return list(dict.fromkeys(items))


def require(clause: str, ok: bool, message: str) -> None:
    """Fail with the clause named unless ``ok``: the one assertion form the suite uses."""
    if not ok:
        raise ContractViolation(clause, message)


def expect_error(clause: str, error_type: type[E], call: Callable[[], Any], what: str) -> E:
    """Run ``call`` and return the error it raised, which must be an ``error_type``; otherwise violate ``clause``."""
    try:
        result = call()
    except error_type as exc:
        return exc
    except ContractViolation:
        raise
    except Exception as exc:
        raise ContractViolation(clause, f"{what} raised {type(exc).__name__}: {exc}; expected {error_type.__name__}") from exc
    raise ContractViolation(clause, f"{what} returned {result!r}; expected it to raise {error_type.__name__}")
