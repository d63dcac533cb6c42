"""The kit's generators produce what the SPEC says the kit sends, and nothing a backend may refuse."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import MAX_KEY_BYTES, canonical_json, expires_at, validate_envelope
from conformance.strategies import ABSENT, key_families, keys, long_keys, prefix_candidates, record_bytes, records, variants


@settings(max_examples=200)
@given(key=keys())
def test_every_generated_key_is_one_a_backend_must_accept(key: str) -> None:
    assert key and len(key.encode("utf-8")) <= MAX_KEY_BYTES


@settings(max_examples=50)
@given(family=key_families())
def test_key_families_are_distinct_and_confusable(family: list[str]) -> None:
    assert len(family) == len(set(family)) >= 2
    base = family[0]
    folded = {k.casefold() for k in family}
    normalised = {unicodedata.normalize("NFKC", k) for k in family}
    globbed = [k for k in family if k.startswith(base) and k != base]
    # At least one of the classic confusions maps two distinct family members to one key.
    assert len(folded) < len(family) or len(normalised) < len(family) or globbed


@settings(max_examples=20)
@given(key_list=st.lists(long_keys(), min_size=2, max_size=3, unique=True))
def test_long_keys_share_a_prefix_longer_than_common_truncation(key_list: list[str]) -> None:
    for key in key_list:
        # Cut at a byte width between limit-16 and the limit; a split multi-byte character loses up to 3 more.
        assert MAX_KEY_BYTES - 16 - 3 <= len(key.encode("utf-8")) <= MAX_KEY_BYTES


def test_variants_include_the_lookalikes_naive_backends_merge() -> None:
    found = set(variants("straße:é"))
    assert {"STRASSE:É", "strasse:é", "straße:e\u0301", "straße:é:", "straße:é*", "straße:é%"} <= found


@settings(max_examples=100)
@given(data=records())
def test_generated_records_satisfy_the_envelope_schema(data: bytes) -> None:
    document = validate_envelope(data)
    assert canonical_json(document) == data


def test_record_bytes_expiry_forms() -> None:
    assert expires_at(record_bytes(1, 1_800_000_000.5)) == 1_800_000_000.5
    assert expires_at(record_bytes(1, None)) is None
    assert b"expiresAt" not in record_bytes(1, ABSENT)


@settings(max_examples=50)
@given(family=key_families())
def test_prefixes_include_true_prefixes_and_wildcard_lookalikes(family: list[str]) -> None:
    options = prefix_candidates(family)
    assert "" in options
    assert any(p and any(k.startswith(p) for k in family) for p in options)
    assert any(p.endswith(("*", "%", "_", "?")) and not any(k.startswith(p) for k in family) for p in options)
