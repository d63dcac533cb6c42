"""What the suite's task-store tests share: what a caller can see of a task, refusals that change nothing, intruders' calls.

Shared by the suite and the machines, so each check is written once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from conformance.contract import (
    NotReadyError,
    TaskError,
    TaskNotFoundError,
    TaskRecord,
    TaskStatus,
    canonical_json,
)
from conformance.harness.guard import SyncStore
from conformance.spec import ContractViolation, expect_error, require

#: The owner every single-owner store test acts as.
OWNER = "alice"

E = TypeVar("E", bound=TaskError)


def same_json(a: Any, b: Any) -> bool:
    """Equal as JSON, types included (True is not 1, 1.0 is not 1)."""
    try:
        return canonical_json(a) == canonical_json(b)
    except (TypeError, ValueError):
        return False


def state_of(store: SyncStore, task_id: str, owner: str = OWNER) -> tuple[TaskRecord, Any]:
    """What a caller can see of one task: the task and its result (or the NotReadyError's status)."""
    task = store.get(task_id, owner)
    try:
        result: Any = ("result", store.get_result(task_id, owner))
    except NotReadyError as exc:
        result = ("not ready", exc.status)
    return task, result


def _only_numbers_differ(got: Any, want: Any) -> bool:
    """Whether two JSON values differ only in how their numbers came back: an int as a float, a float
    rounded or an integer past 2**53 made a double (not a different number: that is a lost write)."""
    numbers = (int, float)
    if isinstance(got, numbers) and isinstance(want, numbers) and not isinstance(got, bool) and not isinstance(want, bool):
        try:
            return math.isclose(float(got), float(want), rel_tol=1e-9, abs_tol=1e-300)
        except OverflowError:
            return False
    if isinstance(got, dict) and isinstance(want, dict):
        return got.keys() == want.keys() and all(_only_numbers_differ(got[k], want[k]) for k in got)
    if isinstance(got, list) and isinstance(want, list):
        return len(got) == len(want) and all(_only_numbers_differ(g, w) for g, w in zip(got, want))
    return same_json(got, want)


def require_json(clause: str, got: Any, want: Any, message: str) -> None:
    """``got`` is ``want`` as JSON, types included; a value that came back with other numbers breaks SEC-8.

    Why: a store that rounds floats or turns ``1.0`` into ``1`` fails every check that reads a
    value back; the rule it breaks is that numbers round-trip exactly, not the rule of the
    check that happened to read it first.
    """
    if same_json(got, want):
        return
    if _only_numbers_differ(got, want):
        raise ContractViolation("SEC-8", f"{message}: only its numbers changed ({got!r:.160} for {want!r:.160}); numbers must round-trip exactly")
    raise ContractViolation(clause, message)


def stored_result(store: SyncStore, task_id: str, owner: str = OWNER, clause: str = "TS-13") -> Any:
    """The result a task holds, as ``get`` shows it.

    ``get_result`` of a task that is not terminal may answer the staged result or NotReadyError
    (TS-13: the protocol layer asks only once a task is terminal), so a live task's result is
    read through ``get``, which every store answers alike.
    """
    task = store.get(task_id, owner)
    require(clause, task.has_result, f"task {task_id} holds no result after one was set")
    return task.result


def live_status_other_than(store: SyncStore, task_id: str, owner: str = OWNER) -> TaskStatus:
    """A status a live task may move to that differs from its own: a real transition every store accepts (TS-8)."""
    current = store.get(task_id, owner).status
    return TaskStatus.INPUT_REQUIRED if current is TaskStatus.WORKING else TaskStatus.WORKING


def unchanged(clause: str, store: SyncStore, task_id: str, before: tuple[TaskRecord, Any], what: str, owner: str = OWNER) -> None:
    after = state_of(store, task_id, owner)
    require(clause, after == before, f"{what} was refused, yet the task changed: {before[0]!r} became {after[0]!r}")


def refused(
    clause: str, store: SyncStore, task_id: str, error_type: type[E], call: Callable[[], Any], what: str, owner: str = OWNER
) -> E:
    """``call`` raises ``error_type`` and the task reads exactly as before."""
    before = state_of(store, task_id, owner)
    error = expect_error(clause, error_type, call, what)
    unchanged(clause, store, task_id, before, what, owner)
    return error


def refused_create(
    clause: str, store: SyncStore, owner: str, error_type: type[E], call: Callable[[], Any], what: str
) -> E:
    """``call`` (a create by ``owner``) raises ``error_type`` and the owner's tasks are exactly as before:
    a refused create writes nothing (TS-20), not even a task it then forgets."""
    before = sorted(listed_ids(store, owner, clause))
    error = expect_error(clause, error_type, call, what)
    after = sorted(listed_ids(store, owner, clause))
    require(clause, after == before, f"{what} was refused, yet it left {len(set(after) - set(before))} task(s) behind")
    return error


def calls_as(store: SyncStore, task_id: str, owner: str) -> list[tuple[str, Callable[[], Any]]]:
    """Every per-task method, called by ``owner`` with arguments that would change the task if it were theirs."""
    return [
        ("get", lambda: store.get(task_id, owner)),
        ("update_status", lambda: store.update_status(task_id, owner, TaskStatus.COMPLETED, "hijacked")),
        ("set_variables", lambda: store.set_variables(task_id, owner, {"a": 1})),
        ("set_result", lambda: store.set_result(task_id, owner, 1)),
        ("get_result", lambda: store.get_result(task_id, owner)),
        ("complete_with_result", lambda: store.complete_with_result(task_id, owner, TaskStatus.FAILED, None, None)),
        ("cancel", lambda: store.cancel(task_id, owner)),
    ]


def raised(call: Callable[[], Any]) -> BaseException | Any:
    """The TaskError a call raised, or what it returned."""
    try:
        return call()
    except TaskError as exc:
        return exc


def listed_ids(store: SyncStore, owner: str, clause: str = "TS-16") -> list[str]:
    """The ids of every task the owner lists, page by page."""
    ids: list[str] = []
    cursor = None
    for _ in range(1000):
        page = store.list(owner, cursor=cursor, limit=3)
        ids.extend(t.task_id for t in page.tasks)
        if page.next_cursor is None:
            return ids
        cursor = page.next_cursor
    require(clause, False, f"the listing of {owner!r} never ended")
    return ids


def indistinguishable(clause: str, theirs: object, absent: object, task_id: str, missing_id: str, what: str) -> None:
    """An intruder's answer about a real task is exactly the answer about a never-issued id (TS-7, SEC-3).

    ``theirs`` and ``absent`` are what ``raised`` returned for the task and for ``missing_id``.
    """
    require(clause, isinstance(theirs, TaskNotFoundError) and type(theirs) is type(absent),
            f"{what} answered {type(theirs).__name__}: {theirs}; a never-issued id answers {type(absent).__name__}: {absent}. "
            "Another owner's task must raise exactly what a missing task raises")
    assert isinstance(theirs, TaskError) and isinstance(absent, TaskError)
    require(clause, theirs.code == absent.code and str(theirs).replace(task_id, "<id>") == str(absent).replace(missing_id, "<id>"),
            f"{what}: message {str(theirs)!r} (code {theirs.code}) differs from a missing task's {str(absent)!r} "
            f"(code {absent.code}) beyond the id quoted")
    require(clause, (theirs.__cause__, theirs.__context__, absent.__cause__, absent.__context__) == (None, None, None, None),
            f"{what}: the error carries a __cause__ or __context__ ({theirs.__cause__!r}, {theirs.__context__!r}), "
            "which can betray that the task exists")


#: The clauses a call that does not answer in time breaks (the harness names the target's).
TIMEOUT_CLAUSES = ("BK-19", "TS-23")


@contextmanager
def stray_errors_break(clause: str, *kinds: type[BaseException], hangs: bool = False) -> Iterator[None]:
    """Report a stray exception of ``kinds`` from the target under ``clause``, whose text forbids it.

    The harness reports any exception a store should not raise under TS-2 (or TS-11 for a
    RecursionError), and a call that does not answer in time under the timeout clause; where
    a SEC clause names that exception (or, with ``hangs``, a hang) as the attack's symptom,
    the failure is that clause's.
    """
    try:
        yield
    except ContractViolation as exc:
        if exc.clause != clause and (isinstance(exc.__cause__, kinds) or (hangs and exc.clause in TIMEOUT_CLAUSES)):
            raise ContractViolation(clause, exc.detail) from exc.__cause__
        raise
