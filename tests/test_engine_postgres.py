"""The PostgreSQL example backend on a real server: it passes the whole kit, run as a user would
run it; the engine's classic bugs are caught, each for its clause; and what the kit cannot
check (it needs a fresh, empty instance each time) holds: named namespaces are shared and
persist, namespaces never see each other's rows, and a generated one leaves nothing behind.

One server per test session (per xdist worker), started by ``testbed.engines.postgres``.
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from conformance import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    VersionedRecord,
)
from examples.postgres_backend import PostgresBackend
from testbed.backends import broken_postgres
from tests.conftest import ROOT, assert_fails_for_clause, assert_passes_whole_kit
from testbed.engines import postgres
from testbed.engines.process import running

BROKEN = broken_postgres.GALLERY
RACES = [cls for cls in BROKEN if cls.races]
#: A race must be shown in a history this small (clients, calls): one of the tiny races.
TINY_HISTORY = (3, 4)


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    with running("postgres", postgres.start) as server:
        yield postgres.dsn(server)


def _rows(dsn: str, namespace: str) -> list[tuple[bytes, int]]:
    """The namespace's rows as the table holds them, read behind the backend's back."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT key, version FROM task_records WHERE namespace = %s ORDER BY key", (namespace,)
        ).fetchall()
    return [(bytes(key), int(version)) for key, version in rows]


# ------------------------------------------------------------------ the kit's verdicts


@pytest.mark.slow
def test_postgres_example_backend_passes_the_whole_kit(pytester: pytest.Pytester, postgres_dsn: str) -> None:
    """asyncio only: the backend declares loops={"asyncio"} (psycopg's async API is asyncio's)."""
    assert_passes_whole_kit(
        pytester, "--backend=examples.postgres_backend:PostgresBackend", f"--backend-option=dsn={postgres_dsn}",
        loops=["asyncio"],
    )


@pytest.mark.parametrize("broken", BROKEN, ids=[cls.__name__ for cls in BROKEN])
def test_postgres_broken_variant_fails_for_its_clause(pytester: pytest.Pytester, postgres_dsn: str, broken: Any) -> None:
    assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_postgres:{broken.__name__}", f"--backend-option=dsn={postgres_dsn}", first=not broken.races
    )


def test_unescaped_like_is_caught_by_the_security_gate_too(pytester: pytest.Pytester, postgres_dsn: str) -> None:
    """The owner-prefix probe (SEC-1) catches the LIKE listing on its own: owner ``a%`` lists owner ``a``'s tasks."""
    broken = broken_postgres.UnescapedLike
    assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_postgres:{broken.__name__}", f"--backend-option=dsn={postgres_dsn}",
        clause="SEC-1",
    )


@pytest.mark.parametrize("broken", RACES, ids=[cls.__name__ for cls in RACES])
def test_postgres_races_are_caught_by_the_race_machines_and_shrunk(pytester: pytest.Pytester, postgres_dsn: str,
                                                                    broken: Any) -> None:
    """The CC tests alone catch each planted race on a real server, shown in a tiny history.

    Unlike the in-memory gallery, the drawn programs are not required to catch it: the kit
    steers which client's step runs next, but the server decides when each reply arrives,
    so the interleaving a drawn program needs may not occur, and one that does cannot be
    replayed to shrink (Hypothesis reports it as flaky, without the history). The tiny
    races, walked under every schedule, release the colliding calls together.
    """
    verdict = assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_postgres:{broken.__name__}", f"--backend-option=dsn={postgres_dsn}",
        clause=broken.races,
    )
    # The tiny history may be reported under CC-1 or under the one-line check it trips first (CC-3, CC-4).
    # A race's evidence names its clients and calls (every failure's also holds its failing calls and script).
    caught = [t for t in verdict["tests"].values() if "clients" in t.get("evidence", {}) and any(c.startswith("CC-") for c in t.get("violated", []))]
    clients, calls = TINY_HISTORY
    assert any(t["evidence"]["clients"] <= clients and t["evidence"]["calls"] <= calls for t in caught), (
        f"{broken.__name__} was shown only in large histories: {[t['evidence'] for t in caught]}"
    )


