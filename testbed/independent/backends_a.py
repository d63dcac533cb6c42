"""Two StorageBackends written from SPEC.md (BK-1..BK-20) and the public contract alone.

``DictBackend``
    One plain ``dict`` of ``key -> (data, version, expiry)``. No method awaits, so on a
    single-threaded event loop each method runs from start to end without interleaving:
    that is its atomicity (BK-18), and ``cleanup_expired`` is atomic for the whole store.
    Choices: expiry is read with ``datetime.fromisoformat`` (Python 3.11 accepts RFC 3339
    offsets and ``Z``), so ``+01:00`` is read as that instant; a naive timestamp names no
    instant and, like absent, null or unparseable values, means "never expires". It takes
    no ``clock`` and decides expiry on the wall clock (``time.time``). ``list_by_prefix``
    answers an immutable tuple of pairs. ``put_if_version(key, data, 0)`` on a key with no
    record is create-if-absent. Versions: +1 per write, back to 1 after a delete.

``ThreadedCounterBackend``
    State behind a ``threading.Lock``; every operation runs on a worker thread through
    ``anyio.to_thread.run_sync`` (so asyncio and trio both work). Choices: versions come
    from one instance-wide counter that never repeats, so a key's versions strictly
    increase but jump, and a key recreated after a delete never reuses a version (no ABA
    even across deletes). It accepts ``clock=`` and uses it for every expiry decision,
    comparing integer milliseconds: ``expiresAt`` is parsed by a strict regex of the
    envelope's form (``YYYY-MM-DDTHH:MM:SS[.ffffff]Z``), the clock is rounded to the
    nearest millisecond as BK-15 says.

Both keep expired records until ``cleanup_expired`` (the default ``KEPT_UNTIL_CLEANUP``),
store data as opaque bytes (non-JSON data never expires, BK-20), read the expiry once at
write time, and raise only the contract's errors.
"""

from __future__ import annotations

import json
import re
import threading
import time
from calendar import timegm
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import anyio.to_thread

from conformance import (
    Capabilities,
    NotFoundError,
    VersionConflictError,
    VersionedRecord,
)

_T = TypeVar("_T")


def _expires_at_field(data: bytes) -> Any:
    """The top-level ``expiresAt`` value of a JSON-object record, or None if there is none."""
    try:
        document = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    if not isinstance(document, dict):
        return None
    return document.get("expiresAt")


# --------------------------------------------------------------------------------------
# DictBackend
# --------------------------------------------------------------------------------------


def _expiry_seconds_isoformat(data: bytes) -> float | None:
    """POSIX seconds of the record's expiry, read with ``datetime.fromisoformat``; None: never."""
    value = _expires_at_field(data)
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        return None  # a naive timestamp names no instant: keep the record rather than guess
    try:
        return moment.timestamp()
    except (OverflowError, ValueError, OSError):
        return None


class DictBackend:
    """A plain dict; single-threaded asyncio/trio atomicity (no await inside any method).

    See the module docstring for its choices: ``fromisoformat`` expiry on the wall clock,
    tuple listings, ``put_if_version(..., 0)`` as create-if-absent, per-key versions
    restarting at 1 after a delete.
    """

    conformance_capabilities = Capabilities()

    def __init__(self) -> None:
        # key -> (data, version, expiry in POSIX seconds or None for never)
        self._records: dict[str, tuple[bytes, int, float | None]] = {}

    def _store(self, key: str, data: bytes, version: int) -> int:
        data = bytes(data)
        self._records[key] = (data, version, _expiry_seconds_isoformat(data))
        return version

    async def get(self, key: str) -> VersionedRecord:
        entry = self._records.get(key)
        if entry is None:
            raise NotFoundError(key)
        return VersionedRecord(data=entry[0], version=entry[1])

    async def put(self, key: str, data: bytes) -> int:
        entry = self._records.get(key)
        return self._store(key, data, 1 if entry is None else entry[1] + 1)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        entry = self._records.get(key)
        if entry is None:
            if expected_version == 0:  # create-if-absent
                return self._store(key, data, 1)
            raise NotFoundError(key)
        if expected_version != entry[1]:
            raise VersionConflictError(key, expected_version, entry[1])
        return self._store(key, data, entry[1] + 1)

    async def delete(self, key: str) -> bool:
        return self._records.pop(key, None) is not None

    async def list_by_prefix(self, prefix: str) -> tuple[tuple[str, VersionedRecord], ...]:
        return tuple(
            (key, VersionedRecord(data=data, version=version))
            for key, (data, version, _) in self._records.items()
            if key.startswith(prefix)
        )

    async def cleanup_expired(self) -> int:
        now = time.time()
        doomed = [key for key, (_, _, expiry) in self._records.items() if expiry is not None and now > expiry]
        for key in doomed:
            del self._records[key]
        return len(doomed)


