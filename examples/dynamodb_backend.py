"""A DynamoDB StorageBackend on boto3: a template to copy.

Run the kit against it, here against moto standing in for DynamoDB on loopback::

    PYTHONPATH=. python -m testbed.engines.moto -p 5000 &
    python -m pytest --backend=examples.dynamodb_backend:DynamoDbBackend \\
        --backend-option endpoint_url=http://127.0.0.1:5000 --conformance-loop=all

``testbed.engines.moto`` serves moto's application (what ``python -m moto.server`` serves) on
kept-open connections, with three of moto's departures from DynamoDB corrected (see that
module): plain moto at times applies both of two concurrent conditional writes of one
item, which the kit rightly reports as a race (BK-18, CC-3); it refuses updates of large
items that DynamoDB accepts; and its memory and Scan time grow with every request it has
served.

Options (the kit passes ``--backend-option KEY=VALUE`` as string keyword arguments):
``endpoint_url`` (None: AWS itself), ``table`` (created if missing), ``region``,
``namespace`` (None: a fresh private one per instance, see below), ``timeout`` (seconds
per request), ``create_table`` (``false`` where the table is managed elsewhere), and
``aws_access_key_id``/``aws_secret_access_key``.

Design choices, each tied to the SPEC clause it answers:

Table
    One table, partition key ``pk`` (Binary) and sort key ``sk`` (Binary), on-demand
    capacity, no indexes; the item of key ``k`` in namespace ``ns`` holds ``pk`` =
    ``ns`` + NUL + ``partition(k)`` in UTF-8, ``sk`` = ``k`` in UTF-8, ``ns`` (String),
    ``data`` (Binary), ``version`` (Number), and, for a record that expires,
    ``expires_at`` (Number, POSIX seconds) and ``ttl`` (Number, the table's native TTL
    attribute). ``create_table`` makes the table (idempotently: an existing one is checked
    for this key schema) and turns native TTL on for ``ttl``.

Keys are Binary, the UTF-8 of the key (BK-13, SEC-1, SEC-2)
    A Binary attribute is compared byte by byte, and the byte order of UTF-8 is code point
    order: two keys are one item only if they are equal strings, with NUL, control
    characters and astral characters kept, nothing folded, normalised or trimmed.
    ``begins_with`` on Binary is a literal byte-prefix test, so no character is a wildcard.
    DynamoDB's sort key holds 1,024 bytes, exactly BK-13's bound for keys; the partition
    key (at most 128 + 1 + 1,024 bytes) stays under its 2,048.

Partitions: the key up to its second ``/`` (BK-12, SEC-1)
    Keys are opaque to a backend, but a prefix listing must be a ``Query`` on one
    partition to be cheap, so the partition is derived from the key by one fixed rule: the
    key cut just after its second ``/``, or the whole key if it has fewer than two. For the
    task store's keys, ``tasks/<sha256 of the owner>/<task id>``, a partition is exactly
    one owner's tasks, and the store's listing prefix ``tasks/<hex>/`` is that partition.
    ``list_by_prefix(p)``:

    * when ``p`` holds two ``/``, every key starting with ``p`` has its second ``/`` at the
      same place, so all of them live in the one partition ``partition(p)``: a ``Query``
      of that partition with ``begins_with(sk, p)``;
    * a shorter prefix (``""``, ``tasks/``, ``a``) can match keys of many partitions: a
      ``Scan`` of the table filtered on the namespace, with the prefix tested here on each
      key's bytes (``bytes.startswith``: literal by construction; moto's FilterExpression
      ``begins_with`` matches Strings only, never Binary). It reads the whole table, so it
      is for rare administrative listings (the task store never makes one);
      ``cleanup_expired`` scans the same way.

    Both paginate (``LastEvaluatedKey``) to the end and use strongly consistent reads.

Reads are strongly consistent (BK-4, BK-10, BK-12, CC-1)
    ``GetItem``, ``Query`` and ``Scan`` pass ``ConsistentRead=True``: a read sees every write
    that returned before it was sent. (A listing is not a snapshot: DynamoDB reads each
    item of a ``Query`` or ``Scan`` on its own, read-committed, so a listing that races
    writes to several keys may show some of them. Each item it shows is current at some
    instant of the call; the task store re-reads a task before writing it.)

Versions are written by DynamoDB itself (BK-5..BK-9, BK-18, CC-3, CC-4)
    ``put`` is one ``UpdateItem``: ``SET version = if_not_exists(version, 0) + 1`` plus the
    data and expiry, returning the new version (``ReturnValues=UPDATED_NEW``; this echoes
    the data too, the price of learning the version in the same round trip). Concurrent
    puts are serialised by DynamoDB per item, so each gets its own version.
    ``put_if_version(k, d, v)`` is one ``PutItem`` of the whole new item at version
    ``v + 1`` with ``ConditionExpression`` ``version = v`` (and "not expired"). On
    ``ConditionalCheckFailedException`` it asks for the item as the condition saw it
    (``ReturnValuesOnConditionCheckFailure=ALL_OLD``): no item, or an expired one, is
    ``NotFoundError``; otherwise ``VersionConflictError`` with that item's version. The
    verdict and its figures come from the same atomic step as the failed write, so they are
    linearizable without a second read. ``delete`` is one ``DeleteItem`` returning the
    old item (``ReturnValues=ALL_OLD``): True exactly when a live item was there.
    A version DynamoDB cannot hold (over 38 digits, or not an ``int``) cannot match
    anything: a consistent ``GetItem`` answers NotFound or the conflict instead.

Expiry: filtered on every read, declared HIDDEN (BK-15..BK-17)
    DynamoDB's native TTL deletes expired items late (typically within days) and at a time
    no one controls, so, as BK-17 requires of such engines, every operation filters expired
    items itself and the backend declares ``ExpiredRecords.HIDDEN``. At write time
    ``conformance.expires_at(data)`` gives the record's expiry (None for never, also for
    opaque bytes and unreadable records: BK-16, BK-20); it is stored as ``expires_at``
    (the shortest decimal of the float, so DynamoDB's decimal comparison orders exactly as
    the kit's float comparison) and as the native TTL attribute ``ttl`` in whole epoch
    seconds rounded *up*, so the sweep can never delete a record before it expires. Every
    operation reads ``now`` from the injected clock (default ``time.time``) and treats an
    item with ``expires_at < now`` as absent (the boundary is exclusive: BK-15): ``get``
    and ``put_if_version`` raise ``NotFoundError``, ``delete`` returns False (and removes
    the item: the kit's model takes a delete of a hidden record to remove it, so a later
    cleanup must not count it), the listing's ``FilterExpression`` drops it, and ``put``
    restarts it at version 1. That last one takes two steps, since an update expression
    cannot reset a counter: the version bump is conditioned on "absent or live"; if that
    fails, a ``PutItem`` of version 1 conditioned on "still expired" replaces the expired
    item; if that fails too (a concurrent write or delete got there first), the put starts
    over (at most 8 times, then ``BackendError``). Each step is atomic, and only a
    successful one has an effect.
    ``cleanup_expired`` scans the namespace for ``expires_at < now`` and deletes each item
    with a ``DeleteItem`` conditioned on ``expires_at < now`` (still expired at delete
    time, so a record rewritten since survives), counting the deletes that happened.
    Cleanups of one namespace in one process take turns (a lock): two concurrent ones
    would otherwise split the expired records between them and both count some, where
    the first to take effect must have removed them all (CC-1, CC-2; the kit catches the
    split). Across processes they may still split them; each record is deleted and counted
    once all the same.
    The injected clock is for tests: in production the TTL attribute assumes the clock is
    the wall clock.

Size: 384 KiB records (BK-14)
    A DynamoDB item holds 400 KB, attribute names and values together. Besides the data an
    item holds at most about 2.5 kB (the keys, at most 2,177 bytes, the namespace and
    three numbers), so the backend declares ``max_record_bytes`` = 393,216 (384 KiB), with
    room to spare, and refuses a larger record with ``CapacityExceededError`` before
    sending it; DynamoDB's own "Item size has exceeded" is mapped to the same error.
    Data is stored as Binary, byte for byte (BK-11, BK-20). The reference task store's
    default limits (1 MiB of variables plus a 1 MiB result) do not fit in a record this
    size: give the store limits that do, ``conformance.fit_to_record_limit(StoreConfig(),
    MAX_RECORD_BYTES)`` (the kit does so itself), or split records over several items
    (not done here).

Isolation between instances: namespaces (BK-1)
    Every item carries its instance's namespace in ``pk`` and ``ns``. ``namespace=None``
    (the kit's case) draws a fresh one (``kit-`` + a uuid4), so each instance starts empty,
    and ``aclose`` deletes that namespace's items. A named namespace (letters, digits and
    ``. _ : -``, at most 128) is persistent and shared by every instance that names it;
    ``aclose`` leaves it alone. One table serves any number of namespaces. A table per
    instance would isolate as well, and costs about the same on moto (measured, one write
    per instance: 22 ms for CreateTable, UpdateTimeToLive and DeleteTable, 24 ms for a
    namespace's Scan and BatchWriteItem), but DynamoDB takes seconds to make a table,
    which is no pace for a kit that asks for an instance per Hypothesis example. Use a
    dedicated table for tests: the Scan fallback and a generated namespace's teardown read
    the whole table.

Threads, timeouts, no retries (BK-3, BK-18, BK-19, CC-7)
    boto3 blocks, so every call runs on a worker thread with ``anyio.to_thread.run_sync``:
    the event loop never stalls, and it works on asyncio and trio alike. One boto3 client
    per endpoint and credentials is shared by every instance of the process (clients are
    thread-safe; making one costs tens of milliseconds), with a pool of 64 connections.
    Retries are off (``total_max_attempts=1``): a write retried after a lost reply could
    take effect twice, and a transient failure must surface at once as ``BackendError``.
    Each request is bounded by ``timeout`` (connect and read, 10 s by default). A
    cancelled call (the kit's timeout) returns at once and abandons its worker thread: the
    request may still reach DynamoDB and take effect, once or never (CC-7).
    ``aclose`` waits for every call in flight, abandoned ones included, before it removes
    a generated namespace, so none of them can write into it afterwards.

Errors (BK-3)
    Only ``conformance`` errors leave the backend: a conditional check that failed becomes
    the answer the contract gives (NotFound, a conflict, False), an item over DynamoDB's
    size limit ``CapacityExceededError``, and every other ``ClientError`` or
    ``BotoCoreError`` (throttling, a missing table, a connection or timeout) a
    ``BackendError`` with the driver's exception chained as ``__cause__``.

Credentials
    With ``endpoint_url`` on loopback (moto, DynamoDB Local, LocalStack), which does not
    check credentials, the backend sends the ``aws_access_key_id``/``aws_secret_access_key``
    options if given, else the dummy pair ``local``/``local``: it never needs credentials
    in the environment, never sends real ones to an emulator and never probes the
    instance metadata service. Otherwise boto3's usual chain applies (environment, profile,
    role), unless the options are given.
"""

