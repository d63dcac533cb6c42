"""CC-1, CC-3 to CC-8 for backends: concurrent programs, recorded and checked for linearizability.

Four ways to make races show, by what the target allows (``conformance.harness.schedule``):
drawn programs under drawn schedules (they shrink to the two calls that collide), every
schedule of a few tiny programs that hold the classic races, programs released at once
many times over with a short thread switch interval, and load: many writers of large
records on one key, round after round (``conformance.machines.load``), for backends on
threads, servers or other processes, where the kit cannot steer the interleaving.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from conformance.harness import Harness
from conformance.harness.schedule import SCHEDULE_LIMIT, Schedule, every_schedule
from conformance.machines.load import Load, load_backend
from conformance.machines.races import race_backend
from conformance.plugin.profiles import at_most, factor, scaled
from conformance.spec import covers
from conformance.strategies.programs import (
    ABSENT,
    EXPIRED,
    LIVE,
    KVProgram,
    KVStep,
    kv_programs,
    schedules,
)

pytestmark = pytest.mark.conformance_target("backend")

CLAUSES = ("CC-1", "CC-3", "CC-4", "CC-5", "CC-6", "CC-7", "CC-8")

#: Tiny programs holding the classic races, each walked under every schedule.
TINY: dict[str, KVProgram] = {
    "put-put": KVProgram((ABSENT, ABSENT, ABSENT), ((KVStep("put"),), (KVStep("put"),))),
    "cas-cas": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("cas", expected=1),), (KVStep("cas", expected=1),))),
    "put-cas": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("put"),), (KVStep("cas", expected=1), KVStep("get")))),
    "delete-cas": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("delete"),), (KVStep("cas", expected=1),))),
    "put-delete-get": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("put"), KVStep("get")), (KVStep("delete"), KVStep("put")))),
    "cleanup-rewrite": KVProgram((EXPIRED, ABSENT, ABSENT), ((KVStep("cleanup"),), (KVStep("put"), KVStep("get")))),
    "cleanup-cas": KVProgram((EXPIRED, ABSENT, ABSENT), ((KVStep("cleanup"),), (KVStep("cas", expected=1),))),
    "list-put": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("list", prefix=1),), (KVStep("put", key=1), KVStep("put")))),
    "three-writers": KVProgram((LIVE, ABSENT, ABSENT), ((KVStep("put"),), (KVStep("cas", expected=1),), (KVStep("cas", expected=2),))),
}

#: Releases in the repeat test (fewer under the smoke profile), and the program released.
REPEATS = 20
RELEASED = KVProgram(
    (LIVE, ABSENT, EXPIRED),
    (
        (KVStep("put"), KVStep("cas", expected=2), KVStep("get")),
        (KVStep("cas", expected=1), KVStep("put"), KVStep("delete", key=1)),
        (KVStep("put", key=1), KVStep("cleanup"), KVStep("put", key=2)),
        (KVStep("cas", expected=1), KVStep("put", key=1), KVStep("list")),
    ),
)


@covers(*CLAUSES)
@given(program=kv_programs(), choices=schedules())
def test_concurrent_histories_are_linearizable(harness: Harness, program: KVProgram, choices: tuple[int, ...]) -> None:
    race_backend(harness, program, Schedule(choices))


@covers(*CLAUSES)
@pytest.mark.parametrize("race", sorted(TINY))
def test_tiny_races_under_every_schedule(harness: Harness, race: str) -> None:
    for _schedule, _race in every_schedule(lambda schedule: race_backend(harness, TINY[race], schedule),
                                                limit=scaled(SCHEDULE_LIMIT)):
        pass  # each run raises the clause its history breaks


@covers(*CLAUSES)
def test_programs_released_together_many_times(harness: Harness) -> None:
    for _ in range(at_most(REPEATS)):
        race_backend(harness, RELEASED, Schedule())


@covers(*CLAUSES)
def test_races_under_load(harness: Harness) -> None:
    load_backend(harness, Load().scaled(float(factor())))
