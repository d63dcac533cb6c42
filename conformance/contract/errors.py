"""The errors a StorageBackend may raise.

A backend raises only these (BK-3). Each carries the figures a caller needs to decide
what to do next, so callers never parse messages.
"""

from __future__ import annotations


class StorageError(Exception):
    """Root of every error a backend may raise; anything else is a contract violation."""


class NotFoundError(StorageError):
    """The key holds no (visible) record."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no record at key {key!r}")
        self.key = key


class VersionConflictError(StorageError):
    """A compare-and-swap named a version that is not the record's current one."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"version conflict at key {key!r}: expected {expected}, actual {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class CapacityExceededError(StorageError):
    """The engine refuses the write because of its own size or space limits."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BackendError(StorageError):
    """The engine or its driver failed; the driver's exception is chained as ``__cause__``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
