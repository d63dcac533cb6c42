"""PostgreSQL's classic bugs, planted one each in the example backend, for the kit to catch.

Each class changes ``examples.postgres_backend.PostgresBackend`` only where its bug lives,
names the SPEC clause the bug breaks in ``violates`` (and, for a race, the clause the race
machines report it under in ``races``), and describes the bug in its docstring the way the
engineer who wrote it would recognise it. They run against a real server, like the example:
``--backend=testbed.backends.broken_postgres:UnescapedLike --backend-option dsn=...``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from psycopg import AsyncConnection

from conformance import NotFoundError, VersionConflictError, VersionedRecord, expires_at
from examples.postgres_backend import PostgresBackend


class _Broken(PostgresBackend):
    """Base of the gallery: the example plus the clause its bug breaks."""

    violates: ClassVar[str]
    #: For a race: the clause the race machines report it under (they must catch it too).
    races: ClassVar[str | None] = None
    #: Its interleavings are the engine's, not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True


class UnescapedLike(_Broken):
    """Lists with ``WHERE key LIKE %s || '%'`` and the prefix unescaped, so % and _ in a prefix are wildcards.

    PostgreSQL has LIKE for bytea too, so the bug needs no text column: ``_`` matches any one
    byte and ``%`` any run of bytes, and a backslash escapes the byte after it. A prefix
    ``a_`` lists ``ab/1``; owner ``%``'s prefix ``task:%:`` lists every owner's tasks.
    """

    violates = "BK-12"

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        async def list_by_prefix(conn: AsyncConnection[Any]) -> list[tuple[str, VersionedRecord]]:
            cur = await conn.execute(
                "SELECT key, data, version FROM task_records WHERE namespace = %b AND key LIKE %b || '%%'::bytea",
                (self.namespace, prefix.encode("utf-8")),
                binary=True,
            )
            return [(bytes(k).decode("utf-8"), VersionedRecord(bytes(d), int(v))) for k, d, v in await cur.fetchall()]

        return await self._run(list_by_prefix)


class CheckThenActCas(_Broken):
    """Reads the version, compares it in Python, then UPDATEs without the version in the WHERE, in one transaction.

    The transaction is trusted to make the check-then-act atomic, but under READ COMMITTED,
    PostgreSQL's default, it takes no lock on the row it read: two CAS calls from one
    version both read it, both pass the check, and both write (the second UPDATE waits for
    the first to commit, then overwrites it). A lost update, each winner told it won. The
    fix is the version in the UPDATE's WHERE (as the example does), ``SELECT ... FOR
    UPDATE``, or SERIALIZABLE with retries.

    Which clause catches it is a matter of timing on a real server, so it names the one
    that always does. BK-18's probe (8 CAS calls released once) escaped it in about 1 run of
    15 on a loaded machine: the server may run the 8 one after another (a backend process
    that was just busy answers first while the others wait to be scheduled). CC-3 (two CAS
    winners from one version) needs the two CAS calls of the tiny race to collide, which
    they missed in about 1 run of 10. Every run caught it under CC-1: the race machines
    release colliding CAS and put calls under every schedule and twenty times over, and a
    CAS handed a version no order explains is reported there, in a history of 2 or 3
    clients and at most 4 calls.
    """

    violates = "CC-1"
    races = "CC-1"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        data = bytes(data)
        expiry = expires_at(data)

        async def put_if_version(conn: AsyncConnection[Any]) -> int:
            k = key.encode("utf-8")
            async with conn.transaction():
                cur = await conn.execute(
                    "SELECT version FROM task_records WHERE namespace = %b AND key = %b", (self.namespace, k), binary=True
                )
                row = await cur.fetchone()
                if row is None:
                    raise NotFoundError(key)
                if int(row[0]) != expected_version:
                    raise VersionConflictError(key, expected_version, int(row[0]))
                cur = await conn.execute(  # the act, one round trip after the check
                    "UPDATE task_records SET data = %b, version = version + 1, expires_at = %b"
                    " WHERE namespace = %b AND key = %b RETURNING version",
                    (data, expiry, self.namespace, k),
                    binary=True,
                )
                row = await cur.fetchone()
            if row is None:  # deleted between the two statements
                raise NotFoundError(key)
            return int(row[0])

        return await self._run(put_if_version)


GALLERY: list[type[_Broken]] = [UnescapedLike, CheckThenActCas]
