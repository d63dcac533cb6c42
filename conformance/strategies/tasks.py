"""Strategies for task-store programs: owners that collide in naive stores, values at small limits.

The machine runs with small limits (``SMALL_LIMITS``) so that a handful of drawn values
reach every boundary: a string one byte over, a value one level too deep, a merge that
only overflows because of what the task already holds.
"""

from __future__ import annotations

from hypothesis import strategies as st

from conformance.contract.record import canonical_json
from conformance.contract.store import StoreConfig
from conformance.contract.task import TaskStatus

SMALL_LIMITS = StoreConfig(
    max_variable_bytes=48,
    max_result_bytes=24,
    default_ttl_ms=600,
    max_ttl_ms=2000,
    max_depth=2,
    max_string_bytes=6,
    max_tasks_per_owner=4,
    default_page_size=2,
    poll_interval_ms=250,
)

#: Owners whose naive keys, prefixes, collations or normal forms collide; "" is anonymous.
OWNERS: tuple[str, ...] = ("alice", "a", "a:b", "A", "ß", "ss", "é/x", "")

#: Well formed, never issued: uuid4 ids carry a 4 in their version digit.
NEVER_ISSUED = "0" * 32

#: Names, some of them the record's own field names (a store that spreads variables into its record breaks on them).
variable_names = st.sampled_from(["x", "y", "zz", "é", "toolong", "task", "status", "result", "format"])

_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([1.5, -0.0, 1 / 3, 2.0**60 + 2**8]),  # floats that need all 17 digits to round-trip
    st.text(alphabet="aé", max_size=3),
    st.sampled_from(["🔑🔑", 2**64, float("nan")]),  # just over the string limit, not 64-bit, not JSON
)

#: JSON-ish values around SMALL_LIMITS: some valid, some one step past a limit.
small_values = st.recursive(
    _leaves, lambda inner: st.one_of(st.lists(inner, max_size=2), st.dictionaries(variable_names, inner, max_size=2)), max_leaves=4
)

#: Merges: names to values, None deleting.
variable_maps = st.dictionaries(variable_names, st.one_of(st.none(), small_values), max_size=3)

#: Statuses as an enum or its wire spelling, and one that is neither.
statuses = st.sampled_from([*TaskStatus, "working", "bogus"])

status_messages = st.one_of(st.none(), st.sampled_from(["ok", "x" * 7]))

request_methods = st.sampled_from(["t/call", "t/call", "t/call", "x" * 7])

#: TTLs around SMALL_LIMITS: default, valid, at and over the maximum, zero.
ttls = st.one_of(st.none(), st.sampled_from([1, 300, 600, 2000, 2001, 0]))


def map_of_exact_size(total: int, max_string: int) -> dict[str, str]:
    """A variables map whose canonical JSON is exactly ``total`` bytes, no string over ``max_string`` bytes."""
    variables: dict[str, str] = {}
    while True:
        name = f"v{len(variables):05d}"
        room = total - len(canonical_json({**variables, name: ""}))
        if room <= max_string:
            variables[name] = "x" * room
            break
        # Leave enough room for the next entry's own overhead.
        variables[name] = "x" * (max_string if room - max_string >= 32 else room - 48)
    if len(canonical_json(variables)) != total:  # pragma: no cover - a builder error, never a verdict
        raise AssertionError("could not build a map of the requested size")
    return variables
