"""Attribution: does the first failure the whole kit reports name the clause of the planted bug?

Usage: python benchmarks/attribution.py [--workers N] [--only NAME ...] [--machine]

For every entry of the galleries (testbed/backends/broken.py, testbed/stores/broken.py) the whole
default profile runs with ``-x``, as an author's CI would stop at the first failure, and the
clauses that failure names are compared with the bug's (``violates``, or one of the clauses
the SPEC states the same rule under, ``also``). With ``--machine`` only the task-store state
machine runs on each broken store: its own catch rate. Prints a Markdown table and a summary
for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.backends import broken as broken_backends  # noqa: E402
from testbed.stores import broken as broken_stores  # noqa: E402


@dataclass
class Entry:
    flag: str
    spec: str
    name: str
    clauses: tuple[str, ...]


@dataclass
class Result:
    entry: Entry
    first: list[str]
    test: str
    seconds: float

    @property
    def caught(self) -> bool:
        return bool(self.first)

    @property
    def attributed(self) -> bool:
        return bool(self.first) and self.first[0] in self.entry.clauses


def gallery() -> list[Entry]:
    entries = []
    for flag, module, classes in (("--backend", "testbed.backends.broken", broken_backends.GALLERY),
                                  ("--store", "testbed.stores.broken", broken_stores.GALLERY)):
        for cls in classes:
            clauses = (cls.violates, *getattr(cls, "also", ()))
            entries.append(Entry(flag, f"{module}:{cls.__name__}", cls.__name__, clauses))
    return entries


def run(entry: Entry, extra: list[str]) -> Result:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", f"{entry.flag}={entry.spec}", "-x", "-q", "-p", "no:cacheprovider",
             "--conformance-timeout=2", f"--conformance-report={report}", *extra],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=900,
        )
        seconds = time.perf_counter() - started
        verdict = json.loads(report.read_text()) if report.exists() else {"tests": {}}
    failed = [(nodeid, t) for nodeid, t in verdict["tests"].items() if t["outcome"] == "failed"]
    if not failed:
        return Result(entry, [], "", seconds)
    nodeid, test = failed[0]
    return Result(entry, test["violated"], nodeid.split("::")[-1], seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--machine", action="store_true", help="run only the task-store machine, on the broken stores")
    args = parser.parse_args()
    entries = [e for e in gallery() if args.only is None or e.name in args.only]
    extra: list[str] = []
    if args.machine:
        entries = [e for e in entries if e.flag == "--store"]
        extra = ["-k", "test_store_agrees_with_model", "--conformance-shrink=no"]
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda e: run(e, extra), entries))
    print("| broken target | bug's clause | first failure names | test | caught | attributed | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.entry.name} | {' / '.join(r.entry.clauses)} | {', '.join(r.first) or '-'} | {r.test or '-'} "
              f"| {'yes' if r.caught else 'NO'} | {'yes' if r.attributed else 'no'} | {r.seconds:.1f} |")
    caught = sum(r.caught for r in results)
    attributed = sum(r.attributed for r in results)
    times = [r.seconds for r in results if r.caught]
    print()
    print(f"caught {caught}/{len(results)}; first failure names the bug's clause for {attributed}/{len(results)} "
          f"({100 * attributed / max(1, len(results)):.0f} %)"
          + (f"; wall s to the first failure, median {statistics.median(times):.1f}, worst {max(times):.1f}" if times else ""))


if __name__ == "__main__":
    main()
