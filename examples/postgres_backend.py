"""A PostgreSQL StorageBackend on psycopg 3 (async) and a small connection pool: a template to copy.

Run the kit against it (a server you can write to; the table is created if missing)::

    python -m pytest --backend=examples.postgres_backend:PostgresBackend \\
        --backend-option dsn=postgresql://postgres@127.0.0.1:5432/postgres

Needs ``pip install "psycopg[binary,pool]"``. Design choices, each tied to the SPEC clause it
answers:

Schema: one table for every instance, a namespace column to keep them apart
    ``task_records(namespace text COLLATE "C", key bytea, data bytea NOT NULL, version bigint
    NOT NULL, expires_at double precision, PRIMARY KEY (namespace, key))``, plus a partial
    index on ``(namespace, expires_at)`` for cleanups (see ``SCHEMA``). One table with a
    namespace column, rather than a schema or table per namespace: creating a namespace is
    then free (no DDL per instance; the kit opens thousands), and a deployment's DBA grants,
    backs up and monitors a single table. The table is created if missing, once per process
    and DSN, inside a transaction holding an advisory lock (``CREATE TABLE IF NOT EXISTS`` alone
    is not safe when two sessions run it at once: the loser can fail on the catalog's unique
    index), so any number of instances and processes may start together. The role needs
    CREATE on the schema first on its ``search_path`` (PostgreSQL 15 no longer grants it on
    ``public`` to everyone); otherwise have the DBA run ``SCHEMA`` once beforehand.

Every instance has its own namespace (BK-1)
    ``PostgresBackend(dsn, namespace="tenant-a")`` reads and writes only the rows of
    namespace ``tenant-a``: instances naming the same namespace share one store (that is how
    several server processes share tasks), and the rows outlive the instance. Without a
    name, the instance generates a fresh random one (``generated:<uuid4 hex>``) that no
    other instance can name by chance, so every instance the kit asks for is empty, and
    ``aclose()`` deletes that namespace's rows: a generated namespace is scratch space,
    never a user's named one, which ``aclose`` leaves alone. A process killed before
    ``aclose`` leaves its generated rows behind, invisible to every other namespace;
    ``DELETE FROM task_records WHERE starts_with(namespace, 'generated:')`` clears them when
    no instance is running. Do not pass ``namespace`` to the kit: every instance it opens
    would then share one store, and BK-1 fails, rightly.

Keys are stored as their UTF-8 bytes in a bytea column, not as text (BK-13, SEC-2)
    A key may hold any Unicode scalar value, NUL included, and PostgreSQL's text types
    cannot hold NUL at all. bytea is compared byte by byte (``memcmp``, then length), under no
    collation, and byte order of UTF-8 is code point order: equal keys are equal strings,
    and nothing is folded, normalised, trimmed or cut. Keys of up to 1,024 UTF-8 bytes (the
    SPEC's bound) fit the primary-key index easily; a key too long for a B-tree entry
    (about 2,700 bytes) is refused with ``CapacityExceededError``.

Listing is a byte range on the primary key, never ``LIKE`` (BK-12, SEC-1)
    The keys starting with ``prefix`` are exactly the byteas in ``[p, p')`` where ``p`` is the
    prefix's UTF-8 and ``p'`` is ``p`` with its last byte raised by one (UTF-8 never contains
    the byte 0xFF, so there is no carry). Nothing in the prefix is a wildcard, so nothing
    needs escaping (an unescaped ``LIKE prefix || '%'`` lets ``%`` and ``_`` in one owner's
    prefix match other owners' keys: ``testbed/backends/broken_postgres.py`` keeps that bug for
    the kit to catch); the scan uses the primary-key index; and, unlike a
    ``prefix || U&'\\FFFF'`` text bound, it misses no key whose next character lies beyond
    the Basic Multilingual Plane. The empty prefix lists the whole namespace. One statement
    reads one snapshot, so a listing never mixes states from before and after a write.

Versions follow the SPEC exactly (BK-5, BK-6)
    ``put`` is one statement, ``INSERT ... ON CONFLICT (namespace, key) DO UPDATE SET version =
    t.version + 1 ... RETURNING version``: PostgreSQL guarantees it either inserts (version 1)
    or updates the row that blocked the insert, even against concurrent inserts and deletes,
    so concurrent puts are handed distinct versions (BK-18, CC-4). ``delete`` removes the
    row, so a re-put starts at 1 again: no tombstones.

Compare-and-swap is one conditional UPDATE; a refusal is explained by a fresh read (BK-7..BK-9, CC-3)
    ``UPDATE ... SET version = version + 1 ... WHERE namespace = %s AND key = %s AND version = %s
    RETURNING version``. A concurrent writer of the row makes the UPDATE wait for it and then
    re-check ``version = %s`` against the row it committed, so of several CAS calls from one
    version exactly one wins. When no row changed, a second statement reads the key and tells
    a missing key (``NotFoundError``) from a stale version (``VersionConflictError`` carrying
    the actual version). That read is the moment the refusal takes effect (its
    linearization point): at that instant the key really was missing, or really was at
    the version reported. Folding the read into the UPDATE's statement (a CTE) would not do:
    all of one statement's reads see the snapshot from its start, so a CAS that waited for
    a concurrent winner would report the version from before that winner (``actual ==
    expected``, a lie). If the read finds the key back at the expected version (deleted and
    recreated, or created, between the two statements), the refusal has no valid instant
    yet, so the UPDATE is simply tried again: that is not a retry of a failure (BK-3: none
    happened), and every round needs another client's write in between, so it ends (after
    16 rounds it gives up with ``BackendError``, having written nothing). A version outside
    bigint can never match, so it skips the UPDATE.

Expiry is a column, extracted once at write time (BK-15..BK-17, BK-20)
    ``conformance.expires_at(data)`` turns the record's ``expiresAt`` into POSIX seconds (or
    None: never, also for opaque bytes and records it cannot read), so a cleanup is one
    ``DELETE ... WHERE namespace = %s AND expires_at < %s``: it never parses JSON, counts with
    the row count, and uses the expiry index. ``now`` comes from the injected ``clock``
    (default ``time.time``), never from the server's ``now()``, so a test's fake clock and
    the application's clock are the ones that count; both sides are float8 and compare
    exactly as ``conformance.is_expired`` does. Expired records are KEPT_UNTIL_CLEANUP: they
    read, list and write like live ones until a cleanup removes them. Opaque non-JSON bytes
    are stored as they are and never expire (BK-20).

A cleanup locks writers out of the table for its one DELETE (BK-16, CC-1)
    A lone DELETE is atomic per row but not across rows under READ COMMITTED: it picks its
    rows from the snapshot at its start, but re-checks a row that a concurrent write changed
    meanwhile against that write's result. So it can keep a row made live by a write that
    committed after a second row was made expired by an earlier write it never saw: no
    single instant has that outcome, and the race machines check a cleanup as one atomic
    step over every key. The cleanup therefore runs in a transaction that first takes
    ``LOCK TABLE task_records IN SHARE ROW EXCLUSIVE MODE``: that waits for every write in
    flight on the table to commit and holds new ones (their ROW EXCLUSIVE lock conflicts)
    until the cleanup commits, while reads (ACCESS SHARE) go on. Its DELETE, and the clock
    read just before it, then see one settled state, and the whole cleanup takes effect at
    its commit. Writes that waited behind it act on what it left (a put of a key it deleted
    starts again at version 1, a CAS on it is NotFound). The price is that a cleanup in one
    namespace briefly holds writes in all of them: cleanups are rare and indexed, so that is
    milliseconds. A deployment with many busy namespaces can take a per-namespace
    ``pg_advisory_xact_lock`` in the cleanup and its shared form in every write instead.

Concurrency: a small pool of autocommit connections, two of them open from the start (BK-18, BK-19, CC-1)
    Each call borrows a connection from a ``psycopg_pool.AsyncConnectionPool`` (up to
    ``pool_size``, 4 by default), so calls of one instance really run at once on the server,
    as they do in production. Every operation but a cleanup is one autocommit statement (a
    refused CAS: a few, each atomic on its own) whose atomicity is the server's row locking,
    not a lock in this process, and it takes effect at its commit, inside the call: the
    history is linearizable. The pool opens with two connections and grows while calls
    wait for one. Not one: a pool that starts with a single connection hands a burst of
    calls that connection in turn while it dials more, which hides exactly the races the
    kit looks for (a broken check-then-act CAS escaped the BK-18 probe in 3 runs of 8 that
    way, and in 1 of 15 with two connections ready). Not all four: each connection costs the
    server a process start (about 5 ms of CPU), and the kit opens an instance for every
    example; on the project's 2-core machine the whole kit took 52 s with one connection open
    from the start, 65 s with two and 105 s with four (about 1,700 instances). The
    pool opens at the first call (or at ``async with``), so a constructor needs no running
    loop. A call cancelled mid-statement (a timeout) is cancelled on the server by psycopg,
    and the pool replaces the connection: the statement took effect once or never (CC-7).
    psycopg's async API is asyncio's, so the backend declares ``loops={"asyncio"}``.

Errors (BK-3)
    Only ``conformance`` errors leave the backend. SQLSTATE 53100 (disk full), 53200 (out of
    memory) and class 54 (program limit exceeded: a row or index entry too large) become
    ``CapacityExceededError``; every other driver, pool or encoding failure becomes
    ``BackendError`` with the original exception chained as ``__cause__``. No retries: a
    dropped connection surfaces at once, and the pool replaces it for the next call.

Size (BK-14)
    A bytea holds up to 1 GB (records are TOASTed and compressed out of line), so the 4 MiB
    the SPEC asks for needs no declared limit. Parameters and results travel in binary
    format, so a 4 MiB record costs 4 MiB on the wire, not 8 MiB of hex.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Self, TypeVar

import psycopg_pool
from psycopg import AsyncConnection

from conformance import (
    BackendError,
    Capabilities,
    CapacityExceededError,
    ExpiredRecords,
    NotFoundError,
    StorageError,
    VersionConflictError,
    VersionedRecord,
    expires_at,
    key_range,
)

Clock = Callable[[], float]
T = TypeVar("T")

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: Namespaces the backend generates start with this, so their leftovers are easy to find.
GENERATED_PREFIX = "generated:"

#: bigint's range: a version outside it can never be a record's version.
_INT64 = range(-(2**63), 2**63)
#: SQLSTATEs that mean "the engine is out of room", not "the engine broke".
_CAPACITY_STATES = {"53100", "53200"}  # disk_full, out_of_memory
_CAPACITY_CLASSES = {"54"}  # program_limit_exceeded (row or index entry too big), ...
#: Seconds to wait for a connection (open, or free in the pool): inside the kit's 10 s bound.
_CONNECT_TIMEOUT = 5.0
#: Connections a pool opens at once (it grows to ``pool_size`` while calls wait for one).
_READY_CONNECTIONS = 2
#: Rounds of "UPDATE refused, but the key is back at the expected version" before giving up.
_CAS_ROUNDS = 16
#: Any constant shared by every process creating the table: the advisory lock that serialises them.
_SCHEMA_LOCK = 0x7461736B  # "task"

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS task_records (
        namespace  text COLLATE "C" NOT NULL,  -- one per backend instance (or per deployment)
        key        bytea NOT NULL,             -- the key's UTF-8: compared byte for byte, NUL included
        data       bytea NOT NULL,             -- the record, opaque
        version    bigint NOT NULL,            -- 1 on creation, +1 on every write
        expires_at double precision,           -- POSIX seconds from the record's expiresAt; NULL: never
        PRIMARY KEY (namespace, key)
    )""",
    (
        "CREATE INDEX IF NOT EXISTS task_records_expiry ON task_records (namespace, expires_at)"
        " WHERE expires_at IS NOT NULL"
    ),
)

