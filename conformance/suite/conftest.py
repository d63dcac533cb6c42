"""Fixtures of the shipped suite; scoped to it, so they never clash with a project's own fixtures."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.harness import FakeClock, Harness, SyncBackend, SyncStore, Target
from conformance.plugin import COUNTERS_KEY, LOOPS_KEY, TARGET_KEY
from conformance.taskstore import GenericTaskStore

#: The limits a test leaves alone when it builds a StoreConfig of its own.
_DEFAULTS = StoreConfig()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that drives the target runs once per requested event loop."""
    if "harness" in metafunc.fixturenames:
        loops = metafunc.config.stash[LOOPS_KEY]
        metafunc.parametrize("harness", loops, ids=loops, indirect=True)


@pytest.fixture
def target(pytestconfig: pytest.Config) -> Target:
    return pytestconfig.stash[TARGET_KEY]


@pytest.fixture
def harness(request: pytest.FixtureRequest, target: Target, pytestconfig: pytest.Config) -> Iterator[Harness]:
    harness = Harness(
        target,
        request.param,
        pytestconfig.getoption("conformance_timeout"),
        store_over_backend=GenericTaskStore,
        counters=pytestconfig.stash[COUNTERS_KEY],
    )
    timelines = pytestconfig.getoption("conformance_timelines")
    harness.timeline_dir = Path(timelines) if timelines else None
    try:
        yield harness
    finally:
        problems = harness.close()
        if problems:
            request.node.add_report_section("teardown", "conformance", "\n".join(problems))


@pytest.fixture
def clock(harness: Harness) -> FakeClock | None:
    """The kit's clock if the target takes one, else None (TTL tests then use far past/future expiries)."""
    return harness.new_clock()


@pytest.fixture
def backend(harness: Harness, clock: FakeClock | None) -> SyncBackend:
    """A fresh instance of the backend under test, behind the kit's timeouts and checks."""
    return harness.open_backend(clock)


@pytest.fixture
def fake_clock(clock: FakeClock | None) -> FakeClock:
    """For tests of exact TTL boundaries: skipped, visibly, for targets that do not take a clock."""
    if clock is None:
        pytest.skip("the target does not accept a clock= keyword, so exact expiry boundaries cannot be tested")
    return clock


@pytest.fixture
def store_clock(harness: Harness, clock: FakeClock | None) -> FakeClock | None:
    """The clock task stores in this test stamp with (see ``Harness.store_clock``)."""
    return harness.store_clock(clock)


@pytest.fixture
def make_store(harness: Harness, store_clock: FakeClock | None) -> Callable[..., SyncStore]:
    """Fresh task stores with particular limits, sharing the test's clock.

    For ``--backend`` it is the kit's GenericTaskStore over a fresh backend instance;
    for ``--store`` the store factory, given ``config=``/``security=`` if it takes them.
    A store that ignores them keeps its own limits: read them with ``harness.store_config``.
    """

    def make(config: StoreConfig | None = None, security: SecurityConfig | None = None) -> SyncStore:
        return harness.open_store(store_clock, config, security)

    return make


@pytest.fixture
def store(make_store: Callable[..., SyncStore]) -> SyncStore:
    """A fresh task store with default limits."""
    return make_store()


@pytest.fixture
def limited_store(harness: Harness, make_store: Callable[..., SyncStore]) -> Callable[..., SyncStore]:
    """A store with the given limits, or a visible skip if the target cannot take them."""

    def make(config: StoreConfig | None = None, security: SecurityConfig | None = None) -> SyncStore:
        if config is not None:
            # Over a backend declaring a record limit, the limits the test left at their
            # defaults are lowered to fit it (BK-14); the ones it chose must survive that.
            fitted = harness.fitted(config)
            chosen = [f.name for f in dataclasses.fields(StoreConfig) if getattr(config, f.name) != getattr(_DEFAULTS, f.name)]
            lowered = [name for name in chosen if getattr(fitted, name) != getattr(config, name)]
            if lowered:
                pytest.skip(f"this test sets {', '.join(lowered)} beyond what fits the backend's declared max_record_bytes")
            config = fitted
        built = make_store(config, security)
        if config is not None and harness.store_config(built) != config:
            pytest.skip("the store factory does not accept config=, so limits cannot be set for this test")
        return built

    return make
