"""The oracle for StorageBackend: a pure, sequential model of the key-value contract.

States are immutable and hashable and ``expect`` is a pure function, so the same model
serves the stateful machine (one step at a time) and the linearizability checker
(searching orders of concurrent operations, memoising states).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.contract.backend import VersionedRecord
from conformance.contract.capabilities import ExpiredRecords
from conformance.contract.errors import NotFoundError, VersionConflictError
from conformance.contract.record import expires_at
from conformance.models.expectation import Expectation, Successor
from conformance.models.operation import Operation, show

# ---------------------------------------------------------------- operations


@dataclass(frozen=True)
class Get(Operation):
    key: str


@dataclass(frozen=True)
class Put(Operation):
    key: str
    data: bytes


@dataclass(frozen=True)
class PutIfVersion(Operation):
    key: str
    data: bytes
    expected_version: int

    keywords = ("expected_version",)


@dataclass(frozen=True)
class Delete(Operation):
    key: str


@dataclass(frozen=True)
class ListByPrefix(Operation):
    prefix: str


@dataclass(frozen=True)
class CleanupExpired(Operation):
    pass


KVOperation = Get | Put | PutIfVersion | Delete | ListByPrefix | CleanupExpired


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Returned:
    """A call returned ``value`` (lists normalised to a key-sorted tuple)."""

    value: object

    def describe(self) -> str:
        value = self.value
        if isinstance(value, VersionedRecord):
            return f"returned record v{value.version} {show(value.data)}"
        if isinstance(value, tuple):
            inner = ", ".join(f"{k!r}: v{r.version} {show(r.data)}" for k, r in value)
            return f"returned [{inner}]"
        return f"returned {value!r}"


@dataclass(frozen=True)
class Raised:
    """A call raised a contract error; only the fields the contract pins are compared."""

    error: str
    key: str | None = None
    expected: int | None = None
    actual: int | None = None

    def describe(self) -> str:
        fields = [f"{name}={getattr(self, name)!r}" for name in ("key", "expected", "actual") if getattr(self, name) is not None]
        return f"raised {self.error}({', '.join(fields)})"


Outcome = Returned | Raised


@dataclass(frozen=True)
class Unknown:
    """The version of a write whose outcome the kit never saw (CC-7): some version above ``floor``."""

    floor: int

    def admits(self, version: object) -> bool:
        return _is_version(version) and version > self.floor  # type: ignore[operator]

    def __str__(self) -> str:
        return f"?>{self.floor}"


#: What a state knows of a record's version: the one its write was handed, or only a bound.
Version = int | Unknown


def _is_version(value: object) -> bool:
    return type(value) is int and value >= 1


def floor_of(version: Version) -> int:
    """The least a later version must exceed: the version itself, or an unknown one's bound."""
    return version.floor if isinstance(version, Unknown) else version


def _version_fits(known: Version, observed: int) -> bool:
    return known.admits(observed) if isinstance(known, Unknown) else known == observed


@dataclass(frozen=True)
class NewVersion:
    """A successful write handed any version above ``floor`` (BK-5, BK-6: versions only rise; how far is free).

    ``stepwise``: exactly ``floor + 1`` (the narrower oracle the checker searches first).
    """

    floor: int
    stepwise: bool = False

    def matches(self, outcome: object) -> bool:
        if not (isinstance(outcome, Returned) and _is_version(outcome.value)):
            return False
        return outcome.value == self.floor + 1 if self.stepwise else outcome.value > self.floor  # type: ignore[operator]

    def example(self) -> Returned:
        return Returned(self.floor + 1)

    def describe(self) -> str:
        return f"returned a version above {self.floor}" if self.floor else "returned a version of at least 1"


@dataclass(frozen=True)
class ConflictAt:
    """A VersionConflictError whose ``.actual`` is the unknown current version (above ``floor``)."""

    key: str
    expected: int
    floor: int

    def matches(self, outcome: object) -> bool:
        return (isinstance(outcome, Raised) and outcome.error == "VersionConflictError" and outcome.key == self.key
                and outcome.expected == self.expected and outcome.actual is not None and outcome.actual > self.floor
                and outcome.actual != self.expected)

    def example(self) -> Raised:
        actual = self.floor + 1 if self.floor + 1 != self.expected else self.floor + 2
        return Raised("VersionConflictError", self.key, self.expected, actual)

    def describe(self) -> str:
        return f"raised VersionConflictError(key={self.key!r}, expected={self.expected!r}, actual=a version above {self.floor})"


