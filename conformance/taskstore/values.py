"""Which JSON values a task may hold, and how incoming variables merge into a task's own.

Values are validated by an iterative walk that stops one level past the depth limit, so a
value nested 100,000 deep is refused with VariableValidationError before any recursive code
(``json.dumps``, a parser on the read path) ever sees it: the store never writes a record it
could not read back (SPEC TS-11, TS-13).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from conformance.contract.record import canonical_json
from conformance.contract.task_errors import (
    VariableSizeExceededError,
    VariableValidationError,
)
from conformance.contract.task_schema import MAX_INTEGER, MIN_INTEGER


def json_size(value: Any) -> int:
    """Bytes of the canonical JSON of a value already validated by ``check_value``."""
    return len(canonical_json(value))


def check_string(text: str, what: str, max_bytes: int, path: tuple[object, ...] = ()) -> None:
    """Refuse a string that is not valid Unicode or is longer than ``max_bytes`` in UTF-8."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise VariableValidationError(what, "unicode", "strings must not contain lone surrogates", path) from None
    if size > max_bytes:
        raise VariableValidationError(what, "string", f"a string of {size} UTF-8 bytes exceeds {max_bytes}", path)


def check_value(value: Any, what: str, max_depth: int, max_string_bytes: int, path: tuple[object, ...] = ()) -> None:
    """Refuse a value that is not plain, bounded JSON (SPEC TS-11).

    Depth counts containers: a scalar has depth 0, ``[]`` and ``{"a": 1}`` depth 1,
    ``{"a": {"b": 1}}`` depth 2; keys add nothing. A value of depth ``max_depth`` is
    accepted. Every string, object keys included, is at most ``max_string_bytes`` UTF-8
    bytes. Allowed types: None, bool, int within 64 bits, finite float, str, list, dict
    with str keys. The walk uses an explicit stack and never descends past
    ``max_depth + 1``, so it cannot recurse, loop on a cycle or be slowed by depth.
    """
    stack: list[tuple[Any, int, tuple[object, ...]]] = [(value, 0, path)]
    while stack:
        item, depth, where = stack.pop()
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not MIN_INTEGER <= item <= MAX_INTEGER:
                raise VariableValidationError(what, "number", "integers must fit in 64 bits", where)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise VariableValidationError(what, "number", "NaN and infinities are not JSON", where)
        elif isinstance(item, str):
            check_string(item, what, max_string_bytes, where)
        elif isinstance(item, (list, dict)):
            if depth + 1 > max_depth:
                raise VariableValidationError(what, "depth", f"nesting deeper than {max_depth} levels", where)
            if isinstance(item, list):
                stack.extend((child, depth + 1, (*where, index)) for index, child in enumerate(item))
                continue
            for key, child in item.items():
                if not isinstance(key, str):
                    raise VariableValidationError(what, "type", "object keys must be strings", where)
                check_string(key, what, max_string_bytes, (*where, key))
                stack.append((child, depth + 1, (*where, key)))
        else:
            raise VariableValidationError(what, "type", f"{type(item).__name__} is not a JSON value", where)


def check_variables(variables: Any, max_depth: int, max_string_bytes: int) -> None:
    """Refuse an incoming variables map that is not a dict of str to storable values (None deletes)."""
    if not isinstance(variables, dict):
        raise VariableValidationError("variables", "type", "must be an object mapping names to values")
    for name, value in variables.items():
        if not isinstance(name, str):
            raise VariableValidationError("variables", "type", "variable names must be strings")
        check_string(name, "variables", max_string_bytes, (name,))
        check_value(value, "variables", max_depth, max_string_bytes, (name,))


def merge_variables(current: Mapping[str, Any], incoming: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``incoming`` applied: a None value deletes that name, others replace."""
    merged = dict(current)
    for name, value in incoming.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def check_size(value: Any, what: str, limit: int) -> int:
    """Refuse a (validated) value whose canonical JSON exceeds ``limit`` bytes; return its size."""
    size = json_size(value)
    if size > limit:
        raise VariableSizeExceededError(what, limit, size)
    return size
