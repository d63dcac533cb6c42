"""Is a concurrent history linearizable with respect to a sequential model?

The search is Wing and Gong's, with Lowe's memoisation, as in Porcupine: the history's call
and return events, sorted by time, form a doubly linked list; the search repeatedly takes a
call that precedes the earliest remaining return, asks the model whether that call could
have taken effect now with the outcome it had, and if so removes the call and its return
from the list ("lifts" it) and goes on; when the earliest remaining return is reached with
nothing left to try it backtracks (undoes the last lift). A configuration (set of calls
taken, as a bitset int; model state) already explored is never explored again.

The model is any object with ``expect(state, op)`` returning an expectation with
``admits(outcome)`` and ``after`` (the KV and TaskStore models). States are interned to
small ints the first time they appear and each (state, call) step is asked of the model
once, so the hot loop touches only ints, lists, dicts and sets. A per-key partition of a
plain ``KVModel`` runs on ``_OneKey``, the same model restricted to one key with the record
as a ``(data, version)`` tuple (no dict copies, no JSON parsing per write).

Pruning, each sound and complete (tests/test_checker.py compares the verdicts with a plain
search and with brute force): a call whose outcome the model calls inert (it leaves every
state it is allowed from unchanged: a read, a refused write) and that fits is taken as the
only choice where it is a candidate, since it may go before every other candidate and
changes nothing wherever it goes; calls with unknown
outcomes that no call can tell apart are taken earliest-first (see ``_OneKey``); and an
unknown write whose data a read returned must have taken effect before that read returned.

Unknown outcomes (CC-7). A call whose outcome is UNKNOWN returns at +infinity: it stays a
candidate from its call onward and never forces a backtrack. When taken, it is consistent
with any outcome and moves the model to ``after``. It may also never be taken: the search
succeeds as soon as every call with a known outcome has been taken, which is exactly when
the earliest remaining return is one at +infinity (or none is left). So an unknown call that
never took effect does not block, and costs no extra branching: "dropped" is simply "never
chosen". An unknown call that would leave the state unchanged where it is tried (a read, a
delete of nothing) is never taken: taking it only adds to the set of calls taken, and every
continuation from there is open without it.

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
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conformance.checker.cheap import Anomaly, cheap_checks
from conformance.checker.history import NEVER, UNKNOWN, Entry, History, describe
from conformance.contract.backend import VersionedRecord
from conformance.contract.record import expires_at
from conformance.models import kv
from conformance.spec import ContractViolation

LINEARIZABLE = "linearizable"
VIOLATION = "violation"
UNDECIDED = "unknown"

#: How many search steps between two looks at the clock.
_CLOCK_EVERY = 1024


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


@dataclass
class _Outcome:
    status: bool | None  # True linearizable, False not, None out of time
    best: list[int]  # entry indices, in order: the longest consistent order found
    explored: int


#: ``transition(state, op) -> (admits, after)``: whether an outcome fits, and the state the call leaves
#: (or, where that depends on the outcome, a function from the outcome to the state).
Transition = Callable[[Any, Any], tuple[Callable[[Any], bool], Any]]


def _transition_of(model: Any) -> Transition:
    def transition(state: Any, op: Any) -> tuple[Callable[[Any], bool], Any]:
        expectation = model.expect(state, op)
        return expectation.admits, expectation.after

    return transition


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


def _search(
    entries: Sequence[Entry],
    transition: Transition,
    initial: Any,
    deadline: float,
    share: bool = True,
    classes: Sequence[Hashable | None] | None = None,
    returns: Sequence[float] | None = None,
    inert: Sequence[bool] | None = None,
    after_lower: Sequence[tuple[int, int]] | None = None,
) -> _Outcome:
    """Wing-Gong-Lowe over one partition. ``entries`` may be in any order.

    ``share``: ask ``transition`` once per (state, distinct operation) rather than per
    (state, call); worth it when the transition is dearer than hashing an operation.
    ``classes``: per entry, None or the class of interchangeable unknown calls it belongs to;
    of a class, only the earliest-called call not yet taken is ever tried (taking a later one
    instead reaches nothing more, since the earlier one stays a candidate just as long).
    ``returns``: per entry, the instant by which it must have taken effect, when that is earlier
    than its return (an unknown write whose data a read returned: see ``_read_by``).
    ``inert``: per entry, whether its outcome leaves every state it is allowed from unchanged
    (the model's ``inert``); only such calls are ever forced. None: no call is.
    ``after_lower``: per entry, ``(lower, enders)`` as bitsets of entries: it may not be taken
    while an entry ``j`` of ``lower`` is untaken, unless an entry of ``j``'s own ``enders`` is
    untaken too (see ``_version_order``). None: no such order.
    """
    n = len(entries)
    if n == 0:
        return _Outcome(True, [], 0)

    # Events sorted by time; an unknown call returns at +inf, after every known return.
    events: list[tuple[float, int, int, int]] = []  # (time, is_return, entry, tiebreak)
    for i, entry in enumerate(entries):
        end = entry.ret if returns is None else returns[i]
        if not entry.call < end:
            raise ValueError(f"a call must return after it is called: {entry!r} by {end}")
        events.append((entry.call, 0, i, i))
        events.append((end, 1, i, i))
    events.sort()
    head, tail = 0, 2 * n + 1
    size = 2 * n + 2
    nxt = list(range(1, size + 1))
    prv = list(range(-1, size - 1))
    match = [0] * size  # call node -> its return node; 0 for a return node or a sentinel
    ent = [0] * size
    open_end = [False] * size  # a return at +inf
    call_node = [0] * n
    for node, (_, is_return, i, _) in enumerate(events, start=1):
        ent[node] = i
        if is_return:
            match[call_node[i]] = node
            open_end[node] = events[node - 1][0] == NEVER
        else:
            call_node[i] = node
    nxt[tail] = tail
    klass = [0] * size  # call node -> its class of interchangeable calls (0: none)
    members: list[list[int]] = [[]]  # class -> its call nodes in call order
    if classes is not None:
        class_ids: dict[Hashable, int] = {}
        for node in range(1, tail):
            label = classes[ent[node]] if match[node] else None
            if label is not None:
                c = class_ids.setdefault(label, len(members))
                if c == len(members):
                    members.append([])
                members[c].append(node)
                klass[node] = c
    front = [0] * len(members)  # class -> how many of its calls are taken (always its first ones)

    forceable = [False] * size  # call node -> whether it may be taken as the only choice (inert)
    if inert is not None:
        for i in range(n):
            forceable[call_node[i]] = inert[i]
    bit = [0] * size  # call node -> its entry's bit
    for i in range(n):
        bit[call_node[i]] = 1 << i
    lower = [0] * size  # call node -> entries that must be taken before it (while none of their enders is pending)
    enders_of = [0] * n  # entry -> the calls that could end its record's life before it
    if after_lower is not None:
        for i in range(n):
            lower[call_node[i]], enders_of[i] = after_lower[i]
    outcomes = [e.outcome for e in entries]
    op_ids: dict[Any, int] = {}
    ops: list[Any] = []
    entry_op = []
    for e in entries:
        try:
            op_id = op_ids.setdefault(e.op, len(ops)) if share else len(ops)
        except TypeError:  # an unhashable operation: no sharing
            op_id = len(ops)
        if op_id == len(ops):
            ops.append(e.op)
        entry_op.append(op_id)
    n_ops = len(ops)

    states: list[Any] = [initial]
    interned: dict[Any, int] = {initial: 0}
    # sid * n_ops + op id -> (admits, after sid, or the successor when the state depends on the outcome)
    expectations: dict[int, tuple[Callable[[Any], bool], int, Callable[[Any], Any] | None]] = {}
    rows: list[dict[int, int]] = [{}]  # per state: call node -> next state, or -1 if the call does not fit there
    seen: list[set[int]] = [set()]  # per state: the sets of calls taken (bitsets) already explored with it

    def intern(after: Any) -> int:
        after_sid = interned.get(after, -1)
        if after_sid < 0:
            after_sid = len(states)
            states.append(after)
            interned[after] = after_sid
            rows.append({})
            seen.append(set())
        return after_sid

    def step(sid: int, node: int) -> int:
        i = ent[node]
        key = sid * n_ops + entry_op[i]
        known = expectations.get(key)
        if known is None:
            state = states[sid]
            admits, after = transition(state, ops[entry_op[i]])
            if callable(after):  # the state depends on the outcome (the version a write was handed)
                known = expectations[key] = (admits, -1, after)
            else:
                known = expectations[key] = (admits, sid if after is state else intern(after), None)
        admits, after_sid, successor = known
        outcome = outcomes[i]
        if outcome is not UNKNOWN and not admits(outcome):
            return -1
        if successor is not None:
            after = successor(outcome)
            after_sid = sid if after is states[sid] else intern(after)
        if outcome is UNKNOWN:
            # Taking an unknown call that changes nothing only adds to the set of calls taken:
            # never taking it reaches everything that would (it is never required), so skip it.
            return after_sid if after_sid != sid else -1
        return after_sid

    calls: list[int] = []  # call nodes lifted, in order
    sids: list[int] = []  # the state before each
    forced: list[bool] = []  # whether each was the only choice tried there (see below)
    sid = 0
    linearized = 0
    best: list[int] = []
    explored = 0  # lifts and backtracks
    node = nxt[head]
    clock = time.perf_counter
    row = rows[0]
    check_at = _CLOCK_EVERY
    # At each configuration the candidates are first scanned for an inert call (its outcome
    # leaves unchanged every state it is allowed from: a read, a refused write) that fits here.
    # Taking it first loses nothing: it may precede every other candidate in real time, and
    # wherever else it could go it changes nothing either. So it is taken as the only choice
    # there, and if the search fails after it, the configuration before it has failed too.
    # Reads then never multiply the orders tried. (A write that merely changes nothing *here*
    # is not inert: placed later it may change the state, so it is not forced.)
    scanning = True
    while True:
        ret = match[node]
        if ret:  # a call: try to take it now
            c = klass[node]
            if c and (scanning or members[c][front[c]] != node):
                node = nxt[node]  # unknown calls are never forced; and one of a class stands for the rest
                continue
            after = row.get(node)
            if after is None:
                after = row[node] = step(sid, node)
            if after < 0 or (scanning and (after != sid or not forceable[node])):
                node = nxt[node]
                continue
            pending_lower = lower[node] & ~linearized
            if pending_lower and _stranded(pending_lower, linearized, enders_of):
                node = nxt[node]
                continue
            taken = linearized | bit[node]
            explored_with = seen[after]
            if taken in explored_with:
                if scanning:  # forced here, and already failed after it: this configuration fails
                    ret = 0
                    node = tail  # fall through to backtracking below
                else:
                    node = nxt[node]
                    continue
            else:
                explored_with.add(taken)
                calls.append(node)
                sids.append(sid)
                forced.append(scanning)
                sid = after
                row = rows[sid]
                linearized = taken
                if c:
                    front[c] += 1
                # lift the call and its return out of the list
                p = prv[node]
                q = nxt[node]
                nxt[p] = q
                prv[q] = p
                p = prv[ret]
                q = nxt[ret]
                nxt[p] = q
                prv[q] = p
                node = nxt[head]
                scanning = True
                explored += 1
                if explored >= check_at:
                    check_at = explored + _CLOCK_EVERY
                    if clock() > deadline:
                        break
                continue
        elif scanning:  # no forced call here: try every candidate in turn
            if node == tail or open_end[node]:
                # everything taken, or only calls with unknown outcomes remain: those never took effect
                return _Outcome(True, [ent[c] for c in calls], explored)
            scanning = False
            node = nxt[head]
            continue
        # the earliest remaining return: nothing before it fits, so undo the last lift (and the
        # lifts it was forced by)
        if len(calls) > len(best):
            best = calls[:]
        while True:
            if not calls:
                return _Outcome(False, [ent[c] for c in best], explored)
            node = calls.pop()
            was_forced = forced.pop()
            sid = sids.pop()
            linearized ^= bit[node]
            c = klass[node]
            if c:
                front[c] -= 1
            ret = match[node]
            # unlift: the return first, then the call (reverse of lifting)
            nxt[prv[ret]] = ret
            prv[nxt[ret]] = ret
            nxt[prv[node]] = node
            prv[nxt[node]] = node
            explored += 1
            if not was_forced:
                break
        row = rows[sid]
        node = nxt[node]
        scanning = False
        if explored >= check_at:
            check_at = explored + _CLOCK_EVERY
            if clock() > deadline:
                break
    # out of time
    if len(calls) > len(best):
        best = calls[:]
    return _Outcome(None, [ent[c] for c in best], explored)


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

    def search(model: Any, key: Hashable | None, part: History) -> _Outcome:
        if (fast and groups is not None and _OneKey.usable(model, initial, key)
                and (partition is kv_key or all(kv_key(e.op) == key for e in part))):
            observed = frozenset(
                e.outcome.value.data for e in part
                if type(e.outcome) is kv.Returned and type(e.outcome.value) is VersionedRecord
            )
            one_key = _OneKey(model, initial, key, observed)
            classes = [one_key.interchangeable(e) for e in part]
            returns = _read_by(part, initial)
            return _search(part.entries, one_key.transition, one_key.initial, deadline, share=False,
                           classes=classes, returns=returns, inert=_inert(model, part),
                           after_lower=_version_order(model, part))
        returns = _read_by(part, initial) if isinstance(model, kv.KVModel) else None
        return _search(part.entries, _transition_of(model), initial, deadline, returns=returns, inert=_inert(model, part),
                       after_lower=_version_order(model, part))

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


def _stranded(pending: int, taken: int, enders_of: list[int]) -> bool:
    """Whether some pending lower-versioned write could no longer follow: none of its enders is pending."""
    while pending:
        low = pending & -pending
        if not enders_of[low.bit_length() - 1] & ~taken:
            return True
        pending ^= low
    return False


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
    """Per entry, the writes that must go before it: ``(lower, enders)`` bitsets for ``_search``.

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
    """Per call, whether the model calls its outcome inert (see ``_search``); None if the model cannot say."""
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
