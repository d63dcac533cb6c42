"""The verdict per clause: which rules a run showed broken, met, waived or never checked.

A failing test names its clause through the ContractViolation it raised, or through its
``covers`` marker. The verdict reaches the terminal, each failure's report, and optionally
a JSON file a CI can keep.
"""

from __future__ import annotations

import io
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _pytest._io import TerminalWriter

from conformance import spec
from conformance.harness.counters import RunCounters
from conformance.harness.target import Target
from conformance.report import markdown, repro, terminal
from conformance.report.baseline import Baseline
from conformance.report.repro import TargetSource

CLAUSES_PROPERTY = "conformance_clauses"
COVERS_PROPERTY = "conformance_covers"
EVIDENCE_PROPERTY = "conformance_evidence"
CALLS_PROPERTY = "conformance_calls"
FAILING_CALLS_PROPERTY = "conformance_failing_calls"
#: Plain string properties, one per clause, for JUnit XML: the clauses a test covers, and those its failure violates.
JUNIT_CLAUSE, JUNIT_VIOLATES, JUNIT_REPRODUCTION = "clause", "violates", "reproduction"
#: A test's outcome, and a clause's status, when every failure it shows is listed in the baseline.
KNOWN = "known failure"
#: A clause's status when the baseline lists it and it passed.
STALE = "stale baseline"
#: Every status a clause can have, in the order the verdict counts them.
STATUSES = ("met", "violated", KNOWN, STALE, "skipped", "not run", "reference only")
#: The package's own code: its frames are hidden from a failure's traceback, except the suite's tests.
_KIT = Path(__file__).resolve().parent.parent


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

    def __init__(
        self, target: Target, loops: list[str], json_path: str | None, counters: RunCounters, run: RunSettings | None = None,
        source: TargetSource | None = None, repro_dir: str | None = None, baseline: Baseline | None = None,
    ) -> None:
        self.target = target
        self.loops = loops
        self.json_path = json_path
        self.counters = counters
        self.run = run or RunSettings()
        #: Where a reproduction script finds the target; and the folder scripts go to (``--conformance-repro``), if any.
        self.source = source
        self.repro_dir = Path(repro_dir) if repro_dir else None
        #: Clauses known to fail (``--conformance-baseline``): their failures do not fail the run; their passes do.
        self.baseline = baseline
        self.tests: dict[str, dict[str, Any]] = {}

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self.counters.log.reset()  # each test's failure replays its own calls

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        """Attach the clauses to the report (user_properties survive xdist) and quote them in the failure."""
        if call.excinfo is not None:
            hide_kit_frames()  # the suite's imports came after configure: mark them before the traceback is drawn
        report = yield
        calls = self.counters.calls.take()  # the calls this phase made into the target (setup, call or teardown)
        if calls:
            report.user_properties.append((CALLS_PROPERTY, calls))
        marker = item.get_closest_marker("conformance_clause")
        if marker and call.when == "call":
            report.user_properties.append((COVERS_PROPERTY, list(marker.args)))
            # One plain property per clause, as JUnit XML shows them (it reads the item's, on the teardown report).
            item.user_properties.extend((JUNIT_CLAUSE, clause) for clause in marker.args)
        if report.failed and marker is not None:
            broken = clauses_for_failure(item, call.excinfo)
            report.user_properties.append((CLAUSES_PROPERTY, broken))
            item.user_properties.extend((JUNIT_VIOLATES, clause) for clause in broken)
            evidence = getattr(call.excinfo.value, "evidence", None) if call.excinfo is not None else None
            if evidence:
                report.user_properties.append((EVIDENCE_PROPERTY, evidence))
            lines = [f"violates {spec.describe(c)}" for c in broken]
            if call.excinfo is not None:
                lines += spec.setup_failures(call.excinfo.value)
            if call.when == "call":
                lines += self._calls_and_reproduction(item, call, broken, report)
            lines.append(self.run.replay())
            report.longrepr = VerdictFirst(lines, report.longrepr)
            if self.baseline is not None and call.when == "call" and self.baseline.covers(broken):
                # Known debt: reported as an expected failure, so it neither fails the run nor hides.
                report.outcome = "skipped"
                report.wasxfail = f"known failure (--conformance-baseline): {self.baseline.because(broken)}"
        return report

    def _calls_and_reproduction(self, item: pytest.Item, call: pytest.CallInfo[None], broken: list[str], report: pytest.TestReport) -> list[str]:
        """The failing example's calls, and where its reproduction script is (written here if asked)."""
        log = self.counters.log
        shown = repro.shown_calls(log)
        if not shown:
            return []
        lines = ["the failing example's calls (#n: the instance):", *shown]
        clause = broken[0] if broken else "unknown"
        failure = call.excinfo.value if call.excinfo is not None else None
        message = _first_message(failure)
        steering = None
        evidence = getattr(failure, "evidence", None)
        if isinstance(evidence, dict):
            steering = evidence.get("steering")
        path = None
        if self.repro_dir is not None and self.source is not None and repro.replayed_calls(log, self.source.kind):
            callspec = getattr(item, "callspec", None)
            loop = str(callspec.params.get("harness", self.loops[0]) if callspec is not None else self.loops[0])
            data = repro.case(log, self.source, test=item.nodeid, loop=loop, headline=spec.describe(clause),
                              message=message, steering=steering)
            path = repro.write(self.repro_dir, clause, item.nodeid, loop, repro.script(data, shown))
            lines.append(f"reproduce: python {path}")
            item.user_properties.append((JUNIT_REPRODUCTION, str(path)))
        elif self.repro_dir is None:
            lines.append("a standalone script replaying these calls: rerun with --conformance-repro=DIR")
        report.user_properties.append((FAILING_CALLS_PROPERTY, {"calls": shown, "reproduction": str(path) if path else None}))
        return lines

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props: dict[str, Any] = dict(report.user_properties)
        if COVERS_PROPERTY not in props and CLAUSES_PROPERTY not in props and CALLS_PROPERTY not in props:
            return
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed", "covers": [], "violated": [], "calls": {}})
        for contract, n in props.get(CALLS_PROPERTY, {}).items():
            entry["calls"][contract] = entry["calls"].get(contract, 0) + n
        if COVERS_PROPERTY in props:
            entry["covers"] = props[COVERS_PROPERTY]
        if report.failed or (hasattr(report, "wasxfail") and CLAUSES_PROPERTY in props):
            entry["outcome"] = "failed" if report.failed else KNOWN
            entry["violated"] = spec.unique(entry["violated"] + props.get(CLAUSES_PROPERTY, []))
            if EVIDENCE_PROPERTY in props:
                entry["evidence"] = props[EVIDENCE_PROPERTY]
            if FAILING_CALLS_PROPERTY in props:
                failing = props[FAILING_CALLS_PROPERTY]
                entry.setdefault("evidence", {}).update(failing_calls=failing["calls"], reproduction=failing["reproduction"])
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
        return sum(1 for t in self.tests.values() if t["outcome"] in ("passed", "failed", KNOWN))

    def verdict(self) -> dict[str, Any]:
        by_clause: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"passed": [], "failed": [], "skipped": [], KNOWN: []})
        for nodeid, test in self.tests.items():
            for clause in test["violated"]:
                by_clause[clause]["failed" if test["outcome"] == "failed" else KNOWN].append(nodeid)
            if test["outcome"] in ("failed", KNOWN):
                continue  # a failed test proves only what its failure names; its other clauses stay unshown
            for clause in test["covers"]:
                by_clause[clause][test["outcome"]].append(nodeid)
        known = {c: v for c, v in spec.clauses().items() if self.applies(c)}
        clauses = {}
        for clause_id in sorted(set(known) | set(by_clause), key=_clause_order):
            tests = by_clause.get(clause_id, {"passed": [], "failed": [], "skipped": [], KNOWN: []})
            found = known.get(clause_id)
            status = ("violated" if tests["failed"] else KNOWN if tests[KNOWN] else "met" if tests["passed"]
                      else "skipped" if tests["skipped"] else "not run")
            if status == "not run" and found and found.target == spec.REFERENCE_ONLY:
                status = "reference only"  # the kit cannot check it on a target; the project checks its reference
            if status == "met" and self.baseline is not None and clause_id in self.baseline.reasons:
                status = STALE  # listed as failing, and it passes: the entry must go, so the fix stays fixed
            clauses[clause_id] = {
                "level": found.level if found else None,
                "title": found.title if found else None,
                "status": status,
                "failed_tests": tests["failed"] + tests[KNOWN],
            }
            if self.baseline is not None and clause_id in self.baseline.reasons:
                clauses[clause_id]["baseline"] = self.baseline.reasons[clause_id]
        violated = [c for c, v in clauses.items() if v["status"] == "violated"]
        stale = [c for c, v in clauses.items() if v["status"] == STALE]
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
            "replay": self.run.replay().removeprefix("replay: "),
            "executed": self.executed(),
            "counts": {status: n for status in STATUSES if (n := sum(c["status"] == status for c in clauses.values()))},
            "verdict": "fail" if violated or stale or not self.executed() else "pass",
            "violated": violated,
            "stale": stale,
            "clauses": clauses,
            "tests": self.tests,
        }

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        result = self.verdict()
        if (not self.executed() or result["stale"]) and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
            # A run that checked nothing is not a pass; nor is one whose baseline lists a clause that now passes.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        if self.json_path:
            markdown.write(Path(self.json_path), result)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        result = self.verdict()
        verdict = result["verdict"].upper()
        terminalreporter.section(f"conformance verdict: {verdict}", sep="=", bold=True, red=verdict == "FAIL", green=verdict == "PASS")
        terminalreporter.line(f"{self.target.kind} {self.target.spec} on {', '.join(self.loops)}")
        terminalreporter.line(self.run.header())
        if not self.executed():
            terminalreporter.line("no conformance test ran: a run that checks nothing is not a pass", red=True)
        terminal.summary(result, terminalreporter.line, width=getattr(getattr(terminalreporter, "_tw", None), "fullwidth", 100))


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _clause_order(clause_id: str) -> tuple[str, int]:
    prefix, _, number = clause_id.partition("-")
    return (prefix, int(number) if number.isdigit() else 0)


