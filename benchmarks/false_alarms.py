"""False alarms: the whole kit against every correct target, under thorough with a fresh seed per run and under ci once.

Every target of ``testbed/backends/correct.py`` ``CORRECT_TARGETS`` (the reference, the
variants built differently, and the independent ones written from SPEC.md alone) runs
``runs`` times under the thorough profile, with ``--conformance-seed`` 1..runs, and once
under ci, each run a fresh ``python -m pytest`` process in a fresh directory. A false alarm
is a finished run whose verdict is not a pass; a run killed at the timeout is counted
apart (it says nothing about the verdict). The example backends on their engines
(SQLite at least; the others when their server starts here) run the same way, one run at a
time (they share a server). A quick run (``quick``) runs every target under ci, but only
the two reference targets under thorough (one seed), and the engines under ci only: a
thorough run of the whole kit takes ten minutes or more on a busy two-core machine.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

from benchmarks.common import EngineTarget, engine_names, engine_servers, parallel, progress, run_kit


@dataclass(frozen=True)
class Job:
    """One run: a target (its kit arguments), the profile and the seed (None under ci: derandomized)."""

    label: str
    args: tuple[str, ...]
    profile: str
    seed: int | None
    engine: str | None = None


#: The targets a quick run still runs under thorough.
QUICK_THOROUGH = ("reference_backend:InMemoryBackend", "reference_backend:in_memory_task_store")


def jobs_for(label: str, args: tuple[str, ...], runs: int, engine: str | None = None) -> list[Job]:
    """``runs`` thorough runs (seeds 1..runs), then one under ci."""
    return [Job(label, args, "thorough", seed, engine) for seed in range(1, runs + 1)] + [Job(label, args, "ci", None, engine)]


def run_job(job: Job, timeout: float) -> dict[str, Any]:
    seed = [f"--conformance-seed={job.seed}"] if job.seed is not None else []
    run = run_kit(*job.args, f"--conformance-profile={job.profile}", *seed, timeout=timeout)
    verdict = run.verdict or {}
    result = {
        "target": job.label,
        "engine": job.engine,
        "profile": job.profile,
        "seed": job.seed,
        "status": run.status,
        "violated": verdict.get("violated", []),
        "executed": verdict.get("executed"),
        "calls": verdict.get("calls", {}),
        "seconds": round(run.seconds, 1),
        "failed_tests": [nodeid for nodeid, _ in run.failed_tests],
    }
    if run.status in ("fail", "error"):
        result["output"] = run.output[-1500:]
    progress(f"false alarms {job.label} {job.profile} seed {job.seed}: {run.status} {','.join(result['violated'])} in {run.seconds:.1f} s")
    return result


def clause_sorted(clauses: set[str]) -> list[str]:
    """Clause ids in SPEC order within each prefix (TS-3 before TS-10)."""
    def key(clause: str) -> tuple[str, int]:
        prefix, _, number = clause.partition("-")
        return (prefix, int(number) if number.isdigit() else 0)

    return sorted(clauses, key=key)


def rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per target and profile: runs, alarms, timeouts, tests, wall seconds."""
    table: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r["target"], r["engine"], r["profile"]) for r in results))
    for target, engine, profile in keys:
        mine = [r for r in results if (r["target"], r["engine"], r["profile"]) == (target, engine, profile)]
        times = [r["seconds"] for r in mine if r["status"] != "timeout"]
        table.append({
            "target": target, "engine": engine, "profile": profile,
            "seeds": [r["seed"] for r in mine if r["seed"] is not None],
            "runs": len(mine),
            "alarms": sum(r["status"] in ("fail", "error") for r in mine),
            "timeouts": sum(r["status"] == "timeout" for r in mine),
            "violated": clause_sorted({c for r in mine for c in r["violated"]}),
            "executed": max((r["executed"] or 0 for r in mine), default=0),
            "median_seconds": round(statistics.median(times), 1) if times else None,
            "worst_seconds": round(max(times), 1) if times else None,
        })
    return table


def measure(*, runs: int, workers: int, timeout: float, quick: bool, engines: list[str] | None = None) -> dict[str, Any]:
    from testbed.backends.correct import CORRECT_TARGETS

    jobs = [job for flag, spec in CORRECT_TARGETS
            for job in jobs_for(spec, (f"{flag}={spec}",), runs if not quick or spec in QUICK_THOROUGH else 0)]
    jobs.sort(key=lambda job: job.profile != "thorough")  # the long runs first, so the short ones fill in beside them
    results = parallel(lambda job: run_job(job, timeout), jobs, workers)
    skipped: dict[str, str] = {}
    with engine_servers(engine_names() if engines is None else engines) as ready:
        for name, target in ready.items():
            if not isinstance(target, EngineTarget):
                skipped[name] = target
                progress(f"false alarms: engine {name} skipped: {target}")
                continue
            results += [run_job(job, timeout) for job in jobs_for(target.backend, tuple(target.args()), 0 if quick else runs, name)]
    table = rows(results)
    return {
        "runs_per_target": runs,
        "engines_asked": engines,
        "sampled": quick,
        "quick_thorough": list(QUICK_THOROUGH) if quick else None,
        "timeout": timeout,
        "workers": workers,
        "alarms": sum(row["alarms"] for row in table),
        "timeouts": sum(row["timeouts"] for row in table),
        "total_runs": len(results),
        "rows": table,
        "engines_skipped": skipped,
        "results": results,
    }
