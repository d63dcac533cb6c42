"""The task model (``conformance.models.tasks.TaskModel``) as the checker sees it: its adapter.

A task store's history is always checked whole (SPEC CC-2): owner quotas and listings tie
tasks together, and a create's task id is only known once it returned, so no per-task
partition is sound. Transitions are the model's own ``expect``; its reads and refusals are
inert (``TaskModel.inert``), so the search forces them first.
"""

from __future__ import annotations

from conformance.checker.adapter import ModelAdapter, by_expect
from conformance.models.tasks import TaskModel

#: The task model: checked whole, through ``expect``, violations under CC-2.
TASK_ADAPTER: ModelAdapter[TaskModel] = ModelAdapter(clause="CC-2", partition=None, project=by_expect)

__all__ = ["TASK_ADAPTER"]
