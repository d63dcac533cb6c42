"""The records the kit's task store writes: their JSON Schema and the codec to and from ``TaskRecord``.

Only the kit's own store reads these bytes; a backend sees them as opaque data apart from
the envelope (``expiresAt``, ``task.createdAt``) of RECORD_ENVELOPE_SCHEMA.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import jsonschema

from conformance.contract.record import (
    TIMESTAMP_PATTERN,
    canonical_json,
    format_timestamp,
    parse_timestamp,
)
from conformance.contract.task import TaskRecord, TaskStatus
from conformance.contract.task_schema import TASK_WIRE_SCHEMA, first_schema_error

#: The record layout version written in every record (``format``), so a later layout can migrate.
RECORD_FORMAT = 1

#: Task ids are uuid4 hex: 32 lowercase hex digits.
TASK_ID_PATTERN = r"^[0-9a-f]{32}$"


def _embedded(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A schema placed under ``$defs`` without its own identity. Runs once, at import: no mutant of it can run."""
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

_RECORD_VALIDATOR = jsonschema.Draft202012Validator(TASK_RECORD_SCHEMA)

#: Records already read, by the digest of their bytes: the record (its version aside) and whether it is pending.
#: The store reads the same bytes over and over (every create and every listing reads all of the
#: owner's records), and the same bytes always decode to the same record, so each distinct record
#: is parsed and schema-checked once. Bounded: cleared when full; large records are not kept.
_DECODED: dict[bytes, tuple[TaskRecord, bool]] = {}
_REMEMBERED = 16_384
_REMEMBERED_SIZE = 16_384


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def load_record_document(data: bytes) -> dict[str, Any]:
    """Parse and schema-check record bytes; ValueError for anything a store did not write."""
    try:
        document: dict[str, Any] = _DECODER.decode(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"record is not UTF-8 JSON: {type(exc).__name__}") from exc
    problem = first_schema_error(_RECORD_VALIDATOR, document)
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
    """The record in ``data`` and whether it is still pending; ValueError if it is not a task record.

    Every call returns a record of its own: variables and result are fresh containers, so a
    caller that changes them changes nothing the store or another caller holds.
    """
    digest = hashlib.blake2b(data, digest_size=16).digest()
    known = _DECODED.get(digest)
    if known is None:
        known = _decode_document(load_record_document(data))
        if len(data) <= _REMEMBERED_SIZE:
            if len(_DECODED) >= _REMEMBERED:
                _DECODED.clear()
            _DECODED[digest] = known
    record, pending = known
    return replace(record, variables=copy_json(record.variables), result=copy_json(record.result), version=version), pending


def _decode_document(document: dict[str, Any]) -> tuple[TaskRecord, bool]:
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
    )
    return record, document["pending"]


def copy_json(value: Any) -> Any:
    """A copy of a JSON value whose containers are all new (its strings and numbers are immutable).

    Iterative: a record nested as deep as ``json.loads`` reads must copy without a RecursionError.
    """
    if type(value) is not dict and type(value) is not list:
        return value
    copy: Any = {} if type(value) is dict else []
    pending: list[tuple[Any, Any]] = [(value, copy)]
    while pending:
        source, target = pending.pop()
        for name, item in (source.items() if type(source) is dict else enumerate(source)):
            if type(item) is dict or type(item) is list:
                new: Any = {} if type(item) is dict else []
                pending.append((item, new))
            else:
                new = item
            if type(target) is dict:
                target[name] = new
            else:
                target.append(new)
    return copy
