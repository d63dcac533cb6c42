"""Reference implementations the kit is tried on: correct, small, and meant to be read."""

from reference_backend.memory import InMemoryBackend

__all__ = ["InMemoryBackend"]
