"""Python objects that keep the contract by asking a process: every test runs unchanged on a target across the wire."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from conformance.contract.backend import VersionedRecord
from conformance.contract.capabilities import Capabilities, ExpiredRecords
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import TaskPage, TaskRecord, TaskStatus
from conformance.models.operation import describe_call
from conformance.wire.codec import (
    backend_request,
    backend_result,
    config_in,
    config_out,
    error_in,
    security_out,
    store_request,
    store_result,
)
from conformance.wire.process import WireProcess

Clock = Callable[[], float]


class _WireInstance:
    """One instance in the process: its handle, and the kit's clock sent with every request."""

    contract = ""
    error_clause = ""

    def __init__(self, process: WireProcess, instance: str, clock: Clock | None) -> None:
        self.process = process
        self.instance = instance
        self._clock = clock

    async def _ask(self, method: str, fields: dict[str, Any], args: tuple[Any, ...]) -> Any:
        fields["instance"] = self.instance
        if self._clock is not None:
            fields["now_ms"] = round(self._clock() * 1000)
        reply = await self.process.request(method, fields)
        call = partial(describe_call, method, args)
        if "error" in reply:
            raise error_in(call, self.error_clause, reply["error"])
        return self._result(method, call, reply)

    def _result(self, method: str, call: Callable[[], str], reply: dict[str, Any]) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        reply = await self.process.request("close", {"instance": self.instance})
        if "error" in reply:
            raise error_in(lambda: f"close({self.instance!r})", self.error_clause, reply["error"])


async def _open(process: WireProcess, clock: Clock | None, clause: str, **fields: Any) -> dict[str, Any]:
    """Open an instance; an error reply off the schema breaks ``clause``, the contract's rule that a factory gives instances."""
    if clock is not None:
        fields["now_ms"] = round(clock() * 1000)
    reply = await process.request("open", fields)
    if "error" in reply:
        raise error_in(lambda: "open()", clause, reply["error"])
    opened: dict[str, Any] = reply["ok"]
    if not isinstance(opened, dict) or not isinstance(opened.get("instance"), str):
        raise ValueError(f"open was answered with {opened!r}, not {{'instance': handle}}")
    return opened


class WireBackend(_WireInstance):
    """A StorageBackend in another process (WIRE-PROTOCOL.md, Backend operations)."""

    contract = "backend"
    error_clause = "BK-3"

    def _result(self, method: str, call: Callable[[], str], reply: dict[str, Any]) -> Any:
        return backend_result(method, call, reply)

    async def _backend(self, method: str, *args: Any) -> Any:
        return await self._ask(method, backend_request(method, args), args)

    async def get(self, key: str) -> VersionedRecord:
        record: VersionedRecord = await self._backend("get", key)
        return record

    async def put(self, key: str, data: bytes) -> int:
        version: int = await self._backend("put", key, data)
        return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        version: int = await self._backend("put_if_version", key, data, expected_version)
        return version

    async def delete(self, key: str) -> bool:
        deleted: bool = await self._backend("delete", key)
        return deleted

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        listed: list[tuple[str, VersionedRecord]] = await self._backend("list_by_prefix", prefix)
        return listed

    async def cleanup_expired(self) -> int:
        removed: int = await self._backend("cleanup_expired")
        return removed


class WireStore(_WireInstance):
    """A TaskStore in another process (WIRE-PROTOCOL.md, Store operations); ``config`` is what its open answered."""

    contract = "store"
    error_clause = "TS-2"

    def __init__(self, process: WireProcess, instance: str, clock: Clock | None, config: StoreConfig) -> None:
        super().__init__(process, instance, clock)
        self.config = config

    def _result(self, method: str, call: Callable[[], str], reply: dict[str, Any]) -> Any:
        return store_result(method, call, reply)

    async def _store(self, method: str, *args: Any) -> Any:
        return await self._ask(method, store_request(method, args), args)

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        task: TaskRecord = await self._store("create", owner_id, request_method, ttl)
        return task

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        task: TaskRecord = await self._store("get", task_id, owner_id)
        return task

    async def update_status(self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None) -> TaskRecord:
        task: TaskRecord = await self._store("update_status", task_id, owner_id, status, status_message)
        return task

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        task: TaskRecord = await self._store("set_variables", task_id, owner_id, variables)
        return task

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        task: TaskRecord = await self._store("set_result", task_id, owner_id, result)
        return task

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        return await self._store("get_result", task_id, owner_id)

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None, result: Any
    ) -> TaskRecord:
        task: TaskRecord = await self._store("complete_with_result", task_id, owner_id, status, status_message, result)
        return task

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        page: TaskPage = await self._store("list", owner_id, cursor, limit)
        return page

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        task: TaskRecord = await self._store("cancel", task_id, owner_id)
        return task

    async def cleanup_expired(self) -> int:
        removed: int = await self._store("cleanup_expired")
        return removed


