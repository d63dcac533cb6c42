"""Throughput: operations per second of the reference backend and of the kit's task store, beside a dict and a lock.

Each method runs a fixed workload on a fresh target (filled beforehand, untimed), in one
asyncio event loop shared by every measurement; a round times ``ops`` calls one after
another (this process's CPU time, ``time.process_time``, around the calls only) and the
figure is the median of several rounds. The baselines do the same work as naively as it can be done:
``LockedDictBackend`` is a dict of ``(data, version)`` under an ``asyncio.Lock``, with the
same versioning, CAS, prefix and expiry rules (``json.loads`` of each record for expiry);
``LockedDictStore`` is a dict of task dicts under an ``asyncio.Lock``, with the same owner
check, quota count, TTLs, transitions, variable merging, size checks (``json.dumps``),
newest-first pages and expiry, but no records to encode and no backend beneath.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from benchmarks.common import progress
from conformance import (
    AnonymousAccessError,
    InvalidTransitionError,
    NotFoundError,
    NotReadyError,
    ResourceExhaustedError,
    StoreConfig,
    TaskNotFoundError,
    TaskStatus,
    TtlExceededError,
    VariableValidationError,
    VersionConflictError,
    VersionedRecord,
    can_transition,
)
from conformance.contract.record import format_timestamp
from reference_backend import InMemoryBackend, in_memory_task_store


class Clock:
    """A clock the benchmark moves by hand, shared by a store and its backend."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# ---------------------------------------------------------------- the baselines


class LockedDictBackend:
    """A plain dict of ``(data, version)`` under one ``asyncio.Lock``: the StorageBackend rules, written naively."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._records: dict[str, tuple[bytes, int]] = {}
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> VersionedRecord:
        async with self._lock:
            if key not in self._records:
                raise NotFoundError(key)
            data, version = self._records[key]
            return VersionedRecord(data, version)

    async def put(self, key: str, data: bytes) -> int:
        async with self._lock:
            version = self._records[key][1] + 1 if key in self._records else 1
            self._records[key] = (bytes(data), version)
            return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        async with self._lock:
            if key not in self._records:
                raise NotFoundError(key)
            version = self._records[key][1]
            if version != expected_version:
                raise VersionConflictError(key, expected_version, version)
            self._records[key] = (bytes(data), version + 1)
            return version + 1

    async def delete(self, key: str) -> bool:
        async with self._lock:
            return self._records.pop(key, None) is not None

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        async with self._lock:
            return [(key, VersionedRecord(data, version)) for key, (data, version) in self._records.items() if key.startswith(prefix)]

    async def cleanup_expired(self) -> int:
        async with self._lock:
            now = self._clock()
            expired = []
            for key, (data, _) in self._records.items():
                try:
                    stamp = json.loads(data).get("expiresAt")
                    deadline = None if stamp is None else datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                except (ValueError, AttributeError):
                    deadline = None
                if deadline is not None and now > deadline:
                    expired.append(key)
            for key in expired:
                del self._records[key]
            return len(expired)


class LockedDictStore:
    """A plain dict of task dicts under one ``asyncio.Lock``: the task store's bookkeeping, written naively."""

    def __init__(self, clock: Clock, config: StoreConfig | None = None) -> None:
        self._clock = clock
        self.config = config or StoreConfig()
        self._tasks: dict[str, dict[str, Any]] = {}
        self._lock = asyncio.Lock()

    def _live(self, task: dict[str, Any], now: float) -> bool:
        return task["expires_at"] is None or now <= task["expires_at"]

    def _find(self, task_id: str, owner_id: str) -> dict[str, Any]:
        self._check_owner(owner_id)
        task = self._tasks.get(task_id)
        if task is None or task["owner_id"] != owner_id or not self._live(task, self._clock()):
            raise TaskNotFoundError(task_id)
        return task

    @staticmethod
    def _check_owner(owner_id: str) -> None:
        if not isinstance(owner_id, str) or owner_id in ("", "local"):
            raise AnonymousAccessError()

    def _check_size(self, value: Any, what: str, limit: int) -> None:
        if len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()) > limit:
            raise VariableValidationError(what, "size", f"over {limit} bytes")

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> dict[str, Any]:
        async with self._lock:
            self._check_owner(owner_id)
            now = self._clock()
            ttl = self.config.default_ttl_ms if ttl is None else ttl
            if self.config.max_ttl_ms is not None and ttl is not None and ttl > self.config.max_ttl_ms:
                raise TtlExceededError(ttl, self.config.max_ttl_ms)
            if sum(1 for t in self._tasks.values() if t["owner_id"] == owner_id and self._live(t, now)) >= self.config.max_tasks_per_owner:
                raise ResourceExhaustedError(self.config.max_tasks_per_owner)
            task: dict[str, Any] = {"task_id": uuid.uuid4().hex, "owner_id": owner_id, "request_method": request_method,
                    "status": TaskStatus.WORKING, "status_message": None, "created_at": now, "last_updated_at": now,
                    "ttl": ttl, "expires_at": None if ttl is None else now + ttl / 1000, "variables": {},
                    "has_result": False, "result": None}
            self._tasks[task["task_id"]] = task
            return dict(task)

    async def get(self, task_id: str, owner_id: str) -> dict[str, Any]:
        async with self._lock:
            return dict(self._find(task_id, owner_id))

    def _move(self, task: dict[str, Any], status: TaskStatus) -> None:
        if not can_transition(task["status"], status):
            raise InvalidTransitionError("not allowed", current=task["status"], requested=status)

    async def update_status(self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None = None) -> dict[str, Any]:
        async with self._lock:
            task = self._find(task_id, owner_id)
            self._move(task, status)
            task.update(status=status, status_message=status_message, last_updated_at=self._clock())
            return dict(task)

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            task = self._find(task_id, owner_id)
            if task["status"].is_terminal:
                raise InvalidTransitionError("terminal", current=task["status"])
            merged = {**task["variables"], **variables}
            merged = {name: value for name, value in merged.items() if value is not None}
            self._check_size(merged, "variables", self.config.max_variable_bytes)
            task.update(variables=merged, last_updated_at=self._clock())
            return dict(task)

    async def complete_with_result(self, task_id: str, owner_id: str, status: TaskStatus, status_message: str | None,
                                   result: Any) -> dict[str, Any]:
        async with self._lock:
            self._check_size(result, "result", self.config.max_result_bytes)
            task = self._find(task_id, owner_id)
            self._move(task, status)
            task.update(status=status, status_message=status_message, has_result=True, result=result, last_updated_at=self._clock())
            return dict(task)

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        async with self._lock:
            task = self._find(task_id, owner_id)
            if not task["has_result"]:
                raise NotReadyError(task_id, task["status"])
            return task["result"]

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> tuple[list[dict[str, Any]], str | None]:
        async with self._lock:
            self._check_owner(owner_id)
            now = self._clock()
            tasks = sorted((t for t in self._tasks.values() if t["owner_id"] == owner_id and self._live(t, now)),
                           key=lambda t: (-t["created_at"], t["task_id"]))
            start = 0 if cursor is None else next(i for i, t in enumerate(tasks) if t["task_id"] == cursor) + 1
            size = limit or self.config.default_page_size
            page = [dict(t) for t in tasks[start:start + size]]
            return page, page[-1]["task_id"] if start + size < len(tasks) else None

    async def cleanup_expired(self) -> int:
        async with self._lock:
            now = self._clock()
            expired = [task_id for task_id, task in self._tasks.items() if not self._live(task, now)]
            for task_id in expired:
                del self._tasks[task_id]
            return len(expired)


