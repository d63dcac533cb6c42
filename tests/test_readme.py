"""The README's quick start, run as written: its minimal backend passes, and a planted bug is reported and reproduced.

A new user has only the README; if its code or its commands drift from the kit, this fails.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_reproduction

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _minimal_backend() -> str:
    found = re.search(r"```python\n(# minimal_backend\.py\n.*?)```", README, re.S)
    assert found, "README.md lost its minimal backend (a python block starting '# minimal_backend.py')"
    return found.group(1)


def _quick_start_commands() -> list[str]:
    section = README[README.index("## From nothing to a report"):README.index("## What the kit checks")]
    return [line.split("#")[0].strip() for line in re.findall(r"^python -m conformance check .*$", section, re.M)]


def _check(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.run(sys.executable, "-m", "conformance", "check", *args, timeout=600)


@pytest.mark.slow
def test_the_quick_start_runs_as_written(pytester: pytest.Pytester) -> None:
    (pytester.path / "minimal_backend.py").write_text(_minimal_backend())
    commands = _quick_start_commands()
    assert commands and all(c.startswith("python -m conformance check minimal_backend:DictBackend") for c in commands), commands
    for command in commands:
        result = _check(pytester, *command.split()[4:])
        assert result.ret == 0, f"{command}\n" + result.stdout.str()[-4000:]
        result.stdout.fnmatch_lines(["clauses: * met*", "conformance: wrote conformance-report.md"])
        report = Path(pytester.path / "conformance-report.md").read_text()
        assert report.startswith("# Conformance verdict: PASS"), report[:500]


def test_a_planted_bug_is_named_and_its_script_reproduces_it(pytester: pytest.Pytester) -> None:
    code = _minimal_backend()
    assert "old.version + 1 if old else 1" in code
    (pytester.path / "minimal_backend.py").write_text(code.replace("old.version + 1 if old else 1", "old.version if old else 1"))
    result = _check(pytester, "minimal_backend:DictBackend", "--profile", "smoke", "--repro", "repro", "--", "-x")
    assert result.ret == 1, result.stdout.str()[-4000:]
    result.stdout.fnmatch_lines(["violates BK-6 (MUST): *", "reproduce: python *"])
    scripts = sorted((pytester.path / "repro").glob("*.py"))
    assert scripts, result.stdout.str()[-3000:]
    assert run_reproduction(str(scripts[0])).returncode == 1
