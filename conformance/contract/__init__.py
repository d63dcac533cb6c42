"""The contract a backend author implements: types, errors, record envelope, capabilities."""

from conformance.contract.backend import BACKEND_METHODS, MAX_KEY_BYTES, StorageBackend, VersionedRecord
from conformance.contract.capabilities import (
    MIN_RECORD_BYTES,
    Capabilities,
    ExpiredRecords,
    capabilities_of,
)
from conformance.contract.errors import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    StorageError,
    VersionConflictError,
)
from conformance.contract.record import (
    RECORD_ENVELOPE_SCHEMA,
    canonical_json,
    expires_at,
    format_timestamp,
    is_expired,
    parse_timestamp,
    validate_envelope,
)

__all__ = [
    "BACKEND_METHODS",
    "MAX_KEY_BYTES",
    "MIN_RECORD_BYTES",
    "RECORD_ENVELOPE_SCHEMA",
    "BackendError",
    "Capabilities",
    "CapacityExceededError",
    "ExpiredRecords",
    "NotFoundError",
    "StorageBackend",
    "StorageError",
    "VersionConflictError",
    "VersionedRecord",
    "canonical_json",
    "capabilities_of",
    "expires_at",
    "format_timestamp",
    "is_expired",
    "parse_timestamp",
    "validate_envelope",
]
