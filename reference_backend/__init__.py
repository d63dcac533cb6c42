"""Reference implementations the kit is tried on: correct, small, and meant to be read."""

from reference_backend.memory import InMemoryBackend
from reference_backend.store import GenericTaskStore, in_memory_task_store

__all__ = ["GenericTaskStore", "InMemoryBackend", "in_memory_task_store"]
