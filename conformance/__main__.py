"""``python -m conformance check TARGET`` (also the ``conformance`` command): the kit without writing a pytest line.

It runs the same pytest plugin and suite, prints the clause table, writes the reports, and
exits 1 only when the target breaks a MUST clause (or the run checked nothing, or a
baseline entry went stale): a SHOULD failure is reported, not fatal, as SPEC.md's levels say.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from conformance.report import markdown

#: Written when no ``--report`` is given: the verdict for machines, and for people.
DEFAULT_REPORTS = ("conformance-report.json", "conformance-report.md")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="conformance", description="Check a task-storage backend or task store against SPEC.md.")
    commands = top.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="run the kit against TARGET and report per clause",
                                description="Run the conformance kit against TARGET; extra pytest arguments follow '--'.")
    check.add_argument("target", metavar="TARGET", help="MODULE:ATTR of the factory (or, with --command, the command to start)")
    check.add_argument("--store", action="store_true", help="TARGET is a whole TaskStore, not a StorageBackend")
    check.add_argument("--command", action="store_true", help="TARGET is a command serving the wire protocol (any language)")
    check.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="keyword argument for the factory (repeatable)")
    check.add_argument("--report", action="append", metavar="PATH",
                       help=f"write the verdict here, Markdown if it ends in .md, else JSON (repeatable; default: {', '.join(DEFAULT_REPORTS)})")
    check.add_argument("--baseline", metavar="FILE", help="known failures, one 'CLAUSE: reason' per line")
    check.add_argument("--repro", metavar="DIR", help="write a reproduction script per failure into DIR")
    check.add_argument("--profile", help="smoke, ci (default) or thorough")
    check.add_argument("--loop", choices=["asyncio", "trio", "all"], help="event loop(s) to run on")
    check.epilog = "More pytest arguments go after '--', e.g. -- -x -n 2"
    return top


def pytest_arguments(args: argparse.Namespace, report: str, extra: list[str]) -> list[str]:
    """The pytest command line the kit runs for ``args``, its verdict written as JSON to ``report``."""
    kind = "store" if args.store else "backend"
    flag = f"--conformance-{kind}-command" if args.command else f"--conformance-{kind}"
    argv = [f"{flag}={args.target}", f"--conformance-report={report}", "-p", "no:cacheprovider"]
    argv += [f"--conformance-{kind}-option={pair}" for pair in args.option]
    for name in ("baseline", "repro", "profile", "loop"):
        value = getattr(args, name)
        if value:
            argv.append(f"--conformance-{name}={value}")
    return argv + extra


def exit_status(verdict: dict[str, Any]) -> int:
    """1 if a MUST clause is violated, a baseline entry is stale or nothing ran; else 0."""
    musts = [c for c in verdict["violated"] if verdict["clauses"][c]["level"] in ("MUST", None)]
    return 1 if musts or verdict.get("stale") or not verdict["executed"] else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ours, extra = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    args = parser().parse_args(ours)
    reports = args.report or list(DEFAULT_REPORTS)
    with tempfile.TemporaryDirectory() as scratch:
        raw = Path(scratch) / "verdict.json"
        code = pytest.main(pytest_arguments(args, str(raw), extra))
        if not raw.exists():  # a usage error, or pytest stopped before the kit did anything
            return int(code) or 2
        verdict = json.loads(raw.read_text(encoding="utf-8"))
    for path in map(Path, reports):
        markdown.write(path, verdict)
        print(f"conformance: wrote {path}")
    status = exit_status(verdict)
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(code)  # interrupted, an internal error: never reported as a pass
    return status


if __name__ == "__main__":
    sys.exit(main())
