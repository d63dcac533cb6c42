"""What the checker needs to know about a model beyond ``expect``, declared as data per model.

``check`` (linearizability.py) is model-agnostic: it splits a history with the model's
partition key, runs the model's cheap checks, asks the model for a narrower first search,
and hands each part to ``search`` as a ``Problem`` the model's ``project`` built. Each model
declares these in one ``ModelAdapter`` (``kv_model.KV_ADAPTER``, ``task_model.TASK_ADAPTER``);
``registry.adapter_for`` finds it by the model's type. A model with no adapter is checked
whole through ``expect`` alone (``GENERIC``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

from conformance.checker.cheap import Anomaly
from conformance.checker.history import History
from conformance.checker.search import NO_PRUNING, Admits, Pruning, Transitions


class Expectation(Protocol):
    """What a model says of one call from one state (``conformance.models.expectation.Expectation``)."""

    @property
    def clause(self) -> str: ...

    @property
    def after(self) -> Any: ...

    def admits(self, outcome: Any) -> bool: ...

    def then(self, outcome: Any) -> Any: ...

    def describe(self) -> str: ...


class SequentialModel(Protocol):
    """A sequential specification the checker can judge a history against (the KV and task models)."""

    def initial(self) -> Any: ...

    def expect(self, state: Any, op: Any) -> Expectation: ...


@runtime_checkable
class InertModel(Protocol):
    """A model that can say which outcomes leave every state unchanged (see ``Pruning.inert``)."""

    def inert(self, op: Any, outcome: Any) -> bool: ...


M = TypeVar("M", bound=SequentialModel)

#: Maps an operation to the one key it touches, or None when it touches several (then the
#: history is checked whole).
KeyOf = Callable[[Any], Hashable | None]


@dataclass(frozen=True)
class Part:
    """One part of a history to search: its key (None when checked whole) and its calls.

    ``exact``: the key came from the model's own partition, so every call touches ``key`` alone.
    """

    key: Hashable | None
    history: History
    exact: bool = False


@dataclass(frozen=True)
class Problem:
    """What ``search`` needs for one part: the transitions, the state they start from, and the pruning tables."""

    transitions: Transitions[Any]
    initial: Any
    pruning: Pruning = NO_PRUNING


@dataclass(frozen=True)
class Narrowing:
    """A narrower model to search first: an order it finds is an order the model allows. When it
    finds none, ``final`` says that refutation stands (no wider order can exist); else the model is searched."""

    model: Any
    final: bool


class ByExpect:
    """A model's transitions through its ``expect``: the expectation's ``admits`` and ``after``."""

    def __init__(self, model: SequentialModel) -> None:
        self.expect = model.expect

    def transition(self, state: Any, op: Any) -> tuple[Admits, Any]:
        """``expect``'s verdict on ``op`` from ``state``, as the search wants it."""
        expectation = self.expect(state, op)
        return expectation.admits, expectation.after


def inert_table(model: object, part: History) -> list[bool] | None:
    """Per call, whether the model calls its (known) outcome inert; None if the model cannot say."""
    if not isinstance(model, InertModel):
        return None
    inert = model.inert
    return [not e.unknown and inert(e.op, e.outcome) for e in part]


def by_expect(model: SequentialModel, initial: Any, part: Part, fast: bool) -> Problem:
    """The plain projection: ``expect`` as the transitions, and the model's inert calls forced."""
    return Problem(ByExpect(model), initial, Pruning(inert=inert_table(model, part.history)))


@dataclass(frozen=True)
class ModelAdapter(Generic[M]):
    """How ``check`` treats one model: a declaration, so the search itself stays model-agnostic.

    ``clause``: the clause a violation breaks (unless the caller names one).
    ``partition``: the model's partition key (None: histories are always checked whole). Sound
    only where a history is linearizable iff each key's sub-history is (P-compositionality).
    ``project``: ``(model, initial, part, fast) -> Problem``; ``fast`` allows a projection that
    is quicker than ``expect`` with the same verdicts.
    ``cheap``: ``(history, model, initial) -> anomalies``, linear-time proofs of violation run first.
    ``narrower``: ``(model, initial, part) -> Narrowing | None``, a narrower model searched first.
    """

    clause: str
    partition: KeyOf | None = None
    project: Callable[[M, Any, Part, bool], Problem] = by_expect
    cheap: Callable[[History, M, Any], Sequence[Anomaly]] | None = None
    narrower: Callable[[M, Any, History], Narrowing | None] | None = None


#: For a model no adapter is registered for: checked whole, through ``expect``, as a backend (CC-1).
GENERIC: ModelAdapter[SequentialModel] = ModelAdapter(clause="CC-1")


__all__ = [
    "GENERIC",
    "ByExpect",
    "Expectation",
    "InertModel",
    "KeyOf",
    "ModelAdapter",
    "Narrowing",
    "Part",
    "Problem",
    "SequentialModel",
    "by_expect",
    "inert_table",
]
