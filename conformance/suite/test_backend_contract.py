"""BK-1, BK-2, BK-3, BK-19: the shape of a backend and of its answers.

Types, error classes and timeouts are checked on every call of every test by the
harness; these tests make sure each method is exercised on its success and error paths.
"""

from __future__ import annotations

import pytest

from conformance import NotFoundError, StorageBackend, VersionConflictError
from conformance.harness import Harness, SyncBackend
from conformance.spec import covers, expect_error, require
from conformance.strategies import record_bytes

pytestmark = pytest.mark.conformance_target("backend")


@covers("BK-1")
def test_instance_satisfies_protocol(harness: Harness) -> None:
    instance = harness.open_raw(clock=harness.new_clock())
    require("BK-1", isinstance(instance, StorageBackend), f"{type(instance).__name__} does not satisfy conformance.StorageBackend")


@covers("BK-1")
def test_fresh_instance_is_empty(harness: Harness, backend: SyncBackend) -> None:
    backend.put("left-behind", record_bytes("x", None))
    another = harness.open_backend(harness.new_clock())
    listed = another.list_by_prefix("")
    require("BK-1", listed == [], f"a fresh instance already holds {len(listed)} record(s): {[k for k, _ in listed][:5]}")


@covers("BK-2")
def test_answers_have_contract_types(backend: SyncBackend) -> None:
    # Every answer passes the harness's type checks (BK-2) on its way back; exercise all six.
    data = record_bytes({"n": 1}, None)
    version = backend.put("k", data)
    backend.put_if_version("k", data, version)
    backend.get("k")
    backend.list_by_prefix("k")
    backend.cleanup_expired()
    backend.delete("k")
    backend.delete("k")


@covers("BK-3", "BK-8")
def test_errors_are_storage_errors(backend: SyncBackend) -> None:
    missing = expect_error("BK-4", NotFoundError, lambda: backend.get("absent"), "get('absent')")
    require("BK-3", missing.key == "absent", f"NotFoundError.key is {missing.key!r}, expected 'absent'")
    version = backend.put("k", record_bytes(1, None))
    wrong = version + 7
    conflict = expect_error("BK-8", VersionConflictError, lambda: backend.put_if_version("k", b"{}", wrong), f"put_if_version('k', ..., {wrong})")
    require("BK-8", (conflict.key, conflict.expected, conflict.actual) == ("k", wrong, version),
            f"VersionConflictError carries key={conflict.key!r} expected={conflict.expected} actual={conflict.actual}; "
            f"wanted 'k', {wrong}, {version}")


@covers("BK-19")
def test_every_method_answers_in_time(backend: SyncBackend) -> None:
    # Each call below is bounded by --conformance-timeout; a hang fails here as BK-19.
    data = record_bytes("t", None)
    version = backend.put("t", data)
    backend.get("t")
    backend.put_if_version("t", data, version)
    backend.list_by_prefix("")
    backend.cleanup_expired()
    backend.delete("t")
