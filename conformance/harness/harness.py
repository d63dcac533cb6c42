"""What one test needs to drive one target: its loop, its clock, and fresh checked instances."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from conformance.contract.capabilities import Capabilities
from conformance.contract.store import (
    SecurityConfig,
    StoreConfig,
    TaskStore,
    fit_to_record_limit,
)
from conformance.harness.answers import BACKEND_RULES, STORE_RULES, stamped_by
from conformance.harness.clock import FakeClock
from conformance.harness.counters import RunCounters
from conformance.harness.guard import (
    AnswerRules,
    CheckedBackend,
    CheckedStore,
    SyncBackend,
    SyncStore,
)
from conformance.harness.recording import KIT_STORE, TARGET, example_context
from conformance.harness.runner import LoopRunner
from conformance.harness.target import TIMEOUT_CLAUSES, Target

Closer = Callable[[], Awaitable[None]]


class StoreOverBackend(Protocol):
    """Builds the task store a ``--backend`` target is judged under (the kit's GenericTaskStore)."""

    def __call__(
        self, backend: CheckedBackend, *, config: StoreConfig, security: SecurityConfig, clock: FakeClock | None
    ) -> TaskStore: ...


class Harness:
    """Owns one event loop for one test; every instance it opens is torn down with it."""

    def __init__(
        self,
        target: Target,
        loop: str,
        timeout: float,
        store_over_backend: StoreOverBackend,
        counters: RunCounters | None = None,
    ) -> None:
        self.target = target
        self.loop = loop
        self.timeout = timeout
        #: The store a backend target runs the task-store suite under; handed in, so the harness knows no store.
        self.store_over_backend = store_over_backend
        #: The run's counters (the pytest session's), shared by every instance this harness opens.
        self.counters = counters if counters is not None else RunCounters()
        self.runner = LoopRunner(loop, timeout, self.counters.timeouts)
        self._closers: dict[int, Closer] = {}
        #: The backend instance under each kit store opened over a backend target, released with it.
        self._beneath: dict[int, Any] = {}
        #: Where failing concurrent histories are drawn as HTML (``--conformance-timelines``), if anywhere.
        self.timeline_dir: Path | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self.target.capabilities

    @property
    def controls_time(self) -> bool:
        """Whether the target takes the kit's clock, so TTL rules can be tested to the millisecond."""
        return self.target.accepts_clock

    def new_clock(self) -> FakeClock | None:
        return FakeClock() if self.controls_time else None

    def store_clock(self, clock: FakeClock | None) -> FakeClock | None:
        """The clock a task store stamps with: the kit's own, if the target takes it.

        A backend that takes no clock still runs under the kit's store stamping from a
        kit clock frozen at the current wall time, so timestamps stay predictable; its own
        expiry then follows the wall clock, so tests use TTLs that cannot run out during a
        run. A whole store that takes no clock stamps times the kit cannot predict: None.
        """
        if clock is not None:
            return clock
        return FakeClock(start=wall_clock()) if self.target.kind == "backend" else None

    def open_raw(self, **injected: Any) -> Any:
        """A fresh, unchecked instance; torn down with the harness or by ``release``."""

        async def build() -> tuple[Any, Closer]:
            return await self.target.open(**injected)

        self.counters.log.enter(example_context())
        instance, closer = self.runner.call(f"{self.target.kind} factory", build, timeout=self.timeout + 1)
        self._closers[id(instance)] = closer
        clock = injected.pop("clock", None) if self.controls_time else None
        self.counters.log.opened(instance, TARGET, self.target.kind, clock, **{k: v for k, v in injected.items() if v is not None})
        return instance

    @property
    def timeout_clause(self) -> str:
        """The clause a call that does not answer in time breaks: the target's own (a backend under the kit's
        store is to blame for the store's slow calls too)."""
        return TIMEOUT_CLAUSES[self.target.kind]

    def _rules(self, rules: AnswerRules) -> AnswerRules:
        return replace(rules, timeout_clause=self.timeout_clause)

    def open_backend(self, clock: FakeClock | None) -> SyncBackend:
        """A fresh backend instance behind the kit's checks."""
        checked = CheckedBackend(self.open_raw(clock=clock), self.timeout, self._rules(BACKEND_RULES), self.counters)
        return SyncBackend(checked, self.runner)

    @contextmanager
    def fresh_backend(self) -> Iterator[tuple[SyncBackend, FakeClock | None]]:
        """A new instance and its own clock for one Hypothesis example, torn down after it."""
        clock = self.new_clock()
        backend = self.open_backend(clock)
        try:
            yield backend, clock
        finally:
            self.release(backend.checked.raw)

    def fitted(self, config: StoreConfig) -> StoreConfig:
        """The limits the kit's store works with over this backend: lowered to fit a declared record limit (BK-14)."""
        if self.target.kind != "backend" or self.capabilities.max_record_bytes is None:
            return config
        return fit_to_record_limit(config, self.capabilities.record_limit)

    def open_store(
        self, clock: FakeClock | None, config: StoreConfig | None = None, security: SecurityConfig | None = None
    ) -> SyncStore:
        """A fresh task store behind the kit's checks.

        For a backend target it is the kit's GenericTaskStore over a fresh backend
        instance, itself behind the backend checks (so a BK violation met on the way is
        named as such); for a store target, the store's own factory, given ``clock``,
        ``config`` and ``security`` where its signature takes them.
        """
        rules = STORE_RULES if clock is None else replace(STORE_RULES, check_result=stamped_by(clock))
        if self.target.kind == "store":
            instance = self.open_raw(clock=clock, config=config, security=security)
        else:
            raw_backend = self.open_raw(clock=clock if self.controls_time else None)
            backend = CheckedBackend(raw_backend, self.timeout, BACKEND_RULES, self.counters, yields=True)
            instance = self.store_over_backend(
                backend, config=self.fitted(config or StoreConfig()), security=security or SecurityConfig(), clock=clock
            )
            # Releasing the store tears down the backend under it: the store itself holds nothing to close.
            self._closers[id(instance)] = self._closers.pop(id(raw_backend))
            self._beneath[id(instance)] = raw_backend
            self.counters.log.opened(instance, KIT_STORE, "store", clock)
        return SyncStore(CheckedStore(instance, self.timeout, self._rules(rules), self.counters), self.runner)

    def store_config(self, store: SyncStore) -> StoreConfig:
        """The limits a store works with (it may have ignored the ones the kit offered)."""
        config: StoreConfig = store.checked.raw.config
        return config

    def release(self, instance: Any) -> list[str]:
        """Tear one instance down now (machines open one per example; do not pile them up)."""
        closer = self._closers.pop(id(instance), None)
        self.counters.log.released(instance)
        self.counters.log.released(self._beneath.pop(id(instance), None))
        return self.runner.teardown([closer] if closer is not None else [])

    def release_store(self, store: SyncStore) -> list[str]:
        """Tear down a store from ``open_store`` now (for a backend target: the backend instance under it)."""
        return self.release(store.checked.raw)

    def close(self) -> list[str]:
        closers, self._closers = list(self._closers.values()), {}
        return self.runner.close(closers)


def wall_clock() -> float:
    """The time used when the target does not take the kit's clock."""
    return time.time()
