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
from conformance.spec import UNEXPECTED, ContractViolation


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
    #: The clause an error of the contract breaks when the caller expected the call to succeed.
    unexpected: Callable[[str, BaseException], str | None] = lambda _method, _error: None


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

        return call

    def run(self, program: Callable[[Checked], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run an async program against the checked target on the loop (for concurrent probes)."""
        return self.runner.call("concurrent program", program, self.checked, timeout=timeout)


def _mark_unexpected(error: BaseException, rules: AnswerRules, method: str, described: str) -> None:
    """Say, on the error, which clause it breaks if the test did not expect it (``spec.UNEXPECTED``).

    A test that expected the refusal catches it (``expect_error``) and never reads this; one
    that did not was setting up its state, and its failure then names the clause of the call
    that was refused, not the clause the test was about to check.
    """
    clause = rules.unexpected(method, error)
    if clause is None:
        return
    try:
        setattr(error, UNEXPECTED, ContractViolation(
            clause, f"could not set up: {described} raised {type(error).__name__}: {error}; {clause} has it succeed here"))
    except AttributeError:  # an exception type that takes no attributes: the failure keeps the test's clause
        pass


#: The names the suite uses for a backend behind the checks.
CheckedBackend = Checked
SyncBackend = Blocking
#: ... and for a task store behind them.
SyncStore = Blocking
