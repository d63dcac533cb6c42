"""Redis's classic bugs, planted in the Redis example backend: the kit must catch each one.

Each class is ``examples.redis_backend.RedisBackend`` with one method rewritten the way it is
often written against Redis, names the SPEC clause the bug breaks in ``violates`` (and, for a
race, the clause the race machines report it under in ``races``), and describes the bug in
its docstring. ``GALLERY`` lists them in a stable order; ``tests/test_engine_redis.py`` runs
the kit on each against a real redis-server.
"""

from __future__ import annotations

from typing import ClassVar

from conformance import NotFoundError, VersionConflictError, VersionedRecord
from examples.redis_backend import RedisBackend, translated_errors


class BrokenRedis(RedisBackend):
    """Base of the Redis gallery: the example backend plus the clause its bug breaks."""

    violates: ClassVar[str]
    #: For a race: the clause the race machines report it under (they must catch it too).
    races: ClassVar[str | None] = None
    #: Its interleavings are the engine's, not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True


class ScanMatchListing(BrokenRedis):
    """Lists with ``HSCAN ... MATCH prefix*`` (as ``SCAN MATCH`` over per-record keys): ``* ? [ ] \\`` in a prefix glob.

    Caught under SEC-1 (an owner whose id holds a wildcard lists another owner's tasks), by
    ``test_owner_prefixes_list_only_their_owners_keys`` and ``test_prefix_matches_literally``
    in seconds; BK-12's tests catch it too.
    """

    violates = "SEC-1"
    also = ("BK-12",)  # the same rule, stated in SPEC.md under these clauses too (BK-12's simpler test runs first)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with translated_errors():
            pattern = prefix.encode("utf-8") + b"*"
            versions = {field: value async for field, value in self._client.hscan_iter(self._keys.version, match=pattern)}
            fields = list(versions)
            data = await self._client.hmget(self._keys.data, fields) if fields else []
        return [
            (field.decode("utf-8"), VersionedRecord(blob, int(versions[field])))
            for field, blob in zip(fields, data)
            if isinstance(blob, bytes)  # None: deleted between the two round trips
        ]


class WatchlessCas(BrokenRedis):
    """``HGET`` the version, compare in Python, then write with ``HSET`` a round trip later: no WATCH, no Lua.

    Two compare-and-swaps that read the same version both win. Caught under BK-18 (eight
    CAS calls released together on warmed-up connections: several winners; before the probes
    warmed up, redis-py's lazy connection handshakes serialized the writers and hid it), and
    by the race machines under CC-2 (store programs released together).
    """

    violates = "BK-18"
    races = "CC-2"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        field, expiry = self._field(key), await self._expiry(data)
        with translated_errors():
            current = await self._client.hget(self._keys.version, field)
        if current is None:
            raise NotFoundError(key)
        if int(current) != expected_version:
            raise VersionConflictError(key, expected_version, int(current))
        with translated_errors():
            async with self._client.pipeline(transaction=True) as pipe:  # MULTI without WATCH guards nothing read before it
                pipe.hset(self._keys.version, field, expected_version + 1)
                pipe.hset(self._keys.data, field, bytes(data))
                if expiry:
                    pipe.zadd(self._keys.expiry, {field: float(expiry)})
                else:
                    pipe.zrem(self._keys.expiry, field)
                await pipe.execute()
        return expected_version + 1


GALLERY: list[type[BrokenRedis]] = [ScanMatchListing, WatchlessCas]
