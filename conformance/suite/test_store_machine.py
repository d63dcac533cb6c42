"""The TaskStore stateful machine: several owners, every operation and the clock, checked against the model."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from conformance.harness import Harness
from conformance.machines.task_store import TaskStoreMachine
from conformance.plugin.profiles import machine
from conformance.spec import covers

pytestmark = pytest.mark.conformance_target("store")


@pytest.mark.conformance_machine
@covers("TS-3", "TS-4", "TS-5", "TS-6", "TS-7", "TS-8", "TS-9", "TS-10", "TS-11", "TS-12", "TS-13", "TS-14", "TS-15", "TS-16", "TS-17", "TS-22")
def test_store_agrees_with_model(harness: Harness) -> None:
    if harness.store_clock(harness.new_clock()) is None:
        pytest.skip("the store factory does not accept clock=, so the kit cannot predict the times it stamps")
    run_state_machine_as_test(machine(TaskStoreMachine.for_harness(harness)), settings=settings(settings.default))
