"""Shared helpers for the kit's own tests: running the kit as a user would, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Quiet, cache-free, deterministic invocations of the kit.
BASE_ARGS = ("-p", "no:cacheprovider", "-q", "-W", "ignore::DeprecationWarning")


@pytest.fixture(autouse=True)
def _kit_subprocesses_import_the_gallery(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Subprocesses run in an empty temp folder; let them import ``testbed.backends`` like a user's own package."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Whole-kit runs (``slow``) first, in collection order, then the rest.

    Why: xdist hands each worker a queue in collection order, so a five-minute run collected
    late starts late and the other worker idles at the end; started first, the long runs
    overlap the hundreds of short tests. The order is the same on every worker, as xdist requires.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


def assert_passes_whole_kit(pytester: pytest.Pytester, *args: str, loops: list[str], timeout: float = 1500) -> dict[str, Any]:
    """Run the whole kit on a correct target: no clause violated, a zero exit, on exactly ``loops``.

    ``timeout`` bounds the whole run (a slow engine emulator takes minutes); the kit bounds each call itself.
    """
    result, verdict = run_kit(pytester, *args, "--conformance-loop=all" if len(loops) > 1 else f"--conformance-loop={loops[0]}",
                              timeout=timeout)
    assert verdict is not None, result.stdout.str()[-4000:]
    assert verdict["violated"] == [], f"false alarm on a correct target: {verdict['violated']}\n{result.stdout.str()[-4000:]}"
    assert result.ret == 0, result.stdout.str()[-4000:]
    assert verdict["loops"] == loops
    return verdict


def assert_fails_for_clause(pytester: pytest.Pytester, broken: Any, *args: str, clause: str | None = None,
                            shrink: bool = False, first: bool = False, reproduce: bool = True) -> dict[str, Any]:
    """Run the kit's tests for the clause a broken target's bug breaks (``broken.violates``): they must catch it.

    Unshrunk by default: the catch and its clause are what is checked, and shrinking a
    stateful machine costs several times the search that found the bug. With ``first``, the
    run stops at its first failure, which must already name the clause: the suite runs the
    simplest rule first, so that failure is the one an author reads first. Not for a race on
    a real server, where timing decides which clause's test meets it first (``races``).
    With ``reproduce``, the reproduction script of the first failure, run on its own, must exit 1.
    """
    clause = clause or broken.violates
    stop = ("--maxfail=1",) if first else ()
    scripts = Path(pytester.path) / "repro"
    result, verdict = run_kit(pytester, *args, f"--conformance-clause={clause}", "--conformance-timeout=2",
                              f"--conformance-shrink={'yes' if shrink else 'no'}", f"--conformance-repro={scripts}", *stop)
    name = getattr(broken, "__name__", repr(broken))  # a gallery class, or a variant across the wire
    assert result.ret != 0, f"{name} ({broken.__doc__}) passed the kit's {clause} tests"
    assert verdict is not None, result.stdout.str()[-4000:]
    # The clause, or one whose text states the same rule (``also``: a SEC clause is a BK or TS rule under attack).
    same_rule = {clause, *(getattr(broken, "also", ()) if clause == broken.violates else ())}
    assert same_rule & set(verdict["violated"]), (
        f"{name} should fail {clause}; the kit reported {verdict['violated']}\n" + result.stdout.str()[-3000:]
    )
    if reproduce:
        assert_reproduces(verdict, name, unsteered=bool(getattr(broken, "unsteered", False)))
    return verdict


def reproductions(verdict: dict[str, Any]) -> list[str]:
    """The reproduction scripts a run wrote, first failure first."""
    return [t["evidence"]["reproduction"] for t in verdict["tests"].values()
            if t["outcome"] == "failed" and (t.get("evidence") or {}).get("reproduction")]


def run_reproduction(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a reproduction script as its user would: on its own, from another folder."""
    return subprocess.run([sys.executable, script, *args], cwd=Path(script).parent, capture_output=True, text=True, timeout=timeout)


def assert_reproduces(verdict: dict[str, Any], name: str, unsteered: bool = False) -> None:
    """The first failure's reproduction script, run on its own, exits 1: the target still breaks the rule.

    ``unsteered``: a race whose interleaving the kit cannot steer (threads, another process) is
    luck to meet again; there, one of the run's scripts must reproduce it (the load test's, by load).
    """
    scripts = reproductions(verdict)
    assert scripts, f"{name}: the failing run wrote no reproduction script"
    outputs = []
    for script in scripts if unsteered else scripts[:1]:
        replay = run_reproduction(script)
        if replay.returncode == 1 and "REPRODUCED" in replay.stdout:
            return
        outputs.append(f"{script} exited {replay.returncode}: {replay.stdout[-3000:]}{replay.stderr[-2000:]}")
    raise AssertionError(f"{name}: no reproduction script reproduced the failure\n" + "\n".join(outputs))