from __future__ import annotations

import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import boto3
import botocore.config
import botocore.exceptions

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
)

Clock = Callable[[], float]
T = TypeVar("T")
#: An item (or a key) in the low-level client's form: ``{"name": {"B" | "N" | "S": value}}``.
Item = dict[str, Any]

#: The largest record stored (BK-14): 384 KiB, leaving DynamoDB's 400 KB item room for keys and numbers.
MAX_RECORD_BYTES = 384 * 1024
DEFAULT_TABLE = "mcp-task-records"
#: Named namespaces: no NUL (it separates the namespace from the partition in ``pk``), bounded length.
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
#: How often ``put`` starts over when concurrent writers keep changing an expired item under it.
PUT_ATTEMPTS = 8
#: How long ``aclose`` waits for calls in flight (abandoned ones included) to finish.
CLOSE_WAIT_SECONDS = 60.0
#: Hosts whose endpoint is an emulator on this machine: it gets dummy credentials.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: DynamoDB numbers hold 38 significant digits; a version beyond cannot be stored or compared.
_MAX_VERSION_DIGITS = 38

#: Every attribute name goes through a ``#placeholder`` (``data`` and ``ttl`` are reserved words).
_LIVE = "(attribute_not_exists(#expires_at) OR #expires_at >= :now)"
_KEY_SCHEMA = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
_ATTRIBUTE_DEFINITIONS = [{"AttributeName": "pk", "AttributeType": "B"}, {"AttributeName": "sk", "AttributeType": "B"}]


