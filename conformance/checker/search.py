"""Is one part of a history linearizable? The search, knowing no model.

The search is Wing and Gong's, with Lowe's memoisation, as in Porcupine: the history's call
and return events, sorted by time, form a doubly linked list; the search repeatedly takes a
call that precedes the earliest remaining return, asks the model whether that call could
have taken effect now with the outcome it had, and if so removes the call and its return
from the list ("lifts" it) and goes on; when the earliest remaining return is reached with
nothing left to try it backtracks (undoes the last lift). A configuration (set of calls
taken, as a bitset int; model state) already explored is never explored again.

All the search asks of a model is ``transition(state, op)`` (``Transitions``): whether an
outcome fits, and the state the call leaves. States are interned to small ints the first
time they appear and each (state, call) step is asked once, so the hot loop touches only
ints, lists, dicts and sets. What a model knows beyond that reaches the search as per-entry
tables (``Pruning``), each sound and complete, which the caller builds from the model.

Unknown outcomes (CC-7). A call whose outcome is UNKNOWN returns at +infinity: it stays a
candidate from its call onward and never forces a backtrack. When taken, it is consistent
with any outcome and moves the model to ``after``. It may also never be taken: the search
succeeds as soon as every call with a known outcome has been taken, which is exactly when
the earliest remaining return is one at +infinity (or none is left). So an unknown call that
never took effect does not block, and costs no extra branching: "dropped" is simply "never
chosen". An unknown call that would leave the state unchanged where it is tried (a read, a
delete of nothing) is never taken: taking it only adds to the set of calls taken, and every
continuation from there is open without it.

Budget. The search is exponential in the worst case. It stops at the deadline and says so
(status None): a failure to decide, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Generic, Protocol, TypeVar

from conformance.checker.history import NEVER, UNKNOWN, Entry

#: How many search steps between two looks at the clock.
CLOCK_EVERY = 1024

S = TypeVar("S")

#: Whether an outcome fits a call made from some state.
Admits = Callable[[Any], bool]


class Transitions(Protocol[S]):
    """The one thing the search asks of a model: what a call may do from a state, and where it leads."""

    def transition(self, state: S, op: Any) -> tuple[Admits, S | Callable[[Any], S]]:
        """``(admits, after)``: whether an outcome fits, and the state the call leaves (or, where that
        depends on the outcome, a function from the outcome to the state). States must be hashable;
        returning ``state`` itself for a call that changes nothing spares the search a lookup."""
        ...


@dataclass(frozen=True)
class Pruning:
    """Per-entry facts a model knows about one part, which let the search try fewer orders.

    Each table is indexed like the entries handed to ``search``; None means "no such facts".
    Every one is sound and complete (tests/test_checker.py compares verdicts with a plain
    search and with brute force):

    ``classes``: the class of interchangeable unknown calls an entry belongs to, or None. Of a
    class only the earliest-called call not yet taken is ever tried (taking a later one instead
    reaches nothing more, since the earlier one stays a candidate just as long).
    ``returns``: the instant by which an entry must have taken effect, when that is earlier than
    its return (an unknown write whose data a read returned).
    ``inert``: whether an entry's outcome leaves every state it is allowed from unchanged (a
    read, a refusal). Such a call that fits is taken as the only choice where it is a
    candidate: it may go before every other candidate and changes nothing wherever it goes.
    Only inert calls are ever forced.
    ``precedence``: per entry ``(lower, enders)``, as bitsets of entries: it may not be taken
    while an entry ``j`` of ``lower`` is untaken, unless an entry of ``j``'s own ``enders`` is
    untaken too (for the KV model: versions rise while a record lives).
    ``share``: ask the model once per (state, distinct operation) rather than per (state, call);
    worth it when a transition is dearer than hashing an operation.
    """

    classes: Sequence[Hashable | None] | None = None
    returns: Sequence[float] | None = None
    inert: Sequence[bool] | None = None
    precedence: Sequence[tuple[int, int]] | None = None
    share: bool = True


NO_PRUNING = Pruning()


@dataclass
class SearchResult:
    """What one search found: ``status`` True (linearizable), False (not) or None (out of time);
    ``best`` the entry indices of the longest consistent order found; ``explored`` lifts and backtracks."""

    status: bool | None
    best: list[int]
    explored: int


class _Tables:
    """The search's per-entry and per-node tables, built once per part before the hot loop.

    Nodes are the events sorted by time (0 the head, ``tail`` the tail): a call node and its
    return node per entry; an unknown call returns at +inf, after every known return. They are
    linked twice: ``nxt``/``prv`` hold every candidate, ``snxt``/``sprv`` only the calls that may
    be forced and the returns. A lift takes a call and its return out of both; backtracking
    puts them back in the reverse order, so both lists stay sorted by time.
    """

    def __init__(self, entries: Sequence[Entry], pruning: Pruning) -> None:
        n = len(entries)
        returns = pruning.returns
        events: list[tuple[float, int, int, int]] = []  # (time, is_return, entry, tiebreak)
        for i, entry in enumerate(entries):
            end = entry.ret if returns is None else returns[i]
            if not entry.call < end:
                raise ValueError(f"a call must return after it is called: {entry!r} by {end}")
            events.append((entry.call, 0, i, i))
            events.append((end, 1, i, i))
        events.sort()
        self.tail = tail = 2 * n + 1
        size = 2 * n + 2
        self.nxt = nxt = list(range(1, size + 1))
        self.prv = prv = list(range(-1, size - 1))
        nxt[tail] = tail
        self.match = match = [0] * size  # call node -> its return node; 0 for a return node or a sentinel
        self.ent = ent = [0] * size
        self.open_end = open_end = [False] * size  # a return at +inf
        call_node = [0] * n
        for node, (_, is_return, i, _) in enumerate(events, start=1):
            ent[node] = i
            if is_return:
                match[call_node[i]] = node
                open_end[node] = events[node - 1][0] == NEVER
            else:
                call_node[i] = node

        self.klass = klass = [0] * size  # call node -> its class of interchangeable calls (0: none)
        members: list[list[int]] = [[]]  # class -> its call nodes in call order
        if pruning.classes is not None:
            classes = pruning.classes
            class_ids: dict[Hashable, int] = {}
            for node in range(1, tail):
                label = classes[ent[node]] if match[node] else None
                if label is not None:
                    c = class_ids.setdefault(label, len(members))
                    if c == len(members):
                        members.append([])
                    members[c].append(node)
                    klass[node] = c
        # Of a class only the earliest-called pending call is ever tried, so only it is in the list:
        # lifting it puts the next one in (``next_member``), and unlifting it takes that one out.
        self.next_member = next_member = [0] * size
        for group in members[1:]:
            for node, later in pairwise(group):
                next_member[node] = later
                nxt[prv[later]] = nxt[later]
                prv[nxt[later]] = prv[later]

        forceable = [False] * size  # call node -> whether it may be taken as the only choice
        if pruning.inert is not None:
            for i in range(n):
                forceable[call_node[i]] = pruning.inert[i]
        # The scan list: the same events, but only the calls that may be forced (inert, in no class) and
        # the returns, so the search for a forced call skips every other pending call.
        self.scannable = scannable = [forceable[node] and not klass[node] for node in range(size)]
        kept = [0, *(node for node in range(1, tail) if scannable[node] or not match[node]), tail]
        self.snxt = snxt = [tail] * size
        self.sprv = sprv = [0] * size
        for a, b in pairwise(kept):
            snxt[a] = b
            sprv[b] = a
        self.bit = bit = [0] * size  # call node -> its entry's bit
        for i in range(n):
            bit[call_node[i]] = 1 << i
        # call node -> None, or the entries to take first: ``(firm, soft)``, the firm ones always (they
        # have no enders), and per set of enders, as ``(enders, entries)`` pairs, the soft ones while
        # none of their enders is untaken
        self.order: list[tuple[int, tuple[tuple[int, int], ...]] | None] = [None] * size
        if pruning.precedence is not None:
            by_enders: dict[int, int] = {}  # enders -> the entries that have them
            for i in range(n):
                enders = pruning.precedence[i][1]
                by_enders[enders] = by_enders.get(enders, 0) | 1 << i
            enderless = by_enders.pop(0, 0)
            for i in range(n):
                lower = pruning.precedence[i][0]
                if lower:
                    soft = tuple((enders, lower & group) for enders, group in by_enders.items() if lower & group)
                    self.order[call_node[i]] = (lower & enderless, soft)

        # Operations, deduplicated when sharing (an unhashable one is never shared).
        self.outcomes = [e.outcome for e in entries]
        op_ids: dict[Any, int] = {}
        self.ops: list[Any] = []
        self.entry_op: list[int] = []
        ops, entry_op = self.ops, self.entry_op
        for e in entries:
            try:
                op_id = op_ids.setdefault(e.op, len(ops)) if pruning.share else len(ops)
            except TypeError:
                op_id = len(ops)
            if op_id == len(ops):
                ops.append(e.op)
            entry_op.append(op_id)


class _Memo(Generic[S]):
    """Model states interned to ints, each (state, operation) step asked of the model once, and per
    state the rows (call node -> next state) and the sets of calls already explored with it.

    ``step`` and ``intern`` are closures over local tables, not methods: the hot loop calls
    ``step`` once per (state, call) pair it meets, and a closure skips the attribute lookups.
    """

    def __init__(self, model: Transitions[S], initial: S, tables: _Tables) -> None:
        transition = model.transition
        states: list[S] = [initial]
        interned: dict[S, int] = {initial: 0}
        # sid * n_ops + op id -> (admits, after sid, or the successor when the state depends on the outcome)
        expectations: dict[int, tuple[Admits, int, Callable[[Any], S] | None]] = {}
        rows: list[dict[int, int]] = [{}]  # per state: call node -> next state, or -1 if it does not fit
        seen: list[set[int]] = [set()]  # per state: the sets of calls taken (bitsets) explored with it
        ent, entry_op, ops, outcomes = tables.ent, tables.entry_op, tables.ops, tables.outcomes
        n_ops = len(ops)

        def intern(after: S) -> int:
            """The int standing for state ``after``, new if it was never seen."""
            sid = interned.get(after, -1)
            if sid < 0:
                sid = len(states)
                states.append(after)
                interned[after] = sid
                rows.append({})
                seen.append(set())
            return sid

        def step(sid: int, node: int) -> int:
            """The state taking call ``node`` from state ``sid`` leads to, or -1 if it does not fit (or is an
            unknown call that would change nothing: never taking it reaches everything taking it would)."""
            i = ent[node]
            op_id = entry_op[i]
            key = sid * n_ops + op_id
            known = expectations.get(key)
            if known is None:
                state = states[sid]
                admits, after = transition(state, ops[op_id])
                if callable(after):  # the state depends on the outcome (the version a write was handed)
                    known = expectations[key] = (admits, -1, after)
                else:
                    known = expectations[key] = (admits, sid if after is state else intern(after), None)
            admits, after_sid, successor = known
            outcome = outcomes[i]
            if outcome is not UNKNOWN and not admits(outcome):
                return -1
            if successor is not None:
                reached = successor(outcome)
                after_sid = sid if reached is states[sid] else intern(reached)
            if outcome is UNKNOWN:
                return after_sid if after_sid != sid else -1
            return after_sid

        self.states, self.rows, self.seen = states, rows, seen
        self.intern, self.step = intern, step


def _stranded(soft: tuple[tuple[int, int], ...], untaken: int) -> bool:
    """Whether some untaken entry of ``soft`` could no longer come first: none of its enders is untaken."""
    for enders, entries in soft:
        if entries & untaken and not enders & untaken:
            return True
    return False


def search(
    entries: Sequence[Entry],
    model: Transitions[S],
    initial: S,
    deadline: float,
    pruning: Pruning = NO_PRUNING,
) -> SearchResult:
    """Decide whether ``entries`` (in any order) are linearizable from ``initial``, by ``deadline``
    (a ``time.perf_counter`` instant). The tables are built once; then the hot loop runs."""
    if not entries:
        return SearchResult(True, [], 0)
    tables = _Tables(entries, pruning)
    return _run(tables, _Memo(model, initial, tables), deadline)


def _run(tables: _Tables, memo: _Memo[Any], deadline: float) -> SearchResult:
    """The hot loop: lift, scan, backtrack, on ints and lists only (every table bound to a local)."""
    nxt, prv, match, ent, open_end = tables.nxt, tables.prv, tables.match, tables.ent, tables.open_end
    snxt, sprv, scannable = tables.snxt, tables.sprv, tables.scannable
    klass, next_member, bit = tables.klass, tables.next_member, tables.bit
    order, tail = tables.order, tables.tail
    rows, seen, step = memo.rows, memo.seen, memo.step
    head = 0

    calls: list[int] = []  # call nodes lifted, in order
    sids: list[int] = []  # the state before each
    forced: list[bool] = []  # whether each was the only choice tried there (see below)
    sid = 0
    linearized = 0
    best: list[int] = []
    explored = 0  # lifts and backtracks
    node = snxt[head]
    clock = time.perf_counter
    row = rows[0]
    check_at = CLOCK_EVERY
    # At each configuration the candidates are first scanned for an inert call that fits here.
    # Taking it first loses nothing: it may precede every other candidate in real time, and
    # wherever else it could go it changes nothing either. So it is taken as the only choice
    # there, and if the search fails after it, the configuration before it has failed too.
    # Reads then never multiply the orders tried. (A write that merely changes nothing *here*
    # is not inert: placed later it may change the state, so it is not forced.) The scan walks
    # the scan list (``snxt``), which holds only such calls and the returns; the full pass
    # walks every event (``nxt``). ``links`` is the list being walked.
    scanning = True
    links = snxt
    while True:
        ret = match[node]
        if ret:  # a call: try to take it now
            if scanning:
                c = 0
                after = row.get(node)
                if after is None:
                    after = row[node] = step(sid, node)
                if after != sid:  # it does not fit here (-1), or changes the state here
                    node = snxt[node]
                    continue
            else:
                c = klass[node]
                after = row.get(node)
                if after is None:
                    after = row[node] = step(sid, node)
                if after < 0:
                    node = nxt[node]
                    continue
            first = order[node]
            if first is not None:
                untaken = ~linearized
                if first[0] & untaken or (first[1] and _stranded(first[1], untaken)):
                    node = links[node]  # it must follow an entry still untaken
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
                # lift the call and its return out of both lists
                p = prv[node]
                q = nxt[node]
                nxt[p] = q
                prv[q] = p
                p = prv[ret]
                q = nxt[ret]
                nxt[p] = q
                prv[q] = p
                if scannable[node]:
                    p = sprv[node]
                    q = snxt[node]
                    snxt[p] = q
                    sprv[q] = p
                p = sprv[ret]
                q = snxt[ret]
                snxt[p] = q
                sprv[q] = p
                if c:  # the next call of its class, if any, becomes a candidate: put it in, in time order
                    later = next_member[node]
                    if later:
                        p = prv[node]
                        while nxt[p] < later:
                            p = nxt[p]
                        q = nxt[p]
                        nxt[p] = later
                        prv[later] = p
                        nxt[later] = q
                        prv[q] = later
                node = snxt[head]
                scanning = True
                links = snxt
                explored += 1
                if explored >= check_at:
                    check_at = explored + CLOCK_EVERY
                    if clock() > deadline:
                        break
                continue
        elif scanning:  # no forced call here: try every candidate in turn
            if node == tail or open_end[node]:
                # everything taken, or only calls with unknown outcomes remain: those never took effect
                return SearchResult(True, [ent[c] for c in calls], explored)
            scanning = False
            links = nxt
            node = nxt[head]
            continue
        # the earliest remaining return: nothing before it fits, so undo the last lift (and the
        # lifts it was forced by)
        if len(calls) > len(best):
            best = calls[:]
        while True:
            if not calls:
                return SearchResult(False, [ent[c] for c in best], explored)
            node = calls.pop()
            was_forced = forced.pop()
            sid = sids.pop()
            linearized ^= bit[node]
            ret = match[node]
            # unlift, in the reverse order of lifting: the next call of its class out, the scan list,
            # then the full one; the return first, then the call
            if klass[node]:
                later = next_member[node]
                if later:
                    nxt[prv[later]] = nxt[later]
                    prv[nxt[later]] = prv[later]
            snxt[sprv[ret]] = ret
            sprv[snxt[ret]] = ret
            if scannable[node]:
                snxt[sprv[node]] = node
                sprv[snxt[node]] = node
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
        links = nxt
        if explored >= check_at:
            check_at = explored + CLOCK_EVERY
            if clock() > deadline:
                break
    # out of time
    if len(calls) > len(best):
        best = calls[:]
    return SearchResult(None, [ent[c] for c in best], explored)


__all__ = ["CLOCK_EVERY", "NO_PRUNING", "Admits", "Pruning", "SearchResult", "Transitions", "search"]
