"""Time the kit's default profile against correct backends, repeated, and count false alarms.

Usage: python benchmarks/kit_runtime.py [--repeats N] [--loop asyncio|trio|all] [SPEC ...]
Prints a Markdown table for benchmarks/RESULTS.md. Each run is a fresh
``python -m pytest --backend=SPEC`` process, exactly as a user runs the kit.
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
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from testbed.backends.correct import CORRECT_TARGETS  # noqa: E402

#: The correct backends; ``--stores`` adds the correct task stores.
DEFAULT_TARGETS = [spec for flag, spec in CORRECT_TARGETS if flag == "--backend"]
FLAGS = {spec: flag for flag, spec in CORRECT_TARGETS}


def run_once(spec: str, loop: str, workdir: Path, extra: Sequence[str] = ()) -> tuple[float, dict]:
    """One ``python -m pytest --backend=SPEC`` (plus ``extra`` options) in ``workdir``: wall seconds and the JSON verdict."""
    flag = FLAGS.get(spec, "--store" if spec.endswith("_store") else "--backend")
    report = workdir / "report.json"
    report.unlink(missing_ok=True)  # a run that writes no verdict must not be read as the last one's
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", f"{flag}={spec}", f"--conformance-loop={loop}", "-q", "-p", "no:cacheprovider",
         f"--conformance-report={report}", *extra],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )
    return time.perf_counter() - started, json.loads(report.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("targets", nargs="*", default=DEFAULT_TARGETS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--stores", action="store_true", help="check the correct task stores too")
    args = parser.parse_args()
    if args.stores and args.targets == DEFAULT_TARGETS:
        args.targets = [spec for _flag, spec in CORRECT_TARGETS]
    print(f"| target | loop | runs | tests per run | wall s (median) | wall s (max) | false alarms |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.targets:
            times, alarms, tests = [], 0, 0
            for _ in range(args.repeats):
                elapsed, verdict = run_once(spec, args.loop, Path(tmp))
                times.append(elapsed)
                alarms += verdict["verdict"] != "pass"
                tests = len(verdict["tests"])
            print(f"| `{spec}` | {args.loop} | {args.repeats} | {tests} | {statistics.median(times):.1f} | {max(times):.1f} | {alarms} |")


if __name__ == "__main__":
    main()
