"""BK-11, BK-14, BK-20: what goes in comes out, byte for byte, up to the size the contract promises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import CapacityExceededError, NotFoundError, VersionedRecord
from conformance.harness import Harness, SyncBackend
from conformance.machines.kv_driver import require_record
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies import ABSENT, FAR_FUTURE, keys, record_bytes, records

pytestmark = pytest.mark.conformance_target("backend")


@covers("BK-11", "BK-13")
@examples(40)
@given(key=keys(), data=records(st.sampled_from([FAR_FUTURE, None, ABSENT])))  # live records: round trips, not expiry
def test_data_round_trips_exactly(harness: Harness, key: str, data: bytes) -> None:
    with harness.fresh_backend() as (backend, _clock):
        backend.put(key, data)
        got = backend.get(key)
        require("BK-11", got.data == data, f"get returned {len(got.data)} B that differ from the {len(data)} B written")
        listed = dict(backend.list_by_prefix(key))
        require("BK-13", key in listed, f"list_by_prefix({key!r}) does not list the key as it was written: {sorted(listed)!r:.200}")
        require("BK-11", listed[key].data == data, "list_by_prefix returned other bytes than were written")


@covers("BK-11")
def test_reserialisation_is_detected_by_canonical_bytes(backend: SyncBackend) -> None:
    """Canonical JSON with non-ASCII, escapes and sorted keys: any re-encoding changes these bytes."""
    data = record_bytes({"ünïcødé": "snow ☃ \u2028 \"quoted\" \\ tab\t", "big": 2**60 + 1, "float": 0.1, "list": [1, {"z": None, "a": []}]}, None)
    backend.put("k", data)
    require("BK-11", backend.get("k").data == data, "the stored canonical JSON came back re-serialised")


@covers("BK-14")
def test_large_records_are_stored(harness: Harness, backend: SyncBackend) -> None:
    limit = harness.capabilities.record_limit
    overhead = len(record_bytes("", None))
    for size in sorted({size for size in (64 * 1024 + 1, 1024 * 1024) if size < limit} | {limit}):
        data = record_bytes("é" * ((size - overhead) // 2) + "x" * ((size - overhead) % 2), None)
        require("BK-14", len(data) == size, f"kit error: built {len(data)} B instead of {size}")
        version = backend.put(f"big-{size}", data)
        got = backend.get(f"big-{size}")
        require("BK-14", got == VersionedRecord(data, version), f"a {size}-byte record came back as {len(got.data)} B")  # cut: BK-14's own rule


@covers("BK-14")
def test_records_over_declared_limit_are_refused(harness: Harness, backend: SyncBackend) -> None:
    declared = harness.capabilities.max_record_bytes
    if declared is None:
        # No declared limit: the backend promises MIN_RECORD_BYTES; refusing larger ones is its own business.
        data = record_bytes("x" * 64, None)
        version = backend.put("small", data)
        require_record("BK-14", backend.get("small"), VersionedRecord(data, version), "a small record did not read back")
        return
    data = record_bytes("x" * declared, None)
    expect_error("BK-14", CapacityExceededError, lambda: backend.put("huge", data), f"put of {len(data)} B over the declared {declared} B")
    expect_error("BK-14", NotFoundError, lambda: backend.get("huge"), "get of a record refused for its size")


@covers("BK-20")
def test_opaque_bytes_round_trip(backend: SyncBackend) -> None:
    for n, data in enumerate([b"", b"\x00\xff\xfe not json", b"[1, 2]", b'"just a string"', "é".encode("latin-1")]):
        backend.put(f"opaque-{n}", data)
        require("BK-20", backend.get(f"opaque-{n}").data == data, f"opaque bytes {data!r} did not round-trip")
    require("BK-20", backend.cleanup_expired() == 0, "cleanup removed records whose data is not a JSON record")