#: (DSN) whose table this process has already made sure of: the DDL runs once per process, not per instance.
_schema_ready: set[str] = set()

_GET = "SELECT data, version FROM task_records WHERE namespace = %b AND key = %b"
_PUT = (
    "INSERT INTO task_records AS t (namespace, key, data, version, expires_at) VALUES (%b, %b, %b, 1, %b)"
    " ON CONFLICT (namespace, key) DO UPDATE"
    " SET data = excluded.data, version = t.version + 1, expires_at = excluded.expires_at"
    " RETURNING t.version"
)
_CAS = (
    "UPDATE task_records SET data = %b, version = version + 1, expires_at = %b"
    " WHERE namespace = %b AND key = %b AND version = %b RETURNING version"
)
_VERSION = "SELECT version FROM task_records WHERE namespace = %b AND key = %b"
_DELETE = "DELETE FROM task_records WHERE namespace = %b AND key = %b"
_LIST_FROM = "SELECT key, data, version FROM task_records WHERE namespace = %b AND key >= %b"
_LIST_RANGE = _LIST_FROM + " AND key < %b"
_LOCK_WRITERS_OUT = "LOCK TABLE task_records IN SHARE ROW EXCLUSIVE MODE"
_CLEANUP = "DELETE FROM task_records WHERE namespace = %b AND expires_at < %b"
_DROP_NAMESPACE = "DELETE FROM task_records WHERE namespace = %b"


