"""The verdict per clause: which rules a run showed broken, met, waived or never checked.

A failing test names its clause through the ContractViolation it raised, or through its
``covers`` marker. The verdict reaches the terminal, each failure's report, and optionally
a JSON file a CI can keep.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance import spec
from conformance.harness.counters import RunCounters
from conformance.harness.target import Target

CLAUSES_PROPERTY = "conformance_clauses"
COVERS_PROPERTY = "conformance_covers"
EVIDENCE_PROPERTY = "conformance_evidence"
CALLS_PROPERTY = "conformance_calls"


def clauses_for_failure(item: pytest.Item, excinfo: pytest.ExceptionInfo[BaseException] | None) -> list[str]:
    """The clauses a failure breaks: named by the exception when it knows, else by the test's marker."""
    named = spec.clauses_of_exception(excinfo.value) if excinfo is not None else []
    if named:
        return spec.unique(named)
    marker = item.get_closest_marker("conformance_clause")
    return list(marker.args) if marker else []


@dataclass(frozen=True)
class RunSettings:
    """How a run draws its examples: its profile, its seed (None: derandomized) and its example database, if shared."""

    profile: str = "ci"
    seed: int | None = None
    database: str | None = None

    def replay(self) -> str:
        """What replays a failure of this run: the seed line every failure prints."""
        if self.seed is None:
            return f"replay: derandomized ({self.profile} profile, no seed): the same command draws the same examples"
        return f"replay: --conformance-seed={self.seed} --conformance-profile={self.profile}"

    def header(self) -> str:
        """The run's one line in the terminal summary."""
        if self.seed is None:
            line = f"profile {self.profile}, derandomized: the same command draws the same examples"
        else:
            line = f"profile {self.profile}, seed {self.seed}: --conformance-seed={self.seed} --conformance-profile={self.profile} replays it"
        return line + (f"; example database {self.database}, saved failures replayed first" if self.database else "")


