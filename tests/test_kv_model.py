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
        state = model.expect(state, Put(key, data)).then(Returned(1))
    return state


def test_versions_and_conflicts() -> None:
    model = KVModel()
    state = _state(model)
    put = model.expect(state, Put("live", LIVE))
    assert put.clause == "BK-6"
    assert put.admits(Returned(2)) and put.admits(Returned(9)), "any version above the last one is a new version"
    assert not put.admits(Returned(1)) and not put.admits(Returned(True)), "a version must rise, and be an int"
    after = put.then(Returned(9))
    stale = model.expect(after, PutIfVersion("live", LIVE, 1))
    assert (stale.clause, stale.allowed) == ("BK-8", (Raised("VersionConflictError", "live", 1, 9),))
    assert stale.then(stale.example()) == after
    missing = model.expect(state, PutIfVersion("ghost", LIVE, 1))
    assert (missing.clause, missing.allowed) == ("BK-9", (Raised("NotFoundError", "ghost"),))
    zero = model.expect(state, PutIfVersion("ghost", LIVE, 0))
    assert zero.admits(Raised("NotFoundError", "ghost")) and zero.admits(Returned(1)), "version 0 on a missing key is free"


def test_an_unknown_write_leaves_only_a_bound_on_the_version() -> None:
    model = KVModel()
    state = model.expect(_state(model), Put("live", b"new")).then(object())  # the outcome was never seen
    read = model.expect(state, Get("live"))
    assert read.admits(Returned(VersionedRecord(b"new", 5))) and not read.admits(Returned(VersionedRecord(b"new", 1)))


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
    assert model.expect(state, Put("stale", STALE)).admits(Returned(1))
    listed = model.expect(state, ListByPrefix("")).allowed[0]
    assert [k for k, _ in listed.value] == ["live"]
    assert model.expect(state, CleanupExpired()).allowed == (Returned(0), Returned(1))


@pytest.mark.parametrize(("offset", "expired"), [(0.0, False), (0.001, True), (-0.001, False)])
def test_expiry_boundary_is_exclusive(offset: float, expired: bool) -> None:
    model = KVModel()
    state = model.expect(model.initial(NOW), Put("k", record_bytes("x", NOW))).then(Returned(1)).at(NOW + offset)
    assert model.expect(state, CleanupExpired()).allowed == (Returned(int(expired)),)


def test_states_are_hashable_and_compare_by_content() -> None:
    model = KVModel()
    assert _state(model) == _state(model)
    assert len({_state(model), _state(model)}) == 1
