"""Is a concurrent history linearizable with respect to a sequential model?

The search itself (Wing and Gong's, with Lowe's memoisation) is ``search.search``, which
knows no model; this module feeds it. The model is any object with ``expect(state, op)``
returning an expectation with ``admits(outcome)`` and ``after`` (the KV and TaskStore
models). A per-key partition of a plain ``KVModel`` runs on ``_OneKey``, the same model
restricted to one key with the record as a ``(data, version)`` tuple (no dict copies, no
JSON parsing per write).

KV pruning tables handed to the search (``Pruning``), each sound and complete: calls with
unknown outcomes that no call can tell apart are taken earliest-first (see ``_OneKey``); an
unknown write whose data a read returned must have taken effect before that read returned
(``_read_by``); and a write handed a lower version went first (``_version_order``).

Partitioning. When every operation names a single key (KV ``get``, ``put``,
``put_if_version``, ``delete``) the history is linearizable if and only if each key's
sub-history is (P-compositionality), so keys are checked separately, smallest first; the
first that fails is the smallest failing partition. A history with a multi-key operation
(``list_by_prefix``, ``cleanup_expired``) or of another model is checked whole.

Budget. The search is exponential in the worst case. It stops at the deadline and the
verdict is "unknown": a failure to decide, reported as such (CC-8), never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from conformance.checker.cheap import Anomaly, cheap_checks
from conformance.checker.history import NEVER, Entry, History, describe
from conformance.checker.search import Pruning, SearchResult
from conformance.checker.search import search as run_search
from conformance.contract.backend import VersionedRecord
from conformance.contract.record import expires_at
from conformance.models import kv
from conformance.spec import ContractViolation

LINEARIZABLE = "linearizable"
VIOLATION = "violation"
UNDECIDED = "unknown"

def kv_key(op: Any) -> Hashable | None:
    """The single key a KV operation touches, or None (a listing, a cleanup, another model's operation)."""
    if isinstance(op, (kv.Get, kv.Put, kv.PutIfVersion, kv.Delete)):
        return op.key
    return None


def _default_clause(model: Any) -> str:
    from conformance.models.tasks import TaskModel

    return "CC-2" if isinstance(model, TaskModel) else "CC-1"


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


class _ByExpect:
    """A model's transitions through its ``expect``: the expectation's ``admits`` and ``after``."""

    def __init__(self, model: Any) -> None:
        self.expect = model.expect

    def transition(self, state: Any, op: Any) -> tuple[Callable[[Any], bool], Any]:
        expectation = self.expect(state, op)
        return expectation.admits, expectation.after



class _Unread:
    """Stands for the data of a write no read in the partition returned (its bytes cannot matter)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<unread {self.name} data>"


_UNREAD_LIVE = _Unread("live")
_UNREAD_EXPIRED = _Unread("expired")


class _OneKey:
    """KVModel restricted to the calls on one key, with the record as a plain tuple.

    A state is None (no record) or ``(data, version)``; the clock (``initial.now``) never moves
    within a history. Outcomes are built exactly as KVModel builds them, so ``admits`` agrees
    with KVModel's expectation (tests/test_checker.py compares the two on random programs).

    Given ``observed`` (every data a read in the partition returned), a write whose data no
    read returned stores a placeholder instead (live, or expired in a backend that hides
    expired records): no call of the partition can tell such data apart, so states that differ
    only in it are one state, and orders of such writes collapse in the memo. Unknown calls
    that no call can tell apart (unread puts; unread compare-and-swaps from one version;
    deletes) are interchangeable: ``interchangeable`` gives them one class, and the search
    only ever takes the earliest-called pending call of a class.
    """

    def __init__(self, model: kv.KVModel, initial: kv.KVState, key: str, observed: frozenset[bytes] | None = None) -> None:
        self.model = model
        self.base = initial
        self.key = key
        self.hides = model.hides_expired
        self.stepwise = model.stepwise
        self.now = initial.now
        self.observed = observed
        stored = initial.records.get(key)
        self.initial = None if stored is None else (stored.data, stored.version)
        self._expired: dict[bytes, bool] = {}
        self._not_found = (kv.Raised("NotFoundError", key),).__contains__
        self._deleted = (kv.Returned(True),).__contains__
        self._absent = (kv.Returned(False),).__contains__

    @staticmethod
    def usable(model: Any, initial: Any, key: Any) -> bool:
        if type(model) is not kv.KVModel or type(initial) is not kv.KVState or not isinstance(key, str):
            return False
        stored = initial.records.get(key)
        return stored is None or stored.expires_at == expires_at(stored.data)

    def _gone(self, data: bytes) -> bool:
        gone = self._expired.get(data)
        if gone is None:
            deadline = expires_at(data)
            gone = self._expired[data] = deadline is not None and self.now > deadline
        return gone

    def _stored(self, data: bytes) -> Any:
        """What a state keeps of written data."""
        if self.observed is None or data in self.observed:
            return data
        return _UNREAD_EXPIRED if self.hides and self._gone(data) else _UNREAD_LIVE

    def _visible(self, state: tuple[Any, int] | None) -> tuple[Any, int] | None:
        if state is None or not self.hides:
            return state
        data = state[0]
        if data is _UNREAD_LIVE:
            return state
        if data is _UNREAD_EXPIRED or self._gone(data):
            return None
        return state

    def interchangeable(self, entry: Entry) -> Hashable | None:
        """The class of an unknown call no call in the partition can tell from the others of its class."""
        if not entry.unknown or self.observed is None:
            return None
        op = entry.op
        kind = type(op)
        if kind is kv.Get:
            return ("get",)
        if kind is kv.Delete:
            return ("delete",)
        stored = self._stored(op.data)
        if not isinstance(stored, _Unread):
            return None
        if kind is kv.Put:
            return ("put", stored.name)
        return ("cas", op.expected_version, stored.name)

    def _written(self, state: Any, data: bytes, floor: int) -> Callable[[Any], Any]:
        """The state a write leaves, by the version it was handed (unknown: only above ``floor``)."""
        stored = self._stored(data)
        unknown = floor + 1 if self.stepwise else kv.Unknown(floor)

        def successor(outcome: Any) -> Any:
            if type(outcome) is kv.Raised:
                return state
            return (stored, outcome.value if type(outcome) is kv.Returned else unknown)

        return successor

    def transition(self, state: Any, op: Any) -> tuple[Callable[[Any], bool], Any]:
        """KVModel.expect on one key, with the record as a tuple (tests/test_checker.py compares the two)."""
        record = self._visible(state)
        kind = type(op)
        if kind is kv.Get:
            if record is None:
                return self._not_found, state
            if type(record[1]) is kv.Unknown:
                return kv.RecordsLike(((self.key, record[0], record[1]),), single=True).matches, state
            return (kv.Returned(VersionedRecord(record[0], record[1])),).__contains__, state
        if kind is kv.Put:
            floor = 0 if record is None else kv.floor_of(record[1])
            return kv.NewVersion(floor, self.stepwise).matches, self._written(state, op.data, floor)
        if kind is kv.PutIfVersion:
            expected = op.expected_version
            if record is None:
                if expected >= 1:
                    return self._not_found, state
                created = kv.NewVersion(0, self.stepwise).matches
                return (lambda o: self._not_found(o) or created(o)), self._written(state, op.data, 0)
            version = record[1]
            if type(version) is kv.Unknown:
                conflict = kv.ConflictAt(self.key, expected, version.floor).matches
                won = kv.NewVersion(expected, self.stepwise).matches if version.admits(expected) else (lambda o: False)
                return (lambda o: conflict(o) or won(o)), self._written(state, op.data, max(expected, version.floor))
            if version != expected:
                return (kv.Raised("VersionConflictError", self.key, expected, version),).__contains__, state
            return kv.NewVersion(version, self.stepwise).matches, self._written(state, op.data, version)
        if kind is kv.Delete:
            return (self._absent if record is None else self._deleted), None
        raise TypeError(f"not a single-key KV operation: {op!r}")

    def state_of(self, state: tuple[bytes, int] | None) -> kv.KVState:
        """The KVState a tuple stands for (without ``observed``: placeholders have no bytes)."""
        if state is None:
            return self.base.without(self.key)
        return self.base.with_record(self.key, state[0], state[1])


def _read_by(part: History, initial: Any) -> list[float] | None:
    """Per entry, the instant by which it took effect: its return, or for an unknown write whose data a
    read returned, just before that read's return (None if no entry changes).

    Written data is unique, so if a read returned data only one write wrote (and the key did
    not hold it at the start), that write took effect, before the read did: the search may
    then treat it as returning just before the read, no longer as a call that may never happen.
    """
    writers: dict[tuple[str, bytes], list[Entry]] = {}
    for entry in part:
        if type(entry.op) in (kv.Put, kv.PutIfVersion):
            writers.setdefault((entry.op.key, entry.op.data), []).append(entry)
    seen_by: dict[int, float] = {}
    records = initial.records if isinstance(initial, kv.KVState) else {}
    for entry in part:
        outcome = entry.outcome
        if type(outcome) is not kv.Returned:
            continue
        if type(entry.op) is kv.Get and type(outcome.value) is VersionedRecord:
            seen = [(entry.op.key, outcome.value)]
        elif type(entry.op) is kv.ListByPrefix and type(outcome.value) is tuple:
            seen = [item for item in outcome.value if type(item) is tuple and len(item) == 2
                    and type(item[1]) is VersionedRecord]
        else:
            continue
        for key, record in seen:
            sources = writers.get((key, record.data), ())
            stored = records.get(key)
            if len(sources) != 1 or not sources[0].unknown or (stored is not None and stored.data == record.data):
                continue
            if sources[0].call > entry.ret:
                continue  # a read from the future: no order fits, and the search finds that unaided
            source = id(sources[0])
            seen_by[source] = min(seen_by.get(source, NEVER), entry.ret - 0.5)
    if not seen_by:
        return None
    return [seen_by.get(id(e), e.ret) for e in part]


def _where(key: Hashable | None) -> str:
    return "" if key is None else f" on key {key!r}"


def _explain_violation(
    part: History, key: Hashable | None, order: list[int], initial: Any, model: Any
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
    model: Any,
    *,
    initial: Any = None,
    budget: float = 5.0,
    partition: Callable[[Any], Hashable | None] | None = kv_key,
    cheap: bool = True,
    clause: str | None = None,
    fast: bool = True,
) -> Verdict:
    """Decide whether ``history`` is linearizable with respect to ``model`` within ``budget`` seconds.

    ``initial`` is the state before the first call (``model.initial()`` by default).
    ``partition`` maps an operation to the single key it touches (None: it touches several);
    pass None to always check the history whole. ``cheap`` runs the linear-time anomaly
    checks first (KV histories). ``clause`` names the clause a violation breaks (CC-1 for a
    backend, CC-2 for a task store by default). ``fast`` lets a per-key partition of a plain
    KVModel run on a one-key copy of the model whose states are tuples (same verdicts, faster).
    """
    started = time.perf_counter()
    deadline = started + budget
    if initial is None:
        initial = model.initial()
    clause = clause or _default_clause(model)
    groups = history.partition(partition) if partition is not None else None
    parts: list[tuple[Hashable | None, History]] = (
        sorted(groups.items(), key=lambda item: len(item[1])) if groups is not None else [(None, history)]
    )
    common = {"operations": len(history), "partitions": len(parts)}

    if cheap:
        anomalies = tuple(cheap_checks(history, initial if isinstance(initial, kv.KVState) else None,
                                       getattr(model, "hides_expired", True)))
        if anomalies:
            first = anomalies[0]
            key = kv_key(first.entries[0].op)
            part = groups.get(key) if groups is not None and key is not None else None
            more = f" (and {len(anomalies) - 1} more anomalies)" if len(anomalies) > 1 else ""
            return Verdict(
                VIOLATION, first.message + more, first.clause, anomalies,
                partition=part if part is not None else History(first.entries), key=key,
                elapsed=time.perf_counter() - started, details=tuple(str(a) for a in anomalies), **common,
            )

    explored = 0

    def search(model: Any, key: Hashable | None, part: History) -> SearchResult:
        if (fast and groups is not None and _OneKey.usable(model, initial, key)
                and (partition is kv_key or all(kv_key(e.op) == key for e in part))):
            observed = frozenset(
                e.outcome.value.data for e in part
                if type(e.outcome) is kv.Returned and type(e.outcome.value) is VersionedRecord
            )
            one_key = _OneKey(model, initial, key, observed)
            classes = [one_key.interchangeable(e) for e in part]
            returns = _read_by(part, initial)
            pruning = Pruning(classes=classes, returns=returns, inert=_inert(model, part),
                              precedence=_version_order(model, part), share=False)
            return run_search(part.entries, one_key, one_key.initial, deadline, pruning)
        returns = _read_by(part, initial) if isinstance(model, kv.KVModel) else None
        pruning = Pruning(returns=returns, inert=_inert(model, part), precedence=_version_order(model, part))
        return run_search(part.entries, _ByExpect(model), initial, deadline, pruning)

    for decided, (key, part) in enumerate(parts):
        if time.perf_counter() > deadline:
            return _undecided(key, part, decided, explored, started, budget, parts, [], common)
        result = None
        if _steps_by_one(model, part, initial):
            # Versions that rise by one fix where each write goes, so this narrower search is fast;
            # an order it finds is an order the contract allows. Only if it finds none is the
            # contract's wider "any rise" searched, unless nothing could have broken a record's
            # run of versions (no delete, cleanup, unknown write or hidden expiry): then the
            # versions seen are the only ones any order can give, and the narrow verdict is final.
            first = search(model.stepwise_twin(), key, part)
            explored += first.explored
            if first.status is True:
                continue
            if first.status is False and _one_run_of_versions(model, part):
                result = first
        if result is None:
            result = search(model, key, part)
            explored += result.explored
        if result.status is None:
            return _undecided(key, part, decided, explored, started, budget, parts, result.best, common)
        if result.status is False:
            line, blocked = _explain_violation(part, key, result.best, initial, model)
            return Verdict(
                VIOLATION, line, clause, (), part, key,
                tuple(part.entries[i] for i in result.best), blocked,
                decided=decided + 1, explored=explored, elapsed=time.perf_counter() - started, **common,
            )
    where = (f" in {len(parts)} per-key partition{'' if len(parts) == 1 else 's'}" if groups is not None else " checked whole")
    return Verdict(
        LINEARIZABLE, f"{len(history)} operations are linearizable{where}", None,
        decided=len(parts), explored=explored, elapsed=time.perf_counter() - started, **common,
    )


def _steps_by_one(model: Any, part: History, initial: Any) -> bool:
    """Whether the versions a KV history shows could all be steps of one from 1 (the stepwise search may pass it).

    A write handed a version ``v > 1`` whose key shows no ``v - 1`` (handed to a write, read, or held
    at the start) and no write of unknown outcome that could have been handed it, steps further.
    """
    if type(model) is not kv.KVModel or model.stepwise:
        return False
    seen: dict[str, set[int]] = {}
    unknown: set[str] = set()
    handed: list[tuple[str, int]] = []
    records = initial.records if isinstance(initial, kv.KVState) else {}
    for key, stored in records.items():
        if type(stored.version) is int:
            seen.setdefault(key, set()).add(stored.version)
    for entry in part:
        op, outcome = entry.op, entry.outcome
        if type(op) in (kv.Put, kv.PutIfVersion):
            if entry.unknown:
                unknown.add(op.key)
            elif type(outcome) is kv.Returned and type(outcome.value) is int:
                handed.append((op.key, outcome.value))
                seen.setdefault(op.key, set()).add(outcome.value)
        if type(outcome) is kv.Returned:
            if type(op) is kv.Get and type(outcome.value) is VersionedRecord:
                seen.setdefault(op.key, set()).add(outcome.value.version)
            elif type(op) is kv.ListByPrefix and type(outcome.value) is tuple:
                for item in outcome.value:
                    if type(item) is tuple and len(item) == 2 and type(item[1]) is VersionedRecord:
                        seen.setdefault(item[0], set()).add(item[1].version)
    return all(v == 1 or key in unknown or v - 1 in seen.get(key, ()) for key, v in handed)


def _one_run_of_versions(model: Any, part: History) -> bool:
    """Whether each key's versions in the history form one unbroken run: nothing deleted, cleaned up,
    hidden by expiry, or written with an unknown outcome, so no version went unseen."""
    if model.hides_expired:
        return False
    for entry in part:
        kind = type(entry.op)
        if kind in (kv.Delete, kv.CleanupExpired) or (kind in (kv.Put, kv.PutIfVersion) and entry.unknown):
            return False
        if kind is kv.PutIfVersion and entry.op.expected_version < 1:
            return False  # may create a record, at any version
    return True


def _version_order(model: Any, part: History) -> list[tuple[int, int]] | None:
    """Per entry, the writes that must go before it: ``(lower, enders)`` bitsets (``Pruning.precedence``).

    Versions only rise while a record lives (BK-6), so of two successful writes on one key, the
    one handed the lower version took effect first, unless the record's life ended between them
    (a delete or a cleanup, after which a version may start low again). So a write may not be
    taken while a write of its key with a lower version is untaken and nothing that could end
    the record's life is. Sound, and it gives the search back the order exact versions gave it,
    whatever steps the backend's versions take. None where a record's life may end unseen (a
    backend that hides expired records) or the model is not the KV one.
    """
    if type(model) is not kv.KVModel or model.hides_expired:
        return None
    writes: dict[str, list[tuple[int, int]]] = {}  # key -> (version, entry index)
    ends: dict[str | None, list[int]] = {}  # key (None: every key) -> calls that may end a record's life
    entries = part.entries
    for i, entry in enumerate(entries):
        op, outcome = entry.op, entry.outcome
        kind = type(op)
        if kind in (kv.Put, kv.PutIfVersion) and type(outcome) is kv.Returned and type(outcome.value) is int:
            writes.setdefault(op.key, []).append((outcome.value, i))
        elif kind is kv.Delete and not (type(outcome) is kv.Returned and outcome.value is False):
            ends.setdefault(op.key, []).append(i)
        elif kind is kv.CleanupExpired:
            ends.setdefault(None, []).append(i)
    if not writes:
        return None
    order = [(0, 0)] * len(entries)
    for key, handed in writes.items():
        handed.sort()
        enders = ends.get(key, []) + ends.get(None, [])
        below = 0  # the writes handed a version lower than the current group's
        n = 0
        while n < len(handed):
            version = handed[n][0]
            group = 0
            while n < len(handed) and handed[n][0] == version:
                i = handed[n][1]
                group |= 1 << i
                # Only an ender called before this write returned can come between it and a later one.
                own = sum(1 << e for e in enders if entries[e].call < entries[i].ret)
                order[i] = (below, own)
                n += 1
            below |= group
    return order


def _inert(model: Any, part: History) -> list[bool] | None:
    """Per call, whether the model calls its outcome inert (see ``Pruning``); None if the model cannot say."""
    inert = getattr(model, "inert", None)
    if inert is None:
        return None
    return [not e.unknown and inert(e.op, e.outcome) for e in part]


def _undecided(
    key: Hashable | None, part: History, decided: int, explored: int, started: float, budget: float,
    parts: list[tuple[Hashable | None, History]], best: list[int], common: dict[str, int],
) -> Verdict:
    clients = len(part.clients())
    line = (
        f"undecided: the search{_where(key)} ({len(part)} operations, {clients} clients) ran out of its "
        f"{budget:g} s budget after {explored} steps, with {decided} of {len(parts)} partitions decided "
        "linearizable; a failure to decide, not a pass"
    )
    return Verdict(
        UNDECIDED, line, "CC-8", (), part, key, tuple(part.entries[i] for i in best), None,
        decided=decided, explored=explored, elapsed=time.perf_counter() - started, **common,
    )


__all__ = ["LINEARIZABLE", "UNDECIDED", "VIOLATION", "Verdict", "check", "kv_key"]
