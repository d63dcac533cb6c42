"""Race machines: a drawn concurrent program on a fresh instance, its history recorded and checked.

``race_backend`` and ``race_store`` are what the suite's CC tests call with a drawn program
and schedule. Each opens a fresh instance, brings it to the program's starting state with
sequential calls judged by the model (so the checker knows the state the race starts from),
then releases every client at once on the test's loop under the schedule, each client
making its calls in order and recording each call and answer on one logical clock. When
all clients are done, one of them reads back everything the program touched, so a lost
write shows as a read. The history goes to the linearizability checker; a violation is
raised with the failing part drawn as a per-client timeline, the schedule that produced it
and, with ``--conformance-timelines``, an HTML page.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import anyio
import anyio.lowlevel

from conformance.checker import (
    History,
    HistoryRecorder,
    Verdict,
    check,
    to_html,
    to_text,
)
from conformance.contract.errors import BackendError, StorageError
from conformance.contract.store import StoreConfig
from conformance.contract.task import TaskRecord
from conformance.contract.task_errors import ConcurrentModificationError, TaskError, TaskStoreError
from conformance.harness.clock import FakeClock
from conformance.harness.guard import Blocking, Checked
from conformance.harness.harness import Harness, wall_clock
from conformance.harness.schedule import Schedule, Steering, short_switch_interval
from conformance.harness.together import warm_up
from conformance.machines.judge import judge
from conformance.machines.kv_driver import invoke
from conformance.models import kv, tasks
from conformance.models.operation import Operation
from conformance.spec import ContractViolation
from conformance.strategies.programs import (
    ABSENT,
    EXPIRED,
    FUTURE,
    LIVE,
    PAST,
    RACE_KEYS,
    RACE_OWNERS,
    RACE_PREFIXES,
    KVProgram,
    KVStep,
    TaskProgram,
    TaskStep,
)
from conformance.strategies.records import FAR_FUTURE, FAR_PAST, record_bytes

#: Seconds the checker may spend on one history before the verdict is "undecided" (CC-8).
CHECK_BUDGET = 30.0

#: Task-store limits for races: a quota small enough that creates race it, TTLs that cannot run out by themselves.
RACE_LIMITS = StoreConfig(max_tasks_per_owner=3, default_ttl_ms=3_600_000, max_ttl_ms=7_200_000)
#: The TTL of a preloaded task the program wants expired; the clock then moves past it.
SHORT_TTL_MS = 1_000

#: ``observe(op, result, error) -> (op as completed by the answer, outcome)``.
Observe = Callable[[Any, Any, BaseException | None], tuple[Any, Any]]


@dataclass
class Race:
    """One run of a program: its history, the schedule it ran under, and anything the clients broke on the way."""

    history: History
    schedule: Schedule
    problems: list[ContractViolation]


async def play(
    checked: Checked,
    clients: Sequence[Sequence[Operation]],
    observe: Observe,
    errors: tuple[type[BaseException], ...],
    schedule: Schedule,
    finals: Sequence[Operation] = (),
) -> Race:
    """Run every client at once on the current loop, then ``finals`` after them all; record everything."""
    recorder = HistoryRecorder()
    steering = Steering(schedule)
    problems: list[ContractViolation] = []

    async def call(client: int, op: Operation) -> bool:
        token = recorder.invoke(client, op)
        try:
            result = await op.apply(checked)
        except errors as error:
            if transient(error):  # the engine failed: the call reached it or not; this client goes on
                recorder.unknown(token)
                return True
            completed, outcome = observe(op, None, error)
        except ContractViolation as problem:  # a timeout or a malformed answer: outcome unknown, this client stops
            recorder.unknown(token)
            problems.append(problem)
            return False
        else:
            completed, outcome = observe(op, result, None)
        recorder.respond(token, outcome, op=completed)
        return True

    async def client(number: int, ops: Sequence[Operation]) -> None:
        steering.register()
        await anyio.lowlevel.checkpoint()  # from here on, even the first call starts where the schedule says
        for op in ops:
            await steering.pause()
            if not await call(number, op):
                return

    with steering.steer(), short_switch_interval():
        async with anyio.create_task_group() as group:
            for number, ops in enumerate(clients, start=1):
                group.start_soon(client, number, ops)
    for op in finals:
        if not await call(1, op):
            break
    return Race(recorder.history(), schedule, problems)


def transient(error: BaseException) -> bool:
    """Whether a failure leaves the call's effect unknown: a BackendError (BK-3: the engine or its
    driver failed, a transient failure surfaced at once), or a store's TaskStoreError caused by one.

    Such a call may have taken effect before its reply was lost, so the history records it as
    unknown (CC-7), like a timeout, not as an answer the model must admit: a correct backend
    whose engine fails a write under load is not failed for it (the DynamoDB emulator did, in
    the load test, and the search on the history then ran out of its budget). Any other error
    is an answer, and judged: a lost race told as a TaskStoreError is still TS-18's.
    """
    cause = error.__cause__ if isinstance(error, TaskStoreError) else error
    return isinstance(cause, BackendError)


def _verdict_or_raise(harness: Harness, race: Race, verdict: Verdict, title: str) -> None:
    """Raise the violation (with its timeline) or, for a sound history, the first problem met on the way."""
    if verdict.ok:
        if race.problems:
            raise race.problems[0]
        return
    shown = verdict.partition if verdict.partition is not None else race.history
    clients = len(shown.clients())
    lines = [
        verdict.explanation,
        f"under {race.schedule.describe()}",
        f"failing history: {len(shown)} calls by {clients} client{'s' if clients != 1 else ''}",
        to_text(shown, verdict, heading=False),
    ]
    if harness.timeline_dir is not None:
        harness.timeline_dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(race.history.describe().encode("utf-8")).hexdigest()[:8]
        page = harness.timeline_dir / f"{verdict.clause or 'CC'}-{digest}.html"
        page.write_text(to_html(shown, verdict, title=title), encoding="utf-8")
        lines.append(f"HTML timeline: {page}")
    evidence = {"clients": clients, "calls": len(shown), "status": verdict.status, "schedule": list(race.schedule.choices[: race.schedule.position])}
    raise ContractViolation(verdict.clause or "CC-8", "\n".join(lines), evidence)


# ------------------------------------------------------------------ backends


def _expiry(kind: str, clock: FakeClock | None) -> float | None:
    if kind == PAST:
        return clock() - 1.0 if clock is not None else FAR_PAST
    if kind == FUTURE:
        return clock() + 3600.0 if clock is not None else FAR_FUTURE
    return None


def _kv_op(step: KVStep, client: int, call: int, clock: FakeClock | None) -> kv.KVOperation:
    key = RACE_KEYS[step.key]
    if step.kind in ("put", "cas"):
        payload: dict[str, Any] = {"client": client, "call": call}
        if step.pad:
            payload["pad"] = "x" * step.pad
        data = record_bytes(payload, _expiry(step.expiry, clock), serial=1000 * client + call)
        return kv.Put(key, data) if step.kind == "put" else kv.PutIfVersion(key, data, step.expected)
    if step.kind == "get":
        return kv.Get(key)
    if step.kind == "delete":
        return kv.Delete(key)
    if step.kind == "list":
        return kv.ListByPrefix(RACE_PREFIXES[step.prefix])
    return kv.CleanupExpired()


def _kv_observe(op: Any, result: Any, error: BaseException | None) -> tuple[Any, Any]:
    return op, kv.observe(result, error)


def race_backend(harness: Harness, program: KVProgram, schedule: Schedule, warm: bool = False, title: str = "backend race") -> Race:
    """Run ``program`` on a fresh backend under ``schedule``; raise the clause its history breaks.

    ``warm``: first open as many concurrent reads as there are clients (``warm_up``), so a
    backend on a server has its connections ready when the clients are released.
    """
    with harness.fresh_backend() as (backend, clock):
        model = kv.KVModel(harness.capabilities.expired_records)
        state = model.initial(clock() if clock is not None else wall_clock())
        for index, (key, holds) in enumerate(zip(RACE_KEYS, program.preload)):
            if holds in (LIVE, EXPIRED):
                op = kv.Put(key, record_bytes({"preload": key}, _expiry(PAST if holds == EXPIRED else FUTURE, clock), serial=index + 1))
                state = judge(model, state, op, invoke(backend, op))
        clients = [[_kv_op(step, n, i, clock) for i, step in enumerate(steps)] for n, steps in enumerate(program.clients, start=1)]
        touched = {op.key for ops in clients for op in ops if isinstance(op, (kv.Put, kv.PutIfVersion, kv.Delete))}
        finals = [kv.Get(key) for key, holds in zip(RACE_KEYS, program.preload) if key in touched or holds != ABSENT]
        if warm:
            backend.run(lambda checked: warm_up(checked, len(clients)))
        race = _run(backend, clients, _kv_observe, (StorageError,), schedule, finals)
        verdict = check(race.history, model, initial=state, budget=CHECK_BUDGET)
        _verdict_or_raise(harness, race, verdict, title)
        return race


def _run(
    target: Blocking[Any], clients: Sequence[Sequence[Operation]], observe: Observe,
    errors: tuple[type[BaseException], ...], schedule: Schedule, finals: Sequence[Operation],
) -> Race:
    async def program(checked: Checked) -> Race:
        return await play(checked, clients, observe, errors, schedule, finals)

    calls = sum(len(c) for c in clients) + len(finals)
    return target.run(program, timeout=target.checked.timeout * (calls + 1))


# ------------------------------------------------------------------ task stores

_OWNER, _OTHER = RACE_OWNERS


def _task_op(step: TaskStep, client: int, call: int, ids: Sequence[str]) -> tasks.TaskOperation:
    task_id = ids[step.task % len(ids)]
    owner = _OTHER if step.foreign else _OWNER
    mark = f"c{client}.{call}"
    kind = step.kind
    if kind == "set_variables":
        return tasks.SetVariables(task_id, owner, {step.variable: None if step.delete else mark})
    if kind == "update_status":
        return tasks.UpdateStatus(task_id, owner, step.status, mark)
    if kind == "complete":
        return tasks.CompleteWithResult(task_id, owner, step.status, mark, {"by": mark})
    if kind == "cancel":
        return tasks.Cancel(task_id, owner)
    if kind == "create":
        return tasks.Create(owner, "tools/call", None)
    if kind == "get":
        return tasks.Get(task_id, owner)
    if kind == "set_result":
        return tasks.SetResult(task_id, owner, {"by": mark})
    if kind == "get_result":
        return tasks.GetResult(task_id, _OWNER)
    if kind == "list":
        return _listing(owner)
    return tasks.CleanupExpired()


def _listing(owner: str) -> tasks.ListTasks:
    return tasks.ListTasks(owner, None, 2 * RACE_LIMITS.max_tasks_per_owner + 10)


def _task_observe(op: Any, result: Any, error: BaseException | None) -> tuple[Any, Any]:
    if isinstance(op, tasks.Create) and isinstance(result, TaskRecord):
        op = replace(op, assigned_id=result.task_id)
    return op, tasks.observe(op, result, error)


def _contended(history: History) -> History:
    """Leave out the calls refused with ConcurrentModificationError: TS-18 lets any write lose a race, with no effect.

    Dropping them is exactly "refused, and changed nothing": if such a call did change
    something, a later read shows data no remaining call wrote, and the history fails.
    """
    refused = tasks.Raised(ConcurrentModificationError.__name__)
    return history.where(lambda e: e.outcome != refused)


def race_store(harness: Harness, clock: FakeClock, program: TaskProgram, schedule: Schedule) -> Race:
    """Run ``program`` on a fresh task store under ``schedule``; raise the clause its history breaks."""
    store = harness.open_store(clock, config=RACE_LIMITS)
    try:
        model = tasks.TaskModel(harness.store_config(store), expired_records=harness.capabilities.expired_records)
        state = model.initial(clock())
        ids: list[str] = []
        # Only a target on the kit's clock can have a task expire on cue.
        expiring = harness.controls_time
        for holds in program.tasks:
            op: Any = tasks.Create(_OWNER, "tools/call", SHORT_TTL_MS if holds == EXPIRED and expiring else None)
            try:
                created = op.apply(store)
            except TaskError as error:
                state = judge(model, state, op, tasks.observe(op, error=error))
                continue
            op, outcome = _task_observe(op, created, None)
            state = judge(model, state, op, outcome)
            ids.append(created.task_id)
        if not ids:
            raise ContractViolation("TS-4", "could not create a single task to race on")
        if EXPIRED in program.tasks and expiring:
            clock.advance(2 * SHORT_TTL_MS / 1000)
            state = state.at(clock())
        clients = [[_task_op(step, n, i, ids) for i, step in enumerate(steps)] for n, steps in enumerate(program.clients, start=1)]
        finals: list[Operation] = [tasks.Get(task_id, _OWNER) for task_id in ids] + [_listing(_OWNER), _listing(_OTHER)]
        race = _run(store, clients, _task_observe, (TaskError,), schedule, finals)
        verdict = check(_contended(race.history), model, initial=state, budget=CHECK_BUDGET, partition=None, cheap=False)
        _verdict_or_raise(harness, race, verdict, "task store race")
        return race
    finally:
        harness.release_store(store)
