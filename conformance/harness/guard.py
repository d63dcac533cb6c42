"""Every call into a target goes through here: bounded in time, its answer's type and its errors checked.

One mechanism serves every contract: ``AnswerRules`` say what a contract's methods must
return and raise and which clause a timeout breaks. ``CheckedBackend`` and ``CheckedStore``
are the async faces (for the kit's store and concurrent programs inside the loop);
``SyncBackend`` and ``SyncStore`` the blocking faces the suite and machines call. Each spells
out its contract's methods, so a type checker sees every call the kit makes.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import anyio
import anyio.lowlevel

from conformance.contract.backend import VersionedRecord
from conformance.contract.task import TaskPage, TaskRecord, TaskStatus
from conformance.harness.counters import RunCounters
from conformance.harness.recording import example_context
from conformance.harness.runner import LoopRunner
from conformance.models.operation import describe_call
from conformance.spec import UNEXPECTED, ContractViolation


@dataclass(frozen=True)
class AnswerRules:
    """What one contract requires of every answer: the methods, the result and error checks, the timeout clause."""

    methods: tuple[str, ...]
    check_result: Callable[[str, str, object], None]
    check_error: Callable[[str, BaseException], None]
    timeout_clause: str
    #: The contract's name in call counts ("backend", "store").
    contract: str
    #: The answer as the kit compares it, once checked (a tuple listing becomes a list).
    normalise: Callable[[str, object], object] = lambda _method, result: result
    #: The clause an error of the contract breaks when the caller expected the call to succeed.
    unexpected: Callable[[str, BaseException], str | None] = lambda _method, _error: None


# ------------------------------------------------------------------ the async face


class Checked:
    """An instance behind the kit: each contract method timed out, counted and its answer checked by the contract's rules."""

    def __init__(self, raw: Any, timeout: float, rules: AnswerRules, counters: RunCounters | None = None) -> None:
        self.raw = raw
        self.timeout = timeout
        self.rules = rules
        self.counters = counters if counters is not None else RunCounters()

    async def invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` on the raw instance under the contract's rules; the typed methods of subclasses come here."""
        self.counters.calls.count(self.rules.contract)
        call = describe_call(method, args, kwargs)
        logged = self.counters.log.started(self.raw, method, args, kwargs)
        started = time.monotonic()
        try:
            with anyio.fail_after(self.timeout):
                result = await getattr(self.raw, method)(*args, **kwargs)
            elapsed = time.monotonic() - started
            if elapsed > self.timeout:
                # It never reached a cancellation point: it blocked the loop, and finished late.
                self.counters.log.timed_out(logged)
                message = f"{call} took {elapsed:.1f} s, over the {self.timeout:g} s timeout, and blocked the event loop meanwhile"
                self.counters.timeouts.record(message)
                raise ContractViolation(self.rules.timeout_clause, message)
            self.counters.log.answered(logged, result)
        except TimeoutError:
            self.counters.log.timed_out(logged)
            message = f"{call} did not complete within {self.timeout:g} s (--conformance-timeout)"
            self.counters.timeouts.record(message)
            raise ContractViolation(self.rules.timeout_clause, message) from None
        except ContractViolation as violation:
            if logged is not None and logged.end is None:
                self.counters.log.raised(logged, violation)
            raise
        except Exception as error:
            self.counters.log.raised(logged, error)
            self.rules.check_error(call, error)
            raise
        self.rules.check_result(method, call, result)
        return self.rules.normalise(method, result)


class CheckedBackend(Checked):
    """A StorageBackend behind the kit: what the kit's store and concurrent programs await.

    ``yields``: every call ends at a switch point, as a call over a network does. Beneath the
    kit's store: over a backend that never yields (a dict in memory) a store call would run
    whole, so the store's own races (a read, then a compare-and-swap another call got in
    before) could never happen, and the backend's CAS would never meet them.
    """

    def __init__(self, raw: Any, timeout: float, rules: AnswerRules, counters: RunCounters | None = None, *,
                 yields: bool = False) -> None:
        super().__init__(raw, timeout, rules, counters)
        self.yields = yields

    async def invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().invoke(method, *args, **kwargs)
        finally:
            if self.yields:
                await anyio.lowlevel.cancel_shielded_checkpoint()

    async def get(self, key: str) -> VersionedRecord:
        record: VersionedRecord = await self.invoke("get", key)
        return record

    async def put(self, key: str, data: bytes) -> int:
        version: int = await self.invoke("put", key, data)
        return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        version: int = await self.invoke("put_if_version", key, data, expected_version)
        return version

    async def delete(self, key: str) -> bool:
        deleted: bool = await self.invoke("delete", key)
        return deleted

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        listed: list[tuple[str, VersionedRecord]] = await self.invoke("list_by_prefix", prefix)
        return listed

    async def cleanup_expired(self) -> int:
        removed: int = await self.invoke("cleanup_expired")
        return removed


class CheckedStore(Checked):
    """A TaskStore behind the kit: what concurrent programs against a store await."""

    async def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        record: TaskRecord = await self.invoke("create", owner_id, request_method, ttl)
        return record

    async def get(self, task_id: str, owner_id: str) -> TaskRecord:
        record: TaskRecord = await self.invoke("get", task_id, owner_id)
        return record

    async def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus | str, status_message: str | None = None
    ) -> TaskRecord:
        record: TaskRecord = await self.invoke("update_status", task_id, owner_id, status, status_message)
        return record

    async def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        record: TaskRecord = await self.invoke("set_variables", task_id, owner_id, variables)
        return record

    async def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        record: TaskRecord = await self.invoke("set_result", task_id, owner_id, result)
        return record

    async def get_result(self, task_id: str, owner_id: str) -> Any:
        return await self.invoke("get_result", task_id, owner_id)

    async def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus | str, status_message: str | None, result: Any
    ) -> TaskRecord:
        record: TaskRecord = await self.invoke("complete_with_result", task_id, owner_id, status, status_message, result)
        return record

    async def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        page: TaskPage = await self.invoke("list", owner_id, cursor, limit)
        return page

    async def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        record: TaskRecord = await self.invoke("cancel", task_id, owner_id)
        return record

    async def cleanup_expired(self) -> int:
        removed: int = await self.invoke("cleanup_expired")
        return removed


# ------------------------------------------------------------------ the blocking face

C = TypeVar("C", bound=Checked)
T = TypeVar("T")


class Blocking(Generic[C]):
    """The blocking face of a checked instance, run on the test's loop: what the suite and machines call."""

    def __init__(self, checked: C, runner: LoopRunner) -> None:
        self.checked = checked
        self.runner = runner

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Make one contract call and wait for it; the typed methods of subclasses come here."""
        # The loop-side bound is a little looser so the per-call bound inside Checked reports first.
        self.checked.counters.log.enter(example_context())
        described = describe_call(method, args, kwargs)
        try:
            return self.runner.call(
                described,
                partial(self.checked.invoke, method, *args, **kwargs),
                timeout=self.checked.timeout + 1,
                clause=self.checked.rules.timeout_clause,
            )
        except ContractViolation:
            raise
        except Exception as error:
            _mark_unexpected(error, self.checked.rules, method, described)
            raise

    def each(self, method: str, argument_lists: Iterable[Sequence[Any]]) -> list[Any]:
        """``method`` once per argument list, one call after another, in a single trip to the loop.

        The same calls as that many ``call``s, each bounded and checked on its own; what it saves
        is a thread hop per call (0.1 ms on a small machine), most of what a call into a fast
        in-process backend costs. The trip as a whole is bounded by the sum of the calls' bounds.
        """
        calls = [tuple(arguments) for arguments in argument_lists]
        self.checked.counters.log.enter(example_context())
        current = [method]  # the call under way, for the error's message

        async def one_by_one() -> list[Any]:
            answers = []
            for arguments in calls:
                current[0] = describe_call(method, arguments, {})
                answers.append(await self.checked.invoke(method, *arguments))
            return answers

        try:
            return self.runner.call(f"{len(calls)} {method} calls in a row", one_by_one,
                                    timeout=(self.checked.timeout + 1) * max(1, len(calls)),
                                    clause=self.checked.rules.timeout_clause)
        except ContractViolation:
            raise
        except Exception as error:
            _mark_unexpected(error, self.checked.rules, method, current[0])
            raise

    def run(self, program: Callable[[C], Awaitable[T]], timeout: float | None = None) -> T:
        """Run an async program against the checked target on the loop (for concurrent probes)."""
        self.checked.counters.log.enter(example_context())
        return self.runner.call("concurrent program", program, self.checked, timeout=timeout)


class SyncBackend(Blocking[CheckedBackend]):
    """A StorageBackend as the suite calls it: each method blocks until the checked call answers."""

    def get(self, key: str) -> VersionedRecord:
        record: VersionedRecord = self.call("get", key)
        return record

    def put(self, key: str, data: bytes) -> int:
        version: int = self.call("put", key, data)
        return version

    def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        version: int = self.call("put_if_version", key, data, expected_version)
        return version

    def delete(self, key: str) -> bool:
        deleted: bool = self.call("delete", key)
        return deleted

    def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        listed: list[tuple[str, VersionedRecord]] = self.call("list_by_prefix", prefix)
        return listed

    def cleanup_expired(self) -> int:
        removed: int = self.call("cleanup_expired")
        return removed


class SyncStore(Blocking[CheckedStore]):
    """A TaskStore as the suite calls it: each method blocks until the checked call answers."""

    def create(self, owner_id: str, request_method: str, ttl: int | None = None) -> TaskRecord:
        record: TaskRecord = self.call("create", owner_id, request_method, ttl)
        return record

    def get(self, task_id: str, owner_id: str) -> TaskRecord:
        record: TaskRecord = self.call("get", task_id, owner_id)
        return record

    def update_status(
        self, task_id: str, owner_id: str, status: TaskStatus | str, status_message: str | None = None
    ) -> TaskRecord:
        record: TaskRecord = self.call("update_status", task_id, owner_id, status, status_message)
        return record

    def set_variables(self, task_id: str, owner_id: str, variables: dict[str, Any]) -> TaskRecord:
        record: TaskRecord = self.call("set_variables", task_id, owner_id, variables)
        return record

    def set_result(self, task_id: str, owner_id: str, result: Any) -> TaskRecord:
        record: TaskRecord = self.call("set_result", task_id, owner_id, result)
        return record

    def get_result(self, task_id: str, owner_id: str) -> Any:
        return self.call("get_result", task_id, owner_id)

    def complete_with_result(
        self, task_id: str, owner_id: str, status: TaskStatus | str, status_message: str | None, result: Any
    ) -> TaskRecord:
        record: TaskRecord = self.call("complete_with_result", task_id, owner_id, status, status_message, result)
        return record

    def list(self, owner_id: str, cursor: str | None = None, limit: int | None = None) -> TaskPage:
        page: TaskPage = self.call("list", owner_id, cursor, limit)
        return page

    def cancel(self, task_id: str, owner_id: str) -> TaskRecord:
        record: TaskRecord = self.call("cancel", task_id, owner_id)
        return record

    def cleanup_expired(self) -> int:
        removed: int = self.call("cleanup_expired")
        return removed


def _mark_unexpected(error: BaseException, rules: AnswerRules, method: str, described: str) -> None:
    """Say, on the error, which clause it breaks if the test did not expect it (``spec.UNEXPECTED``).

    A test that expected the refusal catches it (``expect_error``) and never reads this; one
    that did not was setting up its state, and its failure then names the clause of the call
    that was refused, not the clause the test was about to check.
    """
    clause = rules.unexpected(method, error)
    if clause is None:
        return
    # An exception type that takes no attributes: the failure keeps the test's clause.
    with contextlib.suppress(AttributeError):
        setattr(error, UNEXPECTED, ContractViolation(
            clause, f"could not set up: {described} raised {type(error).__name__}: {error}; {clause} has it succeed here"))
