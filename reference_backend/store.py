"""The reference task store: the kit's GenericTaskStore over the reference in-memory backend."""

from __future__ import annotations

from collections.abc import Callable

from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.taskstore import GenericTaskStore
from reference_backend.memory import InMemoryBackend


def in_memory_task_store(
    *, clock: Callable[[], float] | None = None, config: StoreConfig | None = None, security: SecurityConfig | None = None
) -> GenericTaskStore:
    """The reference store over the reference backend, sharing one clock: a whole TaskStore for ``--store=``."""
    return GenericTaskStore(
        InMemoryBackend(clock=clock), config=config or StoreConfig(), security=security or SecurityConfig(), clock=clock
    )
