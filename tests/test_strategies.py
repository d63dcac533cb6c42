"""The kit's generators produce what the SPEC says the kit sends, and nothing a backend may refuse."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import MAX_KEY_BYTES, canonical_json, expires_at, validate_envelope
from conformance.strategies import (
    ABSENT,
    key_families,
    keys,
    long_keys,
    prefix_candidates,
    record_bytes,
    records,
    variants,
)
from conformance.strategies.hostile import (
    NON_JSON,
    SHAPES,
    bomb,
    exact_floats,
    exact_integers,
    hidden,
    same_number,
)
from conformance.strategies.owners import is_usable_owner, owner_families, owner_pairs
from conformance.taskstore.values import check_value


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


# ---------------------------------------------------------------- security generators (SEC clauses)

@settings(max_examples=100)
@given(family=owner_families())
def test_owner_families_are_distinct_usable_lookalikes(family: list[str]) -> None:
    assert len(family) == len(set(family)) >= 2
    assert all(is_usable_owner(owner) for owner in family)


@settings(max_examples=50)
@given(pair=owner_pairs())
def test_owner_pairs_are_two_usable_owners(pair: tuple[str, str]) -> None:
    owner, intruder = pair
    assert owner != intruder and is_usable_owner(owner) and is_usable_owner(intruder)


def _depth(value: object) -> int:
    depth = 0
    while isinstance(value, (list, dict)):
        depth += 1
        value = value[0] if isinstance(value, list) else value["k"]
    return depth


def test_bombs_have_exactly_their_depth_without_recursion() -> None:
    for shape in SHAPES:
        assert _depth(bomb(200_000, shape)) == 200_000
        assert _depth(bomb(0, shape)) == 0


@settings(max_examples=100)
@given(number=st.one_of(exact_integers(), exact_floats()))
def test_exact_numbers_are_values_a_store_must_keep(number: float) -> None:
    check_value(number, "v", max_depth=10, max_string_bytes=64)
    assert same_number(number, number)


def test_same_number_tells_types_and_zero_signs_apart() -> None:
    assert not same_number(1, 1.0) and not same_number(0.0, -0.0) and not same_number(True, 1)
    assert same_number(2**64 - 1, 2**64 - 1) and same_number(5e-324, 5e-324)


@settings(max_examples=60)
@given(data=st.data())
def test_hidden_poison_stays_inside_the_value(data: st.DataObject) -> None:
    name, make = data.draw(st.sampled_from(NON_JSON))
    poison = make()
    value = data.draw(hidden(poison))
    stack, found = [value], False
    while stack:
        item = stack.pop()
        found = found or item is poison
        if isinstance(item, list) and item is not poison:
            stack.extend(item)
        elif isinstance(item, dict) and item is not poison:
            stack.extend(item.values())
    assert found, f"{name} is not inside {value!r}"