def hide_kit_frames() -> None:
    """Hide the kit's own frames from failures' tracebacks: they say nothing an author can act on.

    pytest hides a frame whose globals hold ``__tracebackhide__``; every loaded module of the
    kit gets it, except the suite's tests, so a failure shows the test's lines and the target's.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("conformance.") or name.startswith("conformance.suite"):
            continue
        where = getattr(module, "__file__", None)
        if where and _KIT in Path(where).resolve().parents:
            module.__tracebackhide__ = True  # type: ignore[attr-defined]


def _first_message(failure: BaseException | None) -> str:
    """The first violation's message in a failure (Hypothesis may report several as a group)."""
    if failure is None:
        return ""
    named = spec.violations(failure)
    return str(named[0][0]) if named else f"{type(failure).__name__}: {failure}"


class VerdictFirst:
    """A failure's report that opens with its verdict (clause, calls, reproduction), then pytest's own.

    It keeps ``reprcrash`` for the short summary; under xdist it travels as its text.
    """

    def __init__(self, lines: list[str], inner: Any) -> None:
        self.lines = lines
        self.inner = inner
        self.reprcrash = getattr(inner, "reprcrash", None)

    def toterminal(self, tw: Any) -> None:
        for number, line in enumerate(self.lines):
            tw.line(line, red=number == 0, bold=number == 0)
        tw.line("")
        if hasattr(self.inner, "toterminal"):
            self.inner.toterminal(tw)
        else:
            tw.line(str(self.inner))

    def __str__(self) -> str:
        buffer = io.StringIO()
        writer = TerminalWriter(file=buffer)
        writer.hasmarkup = False
        self.toterminal(writer)
        return buffer.getvalue()
