"""Is a concurrent history linearizable with respect to a sequential model? The model-agnostic driver.

``check`` looks up the model's adapter (``registry.adapter_for``: partition key, default
clause, cheap checks, projection, narrower first search; see ``adapter.py``), runs the cheap
checks, splits the history by the partition key when every call names one key
(P-compositionality), and searches each part, smallest first, with ``search.search``; the
first part that fails is the smallest failing partition. A history with a call that names
no single key, or of a model without a partition key, is checked whole.

Budget. The search is exponential in the worst case. It stops at the deadline and the
verdict is "unknown": a failure to decide, reported as such (CC-8), never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from conformance.checker.adapter import KeyOf, ModelAdapter, Part, SequentialModel
from conformance.checker.cheap import Anomaly
from conformance.checker.history import Entry, History, describe
from conformance.checker.kv_model import kv_key
from conformance.checker.registry import adapter_for
from conformance.checker.search import SearchResult, search
from conformance.spec import ContractViolation

LINEARIZABLE = "linearizable"
VIOLATION = "violation"
UNDECIDED = "unknown"


@dataclass(frozen=True, eq=False)
class Verdict:
    """The checker's answer. ``status`` is ``linearizable``, ``violation`` or ``unknown`` (budget ran out).

    For a violation: ``partition`` is the smallest failing partition (one key's calls, or the
    whole history), ``key`` its key (None when checked whole), ``linearization`` the longest
    consistent order of its calls the search found, and ``blocked`` a call that could go next
    after it but did not fit the model. Anomalies found by the cheap checks come in ``anomalies``.
    An undecided verdict carries the partition it ran out of time on.
    """

    status: str
    explanation: str
    clause: str | None = None
    anomalies: tuple[Anomaly, ...] = ()
    partition: History | None = None
    key: Hashable | None = None
    linearization: tuple[Entry, ...] = ()
    blocked: Entry | None = None
    operations: int = 0
    partitions: int = 0
    decided: int = 0
    explored: int = 0
    elapsed: float = 0.0
    details: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True only for a decided pass; an undecided verdict is not ok."""
        return self.status == LINEARIZABLE

    def __bool__(self) -> bool:
        raise TypeError("a Verdict has three values: test verdict.ok, verdict.status, or call verdict.require()")

    def require(self) -> None:
        """Raise ContractViolation unless the history was decided linearizable (undecided fails, CC-8)."""
        if self.status != LINEARIZABLE:
            raise ContractViolation(self.clause or "CC-8", self.explanation)

    def __str__(self) -> str:
        return f"{self.status}: {self.explanation}"


def _where(key: Hashable | None) -> str:
    return "" if key is None else f" on key {key!r}"


def _explain_violation(
    part: History, key: Hashable | None, order: list[int], initial: Any, model: SequentialModel
) -> tuple[str, Entry | None]:
    """One line: how far a consistent order gets, the call that cannot go next, and what the model wanted of it.

    The blocked call is the unplaced call with a known outcome that returned first (every call
    that could go next fails there, this one included). What the model expected is shown at
    every point of the order found where real time allows the blocked call to sit.
    """
    entries = part.entries
    taken = set(order)
    remaining = [e for i, e in enumerate(entries) if i not in taken and not e.unknown]
    if not remaining:  # cannot happen for a failed search; be safe
        return f"{len(entries)} operations{_where(key)} have no consistent order", None
    blocked = min(remaining, key=lambda e: e.ret)
    placed = [entries[i] for i in order]
    states = [initial]
    for entry in placed:
        states.append(model.expect(states[-1], entry.op).then(entry.outcome))
    lo = max((n + 1 for n, e in enumerate(placed) if e.ret < blocked.call), default=0)
    hi = min((n for n, e in enumerate(placed) if e.call > blocked.ret), default=len(placed))
    wanted: dict[str, None] = {}
    clauses: dict[str, None] = {}
    fits_at: list[int] = []
    for position in range(lo, hi + 1) if lo <= hi else [len(placed)]:
        expectation = model.expect(states[position], blocked.op)
        if expectation.admits(blocked.outcome):
            fits_at.append(position)
            continue
        wanted[describe(expectation)] = None
        clauses[getattr(expectation, "clause", "") or "?"] = None
    options = list(wanted)
    cited = f" ({', '.join(clauses)})" if clauses and "?" not in clauses else ""
    shown = options[:4] + ([f"{len(options) - 4} more"] if len(options) > 4 else [])
    if fits_at:
        # Its outcome fits somewhere, so the conflict lies later: placed there, it strands other calls.
        first = "at its start" if fits_at[0] == 0 else f"after call {fits_at[0]}"
        points = first if len(fits_at) == 1 else f"{first} or up to {len(fits_at) - 1} calls later"
        expects = f"which fits only {points} of that order, and from there the remaining calls cannot be ordered"
        if shown:
            expects += f"; at the other points real time allows, the model expects {', or '.join(shown)}{cited}"
    elif len(options) == 1:
        expects = f"where the model expects {options[0]}{cited}"
    else:
        expects = f"where, at the points of that order real time allows, the model expects {', or '.join(shown)}{cited}"
    line = (
        f"no order of the {len(entries)} operations{_where(key)} fits the model: the longest consistent order found "
        f"places {len(order)}; client {blocked.client}'s {describe(blocked.op)} [{blocked.span()}] "
        f"{describe(blocked.outcome)}, {expects}"
    )
    return line, blocked


