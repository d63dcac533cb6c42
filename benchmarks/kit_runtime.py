"""Time the kit's default profile against correct backends, repeated, and count false alarms.

Usage: python benchmarks/kit_runtime.py [--repeats N] [--loop asyncio|trio|all] [SPEC ...]
Prints a Markdown table. Each run is a fresh ``python -m pytest --backend=SPEC`` process,
exactly as a user runs the kit (``benchmarks.common.run_kit``). ``python benchmarks/run.py``
measures the false alarms and the runtime per profile on one loop; this script is for the
other loops (``--loop trio``, ``--loop all``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import run_kit
from testbed.backends.correct import CORRECT_TARGETS

#: The correct backends; ``--stores`` adds the correct task stores.
DEFAULT_TARGETS = [spec for flag, spec in CORRECT_TARGETS if flag == "--backend"]
FLAGS = {spec: flag for flag, spec in CORRECT_TARGETS}


def run_once(spec: str, loop: str, extra: Sequence[str] = ()) -> tuple[float, dict[str, Any]]:
    """One ``python -m pytest --backend=SPEC`` (plus ``extra`` options): wall seconds and the JSON verdict."""
    flag = FLAGS.get(spec, "--store" if spec.endswith("_store") else "--backend")
    run = run_kit(f"{flag}={spec}", f"--conformance-loop={loop}", *extra)
    if run.verdict is None:
        raise RuntimeError(f"{spec}: the kit wrote no verdict (exit {run.exit_code}):\n{run.output}")
    return run.seconds, run.verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("targets", nargs="*", default=DEFAULT_TARGETS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--stores", action="store_true", help="check the correct task stores too")
    args = parser.parse_args()
    if args.stores and args.targets == DEFAULT_TARGETS:
        args.targets = [spec for _flag, spec in CORRECT_TARGETS]
    print("| target | loop | runs | tests per run | wall s (median) | wall s (max) | false alarms |")
    print("|---|---|---|---|---|---|---|")
    for spec in args.targets:
        times, alarms, tests = [], 0, 0
        for _ in range(args.repeats):
            elapsed, verdict = run_once(spec, args.loop)
            times.append(elapsed)
            alarms += verdict["verdict"] != "pass"
            tests = len(verdict["tests"])
        print(f"| `{spec}` | {args.loop} | {args.repeats} | {tests} | {statistics.median(times):.1f} | {max(times):.1f} | {alarms} |")


if __name__ == "__main__":
    main()
