"""Hypothesis strategies shared by the suite, the machines and the kit's own tests."""

from conformance.strategies.keys import (
    hostile_keys,
    is_valid_key,
    key_families,
    keys,
    long_keys,
    plain_keys,
    prefix_candidates,
    prefixes_of,
    variants,
)
from conformance.strategies.records import (
    ABSENT,
    FAR_FUTURE,
    FAR_PAST,
    expiry_offsets,
    json_values,
    other_versions,
    payloads,
    record_bytes,
    records,
    wall_expiries,
)

__all__ = [
    "ABSENT",
    "FAR_FUTURE",
    "FAR_PAST",
    "expiry_offsets",
    "hostile_keys",
    "is_valid_key",
    "json_values",
    "key_families",
    "keys",
    "long_keys",
    "other_versions",
    "payloads",
    "plain_keys",
    "prefix_candidates",
    "prefixes_of",
    "record_bytes",
    "records",
    "variants",
    "wall_expiries",
]
