"""The reference in-memory StorageBackend: the gold standard the kit is tried on.

Every operation runs under one threading lock with no await inside it, so it is atomic
against concurrent tasks on asyncio and trio and against real threads alike, and it
cannot deadlock a loop. Expired records are kept until ``cleanup_expired`` (the seeds'
in-memory behaviour), judged by the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from conformance import (
    Capabilities,
    ExpiredRecords,
    NotFoundError,
    VersionConflictError,
    VersionedRecord,
    is_expired,
)


class InMemoryBackend:
    """A dictionary of versioned records; the clock decides expiry."""

    conformance_capabilities = Capabilities(expired_records=ExpiredRecords.KEPT_UNTIL_CLEANUP)

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._records: dict[str, VersionedRecord] = {}
        self._lock = threading.Lock()

    async def get(self, key: str) -> VersionedRecord:
        with self._lock:
            record = self._records.get(key)
        if record is None:
            raise NotFoundError(key)
        return record

    async def put(self, key: str, data: bytes) -> int:
        with self._lock:
            current = self._records.get(key)
            version = 1 if current is None else current.version + 1
            self._records[key] = VersionedRecord(bytes(data), version)
            return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        with self._lock:
            current = self._records.get(key)
            if current is None:
                raise NotFoundError(key)
            if current.version != expected_version:
                raise VersionConflictError(key, expected_version, current.version)
            self._records[key] = VersionedRecord(bytes(data), current.version + 1)
            return current.version + 1

    async def delete(self, key: str) -> bool:
        with self._lock:
            return self._records.pop(key, None) is not None

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            return [(key, record) for key, record in self._records.items() if key.startswith(prefix)]

    async def cleanup_expired(self) -> int:
        # Scan and delete under one lock: a record rewritten with a later expiry between
        # the two can never be deleted (the seed's TOCTOU).
        with self._lock:
            now = self._clock()
            expired = [key for key, record in self._records.items() if is_expired(record.data, now)]
            for key in expired:
                del self._records[key]
            return len(expired)
