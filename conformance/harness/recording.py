"""The calls one test made into its target, kept so a failure can be replayed outside the kit.

Why a log and not the test's own variables: a reproduction must hold exactly what the target
was asked and what it answered, whatever test, machine or race made the calls. Every call
passes ``Checked.invoke``, so that is where it is written down.

Only the last example matters: Hypothesis replays the minimal failing example last, so the
log keeps one *segment*, begun anew when a Hypothesis example starts or when an instance is
opened while none of the segment's instances is live (a fresh world). Calls on an instance
still live are carried into the new segment, so its state is never half-recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: What a target instance is in the log: the target's own contract, or the kit's store over a backend target.
TARGET, KIT_STORE = "target", "kit store"


@dataclass
class Instance:
    """One instance opened during the test, in the order opened."""

    number: int
    role: str
    contract: str
    #: The clock it was given (None: it takes none), read at each call.
    clock: Callable[[], float] | None
    #: What the factory was offered besides the clock (a store's config and security).
    injected: dict[str, Any] = field(default_factory=dict)
    live: bool = True


@dataclass
class Call:
    """One call and its answer; ``start`` and ``end`` are ticks of one counter shared by every call."""

    instance: Instance
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    start: int
    clock_ms: int | None
    end: int | None = None
    result: Any = None
    error: BaseException | None = None
    #: What happened instead of an answer: "timeout" (no answer in time).
    lost: str | None = None


class CallLog:
    """The current segment of one test's calls (see the module docstring)."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1)
        self._numbers = itertools.count(1)
        self._instances: dict[int, Instance] = {}
        self._context: object = None
        self.calls: list[Call] = []

    def reset(self) -> None:
        """Forget everything: a new test starts."""
        self.__init__()  # type: ignore[misc]

    # -------------------------------------------------------------- segments

    def enter(self, context: object) -> None:
        """Called on the test's thread before it drives the target; a new Hypothesis example starts a segment."""
        if context is not self._context:
            self._context = context
            self._new_segment()

    def _new_segment(self) -> None:
        self.calls = [c for c in self.calls if c.instance.live]

    # -------------------------------------------------------------- instances

    def opened(self, raw: object, role: str, contract: str, clock: Callable[[], float] | None, **injected: Any) -> None:
        if not any(i.live for i in self._instances.values()):
            self._new_segment()
        self._instances[id(raw)] = Instance(next(self._numbers), role, contract, clock, dict(injected))

    def released(self, raw: object) -> None:
        instance = self._instances.get(id(raw))
        if instance is not None:
            instance.live = False

    # -------------------------------------------------------------- calls

    def started(self, raw: object, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Call | None:
        instance = self._instances.get(id(raw))
        if instance is None:
            return None  # an instance the harness did not open (a project's own test): nothing to replay
        clock_ms = round(instance.clock() * 1000) if instance.clock is not None else None
        call = Call(instance, method, args, dict(kwargs), next(self._ticks), clock_ms)
        self.calls.append(call)
        return call

    def answered(self, call: Call | None, result: Any) -> None:
        if call is not None:
            call.result, call.end = result, next(self._ticks)

    def raised(self, call: Call | None, error: BaseException) -> None:
        if call is not None:
            call.error, call.end = error, next(self._ticks)

    def timed_out(self, call: Call | None) -> None:
        if call is not None:
            call.lost, call.end = "timeout", next(self._ticks)


def example_context() -> object:
    """The Hypothesis example running on this thread, if any: each one is a new segment of the log."""
    # Imported here: a process serving a target over the wire never runs Hypothesis, and starts faster without it.
    from hypothesis.control import current_build_context, currently_in_test_context

    return current_build_context() if currently_in_test_context() else None
