"""CC-2, CC-7 and CC-8 for task stores: concurrent programs over a few tasks, recorded and checked.

The races the store's domain logic must win: status updates from several workers, complete
against cancel, set_variables from two clients, creates against the per-owner quota, and
cleanup against a rewrite of an expired task; the same three ways of making them show as
for backends (``test_backend_races.py``).
"""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance.contract.task import TaskStatus
from conformance.harness import FakeClock, Harness
from conformance.harness.schedule import SCHEDULE_LIMIT, Schedule, every_schedule
from conformance.machines.load import STORE_LOAD, load_store
from conformance.machines.races import race_store
from conformance.plugin.profiles import at_most, factor, scaled
from conformance.spec import covers
from conformance.strategies.programs import (
    EXPIRED,
    LIVE,
    TaskProgram,
    TaskStep,
    schedules,
    task_programs,
)

pytestmark = pytest.mark.conformance_target("store")

CLAUSES = ("CC-2", "CC-7", "CC-8")

#: Tiny programs holding the classic store races, each walked under every schedule.
TINY: dict[str, TaskProgram] = {
    "complete-cancel": TaskProgram((LIVE,), ((TaskStep("complete", status=TaskStatus.COMPLETED),), (TaskStep("cancel"),))),
    "status-status": TaskProgram(
        (LIVE,), ((TaskStep("update_status", status=TaskStatus.INPUT_REQUIRED),), (TaskStep("update_status", status=TaskStatus.FAILED),))
    ),
    "variables-variables": TaskProgram(
        (LIVE,), ((TaskStep("set_variables"), TaskStep("get")), (TaskStep("set_variables", variable="w"), TaskStep("set_variables")))
    ),
    "quota": TaskProgram((LIVE, LIVE), ((TaskStep("create"),), (TaskStep("create"),))),
    "quota-three": TaskProgram((LIVE,), ((TaskStep("create"),), (TaskStep("create"),), (TaskStep("create"),))),
    "cleanup-rewrite": TaskProgram((EXPIRED, LIVE), ((TaskStep("cleanup"),), (TaskStep("set_variables"), TaskStep("create")))),
    "result-complete": TaskProgram((LIVE,), ((TaskStep("set_result"), TaskStep("get_result")), (TaskStep("complete", status=TaskStatus.FAILED),))),
}

#: Releases in the repeat test (fewer under the smoke profile), and the program released.
REPEATS = 20
RELEASED = TaskProgram(
    (LIVE, LIVE, EXPIRED),
    (
        (TaskStep("set_variables"), TaskStep("update_status", status=TaskStatus.INPUT_REQUIRED), TaskStep("create")),
        (TaskStep("set_variables", variable="w"), TaskStep("complete", status=TaskStatus.COMPLETED), TaskStep("get")),
        (TaskStep("cancel"), TaskStep("create"), TaskStep("set_variables", task=1, delete=True)),
        (TaskStep("cleanup"), TaskStep("create", foreign=True), TaskStep("list")),
    ),
)


@pytest.fixture
def race_clock(store_clock: FakeClock | None) -> FakeClock:
    if store_clock is None:
        pytest.skip("the store does not accept a clock= keyword, so the model cannot predict the times it stamps")
    return store_clock


@covers(*CLAUSES)
@given(program=task_programs(), choices=schedules())
def test_concurrent_histories_are_linearizable(
    harness: Harness, race_clock: FakeClock, program: TaskProgram, choices: tuple[int, ...]
) -> None:
    race_store(harness, FakeClock(race_clock()), program, Schedule(choices))


@covers(*CLAUSES)
@pytest.mark.parametrize("race", sorted(TINY))
def test_tiny_races_under_every_schedule(harness: Harness, race_clock: FakeClock, race: str) -> None:
    for _schedule, _race in every_schedule(lambda schedule: race_store(harness, FakeClock(race_clock()), TINY[race], schedule),
                                                limit=scaled(SCHEDULE_LIMIT)):
        pass  # each run raises the clause its history breaks


@covers(*CLAUSES)
def test_programs_released_together_many_times(harness: Harness, race_clock: FakeClock) -> None:
    for _ in range(at_most(REPEATS)):
        race_store(harness, FakeClock(race_clock()), RELEASED, Schedule())


@covers(*CLAUSES)
def test_races_under_load(harness: Harness, race_clock: FakeClock) -> None:
    load_store(harness, race_clock, STORE_LOAD.scaled(float(factor())))
