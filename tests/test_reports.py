"""Reports a CI keeps and people read: Markdown, the clause table, JUnit properties, and a baseline of known failures."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET

import pytest

from conformance.report.baseline import BaselineError, load
from tests.conftest import run_kit, usage_error_line

BROKEN = "--backend=testbed.backends.broken:CasCreatesMissing"


def test_markdown_report_and_clause_table_and_junit_properties(pytester: pytest.Pytester) -> None:
    markdown = pytester.path / "out" / "verdict.md"
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", BROKEN, "--conformance-clause=BK-9",
                                           "--conformance-clause=BK-4", f"--conformance-report={markdown}", f"--junitxml={junit}")
    assert result.ret == 1
    text = markdown.read_text()
    assert text.startswith("# Conformance verdict: FAIL"), text
    assert "| BK-9 | MUST | **VIOLATED** |" in text and "| BK-4 | MUST | met |" in text, text
    assert "put_if_version('ghost'" in text, text  # the failing calls themselves
    result.stdout.fnmatch_lines(["BK-4 * MUST * met *", "BK-9 * MUST * violated *", "not run in this selection: BK-1, *"])
    properties = [(p.get("name"), p.get("value")) for p in ET.parse(junit).iter("property")]
    assert ("clause", "BK-9") in properties and ("violates", "BK-9") in properties, properties


def test_json_evidence_holds_the_failing_calls(pytester: pytest.Pytester) -> None:
    _, verdict = run_kit(pytester, BROKEN, "--conformance-clause=BK-9", "--maxfail=1")
    assert verdict is not None
    failed = [t for t in verdict["tests"].values() if t["outcome"] == "failed"]
    assert any("put_if_version('ghost'" in line for line in failed[0]["evidence"]["failing_calls"]), failed


def test_a_baselined_clause_may_fail_and_a_passing_one_is_stale(pytester: pytest.Pytester) -> None:
    baseline = pytester.path / "baseline.txt"
    baseline.write_text("# known debt\nBK-9: CAS on a missing key creates it; fix tracked in #12\n")
    result, verdict = run_kit(pytester, BROKEN, "--conformance-clause=BK-9", "--conformance-clause=BK-4",
                              f"--conformance-baseline={baseline}")
    assert verdict is not None and result.ret == 0, result.stdout.str()[-3000:]
    assert verdict["clauses"]["BK-9"]["status"] == "known failure" and verdict["verdict"] == "pass"
    assert verdict["clauses"]["BK-9"]["baseline"].startswith("CAS on a missing key")
    result.stdout.fnmatch_lines(["*xfailed*"])

    baseline.write_text("BK-9: still broken\nBK-4: was broken once\n")
    stale, verdict = run_kit(pytester, BROKEN, "--conformance-clause=BK-9", "--conformance-clause=BK-4",
                             f"--conformance-baseline={baseline}")
    assert stale.ret == 1 and verdict is not None and verdict["stale"] == ["BK-4"], stale.stdout.str()[-3000:]
    stale.stdout.fnmatch_lines(["stale baseline entry: BK-4 is listed as failing and now passes: remove it"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("BK-9 reasons without a colon\n", "expected 'CLAUSE: reason'"),
        ("BK-99: no such clause\n", "BK-99 is no clause of SPEC.md"),
        ("BK-9:\n", "BK-9 needs a reason"),
        ("BK-9: one\nBK-9: two\n", "BK-9 is listed twice"),
    ],
)
def test_a_bad_baseline_is_one_line(pytester: pytest.Pytester, content: str, expected: str) -> None:
    baseline = pytester.path / "baseline.txt"
    baseline.write_text(content)
    with pytest.raises(BaselineError, match=expected):
        load(str(baseline))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", BROKEN, f"--conformance-baseline={baseline}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in usage_error_line(result)


def test_a_missing_baseline_is_one_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", BROKEN, "--conformance-baseline=nowhere.txt")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot read it" in usage_error_line(result)


def test_json_report_is_still_json(pytester: pytest.Pytester) -> None:
    report = pytester.path / "verdict.json"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", BROKEN, "--conformance-clause=BK-4", f"--conformance-report={report}")
    assert json.loads(report.read_text())["clauses"]["BK-4"]["status"] == "met"


# ------------------------------------------------------------------ the command line


def _cli(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, "-m", "conformance", *args, timeout=300)


def test_check_command_reports_and_fails_on_a_must(pytester: pytest.Pytester) -> None:
    result = _cli(pytester, "check", "testbed.backends.broken:CasCreatesMissing", "--", "--conformance-clause=BK-9", "-q")
    assert result.ret == 1, result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["BK-9 * MUST * violated *", "conformance: wrote conformance-report.json",
                                 "conformance: wrote conformance-report.md"])
    assert (pytester.path / "conformance-report.md").read_text().startswith("# Conformance verdict: FAIL")
    passing = _cli(pytester, "check", "reference_backend:InMemoryBackend", "--report", "out/v.json", "--", "--conformance-clause=BK-9")
    assert passing.ret == 0, passing.stdout.str()[-3000:]
    assert json.loads((pytester.path / "out" / "v.json").read_text())["verdict"] == "pass"


def test_check_command_passes_a_should_failure_and_refuses_a_bad_target(pytester: pytest.Pytester) -> None:
    from conformance.__main__ import exit_status

    def verdict(level: str, status: str) -> dict[str, object]:
        return {"violated": ["X-1"] if status == "violated" else [], "stale": [], "executed": 1,
                "clauses": {"X-1": {"level": level, "status": status}}, "tests": {"t": {"outcome": "failed"}}}

    assert exit_status(verdict("SHOULD", "violated")) == 0  # reported, not fatal: SPEC.md's levels
    assert exit_status(verdict("MUST", "violated")) == 1
    bad = _cli(pytester, "check", "no_such_module:Backend")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR, bad.stdout.str()[-2000:]
    assert any("cannot import module 'no_such_module'" in line for line in bad.errlines), bad.errlines
