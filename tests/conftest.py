"""Shared helpers for the kit's own tests: running the kit as a user would, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: Quiet, cache-free, deterministic invocations of the kit.
BASE_ARGS = ("-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning")


def run_kit(pytester: pytest.Pytester, *args: str, timeout: float = 300) -> tuple[pytest.RunResult, dict[str, Any] | None]:
    """Run ``pytest <args>`` in a fresh process in pytester's empty folder; return the result and the JSON verdict."""
    report = Path(pytester.path) / "conformance-report.json"
    if report.exists():
        report.unlink()
    result = pytester.runpytest_subprocess(*BASE_ARGS, f"--conformance-report={report}", *args, timeout=timeout)
    verdict = json.loads(report.read_text()) if report.exists() else None
    return result, verdict


def usage_error_line(result: pytest.RunResult) -> str:
    """The single ERROR line pytest prints for a usage error."""
    lines = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(lines) == 1, f"expected one ERROR line, got: {result.errlines}"
    return lines[0]
