"""What a model says about one call: the outcomes it allows, the clause that says so, the state after."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Expectation:
    """What the contract allows a call to do from a state, the clause that says so, and the state after.

    Shared by every model (KV, TaskStore): the machines, ``judge`` and the linearizability
    checker ask only ``admits``, ``after``, ``clause`` and ``describe``.
    """

    clause: str
    allowed: tuple[Any, ...]
    after: Any

    def admits(self, outcome: Any) -> bool:
        return outcome in self.allowed

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.allowed)
