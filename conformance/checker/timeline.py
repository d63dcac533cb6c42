"""Render a (small) history as a per-client timeline: text for the terminal, HTML for a report.

Time runs left to right on the history's logical clock, ranked (each distinct event time gets
the same width, so short and long gaps do not squash calls). A client whose calls overlap
(it moved on after an unknown outcome) gets a second row. Each call is a segment
``[n-----]`` from its call to its return, numbered in call order; a call whose outcome is
unknown runs off the right edge (``[n---->?``). Under the rows, a legend lists every call:
number, client, times, operation and outcome, and, given a verdict, the position the call
takes in the longest consistent order found, or a mark on the call that did not fit.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from conformance.checker.history import Entry, History, describe

#: Histories longer than this are cut to the calls nearest the failure.
DEFAULT_LIMIT = 24


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _chosen(history: History, verdict: Any, limit: int) -> tuple[list[Entry], str]:
    """The calls to draw, and a note if some were left out."""
    source = history
    if verdict is not None and getattr(verdict, "partition", None) is not None and len(history) > limit:
        source = verdict.partition
    entries = list(source)
    if len(entries) <= limit:
        return entries, ""
    focus = getattr(verdict, "blocked", None) if verdict is not None else None
    if focus is None and verdict is not None and bool(getattr(verdict, "anomalies", ())):
        focus = verdict.anomalies[0].entries[0]
    if focus is not None and focus.ret != float("inf"):
        before = [e for e in entries if e.call < focus.ret and e is not focus]
        kept = before[-(limit - 1):] + [focus]
    else:
        kept = entries[:limit]
    kept.sort(key=lambda e: e.call)
    return kept, f"(showing {len(kept)} of {len(entries)} calls)"


def _marks(verdict: Any) -> tuple[dict[int, int], set[int]]:
    """Entry id -> place in the longest consistent order; ids of calls that break the model."""
    if verdict is None:
        return {}, set()
    order = {id(e): place for place, e in enumerate(getattr(verdict, "linearization", ()), start=1)}
    bad: set[int] = set()
    if getattr(verdict, "blocked", None) is not None:
        bad.add(id(verdict.blocked))
    for anomaly in getattr(verdict, "anomalies", ())[:1]:
        bad.update(id(e) for e in anomaly.entries)
    return order, bad


class _Layout:
    """Columns for event times, and lanes per client (a client's calls overlap after an unknown outcome)."""

    def __init__(self, entries: Sequence[Entry], step: int) -> None:
        times = sorted({t for e in entries for t in (e.call, e.ret) if t != float("inf")})
        self.column = {t: i * step for i, t in enumerate(times)}
        self.right = (len(times) - 1) * step + step + 2 if times else 4
        self.lanes: list[tuple[int, list[tuple[int, int, Entry]]]] = []  # (client, [(start, end, entry)])
        for entry in entries:
            start = self.column[entry.call]
            end = self.right if entry.unknown else self.column[entry.ret]
            for client, lane in self.lanes:
                if client == entry.client and all(end < s - 1 or start > e + 1 for s, e, _ in lane):
                    lane.append((start, end, entry))
                    break
            else:
                self.lanes.append((entry.client, [(start, end, entry)]))
        self.lanes.sort(key=lambda item: item[0])


def to_text(history: History, verdict: Any = None, *, width: int = 100, limit: int = DEFAULT_LIMIT, heading: bool = True) -> str:
    """A terminal timeline of ``history`` (or of the verdict's failing partition when the history is long).

    ``heading=False`` leaves out the verdict's own line, for a caller that has already shown it.
    """
    entries, note = _chosen(history, verdict, limit)
    if not entries:
        return "(empty history)"
    number = {id(e): n for n, e in enumerate(entries, start=1)}
    order, bad = _marks(verdict)
    events = len({t for e in entries for t in (e.call, e.ret) if t != float("inf")})
    step = max(3, min(8, (width - 12) // max(events, 1)))
    layout = _Layout(entries, step)
    lines = []
    if verdict is not None and heading:
        lines.append(f"{verdict.status}: {verdict.explanation}")
    if note:
        lines.append(note)
    for client, lane in layout.lanes:
        row = [" "] * (layout.right + 3)
        for start, end, entry in lane:
            fill = "!" if id(entry) in bad else "-"
            for col in range(start, end + 1):
                row[col] = fill
            row[start] = "["
            if entry.unknown:
                row[end] = ">"
                row[end + 1] = "?"
            else:
                row[end] = "]"
            label = str(number[id(entry)])
            if start + len(label) < end:
                row[start + 1:start + 1 + len(label)] = label
        lines.append(f"{f'client {client}':>10} " + "".join(row).rstrip())
    lines.append("")
    for entry in entries:
        n = number[id(entry)]
        tail = ""
        if id(entry) in order:
            tail = f"  (linearized {_ordinal(order[id(entry)])})"
        if id(entry) in bad:
            tail += "  <-- does not fit" if verdict is not None and entry is getattr(verdict, "blocked", None) else "  <-- anomaly"
        who = f"client {entry.client}"
        lines.append(f"{n:>4}  {who:<10} {entry.span():<11} {describe(entry.op)} -> {describe(entry.outcome)}{tail}")
    return "\n".join(lines)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.1em}.verdict{font-family:monospace;white-space:pre-wrap;padding:.5em;border-radius:4px}
.linearizable{background:#e6f4ea}.violation{background:#fde7e9}.unknown{background:#fff4d6}
.timeline{position:relative;border-left:1px solid #ccc;margin:1em 0 1em 7em}
.row{position:relative;height:30px;border-bottom:1px dashed #eee}
.who{position:absolute;left:-7em;width:6.5em;text-align:right;top:7px;font-size:.85em;color:#555}
.op{position:absolute;top:4px;height:20px;box-sizing:border-box;border:1px solid #4a7;background:#dff3e4;
border-radius:3px;font-size:.75em;overflow:hidden;white-space:nowrap;padding:1px 3px}
.op.unk{border-style:dashed;border-color:#c90;background:linear-gradient(90deg,#fff1c9,#fff)}
.op.bad{border-color:#c22;background:#fbd0d4;font-weight:bold}
table{border-collapse:collapse;font-size:.85em}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
td.mono{font-family:monospace}tr.bad td{background:#fde7e9}
"""


def to_html(history: History, verdict: Any = None, *, limit: int = 200, title: str = "Concurrent history") -> str:
    """A self-contained HTML page (inline CSS, no scripts or external assets) drawing the timeline."""
    entries, note = _chosen(history, verdict, limit)
    number = {id(e): n for n, e in enumerate(entries, start=1)}
    order, bad = _marks(verdict)
    layout = _Layout(entries, 10)
    span = max(layout.right, 1)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    if verdict is not None:
        parts.append(f'<div class="verdict {esc(verdict.status)}">{esc(verdict.status)}: {esc(verdict.explanation)}</div>')
    if note:
        parts.append(f"<p>{esc(note)}</p>")
    parts.append('<div class="timeline">')
    for client, lane in layout.lanes:
        who = f"client {client}"
        parts.append(f'<div class="row"><span class="who">{esc(who)}</span>')
        for start, end, entry in lane:
            left = 100 * start / span
            right = 100.0 if entry.unknown else min(100.0, 100 * (end + 1) / span)
            classes = "op" + (" unk" if entry.unknown else "") + (" bad" if id(entry) in bad else "")
            text = f"{number[id(entry)]} {describe(entry.op)}"
            tip = entry.describe()
            parts.append(
                f'<div class="{classes}" style="left:{left:.2f}%;width:{max(right - left, 0.8):.2f}%" '
                f'title="{esc(tip)}">{esc(text)}</div>'
            )
        parts.append("</div>")
    parts.append("</div>")
    parts.append("<table><tr><th>#</th><th>client</th><th>times</th><th>operation</th><th>outcome</th><th>order</th></tr>")
    for entry in entries:
        place = order.get(id(entry))
        mark = _ordinal(place) if place else ""
        if id(entry) in bad:
            mark = (mark + " " if mark else "") + "does not fit"
        parts.append(
            f'<tr class="{"bad" if id(entry) in bad else ""}"><td>{number[id(entry)]}</td><td>{entry.client}</td>'
            f'<td class="mono">{esc(entry.span())}</td><td class="mono">{esc(describe(entry.op))}</td>'
            f'<td class="mono">{esc(describe(entry.outcome))}</td><td>{esc(mark)}</td></tr>'
        )
    parts.append("</table></body></html>")
    return "\n".join(parts)


__all__ = ["to_html", "to_text"]
