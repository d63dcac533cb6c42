"""The stateful machine for TaskStore: several owners, every operation, the clock, checked at every step.

Tasks are picked by their position in creation order, never by id value (ids are random
uuid4s), so an example replays and shrinks. After every step each owner's whole listing
must be exactly what the model holds for that owner, newest first: no owner ever sees
another's task, and no task is skipped or repeated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any, cast

from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule

from conformance.checks.task_store import indistinguishable
from conformance.contract.record import canonical_json
from conformance.contract.task import TaskPage, TaskRecord, TaskStatus
from conformance.contract.task_errors import TaskError, TaskNotFoundError
from conformance.harness.answers import refusal_clause_named
from conformance.harness.clock import FakeClock
from conformance.machines.bound import HarnessMachine
from conformance.machines.judge import judge
from conformance.models.expectation import Expectation
from conformance.models.tasks import (
    Cancel,
    CleanupExpired,
    CompleteWithResult,
    Create,
    ForgedCursor,
    Get,
    GetResult,
    IssuedCursor,
    ListTasks,
    Outcome,
    PageView,
    Raised,
    Returned,
    SetResult,
    SetVariables,
    TaskModel,
    TaskOperation,
    TaskView,
    UpdateStatus,
    cursor_after,
    observe,
)
from conformance.spec import ContractViolation
from conformance.strategies.tasks import (
    NEVER_ISSUED,
    OWNERS,
    SMALL_LIMITS,
    request_methods,
    small_values,
    status_messages,
    statuses,
    ttls,
    variable_maps,
)

#: Large enough that one page holds an owner's whole quota.
WHOLE_LISTING = 1_000

#: Limits for a backend on the wall clock: no task can expire while a run lasts.
LONG_LIVED = replace(SMALL_LIMITS, default_ttl_ms=3_600_000, max_ttl_ms=7_200_000)
long_ttls = st.one_of(st.none(), st.sampled_from([3_600_000, 7_200_000, 7_200_001, 0]))


def _merge_reached_the_record(op: SetVariables, outcome: Outcome, allowed: tuple[Any, ...]) -> bool:
    """Whether a merge the contract has succeed went wrong because its data reached the record's own fields (SEC-7):
    it names those fields, it changed something of the task but its variables, or a variable named like a
    field did not stay a variable."""
    if isinstance(op.variables, dict) and set(op.variables) & RECORD_FIELDS:
        return True
    if not (isinstance(outcome, Returned) and isinstance(outcome.value, TaskView)):
        return False
    got = outcome.value
    want = [a.value for a in allowed if isinstance(a, Returned) and isinstance(a.value, TaskView)]
    if want and all(replace(got, variables=w.variables, updated_ms=w.updated_ms) != w for w in want):
        return True
    held = json.loads(got.variables)
    for w in want:
        expected = json.loads(w.variables)
        if {k for k in set(held) | set(expected) if held.get(k, ...) != expected.get(k, ...)} & RECORD_FIELDS:
            return True
    return False


def _text_of(nbytes: int, wide: str) -> str:
    """Exactly ``nbytes`` UTF-8 bytes: as many ``wide`` characters as fit, then ASCII."""
    width = len(wide.encode())
    return wide * (nbytes // width) + "x" * (nbytes % width)


def _filled(base: dict[str, Any], target: int, longest: int, wide: str) -> dict[str, str] | None:
    """New variables, no string over ``longest`` bytes, that bring ``base`` to exactly ``target`` bytes of
    canonical JSON once merged (None if ``base`` leaves no room for even one)."""
    added: dict[str, str] = {}
    for n in range(target):
        name = f"w{n}"
        room = target - len(canonical_json({**base, **added, name: ""}))
        if room < 0:
            return None
        if room <= longest:
            added[name] = _text_of(room, wide)
            break
        added[name] = _text_of(longest, wide)
    return added if len(canonical_json({**base, **added})) == target else None


#: The names of a task record's own fields (SEC-7): a variable named so must stay a variable.
RECORD_FIELDS = frozenset({"ownerId", "expiresAt", "task", "taskId", "status", "version", "pending", "format", "result"})


class TaskStoreMachine(HarnessMachine):
    """Drives one fresh task store per example against the TaskStore model. Build with ``for_harness``."""


    def __init__(self) -> None:
        super().__init__()
        self.clock = self.harness.new_clock()
        store_clock = self.harness.store_clock(self.clock)
        if store_clock is None:
            raise ValueError("TaskStoreMachine needs a store that takes the kit's clock")
        self.store_clock: FakeClock = store_clock
        self.store = self.harness.open_store(self.store_clock, config=SMALL_LIMITS if self.clock else LONG_LIVED)
        config = self.harness.store_config(self.store)
        self.model = TaskModel(config, expired_records=self.harness.capabilities.expired_records)
        self.state = self.model.initial(self.now())
        self.created: list[str] = []
        self.tokens: list[tuple[str, IssuedCursor]] = []

    def teardown(self) -> None:
        self.harness.release_store(self.store)


    # ------------------------------------------------------------ plumbing

    def now(self) -> float:
        return self.store_clock()

    def ttl_choices(self) -> st.SearchStrategy[int | None]:
        return ttls if self.clock is not None else long_ttls

    def judge(self, op: TaskOperation, result: object = None, error: BaseException | None = None) -> None:
        self.state = judge(self.model, self.state, op, observe(op, result, error), self.refine)

    @staticmethod
    def refine(op: TaskOperation, expectation: Expectation, outcome: Outcome) -> str:
        """The rule a mismatch breaks, where it is more specific than the expectation's clause.

        A listing that shows another owner's task is an isolation failure, whatever else is wrong
        with the page; a refusal where the contract has the call succeed breaks the rule of that
        refusal (a quota refused too soon is TS-6's); a merge that changed anything of the task
        but its variables let data reach the record's own fields (SEC-7).
        """
        if (
            isinstance(op, ListTasks)
            and isinstance(outcome, Returned)
            and isinstance(outcome.value, PageView)
            and any(task.owner_id != op.owner_id for task in outcome.value.tasks)
        ):
            return "TS-7"
        allowed = expectation.allowed
        succeeds = bool(allowed) and all(isinstance(a, Returned) for a in allowed)
        if isinstance(op, SetVariables) and succeeds and _merge_reached_the_record(op, outcome, allowed):
            return "SEC-7"
        if isinstance(outcome, Raised) and succeeds:
            return refusal_clause_named(outcome.error, op.name()) or expectation.clause
        return expectation.clause

    def perform(self, op: TaskOperation, call: Callable[[], Any]) -> Any:
        self.state = self.state.at(self.now())
        try:
            result = call()
        except TaskError as error:
            refusal = error
        else:
            self.judge(op, result)
            return result
        # Outside the handler, so the probes' own errors carry no __context__ of this one.
        self.judge(op, error=refusal)
        self.left_alone(op)
        self.answered_as_missing(op, refusal)
        return None

    def answered_as_missing(self, op: TaskOperation, error: TaskError) -> None:
        """Another owner's task answers exactly as a never-issued id does: class, code, message, no cause (TS-7, SEC-3)."""
        task = self.state.tasks.get(getattr(op, "task_id", None))  # type: ignore[arg-type]
        if task is None or task.owner_id == op.owner_id or not isinstance(error, TaskNotFoundError):  # type: ignore[union-attr]
            return
        missing = replace(cast(Any, op), task_id=NEVER_ISSUED)
        try:
            missing.apply(self.store)
        except TaskError as absent:
            indistinguishable("TS-7", error, absent, task.task_id, NEVER_ISSUED, f"{op.describe()} by another owner")
            return
        raise ContractViolation("TS-7", f"{missing.describe()} of a never-issued id returned; it must raise TaskNotFoundError")

    def left_alone(self, op: TaskOperation) -> None:
        """After a refusal the task reads exactly as the model holds it: a refused call writes nothing (TS-20).

        Checked at once, so a refusal that wrote is named as such, not by whatever later read trips over it.
        """
        task = self.state.tasks.get(getattr(op, "task_id", None))  # type: ignore[arg-type]
        if task is not None:
            self.unchanged_after(op, Get(task.task_id, task.owner_id),
                                 lambda: self.store.get(task.task_id, task.owner_id))

    def unchanged_after(self, refused: TaskOperation, read: TaskOperation, call: Callable[[], Any]) -> None:
        """``read`` answers as the model holds the store, or ``refused`` wrote after all (TS-20)."""
        expectation = self.model.expect(self.state, read)
        try:
            outcome = observe(read, call())
        except TaskError as error:
            outcome = observe(read, error=error)
        if not expectation.admits(outcome):
            raise ContractViolation("TS-20", f"{refused.describe()} was refused, yet afterwards {read.describe()} "
                                             f"{outcome.describe()}; the contract requires it {expectation.describe()}")

    def pick(self, data: st.DataObject) -> tuple[str, str]:
        """Mostly a known task with its own owner; sometimes another owner, a never-issued or a malformed id."""
        known = [task_id for task_id in self.created if task_id in self.state.tasks]
        index = data.draw(st.integers(0, len(known) + 1), label="task") if known else len(known)
        task_id = known[index] if index < len(known) else (NEVER_ISSUED if index == len(known) else "not-an-id")
        owner = data.draw(st.sampled_from(OWNERS), label="owner")
        if index < len(known) and data.draw(st.integers(0, 4), label="own task?"):
            owner = self.state.tasks[task_id].owner_id
        return task_id, owner

    def list_page(self, owner: str, token: str | None, ref: IssuedCursor | ForgedCursor | None, limit: int | None) -> TaskPage | None:
        op = ListTasks(owner, ref, limit)
        page = self.perform(op, lambda: self.store.list(owner, cursor=token, limit=limit))
        if isinstance(page, TaskPage) and page.next_cursor is not None:
            seen = observe(op, page)
            assert isinstance(seen, Returned) and isinstance(seen.value, PageView)  # a TaskPage is observed as one
            self.tokens.append((page.next_cursor, cursor_after(owner, seen.value)))
            return page
        return None

    # ------------------------------------------------------------ rules

    @rule(owner=st.sampled_from(OWNERS), method=request_methods, data=st.data())
    def create(self, owner: str, method: str, data: st.DataObject) -> None:
        self.create_task(owner, method, data.draw(self.ttl_choices(), label="ttl"))

    def create_task(self, owner: str, method: str, ttl: Any) -> str | None:
        """Create a task, judged; return its id if the model now holds it."""
        self.state = self.state.at(self.now())
        try:
            created: Any = self.store.create(owner, method, ttl=ttl)
            error: TaskError | None = None
        except TaskError as exc:
            created, error = None, exc
        op = Create(owner, method, ttl, created.task_id if isinstance(created, TaskRecord) else None)
        if op.assigned_id is not None:
            self.created.append(op.assigned_id)
        self.judge(op, created, error)
        if error is not None:
            self.nothing_created(op)
        return op.assigned_id if op.assigned_id in self.state.tasks else None

    def nothing_created(self, op: Create) -> None:
        """A refused create leaves the owner's tasks as they were: not even a task it then forgets (TS-20)."""
        if not self.model.security.refuses(op.owner_id):
            self.unchanged_after(op, ListTasks(op.owner_id, None, WHOLE_LISTING),
                                 lambda: self.store.list(op.owner_id, cursor=None, limit=WHOLE_LISTING))

    @rule(data=st.data())
    def get(self, data: st.DataObject) -> None:
        task_id, owner = self.pick(data)
        self.perform(Get(task_id, owner), lambda: self.store.get(task_id, owner))

    @rule(data=st.data())
    def get_result(self, data: st.DataObject) -> None:
        task_id, owner = self.pick(data)
        self.perform(GetResult(task_id, owner), lambda: self.store.get_result(task_id, owner))

    @rule(data=st.data(), status=statuses, message=status_messages)
    def update_status(self, data: st.DataObject, status: Any, message: str | None) -> None:
        task_id, owner = self.pick(data)
        self.perform(UpdateStatus(task_id, owner, status, message), lambda: self.store.update_status(task_id, owner, status, message))

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        task_id, owner = self.pick(data)
        self.perform(Cancel(task_id, owner), lambda: self.store.cancel(task_id, owner))

    @rule(data=st.data(), variables=variable_maps)
    def set_variables(self, data: st.DataObject, variables: dict[str, Any]) -> None:
        task_id, owner = self.pick(data)
        self.perform(SetVariables(task_id, owner, variables), lambda: self.store.set_variables(task_id, owner, variables))

    @rule(data=st.data(), result=small_values)
    def set_result(self, data: st.DataObject, result: Any) -> None:
        task_id, owner = self.pick(data)
        self.perform(SetResult(task_id, owner, result), lambda: self.store.set_result(task_id, owner, result))

    @rule(data=st.data(), status=statuses, message=status_messages, result=small_values)
    def complete_with_result(self, data: st.DataObject, status: Any, message: str | None, result: Any) -> None:
        task_id, owner = self.pick(data)
        self.perform(
            CompleteWithResult(task_id, owner, status, message, result),
            lambda: self.store.complete_with_result(task_id, owner, status, message, result),
        )

    @rule(data=st.data(), limit=st.sampled_from([None, 1, 1, 3]))
    def list_once(self, data: st.DataObject, limit: int | None) -> None:
        """A first page, a cursor issued earlier (to its owner, or replayed by another), or a forged one."""
        owner = data.draw(st.sampled_from(OWNERS), label="owner")
        # How many cursors were issued depends on the store's random task ids (they break ties in
        # createdAt, which decide whether a page ends early), so no draw's alternatives may depend on
        # it: an example would then draw differently when replayed (Hypothesis' FlakyStrategyDefinition).
        how = data.draw(st.sampled_from(["first", "issued", "issued", "forged"]), label="cursor")
        token: str | None = None
        ref: IssuedCursor | ForgedCursor | None = None
        if how == "issued":
            issued = data.draw(st.integers(0, 255), label="issued cursor (index)")
            own = data.draw(st.booleans(), label="its own owner?")
            if self.tokens:  # none issued yet: a first page
                token, ref = self.tokens[issued % len(self.tokens)]
                owner = ref.owner_id if own else owner
        elif how == "forged":
            token = data.draw(st.sampled_from(["forged", "", "e30", "eyJ9"]), label="forged cursor")
            ref = ForgedCursor(token)
        self.list_page(owner, token, ref, limit)

    @rule(owner=st.sampled_from(OWNERS[:-1]), limit=st.sampled_from([1, 2]))
    def walk_pages(self, owner: str, limit: int) -> None:
        """Page through a whole listing: each page judged, cursors continuing exactly where pages end."""
        page = self.list_page(owner, None, None, limit)
        while page is not None:
            token, ref = self.tokens[-1]
            page = self.list_page(owner, token, ref, limit)

    @rule()
    def cleanup_expired(self) -> None:
        self.perform(CleanupExpired(), self.store.cleanup_expired)

    # ------------------------------------------------------------ rules that build tasks up and meet each boundary
    #
    # The rules above draw ids, owners, statuses and values freely, so most of their calls are
    # refusals of one kind or another. These act as an owner would, on the tasks the model holds,
    # and land on the boundaries the clauses draw: the TTL and the quota, the size and depth
    # limits, ties in creation time, and the finished task that must never change again.

    def tasks_in(self, *, finished: bool) -> list[str]:
        """The model's unexpired tasks, finished or not, in creation order (never by id, which is random:
        examples must replay)."""
        now = self.now()
        return [t for t in dict.fromkeys(self.created) if t in self.state.tasks
                and self.state.tasks[t].status.is_terminal is finished and not self.state.tasks[t].expired(now)]

    def live_tasks(self) -> list[str]:
        return self.tasks_in(finished=False)

    def finished_tasks(self) -> list[str]:
        return self.tasks_in(finished=True)

    @rule(owner=st.sampled_from(OWNERS[:-1]), data=st.data())
    def create_at_a_boundary(self, owner: str, data: st.DataObject) -> None:
        """A TTL at or just past the maximum, or the smallest; or several creates in one millisecond (ties in createdAt)."""
        config = self.model.config
        top = config.max_ttl_ms
        # A TTL of 1 ms runs out at once on a backend judging expiry by the wall clock: only on the kit's clock.
        choices: list[int | None] = [None, 0] + ([1] if self.clock is not None else []) + ([top, top + 1] if top is not None else [])
        ttl = data.draw(st.sampled_from(choices), label="ttl")
        for _ in range(data.draw(st.integers(1, 3), label="creates")):
            self.create_task(owner, "t/call", ttl)

    @rule(owner=st.sampled_from(OWNERS[:-1]))
    def fill_the_quota(self, owner: str) -> None:
        """Create until the model says the owner's quota is full, then once more: refused, writing nothing (TS-6)."""
        for _ in range(self.model.config.max_tasks_per_owner + 1):
            self.create_task(owner, "t/call", None)

    @precondition(lambda self: bool(self.live_tasks()))
    @rule(data=st.data(), deleting=st.booleans(), wide=st.sampled_from(["x", "é", "€", "🔑"]), over=st.sampled_from([-1, 0, 1]))
    def set_variables_at_the_size_limit(self, data: st.DataObject, deleting: bool, wide: str, over: int) -> None:
        """A merge whose canonical JSON lands one byte under, on or over the limit, counting what the task holds (TS-12)."""
        task = self.state.tasks[data.draw(st.sampled_from(self.live_tasks()), label="live task")]
        limit, longest = self.model.config.max_variable_bytes, self.model.config.max_string_bytes
        held = json.loads(task.variables)
        deletions: dict[str, Any] = dict.fromkeys(held) if deleting else {}
        added = _filled({} if deleting else held, limit + over, longest, wide)
        if added is None:
            return
        incoming = {**deletions, **added}
        self.perform(SetVariables(task.task_id, task.owner_id, incoming),
                     lambda: self.store.set_variables(task.task_id, task.owner_id, incoming))

    @precondition(lambda self: bool(self.live_tasks()))
    @rule(data=st.data(), where=st.sampled_from(["variable", "result", "completion"]), extra=st.sampled_from([0, 1, 1, 3000]),
          kind=st.sampled_from([list, dict]))
    def set_a_value_at_the_depth_limit(self, data: st.DataObject, where: str, extra: int, kind: type) -> None:
        """A value exactly max_depth deep, one level deeper, or a bomb thousands of levels deep (TS-11, SEC-5)."""
        task = self.state.tasks[data.draw(st.sampled_from(self.live_tasks()), label="live task")]
        value: Any = 1
        for _ in range(self.model.config.max_depth + extra):
            value = [value] if kind is list else {"k": value}
        tid, owner = task.task_id, task.owner_id
        if where == "variable":
            self.perform(SetVariables(tid, owner, {"v": value}), lambda: self.store.set_variables(tid, owner, {"v": value}))
        elif where == "result":
            self.perform(SetResult(tid, owner, value), lambda: self.store.set_result(tid, owner, value))
        else:
            done = TaskStatus.COMPLETED
            self.perform(CompleteWithResult(tid, owner, done, None, value),
                         lambda: self.store.complete_with_result(tid, owner, done, None, value))

    @precondition(lambda self: bool(self.finished_tasks()))
    @rule(data=st.data(), step=st.sampled_from(["working", "input_required", "variables", "result", "complete", "cancel", "read"]))
    def try_to_change_a_finished_task(self, data: st.DataObject, step: str) -> None:
        """A finished task never changes again: every write by its own owner is refused and writes nothing (TS-8 to TS-14)."""
        task = self.state.tasks[data.draw(st.sampled_from(self.finished_tasks()), label="finished task")]
        self.poke_a_finished_task(task.task_id, task.owner_id, step)

    @rule(owner=st.sampled_from(OWNERS[:-1]), data=st.data(),
          ending=st.sampled_from(["completed", "failed", "cancel", "update_status"]),
          result=st.one_of(st.none(), st.sampled_from([1 / 3, [0.1, -0.0], {"x": "é"}]), small_values),
          afterwards=st.sampled_from(["working", "input_required", "variables", "result", "complete", "cancel", "read"]))
    def a_task_from_start_to_finish(self, owner: str, data: st.DataObject, ending: str, result: Any, afterwards: str) -> None:
        """One task's whole life, as its owner lives it: created, worked on, finished, then read and poked at.

        Why: most rules act on one call at a time, so a bug that needs a task with a history (a
        result set, a status changed, then finished) is met only by luck; this rule gives every
        step a task that has one.
        """
        tid = self.create_task(owner, "t/call", None)
        if tid is None:
            return
        variables = {"f": 1 / 3, "n": data.draw(st.sampled_from([None, 2**53 + 1, "é"]), label="n"),
                     data.draw(st.sampled_from(["task", "status", "format", "result"]), label="a record's field name"): "v"}
        self.perform(SetVariables(tid, owner, variables), lambda: self.store.set_variables(tid, owner, variables))
        for status in data.draw(st.lists(st.sampled_from([TaskStatus.INPUT_REQUIRED, TaskStatus.WORKING]), max_size=2), label="statuses"):
            if status is not self.state.tasks[tid].status:
                self.perform(UpdateStatus(tid, owner, status, "step"), lambda: self.store.update_status(tid, owner, status, "step"))
        if data.draw(st.booleans(), label="stage a result"):
            self.perform(SetResult(tid, owner, result), lambda: self.store.set_result(tid, owner, result))
        final = TaskStatus.FAILED if ending == "failed" else TaskStatus.COMPLETED
        if ending == "cancel":
            self.perform(Cancel(tid, owner), lambda: self.store.cancel(tid, owner))
        elif ending == "update_status":
            self.perform(UpdateStatus(tid, owner, final, None), lambda: self.store.update_status(tid, owner, final, None))
        else:
            self.perform(CompleteWithResult(tid, owner, final, "done", result),
                         lambda: self.store.complete_with_result(tid, owner, final, "done", result))
        self.poke_a_finished_task(tid, owner, afterwards)

    def poke_a_finished_task(self, tid: str, owner: str, step: str) -> None:
        """Read a finished task's result, or try to change it: every write is refused and writes nothing."""
        if step in ("working", "input_required"):
            status = TaskStatus(step)
            self.perform(UpdateStatus(tid, owner, status, None), lambda: self.store.update_status(tid, owner, status, None))
        elif step == "variables":
            self.perform(SetVariables(tid, owner, {"x": 1}), lambda: self.store.set_variables(tid, owner, {"x": 1}))
        elif step == "result":
            self.perform(SetResult(tid, owner, 2), lambda: self.store.set_result(tid, owner, 2))
        elif step == "complete":
            failed = TaskStatus.FAILED
            self.perform(CompleteWithResult(tid, owner, failed, None, 3), lambda: self.store.complete_with_result(tid, owner, failed, None, 3))
        elif step == "cancel":
            self.perform(Cancel(tid, owner), lambda: self.store.cancel(tid, owner))
        else:
            self.perform(GetResult(tid, owner), lambda: self.store.get_result(tid, owner))

    @precondition(lambda self: self.clock is not None)
    @rule(owner=st.sampled_from(OWNERS[:-2]), intruder=st.sampled_from(OWNERS[:-1]), past_by_millis=st.sampled_from([0, 1]))
    def an_expired_task_asked_by_another_owner(self, owner: str, intruder: str, past_by_millis: int) -> None:
        """A task at or just past its expiry, asked about by its owner and by another: the intruder learns nothing (TS-15, SEC-3)."""
        tid = self.create_task(owner, "t/call", 1)
        if tid is None:
            return
        self.kit_clock().advance((1 + past_by_millis) / 1000)
        for who in (owner, intruder):
            self.perform(Get(tid, who), lambda: self.store.get(tid, who))

    @precondition(lambda self: self.clock is not None)
    @rule(millis=st.integers(min_value=0, max_value=700))
    def advance_clock(self, millis: int) -> None:
        self.kit_clock().advance(millis / 1000)

    @precondition(lambda self: self.clock is not None and any(t.ttl is not None for t in self.state.tasks.values()))
    @rule(data=st.data(), past_by_millis=st.sampled_from([0, 0, 1]))
    def advance_clock_to_an_expiry(self, data: st.DataObject, past_by_millis: int) -> None:
        """Land exactly on a task's expiry instant, or one millisecond past it (TS-15's boundary is exclusive)."""
        now_ms = round(self.kit_clock()() * 1000)
        deadlines = sorted({t.created_ms + t.ttl for t in self.state.tasks.values() if t.ttl is not None and t.created_ms + t.ttl >= now_ms})
        if deadlines:
            self.kit_clock().set((data.draw(st.sampled_from(deadlines), label="expiry") + past_by_millis) / 1000)

    @precondition(lambda self: bool(self.live_tasks()))
    @rule(data=st.data(), step=st.sampled_from(["variables", "result", "status", "status", "complete", "cancel"]),
          result=small_values)
    def work_on_a_task(self, data: st.DataObject, step: str, result: Any) -> None:
        """Move one of the model's live tasks on, as its owner and by a call the contract accepts.

        Why: the other rules draw ids, owners and statuses freely, so most of their calls are refusals;
        this one builds tasks up (variables, a staged result, status changes, completion), so the
        rules that only bite on a task with history get one to bite on.
        """
        task = self.state.tasks[data.draw(st.sampled_from(self.live_tasks()), label="live task")]
        tid, owner = task.task_id, task.owner_id
        if step == "variables":
            variables = {data.draw(st.sampled_from(["x", "y"]), label="name"): data.draw(st.sampled_from([None, 1, "é", [True]]), label="value")}
            self.perform(SetVariables(tid, owner, variables), lambda: self.store.set_variables(tid, owner, variables))
        elif step == "result":
            self.perform(SetResult(tid, owner, result), lambda: self.store.set_result(tid, owner, result))
        elif step == "status":
            status = TaskStatus.INPUT_REQUIRED if task.status is TaskStatus.WORKING else TaskStatus.WORKING
            self.perform(UpdateStatus(tid, owner, status, "ok"), lambda: self.store.update_status(tid, owner, status, "ok"))
        elif step == "complete":
            final = data.draw(st.sampled_from([TaskStatus.COMPLETED, TaskStatus.FAILED]), label="final status")
            self.perform(CompleteWithResult(tid, owner, final, None, result),
                         lambda: self.store.complete_with_result(tid, owner, final, None, result))
        else:
            self.perform(Cancel(tid, owner), lambda: self.store.cancel(tid, owner))

    # ------------------------------------------------------------ invariants

    @invariant()
    def finished_results_answer(self) -> None:
        """Every finished task that holds a result answers get_result with it (TS-13): what tasks/result serves."""
        self.state = self.state.at(self.now())
        for task in list(self.state.tasks.values()):
            if task.status.is_terminal and task.result is not None and not task.expired(self.state.now):
                read = GetResult(task.task_id, task.owner_id)
                self.perform(read, lambda: self.store.get_result(task.task_id, task.owner_id))

    @invariant()
    def each_owner_sees_exactly_their_tasks(self) -> None:
        """Owners' whole listings are the model's, newest first: isolation, order and completeness at once.

        Two owners a step, in turn, so every owner is listed every few steps: listing all seven
        after every step made this invariant most of the machine's calls into an engine.
        """
        self.state = self.state.at(self.now())
        listed = OWNERS[:-1]  # "" is anonymous: refused, checked by the rules
        self.turn = getattr(self, "turn", -2) + 2
        for owner in (listed[self.turn % len(listed)], listed[(self.turn + 1) % len(listed)]):
            op = ListTasks(owner, None, WHOLE_LISTING)
            try:
                self.judge(op, self.store.list(owner, cursor=None, limit=WHOLE_LISTING))
            except TaskError as error:
                self.judge(op, error=error)
