"""The DynamoDB example backend passes the whole kit against moto, run as a user would run it; its
engine's classic bugs are caught; and what the kit cannot check (it needs a fresh, empty
instance each time) is checked here: named namespaces, isolation, the native TTL
attribute, teardown, the engine's item size, driver errors.
"""

from __future__ import annotations

import http.client
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import boto3
import pytest

from conformance import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    VersionedRecord,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from examples.dynamodb_backend import DEFAULT_TABLE, MAX_RECORD_BYTES, DynamoDbBackend
from testbed.backends import broken_dynamodb
from tests.conftest import assert_fails_for_clause, assert_passes_whole_kit
from testbed.engines import moto
from testbed.engines.process import free_port, running

BACKEND = "--backend=examples.dynamodb_backend:DynamoDbBackend"
#: The bound on one whole-kit run against moto (see the test).
KIT_TIMEOUT = 1800


@pytest.fixture(scope="session")
def dynamodb_endpoint() -> Iterator[str]:
    """One moto server for the session (per xdist worker), on a free loopback port."""
    with running("dynamodb", moto.start) as server:
        yield moto.endpoint(server)


def raw_client(endpoint: str) -> Any:
    """A plain boto3 client on the emulator, to look at items as DynamoDB holds them."""
    return boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
    )


def namespace_items(endpoint: str, namespace: str, table: str = DEFAULT_TABLE) -> list[dict[str, Any]]:
    client, items, request = raw_client(endpoint), [], {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**request)
        items += [item for item in page["Items"] if item["ns"]["S"] == namespace]
        if "LastEvaluatedKey" not in page:
            return items
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def record(expires: str | None, payload: str = "p") -> bytes:
    return canonical_json({"expiresAt": expires, "payload": payload})


# --- the kit, as a user runs it -----------------------------------------------------------------


@pytest.mark.slow
def test_dynamodb_example_backend_passes_the_whole_kit(pytester: pytest.Pytester, dynamodb_endpoint: str) -> None:
    """On asyncio only here: moto spends milliseconds of Python on each request and a run makes
    about 62,000 backend calls, so one loop takes 6 to 8 minutes; the backend's worker-thread
    calls run on trio in the SQLite example's test, and benchmarks/RESULTS.md records this
    backend's own runs."""
    verdict = assert_passes_whole_kit(pytester, BACKEND, f"--backend-option=endpoint_url={dynamodb_endpoint}", loops=["asyncio"],
                                      timeout=KIT_TIMEOUT)
    # The two capabilities it declares were exercised, not skipped: native expiry hidden on read, a 400 KB item.
    assert {verdict["clauses"][c]["status"] for c in ("BK-14", "BK-17")} == {"met"}, verdict["clauses"]


@pytest.mark.parametrize("broken", broken_dynamodb.GALLERY, ids=[cls.__name__ for cls in broken_dynamodb.GALLERY])
def test_broken_dynamodb_backend_fails_for_its_clause(pytester: pytest.Pytester, dynamodb_endpoint: str, broken: type) -> None:
    assert_fails_for_clause(
        pytester, broken, f"--backend=testbed.backends.broken_dynamodb:{broken.__name__}", f"--backend-option=endpoint_url={dynamodb_endpoint}", first=not broken.races
    )


RACES = [cls for cls in broken_dynamodb.GALLERY if cls.races]


@pytest.mark.parametrize("broken", RACES, ids=[cls.__name__ for cls in RACES])
def test_race_machines_catch_the_dynamodb_race(pytester: pytest.Pytester, dynamodb_endpoint: str, broken: type) -> None:
    """The race machines alone (the CC tests) catch the lost update, the load test among them on every run.

    Unshrunk: unlike the in-memory gallery's races (whose shrinking tests/test_gallery.py
    checks), this one is decided by thread and network timing, which the kit's schedule does
    not steer, so a shrink replays only when the timing repeats.
    """
    verdict = assert_fails_for_clause(
        pytester,
        broken,
        f"--backend=testbed.backends.broken_dynamodb:{broken.__name__}",
        f"--backend-option=endpoint_url={dynamodb_endpoint}",
        clause=broken.races,
    )
    # Load is what catches a race behind threads and a server on every run; the drawn programs, whose
    # schedule the kit cannot steer here, missed it in one full run of six under load (issue 14).
    load = [t for nodeid, t in verdict["tests"].items() if "::test_races_under_load" in nodeid]
    assert load and all(t["outcome"] == "failed" for t in load), f"the load test missed {broken.__name__}"
    assert all(any(c.startswith("CC-") for c in t["violated"]) for t in load), load


# --- what the kit cannot check ------------------------------------------------------------------


