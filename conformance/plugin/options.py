"""Command-line options, in a namespaced spelling that never collides and a short one when free.

Many projects' conftests already define ``--backend``; the kit's short spellings are
added only after those conftests load, and only if nobody took them.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.plugin.profiles import PROFILES

#: (short spelling, namespaced spelling, dest, extra argparse keywords)
TARGET_OPTIONS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("--backend", "--conformance-backend", "conformance_backend",
     dict(metavar="MODULE:ATTR", help="StorageBackend factory to check (class or callable).")),
    ("--backend-option", "--conformance-backend-option", "conformance_backend_options",
     dict(action="append", metavar="KEY=VALUE", help="Keyword argument for the backend factory (repeatable).")),
    ("--store", "--conformance-store", "conformance_store",
     dict(metavar="MODULE:ATTR", help="TaskStore factory to check (instead of a backend under the reference store).")),
    ("--store-option", "--conformance-store-option", "conformance_store_options",
     dict(action="append", metavar="KEY=VALUE", help="Keyword argument for the store factory (repeatable).")),
    ("--backend-command", "--conformance-backend-command", "conformance_backend_command",
     dict(metavar="COMMAND", help="Start COMMAND and check the StorageBackend it serves over the wire protocol (WIRE-PROTOCOL.md).")),
    ("--store-command", "--conformance-store-command", "conformance_store_command",
     dict(metavar="COMMAND", help="Start COMMAND and check the TaskStore it serves over the wire protocol (WIRE-PROTOCOL.md).")),
)


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "task-storage conformance kit")
    for _short, long, dest, extra in TARGET_OPTIONS:
        group.addoption(long, dest=dest, **extra)
    group.addoption(
        "--conformance-loop", dest="conformance_loop", default="asyncio", choices=["asyncio", "trio", "all"],
        help="Event loop to run the target on; 'all' runs each test on asyncio and trio (default: asyncio).",
    )
    group.addoption(
        "--conformance-profile", dest="conformance_profile", default="ci", choices=list(PROFILES),
        help="Hypothesis profile: 'smoke' (seconds, for a pre-commit hook), 'ci' (derandomized, default) "
             "or 'thorough' (a fresh seed per run, many more examples).",
    )
    group.addoption(
        "--conformance-seed", dest="conformance_seed", type=int, metavar="N",
        help="Seed every Hypothesis test with N, under any profile (a failure prints the seed that replays it).",
    )
    group.addoption(
        "--conformance-database", dest="conformance_database", metavar="DIR|redis://HOST:PORT[/DB]",
        help="Hypothesis example database shared by runs: failures are saved to it and replayed first, under every profile.",
    )
    group.addoption(
        "--conformance-shrink", dest="conformance_shrink", default="yes", choices=["yes", "no"],
        help="Shrink failing examples to minimal ones (default: yes); 'no' reports the first failure found, faster.",
    )
    group.addoption(
        "--conformance-timeout", dest="conformance_timeout", type=float, default=8.0, metavar="SECONDS",
        help="Bound on every single call into the target (default: 8).",
    )
    group.addoption(
        "--conformance-max-timeouts", dest="conformance_max_timeouts", type=int, default=3, metavar="N",
        help="Stop the run after this many timed-out calls (default: 3).",
    )
    group.addoption(
        "--conformance-clause", dest="conformance_clauses", action="append", metavar="ID",
        help="Run only the tests that check this clause, e.g. BK-12 (repeatable).",
    )
    group.addoption(
        "--conformance-timelines", dest="conformance_timelines", metavar="DIR",
        help="Write each violating concurrent history as an HTML timeline into DIR.",
    )
    group.addoption(
        "--conformance-report", dest="conformance_report", metavar="PATH",
        help="Write the per-clause verdict to PATH: Markdown if it ends in .md, JSON otherwise.",
    )
    group.addoption(
        "--conformance-repro", dest="conformance_repro", metavar="DIR",
        help="Write a standalone Python script replaying each failure's calls into DIR.",
    )
    group.addoption(
        "--conformance-baseline", dest="conformance_baseline", metavar="FILE",
        help="Known failures: lines 'CLAUSE: reason'; listed clauses may fail, and one that passes fails the run as stale.",
    )


def _taken(parser: pytest.Parser) -> set[str]:
    names: set[str] = set()
    for group in getattr(parser, "_groups", []):
        for option in getattr(group, "options", []):
            names.update(option.names())
    return names


def add_short_spellings(parser: pytest.Parser) -> list[str]:
    """Add ``--backend`` and friends unless a conftest defined them; return the ones skipped."""
    taken = _taken(parser)
    skipped = []
    group = parser.getgroup("conformance")
    for short, long, dest, extra in TARGET_OPTIONS:
        if short in taken:
            skipped.append(f"{short} (use {long})")
            continue
        group.addoption(short, dest=dest, **{**extra, "help": f"Short for {long}."})
    return skipped