# --------------------------------------------------------------------------------------
# ThreadedCounterBackend
# --------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})T(?P<h>\d{2}):(?P<mi>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?Z"
)


def _expiry_ms_strict(data: bytes) -> int | None:
    """The record's expiry floored to integer POSIX milliseconds; None: never expires.

    Flooring is exact for comparison with an integer-millisecond clock: for integer ``n``,
    ``n > t`` holds exactly when ``n > floor(t)``.
    """
    value = _expires_at_field(data)
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        return None
    fields = tuple(int(match.group(name)) for name in ("y", "mo", "d", "h", "mi", "s"))
    try:
        datetime(*fields)  # validates the calendar (month 13, Feb 30, hour 24 ... are refused)
    except ValueError:
        return None
    fraction = (match.group("f") or "").ljust(6, "0")
    return timegm(fields) * 1000 + int(fraction) // 1000


class ThreadedCounterBackend:
    """A dict behind a ``threading.Lock``, driven from worker threads; versions from one counter.

    See the module docstring: one instance-wide version counter (versions jump, never
    repeat), injected ``clock`` for every expiry decision, integer-millisecond comparison.
    """

    conformance_capabilities = Capabilities()

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._lock = threading.Lock()
        self._counter = 0
        # key -> (data, version, expiry in integer POSIX ms or None for never)
        self._records: dict[str, tuple[bytes, int, int | None]] = {}

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        return await anyio.to_thread.run_sync(func, *args)

    def _now_ms(self) -> int:
        return round(self._clock() * 1000)

    def _write_locked(self, key: str, data: bytes, expiry: int | None) -> int:
        self._counter += 1
        self._records[key] = (data, self._counter, expiry)
        return self._counter

    # -- synchronous bodies, each holding the lock for its whole decision and write ------

    def _get(self, key: str) -> VersionedRecord:
        with self._lock:
            entry = self._records.get(key)
        if entry is None:
            raise NotFoundError(key)
        return VersionedRecord(data=entry[0], version=entry[1])

    def _put(self, key: str, data: bytes) -> int:
        data = bytes(data)
        expiry = _expiry_ms_strict(data)  # parsed outside the lock: it reads only the argument
        with self._lock:
            return self._write_locked(key, data, expiry)

    def _put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        data = bytes(data)
        expiry = _expiry_ms_strict(data)
        with self._lock:
            entry = self._records.get(key)
            if entry is None:
                raise NotFoundError(key)
            if expected_version != entry[1]:
                raise VersionConflictError(key, expected_version, entry[1])
            return self._write_locked(key, data, expiry)

    def _delete(self, key: str) -> bool:
        with self._lock:
            return self._records.pop(key, None) is not None

    def _list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            return [
                (key, VersionedRecord(data=data, version=version))
                for key, (data, version, _) in self._records.items()
                if key.startswith(prefix)
            ]

    def _cleanup_expired(self) -> int:
        with self._lock:
            now = self._now_ms()  # read under the lock, so the decision and deletes are one step
            doomed = [key for key, (_, _, expiry) in self._records.items() if expiry is not None and now > expiry]
            for key in doomed:
                del self._records[key]
            return len(doomed)

    # -- the contract's coroutines ---------------------------------------------------------

    async def get(self, key: str) -> VersionedRecord:
        return await self._run(self._get, key)

    async def put(self, key: str, data: bytes) -> int:
        return await self._run(self._put, key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await self._run(self._put_if_version, key, data, expected_version)

    async def delete(self, key: str) -> bool:
        return await self._run(self._delete, key)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return await self._run(self._list_by_prefix, prefix)

    async def cleanup_expired(self) -> int:
        return await self._run(self._cleanup_expired)