def test_named_namespace_is_shared_by_instances_and_persists(dynamodb_endpoint: str) -> None:
    namespace = f"shared-{uuid.uuid4().hex}"
    key = "tasks/owner\x00/1"

    async def scenario() -> None:
        first = DynamoDbBackend(dynamodb_endpoint, namespace=namespace)
        second = DynamoDbBackend(dynamodb_endpoint, namespace=namespace)
        assert await first.put(key, b"{}") == 1
        assert (await second.get(key)).version == 1
        assert await second.put_if_version(key, b"[]", 1) == 2
        await first.aclose()
        await second.aclose()
        reopened = DynamoDbBackend(dynamodb_endpoint, namespace=namespace)
        assert await reopened.list_by_prefix("tasks/owner\x00/") == [(key, VersionedRecord(b"[]", 2))]
        assert await reopened.list_by_prefix("") == [(key, VersionedRecord(b"[]", 2))]
        assert await reopened.delete(key) is True
        await reopened.aclose()

    anyio.run(scenario)
    assert namespace_items(dynamodb_endpoint, namespace) == []


def test_namespaces_are_isolated_from_each_other(dynamodb_endpoint: str) -> None:
    """Same keys in two namespaces (one a prefix of the other's name) and a generated one: never one record."""
    base = f"iso-{uuid.uuid4().hex}"
    keys = ["tasks/a/1", "tasks/a/2", "a", "a\x00b"]

    async def scenario() -> None:
        short, long = DynamoDbBackend(dynamodb_endpoint, namespace=base), DynamoDbBackend(dynamodb_endpoint, namespace=base + "x")
        generated = DynamoDbBackend(dynamodb_endpoint)
        for n, backend in enumerate((short, long, generated)):
            for key in keys:
                assert await backend.put(key, f"{n}".encode()) == 1
        assert await long.delete("tasks/a/1") is True
        assert await short.put_if_version("a", b"short", 1) == 2
        for n, backend in enumerate((short, long, generated)):
            for prefix in ("", "tasks/", "tasks/a/", "a"):  # the Scan and the Query paths
                listed = await backend.list_by_prefix(prefix)
                assert all(k.startswith(prefix) for k, _ in listed)
                expected = {k for k in keys if k.startswith(prefix)} - ({"tasks/a/1"} if backend is long else set())
                assert {k for k, _ in listed} == expected, (n, prefix, listed)
        assert await short.get("a") == VersionedRecord(b"short", 2)
        assert await long.get("a") == VersionedRecord(b"1", 1)
        assert await generated.get("tasks/a/1") == VersionedRecord(b"2", 1)
        for backend in (short, long):
            for key in keys:
                await backend.delete(key)
        for backend in (short, long, generated):
            await backend.aclose()

    anyio.run(scenario)


