"""Run the race machines against correct targets many times in a row, and count every failure.

Why: the kit must never fail a correct backend. The race machines (``-k races``:
``conformance/suite/test_backend_races.py`` and ``test_store_races.py``) are the tests most
likely to raise a false alarm, since threaded targets and the "released together" test
depend on real interleavings that differ from run to run even under the derandomized
``ci`` profile. The issue's bar is 20 consecutive passes per correct target, on asyncio
and trio.

Usage: python benchmarks/race_repeats.py [--runs N] [--target SPEC ...] [--failure-dir DIR]

A target is ``backend=MODULE:NAME``, ``store=MODULE:NAME`` or a bare ``MODULE:NAME`` (a store
when the name ends in ``_store``, as in ``kit_runtime.py``); a leading ``--`` is allowed, so
``--target=--store=reference_backend:in_memory_task_store`` works too. Each run is a fresh
``python -m pytest ... --conformance-loop=all -k races --conformance-report=...`` process
started in the repository root with the root on PYTHONPATH (so ``testbed.backends.correct``
imports), exactly as a user runs the kit. A run fails when pytest exits non-zero, the
verdict is not a pass, or any test in the report failed. Targets run one after another.
Prints a Markdown table for benchmarks/RESULTS.md; progress and failure excerpts go to
stderr, and each failing run's whole output is kept in ``--failure-dir``. Exits 1 when any
run failed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, run_kit
from testbed.backends.correct import CORRECT_TARGETS

DEFAULT_TARGETS = [f"{flag.removeprefix('--')}={spec}" for flag, spec in CORRECT_TARGETS]
#: Lines of a failing run's output worth quoting on stderr.
EXCERPT_MARKERS = ("ContractViolation", "violates ", "FAILED ", "Falsifying", "Error")


@dataclass
class Target:
    kind: str  # "backend" or "store"
    spec: str

    @property
    def flag(self) -> str:
        return f"--{self.kind}={self.spec}"


@dataclass
class RunResult:
    elapsed: float
    exit_code: int
    verdict: str
    violated: list[str]
    tests: int
    outcomes: dict[str, int]
    output: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.verdict == "pass" and not self.outcomes.get("failed")


@dataclass
class TargetSummary:
    target: Target
    results: list[RunResult] = field(default_factory=list)

    @property
    def failures(self) -> list[tuple[int, RunResult]]:
        return [(i, r) for i, r in enumerate(self.results, 1) if not r.passed]


def parse_target(text: str) -> Target:
    text = text.removeprefix("--")
    for kind in ("backend", "store"):
        if text.startswith(f"{kind}="):
            return Target(kind, text.split("=", 1)[1])
    return Target("store" if text.endswith("_store") else "backend", text)


def run_once(target: Target) -> RunResult:
    run = run_kit("-W", "ignore::DeprecationWarning", target.flag, "--conformance-loop=all", "-k", "races", cwd=ROOT, keep=None)
    data: dict[str, Any] = run.verdict or {}
    outcomes: dict[str, int] = {}
    for test in data.get("tests", {}).values():
        outcomes[test["outcome"]] = outcomes.get(test["outcome"], 0) + 1
    return RunResult(
        elapsed=run.seconds,
        exit_code=-1 if run.exit_code is None else run.exit_code,
        verdict=data.get("verdict", "no report"),
        violated=list(data.get("violated", [])),
        tests=len(data.get("tests", {})),
        outcomes=outcomes,
        output=run.output,
    )


def excerpt(output: str, limit: int = 40) -> str:
    lines = [line for line in output.splitlines() if any(marker in line for marker in EXCERPT_MARKERS)]
    return "\n".join(lines[:limit]) or "\n".join(output.splitlines()[-limit:])


def describe_failure(run: int, result: RunResult) -> str:
    clauses = ", ".join(result.violated) or "none named"
    return f"run {run}: exit {result.exit_code}, verdict {result.verdict}, violated {clauses}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", dest="targets", metavar="SPEC",
                        help="a target to run (repeatable); default: every correct target")
    parser.add_argument("--runs", type=int, default=20, help="consecutive runs per target (default 20)")
    parser.add_argument("--failure-dir", type=Path, default=None,
                        help="where to keep the whole output of failing runs (default: a new temporary directory)")
    args = parser.parse_args()
    targets = [parse_target(t) for t in (args.targets or DEFAULT_TARGETS)]
    summaries: list[TargetSummary] = []
    failure_dir: Path | None = args.failure_dir
    for target in targets:
        summary = TargetSummary(target)
        summaries.append(summary)
        for run in range(1, args.runs + 1):
            result = run_once(target)
            summary.results.append(result)
            status = "pass" if result.passed else "FAIL"
            print(f"{target.flag} run {run}/{args.runs}: {status} ({result.tests} tests, {result.elapsed:.1f} s)",
                  file=sys.stderr, flush=True)
            if not result.passed:
                if failure_dir is None:
                    failure_dir = Path(tempfile.mkdtemp(prefix="race_repeats_"))
                failure_dir.mkdir(parents=True, exist_ok=True)
                log = failure_dir / f"{target.kind}-{target.spec.replace(':', '-')}-run{run}.txt"
                log.write_text(result.output, encoding="utf-8")
                print(f"  {describe_failure(run, result)}; whole output in {log}\n{excerpt(result.output)}",
                      file=sys.stderr, flush=True)

    print("| target | loops | runs | passes | failures (violated clauses) | tests per run | wall s min / median / max |")
    print("|---|---|---:|---:|---|---:|---|")
    for summary in summaries:
        results = summary.results
        times = [r.elapsed for r in results]
        tests = sorted({r.tests for r in results})
        failures = summary.failures
        failed = f"{len(failures)}" + (
            " (" + "; ".join(f"run {i}: {', '.join(r.violated) or r.verdict}" for i, r in failures) + ")" if failures else ""
        )
        print(f"| `{summary.target.flag}` | asyncio, trio | {len(results)} | {len(results) - len(failures)} | {failed} "
              f"| {'/'.join(map(str, tests))} | {min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f} |")
    return 1 if any(summary.failures for summary in summaries) else 0


if __name__ == "__main__":
    sys.exit(main())
