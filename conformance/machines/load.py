"""Races provoked by load, for targets the kit cannot steer: threads, servers, other processes.

Steering the ready queue finds races inside the kit's event loop. Behind a thread pool, a
network or a pipe, the interleaving is the target's own, and a small program released a few
times rarely lands two writers in a read-then-write window. So: many clients at once on one
key or one owner, payloads large enough to widen the window (up to the declared record
limit: copying a megabyte takes long enough for another writer to slip in), round after round
until a count or a time budget is spent. Every round's history goes to the same
linearizability checker as the drawn races.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from conformance.checker import check
from conformance.contract.errors import StorageError
from conformance.harness.clock import FakeClock
from conformance.harness.harness import Harness, wall_clock
from conformance.harness.schedule import Schedule
from conformance.harness.together import warm_up
from conformance.machines.judge import judge
from conformance.machines.kv_driver import invoke
from conformance.machines.races import (
    CHECK_BUDGET,
    RACE_LIMITS,
    kv_observe,
    race_store,
    run_clients,
    verdict_or_raise,
)
from conformance.models import kv
from conformance.models.operation import Operation
from conformance.strategies.programs import LIVE, RACE_KEYS, TaskProgram, TaskStep
from conformance.strategies.records import record_bytes


@dataclass(frozen=True)
class Load:
    """How hard to push: clients per round, the rounds and seconds to spend, and the payload sizes cycled through."""

    clients: int = 32
    rounds: int = 24
    seconds: float = 10.0
    #: Bytes of padding per write, cycled round by round: small ones race where a bridge reads many
    #: requests per chunk, large ones where copying the data is the window.
    payloads: tuple[int, ...] = (64, 16 * 1024, 256 * 1024, 1024 * 1024)

    def scaled(self, factor: int) -> Load:
        """The same load for ``factor`` times the rounds and time (the thorough profile)."""
        return Load(self.clients, self.rounds * factor, self.seconds * factor, self.payloads)


#: The store's load: fewer clients (every create is several backend calls, and the checker
#: orders them all), the same rounds.
STORE_LOAD = Load(clients=12, rounds=24, seconds=10.0, payloads=(0,))


def rounds(load: Load) -> Iterator[int]:
    """Round numbers until the count budget, cut short once the time budget is spent."""
    started = time.monotonic()
    for number in range(load.rounds):
        if number and time.monotonic() - started > load.seconds:
            return
        yield number


def load_backend(harness: Harness, load: Load) -> int:
    """Rounds of ``load.clients`` writers on one key (all puts, or all compare-and-swaps from one version); raise the clause a history breaks.

    Returns the rounds run.
    """
    limit = harness.capabilities.record_limit
    done = 0
    for number in rounds(load):
        kind = "put" if number % 2 == 0 else "cas"
        pad = "x" * min(load.payloads[(number // 2) % len(load.payloads)], limit // 2)
        _load_round(harness, kind, load.clients, pad)
        done += 1
    return done


def _load_round(harness: Harness, kind: str, clients: int, pad: str) -> None:
    key = RACE_KEYS[0]
    with harness.fresh_backend() as (backend, clock):
        model = kv.KVModel(harness.capabilities.expired_records)
        state = model.initial(clock() if clock is not None else wall_clock())
        preload = kv.Put(key, record_bytes({"preload": key}, None, serial=1))
        state = judge(model, state, preload, invoke(backend, preload))
        backend.run(lambda checked: warm_up(checked, clients))
        ops: list[list[Operation]] = []
        for client in range(1, clients + 1):
            data = record_bytes({"client": client, "pad": pad}, None, serial=1000 * client)
            ops.append([kv.Put(key, data) if kind == "put" else kv.PutIfVersion(key, data, 1)])
        race = run_clients(backend, ops, kv_observe, (StorageError,), Schedule(), [kv.Get(key)])
        verdict = check(race.history, model, initial=state, budget=CHECK_BUDGET)
        verdict_or_raise(harness, race, verdict, f"backend under load ({clients} clients, {kind}, {len(pad)} B each)")


def load_store(harness: Harness, clock: FakeClock, load: Load = STORE_LOAD) -> int:
    """Rounds of creates racing for an owner's last free slots (quota 3, one task held), and of writers on one task's variables.

    Returns the rounds run.
    """
    quota = RACE_LIMITS.max_tasks_per_owner
    creates = TaskProgram((LIVE,) * (quota - 1), tuple((TaskStep("create"),) for _ in range(load.clients)))
    writers = TaskProgram((LIVE,), tuple((TaskStep("set_variables", variable=f"v{n}"),) for n in range(load.clients)))
    done = 0
    for number in rounds(load):
        race_store(harness, FakeClock(clock()), creates if number % 2 == 0 else writers, Schedule())
        done += 1
    return done
