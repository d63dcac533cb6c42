"""Which adapter ``check`` uses for a model: looked up by the model's type (its class or a base).

The arrows point down: the checker knows the models (``conformance.models``) and declares
how to check each; the models never import the checker. Another model registers its own
adapter with ``register``; one with none is checked whole through ``expect`` (``GENERIC``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from conformance.checker.adapter import GENERIC, ModelAdapter, SequentialModel
from conformance.checker.kv_model import KV_ADAPTER
from conformance.checker.task_model import TASK_ADAPTER
from conformance.models.kv import KVModel
from conformance.models.tasks import TaskModel

M = TypeVar("M", bound=SequentialModel)

_ADAPTERS: dict[type, ModelAdapter[Any]] = {
    KVModel: KV_ADAPTER,
    TaskModel: TASK_ADAPTER,
}


def register(model_type: type[M], adapter: ModelAdapter[M]) -> None:
    """Declare how ``check`` treats models of ``model_type`` (and its subclasses without their own)."""
    _ADAPTERS[model_type] = adapter


def adapter_for(model: object) -> ModelAdapter[Any]:
    """The adapter of the nearest class of ``model`` that has one, else ``GENERIC``."""
    for klass in type(model).__mro__:
        adapter = _ADAPTERS.get(klass)
        if adapter is not None:
            return adapter
    return GENERIC


__all__ = ["adapter_for", "register"]
