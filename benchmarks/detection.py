"""Detection: does the whole kit catch every planted bug, how fast, and does its first failure name the bug's clause?

For every entry of the galleries (``testbed/backends/broken.py`` with ``--backend``,
``testbed/stores/broken.py`` with ``--store``) and every profile, the kit runs as an author's
CI would, stopping at the first failure (``-x``), in a fresh directory; under ``thorough`` a
fixed ``--conformance-seed`` makes the run reproducible. Recorded per run: caught (a test
failed), the clauses the first failure names, attributed (the first of them is the bug's
clause, ``violates``, or one the SPEC states the same rule under, ``also``), the failing
test, the wall seconds of the whole process, and the size of the shrunk example (the calls
the first failure shows). The engine galleries (``testbed/backends/broken_<engine>.py``) run
the same way against their servers, one entry at a time (they share the server), in a
table of their own.

Alone: ``python benchmarks/detection.py --machine`` runs only the task-store state machine on
each broken store, unshrunk (its own catch rate), and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import re
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import EngineTarget, engine_names, engine_servers, parallel, progress, run_kit

PROFILES = ("smoke", "ci", "thorough")
#: The seed of every thorough run: the same command draws the same examples.
THOROUGH_SEED = 1
#: The engine galleries, by engine name (testbed/engines/registry.py).
ENGINE_GALLERIES = {"sqlite": "broken_sqlite", "redis": "broken_redis", "postgres": "broken_postgres", "dynamodb": "broken_dynamodb"}
#: A numbered call line of a failure's evidence: ``  12  #1 put(...) -> ...``.
_CALL_LINE = re.compile(r"^\s*(\d+)\s+#\d+ ")


@dataclass(frozen=True)
class Entry:
    """A broken target: which gallery it is in, how the kit is pointed at it, and the clauses its bug breaks."""

    gallery: str
    flag: str
    spec: str
    name: str
    #: ``violates`` first, then ``also`` (clauses whose SPEC text states the same rule).
    clauses: tuple[str, ...]

    def args(self, engine: EngineTarget | None = None) -> list[str]:
        return engine.args(self.spec) if engine is not None else [f"{self.flag}={self.spec}"]


def _entries(gallery: str, flag: str, module: str, classes: Any) -> list[Entry]:
    return [Entry(gallery, flag, f"{module}:{cls.__name__}", cls.__name__, (cls.violates, *getattr(cls, "also", ())))
            for cls in classes]


def in_memory_entries() -> list[Entry]:
    """The in-memory galleries, backends then stores, in their stable order."""
    from testbed.backends import broken as broken_backends
    from testbed.stores import broken as broken_stores

    return (_entries("backends", "--backend", "testbed.backends.broken", broken_backends.GALLERY)
            + _entries("stores", "--store", "testbed.stores.broken", broken_stores.GALLERY))


def engine_entries(engine: str) -> list[Entry]:
    """One engine's gallery of classic bugs."""
    import importlib

    module = f"testbed.backends.{ENGINE_GALLERIES[engine]}"
    return _entries(engine, "--backend", module, importlib.import_module(module).GALLERY)


def profile_args(profile: str) -> list[str]:
    return [f"--conformance-profile={profile}", *([f"--conformance-seed={THOROUGH_SEED}"] if profile == "thorough" else [])]


def example_calls(test: dict[str, Any]) -> int | None:
    """How many calls the failure's (shrunk) example made: the number of its last shown call, None if it shows none."""
    lines = (test.get("evidence") or {}).get("failing_calls") or []
    numbers = [int(match.group(1)) for line in lines if (match := _CALL_LINE.match(line))]
    return numbers[-1] if numbers else None


