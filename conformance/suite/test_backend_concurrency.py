"""BK-18: concurrent writes on one instance are atomic.

Direct probes with many writers released together on the test's event loop. The full
linearizability check of random concurrent histories belongs to the CC clauses.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from conformance import VersionConflictError
from conformance.harness import CheckedBackend, SyncBackend
from conformance.harness.together import run_together, warm_up
from conformance.spec import covers, require
from conformance.strategies import record_bytes

pytestmark = pytest.mark.conformance_target("backend")

WRITERS = 8


@covers("BK-18")
def test_concurrent_puts_get_distinct_versions(backend: SyncBackend) -> None:
    async def program(checked: CheckedBackend) -> list[Any]:
        await warm_up(checked, WRITERS)
        return await run_together([partial(checked.put, "hot", record_bytes({"writer": n}, None, serial=n)) for n in range(WRITERS)])

    versions = backend.run(program)
    require("BK-18", len(set(versions)) == WRITERS,
            f"{WRITERS} concurrent puts to one key returned versions {sorted(versions)}; each write must be handed its own")
    final = backend.get("hot")
    require("BK-18", final.version == max(versions),
            f"after {WRITERS} concurrent puts the key is at version {final.version}, not the last one handed out ({max(versions)})")


@covers("BK-18", "BK-8")
def test_concurrent_cas_has_one_winner(backend: SyncBackend) -> None:
    start = backend.put("hot", record_bytes("start", None))

    async def program(checked: CheckedBackend) -> list[Any]:
        await warm_up(checked, WRITERS)
        return await run_together(
            [partial(checked.put_if_version, "hot", record_bytes({"writer": n}, None, serial=n), start) for n in range(WRITERS)]
        )

    results = backend.run(program)
    winners = [r for r in results if not isinstance(r, VersionConflictError)]
    losers = [r for r in results if isinstance(r, VersionConflictError)]
    require("BK-18", len(winners) == 1, f"{WRITERS} concurrent CAS from version {start}: winners returned {winners}; exactly one must win")
    won = winners[0]
    require("BK-8", all((e.key, e.expected, e.actual) == ("hot", start, won) for e in losers),
            f"losers report (key, expected, actual) = {sorted({(e.key, e.expected, e.actual) for e in losers})}, "
            f"expected ('hot', {start}, {won})")
    require("BK-18", backend.get("hot").version == won, f"the key moved past version {won} although only one CAS may win")
