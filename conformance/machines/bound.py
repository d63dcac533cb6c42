"""What every machine shares: the harness of the test that runs it.

Hypothesis builds a machine with no arguments, once per example, so the test's harness is
bound to a subclass made for that test rather than passed in.
"""

from __future__ import annotations

from typing import Self

from hypothesis.stateful import RuleBasedStateMachine

from conformance.harness import FakeClock, Harness


class HarnessMachine(RuleBasedStateMachine):
    """A rule-based machine that drives the target of one test's harness."""

    harness: Harness
    #: The kit's clock, if the target takes it (rules that move time have it as their precondition).
    clock: FakeClock | None = None

    def kit_clock(self) -> FakeClock:
        """The kit's clock, in a rule whose precondition is that the target takes it."""
        assert self.clock is not None, "a rule that moves time ran without its precondition"
        return self.clock

    @classmethod
    def for_harness(cls, harness: Harness) -> type[Self]:
        """This machine bound to ``harness``: what ``run_state_machine_as_test`` is given."""
        return type(cls.__name__, (cls,), {"harness": harness})
