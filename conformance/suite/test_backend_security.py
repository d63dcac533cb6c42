"""SEC-1, SEC-2: the backend's half of owner isolation, probed with the key layouts naive stores build.

The reference store hashes owners into keys (TS-7), but a backend serves other stores too:
here owners go into keys in clear, as the seed's ``task:{owner}:{id}`` does, and the
backend must keep every owner's keys literal and apart.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance import NotFoundError, VersionedRecord
from conformance.harness import Harness, SyncBackend
from conformance.machines.kv_driver import diff_listing
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require
from conformance.strategies import is_valid_key, record_bytes
from conformance.strategies.owners import NAIVE_LAYOUTS, owner_families, task_ids

pytestmark = pytest.mark.conformance_target("backend")

Layout = tuple[str, Callable[[str, str], str], Callable[[str], str]]


def _stored(backend: SyncBackend, keys: list[str], clause: str) -> dict[str, VersionedRecord]:
    """Write one distinct record per key; each must read back as its own (no key merged with another)."""
    written = {key: record_bytes({"owner key": n}, None, serial=n) for n, key in enumerate(keys)}
    for key, data in written.items():
        backend.put(key, data)
    records = {key: backend.get(key) for key in keys}
    for key, record in records.items():
        require(clause, record.data == written[key], f"get({key!r}) returned another key's record: the backend merged it "
                f"with one of {[k for k in keys if k != key][-4:]!r}")
    return records


@covers("SEC-1")
@examples(40)
@given(owners=owner_families(2, 5), layout=st.sampled_from(NAIVE_LAYOUTS),
       ids=st.lists(task_ids(), min_size=1, max_size=3, unique=True))
def test_owner_prefixes_list_only_their_owners_keys(harness: Harness, owners: list[str], layout: Layout, ids: list[str]) -> None:
    name, key_of, prefix_of = layout
    keys = list(dict.fromkeys(k for owner in owners for k in (key_of(owner, i) for i in ids) if is_valid_key(k)))
    with harness.fresh_backend() as (backend, _clock):
        records = _stored(backend, keys, "SEC-1")
        for owner in owners:
            prefix = prefix_of(owner)
            if not prefix:
                continue
            want = {k: r for k, r in records.items() if k.startswith(prefix)}
            problem = diff_listing(want, backend.list_by_prefix(prefix))
            require("SEC-1", problem is None,
                    f"layout {name}: listing owner {owner!r}'s prefix {prefix!r} beside look-alike owners {owners!r}: {problem}")


@covers("SEC-2")
@examples(30)
@given(owners=owner_families(2, 5), layout=st.sampled_from(NAIVE_LAYOUTS), data=st.data())
def test_lookalike_owner_keys_never_share_a_record(harness: Harness, owners: list[str], layout: Layout, data: st.DataObject) -> None:
    name, key_of, _prefix_of = layout
    keys = list(dict.fromkeys(k for k in (key_of(owner, "1") for owner in owners) if is_valid_key(k)))
    with harness.fresh_backend() as (backend, _clock):
        expected: dict[str, VersionedRecord | None] = dict(_stored(backend, keys, "SEC-2"))
        steps = data.draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(["put", "cas", "delete"])), max_size=6),
                          label="writes")
        for serial, (key, how) in enumerate(steps, start=100):
            data_bytes = record_bytes({"rewrite": serial}, None, serial=serial)
            current = expected[key]
            if how == "delete":
                backend.delete(key)
                expected[key] = None
            elif how == "cas" and current is not None:
                backend.put_if_version(key, data_bytes, current.version)
                expected[key] = backend.get(key)
            else:
                backend.put(key, data_bytes)
                expected[key] = backend.get(key)
            for other, record in expected.items():
                if other == key:
                    continue
                what = f"layout {name}: after {how} of {key!r}, the look-alike key {other!r}"
                if record is None:
                    expect_error("SEC-2", NotFoundError, lambda: backend.get(other), f"{what} (deleted earlier)")
                else:
                    got = backend.get(other)
                    require("SEC-2", (got.data, got.version) == (record.data, record.version),
                            f"{what} changed: version {record.version} -> {got.version}, data "
                            f"{'unchanged' if got.data == record.data else 'replaced'}")


#: Byte lengths where engines and drivers cut keys (memcached 250, MySQL utf8mb4 index 767, DynamoDB 1,024).
CUT_POINTS = (64, 128, 250, 255, 256, 512, 767, 1000, 1023)

#: Keys a C string, a trim or a control-character filter turns into the first of the pair.
CUT_OR_TRIMMED = (
    ("a", "a\x00b"), ("a", "a\x00"), ("a", "a "), ("a", " a"), ("a", "a\n"), ("a", "a\t"), ("a", "a\r\n"), ("a", "a\x7f"),
    ("a", "a\u200b"), ("a", "\ufeffa"), ("a", "a\x1b[0m"), ("a/b", "a/b/"), ("a", "a\u00a0"),
)


@covers("SEC-2")
def test_keys_are_never_cut_or_trimmed(harness: Harness) -> None:
    pairs = [(f"p{n}:{a}", f"p{n}:{b}") for n, (a, b) in enumerate(CUT_OR_TRIMMED)]
    for width in CUT_POINTS:
        stem = f"q{width}:" + "é" * width
        shared = stem.encode("utf-8")[:width].decode("utf-8", errors="ignore")
        pairs.append((shared + "A", shared + "B"))
        pairs.append((shared, shared + "C"))
    with harness.fresh_backend() as (backend, _clock):
        for first, second in pairs:
            records = _stored(backend, [first, second], "SEC-2")
            backend.delete(second)
            got = backend.get(first)
            require("SEC-2", got.data == records[first].data,
                    f"deleting {second!r:.60} ({len(second.encode())} bytes) took {first!r:.60} ({len(first.encode())} bytes) with it")
            expect_error("SEC-2", NotFoundError, lambda: backend.get(second), f"get({second!r:.60}) after deleting it")
        listed = {k for k, _ in backend.list_by_prefix("")}
        lost = [first for first, _ in pairs if first not in listed]
        require("SEC-2", not lost, f"{len(lost)} keys came back altered or missing from the listing, e.g. {lost[:2]!r:.120}")
