"""The kit's default profile against each example backend on its real engine: wall time, calls, passes.

Usage: python benchmarks/engines.py [--repeats N] [ENGINE ...]   (engines: sqlite redis postgres dynamodb)
Starts each engine's server as the self-tests do (testbed/engines/), runs ``python -m pytest
--backend=...`` N times in a row on the default loop against the same server, and prints
a Markdown table: wall time, tests per run, calls into the backend (and into the reference
store above it) per run, and how many runs passed; the server's memory after each run
goes to stderr. A correct backend must pass every run: one failure is a flake, of the kit
or of the example. (``python benchmarks/run.py`` counts the engines' false alarms under
thorough and ci; this script is for calls per run and a server's memory over repeats.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.kit_runtime import run_once
from testbed.engines.process import ServerProcess
from testbed.engines.registry import ENGINES


def server_rss_mb(server: ServerProcess | None) -> str:
    """The server's resident memory, to see whether it grows over repeated runs (Linux only)."""
    if server is None:
        return "-"
    try:
        status = Path(f"/proc/{server.process.pid}/status").read_text()
    except OSError:
        return "?"
    kilobytes = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)
    return "?" if kilobytes is None else str(kilobytes // 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("engines", nargs="*", default=[engine.name for engine in ENGINES])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chosen = [engine for engine in ENGINES if engine.name in args.engines]
    print("| engine | backend | runs | passed | tests per run | wall s (median) | wall s (max) | backend calls per run (median) | store calls per run (median) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for engine in chosen:
        server = engine.start() if engine.start is not None else None
        try:
            times: list[float] = []
            passed, tests, backend_calls, store_calls = 0, 0, [], []
            for _ in range(args.repeats):
                elapsed, verdict = run_once(engine.backend, "asyncio", engine.kit_args(server)[1:])
                times.append(elapsed)
                passed += verdict["verdict"] == "pass"
                tests = len(verdict["tests"])
                backend_calls.append(verdict["calls"].get("backend", 0))
                store_calls.append(verdict["calls"].get("store", 0))
                print(f"{engine.name} run {len(times)}: {verdict['verdict']} in {elapsed:.1f} s, "
                      f"server RSS {server_rss_mb(server)} MB", file=sys.stderr, flush=True)
        finally:
            if server is not None:
                server.stop()
        print(f"| {engine.name} | `{engine.backend}` | {args.repeats} | {passed} | {tests} | {statistics.median(times):.1f} "
              f"| {max(times):.1f} | {statistics.median(backend_calls):,.0f} | {statistics.median(store_calls):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