def detect(entry: Entry, profile: str, timeout: float, engine: EngineTarget | None = None, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One run of the kit on a broken target, stopping at the first failure; what it caught and how fast."""
    run = run_kit(*entry.args(engine), "-x", *profile_args(profile), *extra, timeout=timeout)
    failed = run.failed_tests
    named: list[str] = failed[0][1]["violated"] if failed else []
    result = {
        **asdict(entry),
        "profile": profile,
        "seed": THOROUGH_SEED if profile == "thorough" else None,
        "status": "caught" if failed else run.status if run.status in ("timeout", "error") else "missed",
        "named": named,
        "attributed": bool(named) and named[0] in entry.clauses,
        "test": failed[0][0].split("::")[-1] if failed else None,
        "module": failed[0][0].split("::")[0].rsplit("/", 1)[-1] if failed else None,
        "seconds": round(run.seconds, 2),
        "example_calls": example_calls(failed[0][1]) if failed else None,
    }
    if result["status"] == "error":
        result["output"] = run.output[-800:]
    progress(f"detection {profile} {entry.name}: {result['status']} {','.join(named)} in {run.seconds:.1f} s")
    return result


def _detect_in_memory(entry: Entry, *, profile: str, timeout: float) -> dict[str, Any]:
    return detect(entry, profile, timeout)


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Caught and attributed out of all, median and worst seconds to the first failure (of the caught runs)."""
    caught = [r for r in runs if r["status"] == "caught"]
    times = [r["seconds"] for r in caught]
    slowest = max(caught, key=lambda r: r["seconds"], default=None)
    return {
        "total": len(runs),
        "caught": len(caught),
        "attributed": sum(r["attributed"] for r in runs),
        "timeouts": sum(r["status"] == "timeout" for r in runs),
        "errors": sum(r["status"] == "error" for r in runs),
        "median_seconds": round(statistics.median(times), 1) if times else None,
        "worst_seconds": round(max(times), 1) if times else None,
        "slowest": f"{slowest['name']} ({slowest['test']})" if slowest else None,
    }


#: The start-up run: the whole kit's collection and one test, on the reference backend.
STARTUP_ARGS = ("--backend=reference_backend:InMemoryBackend", "-k", "test_fresh_instance_is_empty")


def start_up(repeats: int = 3) -> dict[str, float]:
    """Median wall seconds of a one-test kit run, with bytecode cached (after one run fills the cache) and without any."""
    run_kit(*STARTUP_ARGS)  # fills the bytecode cache the measured runs read
    warm = statistics.median(run_kit(*STARTUP_ARGS).seconds for _ in range(repeats))
    cold = statistics.median(run_kit(*STARTUP_ARGS, cold=True).seconds for _ in range(repeats))
    return {"warm": round(warm, 2), "cold": round(cold, 2)}


def measure(*, profiles: list[str], timeout: float, quick: bool, engines: list[str] | None = None,
            only: list[str] | None = None, workers: int = 1) -> dict[str, Any]:
    """The section's results: every run, and a summary per profile for the in-memory galleries and for each engine's.

    One kit run at a time by default: the time to detect is a wall-clock figure, and two runs
    sharing a small machine's cores would each report the other's load as their own.

    ``quick`` runs every third entry of the in-memory galleries (first, fourth, ...) and the engines' first entry each.
    """
    startup = start_up()
    entries = in_memory_entries()
    if only:
        entries = [e for e in entries if e.name in only]
    if quick:
        entries = entries[::3]
    runs: list[dict[str, Any]] = []
    summaries: dict[str, dict[str, Any]] = {}
    for profile in profiles:
        got = parallel(functools.partial(_detect_in_memory, profile=profile, timeout=timeout), entries, workers)
        runs += got
        summaries[profile] = summary(got)
    engine_rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with engine_servers(engine_names() if engines is None else engines) as ready:
        for name, target in ready.items():
            if isinstance(target, str):
                skipped[name] = target
                progress(f"detection: engine {name} skipped: {target}")
                continue
            gallery = engine_entries(name)[: 1 if quick else None]
            for profile in profiles:
                got = [detect(entry, profile, timeout, target) for entry in gallery]  # one at a time: they share the server
                runs += got
                engine_rows.append({"engine": name, "profile": profile, **summary(got)})
    return {
        "profiles": profiles,
        "seed": THOROUGH_SEED,
        "timeout": timeout,
        "workers": workers,
        "entries": len(entries),
        "startup": startup,
        "sampled": quick,
        "summary": summaries,
        "engines": engine_rows,
        "engines_skipped": skipped,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--machine", action="store_true", help="only the task-store state machine, on the broken stores, unshrunk")
    parser.add_argument("--profile", default="ci", choices=PROFILES)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    if not args.machine:
        parser.error("the whole detection benchmark is a section of benchmarks/run.py: python benchmarks/run.py --only detection")
    entries = [e for e in in_memory_entries() if e.flag == "--store" and (not args.only or e.name in args.only)]
    extra = ("-k", "test_store_agrees_with_model", "--conformance-shrink=no")
    results = parallel(lambda e: detect(e, args.profile, args.timeout, extra=extra), entries, args.workers)
    print("| broken store | bug's clause | the machine's failure names | caught | attributed | wall s |")
    print("|---|---|---|---|---|---:|")
    for r in results:
        print(f"| {r['name']} | {' / '.join(r['clauses'])} | {', '.join(r['named']) or '-'} | {r['status']} "
              f"| {'yes' if r['attributed'] else 'no'} | {r['seconds']:.1f} |")
    s = summary(results)
    print(f"\ncaught {s['caught']}/{s['total']}, attributed {s['attributed']}/{s['total']}, "
          f"median {s['median_seconds']} s, worst {s['worst_seconds']} s")


if __name__ == "__main__":
    main()
