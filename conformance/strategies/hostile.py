"""Values an attacker sends a task store: injection text, record look-alike names, exact numbers, non-JSON, bombs.

Everything here is data the store must either keep exactly or refuse cleanly (SPEC SEC-5 to
SEC-8). Bombs are built iteratively: a value nested a million levels deep must never be made,
printed or compared by recursive code, in the kit as in the store.
"""

from __future__ import annotations

import datetime
import decimal
import math
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from conformance.contract.task_schema import MAX_INTEGER, MIN_INTEGER

#: The top-level fields of a stored record, and of the task inside it (TASK_RECORD_SCHEMA).
RECORD_FIELD_NAMES: tuple[str, ...] = (
    "ownerId", "expiresAt", "task", "taskId", "status", "statusMessage", "version", "pending", "format", "result",
    "variables", "requestMethod", "createdAt", "lastUpdatedAt", "ttl", "pollInterval", "value",
)

#: Text that means something to JSON, JavaScript, document stores, SQL, templates, shells or loggers.
INJECTION_TEXTS: tuple[str, ...] = (
    '"', "\\", '\\"', "\x00", "a\x00b", "\u2028", "\ufeff", "'", "`", "__proto__", "constructor", "prototype",
    "$where", "$set", "$gt", "{\"$ne\": null}", '"},"ownerId":"mallory', '","expiresAt":"9999-12-31T23:59:59.999Z',
    "'; DROP TABLE tasks; --", "1 OR 1=1", "%", "_", "*", "{{7*7}}", "${jndi:ldap://x}", "$(id)", "\r\nSet-Cookie: x",
    "../../etc/passwd", "task:mallory:", "tasks/", "null", "true", "NaN", "",
)


def injection_names() -> st.SearchStrategy[str]:
    """Variable names and object keys: the record's own field names and injection text."""
    return st.one_of(st.sampled_from(RECORD_FIELD_NAMES), st.sampled_from(INJECTION_TEXTS))


def injection_texts() -> st.SearchStrategy[str]:
    """Strings for values, messages and request methods (all short enough for the seeds' string limit)."""
    return st.one_of(
        st.sampled_from(INJECTION_TEXTS),
        st.sampled_from(RECORD_FIELD_NAMES),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    )


def injection_values(max_leaves: int = 6) -> st.SearchStrategy[Any]:
    """Plain JSON values (shallow) whose strings and keys are injection text and record field names."""
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-(2**31), 2**31), injection_texts())
    return st.recursive(
        leaves,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(injection_names(), inner, max_size=3)),
        max_leaves=max_leaves,
    )


#: Integers where a double, a 63-bit signed type or a careless encoder goes wrong.
EDGE_INTEGERS: tuple[int, ...] = (
    2**53 - 1, 2**53, 2**53 + 1, -(2**53) - 1, 2**63 - 1, 2**63, MAX_INTEGER, MIN_INTEGER, MIN_INTEGER + 1, 10**18 + 1,
)
#: Floats where shortest round-trip formatting, sign of zero or the exponent range matter.
EDGE_FLOATS: tuple[float, ...] = (
    -0.0, 0.1, 1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2.0**53 + 2, 1e16, 123456789.12345678,
)


def exact_integers() -> st.SearchStrategy[int]:
    """Every integer a store must keep exactly (SPEC TS-11: 64 bits), weighted to the edges."""
    return st.one_of(st.sampled_from(EDGE_INTEGERS), st.integers(MIN_INTEGER, MAX_INTEGER))


def exact_floats() -> st.SearchStrategy[float]:
    """Every finite float, subnormals and -0.0 included, weighted to the edges."""
    return st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False, allow_infinity=False))


def same_number(a: object, b: object) -> bool:
    """Equal as numbers of the same type, bit for bit for floats (so -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and isinstance(b, float):
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b
    return a == b


class _Opaque:
    """An object with no JSON form, as a careless caller passes one."""

    def __repr__(self) -> str:
        return "<object>"


#: Values with no exact JSON form, each made fresh (name, factory) so mutable ones are never shared.
NON_JSON: tuple[tuple[str, Callable[[], Any]], ...] = (
    ("NaN", lambda: float("nan")),
    ("Infinity", lambda: float("inf")),
    ("-Infinity", lambda: float("-inf")),
    ("bytes", lambda: b"x"),
    ("bytearray", lambda: bytearray(b"x")),
    ("a set", lambda: {1}),
    ("a frozenset", lambda: frozenset({"a"})),
    ("a tuple", lambda: (1, 2)),
    ("a complex number", lambda: 1j),
    ("a Decimal", lambda: decimal.Decimal("0.1")),
    ("a datetime", lambda: datetime.datetime(2026, 1, 1)),
    ("an object", _Opaque),
    ("an int key", lambda: {1: "a"}),
    ("a None key", lambda: {None: "a"}),
    ("an integer past 64 bits", lambda: MAX_INTEGER + 1),
)


def hidden(poison: Any) -> st.SearchStrategy[Any]:
    """``poison`` placed somewhere inside a small valid value: a list element or an object member, a few levels down."""
    steps = st.lists(st.tuples(st.booleans(), st.integers(0, 2), injection_names()), max_size=3)

    def wrap(path: list[tuple[bool, int, str]]) -> Any:
        value = poison
        for as_list, position, name in path:
            if as_list:
                siblings: list[Any] = [0, "s", None]
                value = [*siblings[:position], value, *siblings[position:]]
            else:
                value = {"ok": 1, name: value} if name != "ok" else {name: value}
        return value

    return steps.map(wrap)


SHAPES: tuple[str, ...] = ("list", "object", "alternating")


def bomb(depth: int, shape: str = "list", leaf: Any = 0) -> Any:
    """A value ``depth`` containers deep, built without recursion (lists, objects or both alternating)."""
    value = leaf
    for level in range(depth):
        as_list = shape == "list" or (shape == "alternating" and level % 2 == 0)
        value = [value] if as_list else {"k": value}
    return value
