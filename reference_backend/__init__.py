"""Reference implementations the kit is tried on: correct, small, and meant to be read."""

from reference_backend.memory import InMemoryBackend
from conformance.taskstore import GenericTaskStore  # the kit's store, re-exported for the reference's users
from reference_backend.store import in_memory_task_store

__all__ = ["GenericTaskStore", "InMemoryBackend", "in_memory_task_store"]
