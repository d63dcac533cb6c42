"""Records as a backend sees them: canonical JSON with an expiry, a creation time and a payload.

Payloads reach for what breaks storage: non-ASCII text, escapes, big integers, large
blobs. Every record the machines write also carries a serial number, so two writes
never produce the same bytes and a stale read always shows which write it saw.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from conformance.contract.record import canonical_json, format_timestamp

#: Expiries used when the target does not take the kit's clock: unambiguous against any wall clock.
FAR_PAST = 946_684_800.0  # 2000-01-01T00:00:00Z
FAR_FUTURE = 7_258_118_400.0  # 2200-01-01T00:00:00Z

#: Marks a record without an ``expiresAt`` field at all (as opposed to ``null``).
ABSENT = "absent"

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
    st.sampled_from(['"', "\\", "\u0000", "</script>", "'; DROP TABLE tasks; --", "${jndi}", "{{x}}", "\u2028"]),
)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values, small and nested."""
    return st.recursive(
        _scalars,
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_text, children, max_size=4)),
        max_leaves=max_leaves,
    )


def payloads() -> st.SearchStrategy[Any]:
    """A record's opaque content: usually small, sometimes a blob of up to 256 KiB of multi-byte text."""
    blob = st.builds(lambda n, ch: ch * n, st.integers(min_value=1_000, max_value=64_000), st.sampled_from(["x", "é", "€", "🔑"]))
    return st.one_of(json_values(), json_values(), json_values(), blob)


def record_bytes(payload: Any, expires_at: float | str | None, serial: int = 0, created_at: float | None = None) -> bytes:
    """The canonical bytes of a record with the given expiry (POSIX seconds, None for null, ABSENT for no field)."""
    document: dict[str, Any] = {"payload": payload, "serial": serial}
    if created_at is not None:
        document["task"] = {"createdAt": format_timestamp(created_at)}
    if expires_at != ABSENT:
        document["expiresAt"] = None if expires_at is None else format_timestamp(float(expires_at))
    return canonical_json(document)


def expiry_offsets() -> st.SearchStrategy[float | str | None]:
    """Expiry relative to now, in seconds at millisecond steps, or no expiry (null or absent field)."""
    return st.one_of(
        st.none(),
        st.just(ABSENT),
        st.integers(min_value=-5_000, max_value=5_000).map(lambda ms: ms / 1000),
        st.integers(min_value=-86_400, max_value=86_400).map(float),
    )


def wall_expiries() -> st.SearchStrategy[float | str | None]:
    """Expiries for a backend on the wall clock: certainly past, certainly future, or none."""
    return st.sampled_from([FAR_PAST, FAR_FUTURE, None, ABSENT])


def records(expiries: st.SearchStrategy[float | str | None] | None = None) -> st.SearchStrategy[bytes]:
    """Whole records with absolute expiries (wall-clock safe by default)."""
    return st.builds(
        lambda payload, expiry, serial: record_bytes(payload, expiry, serial, created_at=FAR_PAST),
        payloads(),
        expiries if expiries is not None else wall_expiries(),
        st.integers(min_value=0, max_value=2**31),
    )


def other_versions(current: int) -> st.SearchStrategy[int]:
    """Versions a stale or confused writer might send: anything but ``current``."""
    return st.one_of(
        st.integers(min_value=-2, max_value=current + 3),
        st.sampled_from([0, 2**31, 2**63 - 1]),
    ).filter(lambda v: v != current)
