"""The stateful machine for TaskStore: several owners, every operation, the clock, checked at every step.

Tasks are picked by their position in creation order, never by id value (ids are random
uuid4s), so an example replays and shrinks. After every step each owner's whole listing
must be exactly what the model holds for that owner, newest first: no owner ever sees
another's task, and no task is skipped or repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from conformance.contract.task import TaskPage, TaskRecord
from conformance.contract.task_errors import TaskError
from conformance.harness.harness import Harness
from conformance.models.tasks import (
    Cancel,
    CleanupExpired,
    CompleteWithResult,
    Create,
    Expectation,
    ForgedCursor,
    Get,
    GetResult,
    IssuedCursor,
    ListTasks,
    Outcome,
    PageView,
    Returned,
    SetResult,
    SetVariables,
    TaskModel,
    TaskOperation,
    UpdateStatus,
    cursor_after,
    observe,
)
from conformance.machines.judge import judge
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


class TaskStoreMachine(RuleBasedStateMachine):
    """Drives one fresh task store per example against the TaskStore model. Build with ``for_harness``."""

    harness: Harness

    def __init__(self) -> None:
        super().__init__()
        self.clock = self.harness.new_clock()
        self.store_clock = self.harness.store_clock(self.clock)
        if self.store_clock is None:
            raise ValueError("TaskStoreMachine needs a store that takes the kit's clock")
        self.store = self.harness.open_store(self.store_clock, config=SMALL_LIMITS if self.clock else LONG_LIVED)
        config = self.harness.store_config(self.store)
        self.model = TaskModel(config, expired_records=self.harness.capabilities.expired_records)
        self.state = self.model.initial(self.now())
        self.created: list[str] = []
        self.tokens: list[tuple[str, IssuedCursor]] = []

    def teardown(self) -> None:
        self.harness.release_store(self.store)

    @classmethod
    def for_harness(cls, harness: Harness) -> type[TaskStoreMachine]:
        return type(cls.__name__, (cls,), {"harness": harness})

    # ------------------------------------------------------------ plumbing

    def now(self) -> float:
        return self.store_clock()

    def ttl_choices(self) -> st.SearchStrategy[int | None]:
        return ttls if self.clock is not None else long_ttls

    def judge(self, op: TaskOperation, result: object = None, error: BaseException | None = None) -> None:
        self.state = judge(self.model, self.state, op, observe(op, result, error), self.refine)

    @staticmethod
    def refine(op: TaskOperation, expectation: Expectation, outcome: Outcome) -> str:
        """A listing that shows another owner's task is an isolation failure, whatever else is wrong with the page."""
        if isinstance(op, ListTasks) and isinstance(outcome, Returned) and isinstance(outcome.value, PageView):
            if any(task.owner_id != op.owner_id for task in outcome.value.tasks):
                return "TS-7"
        return expectation.clause

    def perform(self, op: TaskOperation, call: Callable[[], Any]) -> Any:
        self.state = self.state.at(self.now())
        try:
            result = call()
        except TaskError as error:
            self.judge(op, error=error)
            return None
        self.judge(op, result)
        return result

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
            self.tokens.append((page.next_cursor, cursor_after(owner, observe(op, page).value)))  # type: ignore[arg-type]
            return page
        return None

    # ------------------------------------------------------------ rules

    @rule(owner=st.sampled_from(OWNERS), method=request_methods, data=st.data())
    def create(self, owner: str, method: str, data: st.DataObject) -> None:
        ttl = data.draw(self.ttl_choices(), label="ttl")
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
        how = data.draw(st.sampled_from(["first", "issued", "issued", "forged"] if self.tokens else ["first", "forged"]), label="cursor")
        token: str | None = None
        ref: IssuedCursor | ForgedCursor | None = None
        if how == "issued":
            token, ref = data.draw(st.sampled_from(self.tokens), label="issued cursor")
            if data.draw(st.booleans(), label="its own owner?"):
                owner = ref.owner_id
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

    @precondition(lambda self: self.clock is not None)
    @rule(millis=st.integers(min_value=0, max_value=700))
    def advance_clock(self, millis: int) -> None:
        self.clock.advance(millis / 1000)

    # ------------------------------------------------------------ invariants

    @invariant()
    def each_owner_sees_exactly_their_tasks(self) -> None:
        """Every owner's whole listing is the model's, newest first: isolation, order and completeness at once."""
        self.state = self.state.at(self.now())
        for owner in OWNERS[:-1]:  # "" is anonymous: refused, checked by the rules
            op = ListTasks(owner, None, WHOLE_LISTING)
            try:
                self.judge(op, self.store.list(owner, cursor=None, limit=WHOLE_LISTING))
            except TaskError as error:
                self.judge(op, error=error)
