"""``fit_to_record_limit``: the arithmetic that lets a small-record engine (DynamoDB) run the TS suite (BK-14).

The bound is checked against real bytes: the largest task a fitted store accepts is written
through GenericTaskStore, and the largest record the backend is handed is measured.
"""

from __future__ import annotations

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import (
    MIN_RECORD_BYTES,
    SecurityConfig,
    StoreConfig,
    TaskStatus,
    fit_to_record_limit,
    worst_case_record_bytes,
)
from conformance.harness.clock import FakeClock
from conformance.strategies.tasks import map_of_exact_size
from conformance.taskstore import GenericTaskStore
from reference_backend import InMemoryBackend
from tests.conftest import assert_passes_whole_kit


class Measuring(InMemoryBackend):
    """Remembers the largest record it was asked to store."""

    largest = 0

    async def put(self, key: str, data: bytes) -> int:
        self.largest = max(self.largest, len(data))
        return await super().put(key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        self.largest = max(self.largest, len(data))
        return await super().put_if_version(key, data, expected_version)


def test_the_seeds_defaults_fit_the_4_mib_every_backend_stores() -> None:
    assert worst_case_record_bytes(StoreConfig()) <= MIN_RECORD_BYTES
    assert fit_to_record_limit(StoreConfig(), MIN_RECORD_BYTES) == StoreConfig()


@settings(max_examples=200, deadline=None)
@given(limit=st.integers(min_value=40_000, max_value=8 * 1024 * 1024))
def test_fitted_limits_fit_and_only_sizes_change(limit: int) -> None:
    fitted = fit_to_record_limit(StoreConfig(), limit)
    assert worst_case_record_bytes(fitted) <= limit
    unchanged = ("default_ttl_ms", "max_ttl_ms", "max_depth", "max_tasks_per_owner", "default_page_size", "poll_interval_ms")
    assert all(getattr(fitted, name) == getattr(StoreConfig(), name) for name in unchanged)
    assert fitted.max_variable_bytes <= StoreConfig().max_variable_bytes


def test_a_limit_with_no_room_for_values_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        fit_to_record_limit(StoreConfig(), 1_000)


@pytest.mark.parametrize("limit", [400_000, 1_000_000])
def test_the_largest_task_a_fitted_store_accepts_makes_a_record_within_the_limit(limit: int) -> None:
    """Every string and the owner at their limits, of control characters (six bytes each in JSON), values at theirs."""
    config = fit_to_record_limit(StoreConfig(), limit)
    widest = "\x01" * config.max_string_bytes
    owner = "o" + "\x01" * (SecurityConfig().max_owner_id_bytes - 1)  # "o": control characters alone are anonymous

    async def largest_record() -> int:
        backend = Measuring()
        store = GenericTaskStore(backend, config=config, clock=FakeClock())
        task = await store.create(owner, widest)
        await store.set_variables(task.task_id, owner, map_of_exact_size(config.max_variable_bytes, config.max_string_bytes))
        await store.complete_with_result(task.task_id, owner, TaskStatus.COMPLETED, widest,
                                         map_of_exact_size(config.max_result_bytes, config.max_string_bytes))
        return backend.largest

    largest = anyio.run(largest_record)
    # Within the limit, and not so far under it that the arithmetic wastes what the engine offers.
    assert worst_case_record_bytes(config) - 32 * 1024 < largest <= limit, (largest, limit)


@pytest.mark.slow
def test_a_backend_declaring_a_small_record_limit_passes_the_whole_kit_and_skips_nothing(pytester: pytest.Pytester) -> None:
    verdict = assert_passes_whole_kit(pytester, "--backend=testbed.backends.correct:SmallRecordsBackend", loops=["asyncio"])
    skipped = {nodeid: test.get("reason") for nodeid, test in verdict["tests"].items() if test["outcome"] == "skipped"}
    assert skipped == {}, skipped
    assert verdict["clauses"]["BK-14"]["status"] == "met"
