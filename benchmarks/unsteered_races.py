"""Detection power and false alarms on races the kit cannot steer: threads, and implementations in other processes.

Each target runs N times as a user runs the kit, on its concurrency tests only (the clauses
that judge concurrent calls: BK-18, TS-6, SEC-9 and CC-1 to CC-8, with the default ``ci``
profile); the sequential tests cannot meet a race, so leaving them out changes no detection
and keeps the measure affordable. A planted race counts as detected when the run fails and
names one of its clauses; a correct target counts a false alarm for any failure.
``--without-load`` runs the same tests less the load test, to show what load adds.

Usage: python benchmarks/unsteered_races.py [--runs N] [--only NAME ...] [--without-load]

Prints a Markdown table for benchmarks/RESULTS.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, run_kit

SERVE = f"{sys.executable} -m conformance.serve"
NODE = "node examples/node/backend.js"
NODE_BROKEN = "node testbed/wire/node/broken.js"
RUST = "examples/rust/target/release/conformance-rust-example"
RUST_BROKEN = "testbed/wire/rust_broken/target/release/conformance-rust-broken"
CONCURRENCY = ("BK-18", "TS-6", "SEC-9", "CC-1", "CC-2", "CC-3", "CC-4", "CC-5", "CC-6", "CC-7", "CC-8")
PUT_RACE = ("BK-18", "CC-1", "CC-3", "CC-4", "CC-5", "CC-6")
QUOTA_RACE = ("TS-6", "SEC-9", "CC-1", "CC-2")


@dataclass(frozen=True)
class Case:
    name: str
    flag: str
    #: The clauses a run may name for the planted race; empty for a correct target.
    clauses: tuple[str, ...] = ()


CASES = [
    Case("threads: read-then-write put", "--backend=testbed.backends.threaded:ThreadedReadThenWritePut", PUT_RACE),
    Case("threads: check-then-create quota", "--store=testbed.stores.threaded:ThreadedQuotaCheckThenCreate", QUOTA_RACE),
    Case("threads: correct backend", "--backend=testbed.backends.correct:ThreadedBackend"),
    Case("threads: correct store", "--store=testbed.stores.threaded:ThreadedStore"),
    Case("python process: read-then-write put", f"--backend-command={SERVE} --backend testbed.backends.threaded:ThreadedReadThenWritePut", PUT_RACE),
    Case("python process: check-then-create quota", f"--store-command={SERVE} --store testbed.stores.threaded:ThreadedQuotaCheckThenCreate", QUOTA_RACE),
    Case("python process: reference backend", f"--backend-command={SERVE} --backend reference_backend:InMemoryBackend"),
    Case("python process: reference store", f"--store-command={SERVE} --store reference_backend:in_memory_task_store"),
    Case("node: read-then-write put", f"--backend-command={NODE_BROKEN} read-then-write-put", PUT_RACE),
    Case("node: lagging index (quota race in the kit's store)", f"--backend-command={NODE_BROKEN} lagging-index", QUOTA_RACE + ("BK-12",)),
    Case("node: correct example", f"--backend-command={NODE}"),
    Case("rust: read-then-write put", f"--backend-command={RUST_BROKEN} read-then-write-put", PUT_RACE),
    Case("rust: read-then-write put, in memory (no round trip)", f"--backend-command={RUST_BROKEN} read-then-write-put-in-memory", PUT_RACE),
    Case("rust: lagging index (quota race in the kit's store)", f"--backend-command={RUST_BROKEN} lagging-index", QUOTA_RACE + ("BK-12",)),
    Case("rust: correct example", f"--backend-command={RUST}"),
]


def run_once(case: Case, without_load: bool) -> tuple[bool, list[str], float]:
    """(failed, violated clauses, seconds) for one run of the concurrency tests."""
    run = run_kit(case.flag, "--conformance-shrink=no", *(f"--conformance-clause={c}" for c in CONCURRENCY),
                  *(["-k", "not under_load"] if without_load else []), cwd=ROOT, timeout=1800)
    if run.verdict is None:
        print(run.output, file=sys.stderr)
        return True, ["(timeout)" if run.timed_out else "(no report)"], run.seconds
    return run.exit_code != 0, run.verdict["violated"], run.seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", nargs="*", default=None, help="run only the cases whose name contains one of these")
    parser.add_argument("--without-load", action="store_true", help="leave out the load test (what the kit found before it)")
    options = parser.parse_args()
    cases = [c for c in CASES if not options.only or any(word in c.name for word in options.only)]
    rows = []
    for case in cases:
        hits, alarms, times = 0, 0, []
        named: dict[str, int] = {}
        for number in range(1, options.runs + 1):
            failed, violated, elapsed = run_once(case, options.without_load)
            times.append(elapsed)
            if case.clauses:
                hit = failed and bool(set(violated) & set(case.clauses))
                hits += hit
                for clause in violated:
                    named[clause] = named.get(clause, 0) + 1
            else:
                alarms += failed
            print(f"{case.name} run {number}: {'FAIL ' + ','.join(violated) if failed else 'pass'} in {elapsed:.1f} s", file=sys.stderr)
        median = statistics.median(times)
        if case.clauses:
            top = ", ".join(f"{c} {n}" for c, n in sorted(named.items(), key=lambda kv: -kv[1])[:4])
            rows.append(f"| {case.name} | planted | {hits}/{options.runs} detected ({100 * hits / options.runs:.0f} %) | {top} | {median:.1f} s |")
        else:
            rows.append(f"| {case.name} | correct | {alarms} false alarms in {options.runs} | | {median:.1f} s |")
    mode = "without the load test" if options.without_load else "with the load test"
    print(f"\nConcurrency tests ({', '.join(CONCURRENCY)}), ci profile, {mode}, {options.runs} runs each:\n")
    print("| target | kind | result | clauses named (runs) | median run |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