# ---------------------------------------------------------------- workloads


@dataclass(frozen=True)
class Workload:
    """One method's benchmark: a fresh target filled by ``setup`` (untimed), then ``ops`` timed calls of ``op``, ``setups`` times a round."""

    method: str
    setup: Callable[[Any, Clock], Awaitable[Any]]
    op: Callable[[Any, Any, int], Awaitable[object]]
    ops: int
    setups: int = 1


RECORDS = 1000
PREFIXES = 100
#: A record as the kit's store writes them, about 200 bytes; one in ten has expired under the benchmark's clock.
LIVE = json.dumps({"expiresAt": format_timestamp(2_000_000_000), "payload": "x" * 140}).encode()
EXPIRED = json.dumps({"expiresAt": format_timestamp(1_000_000_000), "payload": "x" * 140}).encode()


def _key(i: int) -> str:
    return f"p{i % PREFIXES:02d}/record-{i:05d}"


async def _filled(backend: Any, _clock: Clock) -> list[int]:
    for i in range(RECORDS):
        await backend.put(_key(i), EXPIRED if i % 10 == 0 else LIVE)
    return [1] * RECORDS


async def _cas(backend: Any, versions: list[int], i: int) -> None:
    versions[i % RECORDS] = await backend.put_if_version(_key(i % RECORDS), LIVE, versions[i % RECORDS])


def backend_workloads(scale: int) -> list[Workload]:
    """The six StorageBackend methods over 1,000 records in 100 prefixes; ``scale`` multiplies the calls per round."""
    return [
        Workload("get", _filled, lambda b, _s, i: b.get(_key(i % RECORDS)), 2000 * scale),
        Workload("put", _filled, lambda b, _s, i: b.put(_key(i % RECORDS), LIVE), 2000 * scale),
        Workload("put_if_version", _filled, _cas, 2000 * scale),
        Workload("delete", _filled, lambda b, _s, i: b.delete(_key(i)), RECORDS, setups=scale),
        Workload("list_by_prefix", _filled, lambda b, _s, i: b.list_by_prefix(f"p{i % PREFIXES:02d}/"), 500 * scale),
        Workload("cleanup_expired", _filled, lambda b, _s, _i: b.cleanup_expired(), 1, setups=10 * scale),
    ]


OWNERS = [f"owner-{n:02d}" for n in range(20)]
TASKS_PER_OWNER = 25
TASKS = len(OWNERS) * TASKS_PER_OWNER


def _task_id(task: Any) -> str:
    return str(task["task_id"] if isinstance(task, dict) else task.task_id)


