"""BK-15 to BK-17: expiry by the injected clock, cleanup, and what expired records look like."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from conformance import ExpiredRecords, NotFoundError, VersionedRecord
from conformance.harness import FakeClock, Harness, SyncBackend
from conformance.machines.kv_driver import require_record
from conformance.spec import covers, expect_error, require, violation
from conformance.strategies import ABSENT, FAR_FUTURE, FAR_PAST, record_bytes

pytestmark = pytest.mark.conformance_target("backend")
T = TypeVar("T")


@covers("BK-15")
def test_expiry_boundary_is_exclusive(harness: Harness, backend: SyncBackend, fake_clock: FakeClock) -> None:
    deadline = fake_clock() + 60
    data = record_bytes("ttl", deadline)
    version = backend.put("k", data)
    fake_clock.set(deadline)
    require_record("BK-15", backend.get("k"), VersionedRecord(data, version), "the record vanished at its expiresAt instant (the boundary is exclusive)")
    require("BK-15", backend.cleanup_expired() == 0, "cleanup treated a record as expired at its expiresAt instant")
    fake_clock.advance(0.001)
    if harness.capabilities.expired_records is ExpiredRecords.HIDDEN:
        expect_error("BK-15", NotFoundError, lambda: backend.get("k"), "get one millisecond past expiresAt (declared HIDDEN)")
    else:
        removed = backend.cleanup_expired()
        require("BK-15", removed == 1, f"one millisecond past expiresAt, cleanup removed {removed} record(s), expected 1")


@covers("BK-16")
def test_cleanup_removes_exactly_the_expired(harness: Harness, backend: SyncBackend, clock: FakeClock | None) -> None:
    now = clock() if clock else None
    past = now - 1 if now is not None else FAR_PAST
    future = now + 3600 if now is not None else FAR_FUTURE
    backend.put("past", record_bytes("p", past))
    backend.put("future", record_bytes("f", future))
    backend.put("null", record_bytes("n", None))
    backend.put("absent", record_bytes("a", ABSENT))
    removed = backend.cleanup_expired()
    hidden = harness.capabilities.expired_records is ExpiredRecords.HIDDEN
    require("BK-16", removed == 1 or (hidden and removed == 0), f"cleanup_expired returned {removed}, expected 1")
    remaining = sorted(k for k, _ in backend.list_by_prefix(""))
    require("BK-16", remaining == ["absent", "future", "null"], f"after cleanup the store holds {remaining}")
    require("BK-16", backend.cleanup_expired() == 0, "a second cleanup removed records again")


@covers("BK-16")
def test_cleanup_keeps_records_without_readable_expiry(backend: SyncBackend) -> None:
    odd = {
        "bad-timestamp": b'{"expiresAt":"yesterday"}',
        "number": b'{"expiresAt":12}',
        "array": b'[{"expiresAt":"2000-01-01T00:00:00.000Z"}]',
        "nested-only": b'{"task":{"expiresAt":"2000-01-01T00:00:00.000Z"}}',
    }
    for key, data in odd.items():
        backend.put(key, data)
    removed = backend.cleanup_expired()
    require("BK-16", removed == 0, f"cleanup removed {removed} record(s) whose expiry it cannot read")
    remaining = sorted(k for k, _ in backend.list_by_prefix(""))
    require("BK-16", remaining == sorted(odd), f"records without a readable expiry were removed: {sorted(set(odd) - set(remaining))}")


@covers("BK-17")
def test_expired_records_follow_declared_mode(harness: Harness, backend: SyncBackend, clock: FakeClock | None) -> None:
    data = record_bytes("old", (clock() - 0.001) if clock else FAR_PAST)
    version = backend.put("old", data)  # expiresAt one millisecond ago: expired from the start
    if harness.capabilities.expired_records is ExpiredRecords.HIDDEN:
        expect_error("BK-17", NotFoundError, lambda: backend.get("old"), "get of an expired record (declared HIDDEN)")
        require("BK-17", backend.list_by_prefix("old") == [], "a listing shows an expired record (declared HIDDEN)")
        expect_error("BK-17", NotFoundError, lambda: backend.put_if_version("old", data, 1), "CAS on an expired record (declared HIDDEN)")
        require("BK-17", backend.delete("old") is False, "delete of an expired record returned True (declared HIDDEN)")
        anew = backend.put("old", data)
        require("BK-17", backend.delete("old") is False and anew >= 1,
                "put over an expired record must create it anew, itself expired at once (declared HIDDEN)")
    else:
        require_record("BK-17", _kept(lambda: backend.get("old"), "get"), VersionedRecord(data, version),
                       "an expired record must stay readable until cleanup")
        require("BK-17", [k for k, _ in backend.list_by_prefix("old")] == ["old"], "an expired record must stay listed until cleanup"
                + _DECLARE)
        require("BK-17", _kept(lambda: backend.put_if_version("old", data, version), "put_if_version") > version,
                "an expired record must stay writable until cleanup")
        require("BK-17", backend.cleanup_expired() == 1, "cleanup must remove the expired record")
        expect_error("BK-17", NotFoundError, lambda: backend.get("old"), "get after cleanup of an expired record")


#: What a backend that hides expired records without saying so needs to read.
_DECLARE = (
    "; this backend declares, or by default has, expired_records=KEPT_UNTIL_CLEANUP: expired records stay readable, "
    "listed and writable until cleanup_expired. A backend whose engine hides them declares "
    "conformance_capabilities = Capabilities(expired_records=ExpiredRecords.HIDDEN)"
)


def _kept(call: Callable[[], T], method: str) -> T:
    """A call on an expired record that KEPT_UNTIL_CLEANUP has succeed; NotFoundError there is BK-17, with the way out."""
    try:
        return call()
    except NotFoundError as error:
        raise violation("BK-17", f"{method} of an expired record raised NotFoundError: {error}{_DECLARE}") from None
