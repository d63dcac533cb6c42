"""The protocol's JSON Schema (``protocol.schema.json``, shipped with the kit), one validator per message."""

from __future__ import annotations

import json
from functools import cache, lru_cache
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


@cache
def validator(message: str) -> jsonschema.protocols.Validator:
    """A validator for the message named ``message`` (a ``$defs`` key such as ``reply.backend.put``).

    Its ``$ref``s are resolved once, here: validating every reply of a run through the
    referencing machinery cost a third of the kit's time per call.
    """
    whole = document()
    if message not in whole["$defs"]:
        raise KeyError(f"the protocol defines no message {message!r}")
    validator_class = jsonschema.validators.validator_for(whole)
    return validator_class(_inlined(whole["$defs"][message], whole["$defs"]))


def _inlined(node: Any, definitions: dict[str, Any]) -> Any:
    """``node`` with every ``{"$ref": "#/$defs/NAME"}`` replaced by its definition (the protocol's defs never recurse)."""
    if isinstance(node, dict):
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/") and len(node) == 1:
            return _inlined(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inlined(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inlined(value, definitions) for value in node]
    return node


def first_problem(message: str, value: Any) -> str | None:
    """Why ``value`` is not a valid ``message``, in one short line, or None if it is."""
    checker = validator(message)
    if checker.is_valid(value):  # the common case, without collecting errors
        return None
    best = jsonschema.exceptions.best_match(checker.iter_errors(value))
    if best is None:
        return None
    where = "/".join(str(part) for part in best.absolute_path)
    return f"{where or 'the message'}: {best.message[:160]}"