@dataclass(frozen=True)
class RecordsLike:
    """A read's answer where some versions are known only by a bound: a record, or a listing."""

    entries: tuple[tuple[str, bytes, Version], ...]
    single: bool  # a get's record, not a listing

    def matches(self, outcome: object) -> bool:
        if not isinstance(outcome, Returned):
            return False
        if self.single:
            if not isinstance(outcome.value, VersionedRecord):
                return False
            listed: tuple[Any, ...] = (("", outcome.value),)
        elif isinstance(outcome.value, tuple):
            listed = outcome.value
        else:
            return False
        if len(listed) != len(self.entries):
            return False
        for (key, data, version), (got_key, record) in zip(self.entries, listed):
            if (not self.single and got_key != key) or not isinstance(record, VersionedRecord):
                return False
            if record.data != data or not _version_fits(version, record.version):
                return False
        return True

    def example(self) -> Returned:
        records = tuple((k, VersionedRecord(d, v.floor + 1 if isinstance(v, Unknown) else v)) for k, d, v in self.entries)
        return Returned(records[0][1] if self.single else records)

    def describe(self) -> str:
        shown = ", ".join(f"{k!r}: v{v} {show(d)}" for k, d, v in self.entries)
        return f"returned record v{self.entries[0][2]} {show(self.entries[0][1])}" if self.single else f"returned [{shown}]"


def observe(result: object = None, error: BaseException | None = None) -> Outcome:
    """Turn what a backend did into a comparable outcome."""
    if error is not None:
        if isinstance(error, VersionConflictError):
            return Raised(type(error).__name__, error.key, error.expected, error.actual)
        if isinstance(error, NotFoundError):
            return Raised(type(error).__name__, error.key)
        return Raised(type(error).__name__)
    if isinstance(result, list):
        return Returned(tuple(sorted(result, key=lambda item: (item[0], item[1].version, item[1].data))))
    return Returned(result)


# ---------------------------------------------------------------- state


@dataclass(frozen=True)
class Stored:
    data: bytes
    version: Version
    expires_at: float | None

    @property
    def record(self) -> VersionedRecord:
        return VersionedRecord(self.data, self.version)  # type: ignore[arg-type]  # an Unknown shows as itself

    @property
    def floor(self) -> int:
        """The least the next version must exceed."""
        return floor_of(self.version)


@dataclass(frozen=True)
class KVState:
    """What the store holds and what time it is; treat as immutable."""

    records: Mapping[str, Stored] = field(default_factory=dict)
    now: float = 0.0

    def __hash__(self) -> int:
        return hash((frozenset(self.records.items()), self.now))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KVState) and self.now == other.now and dict(self.records) == dict(other.records)

    def expired(self, key: str) -> bool:
        stored = self.records[key]
        return stored.expires_at is not None and self.now > stored.expires_at

    def at(self, now: float) -> KVState:
        return KVState(self.records, now)

    def with_record(self, key: str, data: bytes, version: Version) -> KVState:
        return KVState({**self.records, key: Stored(data, version, expires_at(data))}, self.now)

    def without(self, *keys: str) -> KVState:
        gone = set(keys)
        return KVState({k: v for k, v in self.records.items() if k not in gone}, self.now)


# ---------------------------------------------------------------- the model


