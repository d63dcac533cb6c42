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

from conformance.harness.clock import FakeClock
from conformance.harness.harness import Harness
from conformance.harness.schedule import Schedule
from conformance.machines.races import RACE_LIMITS, race_backend, race_store
from conformance.strategies.programs import ABSENT, LIVE, KVProgram, KVStep, TaskProgram, TaskStep


@dataclass(frozen=True)
class Load:
    """How hard to push: clients per round, the rounds and seconds to spend, and the payload sizes cycled through."""

    clients: int = 32
    rounds: int = 24
    seconds: float = 10.0
    #: Bytes of padding per write, cycled round by round: small ones race where a bridge reads many
    #: requests per chunk, large ones where copying the data is the window.
    payloads: tuple[int, ...] = (64, 16 * 1024, 256 * 1024, 1024 * 1024)

    def scaled(self, factor: float) -> Load:
        """The same load for ``factor`` times the rounds and time (thorough: 16 times, smoke: a fraction); never under one round."""
        return Load(self.clients, max(1, int(self.rounds * factor)), self.seconds * factor, self.payloads)


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
        pad = min(load.payloads[(number // 2) % len(load.payloads)], limit // 2)
        writers = KVProgram((LIVE, ABSENT, ABSENT), tuple((KVStep(kind, expected=1, pad=pad),) for _ in range(load.clients)))
        race_backend(harness, writers, Schedule(), warm=True, title=f"backend under load ({load.clients} clients, {kind}, {pad} B each)")
        done += 1
    return done


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