def test_native_ttl_attribute_is_written_in_whole_seconds_rounded_up(dynamodb_endpoint: str) -> None:
    namespace = f"ttl-{uuid.uuid4().hex}"
    cases = {
        "tasks/t/ms": "2027-01-15T08:00:00.001Z",  # one millisecond into a second: the next whole second
        "tasks/t/whole": "2027-01-15T08:00:00.000Z",  # a whole second stays
        "tasks/t/late": "2027-01-15T08:00:00.999Z",
        "tasks/t/never": None,
    }

    async def scenario() -> None:
        backend = DynamoDbBackend(dynamodb_endpoint, namespace=namespace)
        for key, expires in cases.items():
            await backend.put(key, record(expires))
        await backend.put("tasks/t/cleared", record("2027-01-15T08:00:00.500Z"))
        await backend.put("tasks/t/cleared", record(None))  # a rewrite without expiry removes the TTL attribute
        await backend.aclose()

    anyio.run(scenario)
    items = {item["sk"]["B"].decode(): item for item in namespace_items(dynamodb_endpoint, namespace)}
    for key, expires in cases.items():
        item = items[key]
        if expires is None:
            assert "ttl" not in item and "expires_at" not in item, item
            continue
        deadline = parse_timestamp(expires)
        ttl = int(item["ttl"]["N"])
        assert ttl == math.ceil(deadline) and ttl >= deadline and ttl - deadline < 1, (key, ttl, deadline)
        assert float(item["expires_at"]["N"]) == deadline
    assert "ttl" not in items["tasks/t/cleared"] and "expires_at" not in items["tasks/t/cleared"]
    assert parse_timestamp(cases["tasks/t/ms"]) % 1 != 0 and int(items["tasks/t/ms"]["ttl"]["N"]) == 1_800_000_001
    client = raw_client(dynamodb_endpoint)
    described = client.describe_time_to_live(TableName=DEFAULT_TABLE)["TimeToLiveDescription"]
    assert described == {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    for key in items:
        client.delete_item(TableName=DEFAULT_TABLE, Key={"pk": items[key]["pk"], "sk": items[key]["sk"]})


def test_aclose_removes_every_item_of_a_generated_namespace_and_nothing_else(dynamodb_endpoint: str) -> None:
    named = f"kept-{uuid.uuid4().hex}"
    now = [1_800_000_000.0]

    async def scenario() -> str:
        keeper = DynamoDbBackend(dynamodb_endpoint, namespace=named)
        await keeper.put("tasks/a/1", b"kept")
        throwaway = DynamoDbBackend(dynamodb_endpoint, clock=lambda: now[0])
        for n in range(60):  # more than one batch of 25, over many partitions and both listing paths
            await throwaway.put(f"tasks/{n % 7}/{n}", canonical_json({"n": n}))
        await throwaway.put("tasks/a/1", record(format_timestamp(now[0] - 1)))  # expired: hidden, but still an item
        await throwaway.put("flat", b"\x00\xff")
        assert len(await throwaway.list_by_prefix("")) == 61
        await throwaway.aclose()
        with pytest.raises(BackendError):
            await throwaway.get("flat")
        assert await keeper.get("tasks/a/1") == VersionedRecord(b"kept", 1)
        await keeper.aclose()
        return throwaway.namespace

    generated = anyio.run(scenario)
    assert namespace_items(dynamodb_endpoint, generated) == []
    assert len(namespace_items(dynamodb_endpoint, named)) == 1
    client = raw_client(dynamodb_endpoint)
    for item in namespace_items(dynamodb_endpoint, named):
        client.delete_item(TableName=DEFAULT_TABLE, Key={"pk": item["pk"], "sk": item["sk"]})


def test_declared_record_limit_fits_the_engine_with_the_longest_key_and_namespace(dynamodb_endpoint: str) -> None:
    """BK-14 at the engine's own limit: the worst case the kit never builds (1,024-byte key, 128-character namespace)."""
    namespace = "n" * 128
    key = "tasks/" + "é" * 508 + "/x"  # 1,024 UTF-8 bytes, its partition as long as a partition gets
    assert len(key.encode()) == 1024
    largest = record(format_timestamp(1_800_000_000.123), "x" * (MAX_RECORD_BYTES - len(record(format_timestamp(1_800_000_000.123), ""))))
    assert len(largest) == MAX_RECORD_BYTES

    async def scenario() -> None:
        backend = DynamoDbBackend(dynamodb_endpoint, namespace=namespace, clock=lambda: 1_700_000_000.0)
        assert await backend.put(key, largest) == 1
        assert await backend.put(key, largest) == 2  # an update in place of an item this large
        assert await backend.put_if_version(key, largest, 2) == 3
        assert await backend.get(key) == VersionedRecord(largest, 3)
        with pytest.raises(CapacityExceededError):
            await backend.put(key, largest + b" ")
        with pytest.raises(CapacityExceededError):
            await backend.put_if_version(key, largest + b" ", 3)
        with pytest.raises(CapacityExceededError):
            await backend.put("tasks/x/new", largest + b" ")
        with pytest.raises(NotFoundError):
            await backend.get("tasks/x/new")
        assert await backend.get(key) == VersionedRecord(largest, 3)
        assert await backend.delete(key) is True
        await backend.aclose()

    anyio.run(scenario)


def test_driver_failures_are_backend_errors_with_the_cause_chained(dynamodb_endpoint: str) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        unreachable = DynamoDbBackend(nobody, timeout="2")
        with pytest.raises(BackendError) as refused:
            await unreachable.get("k")
        assert refused.value.__cause__ is not None and type(refused.value.__cause__).__module__.startswith("botocore")
        await unreachable.aclose()
        missing = DynamoDbBackend(dynamodb_endpoint, table=f"absent-{uuid.uuid4().hex}", create_table="false")
        with pytest.raises(BackendError, match="does not exist"):
            await missing.put("k", b"{}")
        await missing.aclose()

    anyio.run(scenario)
    with pytest.raises(ValueError, match="namespace"):
        DynamoDbBackend(dynamodb_endpoint, namespace="a\x00b")


# --- the emulator itself ------------------------------------------------------------------------


def test_emulator_keeps_connections_open_and_answers_on_each(dynamodb_endpoint: str) -> None:
    """testbed/engines/moto.py serves HTTP/1.1 on kept-open connections (werkzeug's server closed each one)."""
    port = int(dynamodb_endpoint.rsplit(":", 1)[1])
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Amz-Target": "DynamoDB_20120810.ListTables", "Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    try:
        for _ in range(3):
            connection.request("POST", "/", body=b"{}", headers=headers)
            response = connection.getresponse()
            assert response.status == 200 and "TableNames" in json.loads(response.read())
            assert not response.will_close, response.getheaders()
    finally:
        connection.close()
