"""Mutation score: how many small bugs planted in the reference backend and the kit's task store the kit's suite kills.

Usage: python benchmarks/mutation.py [--workers N] [--workdir DIR] [--only GLOB ...] [--json PATH] [--reuse]

mutmut (3.x, from PyPI) mutates ``reference_backend/`` and ``conformance/taskstore/`` in a copy
of the tracked files and runs, against each mutant, in passes (each on the survivors of the last):
1. the kit's suite as a backend author runs it, ``--backend=reference_backend:InMemoryBackend``
   under the default profile: the backend suite over the backend, the task store suite over
   the kit's store on it;
2. the kit's suite as a store author runs it, ``--store=reference_backend:in_memory_task_store``;
3. the project's own tests of these modules, which pin what SPEC.md leaves to an implementation
   (a cursor's encoding) and the store's defences against a backend that breaks its contract.
The mutation score is the kit's suite's (passes 1 and 2). A mutant that survives the suite is
either explained in ``benchmarks/mutation_equivalents.toml`` (no caller can tell it from the
original under SPEC.md), or counted against the score; pass 3 says which of those the project's
own tests catch. Writes ``benchmarks/results/mutation.json``.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ["reference_backend/*", "conformance/taskstore/*"]
EQUIVALENTS = ROOT / "benchmarks" / "mutation_equivalents.toml"
RESULT = ROOT / "benchmarks" / "results" / "mutation.json"
#: mutmut's statuses that mean the tests noticed the mutant: a failure, or a run so slow it was stopped.
DETECTED = ("killed", "timeout")

_PYTEST = ["-p", "no:cacheprovider", "-p", "no:xdist", "-p", "no:benchmark", "-W", "ignore::DeprecationWarning"]


@dataclass(frozen=True)
class Pass:
    """One test command run against the mutants the passes before it left alive."""

    name: str
    args: tuple[str, ...]
    suite: bool  # the kit's shipped suite (counts for the score), or the project's own tests
    #: Which of the mutants still alive this pass tries: mutmut's name glob, or its status ("no tests").
    tries: tuple[str, ...] = ("*",)


PASSES = (
    Pass("suite --backend", (*_PYTEST, "--backend=reference_backend:InMemoryBackend"), suite=True),
    # The store suite ran in pass 1 already, over the kit's store: only the store factory, which
    # the backend run never calls, and what no test of pass 1 reached are new to it.
    Pass("suite --store", (*_PYTEST, "--store=reference_backend:in_memory_task_store"), suite=True,
         tries=("reference_backend.store.*", "no tests")),
    Pass("project tests", (*_PYTEST, "-p", "pytester", "tests/test_generic_store_unit.py", "tests/test_record_limits.py",
                           "tests/test_backends_standalone.py", "tests/test_stores_standalone.py"), suite=False),
)

#: Runs mutmut in this process. The kit answers a target whose factory raises with a usage error
#: (exit 4), which mutmut takes for a broken test command; for a mutant (and for mutmut's own
#: "every function raises" check) that refusal is the kit failing the target, so it counts as 1.
_MUTMUT = """
import sys
from mutmut.__main__ import cli
from mutmut.runners import harness
_execute = harness.PytestRunner.execute_pytest
def execute(self, params, **kwargs):
    try:
        return _execute(self, params, **kwargs)
    except harness.BadTestExecutionCommandsException:
        if "--collect-only" in params:
            raise
        return 1
harness.PytestRunner.execute_pytest = execute
sys.argv = ["mutmut", *sys.argv[1:]]
cli()
"""


@dataclass
class Mutant:
    name: str
    status: str  # mutmut's status after the suite's passes
    diff: str = ""
    killed_by: str = ""  # the pass that killed it
    equivalent: bool = False
    explanation: str = ""


def prepare(workdir: Path, only: list[str], run: Pass) -> None:
    """A copy of the tracked files, with mutmut's configuration appended to its pyproject.toml."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            (workdir / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, workdir / name.decode())
    config = {
        "source_paths": ["conformance", "reference_backend"],
        "only_mutate": only,
        "pytest_add_cli_args": [arg for arg in run.args if not arg.startswith("tests/")],
        "pytest_add_cli_args_test_selection": [arg for arg in run.args if arg.startswith("tests/")],
    }
    with (workdir / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n[tool.mutmut]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in config.items()))


def mutate(workdir: Path, workers: int, names: list[str] | None) -> None:
    """Run mutmut on ``names`` (every mutant if None)."""
    subprocess.run([sys.executable, "-c", _MUTMUT, "run", "--max-children", str(workers), *(names or [])], cwd=workdir,
                   stdout=subprocess.DEVNULL, check=True, timeout=4 * 3600)