@dataclass(frozen=True)
class WireTarget:
    """What the handshake told: the factory the kit calls per test, and the capabilities it declared."""

    factory: Callable[..., Awaitable[Any]]
    capabilities: Capabilities
    name: str
    process: WireProcess = field(repr=False)


def wire_target(process: WireProcess, kind: str, timeout: float) -> WireTarget:
    """Shake hands with ``process`` and build the factory a Target wraps; WireStartError if the handshake fails."""
    hello = process.handshake(kind, timeout)
    declared = hello["capabilities"]
    takes_clock = bool(declared.get("clock"))
    waivers = dict(declared.get("waivers") or {})
    name = str(hello.get("name") or process.command)
    if kind == "backend":
        capabilities = Capabilities(
            expired_records=ExpiredRecords(declared.get("expired_records") or ExpiredRecords.KEPT_UNTIL_CLEANUP.value),
            max_record_bytes=declared.get("max_record_bytes"),
            waivers=waivers,
        )
        return WireTarget(_backend_factory(process, takes_clock), capabilities, name, process)
    return WireTarget(_store_factory(process, takes_clock, bool(declared.get("config"))), Capabilities(waivers=waivers), name, process)


def _clock_or_wall(clock: Clock | None) -> Clock:
    """A target that declared the clock gets ``now_ms`` on every request: the kit's clock, or the wall's for the probe."""
    return clock if clock is not None else time.time


def _backend_factory(process: WireProcess, takes_clock: bool) -> Callable[..., Awaitable[WireBackend]]:
    if takes_clock:
        async def open_backend_with_clock(clock: Clock | None = None) -> WireBackend:
            tick = _clock_or_wall(clock)
            return WireBackend(process, (await _open(process, tick, "BK-1"))["instance"], tick)

        return open_backend_with_clock

    async def open_backend() -> WireBackend:
        return WireBackend(process, (await _open(process, None, "BK-1"))["instance"], None)

    return open_backend


def _store_factory(process: WireProcess, takes_clock: bool, takes_config: bool) -> Callable[..., Awaitable[WireStore]]:
    async def opened(clock: Clock | None, config: StoreConfig | None, security: SecurityConfig | None) -> WireStore:
        fields: dict[str, Any] = {}
        if takes_config:
            fields["config"] = config_out(config or StoreConfig())
            fields["security"] = security_out(security or SecurityConfig())
        answer = await _open(process, clock, "TS-1", **fields)
        if not isinstance(answer.get("config"), dict):
            raise ValueError("a store's open must answer the limits in effect ({'instance': ..., 'config': {...}})")
        return WireStore(process, answer["instance"], clock, config_in(answer["config"]))

    # The signature says what the store takes: the kit offers a clock and limits only where declared.
    if takes_clock and takes_config:
        async def open_store_full(clock: Clock | None = None, config: StoreConfig | None = None,
                                  security: SecurityConfig | None = None) -> WireStore:
            return await opened(_clock_or_wall(clock), config, security)

        return open_store_full
    if takes_clock:
        async def open_store_with_clock(clock: Clock | None = None) -> WireStore:
            return await opened(_clock_or_wall(clock), None, None)

        return open_store_with_clock
    if takes_config:
        async def open_store_with_config(config: StoreConfig | None = None, security: SecurityConfig | None = None) -> WireStore:
            return await opened(None, config, security)

        return open_store_with_config

    async def open_store() -> WireStore:
        return await opened(None, None, None)

    return open_store
