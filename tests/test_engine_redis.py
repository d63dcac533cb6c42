"""The Redis example backend passes the whole kit against a real redis-server, and its engine's classic bugs are caught.

One throwaway redis-server per test session (``testbed.engines.redis``); set
``CONFORMANCE_SKIP_ENGINES=redis`` to skip these tests where no server can run. The last
tests check what the kit cannot, because it needs a fresh, empty instance every time:
named namespaces are shared and persist, namespaces never see each other, a drawn
namespace leaves nothing behind, and the server's own refusals become contract errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis.asyncio
import redis.exceptions

from conformance import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    VersionedRecord,
)
from examples.redis_backend import RedisBackend
from testbed.backends import broken_redis
from testbed.backends.broken_redis import BrokenRedis
from tests.conftest import assert_fails_for_clause, assert_passes_whole_kit
from testbed.engines import process
from testbed.engines import redis as redis_engine
from testbed.engines.process import ServerProcess

#: Databases of the session's server the engine-specific tests use, each to itself (the kit runs use 0).
NAMESPACES_DB, CLEANUP_DB, MEMORY_DB = 1, 2, 3


@pytest.fixture(scope="session")
def redis_server() -> Iterator[ServerProcess]:
    with process.running("redis", redis_engine.start) as server:
        yield server


@pytest.fixture(scope="session")
def redis_url(redis_server: ServerProcess) -> str:
    return redis_engine.url(redis_server)


@pytest.mark.slow
def test_redis_example_backend_passes_the_whole_kit(pytester: pytest.Pytester, redis_url: str) -> None:
    assert_passes_whole_kit(
        pytester, "--backend=examples.redis_backend:RedisBackend", f"--backend-option=url={redis_url}", loops=["asyncio"]
    )


@pytest.mark.parametrize("broken", broken_redis.GALLERY, ids=[cls.__name__ for cls in broken_redis.GALLERY])
def test_broken_redis_backend_fails_for_its_clause(pytester: pytest.Pytester, redis_url: str, broken: type[BrokenRedis]) -> None:
    assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_redis:{broken.__name__}", f"--backend-option=url={redis_url}", first=not broken.races
    )


RACES = [cls for cls in broken_redis.GALLERY if cls.races]


@pytest.mark.parametrize("broken", RACES, ids=[cls.__name__ for cls in RACES])
def test_race_machines_catch_the_planted_redis_races(pytester: pytest.Pytester, redis_url: str, broken: type[BrokenRedis]) -> None:
    """The race machines alone (the CC tests) catch each planted race too."""
    assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_redis:{broken.__name__}", f"--backend-option=url={redis_url}",
        clause=broken.races,
    )


def _url(server: ServerProcess, db: int) -> str:
    return redis_engine.url(server, db)


async def _server_keys(url: str) -> list[bytes]:
    client = redis.asyncio.Redis.from_url(url)
    try:
        return sorted([key async for key in client.scan_iter(count=1000)])
    finally:
        await client.aclose()


def test_named_namespace_is_shared_by_instances_and_survives_aclose(redis_server: ServerProcess) -> None:
    url = _url(redis_server, NAMESPACES_DB)
    key = "task:owner\x00:1"

    async def scenario() -> None:
        first, second = RedisBackend(url, namespace="shared"), RedisBackend(url, namespace="shared")
        try:
            assert await first.put(key, b"{}") == 1
            assert await second.get(key) == VersionedRecord(b"{}", 1)
            assert await second.put_if_version(key, b"[]", 1) == 2
            await first.aclose()
            await second.aclose()
            reopened = RedisBackend(url, namespace="shared")
            assert [(k, r.data, r.version) for k, r in await reopened.list_by_prefix("task:owner\x00")] == [(key, b"[]", 2)]
            assert await reopened.delete(key) is True
            await reopened.aclose()
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(scenario())


def test_namespaces_never_see_each_others_keys(redis_server: ServerProcess) -> None:
    """Namespaces that are prefixes of one another, and a drawn one, share no record, listing or cleanup."""
    url = _url(redis_server, NAMESPACES_DB)

    async def scenario() -> None:
        names = ["a", "a:b", "a:b:", "ns\x00x", None]
        backends = [RedisBackend(url, namespace=name, clock=lambda: 2e9) for name in names]
        try:
            expired = b'{"expiresAt":"2000-01-01T00:00:00.000Z"}'
            for n, backend in enumerate(backends):
                assert await backend.put(":b:k", b"%d" % n) == 1
                assert await backend.put(f"only-{n}", expired) == 1
            for n, backend in enumerate(backends):
                assert await backend.get(":b:k") == VersionedRecord(b"%d" % n, 1)
                assert sorted(k for k, _ in await backend.list_by_prefix("")) == [":b:k", f"only-{n}"]
                for other in range(len(backends)):
                    if other != n:
                        with pytest.raises(NotFoundError):
                            await backend.get(f"only-{other}")
            assert await backends[0].cleanup_expired() == 1  # its own expired record, no other namespace's
            for backend in backends[1:]:
                assert len(await backend.list_by_prefix("only-")) == 1
        finally:
            for backend in backends:
                await backend.delete(":b:k")
                await backend.aclose()

    asyncio.run(scenario())


def test_namespace_with_braces_is_refused() -> None:
    """A brace would end the ``{namespace}`` hash tag early, and two namespaces could share keys."""
    for name in ("a}b", "{a", ""):
        with pytest.raises(ValueError, match="namespace"):
            RedisBackend(namespace=name)


def test_aclose_of_a_drawn_namespace_leaves_no_keys(redis_server: ServerProcess) -> None:
    url = _url(redis_server, CLEANUP_DB)

    async def scenario() -> None:
        backend = RedisBackend(url)
        for n in range(5):
            await backend.put(f"k{n}", b'{"expiresAt":"2999-01-01T00:00:00.000Z"}')
        assert len(await _server_keys(url)) == 4  # data, version, keys, expiry: nothing per record
        await backend.aclose()
        assert await _server_keys(url) == []
        with pytest.raises(BackendError, match="closed"):
            await backend.get("k0")
        await backend.aclose()  # idempotent

    asyncio.run(scenario())


def test_out_of_memory_is_capacity_exceeded_and_stores_nothing(redis_server: ServerProcess) -> None:
    """Under ``maxmemory`` with ``noeviction``, a write is refused whole; deletes and cleanups still run."""
    url = _url(redis_server, MEMORY_DB)

    async def scenario() -> None:
        admin = redis.asyncio.Redis.from_url(url)
        backend = RedisBackend(url, clock=lambda: 2e9)
        try:
            assert await backend.put("small", b'{"expiresAt":"2000-01-01T00:00:00.000Z"}') == 1
            used = int((await admin.info("memory"))["used_memory"])
            await admin.config_set("maxmemory", used + 256 * 1024)
            with pytest.raises(CapacityExceededError) as refused:
                await backend.put("big", b"x" * (4 * 1024 * 1024))
            assert isinstance(refused.value.__cause__, redis.exceptions.RedisError)
            with pytest.raises(NotFoundError):
                await backend.get("big")
            assert [k for k, _ in await backend.list_by_prefix("")] == ["small"]
            assert await backend.cleanup_expired() == 1
        finally:
            await admin.config_set("maxmemory", 0)
            await admin.aclose()
            await backend.aclose()

    asyncio.run(scenario())


def test_unreachable_server_is_a_backend_error_at_once() -> None:
    """No retries: a refused connection surfaces as BackendError, the driver's error chained."""
    url = f"redis://127.0.0.1:{process.free_port()}/0"

    async def scenario() -> None:
        backend = RedisBackend(url)
        try:
            with pytest.raises(BackendError) as failed:
                await backend.put("k", b"{}")
            assert isinstance(failed.value.__cause__, redis.exceptions.ConnectionError)
        finally:
            with pytest.raises(BackendError):  # aclose of a drawn namespace tries to delete its keys, and says it could not
                await backend.aclose()

    asyncio.run(scenario())
