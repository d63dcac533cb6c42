"""The StorageBackend contract: a dumb, versioned key-value store of task records.

All domain logic lives above it (the task store); a backend only stores bytes under
string keys, versions every write, and reads nothing of a record but its expiry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

#: Keys are non-empty strings of at most this many UTF-8 bytes (BK-13).
MAX_KEY_BYTES = 1024

#: The six coroutine methods every backend implements, in the order the SPEC lists them.
BACKEND_METHODS: tuple[str, ...] = (
    "get",
    "put",
    "put_if_version",
    "delete",
    "list_by_prefix",
    "cleanup_expired",
)


def key_range(prefix: str) -> tuple[bytes, bytes | None]:
    """The half-open range ``[low, high)`` of UTF-8 keys that start with ``prefix``; ``high`` None: no bound.

    For engines that index keys as bytes (SQL BLOB/bytea, Redis sorted sets, DynamoDB binary
    sort keys): byte order of UTF-8 is code point order, so this is exactly BK-12's literal
    prefix match, with no wildcard to escape and no key beyond the BMP missed (as a
    ``prefix + "\\uffff"`` bound would). UTF-8 never holds the byte 0xFF, so raising the last
    byte never carries; the empty prefix has no upper bound.
    """
    low = prefix.encode("utf-8")
    return low, (low[:-1] + bytes([low[-1] + 1]) if low else None)


@dataclass(frozen=True, slots=True)
class VersionedRecord:
    """A record's bytes and the version of the write that stored them."""

    data: bytes
    version: int


@runtime_checkable
class StorageBackend(Protocol):
    """What a task-storage backend implements. See SPEC.md, section StorageBackend."""

    async def get(self, key: str) -> VersionedRecord:
        """Return the record at ``key``; raise NotFoundError if there is none."""
        ...

    async def put(self, key: str, data: bytes) -> int:
        """Store ``data`` unconditionally; return the new version (1 for a new key)."""
        ...

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        """Store ``data`` only if the current version is ``expected_version``; return the new one."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove the record; return whether one was there."""
        ...

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        """Return every live record whose key starts with ``prefix``, literally."""
        ...

    async def cleanup_expired(self) -> int:
        """Remove every expired record; return how many were removed."""
        ...
