"""One event loop per test, in a thread of its own, with every call bounded in time.

The loop lives for the whole test so a backend may keep loop-bound resources (a Redis
pool, a database connection) across calls. Two bounds guard each call: a cancellation
scope inside the loop (a backend awaiting forever) and a wait outside it (a backend that
blocks the loop itself). Either is reported as a violation of BK-19, never a hung CI.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from conformance.harness.counters import TimeoutLedger
from conformance.spec import ContractViolation

T = TypeVar("T")

#: Extra seconds the outside wait grants beyond the in-loop timeout before calling the loop blocked.
_BLOCKED_GRACE = 2.0


class LoopRunner:
    """Runs coroutines on a dedicated asyncio or trio loop and returns their results to the caller's thread."""

    def __init__(self, loop: str, timeout: float, timeouts: TimeoutLedger | None = None) -> None:
        self.loop = loop
        self.timeout = timeout
        #: Where this runner's timed-out calls are counted (the run's ledger; a private one if none).
        self.timeouts = timeouts if timeouts is not None else TimeoutLedger()
        self._portal: BlockingPortal | None = None
        self._asyncio_loop: asyncio.AbstractEventLoop | None = None
        self._blocked = ""  # the clause of the call that left the loop blocked, once one has
        handoff: queue.Queue[BlockingPortal | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, args=(handoff,), name=f"conformance-{loop}", daemon=True)
        self._thread.start()
        started = handoff.get()
        if isinstance(started, BaseException):
            raise RuntimeError(f"cannot start the {loop} event loop: {started}") from started
        self._portal = started

    def _serve(self, handoff: queue.Queue[BlockingPortal | BaseException]) -> None:
        async def main() -> None:
            async with BlockingPortal() as portal:
                if self.loop == "asyncio":
                    self._asyncio_loop = asyncio.get_running_loop()
                handoff.put(portal)
                await portal.sleep_until_stopped()

        try:
            anyio.run(main, backend=self.loop)
        except BaseException as exc:  # reported to the starter if the loop never came up
            handoff.put(exc)

    def call(self, describe: str, fn: Callable[..., Awaitable[T]], *args: Any, timeout: float | None = None,
             clause: str = "BK-19") -> T:
        """Run ``fn(*args)`` on the loop; ``describe`` names the call in a timeout report, under ``clause``
        (the timeout clause of the contract called: BK-19 for a backend, TS-23 for a task store)."""
        if self._blocked or self._portal is None:
            raise ContractViolation(self._blocked or clause, f"{describe} not attempted: an earlier call left the event loop blocked")
        limit = self.timeout if timeout is None else timeout

        async def bounded() -> T:
            with anyio.fail_after(limit):
                return await fn(*args)

        future: concurrent.futures.Future[T]
        if self._asyncio_loop is not None:
            # One thread hop instead of the portal's two (spawn, then result): most of a run's overhead.
            future = asyncio.run_coroutine_threadsafe(bounded(), self._asyncio_loop)
        else:
            future = self._portal.start_task_soon(bounded)
        try:
            return future.result(timeout=limit + _BLOCKED_GRACE)
        except TimeoutError as exc:
            if not future.done():
                self._blocked = clause
                message = (
                    f"{describe} blocked the event loop for over {limit + _BLOCKED_GRACE:.0f} s "
                    "(a synchronous wait inside a coroutine?)"
                )
                self.timeouts.record(message)
                raise ContractViolation(clause, message) from None
            message = f"{describe} did not complete within {limit:g} s (--conformance-timeout)"
            self.timeouts.record(message)
            raise ContractViolation(clause, message) from exc

    def teardown(self, closers: list[Callable[[], Awaitable[None]]]) -> list[str]:
        """Run each teardown on the loop; return problems instead of raising, so teardown never masks a verdict."""
        problems: list[str] = []
        for closer in closers:
            try:
                self.call("teardown", closer)
            except BaseException as exc:  # teardown reports, it does not judge
                problems.append(f"teardown failed: {type(exc).__name__}: {exc}")
        return problems

    def close(self, closers: list[Callable[[], Awaitable[None]]] | None = None) -> list[str]:
        """Tear instances down and stop the loop; return problems instead of raising, so teardown never masks a verdict."""
        problems = self.teardown(closers or [])
        if self._portal is not None and not self._blocked:
            portal, self._portal = self._portal, None
            try:
                portal.start_task_soon(portal.stop, True).result(timeout=_BLOCKED_GRACE)
            except BaseException:  # a loop that will not stop is abandoned (daemon thread)
                problems.append("event loop did not stop; abandoned")
            self._thread.join(timeout=_BLOCKED_GRACE)
        return problems