# ------------------------------------------------------------------ what the kit cannot check


def test_named_namespace_is_shared_by_instances_and_persists_after_aclose(postgres_dsn: str) -> None:
    namespace = f"tenant-{uuid.uuid4().hex}"
    key = "task:owner\x00:1"

    async def scenario() -> None:
        async with PostgresBackend(postgres_dsn, namespace=namespace) as first:
            second = PostgresBackend(postgres_dsn, namespace=namespace)
            assert await first.put(key, b"{}") == 1
            assert (await second.get(key)).version == 1
            assert await second.put_if_version(key, b"[]", 1) == 2
            await second.aclose()
        reopened = PostgresBackend(postgres_dsn, namespace=namespace)
        listed = [(k, r.data, r.version) for k, r in await reopened.list_by_prefix("task:owner\x00")]
        assert listed == [(key, b"[]", 2)]
        await reopened.aclose()

    asyncio.run(scenario())
    assert _rows(postgres_dsn, namespace) == [(key.encode(), 2)], "aclose deleted a named namespace's rows"


def test_namespaces_never_see_each_others_rows(postgres_dsn: str) -> None:
    expired = b'{"expiresAt":"2000-01-01T00:00:00.000Z"}'

    async def scenario() -> None:
        async with PostgresBackend(postgres_dsn) as mine, PostgresBackend(postgres_dsn) as theirs:
            assert await theirs.put("k", expired) == 1
            assert await theirs.put("k2", b"{}") == 1
            assert await mine.list_by_prefix("") == []
            with pytest.raises(NotFoundError):
                await mine.get("k")
            with pytest.raises(NotFoundError):
                await mine.put_if_version("k", b"{}", 1)
            assert await mine.delete("k") is False
            assert await mine.cleanup_expired() == 0
            assert await mine.put("k", b"mine") == 1  # its own record, at its own version 1
            assert (await theirs.get("k")).data == expired
            assert await theirs.cleanup_expired() == 1
            assert (await mine.get("k")).data == b"mine"
            assert [k for k, _ in await theirs.list_by_prefix("")] == ["k2"]

    asyncio.run(scenario())


def test_aclose_of_a_generated_namespace_leaves_no_rows(postgres_dsn: str) -> None:
    async def scenario() -> str:
        backend = PostgresBackend(postgres_dsn)
        for n in range(20):
            await backend.put(f"key/{n}", b'{"expiresAt":null}')
        assert len(_rows(postgres_dsn, backend.namespace)) == 20
        await backend.aclose()
        await backend.aclose()  # idempotent
        with pytest.raises(BackendError):
            await backend.get("key/1")
        return backend.namespace

    namespace = asyncio.run(scenario())
    assert namespace.startswith("generated:")
    assert _rows(postgres_dsn, namespace) == []