def _storage_error(exc: Exception) -> StorageError:
    """Translate a driver, pool or encoding failure into the contract's errors (BK-3)."""
    state = getattr(exc, "sqlstate", None) or ""
    if state in _CAPACITY_STATES or state[:2] in _CAPACITY_CLASSES:
        return CapacityExceededError(f"postgres: {exc}")
    return BackendError(f"postgres: {type(exc).__name__}: {exc}")


async def _ensure_schema(conn: AsyncConnection[Any]) -> None:
    """Create the table and index if missing; safe when many sessions do it at once."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        for statement in SCHEMA:
            await conn.execute(statement)


class PostgresBackend:
    """A versioned key-value store of task records: one namespace of one PostgreSQL table."""

    conformance_capabilities = Capabilities(
        expired_records=ExpiredRecords.KEPT_UNTIL_CLEANUP,
        loops=frozenset({"asyncio"}),
    )

    def __init__(
        self,
        dsn: str = DEFAULT_DSN,
        *,
        namespace: str | None = None,
        clock: Clock | None = None,
        pool_size: int | str = 4,
    ) -> None:
        """``namespace``: share a named store (kept after ``aclose``); omitted, a private, fresh one.

        ``pool_size``: connections the instance keeps open. Options may come as strings
        (``--backend-option pool_size=8``).
        """
        if namespace is not None and (not namespace or "\x00" in namespace):
            raise ValueError("namespace must be a non-empty string without NUL (it is stored as text)")
        size = int(pool_size)
        if size < 1:
            raise ValueError("pool_size must be at least 1")
        self._dsn = dsn
        self._generated = namespace is None
        self.namespace: str = namespace if namespace is not None else GENERATED_PREFIX + uuid.uuid4().hex
        self._clock: Clock = clock or time.time
        self._pool = psycopg_pool.AsyncConnectionPool(
            dsn,
            min_size=min(size, _READY_CONNECTIONS),  # open from the start: two calls really run at once
            max_size=size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": int(_CONNECT_TIMEOUT)},
            timeout=_CONNECT_TIMEOUT,
            num_workers=2,  # the first two connections are dialled in parallel
            name=f"task-records {self.namespace}",
        )
        self._opening = asyncio.Lock()
        self._open = False
        self._closed = False

    # ----------------------------------------------------------------- lifecycle

    async def _ready_pool(self) -> psycopg_pool.AsyncConnectionPool:
        """The open pool (opened, and the table made sure of, at the first call)."""
        if not self._open:
            async with self._opening:
                if self._closed:
                    raise BackendError("the backend is closed")
                if not self._open:
                    await self._pool.open(wait=True, timeout=_CONNECT_TIMEOUT)
                    if self._dsn not in _schema_ready:
                        async with self._pool.connection() as conn:
                            await _ensure_schema(conn)
                        _schema_ready.add(self._dsn)
                    self._open = True
        if self._closed:
            raise BackendError("the backend is closed")
        return self._pool

    async def _run(self, operation: Callable[[AsyncConnection[Any]], Awaitable[T]]) -> T:
        """Run ``operation`` on a pooled connection, with every failure translated to the contract's errors."""
        try:
            pool = await self._ready_pool()
            async with pool.connection() as conn:
                return await operation(conn)
        except StorageError:
            raise
        except Exception as exc:  # psycopg.Error, PoolTimeout, UnicodeEncodeError, ...
            raise _storage_error(exc) from exc

    async def __aenter__(self) -> Self:
        """Open the pool now, so a bad DSN fails here rather than at the first call."""
        try:
            await self._ready_pool()
        except StorageError:
            raise
        except Exception as exc:
            raise _storage_error(exc) from exc
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Delete a generated namespace's rows (never a named one's) and close the pool; later calls raise BackendError."""
        async with self._opening:
            if self._closed:
                return
            try:
                if self._open and self._generated:
                    async with self._pool.connection() as conn:
                        await conn.execute(_DROP_NAMESPACE, (self.namespace,))
            except Exception as exc:
                raise _storage_error(exc) from exc
            finally:
                self._closed = True
                await self._pool.close()

    # ----------------------------------------------------------------- the contract

    async def get(self, key: str) -> VersionedRecord:
        async def get(conn: AsyncConnection[Any]) -> VersionedRecord:
            cur = await conn.execute(_GET, (self.namespace, key.encode("utf-8")), binary=True)
            row = await cur.fetchone()
            if row is None:
                raise NotFoundError(key)
            return VersionedRecord(bytes(row[0]), int(row[1]))

        return await self._run(get)

    async def put(self, key: str, data: bytes) -> int:
        data = bytes(data)  # a private copy: the caller may reuse its buffer
        expiry = expires_at(data)

        async def put(conn: AsyncConnection[Any]) -> int:
            cur = await conn.execute(_PUT, (self.namespace, key.encode("utf-8"), data, expiry), binary=True)
            row = await cur.fetchone()
            assert row is not None  # RETURNING of an upsert always yields the row
            return int(row[0])

        return await self._run(put)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        data = bytes(data)
        expiry = expires_at(data)

        async def put_if_version(conn: AsyncConnection[Any]) -> int:
            k = key.encode("utf-8")
            for _ in range(_CAS_ROUNDS):
                if expected_version in _INT64:  # else it cannot match, and would not fit the column's type
                    cur = await conn.execute(_CAS, (data, expiry, self.namespace, k, expected_version), binary=True)
                    row = await cur.fetchone()
                    if row is not None:
                        return int(row[0])
                # Nothing was written. Why? Read the key now: this read is when the refusal takes effect.
                cur = await conn.execute(_VERSION, (self.namespace, k), binary=True)
                row = await cur.fetchone()
                if row is None:
                    raise NotFoundError(key)
                if int(row[0]) != expected_version:
                    raise VersionConflictError(key, expected_version, int(row[0]))
                # Back at the expected version since the UPDATE looked (another client recreated it): try again.
            raise BackendError(f"compare-and-swap on {key!r} kept meeting concurrent recreations; nothing was written")

        return await self._run(put_if_version)

    async def delete(self, key: str) -> bool:
        async def delete(conn: AsyncConnection[Any]) -> bool:
            cur = await conn.execute(_DELETE, (self.namespace, key.encode("utf-8")), binary=True)
            return cur.rowcount > 0

        return await self._run(delete)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        low, high = key_range(prefix)

        async def list_by_prefix(conn: AsyncConnection[Any]) -> list[tuple[str, VersionedRecord]]:
            if high is None:  # the empty prefix: the whole namespace (every bytea is >= '')
                cur = await conn.execute(_LIST_FROM, (self.namespace, low), binary=True)
            else:
                cur = await conn.execute(_LIST_RANGE, (self.namespace, low, high), binary=True)
            rows = await cur.fetchall()
            return [(bytes(k).decode("utf-8"), VersionedRecord(bytes(d), int(v))) for k, d, v in rows]

        return await self._run(list_by_prefix)

    async def cleanup_expired(self) -> int:
        async def cleanup_expired(conn: AsyncConnection[Any]) -> int:
            async with conn.transaction():
                # Writers wait from here to the commit, readers do not: the DELETE sees one settled state.
                await conn.execute(_LOCK_WRITERS_OUT)
                now = float(self._clock())  # read once no write is in flight: the instant the decision is made
                cur = await conn.execute(_CLEANUP, (self.namespace, now), binary=True)
                return max(cur.rowcount, 0)

        return await self._run(cleanup_expired)
