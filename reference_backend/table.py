"""The StorageBackend rules over a plain dictionary, synchronous and unlocked.

One implementation of the versioning, CAS, listing and expiry rules; the backends built
on it differ only in how they make each call atomic (a lock, a worker thread, a lock held
across awaits), which is exactly what the kit's concurrency checks exercise.
"""

from __future__ import annotations

from conformance import NotFoundError, VersionConflictError, VersionedRecord, is_expired


class RecordTable:
    """Versioned records by key. Not thread-safe: callers hold their own lock around each call."""

    def __init__(self) -> None:
        self.records: dict[str, VersionedRecord] = {}

    def get(self, key: str) -> VersionedRecord:
        record = self.records.get(key)
        if record is None:
            raise NotFoundError(key)
        return record

    def put(self, key: str, data: bytes) -> int:
        current = self.records.get(key)
        version = 1 if current is None else current.version + 1
        self.records[key] = VersionedRecord(bytes(data), version)
        return version

    def check_version(self, key: str, expected_version: int) -> VersionedRecord:
        """The current record if ``expected_version`` names it; the CAS refusal otherwise."""
        current = self.records.get(key)
        if current is None:
            raise NotFoundError(key)
        if current.version != expected_version:
            raise VersionConflictError(key, expected_version, current.version)
        return current

    def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        current = self.check_version(key, expected_version)
        self.records[key] = VersionedRecord(bytes(data), current.version + 1)
        return current.version + 1

    def delete(self, key: str) -> bool:
        return self.records.pop(key, None) is not None

    def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return [(key, record) for key, record in self.records.items() if key.startswith(prefix)]

    def cleanup_expired(self, now: float) -> int:
        """Decide and delete in one call, so a record rewritten in between cannot be removed."""
        expired = [key for key, record in self.records.items() if is_expired(record.data, now)]
        for key in expired:
            del self.records[key]
        return len(expired)
