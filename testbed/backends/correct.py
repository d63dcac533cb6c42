"""Two more correct backends, built differently from the reference.

They exist to prove the kit never fails a correct backend merely because it is built
another way: ``ThreadedBackend`` does every operation on a worker thread (state truly
shared across OS threads), and ``YieldingBackend`` suspends inside every operation, so
any check of the kit that silently assumed "no await between read and write" would
misjudge it. Both are linearizable, run on asyncio and trio, keep expired records until
``cleanup_expired`` (the default capabilities) and judge expiry with ``is_expired``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from conformance import (
    BackendError,
    Capabilities,
    CapacityExceededError,
    ExpiredRecords,
    NotFoundError,
    VersionConflictError,
    VersionedRecord,
    is_expired,
)
from reference_backend import InMemoryBackend
from reference_backend.table import RecordTable

Clock = Callable[[], float]
T = TypeVar("T")


class ThreadedBackend:
    """Every operation runs the shared table rules on a worker thread under a threading.Lock."""

    conformance_capabilities = Capabilities()

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or time.time
        self._table = RecordTable()
        self._lock = threading.Lock()

    async def _on_worker(self, method: Callable[..., T], *args: Any) -> T:
        def locked() -> T:
            with self._lock:
                return method(*args)

        return await anyio.to_thread.run_sync(locked)

    async def get(self, key: str) -> VersionedRecord:
        return await self._on_worker(self._table.get, key)

    async def put(self, key: str, data: bytes) -> int:
        return await self._on_worker(self._table.put, key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await self._on_worker(self._table.put_if_version, key, data, expected_version)

    async def delete(self, key: str) -> bool:
        return await self._on_worker(self._table.delete, key)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return await self._on_worker(self._table.list_by_prefix, prefix)

    async def cleanup_expired(self) -> int:
        return await self._on_worker(lambda: self._table.cleanup_expired(self._clock()))


class YieldingBackend:
    """Suspends before, inside and after every critical section; an anyio.Lock keeps it atomic."""

    conformance_capabilities = Capabilities()

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or time.time
        self._records: dict[str, VersionedRecord] = {}
        self._lock_loop: anyio.lowlevel.EventLoopToken | None = None
        self._async_lock: anyio.Lock | None = None

    def _lock(self) -> anyio.Lock:
        # Made in the running loop, and made anew if the instance moves to another loop:
        # an anyio lock belongs to the loop that first used it.
        loop = anyio.lowlevel.current_token()
        if self._async_lock is None or self._lock_loop != loop:
            self._lock_loop, self._async_lock = loop, anyio.Lock()
        return self._async_lock

    async def get(self, key: str) -> VersionedRecord:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            await anyio.lowlevel.checkpoint()
            record = self._records.get(key)
        await anyio.lowlevel.checkpoint()
        if record is None:
            raise NotFoundError(key)
        return record

    async def put(self, key: str, data: bytes) -> int:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            current = self._records.get(key)
            await anyio.sleep(0)
            version = 1 if current is None else current.version + 1
            self._records[key] = VersionedRecord(bytes(data), version)
        await anyio.lowlevel.checkpoint()
        return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            current = self._records.get(key)
            await anyio.sleep(0)
            if current is None:
                raise NotFoundError(key)
            if current.version != expected_version:
                raise VersionConflictError(key, expected_version, current.version)
            version = current.version + 1
            self._records[key] = VersionedRecord(bytes(data), version)
        await anyio.lowlevel.checkpoint()
        return version

    async def delete(self, key: str) -> bool:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            present = key in self._records
            await anyio.sleep(0)
            if present:
                del self._records[key]
        await anyio.lowlevel.checkpoint()
        return present

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            keys = [key for key in self._records if key.startswith(prefix)]
            await anyio.sleep(0)
            listing = [(key, self._records[key]) for key in keys]
        await anyio.lowlevel.checkpoint()
        return listing

    async def cleanup_expired(self) -> int:
        await anyio.lowlevel.checkpoint()
        async with self._lock():
            now = self._clock()
            expired = [key for key, record in self._records.items() if is_expired(record.data, now)]
            await anyio.sleep(0)
            for key in expired:
                del self._records[key]
        await anyio.lowlevel.checkpoint()
        return len(expired)


class HidingBackend:
    """Native expiry, like Redis: an expired record is purged the moment anything touches it.

    Declares ``ExpiredRecords.HIDDEN``, so the kit's hidden-mode oracle is tried on a real
    implementation of it; cleanup then finds only records nobody has touched since they expired.
    """

    conformance_capabilities = Capabilities(expired_records=ExpiredRecords.HIDDEN)

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or time.time
        self._table = RecordTable()
        self._lock = threading.Lock()

    def _purge(self, *keys: str) -> None:
        now = self._clock()
        for key in keys or list(self._table.records):
            record = self._table.records.get(key)
            if record is not None and is_expired(record.data, now):
                del self._table.records[key]

    async def get(self, key: str) -> VersionedRecord:
        with self._lock:
            self._purge(key)
            return self._table.get(key)

    async def put(self, key: str, data: bytes) -> int:
        with self._lock:
            self._purge(key)
            return self._table.put(key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        with self._lock:
            self._purge(key)
            return self._table.put_if_version(key, data, expected_version)

    async def delete(self, key: str) -> bool:
        with self._lock:
            self._purge(key)
            return self._table.delete(key)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            listed = self._table.list_by_prefix(prefix)
            self._purge(*(key for key, _ in listed))
            return [(key, record) for key, record in listed if key in self._table.records]

    async def cleanup_expired(self) -> int:
        with self._lock:
            return self._table.cleanup_expired(self._clock())


class SmallRecordsBackend(InMemoryBackend):
    """The reference, declaring and enforcing a 400 KB record limit, as a DynamoDB item has.

    The kit must then check it under a store whose limits fit (BK-14) and skip nothing.
    """

    LIMIT = 400_000
    conformance_capabilities = Capabilities(max_record_bytes=LIMIT)

    async def put(self, key: str, data: bytes) -> int:
        self._refuse_oversized(key, data)
        return await super().put(key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        self._refuse_oversized(key, data)
        return await super().put_if_version(key, data, expected_version)

    def _refuse_oversized(self, key: str, data: bytes) -> None:
        if len(data) > self.LIMIT:
            raise CapacityExceededError(f"{key!r}: {len(data)} bytes over the declared {self.LIMIT}")


def threaded_backend_on_the_wall_clock() -> ThreadedBackend:
    """A factory taking no ``clock``, like a backend whose engine judges expiry by its own clock.

    The kit then tests expiry with instants far from now, under a store clock frozen at the
    wall time, and must not fail it for that (a TS-4 false alarm once did).
    """
    return ThreadedBackend()


class FailsWritesUnderContention(InMemoryBackend):
    """Correct, with an engine that fails some writes under load: every third write made while
    another call is in flight raises BackendError (BK-3), half of them after applying it, as a
    server dropping replies under load does (the DynamoDB emulator in the load test did).

    Nothing fails while calls come one at a time, so only the race tests meet the failures.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._in_flight = 0
        self._contended_writes = 0

    async def _write(self, write: Callable[[], Any]) -> int:
        self._in_flight += 1
        try:
            await anyio.lowlevel.checkpoint()
            fails = False
            if self._in_flight > 1:
                self._contended_writes += 1
                fails = self._contended_writes % 3 == 0
            if fails and self._contended_writes % 2:
                raise BackendError("engine overloaded; nothing written") from ConnectionResetError("reset by peer")
            version: int = await write()
            if fails:
                raise BackendError("engine overloaded; the write may have been applied") from TimeoutError("reply lost")
            return version
        finally:
            self._in_flight -= 1

    async def put(self, key: str, data: bytes) -> int:
        return await self._write(lambda: super(FailsWritesUnderContention, self).put(key, data))

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await self._write(lambda: super(FailsWritesUnderContention, self).put_if_version(key, data, expected_version))


#: Every correct target the kit must pass, as (flag, factory): the gallery's correct runs and
#: the benchmarks' repeated runs read this one list.
CORRECT_TARGETS: list[tuple[str, str]] = [
    ("--backend", "reference_backend:InMemoryBackend"),
    ("--backend", "testbed.backends.correct:threaded_backend_on_the_wall_clock"),
    ("--backend", "testbed.backends.correct:YieldingBackend"),
    ("--backend", "testbed.backends.correct:HidingBackend"),
    ("--store", "reference_backend:in_memory_task_store"),
    ("--store", "testbed.stores.threaded:ThreadedStore"),
    # Written from SPEC.md and the public API alone, each with its own reasonable choices (testbed/independent).
    ("--backend", "testbed.independent.backends_a:DictBackend"),
    ("--backend", "testbed.independent.backends_a:ThreadedCounterBackend"),
    ("--backend", "testbed.independent.backends_b:YieldingHiddenBackend"),
    ("--backend", "testbed.independent.backends_b:SortedHiddenBackend"),
    ("--store", "testbed.independent.store_locked_dict:LockedDictStore"),
    ("--store", "testbed.independent.store_cas_retry:CasRetryStore"),
]
