"""The verdict at the end of a run: every clause with its verdict, then what to act on.

Why every clause and not only the failures: a green run should say what it proved, and a
clause that was skipped or never run is as worth seeing as one that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance import spec

#: Statuses shown in red, and in green.
_RED, _GREEN = ("violated", "stale baseline"), ("met",)

Line = Callable[..., None]


def clause_table(result: dict[str, Any], line: Line, width: int = 100) -> None:
    """One line per clause: id, level, verdict, rule (cut to the terminal's width)."""
    room = max(20, width - 36)
    unrun = [clause_id for clause_id, clause in result["clauses"].items() if clause["status"] == "not run"]
    for clause_id, clause in result["clauses"].items():
        if clause["status"] == "not run" and len(unrun) > len(result["clauses"]) // 2:
            continue  # a narrowed run (one clause, -k): its rows, and the rest in one line below
        title = clause["title"] or ""
        title = title if len(title) <= room else title[: room - 3] + "..."
        status = clause["status"]
        line(f"{clause_id:<7} {clause['level'] or '':<6} {status:<15} {title}", red=status in _RED, green=status in _GREEN)
    if len(unrun) > len(result["clauses"]) // 2:
        line(f"not run in this selection: {', '.join(unrun)}")


def summary(result: dict[str, Any], line: Line, *, width: int = 100) -> None:
    """The table, then each violated clause with its failing tests, stale baseline entries, calls and counts."""
    clause_table(result, line, width)
    for clause_id in result["violated"]:
        line(f"violates {spec.describe(clause_id)}", red=True)
        for nodeid in result["clauses"][clause_id]["failed_tests"][:3]:
            line(f"    {nodeid}")
    for clause_id in result.get("stale", []):
        line(f"stale baseline entry: {clause_id} is listed as failing and now passes: remove it", red=True)
    if result["calls"]:
        line("calls made: " + ", ".join(f"{n:,} {c}" for c, n in result["calls"].items()))
    line("clauses: " + ", ".join(f"{n} {status}" for status, n in result["counts"].items()))
