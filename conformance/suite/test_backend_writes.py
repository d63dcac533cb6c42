"""BK-4 to BK-10: reading, writing, compare-and-swap and deleting one key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import NotFoundError, VersionConflictError, VersionedRecord
from conformance.harness import Harness, SyncBackend
from conformance.machines.kv_driver import require_record
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies import keys, other_versions, record_bytes

pytestmark = pytest.mark.conformance_target("backend")


def _data(n: int) -> bytes:
    return record_bytes({"write": n}, None, serial=n)


@covers("BK-4")
def test_get_missing_key_raises_not_found(backend: SyncBackend) -> None:
    error = expect_error("BK-4", NotFoundError, lambda: backend.get("nothing-here"), "get('nothing-here')")
    require("BK-4", error.key == "nothing-here", f"NotFoundError.key is {error.key!r}")


@covers("BK-5")
@examples(30)
@given(key=keys())
def test_first_put_creates_a_record(harness: Harness, key: str) -> None:
    with harness.fresh_backend() as (backend, _clock):
        version = backend.put(key, _data(1))
        got = backend.get(key)
        require_record("BK-5", got, VersionedRecord(_data(1), version),
                       f"put({key!r}) on a new key returned version {version}; get then returned v{got.version}")
        backend.delete(key)
        again = backend.put(key, _data(2))
        got = backend.get(key)
        require_record("BK-5", got, VersionedRecord(_data(2), again),
                       f"put({key!r}) after delete returned version {again}; get then returned v{got.version}")


@covers("BK-6")
def test_put_overwrites_and_raises_the_version(backend: SyncBackend) -> None:
    first = backend.put("k", _data(1))
    version = backend.put("k", _data(2))
    require("BK-6", version > first, f"the second put returned version {version}, not above the first's {first}")
    got = backend.get("k")
    require_record("BK-6", got, VersionedRecord(_data(2), version), f"get after overwrite returned v{got.version} {got.data!r}")


@covers("BK-6")
@examples(20)
@given(writes=st.lists(st.booleans(), min_size=1, max_size=12))
def test_every_write_raises_the_version(harness: Harness, writes: list[bool]) -> None:
    """Any mix of puts and successful CASes hands each write a version above the one before."""
    with harness.fresh_backend() as (backend, _clock):
        current = backend.put("k", _data(0))
        for n, use_cas in enumerate(writes, start=1):
            version = backend.put_if_version("k", _data(n), current) if use_cas else backend.put("k", _data(n))
            require("BK-6", version > current,
                    f"write #{n + 1} ({'cas' if use_cas else 'put'}) returned version {version}, not above {current}")
            current = version
        require("BK-6", backend.get("k").version == current, "get disagrees with the version the last write returned")


@covers("BK-7")
def test_cas_with_current_version_succeeds(backend: SyncBackend) -> None:
    backend.put("k", _data(1))
    current = backend.put("k", _data(2))
    version = backend.put_if_version("k", _data(3), current)
    require("BK-7", version > current, f"put_if_version with the current version {current} returned {version}, not above it")
    require_record("BK-7", backend.get("k"), VersionedRecord(_data(3), version), "the CAS write is not what get returns")


@covers("BK-8")
def test_cas_with_stale_version_conflicts(backend: SyncBackend) -> None:
    stale = backend.put("k", _data(1))
    current = backend.put("k", _data(2))
    error = expect_error("BK-8", VersionConflictError, lambda: backend.put_if_version("k", _data(3), stale), "stale put_if_version")
    figures = (error.key, error.expected, error.actual)
    require("BK-8", figures == ("k", stale, current),
            f"VersionConflictError(key, expected, actual) = {figures}, expected {('k', stale, current)}")
    require_record("BK-8", backend.get("k"), VersionedRecord(_data(2), current), "a refused CAS changed the record")


@covers("BK-8")
@examples(30)
@given(writes=st.integers(min_value=1, max_value=4), data=st.data())
def test_cas_with_any_other_version_conflicts(harness: Harness, writes: int, data: st.DataObject) -> None:
    with harness.fresh_backend() as (backend, _clock):
        current = 0
        for n in range(writes):
            current = backend.put("k", _data(n))
        wrong = data.draw(other_versions(current), label="expected_version")
        error = expect_error("BK-8", VersionConflictError, lambda: backend.put_if_version("k", _data(99), wrong), f"put_if_version(..., {wrong})")
        require("BK-8", (error.expected, error.actual) == (wrong, current),
                f"conflict reports expected={error.expected} actual={error.actual}; expected {wrong}, {current}")
        require("BK-8", backend.get("k").version == current, "a refused CAS changed the version")


@covers("BK-9")
@examples(10)
@given(expected=st.sampled_from([1, 2, 7, 2**63 - 1]))
def test_cas_on_missing_key_raises_not_found(harness: Harness, expected: int) -> None:
    with harness.fresh_backend() as (backend, _clock):
        error = expect_error("BK-9", NotFoundError, lambda: backend.put_if_version("ghost", _data(1), expected),
                             f"put_if_version('ghost', ..., {expected}) on a missing key")
        require("BK-9", error.key == "ghost", f"NotFoundError.key is {error.key!r}")
        expect_error("BK-9", NotFoundError, lambda: backend.get("ghost"), "get('ghost') after a refused CAS")
        backend.put("gone", _data(2))
        backend.delete("gone")
        expect_error("BK-9", NotFoundError, lambda: backend.put_if_version("gone", _data(3), expected),
                     f"put_if_version('gone', ..., {expected}) on a deleted key")
        expect_error("BK-9", NotFoundError, lambda: backend.get("gone"), "get('gone') after a refused CAS on a deleted key")


@covers("BK-10", "BK-12")
def test_delete_reports_presence(backend: SyncBackend) -> None:
    require("BK-10", backend.delete("k") is False, "delete of a missing key must return False")
    backend.put("k", _data(1))
    backend.put("kk", _data(1))
    require("BK-10", backend.delete("k") is True, "delete of a present key must return True")
    require("BK-10", backend.delete("k") is False, "a second delete must return False")
    expect_error("BK-10", NotFoundError, lambda: backend.get("k"), "get after delete")
    listed = [key for key, _ in backend.list_by_prefix("k")]
    require("BK-12", listed == ["kk"], f"after deleting 'k', list_by_prefix('k') returned {listed}: a listing must follow every delete")
