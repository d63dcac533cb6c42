"""What a backend declares about itself, in one object, so opting out is explicit and visible.

Modelled on SQLAlchemy's dialect requirements, but declared by the backend as data
instead of a subclass of rules: the kit reads ``conformance_capabilities`` from the
factory (or the instance it returns) and adapts its oracle, never its verdicts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Every backend must accept records at least this large unless it declares less (BK-14).
MIN_RECORD_BYTES = 4 * 1024 * 1024

#: The event loops the kit can run a backend on.
KNOWN_LOOPS = frozenset({"asyncio", "trio"})


class ExpiredRecords(enum.Enum):
    """How a backend treats a record whose expiry has passed but that is not cleaned up yet."""

    #: Expired records behave like live ones until ``cleanup_expired`` removes them.
    KEPT_UNTIL_CLEANUP = "kept_until_cleanup"
    #: Expired records are absent to every operation at once (native engine expiry).
    HIDDEN = "hidden"


@dataclass(frozen=True)
class Capabilities:
    """A backend's declared behaviour where the SPEC allows a choice."""

    expired_records: ExpiredRecords = ExpiredRecords.KEPT_UNTIL_CLEANUP
    #: The largest record the engine stores; None means at least MIN_RECORD_BYTES.
    max_record_bytes: int | None = None
    #: Event loops the backend runs on; an asyncio-only driver declares {"asyncio"}.
    loops: frozenset[str] = KNOWN_LOOPS
    #: SHOULD or MAY clauses the backend knowingly does not meet, with the reason.
    waivers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.loops) - KNOWN_LOOPS
        if unknown or not self.loops:
            raise ValueError(f"loops must be a non-empty subset of {sorted(KNOWN_LOOPS)}, got {sorted(self.loops)}")
        if self.max_record_bytes is not None and self.max_record_bytes <= 0:
            raise ValueError("max_record_bytes must be positive")

    @property
    def record_limit(self) -> int:
        """The record size the kit holds the backend to."""
        return self.max_record_bytes if self.max_record_bytes is not None else MIN_RECORD_BYTES


def capabilities_of(*candidates: object) -> Capabilities:
    """The first ``conformance_capabilities`` declared on the candidates, or the defaults."""
    for candidate in candidates:
        declared = getattr(candidate, "conformance_capabilities", None)
        if declared is None:
            continue
        if not isinstance(declared, Capabilities):
            raise TypeError(
                f"conformance_capabilities must be a conformance.Capabilities, got {type(declared).__name__}"
            )
        return declared
    return Capabilities()
