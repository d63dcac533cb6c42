"""Known failures a team has agreed to carry: each clause with the reason it may fail.

Why a baseline and not a skip: a skipped test checks nothing, so the day the bug is fixed
nobody notices and the day it gets worse nobody notices either. A baselined clause still
runs; its failure is reported as known, and the day it passes the run fails as *stale*, so
the entry is removed and the fix is locked in. Capabilities still decide the oracle: a
baseline records debt against the rules as declared, it never changes them.

The file holds one ``CLAUSE: reason`` per line; blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from conformance import spec

_LINE = re.compile(r"^(?P<clause>[A-Z]+-\d+)\s*:\s*(?P<reason>.*?)\s*$")


class BaselineError(ValueError):
    """The baseline file cannot be used; the message is one line naming the file and the line."""


@dataclass(frozen=True)
class Baseline:
    """The clauses that may fail, each with its reason."""

    path: str
    reasons: dict[str, str]

    def covers(self, clauses: list[str]) -> bool:
        """Whether a failure naming ``clauses`` is known debt: it names some, all of them listed."""
        return bool(clauses) and all(c in self.reasons for c in clauses)

    def because(self, clauses: list[str]) -> str:
        return "; ".join(f"{c}: {self.reasons[c]}" for c in spec.unique(clauses))


def load(path: str) -> Baseline:
    """Read a baseline file; every problem is a one-line ``BaselineError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(f"--conformance-baseline={path}: cannot read it: {exc.strerror or exc}") from None
    known = spec.clauses()
    reasons: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"--conformance-baseline={path}, line {number}"
        match = _LINE.match(line)
        if match is None:
            raise BaselineError(f"{where}: expected 'CLAUSE: reason', got {line!r}")
        clause, reason = match.group("clause"), match.group("reason")
        if clause not in known:
            raise BaselineError(f"{where}: {clause} is no clause of SPEC.md")
        if not reason:
            raise BaselineError(f"{where}: {clause} needs a reason (why it may fail, and who fixes it)")
        if clause in reasons:
            raise BaselineError(f"{where}: {clause} is listed twice")
        reasons[clause] = reason
    return Baseline(path, reasons)
