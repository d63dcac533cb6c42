"""BK-12 and BK-13: keys are opaque strings and prefixes match literally.

These are the backend half of owner isolation: a prefix that globs, a LIKE that is not
escaped, a collation that folds case or a key column that truncates lets one owner's
listing reach another owner's tasks.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import VersionedRecord
from conformance.harness import Harness, SyncBackend
from conformance.machines.kv_driver import diff_listing
from conformance.plugin.profiles import examples
from conformance.spec import covers, require
from conformance.strategies import key_families, long_keys, prefixes_of, record_bytes

pytestmark = pytest.mark.conformance_target("backend")


def _write_all(backend: SyncBackend, key_list: list[str]) -> dict[str, bytes]:
    """Write one distinct record per key; each must read back as its own (no key merged with another)."""
    written = {key: record_bytes({"key": n}, None, serial=n) for n, key in enumerate(key_list)}
    backend.each("put", written.items())
    for (key, data), got in zip(written.items(), backend.each("get", [(key,) for key in written]), strict=True):
        require("BK-13", got.data == data, f"get({key!r}) returned the record of another key: it collides with one of "
                f"{[k for k in key_list if k != key][:4]}")
    return written


@covers("BK-13", "SEC-2", "BK-12")
@examples(40)
@given(family=key_families())
def test_lookalike_keys_stay_distinct(harness: Harness, family: list[str]) -> None:
    """Case variants, NFC/NFD/NFKC forms, ß/ss, dotless i, Cyrillic look-alikes, separators: all distinct keys."""
    with harness.fresh_backend() as (backend, _clock):
        written = _write_all(backend, family)
        records = dict(zip(written, backend.each("get", [(key,) for key in written]), strict=True))
        for key, data in written.items():
            require("BK-13", records[key].data == data, f"get({key!r}) returned the record of another key")
        listed = backend.list_by_prefix("")
        problem = diff_listing(records, listed)
        require("BK-12", problem is None, f"listing of look-alike keys: {problem}")


@covers("BK-13", "SEC-2", "BK-12")
@examples(10)
@given(key_list=st.lists(long_keys(), min_size=2, max_size=4, unique=True))
def test_long_keys_are_not_truncated(harness: Harness, key_list: list[str]) -> None:
    """Keys up to 1,024 UTF-8 bytes sharing long prefixes: a backend that cuts keys merges them."""
    with harness.fresh_backend() as (backend, _clock):
        _write_all(backend, key_list)  # every key reads back its own record: the keys are intact (BK-13)
        listed_keys = sorted(k for k, _ in backend.list_by_prefix(""))
        # So a listing that differs leaves keys out or names them wrongly: the listing's own rule.
        require("BK-12", listed_keys == sorted(key_list),
                f"list_by_prefix('') over {len(key_list)} long keys listed {len(listed_keys)}: "
                f"{len(set(key_list) - set(listed_keys))} left out, {len(set(listed_keys) - set(key_list))} not as written")


@covers("BK-12", "SEC-1")
@examples(40)
@given(family=key_families(), data=st.data())
def test_prefix_matches_literally(harness: Harness, family: list[str], data: st.DataObject) -> None:
    """Prefixes cut from the keys, their wildcard and case look-alikes: only literal prefixes match."""
    with harness.fresh_backend() as (backend, _clock):
        _write_all(backend, family)
        expected = dict(zip(family, backend.each("get", [(key,) for key in family]), strict=True))
        for prefix in data.draw(st.lists(prefixes_of(family), min_size=1, max_size=6, unique=True), label="prefixes"):
            want = {k: r for k, r in expected.items() if k.startswith(prefix)}
            problem = diff_listing(want, backend.list_by_prefix(prefix))
            require("BK-12", problem is None, f"list_by_prefix({prefix!r}): {problem}")


@covers("BK-12", "SEC-1")
def test_prefix_edge_cases(backend: SyncBackend) -> None:
    data = record_bytes("x", None)
    for key in ("a", "a:", "a:b", "ab", "A:b", "b", "a%", "a_", "a*", "a\\"):
        backend.put(key, data)
    cases = {
        "a": {"a", "a:", "a:b", "ab", "a%", "a_", "a*", "a\\"},
        "a:": {"a:", "a:b"},
        "a:b": {"a:b"},
        "": {"a", "a:", "a:b", "ab", "A:b", "b", "a%", "a_", "a*", "a\\"},
        "a%": {"a%"},
        "a_": {"a_"},
        "a*": {"a*"},
        "a\\": {"a\\"},
        "a?": set(),
        "[a]": set(),
        "zzz": set(),
    }
    for prefix, want in cases.items():
        got = [k for k, _ in backend.list_by_prefix(prefix)]
        require("BK-12", len(got) == len(set(got)), f"list_by_prefix({prefix!r}) lists a key twice: {sorted(got)}")
        require("BK-12", set(got) == want, f"list_by_prefix({prefix!r}) returned {sorted(got)}, expected {sorted(want)}")


@covers("BK-12")
def test_listing_follows_writes_and_deletes(backend: SyncBackend) -> None:
    backend.put("t:1", record_bytes(1, None))
    backend.put("t:2", record_bytes(2, None))
    current = backend.put("t:1", record_bytes(3, None))
    backend.delete("t:2")
    last = backend.put_if_version("t:1", record_bytes(4, None), current)
    listed = backend.list_by_prefix("t:")
    problem = diff_listing({"t:1": VersionedRecord(record_bytes(4, None), last)}, listed)
    require("BK-12", problem is None, f"after put, overwrite, delete and CAS, list_by_prefix('t:'): {problem}")
