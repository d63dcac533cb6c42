"""The reference in-memory StorageBackend: the gold standard the kit is tried on.

Every operation runs the shared ``RecordTable`` rules under one threading lock with no
await inside it, so it is atomic against concurrent tasks on asyncio and trio and against
real threads alike, and it cannot deadlock a loop. Expired records are kept until
``cleanup_expired`` (the seeds' in-memory behaviour), judged by the injected clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from conformance import Capabilities, ExpiredRecords, VersionedRecord
from reference_backend.table import RecordTable


class InMemoryBackend:
    """A dictionary of versioned records; the clock decides expiry."""

    conformance_capabilities = Capabilities(expired_records=ExpiredRecords.KEPT_UNTIL_CLEANUP)

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock = clock or time.time
        self._table = RecordTable()
        self._lock = threading.Lock()

    async def get(self, key: str) -> VersionedRecord:
        with self._lock:
            return self._table.get(key)

    async def put(self, key: str, data: bytes) -> int:
        with self._lock:
            return self._table.put(key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        with self._lock:
            return self._table.put_if_version(key, data, expected_version)

    async def delete(self, key: str) -> bool:
        with self._lock:
            return self._table.delete(key)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            return self._table.list_by_prefix(prefix)

    async def cleanup_expired(self) -> int:
        with self._lock:
            return self._table.cleanup_expired(self._clock())