def statuses(workdir: Path) -> dict[str, str]:
    """Every mutant's status, from mutmut's own record of exit codes."""
    from mutmut.stats import status_by_exit_code

    found: dict[str, str] = {}
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            found[name] = status_by_exit_code[code]
    return found


def run_passes(root: Path, only: list[str], workers: int, reuse: int, passes: int = len(PASSES)) -> list[Mutant]:
    """Each pass on what the passes before it left alive; a mutant's status is the suite's verdict.

    The first ``reuse`` passes are read from their last run in ``root`` instead of run again.
    """
    mutants: dict[str, Mutant] = {}
    for number, run in enumerate(PASSES[:passes], 1):
        workdir = root / f"pass{number}"
        first = not mutants
        alive = [name for name, m in mutants.items() if not m.killed_by
                 and any(m.status == glob or fnmatch.fnmatchcase(name, glob) for glob in run.tries)]
        if not first and not alive:
            continue
        if number > reuse:
            prepare(workdir, only, run)
            mutate(workdir, workers, None if first else alive)
        for name, status in statuses(workdir).items():
            if not first and name not in alive:
                continue
            mutant = mutants.setdefault(name, Mutant(name, status))
            if run.suite:
                mutant.status = status
            if status in DETECTED:
                mutant.killed_by = run.name
            elif not mutant.diff:
                mutant.diff = _diff(workdir, name)
    return list(mutants.values())


def _diff(workdir: Path, name: str) -> str:
    shown = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir, capture_output=True, text=True,
                           check=False, timeout=120).stdout
    lines = [line for line in shown.splitlines() if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
    return "\n".join(lines) or shown.strip()


def explain(mutants: list[Mutant]) -> list[str]:
    """Mark the survivors a rule of ``mutation_equivalents.toml`` explains; return the rules that explain nothing.

    A rule names mutants by a glob over their names and, optionally, a regular expression
    their diff must match; each says why no caller can tell those mutants from the original
    under SPEC.md. A rule that matches no survivor is stale: the code or the suite changed.
    """
    rules = tomllib.loads(EQUIVALENTS.read_text())["rule"] if EQUIVALENTS.exists() else []
    used: set[int] = set()
    for mutant in mutants:
        if mutant.status in DETECTED:
            continue
        for index, rule in enumerate(rules):
            if fnmatch.fnmatchcase(mutant.name, rule["mutants"]) and re.search(rule.get("diff", ""), mutant.diff, re.MULTILINE):
                mutant.equivalent, mutant.explanation = True, rule["why"]
                used.add(index)
                break
    return [f"{rule['mutants']} {rule.get('diff', '')}".strip() for index, rule in enumerate(rules) if index not in used]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/conformance-mutation"))
    parser.add_argument("--only", nargs="*", default=TARGETS, help="globs of the files to mutate")
    parser.add_argument("--json", type=Path, default=RESULT)
    parser.add_argument("--reuse", type=int, default=0, metavar="N", help="read the first N passes' results from their last run")
    parser.add_argument("--passes", type=int, default=len(PASSES), choices=range(1, len(PASSES) + 1),
                        help="run only the first N passes (2: the suite's alone, without the project's tests)")
    args = parser.parse_args()
    started = time.perf_counter()
    mutants = run_passes(args.workdir, args.only, args.workers, args.reuse, args.passes)
    stale = explain(mutants)
    killed = sum(m.status in DETECTED for m in mutants)
    equivalent = sum(m.equivalent for m in mutants)
    counted = len(mutants) - equivalent
    survivors = [m for m in mutants if m.status not in DETECTED]
    summary = {
        "tool": f"mutmut {version('mutmut')}",
        "targets": args.only,
        "passes": {run.name: " ".join(["pytest", *run.args]) for run in PASSES[:args.passes]},
        "killed_by": {run.name: sum(m.killed_by == run.name for m in mutants) for run in PASSES},
        "total": len(mutants),
        "killed": killed,
        "equivalent": equivalent,
        "score": round(100 * killed / max(1, counted), 1),
        "seconds": round(time.perf_counter() - started, 1),
        "statuses": {status: sum(m.status == status for m in mutants) for status in sorted({m.status for m in mutants})},
        "survivors": [asdict(m) for m in survivors],
        "stale_explanations": stale,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(summary, indent=1) + "\n")
    print(f"Mutation score: {summary['score']} % of non-equivalent mutants (killed {killed} of {counted}; "
          f"{equivalent} equivalent; {summary['tool']}); survivors: {len(survivors)}; stale explanations: {len(stale)}")
    for m in survivors:
        print(f"\n{m.name} [{m.status}]{' (equivalent)' if m.equivalent else ''}"
              f"{' killed by ' + m.killed_by if m.killed_by else ''}\n{m.diff}")


if __name__ == "__main__":
    main()
