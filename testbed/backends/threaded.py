"""Planted races the kit cannot steer: every call on a worker thread, as a driver with a thread pool serves them.

Only load makes these show (``conformance.machines.load``): the interleaving is the threads'.
The correct counterpart is ``testbed.backends.correct.ThreadedBackend``.
"""

from __future__ import annotations

from typing import ClassVar

import anyio.to_thread

from conformance import VersionedRecord
from testbed.backends.correct import ThreadedBackend


class ThreadedReadThenWritePut(ThreadedBackend):
    """Reads the version on one thread hop and writes version + 1 on the next, copying the data in between."""

    #: Its interleavings are the threads', not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True
    violates: ClassVar[str] = "CC-4"
    races: ClassVar[str | None] = "CC-4"
    also: ClassVar[tuple[str, ...]] = ("BK-18", "CC-1")

    async def put(self, key: str, data: bytes) -> int:
        def current() -> int:
            with self._lock:
                record = self._table.records.get(key)
            return 0 if record is None else record.version

        version = await anyio.to_thread.run_sync(current) + 1
        copy = await anyio.to_thread.run_sync(bytes, bytearray(data))  # the engine's serialisation: the window

        def write() -> None:
            with self._lock:
                self._table.records[key] = VersionedRecord(copy, version)

        await anyio.to_thread.run_sync(write)
        return version


#: Planted races on threads, for the load benchmarks and self-tests.
GALLERY: list[type[ThreadedBackend]] = [ThreadedReadThenWritePut]
