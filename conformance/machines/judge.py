"""Judging one observed outcome against a model: the step every machine takes, for every contract."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.checker.adapter import SequentialModel
from conformance.spec import ContractViolation

#: Names a more specific clause than the expectation's for a particular mismatch.
Refine = Callable[[Any, Any, Any], str]


def judge(model: SequentialModel, state: Any, op: Any, outcome: Any, refine: Refine | None = None) -> Any:
    """Return the model's next state, or raise the clause the outcome breaks.

    ``refine(op, expectation, outcome)`` may name a more specific clause than the
    expectation's own (a listing that shows another owner's task is an isolation failure).
    """
    expectation = model.expect(state, op)
    if not expectation.admits(outcome):
        clause = refine(op, expectation, outcome) if refine is not None else expectation.clause
        raise ContractViolation(clause, f"{op.describe()} {outcome.describe()}; the contract requires it {expectation.describe()}")
    return expectation.then(outcome)
