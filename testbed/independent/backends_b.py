"""Two independent StorageBackends written from SPEC.md (BK-1..BK-20) and the public API only.

* ``YieldingHiddenBackend``: a dict behind an ``anyio.Lock`` that yields to the event loop in
  the middle of every operation, like a network round trip; native-TTL style expiry on the
  wall clock.
* ``SortedHiddenBackend``: a sorted key list (bisect range scans) plus a dict; expiry on an
  injectable clock, with expired records purged lazily when an operation meets them.
"""

from __future__ import annotations

import bisect
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import anyio
import anyio.lowlevel

from conformance import (
    BackendError,
    Capabilities,
    ExpiredRecords,
    NotFoundError,
    VersionConflictError,
    VersionedRecord,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _check_key(key: object) -> str:
    """Keys are opaque ``str`` (BK-13); anything else is refused as a contract error (BK-3)."""
    if not isinstance(key, str):
        raise BackendError(f"key must be str, got {type(key).__name__}") from TypeError(type(key).__name__)
    return key


def _as_bytes(data: object) -> bytes:
    """Data is bytes; a bytes-like value is copied so later mutation cannot reach the store."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise BackendError(f"data must be bytes, got {type(data).__name__}") from TypeError(type(data).__name__)


def _top_level_expires_at(data: bytes) -> object:
    """The raw top-level ``expiresAt`` value, or None if the data is not a UTF-8 JSON object."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    return document.get("expiresAt") if isinstance(document, dict) else None


# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _YEntry:
    data: bytes
    version: int
    deadline: float | None  # POSIX seconds; None: never expires


class YieldingHiddenBackend:
    """A dict guarded by an ``anyio.Lock``, yielding to the loop between read and write.

    Choices:

    * Every operation holds the lock across its read, a checkpoint (the stand-in for a network
      round trip) and its write, so concurrent callers interleave at the checkpoint but never
      inside an operation (BK-18). The lock is created lazily, inside a running loop, so one
      class serves asyncio and trio. A cancelled call is cancelled before it writes: it took
      effect never.
    * ``expired_records = HIDDEN``: like an engine with native TTL, an expired record is absent
      to every operation at once (BK-17); ``cleanup_expired`` removes what is still held.
    * No ``clock=`` argument: expiry follows the wall clock ``time.time()``, as a server-side
      TTL would; the kit then tests expiry with instants far from now.
    * ``expiresAt`` is parsed with ``datetime.strptime`` on the exact
      ``%Y-%m-%dT%H:%M:%S.%fZ`` form the SPEC's example uses, once, at write time. Anything it
      cannot parse (or data that is not a JSON object) never expires: never destroy data the
      backend does not understand (BK-16).
    * Versions rise by one per write and restart at 1 once a record is deleted or expired (BK-5).
    """

    conformance_capabilities = Capabilities(expired_records=ExpiredRecords.HIDDEN)

    def __init__(self) -> None:
        self._records: dict[str, _YEntry] = {}
        self._lock: anyio.Lock | None = None

    # -- helpers -------------------------------------------------------------------------

    def _get_lock(self) -> anyio.Lock:
        # No await between the test and the assignment: no other task can slip in between.
        if self._lock is None:
            self._lock = anyio.Lock()
        return self._lock

    @staticmethod
    def _deadline(data: bytes) -> float | None:
        value = _top_level_expires_at(data)
        if not isinstance(value, str):
            return None
        try:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
        return (moment - _EPOCH) / timedelta(seconds=1)

    def _live(self, key: str) -> _YEntry | None:
        entry = self._records.get(key)
        if entry is None or (entry.deadline is not None and time.time() > entry.deadline):
            return None
        return entry

    # -- the contract --------------------------------------------------------------------

    async def get(self, key: str) -> VersionedRecord:
        key = _check_key(key)
        async with self._get_lock():
            entry = self._live(key)
            await anyio.lowlevel.checkpoint()
            if entry is None:
                raise NotFoundError(key)
            return VersionedRecord(entry.data, entry.version)

    async def put(self, key: str, data: bytes) -> int:
        key, data = _check_key(key), _as_bytes(data)
        deadline = self._deadline(data)
        async with self._get_lock():
            entry = self._live(key)
            await anyio.lowlevel.checkpoint()
            version = 1 if entry is None else entry.version + 1
            self._records[key] = _YEntry(data, version, deadline)
            return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        key, data = _check_key(key), _as_bytes(data)
        deadline = self._deadline(data)
        async with self._get_lock():
            entry = self._live(key)
            await anyio.lowlevel.checkpoint()
            if entry is None:
                raise NotFoundError(key)
            if entry.version != expected_version:
                raise VersionConflictError(key, expected_version, entry.version)
            self._records[key] = _YEntry(data, entry.version + 1, deadline)
            return entry.version + 1

    async def delete(self, key: str) -> bool:
        key = _check_key(key)
        async with self._get_lock():
            entry = self._live(key)
            await anyio.lowlevel.checkpoint()
            self._records.pop(key, None)  # an expired record goes too: it was already absent
            return entry is not None

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        prefix = _check_key(prefix)
        async with self._get_lock():
            keys = [key for key in self._records if key.startswith(prefix)]
            await anyio.lowlevel.checkpoint()
            found: list[tuple[str, VersionedRecord]] = []
            for key in keys:
                entry = self._live(key)
                if entry is not None:
                    found.append((key, VersionedRecord(entry.data, entry.version)))
            return found

    async def cleanup_expired(self) -> int:
        async with self._get_lock():
            now = time.time()
            doomed = [
                key
                for key, entry in self._records.items()
                if entry.deadline is not None and now > entry.deadline
            ]
            await anyio.lowlevel.checkpoint()
            for key in doomed:  # nothing can rewrite them meanwhile: we hold the lock
                del self._records[key]
            return len(doomed)


# --------------------------------------------------------------------------------------------

#: The record timestamp form of the envelope schema: RFC 3339 UTC, ``Z``, 0 to 6 fraction digits.
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z")


@dataclass(slots=True)
class _SEntry:
    data: bytes
    version: int
    deadline_us: int | None  # POSIX microseconds; None: never expires


class SortedHiddenBackend:
    """A sorted key list (``bisect``) plus a dict, with lazy purging of expired records.

    Choices:

    * Listing by prefix is a range scan of the sorted list: from ``bisect_left(keys, prefix)``
      while the key ``startswith(prefix)``. Python orders ``str`` by code point, so every key
      starting with the prefix is contiguous from there on; stopping at the first key that
      does not start with it needs no upper bound, hence no ``prefix + "\\uffff"`` trap for
      characters beyond the BMP, and no wildcard (BK-12).
    * Operations never await between reading and writing, so on a single-threaded event loop
      each runs whole (BK-18); each starts with a checkpoint so a cancellation lands before
      any effect.
    * ``expired_records = HIDDEN`` (BK-17): an expired record is absent to every operation; an
      operation that meets one purges it on the spot. ``cleanup_expired`` counts only what it
      removes itself (BK-16 allows 0..n under HIDDEN).
    * Accepts ``clock=`` (zero-argument, POSIX seconds; default ``time.time``) and uses it for
      every expiry decision. The comparison is in integer microseconds: the expiry is exact,
      the clock is rounded, so a millisecond clock meets the exclusive boundary exactly (BK-15).
    * ``expiresAt`` is parsed at write time with the envelope schema's pattern (fraction
      optional); anything unreadable never expires.
    * Versions rise by one per write and restart at 1 after delete or expiry (BK-5).
    """

    conformance_capabilities = Capabilities(expired_records=ExpiredRecords.HIDDEN)

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._keys: list[str] = []
        self._records: dict[str, _SEntry] = {}

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _deadline_us(data: bytes) -> int | None:
        value = _top_level_expires_at(data)
        if not isinstance(value, str):
            return None
        match = _TIMESTAMP.fullmatch(value)
        if match is None:
            return None
        year, month, day, hour, minute, second, fraction = match.groups()
        try:
            moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                              int((fraction or "0").ljust(6, "0")), tzinfo=timezone.utc)
        except ValueError:
            return None
        return (moment - _EPOCH) // _ONE_MICROSECOND

    def _now_us(self) -> int:
        return round(self._clock() * 1_000_000)

    def _remove(self, key: str) -> None:
        del self._records[key]
        index = bisect.bisect_left(self._keys, key)
        del self._keys[index]

    def _live(self, key: str, now_us: int) -> _SEntry | None:
        """The key's record if live; an expired one is purged and reported absent."""
        entry = self._records.get(key)
        if entry is None:
            return None
        if entry.deadline_us is not None and now_us > entry.deadline_us:
            self._remove(key)
            return None
        return entry

    def _store(self, key: str, data: bytes, version: int) -> None:
        if key not in self._records:
            bisect.insort(self._keys, key)
        self._records[key] = _SEntry(data, version, self._deadline_us(data))

    # -- the contract --------------------------------------------------------------------

    async def get(self, key: str) -> VersionedRecord:
        key = _check_key(key)
        await anyio.lowlevel.checkpoint()
        entry = self._live(key, self._now_us())
        if entry is None:
            raise NotFoundError(key)
        return VersionedRecord(entry.data, entry.version)

    async def put(self, key: str, data: bytes) -> int:
        key, data = _check_key(key), _as_bytes(data)
        await anyio.lowlevel.checkpoint()
        entry = self._live(key, self._now_us())
        version = 1 if entry is None else entry.version + 1
        self._store(key, data, version)
        return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        key, data = _check_key(key), _as_bytes(data)
        await anyio.lowlevel.checkpoint()
        entry = self._live(key, self._now_us())
        if entry is None:
            raise NotFoundError(key)
        if entry.version != expected_version:
            raise VersionConflictError(key, expected_version, entry.version)
        self._store(key, data, entry.version + 1)
        return entry.version + 1

    async def delete(self, key: str) -> bool:
        key = _check_key(key)
        await anyio.lowlevel.checkpoint()
        if self._live(key, self._now_us()) is None:
            return False
        self._remove(key)
        return True

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        prefix = _check_key(prefix)
        await anyio.lowlevel.checkpoint()
        now_us = self._now_us()
        start = bisect.bisect_left(self._keys, prefix)
        stop = start
        while stop < len(self._keys) and self._keys[stop].startswith(prefix):
            stop += 1
        found: list[tuple[str, VersionedRecord]] = []
        for key in self._keys[start:stop]:  # a copy: _live may purge from the list
            entry = self._live(key, now_us)
            if entry is not None:
                found.append((key, VersionedRecord(entry.data, entry.version)))
        return found

    async def cleanup_expired(self) -> int:
        await anyio.lowlevel.checkpoint()
        now_us = self._now_us()
        doomed = [
            key
            for key, entry in self._records.items()
            if entry.deadline_us is not None and now_us > entry.deadline_us
        ]
        for key in doomed:
            self._remove(key)
        return len(doomed)
