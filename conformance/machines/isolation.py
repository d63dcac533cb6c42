"""The owner-isolation probe: look-alike owners share a store while intruders keep trying each other's tasks.

A check that holds for a fresh task but not after the owner's own writes (a result set, a
status changed, a cache warmed, a quota counted) needs a sequence to show, so this machine
interleaves three things on owners drawn as one look-alike family: creates up to and past
each owner's quota (SEC-4), the owners' own writes, and intruders' attempts on every
method, each compared with the same attempt on a never-issued id (SEC-3). After every step
each owner's listing is exactly its own tasks.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    initialize,
    invariant,
    precondition,
    rule,
)

from conformance.checks.task_store import (
    calls_as,
    indistinguishable,
    listed_ids,
    raised,
    state_of,
)
from conformance.contract.store import StoreConfig
from conformance.contract.task import TaskRecord, TaskStatus
from conformance.contract.task_errors import ResourceExhaustedError
from conformance.machines.bound import HarnessMachine
from conformance.spec import expect_error, require
from conformance.strategies.owners import owner_families

#: Small enough that a short program fills an owner's quota.
QUOTA = 3


class OwnerIsolationMachine(HarnessMachine):
    """One fresh store per example, owned by a family of look-alikes. Build with ``for_harness``."""


    def __init__(self) -> None:
        super().__init__()
        self.store = self.harness.open_store(self.harness.store_clock(self.harness.new_clock()),
                                             StoreConfig(max_tasks_per_owner=QUOTA))
        self.quota = self.harness.store_config(self.store).max_tasks_per_owner
        self.owners: list[str] = []
        self.holder: dict[str, str] = {}  # task id -> owner, in creation order
        self.seen: dict[str, Any] = {}  # task id -> what its owner last saw of it


    def teardown(self) -> None:
        self.harness.release_store(self.store)

    def _held_by(self, owner: str) -> list[str]:
        return [task_id for task_id, holder in self.holder.items() if holder == owner]

    @initialize(owners=owner_families(2, 4))
    def meet(self, owners: list[str]) -> None:
        self.owners = owners

    @rule(data=st.data())
    def create(self, data: st.DataObject) -> None:
        owner = data.draw(st.sampled_from(self.owners), label="creator")
        held = len(self._held_by(owner))
        others = {o: len(self._held_by(o)) for o in self.owners if o != owner}
        if held >= self.quota:
            expect_error("SEC-4", ResourceExhaustedError, lambda: self.store.create(owner, "m"),
                         f"create by {owner!r}, who holds {held} of {self.quota} tasks (look-alikes hold {others})")
            return
        outcome = raised(lambda: self.store.create(owner, "m"))
        require("SEC-4", not isinstance(outcome, BaseException),
                f"create by {owner!r}, who holds {held} of its {self.quota} tasks, raised {type(outcome).__name__}: {outcome}; "
                f"its look-alikes hold {others}: another owner's tasks used up this owner's quota")
        assert isinstance(outcome, TaskRecord)  # require above: a create that did not raise returned its task
        self.holder[outcome.task_id] = owner
        self.seen[outcome.task_id] = state_of(self.store, outcome.task_id, owner)

    @precondition(lambda self: self.holder)
    @rule(data=st.data())
    def owner_writes(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(list(self.holder)), label="task")
        owner = self.holder[task_id]
        write = data.draw(st.sampled_from(["variables", "input_required", "working", "result", "complete", "cancel"]), label="write")
        calls = {
            "variables": lambda: self.store.set_variables(task_id, owner, {"n": len(self.seen), "drop": None}),
            "input_required": lambda: self.store.update_status(task_id, owner, TaskStatus.INPUT_REQUIRED, "waiting"),
            "working": lambda: self.store.update_status(task_id, owner, TaskStatus.WORKING, None),
            "result": lambda: self.store.set_result(task_id, owner, {"for": "owner"}),
            "complete": lambda: self.store.complete_with_result(task_id, owner, TaskStatus.COMPLETED, "done", [1]),
            "cancel": lambda: self.store.cancel(task_id, owner),
        }
        raised(calls[write])  # terminal tasks refuse; either way the owner's view is the new baseline
        self.seen[task_id] = state_of(self.store, task_id, owner)

    @precondition(lambda self: self.holder)
    @rule(data=st.data())
    def intruder_tries(self, data: st.DataObject) -> None:
        task_id = data.draw(st.sampled_from(list(self.holder)), label="task")
        owner = self.holder[task_id]
        intruder = data.draw(st.sampled_from([o for o in self.owners if o != owner]), label="intruder")
        index = data.draw(st.integers(0, len(calls_as(self.store, task_id, intruder)) - 1), label="method")
        missing = uuid.uuid4().hex
        method, theirs = calls_as(self.store, task_id, intruder)[index]
        _, absent = calls_as(self.store, missing, intruder)[index]
        indistinguishable("SEC-3", raised(theirs), raised(absent), task_id, missing, f"{method} by {intruder!r} of {owner!r}'s task")
        require("SEC-3", state_of(self.store, task_id, owner) == self.seen[task_id],
                f"{method} by {intruder!r} was refused, yet {owner!r}'s task changed")

    @invariant()
    def each_owner_lists_exactly_its_own(self) -> None:
        for owner in self.owners:
            listed = sorted(listed_ids(self.store, owner, "SEC-3"))
            mine = sorted(self._held_by(owner))
            require("SEC-3", listed == mine,
                    f"{owner!r} lists {len(listed)} task(s) but holds {len(mine)}; "
                    f"{len(set(listed) - set(mine))} belong to its look-alikes {[o for o in self.owners if o != owner]!r}")
