"""The KV model (``conformance.models.kv.KVModel``) as the checker sees it: its adapter.

Partitioning. When every operation names a single key (``get``, ``put``, ``put_if_version``,
``delete``) a history is linearizable if and only if each key's sub-history is
(P-compositionality), so ``kv_key`` is the model's partition key and keys are checked
separately. A history with a multi-key operation (``list_by_prefix``, ``cleanup_expired``) is
checked whole.

What this module knows of KV that the search does not, each sound and complete
(tests/test_checker.py compares verdicts with a plain search and with brute force):

- ``OneKey``: a per-key partition of a plain ``KVModel`` runs on the same model restricted to
  one key with the record as a ``(data, version)`` tuple (no dict copies, no JSON parsing per
  write), and with unknown calls no call can tell apart grouped into interchangeable classes;
- ``read_by``: an unknown write whose data a read returned must have taken effect before that
  read returned;
- ``version_order``: versions only rise while a record lives, so a write handed a lower version
  went first (unless the record's life may have ended between them);
- ``stepwise_first``: versions that rise by one are searched first (a narrower model, fast),
  and only if that finds no order is the contract's "any rise" searched.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

from conformance.checker.adapter import (
    ByExpect,
    ModelAdapter,
    Narrowing,
    Part,
    Problem,
    inert_table,
)
from conformance.checker.cheap import Anomaly, cheap_checks
from conformance.checker.history import NEVER, Entry, History
from conformance.checker.search import Admits, Pruning
from conformance.contract.backend import VersionedRecord
from conformance.contract.record import expires_at
from conformance.models import kv


def kv_key(op: Any) -> Hashable | None:
    """The single key a KV operation touches, or None (a listing, a cleanup, another model's operation)."""
    if isinstance(op, (kv.Get, kv.Put, kv.PutIfVersion, kv.Delete)):
        return op.key
    return None


class _Unread:
    """Stands for the data of a write no read in the partition returned (its bytes cannot matter)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<unread {self.name} data>"


_UNREAD_LIVE = _Unread("live")
_UNREAD_EXPIRED = _Unread("expired")

#: A record on one key: None (no record) or ``(data, version)``; data may be an ``_Unread`` placeholder.
OneKeyState = tuple[Any, kv.Version] | None


class OneKey:
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
        self.initial: OneKeyState = None if stored is None else (stored.data, stored.version)
        self._expired: dict[bytes, bool] = {}
        self._not_found = (kv.Raised("NotFoundError", key),).__contains__
        self._deleted = (kv.Returned(True),).__contains__
        self._absent = (kv.Returned(False),).__contains__

    @staticmethod
    def usable(model: object, initial: object, key: object) -> bool:
        """Whether a partition can run on a OneKey: a plain KVModel, a plain state, a str key whose
        stored record (if any) has the expiry its data says (a tuple keeps no separate expiry)."""
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

    def _visible(self, state: OneKeyState) -> OneKeyState:
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

    def _written(self, state: OneKeyState, data: bytes, floor: int) -> Callable[[Any], OneKeyState]:
        """The state a write leaves, by the version it was handed (unknown: only above ``floor``)."""
        stored = self._stored(data)
        unknown: kv.Version = floor + 1 if self.stepwise else kv.Unknown(floor)

        def successor(outcome: Any) -> OneKeyState:
            kind = type(outcome)
            if kind is kv.Raised:
                return state
            return (stored, outcome.value if kind is kv.Returned else unknown)

        return successor

    def transition(self, state: OneKeyState, op: Any) -> tuple[Admits, OneKeyState | Callable[[Any], OneKeyState]]:
        """KVModel.expect on one key, with the record as a tuple (tests/test_checker.py compares the two)."""
        record = self._visible(state)
        kind = type(op)
        if kind is kv.Get:
            if record is None:
                return self._not_found, state
            data, version = record
            if isinstance(version, kv.Unknown):
                return kv.RecordsLike(((self.key, data, version),), single=True).matches, state
            return (kv.Returned(VersionedRecord(data, version)),).__contains__, state
        if kind is kv.Put:
            floor = 0 if record is None else kv.floor_of(record[1])
            return kv.NewVersion(floor, self.stepwise).matches, self._written(state, op.data, floor)
        if kind is kv.PutIfVersion:
            expected = op.expected_version
            if record is None:
                if expected >= 1:
                    return self._not_found, state
                created = kv.NewVersion(0, self.stepwise).matches
                not_found = self._not_found
                return (lambda o: not_found(o) or created(o)), self._written(state, op.data, 0)
            version = record[1]
            if isinstance(version, kv.Unknown):
                conflict = kv.ConflictAt(self.key, expected, version.floor).matches
                won = kv.NewVersion(expected, self.stepwise).matches if version.admits(expected) else _never
                return (lambda o: conflict(o) or won(o)), self._written(state, op.data, max(expected, version.floor))
            if version != expected:
                return (kv.Raised("VersionConflictError", self.key, expected, version),).__contains__, state
            return kv.NewVersion(version, self.stepwise).matches, self._written(state, op.data, version)
        if kind is kv.Delete:
            return (self._absent if record is None else self._deleted), None
        raise TypeError(f"not a single-key KV operation: {op!r}")

    def state_of(self, state: tuple[bytes, kv.Version] | None) -> kv.KVState:
        """The KVState a tuple stands for (without ``observed``: placeholders have no bytes)."""
        if state is None:
            return self.base.without(self.key)
        return self.base.with_record(self.key, state[0], state[1])


def _never(outcome: Any) -> bool:
    return False


def read_by(part: History, initial: object) -> list[float] | None:
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
        seen: Sequence[tuple[str, VersionedRecord]]
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


def version_order(model: kv.KVModel, part: History) -> list[tuple[int, int]] | None:
    """Per entry, the writes that must go before it: ``(lower, enders)`` bitsets (``Pruning.precedence``).

    Versions only rise while a record lives (BK-6), so of two successful writes on one key, the
    one handed the lower version took effect first, unless the record's life ended between them
    (a delete or a cleanup, after which a version may start low again). So a write may not be
    taken while a write of its key with a lower version is untaken and nothing that could end
    the record's life is. Sound, and it gives the search back the order exact versions gave it,
    whatever steps the backend's versions take. None where a record's life may end unseen (a
    backend that hides expired records) or the model is not the plain KV one.
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


def steps_by_one(model: kv.KVModel, part: History, initial: object) -> bool:
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


def one_run_of_versions(model: kv.KVModel, part: History) -> bool:
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


def stepwise_first(model: kv.KVModel, initial: object, part: History) -> Narrowing | None:
    """Versions that rise by one, searched first where the history allows them (``KVModel.stepwise_twin``).

    They fix where each write goes, so this narrower search is fast; an order it finds is an
    order the contract allows. Only if it finds none is the contract's wider "any rise"
    searched, unless nothing could have broken a record's run of versions (no delete, cleanup,
    unknown write or hidden expiry): then the versions seen are the only ones any order can
    give, and the narrow refutation is final.
    """
    if not steps_by_one(model, part, initial):
        return None
    return Narrowing(model.stepwise_twin(), one_run_of_versions(model, part))


def project(model: kv.KVModel, initial: Any, part: Part, fast: bool) -> Problem:
    """A part as a search problem: on a ``OneKey`` where it can (``fast``, one key, a plain model), else through ``expect``."""
    history = part.history
    key = part.key
    if (fast and OneKey.usable(model, initial, key) and isinstance(key, str)
            and (part.exact or all(kv_key(e.op) == key for e in history))):
        observed = frozenset(
            e.outcome.value.data for e in history
            if type(e.outcome) is kv.Returned and type(e.outcome.value) is VersionedRecord
        )
        one_key = OneKey(model, initial, key, observed)
        pruning = Pruning(
            classes=[one_key.interchangeable(e) for e in history], returns=read_by(history, initial),
            inert=inert_table(model, history), precedence=version_order(model, history), share=False,
        )
        return Problem(one_key, one_key.initial, pruning)
    pruning = Pruning(returns=read_by(history, initial), inert=inert_table(model, history),
                      precedence=version_order(model, history))
    return Problem(ByExpect(model), initial, pruning)


def anomalies(history: History, model: kv.KVModel, initial: object) -> list[Anomaly]:
    """The linear-time checks (CC-3 to CC-6, ``cheap.py``) with the model's expiry mode."""
    return cheap_checks(history, initial if isinstance(initial, kv.KVState) else None, model.hides_expired)


#: The KV model: partitioned by key, violations under CC-1.
KV_ADAPTER: ModelAdapter[kv.KVModel] = ModelAdapter(
    clause="CC-1", partition=kv_key, project=project, cheap=anomalies, narrower=stepwise_first,
)


__all__ = [
    "KV_ADAPTER",
    "OneKey",
    "OneKeyState",
    "anomalies",
    "kv_key",
    "one_run_of_versions",
    "project",
    "read_by",
    "steps_by_one",
    "stepwise_first",
    "version_order",
]
