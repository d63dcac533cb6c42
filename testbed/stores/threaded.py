"""A task store on real threads whose quota is check-then-create: a race the kit cannot steer.

The store's backend serves every call on a worker thread (``ThreadedBackend``), so the
window between counting the owner's tasks and writing the new one is the threads' timing,
not the kit's schedule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from conformance import GenericTaskStore, SecurityConfig, StoreConfig, TaskRecord
from testbed.backends.correct import ThreadedBackend

Clock = Callable[[], float]


class ThreadedStore(GenericTaskStore):
    """The kit's correct store over a backend on worker threads."""

    def __init__(self, *, clock: Clock | None = None, config: StoreConfig | None = None, security: SecurityConfig | None = None) -> None:
        super().__init__(ThreadedBackend(clock=clock), config=config, security=security, clock=clock)


class ThreadedQuotaCheckThenCreate(ThreadedStore):
    """Counts only settled tasks, then creates with no reservation: racing creates on threads all take the last slot."""

    #: Its interleavings are the threads', not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True
    violates: ClassVar[str] = "CC-2"
    races: ClassVar[str | None] = "CC-2"
    also: ClassVar[tuple[str, ...]] = ("TS-6", "SEC-9")

    async def _scan(self, owner_id: str, now: float) -> list[tuple[TaskRecord, bool]]:
        return [(record, pending) for record, pending in await super()._scan(owner_id, now) if not pending]


GALLERY: list[type[ThreadedStore]] = [ThreadedQuotaCheckThenCreate]
