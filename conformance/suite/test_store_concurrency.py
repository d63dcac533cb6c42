"""TS-18 (and TS-6, TS-20 under contention): concurrent calls on one store, released in the same loop tick.

Each call either succeeds or raises ConcurrentModificationError, and the successful ones
must be explainable as one serial order: the versions they return are consecutive, each
returned task is exactly the previous one with that call applied, and the final task is
the last of them. So no update is lost and no refused write leaves a trace. How often
calls actually collide depends on the target (a backend that never suspends serialises
them all); the judgement is the same either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest

from conformance import (
    INTERNAL_ERROR,
    ConcurrentModificationError,
    InvalidTransitionError,
    ResourceExhaustedError,
    StoreConfig,
    TaskError,
    TaskPage,
    TaskRecord,
    TaskStatus,
    VariableSizeExceededError,
    canonical_json,
)
from conformance.checks.task_store import OWNER, refused_create
from conformance.harness import CheckedStore, SyncStore
from conformance.harness.together import run_together
from conformance.spec import covers, require

pytestmark = pytest.mark.conformance_target("store")

ROUNDS = 4


@dataclass(frozen=True)
class _Write:
    """One concurrent mutation and what it does to the task if it wins."""

    describe: str
    call: Callable[[CheckedStore], Awaitable[Any]]
    variables: dict[str, Any] | None = None
    result: Any = None
    has_result: bool = False
    status: TaskStatus | None = None
    message: str | None = None


@dataclass
class _Task:
    """The caller-visible state a serial replay of the winners arrives at."""

    variables: dict[str, Any]
    has_result: bool
    result: Any
    status: TaskStatus
    message: str | None
    applied: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, task: TaskRecord) -> _Task:
        return cls(dict(task.variables), task.has_result, task.result, task.status, task.status_message)

    def apply(self, write: _Write) -> None:
        if write.variables is not None:
            for name, value in write.variables.items():
                if value is None:
                    self.variables.pop(name, None)
                else:
                    self.variables[name] = value
        if write.has_result:
            self.has_result, self.result = True, write.result
        if write.status is not None:
            self.status, self.message = write.status, write.message
        self.applied.append(write.describe)

    def matches(self, task: TaskRecord) -> bool:
        return (
            canonical_json(self.variables) == canonical_json(task.variables)
            and self.has_result == task.has_result
            and (not self.has_result or canonical_json(self.result) == canonical_json(task.result))
            and (self.status, self.message) == (task.status, task.status_message)
        )


def _writes(task_id: str, round_: int) -> list[_Write]:
    def set_variables(variables: dict[str, Any]) -> _Write:
        return _Write(f"set_variables({variables!r})", lambda c: c.set_variables(task_id, OWNER, variables), variables=variables)

    def set_result(result: Any) -> _Write:
        return _Write(f"set_result({result!r})", lambda c: c.set_result(task_id, OWNER, result), result=result, has_result=True)

    def update_status(status: TaskStatus, message: str) -> _Write:
        return _Write(f"update_status({status.value}, {message!r})", lambda c: c.update_status(task_id, OWNER, status, message),
                      status=status, message=message)

    return [
        set_variables({f"r{round_}w0": 0}),
        set_variables({f"r{round_}w1": 1, "shared": f"r{round_}w1"}),
        set_variables({f"r{round_}w2": [2], "shared": f"r{round_}w2"}),
        set_variables({f"r{round_ - 1}w0": None, f"r{round_}w3": {"n": 3}}),
        set_result({"round": round_, "writer": 4}),
        set_result([round_, 5]),
        update_status(TaskStatus.INPUT_REQUIRED, f"round {round_}: need input"),
        update_status(TaskStatus.WORKING, f"round {round_}: working"),
    ]


async def _release(checked: CheckedStore, calls: list[Callable[[CheckedStore], Awaitable[Any]]]) -> list[Any]:
    return await run_together([partial(call, checked) for call in calls], catch=(TaskError,))


def _set_variables(task_id: str, variables: dict[str, Any]) -> Callable[[CheckedStore], Awaitable[TaskRecord]]:
    """A set_variables of ``variables`` on the task, by whichever checked store it is handed."""
    return lambda c: c.set_variables(task_id, OWNER, variables)


@covers("TS-18", "TS-4")
def test_concurrent_writes_lose_no_update(store: SyncStore) -> None:
    task = store.create(OWNER, "m")
    for round_ in range(ROUNDS):
        base = store.get(task.task_id, OWNER)
        writes = _writes(task.task_id, round_)
        outcomes = store.run(lambda checked: _release(checked, [w.call for w in writes]))
        won: list[tuple[TaskRecord, _Write]] = []
        held = {base.status} | {w.status for w, o in zip(writes, outcomes) if isinstance(o, TaskRecord) and w.status is not None}
        for write, outcome in zip(writes, outcomes):
            if isinstance(outcome, TaskRecord):
                won.append((outcome, write))
                continue
            if isinstance(outcome, InvalidTransitionError) and write.status in held:
                continue  # it ran when the task already held that status: a store may refuse that (TS-8)
            require("TS-18", isinstance(outcome, ConcurrentModificationError),
                    f"{write.describe}, released together with {len(writes) - 1} other writes on a live task, raised "
                    f"{type(outcome).__name__}: {outcome}; the only refusal contention may cause is ConcurrentModificationError")
        require("TS-18", bool(won), f"all {len(writes)} concurrent writes were refused; the first to write must win")
        won.sort(key=lambda pair: pair[0].version)
        versions = [t.version for t, _ in won]
        require("TS-4", len(set(versions)) == len(won) and versions[0] > base.version,
                f"the {len(won)} successful concurrent writes from version {base.version} returned versions {versions}; "
                "each write raises the version")
        replay = _Task.of(base)
        for returned, write in won:
            replay.apply(write)
            require("TS-18", replay.matches(returned),
                    f"{write.describe} returned {returned!r}, but applying the successful writes in version order "
                    f"({'; '.join(replay.applied)}) gives variables {replay.variables!r}, result {replay.result!r}, "
                    f"status {replay.status.value} {replay.message!r}: an update was lost or a refused write leaked")
        final = store.get(task.task_id, OWNER)
        require("TS-18", final == won[-1][0], f"after the race get returns {final!r}, not the last successful write {won[-1][0]!r}")
        for write, outcome in zip(writes, outcomes):
            if isinstance(outcome, ConcurrentModificationError):
                figures = expected, actual = (outcome.expected_version, outcome.actual_version)
                require("TS-18", outcome.code == INTERNAL_ERROR
                        and isinstance(expected, int) and not isinstance(expected, bool) and isinstance(actual, int) and not isinstance(actual, bool)
                        and base.version <= expected < actual <= final.version,
                        f"{write.describe} lost a race with ConcurrentModificationError(expected_version={figures[0]!r}, "
                        f"actual_version={figures[1]!r}) code {outcome.code}; expected the version it read "
                        f"(from {base.version}) below the one the store held (up to {final.version}), and -32603")


@covers("TS-18")
def test_concurrent_completions_have_one_winner(store: SyncStore) -> None:
    for _ in range(ROUNDS):
        task = store.create(OWNER, "m")
        tid = task.task_id
        calls: list[tuple[str, Callable[[CheckedStore], Awaitable[Any]]]] = [
            ("complete_with_result(completed)", lambda c: c.complete_with_result(tid, OWNER, TaskStatus.COMPLETED, "c", {"by": "c"})),
            ("complete_with_result(failed)", lambda c: c.complete_with_result(tid, OWNER, TaskStatus.FAILED, "f", {"by": "f"})),
            ("update_status(completed)", lambda c: c.update_status(tid, OWNER, TaskStatus.COMPLETED, "u")),
            ("cancel", lambda c: c.cancel(tid, OWNER)),
            ("update_status(cancelled)", lambda c: c.update_status(tid, OWNER, TaskStatus.CANCELLED, "x")),
        ]
        outcomes = store.run(lambda checked: _release(checked, [call for _, call in calls]))
        winners = [(what, o) for (what, _), o in zip(calls, outcomes) if isinstance(o, TaskRecord)]
        require("TS-18", len(winners) == 1,
                f"{len(winners)} of {len(calls)} concurrent moves to a terminal status succeeded ({[w for w, _ in winners]}); "
                "exactly one may, a terminal task never changes again")
        for (what, _), outcome in zip(calls, outcomes):
            if not isinstance(outcome, TaskRecord):
                require("TS-18", isinstance(outcome, (ConcurrentModificationError, InvalidTransitionError)),
                        f"{what} lost the race with {type(outcome).__name__}: {outcome}; expected "
                        "ConcurrentModificationError (a conflict) or InvalidTransitionError (the task was already terminal)")
        require("TS-18", store.get(tid, OWNER) == winners[0][1], f"the task does not read as the winner ({winners[0][0]}) left it")


@covers("TS-6", "SEC-9", "TS-16")
def test_concurrent_creates_never_pass_the_quota(limited_store: Callable[..., SyncStore]) -> None:
    limit = 3
    for round_, settled in enumerate((1, 0, 2, 1)):
        store = limited_store(config=StoreConfig(max_tasks_per_owner=limit))
        held = {store.create(OWNER, "m").task_id for _ in range(settled)}
        creates = 8
        watchers = 4

        async def program(checked: CheckedStore) -> list[Any]:
            calls: list[Callable[[], Awaitable[Any]]] = [lambda: checked.create(OWNER, "m") for _ in range(creates)]
            calls += [lambda: checked.list(OWNER) for _ in range(watchers)]
            return await run_together(calls, catch=(TaskError,))

        outcomes = store.run(program)
        made = [o for o in outcomes[:creates] if isinstance(o, TaskRecord)]
        refused = [o for o in outcomes[:creates] if not isinstance(o, TaskRecord)]
        what = f"round {round_}: {creates} concurrent creates with {settled} of {limit} slots taken"
        require("TS-6", settled + len(made) <= limit, f"{what} created {len(made)} tasks: the owner now holds more than {limit}")
        for error in refused:
            require("TS-6", isinstance(error, (ResourceExhaustedError, ConcurrentModificationError)),
                    f"{what}: a refused create raised {type(error).__name__}: {error}")
            if isinstance(error, ConcurrentModificationError):
                require("TS-2", error.code == INTERNAL_ERROR,
                        f"{what}: a create that lost the race raised ConcurrentModificationError with code {error.code}; expected -32603")
        for task in made:
            require("TS-6", store.get(task.task_id, OWNER) == task, f"{what}: the created task {task.task_id} does not read back")
        final: set[str] = set()
        cursor = None
        while True:
            page = store.list(OWNER, cursor=cursor, limit=2)
            final.update(t.task_id for t in page.tasks)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        require("TS-16", final == held | {t.task_id for t in made},
                f"{what}: pages of 2 list {len(final)} tasks; the owner holds the {settled} it held and the {len(made)} created, "
                "each readable by get")
        for page in outcomes[creates:]:
            require("TS-6", isinstance(page, TaskPage), f"{what}: a concurrent list raised {page!r}")
            seen = {t.task_id for t in page.tasks}
            require("TS-6", len(seen) <= limit and seen <= final,
                    f"{what}: a listing during the race showed {len(seen)} tasks, {len(seen - final)} of them never created: "
                    "a create in flight must stay invisible until it is confirmed")
        if len(final) < limit:
            require("TS-6", any(isinstance(e, ConcurrentModificationError) for e in refused),
                    f"{what}: only {len(final)} of {limit} slots are taken, yet every refusal was ResourceExhaustedError; "
                    "when settled tasks do not fill the quota, losing the race is ConcurrentModificationError (retryable)")
        for _ in range(limit - len(final)):  # refused creates left nothing behind that holds a slot
            store.create(OWNER, "m")
        refused_create("TS-6", store, OWNER, ResourceExhaustedError, lambda: store.create(OWNER, "m"), f"{what}: a create once the quota is filled")


@covers("TS-20")
def test_concurrent_readers_never_see_a_refused_change(limited_store: Callable[..., SyncStore]) -> None:
    store = limited_store(config=StoreConfig(max_variable_bytes=80))
    for round_ in range(ROUNDS):
        task = store.create(OWNER, "m")
        tid = task.task_id
        calls: list[Callable[[CheckedStore], Awaitable[Any]]] = []
        for n in range(4):
            calls.append(_set_variables(tid, {f"ok{n}": n}))
            calls.append(_set_variables(tid, {f"big{n}": "x" * 90}))
            calls.append(lambda c: c.get(tid, OWNER))
        outcomes = store.run(lambda checked: _release(checked, calls))
        for index, outcome in enumerate(outcomes):
            kind = index % 3
            if kind == 1:
                require("TS-20", isinstance(outcome, VariableSizeExceededError),
                        f"round {round_}: an oversized set_variables answered {outcome!r}; expected VariableSizeExceededError")
            elif kind == 0:
                require("TS-20", isinstance(outcome, (TaskRecord, ConcurrentModificationError)),
                        f"round {round_}: a small set_variables answered {outcome!r}")
            if isinstance(outcome, TaskRecord):
                leaked = [name for name in outcome.variables if name.startswith("big")]
                require("TS-20", not leaked, f"round {round_}: a {'read' if kind == 2 else 'write'} saw the refused variables {leaked}")
        final = store.get(tid, OWNER)
        require("TS-20", not any(name.startswith("big") for name in final.variables), f"refused writes reached the task: {final.variables}")