def check(
    history: History,
    model: SequentialModel,
    *,
    initial: Any = None,
    budget: float = 5.0,
    partition: KeyOf | Literal["model"] | None = "model",
    cheap: bool = True,
    clause: str | None = None,
    fast: bool = True,
) -> Verdict:
    """Decide whether ``history`` is linearizable with respect to ``model`` within ``budget`` seconds.

    ``initial`` is the state before the first call (``model.initial()`` by default).
    ``partition`` maps an operation to the single key it touches (None: it touches several);
    ``"model"`` (the default) takes the model's own partition key (``kv_key`` for the KV model,
    none for the task model); pass None to always check the history whole. ``cheap`` runs the
    model's linear-time anomaly checks first (KV histories). ``clause`` names the clause a
    violation breaks (the model's: CC-1 for a backend, CC-2 for a task store, by default).
    ``fast`` lets the model's projection use a quicker form of the model (the KV model on one
    key: states are tuples) with the same verdicts.
    """
    started = time.perf_counter()
    deadline = started + budget
    adapter: ModelAdapter[Any] = adapter_for(model)
    if initial is None:
        initial = model.initial()
    clause = clause or adapter.clause
    key_of = adapter.partition if partition == "model" else partition
    groups = history.partition(key_of) if key_of is not None else None
    parts: list[tuple[Hashable | None, History]] = (
        sorted(groups.items(), key=lambda item: len(item[1])) if groups is not None else [(None, history)]
    )
    operations, n_parts = len(history), len(parts)

    if cheap and adapter.cheap is not None:
        anomalies = tuple(adapter.cheap(history, model, initial))
        if anomalies:
            first = anomalies[0]
            key = adapter.partition(first.entries[0].op) if adapter.partition is not None else None
            group = groups.get(key) if groups is not None and key is not None else None
            more = f" (and {len(anomalies) - 1} more anomalies)" if len(anomalies) > 1 else ""
            return Verdict(
                VIOLATION, first.message + more, first.clause, anomalies,
                partition=group if group is not None else History(first.entries), key=key,
                operations=operations, partitions=n_parts,
                elapsed=time.perf_counter() - started, details=tuple(str(a) for a in anomalies),
            )

    exact = key_of is adapter.partition
    explored = 0

    def run(searched: Any, part: Part) -> SearchResult:
        problem = adapter.project(searched, initial, part, fast)
        return search(part.history.entries, problem.transitions, problem.initial, deadline, problem.pruning)

    for decided, (key, entries) in enumerate(parts):
        if time.perf_counter() > deadline:
            return _undecided(key, entries, decided, explored, started, budget, operations, n_parts, [])
        part = Part(key, entries, exact)
        result = None
        narrowing = adapter.narrower(model, initial, entries) if adapter.narrower is not None else None
        if narrowing is not None:
            first_try = run(narrowing.model, part)
            explored += first_try.explored
            if first_try.status is True:
                continue
            if first_try.status is False and narrowing.final:
                result = first_try
        if result is None:
            result = run(model, part)
            explored += result.explored
        if result.status is None:
            return _undecided(key, entries, decided, explored, started, budget, operations, n_parts, result.best)
        if result.status is False:
            line, blocked = _explain_violation(entries, key, result.best, initial, model)
            return Verdict(
                VIOLATION, line, clause, (), entries, key,
                tuple(entries.entries[i] for i in result.best), blocked,
                operations=operations, partitions=n_parts,
                decided=decided + 1, explored=explored, elapsed=time.perf_counter() - started,
            )
    where = (f" in {n_parts} per-key partition{'' if n_parts == 1 else 's'}" if groups is not None else " checked whole")
    return Verdict(
        LINEARIZABLE, f"{operations} operations are linearizable{where}", None,
        operations=operations, partitions=n_parts,
        decided=n_parts, explored=explored, elapsed=time.perf_counter() - started,
    )


def _undecided(
    key: Hashable | None, part: History, decided: int, explored: int, started: float, budget: float,
    operations: int, partitions: int, best: list[int],
) -> Verdict:
    clients = len(part.clients())
    line = (
        f"undecided: the search{_where(key)} ({len(part)} operations, {clients} clients) ran out of its "
        f"{budget:g} s budget after {explored} steps, with {decided} of {partitions} partitions decided "
        "linearizable; a failure to decide, not a pass"
    )
    return Verdict(
        UNDECIDED, line, "CC-8", (), part, key, tuple(part.entries[i] for i in best), None,
        operations=operations, partitions=partitions,
        decided=decided, explored=explored, elapsed=time.perf_counter() - started,
    )


__all__ = ["LINEARIZABLE", "UNDECIDED", "VIOLATION", "Verdict", "check", "kv_key"]