def partition_of(key: str) -> str:
    """The key's partition: the key cut just after its second ``/``, or the whole key if it has fewer."""
    second = _second_slash(key)
    return key if second < 0 else key[: second + 1]


def prefix_partition(prefix: str) -> str | None:
    """The one partition holding every key that starts with ``prefix``, or None if keys of several may."""
    second = _second_slash(prefix)
    return None if second < 0 else prefix[: second + 1]


def _second_slash(text: str) -> int:
    first = text.find("/")
    return -1 if first < 0 else text.find("/", first + 1)


def _number(value: float) -> str:
    """A float as a DynamoDB number: its shortest round-tripping decimal, without an exponent.

    Shortest decimals order exactly as the floats do, so DynamoDB's comparisons agree with
    the kit's float comparison (``conformance.is_expired``) to the last bit.
    """
    return format(Decimal(repr(float(value))), "f")


def _names(*expressions: str) -> dict[str, str]:
    """``ExpressionAttributeNames`` for exactly the ``#name`` placeholders used (DynamoDB refuses unused ones)."""
    return {f"#{name}": name for name in set(re.findall(r"#(\w+)", " ".join(expressions)))}


def _expired(item: Item, now: float) -> bool:
    """Whether an item read back is expired at ``now``: strictly past its expiry (BK-15)."""
    stored = item.get("expires_at")
    return stored is not None and now > float(Decimal(stored["N"]))


