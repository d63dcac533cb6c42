"""What a model says about one call: the outcomes it allows, the clause that says so, the state after."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Pattern(Protocol):
    """A set of outcomes the contract allows alike (any version above the last, say).

    Why: where the layer above cannot tell answers apart, the oracle must accept every one of
    them, and some of those sets are too large to list.
    """

    def matches(self, outcome: Any) -> bool: ...

    def example(self) -> Any:
        """One outcome of the set: the one the reference gives (a simulation's answer)."""
        ...

    def describe(self) -> str: ...


#: The state a call leaves as a function of the outcome it had (the outcome may be UNKNOWN).
Successor = Callable[[Any], Any]


@dataclass(frozen=True)
class Expectation:
    """What the contract allows a call to do from a state, the clause that says so, and the state after.

    Shared by every model (KV, TaskStore): the machines, ``judge`` and the linearizability
    checker ask only ``admits``, ``then``, ``clause`` and ``describe``. ``after`` is either
    the state every allowed outcome leaves, or a ``Successor`` when the state depends on
    which allowed outcome the call had (the version a write was handed).
    """

    clause: str
    allowed: tuple[Any, ...]
    after: Any

    def admits(self, outcome: Any) -> bool:
        for allowed in self.allowed:
            if isinstance(allowed, Pattern):
                if allowed.matches(outcome):
                    return True
            elif allowed == outcome:
                return True
        return False

    def then(self, outcome: Any) -> Any:
        """The state the call leaves, having had ``outcome``."""
        return self.after(outcome) if callable(self.after) else self.after

    def example(self) -> Any:
        """The first allowed outcome, as the reference would give it (for simulated histories)."""
        first = self.allowed[0]
        return first.example() if isinstance(first, Pattern) else first

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.allowed)