async def _until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Ask the server until ``condition`` holds (each question is a round trip; no sleeping)."""
    deadline = time.monotonic() + 20
    while not await condition():
        assert time.monotonic() < deadline, f"never happened: {what}"


async def _sessions_waiting_for_locks(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as probe:
        cur = await probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


def test_a_cleanup_takes_effect_at_one_instant_while_rows_are_rewritten(postgres_dsn: str) -> None:
    """The anomaly a lone DELETE has under READ COMMITTED, staged step by step; the race machines meet it only by luck.

    Key ``a`` is expired, ``b`` live. A transaction is rewriting ``a`` (live) and has not
    committed; a cleanup starts; then a put makes ``b`` expired. Were the cleanup's DELETE
    alone, it would wait for ``a``'s row lock, let the put of ``b`` commit meanwhile, then
    keep ``a`` (live by then) and never look at ``b`` again: a cleanup of nothing, although
    at every instant of its call one of the two was expired. Locked, the cleanup waits for
    the rewrite before deciding, and the put waits for the cleanup.
    """
    namespace = f"cleanup-{uuid.uuid4().hex}"
    past = b'{"expiresAt":"2000-01-01T00:00:00.000Z"}'

    async def scenario() -> None:
        async with PostgresBackend(postgres_dsn, namespace=namespace) as cleaner, \
                PostgresBackend(postgres_dsn, namespace=namespace) as writer:
            await writer.put("a", past)
            await writer.put("b", b"{}")
            async with await psycopg.AsyncConnection.connect(postgres_dsn) as rewriter:  # a transaction, left open
                await rewriter.execute(
                    "UPDATE task_records SET data = %s, version = version + 1, expires_at = NULL"
                    " WHERE namespace = %s AND key = %s",
                    (b"{}", namespace, b"a"),
                )
                cleanup = asyncio.ensure_future(cleaner.cleanup_expired())

                async def cleanup_waits() -> bool:
                    return await _sessions_waiting_for_locks(postgres_dsn) >= 1

                await _until(cleanup_waits, "the cleanup waits for the open rewrite of 'a'")
                expire_b = asyncio.ensure_future(writer.put("b", past))

                async def put_finished_or_waits() -> bool:
                    return expire_b.done() or await _sessions_waiting_for_locks(postgres_dsn) >= 2

                await _until(put_finished_or_waits, "the put of 'b' finishes or waits")
                assert not expire_b.done(), "the put of 'b' committed while the cleanup was in flight, undecided"
                await rewriter.commit()
            assert await cleanup == 0  # at its instant: 'a' rewritten live, 'b' not yet expired
            assert await expire_b == 2
            assert (await writer.get("a")).version == 2
            assert await writer.get("b") == VersionedRecord(past, 2)
            assert await cleaner.cleanup_expired() == 1  # now 'b' is expired, and goes

    try:
        asyncio.run(scenario())
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM task_records WHERE namespace = %s", (namespace,))


def test_driver_failures_become_contract_errors_with_their_cause(postgres_dsn: str) -> None:
    """A key too long for a B-tree entry is the engine out of room; a dead server is a BackendError."""

    async def scenario() -> None:
        async with PostgresBackend(postgres_dsn) as backend:
            with pytest.raises(CapacityExceededError) as too_long:
                await backend.put(secrets.token_urlsafe(9_000), b"{}")  # random: TOAST cannot compress it under the ~2,700-byte index limit
            assert isinstance(too_long.value.__cause__, psycopg.Error)
            assert await backend.list_by_prefix("") == []
        nobody = PostgresBackend("postgresql://postgres@127.0.0.1:1/postgres")
        with pytest.raises(BackendError) as refused:
            await nobody.get("k")
        assert refused.value.__cause__ is not None
        await nobody.aclose()

    asyncio.run(scenario())


def test_the_table_is_created_safely_by_processes_starting_together(postgres_dsn: str) -> None:
    """Several processes open their first instance at once on a database without the table."""
    database = f"fresh_{uuid.uuid4().hex}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    fresh = postgres_dsn.rsplit("/", 1)[0] + f"/{database}"
    script = (
        "import asyncio, sys\n"
        "from examples.postgres_backend import PostgresBackend\n"
        "async def main():\n"
        "    async with PostgresBackend(sys.argv[1]) as backend:\n"
        "        assert await backend.put('k', b'{}') == 1\n"
        "asyncio.run(main())\n"
    )
    try:
        starters = [
            subprocess.Popen([sys.executable, "-c", script, fresh], cwd=ROOT, stderr=subprocess.PIPE, text=True)
            for _ in range(6)
        ]
        errors = [starter.communicate(timeout=60)[1] for starter in starters]
        failures = [error for starter, error in zip(starters, errors) if starter.returncode != 0]
        assert failures == [], failures[0]
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
