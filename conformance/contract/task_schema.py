"""What a task looks like on the wire and in storage, and which JSON values a task may hold.

Three jobs, all about shape: the JSON Schemas (the MCP ``Task`` object and the stored
record), the codec between ``TaskRecord`` and record bytes, and the validation of values
a caller asks to store. Values are validated by an iterative walk that stops one level past
the depth limit, so a value nested 100,000 deep is refused with VariableValidationError
before any recursive code (``json.dumps``, a parser on the read path) ever sees it: the
store never writes a record it could not read back (SPEC TS-11, TS-13).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import jsonschema

from conformance.contract.record import TIMESTAMP_PATTERN, canonical_json, format_timestamp, parse_timestamp
from conformance.contract.task import TaskRecord, TaskStatus
from conformance.contract.task_errors import VariableSizeExceededError, VariableValidationError

#: The record layout version written in every record (``format``), so a later layout can migrate.
RECORD_FORMAT = 1

#: Task ids are uuid4 hex: 32 lowercase hex digits.
TASK_ID_PATTERN = r"^[0-9a-f]{32}$"

#: Integers outside this range are refused: beyond 64 bits many JSON readers lose precision or
#: fail (and Python's own parser refuses integers of more than 4,300 digits), which would make
#: the record unreadable for them (SPEC TS-11).
MIN_INTEGER = -(2**63)
MAX_INTEGER = 2**64 - 1

_TS = {"type": "string", "format": "date-time"}

#: The MCP 2025-11-25 ``Task`` object, exactly as ``TaskRecord.to_wire`` emits it.
TASK_WIRE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:task-storage-conformance:mcp-task",
    "title": "MCP Task (protocol revision 2025-11-25)",
    "type": "object",
    "required": ["taskId", "status", "createdAt", "lastUpdatedAt", "ttl"],
    "properties": {
        "taskId": {"type": "string", "minLength": 1},
        "status": {"enum": [s.value for s in TaskStatus]},
        "statusMessage": {"type": "string"},
        "createdAt": _TS,
        "lastUpdatedAt": _TS,
        "ttl": {"description": "Milliseconds from creation; null: unlimited.", "type": ["integer", "null"], "minimum": 0},
        "pollInterval": {"type": "integer", "minimum": 0},
    },
    "additionalProperties": False,
}


def _embedded(schema: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("$schema", "$id")}


#: The stored record GenericTaskStore writes (canonical JSON). It satisfies RECORD_ENVELOPE_SCHEMA:
#: the top-level ``expiresAt`` and ``task.createdAt`` are the only fields a backend may read.
TASK_RECORD_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:task-storage-conformance:task-record",
    "title": "Task record as stored by GenericTaskStore",
    "$defs": {"task": _embedded(TASK_WIRE_SCHEMA)},
    "type": "object",
    "required": ["format", "expiresAt", "ownerId", "requestMethod", "task", "variables", "pending"],
    "properties": {
        "format": {"const": RECORD_FORMAT},
        "expiresAt": {"oneOf": [{"type": "null"}, {"type": "string", "pattern": TIMESTAMP_PATTERN}]},
        "ownerId": {"type": "string"},
        "requestMethod": {"type": "string"},
        "task": {
            "allOf": [
                {"$ref": "#/$defs/task"},
                {
                    "required": ["pollInterval"],
                    "properties": {
                        "taskId": {"type": "string", "pattern": TASK_ID_PATTERN},
                        "createdAt": {"type": "string", "pattern": TIMESTAMP_PATTERN},
                        "lastUpdatedAt": {"type": "string", "pattern": TIMESTAMP_PATTERN},
                    },
                },
            ]
        },
        "variables": {"type": "object"},
        "result": {
            "description": "Present exactly when the task holds a result; the result may be null.",
            "type": "object",
            "required": ["value"],
            "properties": {"value": {}},
            "additionalProperties": False,
        },
        "pending": {"description": "True only between a create's write and its quota confirmation.", "type": "boolean"},
    },
    "additionalProperties": False,
}

_WIRE_VALIDATOR = jsonschema.Draft202012Validator(TASK_WIRE_SCHEMA, format_checker=jsonschema.FormatChecker())
_RECORD_VALIDATOR = jsonschema.Draft202012Validator(TASK_RECORD_SCHEMA)


def _first_error(validator: jsonschema.Draft202012Validator, document: Any) -> str | None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    path = "/".join(str(p) for p in errors[0].absolute_path)
    return f"at /{path}: {errors[0].message}"


def validate_task_wire(document: Any) -> None:
    """Raise ValueError unless ``document`` is an MCP Task object (TASK_WIRE_SCHEMA)."""
    problem = _first_error(_WIRE_VALIDATOR, document)
    if problem:
        raise ValueError(f"not an MCP Task: {problem}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_record_document(data: bytes) -> dict[str, Any]:
    """Parse and schema-check record bytes; ValueError for anything a store did not write."""
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"record is not UTF-8 JSON: {type(exc).__name__}") from exc
    problem = _first_error(_RECORD_VALIDATOR, document)
    if problem:
        raise ValueError(f"record does not follow TASK_RECORD_SCHEMA: {problem}")
    return document


# ---------------------------------------------------------------- codec


def encode_record(record: TaskRecord, *, pending: bool = False) -> bytes:
    """The canonical bytes stored for ``record`` (its ``version`` is the backend's, not stored)."""
    document: dict[str, Any] = {
        "format": RECORD_FORMAT,
        "expiresAt": None if record.expires_at is None else format_timestamp(record.expires_at),
        "ownerId": record.owner_id,
        "requestMethod": record.request_method,
        "task": record.to_wire(),
        "variables": record.variables,
        "pending": pending,
    }
    if record.has_result:
        document["result"] = {"value": record.result}
    return canonical_json(document)


def decode_record(data: bytes, version: int) -> tuple[TaskRecord, bool]:
    """The record in ``data`` and whether it is still pending; ValueError if it is not a task record."""
    document = load_record_document(data)
    task = document["task"]
    expires = document["expiresAt"]
    record = TaskRecord(
        task_id=task["taskId"],
        owner_id=document["ownerId"],
        request_method=document["requestMethod"],
        status=TaskStatus(task["status"]),
        status_message=task.get("statusMessage"),
        created_at=parse_timestamp(task["createdAt"]),
        last_updated_at=parse_timestamp(task["lastUpdatedAt"]),
        ttl=task["ttl"],
        poll_interval=task["pollInterval"],
        expires_at=None if expires is None else parse_timestamp(expires),
        variables=document["variables"],
        has_result="result" in document,
        result=document["result"]["value"] if "result" in document else None,
        version=version,
    )
    return record, document["pending"]


# ---------------------------------------------------------------- values


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
                stack.extend((child, depth + 1, where + (index,)) for index, child in enumerate(item))
                continue
            for key, child in item.items():
                if not isinstance(key, str):
                    raise VariableValidationError(what, "type", "object keys must be strings", where)
                check_string(key, what, max_string_bytes, where + (key,))
                stack.append((child, depth + 1, where + (key,)))
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
