"""The stateful machine: random programs over all six methods and the clock, checked against the model at every step."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from conformance.harness import Harness
from conformance.machines.backend import BackendMachine
from conformance.plugin.profiles import machine
from conformance.spec import covers

pytestmark = pytest.mark.conformance_target("backend")


@pytest.mark.conformance_machine
@covers("BK-4", "BK-5", "BK-6", "BK-7", "BK-8", "BK-9", "BK-10", "BK-11", "BK-12", "BK-13", "BK-15", "BK-16", "BK-17")
def test_backend_agrees_with_model(harness: Harness) -> None:
    run_state_machine_as_test(machine(BackendMachine.for_harness(harness)), settings=settings(settings.default))
