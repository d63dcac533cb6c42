"""The protocol's JSON Schema (``protocol.schema.json``, shipped with the kit), one validator per message."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import jsonschema

#: The protocol version this kit speaks.
PROTOCOL_VERSION = 1


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The whole schema document; every message is one of its ``$defs``."""
    text = resources.files("conformance.wire").joinpath("protocol.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@lru_cache(maxsize=None)
def validator(message: str) -> jsonschema.protocols.Validator:
    """A validator for the message named ``message`` (a ``$defs`` key such as ``reply.backend.put``)."""
    whole = document()
    if message not in whole["$defs"]:
        raise KeyError(f"the protocol defines no message {message!r}")
    validator_class = jsonschema.validators.validator_for(whole)
    return validator_class({"$ref": f"#/$defs/{message}", "$defs": whole["$defs"]})


def first_problem(message: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``message``, in one short line, or None if it is."""
    best = jsonschema.exceptions.best_match(validator(message).iter_errors(value))
    if best is None:
        return None
    where = "/".join(str(part) for part in best.absolute_path)
    return f"{where or 'the message'}: {best.message[:160]}"
