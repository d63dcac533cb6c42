"""What every machine shares: the harness of the test that runs it.

Hypothesis builds a machine with no arguments, once per example, so the test's harness is
bound to a subclass made for that test rather than passed in.
"""

from __future__ import annotations

from typing import TypeVar

from hypothesis.stateful import RuleBasedStateMachine

from conformance.harness import Harness

M = TypeVar("M", bound="HarnessMachine")


class HarnessMachine(RuleBasedStateMachine):
    """A rule-based machine that drives the target of one test's harness."""

    harness: Harness

    @classmethod
    def for_harness(cls: type[M], harness: Harness) -> type[M]:
        """This machine bound to ``harness``: what ``run_state_machine_as_test`` is given."""
        return type(cls.__name__, (cls,), {"harness": harness})
