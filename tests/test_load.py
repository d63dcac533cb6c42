"""Races the kit cannot steer, provoked by load: planted on real threads, in another Python process, and in Rust.

Each planted race must fail for its clause; the load test alone must catch the ones the
small released programs miss, and correct targets on threads must pass.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest

from testbed.backends.threaded import ThreadedReadThenWritePut
from testbed.stores.threaded import ThreadedQuotaCheckThenCreate
from testbed.wire.examples import rust_command
from tests.conftest import assert_fails_for_clause, run_kit

SERVE = f"{sys.executable} -m conformance.serve"

PLANTED: list[tuple[Any, str]] = [
    (ThreadedReadThenWritePut, "--backend=testbed.backends.threaded:ThreadedReadThenWritePut"),
    (ThreadedQuotaCheckThenCreate, "--store=testbed.stores.threaded:ThreadedQuotaCheckThenCreate"),
    (ThreadedReadThenWritePut, f"--backend-command={SERVE} --backend testbed.backends.threaded:ThreadedReadThenWritePut"),
    (ThreadedQuotaCheckThenCreate, f"--store-command={SERVE} --store testbed.stores.threaded:ThreadedQuotaCheckThenCreate"),
]


@pytest.mark.parametrize(("broken", "flag"), PLANTED, ids=["threads-put", "threads-quota", "process-put", "process-quota"])
def test_a_race_on_threads_fails_for_its_clause(pytester: pytest.Pytester, broken: Any, flag: str) -> None:
    assert_fails_for_clause(pytester, broken, flag)


@pytest.mark.parametrize(
    ("flag", "clause"),
    [
        ("--store=testbed.stores.threaded:ThreadedQuotaCheckThenCreate", "CC-2"),
        ("RUST", "CC-4"),
    ],
    ids=["threads-quota", "rust-put-in-memory"],
)
def test_load_alone_catches_a_race_it_cannot_steer(pytester: pytest.Pytester, flag: str, clause: str) -> None:
    """The load test by itself: rounds of many clients on one key or one owner's last slot expose the race."""
    if flag == "RUST":  # the in-memory read-then-write put: only a lock release and a copy between read and write
        flag = f"--backend-command={rust_command('read-then-write-put-in-memory')}"
    result, verdict = run_kit(pytester, flag, "-k", "under_load", "--conformance-shrink=no")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and verdict is not None, result.stdout.str()[-3000:]
    assert clause in verdict["violated"], verdict["violated"]
    assert {nodeid.split("::")[1].split("[")[0] for nodeid in verdict["tests"]} == {"test_races_under_load"}


def test_writes_the_engine_fails_under_load_are_unknown_outcomes_not_violations(pytester: pytest.Pytester) -> None:
    """A correct backend whose engine drops writes under contention (BackendError, applied or not) passes every race test."""
    result, verdict = run_kit(pytester, "--backend=testbed.backends.correct:FailsWritesUnderContention", "-k", "races")
    assert result.ret == pytest.ExitCode.OK and verdict is not None, result.stdout.str()[-3000:]
    assert not verdict["violated"], verdict["violated"]
    assert all(verdict["clauses"][c]["status"] == "met" for c in ("CC-1", "CC-2", "CC-7")), verdict["clauses"]
