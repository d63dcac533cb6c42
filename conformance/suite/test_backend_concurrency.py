"""BK-18: concurrent writes on one instance are atomic.

Direct probes with many writers released together on the test's event loop. The full
linearizability check of random concurrent histories belongs to the CC clauses.
"""

from __future__ import annotations

from typing import Any

from conformance import VersionConflictError
from conformance.harness import CheckedBackend, SyncBackend
from conformance.harness.together import run_together, warm_up
from conformance.spec import covers, require
from conformance.strategies import record_bytes

WRITERS = 8


@covers("BK-18")
def test_concurrent_puts_get_distinct_versions(backend: SyncBackend) -> None:
    async def program(checked: CheckedBackend) -> list[Any]:
        await warm_up(checked, WRITERS)
        return await run_together([lambda n=n: checked.put("hot", record_bytes({"writer": n}, None, serial=n)) for n in range(WRITERS)])

    versions = backend.run(program)
    require("BK-18", sorted(versions) == list(range(1, WRITERS + 1)),
            f"{WRITERS} concurrent puts to one key returned versions {sorted(versions)}; each of 1..{WRITERS} exactly once")
    final = backend.get("hot").version
    require("BK-18", final == WRITERS, f"after {WRITERS} concurrent puts the key is at version {final}")


@covers("BK-18")
def test_concurrent_cas_has_one_winner(backend: SyncBackend) -> None:
    backend.put("hot", record_bytes("start", None))

    async def program(checked: CheckedBackend) -> list[Any]:
        await warm_up(checked, WRITERS)
        return await run_together(
            [lambda n=n: checked.put_if_version("hot", record_bytes({"writer": n}, None, serial=n), 1) for n in range(WRITERS)]
        )

    results = backend.run(program)
    winners = [r for r in results if not isinstance(r, VersionConflictError)]
    losers = [r for r in results if isinstance(r, VersionConflictError)]
    require("BK-18", winners == [2], f"{WRITERS} concurrent CAS from version 1: winners returned {winners}; exactly one must win, with 2")
    require("BK-18", all(e.actual == 2 for e in losers), f"losers report actual versions {[e.actual for e in losers]}, expected 2")
    require("BK-18", backend.get("hot").version == 2, "the key moved past version 2 although only one CAS may win")
