"""The checker's seams: the model-agnostic search, the adapters each model declares, and the registry.

A toy model (registers holding ints, with read and write calls) that the checker has never
heard of is checked through the same search as the KV and task models, first with no adapter
(whole history, CC-1, through ``expect``) and then with one it registers (partitioned by
register, its own clause).
"""

from __future__ import annotations

import ast
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conformance.checker import (
    NEVER,
    UNKNOWN,
    Entry,
    History,
    ModelAdapter,
    adapter_for,
    check,
    kv_key,
    register,
)
from conformance.checker.adapter import GENERIC
from conformance.checker.kv_model import KV_ADAPTER
from conformance.checker.search import Pruning, search
from conformance.checker.task_model import TASK_ADAPTER
from conformance.models import kv, tasks


@dataclass(frozen=True)
class Read:
    register: str


@dataclass(frozen=True)
class Write:
    register: str
    value: int


@dataclass(frozen=True)
class Said:
    clause: str
    allowed: Any
    after: Any

    def admits(self, outcome: Any) -> bool:
        return bool(outcome == self.allowed)

    def then(self, outcome: Any) -> Any:
        return self.after

    def describe(self) -> str:
        return f"returned {self.allowed!r}"


class Registers:
    """A state is a sorted tuple of (register, value); an unwritten register reads 0."""

    def initial(self) -> tuple[tuple[str, int], ...]:
        return ()

    def expect(self, state: tuple[tuple[str, int], ...], op: Any) -> Said:
        held = dict(state)
        if isinstance(op, Read):
            return Said("R-1", held.get(op.register, 0), state)
        return Said("R-2", None, tuple(sorted({**held, op.register: op.value}.items())))

    @staticmethod
    def inert(op: Any, outcome: Any) -> bool:
        return isinstance(op, Read)


class AdaptedRegisters(Registers):
    pass


def register_of(op: Any) -> Hashable | None:
    return op.register if isinstance(op, (Read, Write)) else None


register(AdaptedRegisters, ModelAdapter(clause="R-LIN", partition=register_of))


def _history(stale: bool) -> History:
    # a and b each written then read; with ``stale`` the read of b misses a write that returned before it.
    return History([
        Entry(1, Write("a", 1), 1, 4, None),
        Entry(2, Read("a"), 2, 5, 1),  # overlaps the write: may see it
        Entry(3, Write("b", 7), 6, 7, None),
        Entry(4, Read("b"), 8, 9, 0 if stale else 7),
        Entry(5, Write("a", 2), 10, NEVER, UNKNOWN),
    ])


def test_the_registry_finds_each_models_adapter() -> None:
    assert adapter_for(kv.KVModel()) is KV_ADAPTER
    assert adapter_for(kv.KVModel().stepwise_twin()) is KV_ADAPTER
    assert adapter_for(tasks.TaskModel()) is TASK_ADAPTER
    assert adapter_for(Registers()) is GENERIC

    class Derived(kv.KVModel):
        pass

    assert adapter_for(Derived()) is KV_ADAPTER  # the nearest class with an adapter
    assert KV_ADAPTER.partition is kv_key and KV_ADAPTER.clause == "CC-1"
    assert TASK_ADAPTER.partition is None and TASK_ADAPTER.clause == "CC-2"


def test_a_model_without_an_adapter_is_checked_whole_through_expect() -> None:
    good = check(_history(stale=False), Registers())
    assert good.ok and good.partitions == 1 and "checked whole" in good.explanation
    bad = check(_history(stale=True), Registers())
    assert bad.status == "violation" and bad.clause == "CC-1" and bad.key is None
    assert bad.blocked is not None and bad.blocked.op == Read("b")


def test_a_registered_adapter_gives_the_partition_and_the_clause() -> None:
    good = check(_history(stale=False), AdaptedRegisters())
    assert good.ok and good.partitions == 2
    bad = check(_history(stale=True), AdaptedRegisters())
    assert bad.status == "violation" and bad.clause == "R-LIN" and bad.key == "b"
    assert check(_history(stale=True), AdaptedRegisters(), partition=None).key is None
    assert check(_history(stale=True), AdaptedRegisters(), clause="X-1").clause == "X-1"


class Counter:
    """Transitions only, no ``expect``: all ``search`` needs."""

    def transition(self, state: int, op: Any) -> tuple[Any, Any]:
        if op == "inc":
            return (lambda outcome: outcome == state + 1), state + 1
        return (lambda outcome: outcome == state), state


@pytest.mark.parametrize(("reads", "expected"), [((2, 1), True), ((1, 2), False)])
def test_search_knows_no_model(reads: tuple[int, int], expected: bool) -> None:
    # Two overlapping increments; a read after both must see 2, a read overlapping them may see 1.
    entries = [
        Entry(1, "inc", 1, 4, 1),
        Entry(2, "inc", 2, 5, 2),
        Entry(1, "read", 6, 7, reads[0]),
        Entry(2, "read", 3, 8, reads[1]),
    ]
    plain = search(entries, Counter(), 0, float("inf"))
    pruned = search(entries, Counter(), 0, float("inf"), Pruning(inert=[False, False, True, True]))
    assert plain.status is expected and pruned.status is expected
    assert pruned.explored <= plain.explored
    if expected:
        assert sorted(plain.best) == [0, 1, 2, 3]


def test_models_never_import_the_checker() -> None:
    models = Path(kv.__file__).parent
    for source in models.glob("*.py"):
        tree = ast.parse(source.read_text(), str(source))
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.startswith("conformance.checker") for name in names), source
