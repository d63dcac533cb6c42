"""Every call into a target goes through here: bounded in time, its answer's type and its errors checked.

One mechanism serves every contract: ``AnswerRules`` say what a contract's methods must
return and raise and which clause a timeout breaks. ``Checked`` is the async face (for
concurrent programs inside the loop); ``Blocking`` is the face the suite and machines call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
import time
from functools import partial
from typing import Any

import anyio

from conformance.harness.runner import LEDGER, LoopRunner
from conformance.models.operation import show
from conformance.spec import ContractViolation


def describe_call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in (kwargs or {}).items()]
    return f"{method}({', '.join(shown)})"


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


class CallCounter:
    """Calls into targets per contract since the last ``take``: the cost a run puts on an engine.

    Counted where every call passes (``Checked.invoke``), so a backend's count includes the
    calls the reference store makes on it. One loop thread per test increments it.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, contract: str) -> None:
        self.counts[contract] = self.counts.get(contract, 0) + 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


CALLS = CallCounter()


# ------------------------------------------------------------------ the proxies


class Checked:
    """Async proxy: each contract method timed out and its answer checked by the contract's rules."""

    def __init__(self, raw: Any, timeout: float, rules: AnswerRules) -> None:
        self.raw = raw
        self.timeout = timeout
        self.rules = rules

    async def invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        CALLS.count(self.rules.contract)
        call = describe_call(method, args, kwargs)
        started = time.monotonic()
        try:
            with anyio.fail_after(self.timeout):
                result = await getattr(self.raw, method)(*args, **kwargs)
            elapsed = time.monotonic() - started
            if elapsed > self.timeout:
                # It never reached a cancellation point: it blocked the loop, and finished late.
                message = f"{call} took {elapsed:.1f} s, over the {self.timeout:g} s timeout, and blocked the event loop meanwhile"
                LEDGER.record(message)
                raise ContractViolation(self.rules.timeout_clause, message)
        except TimeoutError:
            message = f"{call} did not complete within {self.timeout:g} s (--conformance-timeout)"
            LEDGER.record(message)
            raise ContractViolation(self.rules.timeout_clause, message) from None
        except ContractViolation:
            raise
        except Exception as error:
            self.rules.check_error(call, error)
            raise
        self.rules.check_result(method, call, result)
        return self.rules.normalise(method, result)

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method not in self.rules.methods:
            raise AttributeError(method)
        return partial(self.invoke, method)


class Blocking:
    """Blocking proxy over ``Checked``, run on the test's loop: what the suite and machines call."""

    def __init__(self, checked: Checked, runner: LoopRunner) -> None:
        self.checked = checked
        self.runner = runner

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in self.checked.rules.methods:
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            # The loop-side bound is a little looser so the per-call bound inside Checked reports first.
            return self.runner.call(
                describe_call(method, args, kwargs),
                partial(self.checked.invoke, method, *args, **kwargs),
                timeout=self.checked.timeout + 1,
                clause=self.checked.rules.timeout_clause,
            )

        return call

    def run(self, program: Callable[[Checked], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run an async program against the checked target on the loop (for concurrent probes)."""
        return self.runner.call("concurrent program", program, self.checked, timeout=timeout)


#: The names the suite uses for a backend behind the checks.
CheckedBackend = Checked
SyncBackend = Blocking
#: ... and for a task store behind them.
SyncStore = Blocking
