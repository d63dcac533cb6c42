"""What a task looks like on the wire, and the numbers a task's values may hold.

The MCP ``Task`` object every task store answers with (SPEC TS-21) and the integer range a
stored value may use (SPEC TS-11): what an author of a task store needs to know, whatever
their store writes to storage.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from conformance.contract.task import TaskStatus

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

_WIRE_VALIDATOR = jsonschema.Draft202012Validator(TASK_WIRE_SCHEMA, format_checker=jsonschema.FormatChecker())


def first_schema_error(validator: jsonschema.Draft202012Validator, document: Any) -> str | None:
    """The first problem by path, so a message names one field, the same one on every run."""
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    path = "/".join(str(p) for p in errors[0].absolute_path)
    return f"at /{path}: {errors[0].message}"


def validate_task_wire(document: Any) -> None:
    """Raise ValueError unless ``document`` is an MCP Task object (TASK_WIRE_SCHEMA)."""
    problem = first_schema_error(_WIRE_VALIDATOR, document)
    if problem:
        raise ValueError(f"not an MCP Task: {problem}")
