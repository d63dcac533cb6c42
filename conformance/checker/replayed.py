"""Judging a replayed concurrent run: does its history, whatever calls the race met this time, break the contract?

A reproduction script replays a failing run's calls (``conformance.report.replay``). Where the
target interleaves them itself (threads, a server, another process), the race rarely meets
the same calls twice, so matching every answer would call a present bug fixed. Any history
the checker proves not linearizable is the bug again, by whichever calls; so a script asks
this module, the kit's public checker, about each concurrent replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from conformance.checker.history import NEVER, UNKNOWN, Entry, History
from conformance.checker.linearizability import check
from conformance.contract.capabilities import ExpiredRecords
from conformance.contract.store import StoreConfig
from conformance.contract.task import TaskRecord
from conformance.contract.task_errors import ConcurrentModificationError
from conformance.models import kv, tasks
from conformance.models.operation import by_method

#: The model operation of each contract method (their fields follow the method's parameters).
BACKEND_OPERATIONS = by_method(kv.KVOperation)
STORE_OPERATIONS = by_method(tasks.TaskOperation)
#: Seconds the search may take per replay before it gives up (an undecided history is no proof).
BUDGET = 10.0


@dataclass(frozen=True)
class ReplayedCall:
    """One call as replayed: ``start`` and ``end`` on one logical clock; ``lost`` if no answer came in time."""

    method: str
    args: tuple[Any, ...]
    start: int
    end: int
    result: Any = None
    error: BaseException | None = None
    lost: bool = False
    #: The injected clock's time at the call (POSIX seconds), if the target takes the clock.
    now: float | None = None


def violation(contract: str, calls: Sequence[ReplayedCall], *, now: float, expired_records: str,
              config: StoreConfig | None = None) -> str | None:
    """The contract's complaint about the replayed history (``[CC-n] ...``), or None if it is linearizable, undecided or
    holds a call the model cannot state (a store listing from a cursor).

    Calls made before the clock last moved are a sequential setup: they are judged one by one,
    and the model's state moves with the clock; the calls from then on are checked as a history.
    """
    stated = [_operation(contract, call) for call in calls]
    made = [m for m in stated if m is not None]
    if len(made) < len(stated):
        return None
    mode = ExpiredRecords(expired_records)
    model: Any = kv.KVModel(mode) if contract == "backend" else tasks.TaskModel(config, expired_records=mode)
    times = [call.now if call.now is not None else now for call in calls]
    last = times[-1] if times else now
    split = next((i for i, t in enumerate(times) if t == last), 0)
    state = model.initial(times[0] if times else now)
    for index in range(split):
        if calls[index].lost or (index + 1 < len(calls) and calls[index].end > calls[index + 1].start):
            return None  # the setup overlapped itself: not something to judge call by call
        op, outcome = made[index]
        state = state.at(times[index])
        expectation = model.expect(state, op)
        if not expectation.admits(outcome):
            return f"[{expectation.clause}] {op.describe()} {outcome.describe()}; the contract requires it {expectation.describe()}"
        state = expectation.then(outcome)
    state = state.at(last)
    entries = [Entry(client, op, call.start, NEVER if call.lost else call.end, outcome)
               for client, (call, (op, outcome)) in enumerate(zip(calls[split:], made[split:]), start=1)]
    history = History(entries)
    if contract == "backend":
        verdict = check(history, model, initial=state, budget=BUDGET)
    else:
        refused = tasks.Raised(ConcurrentModificationError.__name__)  # TS-18: a write may lose a race, changing nothing
        verdict = check(history.where(lambda e: e.outcome != refused), model, initial=state, budget=BUDGET,
                        partition=None, cheap=False)
    if verdict.ok or verdict.status != "violation":
        return None
    return f"[{verdict.clause}] {verdict.explanation}"


def _operation(contract: str, call: ReplayedCall) -> tuple[Any, Any] | None:
    kinds = BACKEND_OPERATIONS if contract == "backend" else STORE_OPERATIONS
    kind = kinds.get(call.method)
    if kind is None or (kind is tasks.ListTasks and len(call.args) > 1 and call.args[1] is not None):
        return None
    try:
        op: Any = kind(*call.args)
    except TypeError:  # arguments the contract does not take: nothing the model can judge
        return None
    if call.lost:
        return op, UNKNOWN
    if contract == "backend":
        return op, kv.observe(call.result, call.error)
    if isinstance(op, tasks.Create) and isinstance(call.result, TaskRecord):
        op = replace(op, assigned_id=call.result.task_id)
    return op, tasks.observe(op, call.result, call.error)
