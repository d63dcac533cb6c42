"""Do reproduction scripts reproduce? Every gallery entry's scripts, run on their own, and against a fixed target.

For each broken target the kit runs as a user would (default profile, shrinking on), on the
clause its bug breaks, writing a script per failure (``--conformance-repro``). Each script is
then run on its own: it must exit 1 (reproduced). The first is also run with ``--factory``
pointing at the correct reference: it must exit 0 (a fixed target is never called broken).

Usage: python benchmarks/reproductions.py [--only NAME ...] [--first-only] [--shrink no]

Prints a Markdown table for benchmarks/RESULTS.md; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import ROOT, run_kit
from testbed.backends import broken as broken_backends
from testbed.stores import broken as broken_stores

FIXED = {"--backend": "reference_backend:InMemoryBackend", "--store": "reference_backend:in_memory_task_store",
         "--backend-command": "reference_backend:InMemoryBackend"}


def entries(unsteered: bool) -> list[tuple[str, str, Any]]:
    """The in-memory galleries; with ``unsteered``, the races on threads and the broken wire variants instead."""
    if not unsteered:
        return [("--backend", f"testbed.backends.broken:{c.__name__}", c) for c in broken_backends.GALLERY] + [
            ("--store", f"testbed.stores.broken:{c.__name__}", c) for c in broken_stores.GALLERY
        ]
    from testbed.backends.threaded import ThreadedReadThenWritePut
    from testbed.stores.threaded import ThreadedQuotaCheckThenCreate
    from testbed.wire.examples import GALLERY

    return [("--backend", "testbed.backends.threaded:ThreadedReadThenWritePut", ThreadedReadThenWritePut),
            ("--store", "testbed.stores.threaded:ThreadedQuotaCheckThenCreate", ThreadedQuotaCheckThenCreate)] + [
        ("--backend-command", variant.command(), variant) for variant in GALLERY]


def run_script(script: Path, *args: str) -> tuple[int, float]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script), *args], cwd=script.parent, capture_output=True, text=True, timeout=600)
    return done.returncode, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--first-only", action="store_true", help="run only each entry's first script")
    parser.add_argument("--shrink", default="yes", choices=["yes", "no"])
    parser.add_argument("--unsteered", action="store_true", help="races on threads and the wire variants (node, rust)")
    args = parser.parse_args()
    rows, replays = [], []
    totals = {"entries": 0, "scripts": 0, "reproduced": 0, "first_reproduced": 0, "fixed_zero": 0}
    for flag, spec, broken in entries(args.unsteered):
        name = getattr(broken, "__name__", None) or f"{broken.language} {broken.name}"
        if args.only and name not in args.only:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            out = Path(scratch) / "repro"
            run_kit(f"{flag}={spec}", f"--conformance-clause={broken.violates}", f"--conformance-shrink={args.shrink}", "--maxfail=1",
                    f"--conformance-repro={out}", cwd=ROOT, timeout=900)
            scripts = sorted(out.glob("*.py"))[: 1 if args.first_only else None]
            codes = [run_script(s) for s in scripts]
            fixed = run_script(scripts[0], "--factory", FIXED[flag]) if scripts else (None, 0.0)
        reproduced = sum(1 for code, _ in codes if code == 1)
        totals["entries"] += 1
        totals["scripts"] += len(scripts)
        totals["reproduced"] += reproduced
        totals["first_reproduced"] += bool(codes and codes[0][0] == 1)
        totals["fixed_zero"] += fixed[0] == 0
        replays += [seconds for _, seconds in codes]
        rows.append(f"| {name} | {broken.violates} | {len(scripts)} | {reproduced} | "
                    f"{'yes' if fixed[0] == 0 else f'NO ({fixed[0]})'} | {max((s for _, s in codes), default=0):.1f} |")
        print(rows[-1], file=sys.stderr, flush=True)
    print("| entry | clause | scripts | reproduced (exit 1) | exit 0 against the fixed reference | slowest replay (s) |")
    print("|---|---|---:|---:|---|---:|")
    print("\n".join(rows))
    print()
    print(f"{totals['entries']} entries, {totals['scripts']} scripts: {totals['reproduced']} reproduced; "
          f"first script reproduced for {totals['first_reproduced']} of {totals['entries']}; "
          f"{totals['fixed_zero']} of {totals['entries']} exit 0 against the fixed reference; "
          f"replay median {statistics.median(replays) if replays else 0:.2f} s, max {max(replays, default=0):.1f} s")


if __name__ == "__main__":
    main()