class KVModel:
    """The StorageBackend contract as a pure function from (state, operation) to expectation."""

    def __init__(self, expired_records: ExpiredRecords = ExpiredRecords.KEPT_UNTIL_CLEANUP, *, stepwise: bool = False) -> None:
        self.expired_records = expired_records
        #: Versions exactly one above the last, from 1: the common way, and the one the checker
        #: searches first, because it fixes where each write goes; the contract allows any rise.
        self.stepwise = stepwise

    def stepwise_twin(self) -> KVModel:
        """The same model with versions that rise by exactly one (a narrower oracle, for a first fast search)."""
        return KVModel(self.expired_records, stepwise=True)

    @property
    def hides_expired(self) -> bool:
        return self.expired_records is ExpiredRecords.HIDDEN

    def initial(self, now: float = 0.0) -> KVState:
        return KVState({}, now)

    def visible(self, state: KVState) -> dict[str, VersionedRecord]:
        """The records a caller can see now."""
        return {k: s.record for k, s in self.live_items(state)}

    def live_items(self, state: KVState) -> Iterator[tuple[str, Stored]]:
        for key, stored in state.records.items():
            if not (self.hides_expired and state.expired(key)):
                yield key, stored

    def _lookup(self, state: KVState, key: str) -> tuple[Stored | None, str]:
        """The visible record at key, and the clause that governs its absence."""
        stored = state.records.get(key)
        if stored is not None and self.hides_expired and state.expired(key):
            return None, "BK-17"
        return stored, "BK-4"

    @staticmethod
    def inert(op: KVOperation, outcome: Outcome) -> bool:
        """Whether this outcome of ``op`` leaves unchanged every state it is allowed from.

        Reads, and refusals (NotFound, a conflict), never write. Anything else may write in
        some state even when it changes nothing in another (a delete of a hidden expired
        record), so it is not inert. The linearizability checker may place an inert call
        first among its rivals; it must not do so for any other.
        """
        return isinstance(op, (Get, ListByPrefix)) or isinstance(outcome, Raised)

    def _written(self, state: KVState, key: str, data: bytes, floor: int) -> Successor:
        """The state a write leaves: its data at the version it was handed (unknown: only above ``floor``)."""
        unknown: Version = floor + 1 if self.stepwise else Unknown(floor)

        def successor(outcome: object) -> KVState:
            if isinstance(outcome, Raised):
                return state
            version = outcome.value if isinstance(outcome, Returned) else unknown
            return state.with_record(key, data, version)  # type: ignore[arg-type]

        return successor

    def expect(self, state: KVState, op: KVOperation) -> Expectation:
        if isinstance(op, Get):
            stored, absent_clause = self._lookup(state, op.key)
            if stored is None:
                return Expectation(absent_clause, (Raised("NotFoundError", op.key),), state)
            if isinstance(stored.version, Unknown):
                return Expectation("BK-11", (RecordsLike(((op.key, stored.data, stored.version),), single=True),), state)
            return Expectation("BK-11", (Returned(stored.record),), state)
        if isinstance(op, Put):
            stored, absent_clause = self._lookup(state, op.key)
            floor = 0 if stored is None else stored.floor
            clause = ("BK-17" if absent_clause == "BK-17" else "BK-5") if stored is None else "BK-6"
            return Expectation(clause, (NewVersion(floor, self.stepwise),), self._written(state, op.key, op.data, floor))
        if isinstance(op, PutIfVersion):
            stored, absent_clause = self._lookup(state, op.key)
            if stored is None:
                clause = "BK-17" if absent_clause == "BK-17" else "BK-9"
                refused = Raised("NotFoundError", op.key)
                if op.expected_version >= 1:
                    return Expectation(clause, (refused,), state)
                # No version below 1 is ever handed out, so the task store never sends one: reading
                # it as "create if absent" is as good as refusing it (BK-9).
                return Expectation(clause, (refused, NewVersion(0, self.stepwise)), self._written(state, op.key, op.data, 0))
            if isinstance(stored.version, Unknown):
                allowed: tuple[Any, ...] = (ConflictAt(op.key, op.expected_version, stored.floor),)
                if stored.version.admits(op.expected_version):
                    allowed += (NewVersion(op.expected_version, self.stepwise),)
                return Expectation("BK-8", allowed, self._written(state, op.key, op.data, max(op.expected_version, stored.floor)))
            if stored.version != op.expected_version:
                conflict = Raised("VersionConflictError", op.key, op.expected_version, stored.version)
                return Expectation("BK-8", (conflict,), state)
            return Expectation("BK-7", (NewVersion(stored.version, self.stepwise),), self._written(state, op.key, op.data, stored.version))
        if isinstance(op, Delete):
            stored, absent_clause = self._lookup(state, op.key)
            if stored is None:
                return Expectation("BK-17" if absent_clause == "BK-17" else "BK-10", (Returned(False),), state.without(op.key))
            return Expectation("BK-10", (Returned(True),), state.without(op.key))
        if isinstance(op, ListByPrefix):
            matching = sorted((k, s) for k, s in self.live_items(state) if k.startswith(op.prefix))
            if any(isinstance(s.version, Unknown) for _, s in matching):
                entries = tuple((k, s.data, s.version) for k, s in matching)
                return Expectation("BK-12", (RecordsLike(entries, single=False),), state)
            return Expectation("BK-12", (Returned(tuple((k, s.record) for k, s in matching)),), state)
        if isinstance(op, CleanupExpired):
            expired = [k for k in state.records if state.expired(k)]
            counts = range(len(expired) + 1) if self.hides_expired else [len(expired)]
            return Expectation("BK-16", tuple(Returned(n) for n in counts), state.without(*expired))
        raise TypeError(f"not a KV operation: {op!r}")
