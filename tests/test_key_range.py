"""``conformance.key_range``: the byte range the SQLite, Redis and PostgreSQL examples list by (BK-12)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import key_range

#: Keys are Unicode scalar values (no lone surrogates), NUL and the astral planes included.
keys = st.text(st.characters(exclude_categories=["Cs"]), max_size=6)


@settings(max_examples=500)
@given(prefix=keys, key=keys)
def test_a_key_is_in_the_range_exactly_when_it_starts_with_the_prefix(prefix: str, key: str) -> None:
    low, high = key_range(prefix)
    encoded = key.encode("utf-8")
    assert (low <= encoded and (high is None or encoded < high)) == key.startswith(prefix)


@given(key=keys.filter(bool))
def test_a_key_extending_the_prefix_by_any_character_is_in_the_range(key: str) -> None:
    """The bound a ``prefix + "\\uffff"`` scan gets wrong: the next character beyond the BMP."""
    low, high = key_range(key)
    for tail in ("\x00", "\uffff", "\U0001f600", "\U0010ffff"):
        assert high is not None and low <= (key + tail).encode("utf-8") < high


def test_the_empty_prefix_has_no_upper_bound() -> None:
    assert key_range("") == (b"", None)
