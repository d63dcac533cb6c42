"""DynamoDB's classic bugs, planted in the example backend: the kit must catch each one, naming its clause.

Each class changes ``examples.dynamodb_backend.DynamoDbBackend`` only where its bug lives,
names the SPEC clause in ``violates`` (and, for a race, the CC clause the race machines
report it under in ``races``), and says in its docstring what the engineer who wrote it
would recognise. ``GALLERY`` lists them; ``tests/test_engine_dynamodb.py`` runs them
against moto.
"""

from __future__ import annotations

from typing import Any, ClassVar

from conformance import NotFoundError, VersionConflictError, expires_at
from examples.dynamodb_backend import DynamoDbBackend, _expired


class UnconditionalPut(DynamoDbBackend):
    """CAS as GetItem, compare the version in Python, then a plain PutItem with no ConditionExpression: lost updates."""

    violates: ClassVar[str] = "BK-18"
    races: ClassVar[str | None] = "CC-3"
    #: Its interleavings are the engine's, not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        data = self._checked_size(data)

        def read(client: Any) -> int:
            now = self._now()
            item = client.get_item(TableName=self._table, Key=self._key(key), ConsistentRead=True).get("Item")
            if item is None or _expired(item, now):
                raise NotFoundError(key)
            return int(item["version"]["N"])

        actual = await self._run(read)  # first round trip
        if actual != expected_version:
            raise VersionConflictError(key, expected_version, actual)

        def write(client: Any) -> None:  # second round trip: whoever wrote since the read is overwritten
            client.put_item(TableName=self._table, Item=self._item(key, data, expected_version + 1, expires_at(data)))

        await self._run(write)
        return expected_version + 1


class TrustsNativeTtl(DynamoDbBackend):
    """Declares HIDDEN but never compares expiresAt with the clock, trusting DynamoDB's TTL sweep (which runs days late)."""

    violates: ClassVar[str] = "BK-17"
    races: ClassVar[str | None] = None

    def _now(self) -> float:
        # Every read, condition and cleanup sees the epoch: no record is ever expired to this
        # backend; only the native TTL attribute, swept whenever DynamoDB gets to it, expires them.
        return 0.0


GALLERY: tuple[type[DynamoDbBackend], ...] = (UnconditionalPut, TrustsNativeTtl)