class VerdictCollector:
    """Registered as a plugin when a target is named; gathers every suite report into the verdict."""

    def __init__(self, target: Target, loops: list[str], json_path: str | None, counters: RunCounters,
                 run: RunSettings | None = None) -> None:
        self.target = target
        self.loops = loops
        self.json_path = json_path
        self.counters = counters
        self.run = run or RunSettings()
        self.tests: dict[str, dict[str, Any]] = {}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """Attach the clauses to the report (user_properties survive xdist) and quote them in the failure."""
        report = yield
        calls = self.counters.calls.take()  # the calls this phase made into the target (setup, call or teardown)
        if calls:
            report.user_properties.append((CALLS_PROPERTY, calls))
        marker = item.get_closest_marker("conformance_clause")
        if marker and call.when == "call":
            report.user_properties.append((COVERS_PROPERTY, list(marker.args)))
        if report.failed and marker is not None:
            broken = clauses_for_failure(item, call.excinfo)
            report.user_properties.append((CLAUSES_PROPERTY, broken))
            evidence = getattr(call.excinfo.value, "evidence", None) if call.excinfo is not None else None
            if evidence:
                report.user_properties.append((EVIDENCE_PROPERTY, evidence))
            lines = [f"violates {spec.describe(c)}" for c in broken]
            if call.excinfo is not None:
                lines += spec.setup_failures(call.excinfo.value)
            lines.append(self.run.replay())
            report.sections.append(("conformance verdict", "\n".join(lines)))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        if COVERS_PROPERTY not in props and CLAUSES_PROPERTY not in props and CALLS_PROPERTY not in props:
            return
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed", "covers": [], "violated": [], "calls": {}})
        for contract, n in props.get(CALLS_PROPERTY, {}).items():
            entry["calls"][contract] = entry["calls"].get(contract, 0) + n
        if COVERS_PROPERTY in props:
            entry["covers"] = props[COVERS_PROPERTY]
        if report.failed:
            entry["outcome"] = "failed"
            entry["violated"] = spec.unique(entry["violated"] + props.get(CLAUSES_PROPERTY, []))
            if EVIDENCE_PROPERTY in props:
                entry["evidence"] = props[EVIDENCE_PROPERTY]
        elif report.skipped and report.when in ("setup", "call"):
            entry["outcome"] = "skipped"
            entry["reason"] = _skip_reason(report)

    def applies(self, clause_id: str) -> bool:
        """Whether the verdict lists a clause: those the target is judged on (its SPEC ``Target:``).

        A whole task store is not a backend, so a store's verdict leaves the backend's clauses out.
        A backend's verdict also lists the reference-only clauses, as "reference only": its run
        goes through the reference store they describe. A clause the SPEC does not know (named
        by a failure) is always listed.
        """
        clause = spec.clauses().get(clause_id)
        if clause is None:
            return True
        return spec.applies_to(clause, self.target.kind) or (clause.target == spec.REFERENCE_ONLY and self.target.kind == "backend")

    def executed(self) -> int:
        return sum(1 for t in self.tests.values() if t["outcome"] in ("passed", "failed"))

    def verdict(self) -> dict[str, Any]:
        by_clause: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"passed": [], "failed": [], "skipped": []})
        for nodeid, test in self.tests.items():
            for clause in test["violated"]:
                by_clause[clause]["failed"].append(nodeid)
            if test["outcome"] == "failed":
                continue  # a failed test proves only what its failure names; its other clauses stay unshown
            for clause in test["covers"]:
                by_clause[clause][test["outcome"]].append(nodeid)
        known = {c: v for c, v in spec.clauses().items() if self.applies(c)}
        clauses = {}
        for clause_id in sorted(set(known) | set(by_clause), key=_clause_order):
            tests = by_clause.get(clause_id, {"passed": [], "failed": [], "skipped": []})
            found = known.get(clause_id)
            status = "violated" if tests["failed"] else "met" if tests["passed"] else "skipped" if tests["skipped"] else "not run"
            if status == "not run" and found and found.target == spec.REFERENCE_ONLY:
                status = "reference only"  # the kit cannot check it on a target; the project checks its reference
            clauses[clause_id] = {
                "level": found.level if found else None,
                "title": found.title if found else None,
                "status": status,
                "failed_tests": tests["failed"],
            }
        violated = [c for c, v in clauses.items() if v["status"] == "violated"]
        calls: dict[str, int] = defaultdict(int)
        for test in self.tests.values():
            for contract, n in test.get("calls", {}).items():
                calls[contract] += n
        return {
            "calls": dict(sorted(calls.items())),
            "target": self.target.spec,
            "kind": self.target.kind,
            "loops": self.loops,
            "profile": self.run.profile,
            "seed": self.run.seed,
            "verdict": "fail" if violated or not self.executed() else "pass",
            "violated": violated,
            "clauses": clauses,
            "tests": self.tests,
        }

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if not self.executed() and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            # A run that checked nothing is not a pass.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.json_path:
            Path(self.json_path).write_text(json.dumps(self.verdict(), indent=2, sort_keys=True), encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.verdict()
        counts: dict[str, int] = defaultdict(int)
        for clause in result["clauses"].values():
            counts[clause["status"]] += 1
        verdict = result["verdict"].upper()
        terminalreporter.section(f"conformance verdict: {verdict}", sep="=", bold=True, red=verdict == "FAIL", green=verdict == "PASS")
        terminalreporter.line(f"{self.target.kind} {self.target.spec} on {', '.join(self.loops)}")
        terminalreporter.line(self.run.header())
        if not self.executed():
            terminalreporter.line("no conformance test ran: a run that checks nothing is not a pass", red=True)
        for clause_id in result["violated"]:
            clause = result["clauses"][clause_id]
            terminalreporter.line(f"violates {spec.describe(clause_id)}", red=True)
            for nodeid in clause["failed_tests"][:3]:
                terminalreporter.line(f"    {nodeid}")
        if result["calls"]:
            terminalreporter.line("calls made: " + ", ".join(f"{n:,} {c}" for c, n in result["calls"].items()))
        terminalreporter.line(
            "clauses: " + ", ".join(f"{counts[s]} {s}" for s in ("met", "violated", "skipped", "not run", "reference only") if counts[s])
        )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _clause_order(clause_id: str) -> tuple[str, int]:
    prefix, _, number = clause_id.partition("-")
    return (prefix, int(number) if number.isdigit() else 0)
