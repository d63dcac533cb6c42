"""Run every benchmark and write BENCHMARKS.md: ``python benchmarks/run.py``.

Sections (each saves ``benchmarks/results/SECTION.json``; BENCHMARKS.md is rendered from all
of them, so ``--only`` re-runs some and keeps the rest as last measured):

  detection     every broken gallery entry under each profile: caught, attributed, seconds
  false-alarms  every correct target, thorough with seeds 1..N and ci once
  runtime       the kit on the reference backend per profile, serial and on 2 workers, per part
  checker       the linearizability checker's verdict time against history shape
  throughput    ops/s of the reference backend and task store beside a dict and a lock
  mutation      ``python benchmarks/mutation.py`` when it exists (it writes its own JSON)

``--quick`` is for trying the command out: detection on every third in-memory entry and
each engine's first, under smoke and ci unless ``--profiles`` says otherwise; false alarms
with every target under ci but only the reference backend and store under thorough (one
seed), engines under ci; runtime without thorough; fewer repeats and rounds; and the
mutation section is not run (its last results, if any, are still rendered).
BENCHMARKS.md says which sections were quick.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import checker, detection, false_alarms, render, runtime, throughput
from benchmarks.common import ROOT, machine, progress, save

MUTATION_SCRIPT = ROOT / "benchmarks" / "mutation.py"


def run_mutation(args: argparse.Namespace) -> str | None:
    """Run benchmarks/mutation.py (it writes benchmarks/results/mutation.json itself); a note when it was not run."""
    if not MUTATION_SCRIPT.exists():
        return "not run: benchmarks/mutation.py does not exist in this checkout"
    if args.quick:
        return "not run by a quick run (mutation testing takes long); figures below, if any, are from its last run"
    done = subprocess.run([sys.executable, str(MUTATION_SCRIPT)], cwd=ROOT, check=False)
    if done.returncode != 0:
        return f"benchmarks/mutation.py exited with status {done.returncode}; figures below, if any, are from an earlier run"
    return None


def sections(args: argparse.Namespace) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each measured section and what measures it, with the command line's choices."""
    return {
        "detection": lambda: detection.measure(profiles=args.profiles, timeout=args.timeout, quick=args.quick,
                                               engines=args.engines),
        "false-alarms": lambda: false_alarms.measure(runs=args.runs if args.runs is not None else (1 if args.quick else 5), workers=args.workers,
                                                     timeout=args.timeout, quick=args.quick, engines=args.engines),
        "runtime": lambda: runtime.measure(profiles=[p for p in args.profiles if not (args.quick and p == "thorough")],
                                           timeout=args.timeout),  # a quick run skips thorough here even when asked for it
        "checker": lambda: checker.measure(repeats=1 if args.quick else 5),
        "throughput": lambda: throughput.measure(quick=args.quick),
    }


def main() -> None:
    names = [*render.SECTIONS]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and entries, to try the command out")
    parser.add_argument("--only", nargs="+", choices=names, metavar="SECTION", help=f"run only these sections ({', '.join(names)})")
    parser.add_argument("--workers", type=int, default=2, help="kit subprocesses at a time for false alarms (default 2); detection times one run at a time")
    parser.add_argument("--profiles", nargs="+", choices=detection.PROFILES, default=None,
                        help="profiles for detection and runtime (default: all three; smoke and ci with --quick)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one kit run is killed (default 1800)")
    parser.add_argument("--runs", type=int, default=None, help="thorough runs per correct target (default 5, quick 1)")
    parser.add_argument("--engines", nargs="*", default=None, help="engines to include (default: every one whose server starts)")
    parser.add_argument("--render-only", action="store_true", help="measure nothing: render BENCHMARKS.md again from the saved results")
    args = parser.parse_args()
    if args.profiles is None:
        args.profiles = ["smoke", "ci"] if args.quick else list(detection.PROFILES)
    chosen = [] if args.render_only else args.only or names
    measurers = sections(args)
    notes: dict[str, str] = {}
    started = time.perf_counter()
    for name in chosen:
        progress(f"== {name}")
        begun = time.perf_counter()
        if name == "mutation":
            note = run_mutation(args)
            if note:
                notes[name] = note
        else:
            where = machine()
            data = measurers[name]()
            save(name, data, quick=args.quick, seconds=time.perf_counter() - begun, measured=where)
        progress(f"== {name} done in {time.perf_counter() - begun:.0f} s")
    if "mutation" not in chosen and not MUTATION_SCRIPT.exists():
        notes["mutation"] = "not run: benchmarks/mutation.py does not exist in this checkout"
    path = render.render(notes)
    progress(f"wrote {path.relative_to(ROOT)} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
