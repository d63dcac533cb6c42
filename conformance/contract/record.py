"""The record envelope: what a backend may read of the bytes it stores, and nothing more.

Records are canonical JSON. A backend may look at the top-level ``expiresAt`` (to expire
records) and ``task.createdAt`` (to index them); everything else is opaque to it.
The helpers here are the one place the kit parses and formats those fields; backend
authors are welcome to import them so their expiry agrees with the kit's to the millisecond.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema

#: RFC 3339 in UTC with a ``Z`` suffix and up to microsecond precision.
TIMESTAMP_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
_TIMESTAMP_RE = re.compile(TIMESTAMP_PATTERN)

#: 9999-12-31T23:59:59.999Z in POSIX milliseconds: the last instant a record timestamp can write.
LATEST_TIMESTAMP_MS = 253_402_300_799_999

#: JSON Schema of the part of a record a backend may rely on (BK-15).
RECORD_ENVELOPE_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "urn:task-storage-conformance:record-envelope",
    "title": "Task record envelope as seen by a StorageBackend",
    "type": "object",
    "properties": {
        "expiresAt": {
            "description": "Instant after which the record is expired; null or absent: never.",
            "oneOf": [{"type": "null"}, {"type": "string", "pattern": TIMESTAMP_PATTERN}],
        },
        "task": {
            "type": "object",
            "properties": {"createdAt": {"type": "string", "pattern": TIMESTAMP_PATTERN}},
        },
    },
}

_ENVELOPE_VALIDATOR = jsonschema.Draft202012Validator(RECORD_ENVELOPE_SCHEMA)


def canonical_json(value: Any) -> bytes:
    """Serialise ``value`` the one way the kit and the store write records.

    Sorted keys, no insignificant whitespace, UTF-8 without escaping non-ASCII, and no
    NaN or Infinity (they are not JSON). Equal values give equal bytes.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def format_timestamp(posix_seconds: float) -> str:
    """Format POSIX seconds as the RFC 3339 UTC form records use, at millisecond precision."""
    millis = round(posix_seconds * 1000)
    moment = datetime.fromtimestamp(millis // 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{millis % 1000:03d}Z"


def parse_timestamp(text: str) -> float:
    """Parse a record timestamp to POSIX seconds; ValueError if it is not the record form."""
    if not isinstance(text, str) or not _TIMESTAMP_RE.match(text):
        raise ValueError(f"not an RFC 3339 UTC timestamp: {text!r}")
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def validate_envelope(data: bytes) -> dict[str, Any]:
    """Decode ``data`` and check it against the envelope schema; raise ValueError if not."""
    try:
        document: dict[str, Any] = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"record is not UTF-8 JSON: {exc}") from exc
    errors = sorted(_ENVELOPE_VALIDATOR.iter_errors(document), key=lambda e: list(e.path))
    if errors:
        raise ValueError(f"record envelope invalid: {errors[0].message}")
    return document


def expires_at(data: bytes) -> float | None:
    """The record's expiry in POSIX seconds, or None if it never expires.

    A record whose expiry cannot be read (not JSON, not an object, a malformed
    timestamp) never expires: a backend must not destroy data it does not understand (BK-16).
    """
    try:
        document: dict[str, Any] = json.loads(data.decode("utf-8"), parse_constant=_not_json)
    except (ValueError, RecursionError):  # not UTF-8, not JSON (NaN included), a number too long to read
        return None
    if not isinstance(document, dict):
        return None
    value = document.get("expiresAt")
    if value is None:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def _not_json(constant: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's extensions, not JSON: a record holding one is unreadable (BK-16)."""
    raise ValueError(f"{constant} is not JSON")


def is_expired(data: bytes, now: float) -> bool:
    """Whether the record is expired at ``now``: strictly past its expiry (BK-15)."""
    deadline = expires_at(data)
    return deadline is not None and now > deadline