async def _tasks(store: Any, clock: Clock, *, results: bool = False, short_lived: int = 0) -> list[tuple[str, str]]:
    """500 tasks, 25 for each of 20 owners, one created per millisecond; the first ``short_lived`` live for 1 s."""
    made = []
    for i in range(TASKS):
        clock.now += 0.001
        owner = OWNERS[i % len(OWNERS)]
        task = await store.create(owner, "tools/call", 1000 if i < short_lived else None)
        if results:
            await store.complete_with_result(_task_id(task), owner, TaskStatus.COMPLETED, None, {"answer": i})
        made.append((_task_id(task), owner))
    return made


async def _created(store: Any, clock: Clock) -> list[tuple[str, str]]:
    return await _tasks(store, clock)


async def _with_results(store: Any, clock: Clock) -> list[tuple[str, str]]:
    return await _tasks(store, clock, results=True)


async def _half_expired(store: Any, clock: Clock) -> None:
    await _tasks(store, clock, short_lived=TASKS // 10)
    clock.now += 2


async def _empty(_store: Any, _clock: Clock) -> None:
    return None


def _status(i: int) -> TaskStatus:
    """Back and forth between two non-terminal statuses: every call is a real transition."""
    return TaskStatus.INPUT_REQUIRED if (i // TASKS) % 2 == 0 else TaskStatus.WORKING


def store_workloads(scale: int) -> list[Workload]:
    """The task store's methods over 500 tasks of 20 owners; ``scale`` multiplies the calls per round."""
    def on(i: int, tasks: list[tuple[str, str]]) -> tuple[str, str]:
        return tasks[i % len(tasks)]

    return [
        Workload("create", _empty, lambda s, _t, i: s.create(OWNERS[i % len(OWNERS)], "tools/call"), TASKS, setups=scale),
        Workload("get", _created, lambda s, t, i: s.get(*on(i, t)), 2000 * scale),
        Workload("update_status", _created, lambda s, t, i: s.update_status(*on(i, t), _status(i), "progress"), 1000 * scale),
        Workload("set_variables", _created, lambda s, t, i: s.set_variables(*on(i, t), {"step": i, "note": "n"}), 1000 * scale),
        Workload("complete_with_result", _created,
                 lambda s, t, i: s.complete_with_result(*on(i, t), TaskStatus.COMPLETED, "done", {"answer": i}), TASKS, setups=scale),
        Workload("get_result", _with_results, lambda s, t, i: s.get_result(*on(i, t)), 2000 * scale),
        Workload("list", _created, lambda s, _t, i: s.list(OWNERS[i % len(OWNERS)]), 200 * scale),
        Workload("cleanup_expired", _half_expired, lambda s, _t, _i: s.cleanup_expired(), 1, setups=10 * scale),
    ]


async def ops_per_second(factory: Callable[[Clock], Any], workload: Workload) -> float:
    """One round: ``setups`` fresh targets, each filled and then timed over ``ops`` calls; calls per second of CPU time.

    CPU time of this process, not wall time: the calls never wait for anything outside it, so on
    a shared machine the wall clock would measure the other jobs as much as the code.
    """
    timed = 0.0
    for _ in range(workload.setups):
        clock = Clock()
        target = factory(clock)
        state = await workload.setup(target, clock)
        started = time.process_time()
        for i in range(workload.ops):
            await workload.op(target, state, i)
        timed += time.process_time() - started
    return workload.ops * workload.setups / timed


async def compare(contract: str, workloads: list[Workload], reference: Callable[[Clock], Any], baseline: Callable[[Clock], Any],
                  rounds: int) -> list[dict[str, Any]]:
    """Each method on the reference and on the baseline, rounds interleaved (so a busy moment hits both): medians and their ratio."""
    rows = []
    for workload in workloads:
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(await ops_per_second(reference, workload))
            theirs.append(await ops_per_second(baseline, workload))
        mine, plain = round(statistics.median(ours)), round(statistics.median(theirs))
        row = {"contract": contract, "method": workload.method, "calls_per_round": workload.ops * workload.setups, "rounds": rounds,
               "reference": mine, "baseline": plain, "ratio": round(mine / plain, 3)}
        progress(f"throughput {contract}.{workload.method}: {row['reference']:,} vs {row['baseline']:,} ops/s")
        rows.append(row)
    return rows


def measure(*, quick: bool) -> dict[str, Any]:
    rounds, scale = (3, 1) if quick else (7, 3)

    async def both() -> list[dict[str, Any]]:
        backend = await compare("backend", backend_workloads(scale), lambda clock: InMemoryBackend(clock=clock), LockedDictBackend, rounds)
        store = await compare("task store", store_workloads(scale), lambda clock: in_memory_task_store(clock=clock), LockedDictStore, rounds)
        return backend + store

    return {
        "reference": {"backend": "reference_backend:InMemoryBackend", "task store": "reference_backend:in_memory_task_store"},
        "baseline": {"backend": "dict + asyncio.Lock", "task store": "dict of task dicts + asyncio.Lock"},
        "rounds": rounds,
        "records": RECORDS,
        "tasks": TASKS,
        "rows": asyncio.run(both()),
    }
