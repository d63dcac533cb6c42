"""The KV oracle itself: each expectation and the clause it names, in both expiry modes."""

from __future__ import annotations

import pytest

from conformance import ExpiredRecords, VersionedRecord
from conformance.models.kv import (
    CleanupExpired,
    Delete,
    Get,
    KVModel,
    ListByPrefix,
    Put,
    PutIfVersion,
    Raised,
    Returned,
)
from conformance.strategies import record_bytes

NOW = 1_800_000_000.0
LIVE = record_bytes("live", NOW + 10)
STALE = record_bytes("stale", NOW - 10)


def _state(model: KVModel):
    state = model.initial(NOW)
    for key, data in (("live", LIVE), ("stale", STALE)):
        state = model.expect(state, Put(key, data)).after
    return state


def test_versions_and_conflicts() -> None:
    model = KVModel()
    state = _state(model)
    put = model.expect(state, Put("live", LIVE))
    assert (put.clause, put.allowed) == ("BK-6", (Returned(2),))
    stale = model.expect(put.after, PutIfVersion("live", LIVE, 1))
    assert (stale.clause, stale.allowed) == ("BK-8", (Raised("VersionConflictError", "live", 1, 2),))
    assert stale.after == put.after
    missing = model.expect(state, PutIfVersion("ghost", LIVE, 1))
    assert (missing.clause, missing.allowed) == ("BK-9", (Raised("NotFoundError", "ghost"),))


def test_kept_until_cleanup_mode_reads_expired_records_then_cleanup_counts_them() -> None:
    model = KVModel(ExpiredRecords.KEPT_UNTIL_CLEANUP)
    state = _state(model)
    assert model.expect(state, Get("stale")).allowed == (Returned(VersionedRecord(STALE, 1)),)
    cleanup = model.expect(state, CleanupExpired())
    assert cleanup.allowed == (Returned(1),)
    assert set(cleanup.after.records) == {"live"}


def test_hidden_mode_hides_expired_records_everywhere() -> None:
    model = KVModel(ExpiredRecords.HIDDEN)
    state = _state(model)
    assert model.expect(state, Get("stale")).allowed == (Raised("NotFoundError", "stale"),)
    assert model.expect(state, Get("stale")).clause == "BK-17"
    assert model.expect(state, Delete("stale")).allowed == (Returned(False),)
    assert model.expect(state, Put("stale", STALE)).allowed == (Returned(1),)
    listed = model.expect(state, ListByPrefix("")).allowed[0]
    assert [k for k, _ in listed.value] == ["live"]
    assert model.expect(state, CleanupExpired()).allowed == (Returned(0), Returned(1))


@pytest.mark.parametrize(("offset", "expired"), [(0.0, False), (0.001, True), (-0.001, False)])
def test_expiry_boundary_is_exclusive(offset: float, expired: bool) -> None:
    model = KVModel()
    state = model.expect(model.initial(NOW), Put("k", record_bytes("x", NOW))).after.at(NOW + offset)
    assert model.expect(state, CleanupExpired()).allowed == (Returned(int(expired)),)


def test_states_are_hashable_and_compare_by_content() -> None:
    model = KVModel()
    assert _state(model) == _state(model)
    assert len({_state(model), _state(model)}) == 1