def _condition_failed(exc: BaseException) -> bool:
    return isinstance(exc, botocore.exceptions.ClientError) and exc.response.get("Error", {}).get("Code") == (
        "ConditionalCheckFailedException"
    )


def _storage_error(exc: Exception) -> StorageError:
    """Translate a driver (or encoding) failure into the contract's errors (BK-3)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        too_big = code == "ValidationException" and "size" in message and "exceeded" in message
        if too_big or code == "ItemCollectionSizeLimitExceededException":
            return CapacityExceededError(f"dynamodb: {code}: {message}")
        return BackendError(f"dynamodb: {code}: {message}")
    return BackendError(f"dynamodb: {type(exc).__name__}: {exc}")


def _flag(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"expected true or false, got {value!r}")


# One client per endpoint, region, credentials and timeout, shared by every instance of the
# process (boto3 clients are thread-safe); and the tables already known to exist.
_CLIENTS: dict[tuple[Any, ...], Any] = {}
_READY_TABLES: set[tuple[Any, ...]] = set()
_SHARED = threading.Lock()
#: One lock per named namespace: the process's cleanups of one namespace run one at a time.
_CLEANUPS: dict[tuple[Any, ...], threading.Lock] = {}


class DynamoDbBackend:
    """A versioned key-value store of task records in one DynamoDB table, one namespace per instance."""

    conformance_capabilities = Capabilities(
        expired_records=ExpiredRecords.HIDDEN,
        max_record_bytes=MAX_RECORD_BYTES,
        loops=frozenset({"asyncio", "trio"}),
    )

    def __init__(
        self,
        endpoint_url: str | None = None,
        table: str = DEFAULT_TABLE,
        region: str = "us-east-1",
        namespace: str | None = None,
        *,
        timeout: str | float = 10.0,
        create_table: str | bool = True,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if namespace is not None and not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(f"namespace must match {NAMESPACE_PATTERN.pattern}, got {namespace!r}")
        self._clock: Clock = clock or time.time
        self._table = table
        self._owns_namespace = namespace is None
        self._namespace = namespace if namespace is not None else f"kit-{uuid.uuid4().hex}"
        self._partition_root = self._namespace.encode("ascii") + b"\x00"
        self._create_table = _flag(create_table)
        seconds = float(timeout)
        host = urlsplit(endpoint_url).hostname if endpoint_url else None
        if host in LOOPBACK_HOSTS and aws_access_key_id is None:  # an emulator: never real credentials
            aws_access_key_id, aws_secret_access_key = "local", aws_secret_access_key or "local"
        self._client_key = (endpoint_url, region, aws_access_key_id, aws_secret_access_key, seconds)
        self._client: Any = None  # made on the first call, on a worker thread: the constructor does no I/O
        if self._owns_namespace:
            self._cleanups = threading.Lock()  # no other instance knows a generated namespace
        else:
            with _SHARED:
                self._cleanups = _CLEANUPS.setdefault((endpoint_url, region, table, namespace), threading.Lock())
        # Calls in flight, so that aclose can wait for them (abandoned ones included).
        self._state = threading.Condition()
        self._in_flight = 0
        self._closed = False

    @property
    def namespace(self) -> str:
        """The namespace this instance reads and writes (generated unless one was named)."""
        return self._namespace

    # --- plumbing ----------------------------------------------------------------------------

    def _connect(self) -> Any:
        """The shared client, and the table made ready once per process (call on a worker thread only)."""
        if self._client is not None:
            return self._client
        with _SHARED:
            client = _CLIENTS.get(self._client_key)
            if client is None:
                endpoint_url, region, key_id, secret, seconds = self._client_key
                config = botocore.config.Config(
                    connect_timeout=seconds,
                    read_timeout=seconds,
                    retries={"mode": "standard", "total_max_attempts": 1},  # no hidden retries (BK-3)
                    max_pool_connections=64,
                )
                client = boto3.session.Session().client(
                    "dynamodb",
                    endpoint_url=endpoint_url,
                    region_name=region,
                    aws_access_key_id=key_id,
                    aws_secret_access_key=secret,
                    config=config,
                )
                _CLIENTS[self._client_key] = client
            ready = (self._client_key, self._table)
            if ready not in _READY_TABLES:
                self._prepare_table(client)
                _READY_TABLES.add(ready)
        self._client = client
        return client

    def _prepare_table(self, client: Any) -> None:
        """Check the table's key schema; create it (with native TTL on ``ttl``) if it is missing and allowed."""
        try:
            described = client.describe_table(TableName=self._table)["Table"]
        except client.exceptions.ResourceNotFoundException:
            if not self._create_table:
                raise BackendError(f"dynamodb: table {self._table!r} does not exist (create_table is off)") from None
            try:
                client.create_table(
                    TableName=self._table,
                    KeySchema=_KEY_SCHEMA,
                    AttributeDefinitions=_ATTRIBUTE_DEFINITIONS,
                    BillingMode="PAY_PER_REQUEST",
                )
            except client.exceptions.ResourceInUseException:
                pass  # another process created it meanwhile
            client.get_waiter("table_exists").wait(TableName=self._table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            client.update_time_to_live(
                TableName=self._table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
            )
            return
        schema = sorted((k["AttributeName"], k["KeyType"]) for k in described["KeySchema"])
        if schema != sorted((k["AttributeName"], k["KeyType"]) for k in _KEY_SCHEMA):
            raise BackendError(f"dynamodb: table {self._table!r} exists with another key schema: {schema}")

    async def _run(self, operation: Callable[[Any], T]) -> T:
        """Run ``operation(client)`` on a worker thread, with every failure translated to the contract's errors."""

        def translated() -> T:
            with self._state:
                if self._closed:
                    raise BackendError("the backend is closed")
                self._in_flight += 1
            try:
                return operation(self._connect())
            except StorageError:
                raise
            except Exception as exc:  # ClientError, BotoCoreError, UnicodeEncodeError, ...
                raise _storage_error(exc) from exc
            finally:
                with self._state:
                    self._in_flight -= 1
                    self._state.notify_all()

        return await anyio.to_thread.run_sync(translated, abandon_on_cancel=True)

    def _now(self) -> float:
        """The instant every expiry decision of one step is made at (BK-15)."""
        return float(self._clock())

    def _key(self, key: str) -> Item:
        return {
            "pk": {"B": self._partition_root + partition_of(key).encode("utf-8")},
            "sk": {"B": key.encode("utf-8")},
        }

    def _item(self, key: str, data: bytes, version: int, expiry: float | None) -> Item:
        """The whole item of a record at ``version``."""
        item = {**self._key(key), "ns": {"S": self._namespace}, "data": {"B": data}, "version": {"N": str(version)}}
        if expiry is not None:
            item["expires_at"] = {"N": _number(expiry)}
            item["ttl"] = {"N": str(math.ceil(expiry))}  # rounded up: the sweep never deletes early
        return item

    def _pages(self, operation: Callable[..., dict[str, Any]], **request: Any) -> Iterator[Item]:
        """Every item of a Query or Scan, page after page."""
        while True:
            page = operation(**request)
            yield from page.get("Items", [])
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _namespace_keys(self, client: Any, condition: str = "", values: dict[str, Any] | None = None) -> Iterator[Item]:
        """The key of every item in this namespace (that meets ``condition``, if given), by a consistent Scan.

        A Scan because the namespace spans partitions; cleanup and teardown are its only users.
        """
        scan_filter = f"#ns = :ns AND {condition}" if condition else "#ns = :ns"
        projection = "#pk, #sk"
        for item in self._pages(
            client.scan,
            TableName=self._table,
            FilterExpression=scan_filter,
            ProjectionExpression=projection,
            ExpressionAttributeNames=_names(scan_filter, projection),
            ExpressionAttributeValues={**(values or {}), ":ns": {"S": self._namespace}},
            ConsistentRead=True,
        ):
            yield {"pk": item["pk"], "sk": item["sk"]}

    @staticmethod
    def _checked_size(data: bytes) -> bytes:
        data = bytes(data)  # a private copy: the caller may reuse its buffer
        if len(data) > MAX_RECORD_BYTES:
            raise CapacityExceededError(f"a record of {len(data)} bytes exceeds this backend's {MAX_RECORD_BYTES}")
        return data

    # --- the contract ------------------------------------------------------------------------

    async def get(self, key: str) -> VersionedRecord:
        def get(client: Any) -> VersionedRecord:
            now = self._now()
            item = self._live_item(client, key, "#data, #version, #expires_at", now)
            if item is None:
                raise NotFoundError(key)
            return VersionedRecord(bytes(item["data"]["B"]), int(item["version"]["N"]))

        return await self._run(get)

    async def put(self, key: str, data: bytes) -> int:
        data = self._checked_size(data)

        def put(client: Any) -> int:
            expiry = expires_at(data)
            update = "SET #ns = :ns, #data = :data, #version = if_not_exists(#version, :zero) + :one"
            values: Item = {":ns": {"S": self._namespace}, ":data": {"B": data}, ":zero": {"N": "0"}, ":one": {"N": "1"}}
            if expiry is None:
                update += " REMOVE #expires_at, #ttl"
            else:
                update += ", #expires_at = :expires_at, #ttl = :ttl"
                values[":expires_at"] = {"N": _number(expiry)}
                values[":ttl"] = {"N": str(math.ceil(expiry))}
            bump_if_live = f"attribute_not_exists(#version) OR {_LIVE}"
            for _ in range(PUT_ATTEMPTS):
                now = {":now": {"N": _number(self._now())}}
                try:  # absent or live: DynamoDB raises the version by one (from 0 for a new key)
                    answer = client.update_item(
                        TableName=self._table,
                        Key=self._key(key),
                        UpdateExpression=update,
                        ConditionExpression=bump_if_live,
                        ExpressionAttributeNames=_names(update, bump_if_live),
                        ExpressionAttributeValues={**values, **now},
                        ReturnValues="UPDATED_NEW",
                    )
                    return int(answer["Attributes"]["version"]["N"])
                except botocore.exceptions.ClientError as exc:
                    if not _condition_failed(exc):
                        raise
                still_expired = "#expires_at < :now"
                try:  # an expired item holds the key: to every operation it is absent, so the key starts at 1
                    client.put_item(
                        TableName=self._table,
                        Item=self._item(key, data, 1, expiry),
                        ConditionExpression=still_expired,
                        ExpressionAttributeNames=_names(still_expired),
                        ExpressionAttributeValues=now,
                    )
                    return 1
                except botocore.exceptions.ClientError as exc:
                    if not _condition_failed(exc):
                        raise
                # Rewritten or deleted between the two steps: start over from the item as it is now.
            raise BackendError(f"dynamodb: put lost {PUT_ATTEMPTS} races in a row against writers of the same key")

        return await self._run(put)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        data = self._checked_size(data)

        def put_if_version(client: Any) -> int:
            now = self._now()
            storable = type(expected_version) is int and len(str(abs(expected_version) + 1)) <= _MAX_VERSION_DIGITS
            if not storable:  # no item can hold this version: answer from a consistent read
                return self._refuse(client, key, expected_version, now)
            condition = f"#version = :expected AND {_LIVE}"
            try:
                client.put_item(
                    TableName=self._table,
                    Item=self._item(key, data, expected_version + 1, expires_at(data)),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=_names(condition),
                    ExpressionAttributeValues={":expected": {"N": str(expected_version)}, ":now": {"N": _number(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except botocore.exceptions.ClientError as exc:
                if not _condition_failed(exc):
                    raise
                # The item exactly as the failed condition saw it (none if there was none).
                seen = exc.response.get("Item")
                if seen is None or _expired(seen, now):
                    raise NotFoundError(key) from None
                actual = int(seen["version"]["N"])
                if actual == expected_version:  # the condition failed for no reason we know of
                    raise BackendError(f"dynamodb: conditional write refused at the expected version {actual}") from exc
                raise VersionConflictError(key, expected_version, actual) from None
            return expected_version + 1

        return await self._run(put_if_version)

    def _live_item(self, client: Any, key: str, projection: str, now: float) -> dict[str, Any] | None:
        """The item at ``key`` from one strongly consistent read, or None if it is missing or expired at ``now``."""
        item: dict[str, Any] | None = client.get_item(
            TableName=self._table,
            Key=self._key(key),
            ConsistentRead=True,
            ProjectionExpression=projection,
            ExpressionAttributeNames=_names(projection),
        ).get("Item")
        return None if item is None or _expired(item, now) else item

    def _refuse(self, client: Any, key: str, expected_version: int, now: float) -> int:
        """NotFound or a conflict for a version no item can hold, from one consistent read."""
        item = self._live_item(client, key, "#version, #expires_at", now)
        if item is None:
            raise NotFoundError(key)
        raise VersionConflictError(key, expected_version, int(item["version"]["N"]))

    async def delete(self, key: str) -> bool:
        def delete(client: Any) -> bool:
            now = self._now()
            # Unconditional, so an expired item goes too (it is absent already: BK-17); ALL_OLD says what was there.
            old = client.delete_item(TableName=self._table, Key=self._key(key), ReturnValues="ALL_OLD").get("Attributes")
            return old is not None and not _expired(old, now)

        return await self._run(delete)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        def list_by_prefix(client: Any) -> list[tuple[str, VersionedRecord]]:
            raw = prefix.encode("utf-8")
            projection = "#sk, #data, #version"
            values: Item = {":now": {"N": _number(self._now())}}
            partition = prefix_partition(prefix)
            if partition is not None:  # one partition holds every match: Query it
                key_condition = "#pk = :pk AND begins_with(#sk, :prefix)"
                values[":pk"] = {"B": self._partition_root + partition.encode("utf-8")}
                values[":prefix"] = {"B": raw}
                items = self._pages(
                    client.query,
                    TableName=self._table,
                    KeyConditionExpression=key_condition,
                    FilterExpression=_LIVE,
                    ProjectionExpression=projection,
                    ExpressionAttributeNames=_names(key_condition, _LIVE, projection),
                    ExpressionAttributeValues=values,
                    ConsistentRead=True,
                )
            else:  # a prefix shorter than a partition: Scan the namespace, test the prefix here
                condition = f"#ns = :ns AND {_LIVE}"
                values[":ns"] = {"S": self._namespace}
                items = self._pages(
                    client.scan,
                    TableName=self._table,
                    FilterExpression=condition,
                    ProjectionExpression=projection,
                    ExpressionAttributeNames=_names(condition, projection),
                    ExpressionAttributeValues=values,
                    ConsistentRead=True,
                )
            return [
                (bytes(item["sk"]["B"]).decode("utf-8"), VersionedRecord(bytes(item["data"]["B"]), int(item["version"]["N"])))
                for item in items
                if bytes(item["sk"]["B"]).startswith(raw)  # literal, byte for byte (redundant after a Query)
            ]

        return await self._run(list_by_prefix)

    async def cleanup_expired(self) -> int:
        def cleanup_expired(client: Any) -> int:
            with self._cleanups:  # concurrent cleanups do not split the expired records between them
                return sweep(client)

        def sweep(client: Any) -> int:
            now = {":now": {"N": _number(self._now())}}
            expired = "#expires_at < :now"
            removed = 0
            for key in self._namespace_keys(client, expired, now):
                try:  # decide and delete in one step: a record rewritten since the scan survives (BK-16)
                    client.delete_item(
                        TableName=self._table,
                        Key=key,
                        ConditionExpression=expired,
                        ExpressionAttributeNames=_names(expired),
                        ExpressionAttributeValues=now,
                    )
                except botocore.exceptions.ClientError as exc:
                    if not _condition_failed(exc):
                        raise
                    continue
                removed += 1
            return removed

        return await self._run(cleanup_expired)

    async def aclose(self) -> None:
        """Refuse new calls, wait for those in flight, and delete a generated namespace's items (a named one stays)."""

        def close() -> None:
            with self._state:
                self._closed = True
                self._state.wait_for(lambda: self._in_flight == 0, timeout=CLOSE_WAIT_SECONDS)
            if self._owns_namespace and self._client is not None:  # no client: nothing was ever written
                try:
                    self._drop_namespace(self._client)
                except Exception as exc:
                    raise _storage_error(exc) from exc

        await anyio.to_thread.run_sync(close)

    def _drop_namespace(self, client: Any) -> None:
        """Delete every item of this instance's namespace, 25 to a batch."""
        keys = list(self._namespace_keys(client))
        for start in range(0, len(keys), 25):
            requests = {self._table: [{"DeleteRequest": {"Key": key}} for key in keys[start : start + 25]]}
            for _ in range(PUT_ATTEMPTS):  # deletes are idempotent: re-sending the unprocessed ones is safe
                requests = client.batch_write_item(RequestItems=requests).get("UnprocessedItems") or {}
                if not requests:
                    break
            else:
                raise BackendError(f"dynamodb: could not delete namespace {self._namespace!r}: throttled")
