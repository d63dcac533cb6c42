"""Linear-time checks of a StorageBackend history that explain themselves in one line.

They run before the linearizability search: each anomaly below is a proof that no order of
the calls satisfies the KV model, found in one pass and stated in terms a backend author
can act on, whereas the search only says "no order works". Written values are unique per
run, so every read names the write it saw. Clauses (SPEC.md, section Concurrency):

- CC-3: two ``put_if_version`` calls succeeded from the same expected version on one key;
- CC-4: two successful writes (``put`` or ``put_if_version``) on one key were handed the same version;
- CC-5: a read (``get`` or a listing entry) returned data that no write of that key wrote, that
  only a write which raised wrote, or with a version other than the one its write was handed;
- CC-6: a read returned data whose write was called only after the read had returned.

A write whose outcome is UNKNOWN may have taken effect (with any version), so reading its
data is allowed. A key's versions restart at 1 after a delete, a cleanup or (in a backend
that hides expired records) an expiry, so CC-3 and CC-4 skip keys where that can happen.
Operations of other models (a task store's) are ignored: the search still judges them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from conformance.checker.history import UNKNOWN, Entry, History
from conformance.contract.backend import VersionedRecord
from conformance.contract.record import expires_at
from conformance.models.kv import (
    CleanupExpired,
    Delete,
    Get,
    KVState,
    ListByPrefix,
    Put,
    PutIfVersion,
    Raised,
    Returned,
)
from conformance.models.operation import show


@dataclass(frozen=True)
class Anomaly:
    """A one-line proof that a history is not linearizable, the clause it breaks, and the calls involved."""

    clause: str
    message: str
    entries: tuple[Entry, ...]

    def __str__(self) -> str:
        return f"[{self.clause}] {self.message}"


def _who(entry: Entry) -> str:
    name = type(entry.op).__name__
    method = {"Put": "put", "PutIfVersion": "put_if_version", "Get": "get", "ListByPrefix": "list_by_prefix"}.get(name, name)
    return f"client {entry.client}'s {method} [{entry.span()}]"


def _names(entries: list[Entry]) -> str:
    clients = [str(e.client) for e in entries]
    if len(clients) == 2:
        return f"client {clients[0]} and client {clients[1]}"
    return "clients " + ", ".join(clients[:-1]) + f" and {clients[-1]}"


def _count(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n))


def _reads(entry: Entry) -> list[tuple[str, VersionedRecord]]:
    """The (key, record) pairs a successful read saw."""
    if not isinstance(entry.outcome, Returned):
        return []
    value = entry.outcome.value
    if isinstance(entry.op, Get) and isinstance(value, VersionedRecord):
        return [(entry.op.key, value)]
    if isinstance(entry.op, ListByPrefix) and isinstance(value, tuple):
        return [(k, r) for k, r in (item for item in value if isinstance(item, tuple) and len(item) == 2)
                if isinstance(r, VersionedRecord)]
    return []


def _may_expire(data: bytes) -> bool:
    """Whether a record carries an expiry (the text test skips parsing records that plainly have none)."""
    if b"expiresAt" not in data and b"\\u" not in data:
        return False
    return expires_at(data) is not None


@dataclass
class _Index:
    """One pass over a history: what the four checks look up."""

    writes: dict[tuple[str, bytes], list[Entry]]  # (key, data) -> every write of it, whatever its outcome
    reads: list[tuple[Entry, str, VersionedRecord]]
    cas: dict[tuple[str, int], list[Entry]]  # (key, expected version) -> successful put_if_version calls
    handed: dict[tuple[str, object], list[Entry]]  # (key, version returned) -> successful writes
    resettable: set[str]  # keys whose versions may restart at 1 (delete, expiry)
    everything: bool  # a cleanup ran: any key's versions may restart

    @classmethod
    def of(cls, history: History, hides_expired: bool = True) -> _Index:
        ix = cls(defaultdict(list), [], defaultdict(list), defaultdict(list), set(), False)
        for entry in history:
            op = entry.op
            kind = type(op)
            if kind is Put or kind is PutIfVersion:
                key = op.key
                ix.writes[(key, op.data)].append(entry)
                if type(entry.outcome) is Returned:
                    if type(entry.outcome.value) is int:
                        ix.handed[(key, entry.outcome.value)].append(entry)
                    if kind is PutIfVersion:
                        ix.cas[(key, op.expected_version)].append(entry)
                if hides_expired and key not in ix.resettable and _may_expire(op.data):
                    ix.resettable.add(key)
            elif kind is Get or kind is ListByPrefix:
                ix.reads.extend((entry, key, record) for key, record in _reads(entry))
            elif kind is Delete:
                if not isinstance(entry.outcome, Raised):
                    ix.resettable.add(op.key)
            elif kind is CleanupExpired and not isinstance(entry.outcome, Raised):
                ix.everything = True
        return ix

    def stable(self, key: str) -> bool:
        """Versions of ``key`` never restart during the run, so each is handed out once."""
        return not self.everything and key not in self.resettable


def _cas_winners(ix: _Index) -> list[Anomaly]:
    found = []
    for (key, version), winners in ix.cas.items():
        if len(winners) > 1 and ix.stable(key):
            found.append(Anomaly(
                "CC-3",
                f"{_count(len(winners))} CAS winners from version {version} on key {key!r}: {_names(winners)}",
                tuple(winners),
            ))
    return found


def _duplicate_versions(ix: _Index, already: Iterable[Anomaly]) -> list[Anomaly]:
    reported = [set(map(id, a.entries)) for a in already]
    found = []
    for (key, version), writers in ix.handed.items():
        if len(writers) < 2 or not ix.stable(key):
            continue
        if any(set(map(id, writers)) <= seen for seen in reported):
            continue  # the CAS-winner anomaly already says this
        found.append(Anomaly(
            "CC-4",
            f"{_count(len(writers))} writes on key {key!r} were {'both' if len(writers) == 2 else 'all'} "
            f"handed version {version}: " + " and ".join(_who(w) for w in writers),
            tuple(writers),
        ))
    return found


def _handed(entry: Entry, version: int) -> bool:
    """Could this write have stored its data as ``version``?"""
    return entry.outcome is UNKNOWN or (type(entry.outcome) is Returned and entry.outcome.value == version)


def _what(entry: Entry, key: str, record: VersionedRecord) -> str:
    return f"{_who(entry)} returned {show(record.data)} v{record.version} for key {key!r}"


def _unwritten_reads(ix: _Index, initial: KVState | None) -> list[Anomaly]:
    found = []
    for entry, key, record in ix.reads:
        candidates = ix.writes.get((key, record.data), ())
        if any(_handed(w, record.version) for w in candidates):
            continue
        stored = initial.records.get(key) if initial is not None else None
        if stored is not None and stored.data == record.data and stored.version == record.version:
            continue
        effective = [w for w in candidates if not isinstance(w.outcome, Raised)]
        what = _what(entry, key, record)
        if not candidates:
            message = f"{what}, which no write of that key wrote"
        elif not effective:
            failed = candidates[0]
            message = (f"{what}, which only {_who(failed)} wrote, and that call {failed.outcome.describe()}:"
                       " a write that failed took effect")
        else:
            handed = ", ".join(f"{_who(w)} was handed v{w.outcome.value}" for w in effective)
            message = f"{what}, but the write of that data stored another version: {handed}"
        found.append(Anomaly("CC-5", message, (entry, *candidates)))
    return found


def _future_reads(ix: _Index) -> list[Anomaly]:
    found = []
    for entry, key, record in ix.reads:
        sources = [w for w in ix.writes.get((key, record.data), ()) if _handed(w, record.version)]
        if sources and all(w.call > entry.ret for w in sources):
            first = min(sources, key=lambda w: w.call)
            found.append(Anomaly(
                "CC-6",
                f"{_what(entry, key, record)}, written by {_who(first)}, which was called only after the read "
                "returned (a read from the future)",
                (entry, *sources),
            ))
    return found


def cas_winners(history: History, hides_expired: bool = True) -> list[Anomaly]:
    """CC-3: at most one ``put_if_version`` succeeds from each version of a key."""
    return _cas_winners(_Index.of(history, hides_expired))


def duplicate_versions(history: History, hides_expired: bool = True) -> list[Anomaly]:
    """CC-4: no two successful writes on one key are handed the same version (CAS winners reported once, by CC-3)."""
    ix = _Index.of(history, hides_expired)
    return _duplicate_versions(ix, _cas_winners(ix))


def unwritten_reads(history: History, initial: KVState | None = None) -> list[Anomaly]:
    """CC-5: every read returns data, at a version, that some write which may have taken effect stored."""
    return _unwritten_reads(_Index.of(history), initial)


def future_reads(history: History) -> list[Anomaly]:
    """CC-6: no read returns data whose write was called after the read returned."""
    return _future_reads(_Index.of(history))


def cheap_checks(history: History, initial: KVState | None = None, hides_expired: bool = True) -> list[Anomaly]:
    """All linear-time checks, in clause order. ``hides_expired=False`` lets CC-3/CC-4 judge keys with expiring records."""
    ix = _Index.of(history, hides_expired)
    winners = _cas_winners(ix)
    return [*winners, *_duplicate_versions(ix, winners), *_unwritten_reads(ix, initial), *_future_reads(ix)]


__all__ = ["Anomaly", "cas_winners", "cheap_checks", "duplicate_versions", "future_reads", "unwritten_reads"]
