"""What one test needs to drive one target: its loop, its clock, and fresh checked instances."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from conformance.contract.capabilities import Capabilities
from conformance.harness.clock import FakeClock
from conformance.contract.store import SecurityConfig, StoreConfig, fit_to_record_limit
from conformance.harness.answers import BACKEND_RULES, STORE_RULES, stamped_by
from conformance.harness.guard import AnswerRules, Blocking, Checked, SyncBackend, SyncStore
from conformance.harness.runner import LoopRunner
from conformance.harness.target import Target

Closer = Callable[[], Awaitable[None]]


class Harness:
    """Owns one event loop for one test; every instance it opens is torn down with it."""

    def __init__(self, target: Target, loop: str, timeout: float) -> None:
        self.target = target
        self.loop = loop
        self.timeout = timeout
        self.runner = LoopRunner(loop, timeout)
        self._closers: dict[int, Closer] = {}
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

        A backend that takes no clock still runs under a reference store stamping from a
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

        instance, closer = self.runner.call(f"{self.target.kind} factory", build, timeout=self.timeout + 1)
        self._closers[id(instance)] = closer
        return instance

    @property
    def timeout_clause(self) -> str:
        """The clause a call that does not answer in time breaks: the target's own (a backend under the kit's
        store is to blame for the store's slow calls too)."""
        return "TS-23" if self.target.kind == "store" else "BK-19"

    def checked(self, instance: Any, rules: AnswerRules) -> Blocking:
        """``instance`` behind the kit's timeouts and the answer rules of its contract."""
        return Blocking(Checked(instance, self.timeout, replace(rules, timeout_clause=self.timeout_clause)), self.runner)

    def open_backend(self, clock: FakeClock | None) -> SyncBackend:
        """A fresh backend instance behind the kit's checks."""
        return self.checked(self.open_raw(clock=clock), BACKEND_RULES)

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
        """The limits the reference store works with over this backend: lowered to fit a declared record limit (BK-14)."""
        if self.target.kind != "backend" or self.capabilities.max_record_bytes is None:
            return config
        return fit_to_record_limit(config, self.capabilities.record_limit)

    def open_store(
        self, clock: FakeClock | None, config: StoreConfig | None = None, security: SecurityConfig | None = None
    ) -> SyncStore:
        """A fresh task store behind the kit's checks.

        For a backend target it is the reference GenericTaskStore over a fresh backend
        instance, itself behind the backend checks (so a BK violation met on the way is
        named as such); for a store target, the store's own factory, given ``clock``,
        ``config`` and ``security`` where its signature takes them.
        """
        injected = {"clock": clock, "config": config, "security": security}
        rules = STORE_RULES if clock is None else replace(STORE_RULES, check_result=stamped_by(clock))
        if self.target.kind == "store":
            return self.checked(self.open_raw(**injected), rules)
        from reference_backend.store import GenericTaskStore

        backend_clock = clock if self.controls_time else None
        backend = Checked(self.open_raw(clock=backend_clock), self.timeout, BACKEND_RULES)
        store = GenericTaskStore(
            backend, config=self.fitted(config or StoreConfig()), security=security or SecurityConfig(), clock=clock
        )
        return self.checked(store, rules)

    def store_config(self, store: SyncStore) -> StoreConfig:
        """The limits a store works with (it may have ignored the ones the kit offered)."""
        return store.checked.raw.config

    def release(self, instance: Any) -> list[str]:
        """Tear one instance down now (machines open one per example; do not pile them up)."""
        closer = self._closers.pop(id(instance), None)
        return self.runner.teardown([closer] if closer is not None else [])

    def release_store(self, store: SyncStore) -> list[str]:
        """Tear down a store from ``open_store`` now (for a backend target: the backend instance under it)."""
        raw = store.checked.raw
        if self.target.kind == "backend":
            raw = raw.backend.raw
        return self.release(raw)

    def close(self) -> list[str]:
        closers, self._closers = list(self._closers.values()), {}
        return self.runner.close(closers)


def wall_clock() -> float:
    """The time used when the target does not take the kit's clock."""
    return time.time()
