"""The verdict as Markdown: what a pull request, a CI summary page or a ticket shows.

Rendered from the same verdict the JSON report holds, so the two never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: How each clause status is shown, in a table a reader scans for red.
MARKS = {
    "met": "met",
    "violated": "**VIOLATED**",
    "known failure": "known failure (baseline)",
    "stale baseline": "**STALE BASELINE** (passes now)",
    "skipped": "skipped",
    "not run": "not run",
    "reference only": "reference only",
}


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(verdict: dict[str, Any]) -> str:
    """The whole report: headline, every clause's verdict, then each failure with its calls and reproduction."""
    lines = [
        f"# Conformance verdict: {verdict['verdict'].upper()}",
        "",
        f"- target: `{verdict['target']}` ({verdict['kind']}) on {', '.join(verdict['loops'])}",
    ]
    if verdict.get("replay"):
        lines.append(f"- replay: `{verdict['replay']}`")
    if verdict["calls"]:
        lines.append("- calls made: " + ", ".join(f"{n:,} {c}" for c, n in verdict["calls"].items()))
    lines.append("- clauses: " + ", ".join(f"{n} {status}" for status, n in verdict["counts"].items()))
    lines += ["", "| clause | level | verdict | rule |", "|---|---|---|---|"]
    for clause_id, clause in verdict["clauses"].items():
        lines.append(f"| {clause_id} | {clause['level'] or ''} | {MARKS.get(clause['status'], clause['status'])} | {_cell(clause['title'] or '')} |")
    failures = [(nodeid, test) for nodeid, test in verdict["tests"].items() if test["outcome"] in ("failed", "known failure")]
    if failures:
        lines += ["", "## Failures"]
    for nodeid, test in failures:
        evidence = test.get("evidence") or {}
        lines += ["", f"### `{nodeid}`", "", f"violates {', '.join(test['violated']) or 'no clause it names'}"
                  + (" (known failure, baseline)" if test["outcome"] == "known failure" else "")]
        if evidence.get("failing_calls"):
            lines += ["", "```", *evidence["failing_calls"], "```"]
        if evidence.get("reproduction"):
            lines += ["", f"Reproduce: `python {evidence['reproduction']}`"]
    if verdict.get("stale"):
        lines += ["", "## Stale baseline entries", ""]
        lines += [f"- {clause}: now met; remove it from the baseline" for clause in verdict["stale"]]
    return "\n".join(lines) + "\n"


def write(path: Path, verdict: dict[str, Any]) -> None:
    """Write the verdict to ``path``: Markdown if it ends in ``.md``, JSON otherwise (the one format rule, kept here)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render(verdict) if path.suffix.lower() == ".md" else json.dumps(verdict, indent=2, sort_keys=True)
    path.write_text(text, encoding="utf-8")
