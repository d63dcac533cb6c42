"""The kit's verdict on its galleries: every broken backend and task store fails for its named
clause, and every correct one passes the whole kit (each on one loop here, both loops between
them). Each run is a real ``pytest --backend=...`` or ``pytest --store=...`` in a fresh process,
as an author would type it.

A broken target is run with ``--conformance-clause`` set to the clause its bug breaks: the
kit's tests for that clause, under the default profile, must catch it, and the run's first
failure must already name it. (The correct targets run everything, so the galleries prove
catches and the correct runs prove no false alarm.)
"""

from __future__ import annotations

import pytest

from testbed.backends import broken as broken_backends
from testbed.backends.correct import CORRECT_TARGETS
from tests.conftest import assert_fails_for_clause, assert_passes_whole_kit
from testbed.stores import broken as broken_stores

BROKEN = [("--backend", f"testbed.backends.broken:{cls.__name__}", cls) for cls in broken_backends.GALLERY] + [
    ("--store", f"testbed.stores.broken:{cls.__name__}", cls) for cls in broken_stores.GALLERY
]


#: The loop each correct target is checked on here, spread over both loops, to keep the project's
#: tests near 11 minutes on 2 cores (the reference backend runs on both in test_plugin_cli's
#: README-command test). Each passes on both loops, twice in a row, in
#: `python benchmarks/kit_runtime.py --stores --loop all --repeats 2` (benchmarks/RESULTS.md).
ONE_LOOP = {
    # Its calls run on worker threads, which tests/test_engine_sqlite.py runs on trio too.
    "testbed.backends.correct:threaded_backend_on_the_wall_clock": "asyncio",
    # The slowest whole-kit runs, spread over the two loops.
    "testbed.backends.correct:YieldingBackend": "trio",
    "testbed.backends.correct:HidingBackend": "asyncio",
    "testbed.independent.backends_a:DictBackend": "asyncio",
    "testbed.independent.backends_a:ThreadedCounterBackend": "trio",
    "testbed.independent.backends_b:YieldingHiddenBackend": "asyncio",
    "testbed.independent.backends_b:SortedHiddenBackend": "trio",
    # The reference store over the reference backend, and the independent stores.
    "reference_backend:in_memory_task_store": "trio",
    "testbed.independent.store_locked_dict:LockedDictStore": "asyncio",
    "testbed.independent.store_cas_retry:CasRetryStore": "trio",
    # The kit's store over a backend on worker threads: a quota race there is the threads' timing.
    "testbed.stores.threaded:ThreadedStore": "asyncio",
}


#: The reference backend's whole-kit run on both loops is test_plugin_cli's README-command test.
GALLERY_CORRECT = [(flag, spec) for flag, spec in CORRECT_TARGETS if spec != "reference_backend:InMemoryBackend"]


@pytest.mark.slow
@pytest.mark.parametrize(("flag", "spec"), GALLERY_CORRECT, ids=[spec.rsplit(":", 1)[1] for _, spec in GALLERY_CORRECT])
def test_correct_targets_pass_the_whole_kit(pytester: pytest.Pytester, flag: str, spec: str) -> None:
    assert_passes_whole_kit(pytester, f"{flag}={spec}", loops=[ONE_LOOP[spec]])


@pytest.mark.parametrize(("flag", "spec", "broken"), BROKEN, ids=[cls.__name__ for _, _, cls in BROKEN])
def test_broken_target_fails_for_its_clause(pytester: pytest.Pytester, flag: str, spec: str, broken: type) -> None:
    assert_fails_for_clause(pytester, broken, f"{flag}={spec}", first=True)


RACES = [(flag, spec, broken) for flag, spec, broken in BROKEN if getattr(broken, "races", None)]
#: Races on one key must shrink to this many clients and calls (issue 4), on the default loop.
SINGLE_KEY_SHRINK = (2, 4)


@pytest.mark.parametrize(("flag", "spec", "broken"), RACES, ids=[cls.__name__ for _, _, cls in RACES])
def test_race_machines_catch_planted_races_and_shrink_them(pytester: pytest.Pytester, flag: str, spec: str, broken: type) -> None:
    """The race machines alone (the CC tests, on the default profile and loop) catch each planted race, shrunk."""
    verdict = assert_fails_for_clause(pytester, broken, f"{flag}={spec}", clause=broken.races, shrink=True)
    drawn = [t for nodeid, t in verdict["tests"].items() if "::test_concurrent_histories_are_linearizable" in nodeid]
    assert drawn and all(t["outcome"] == "failed" for t in drawn), f"the drawn programs missed {broken.__name__}"
    evidence = drawn[0]["evidence"]
    if broken.races in ("CC-3", "CC-4"):  # races on one key
        clients, calls = SINGLE_KEY_SHRINK
        assert evidence["clients"] <= clients and evidence["calls"] <= calls, f"{broken.__name__} shrank only to {evidence}"
    else:
        assert evidence["clients"] >= 2, evidence
