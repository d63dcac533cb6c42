"""The kit's task store: every task rule over any StorageBackend.

``pytest --backend`` runs the task-store suite through it, so a backend is judged by what
the layer above it feels. It depends on the contract only; its record codec and value checks
are its own business, not something a backend author implements.
"""

from conformance.taskstore.codec import (
    TASK_RECORD_SCHEMA,
    decode_record,
    encode_record,
    load_record_document,
)
from conformance.taskstore.generic import GenericTaskStore, owner_prefix, task_key

__all__ = [
    "TASK_RECORD_SCHEMA",
    "GenericTaskStore",
    "decode_record",
    "encode_record",
    "load_record_document",
    "owner_prefix",
    "task_key",
]
