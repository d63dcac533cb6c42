"""Running one KV operation against a backend and judging it against the model, naming the clause."""

from __future__ import annotations

from typing import Any

from conformance.contract.backend import VersionedRecord
from conformance.contract.errors import StorageError
from conformance.models.expectation import Expectation
from conformance.models.kv import KVOperation, Outcome, Returned, observe
from conformance.spec import ContractViolation


def invoke(backend: Any, op: KVOperation) -> Outcome:
    """Call the method ``op`` names on a (sync) backend and observe what happened."""
    try:
        result = op.apply(backend)
    except StorageError as error:
        return observe(error=error)
    return observe(result)


def refine(op: KVOperation, expectation: Expectation, outcome: Outcome) -> str:
    """The most specific clause a mismatch breaks: same versions but other bytes is a round-trip failure."""
    if isinstance(outcome, Returned) and len(expectation.allowed) == 1 and isinstance(expectation.allowed[0], Returned):
        want, got = expectation.allowed[0].value, outcome.value
        if isinstance(want, VersionedRecord) and isinstance(got, VersionedRecord) and want.version == got.version:
            return "BK-11"
        if isinstance(want, tuple) and isinstance(got, tuple) and [(k, r.version) for k, r in want] == [(k, r.version) for k, r in got]:
            return "BK-11"
    return expectation.clause


def require_record(clause: str, got: VersionedRecord, want: VersionedRecord, message: str) -> None:
    """``got`` is ``want``; the same version with other bytes is a round-trip failure (BK-11), whichever rule read it."""
    if got == want:
        return
    same_version = isinstance(got, VersionedRecord) and got.version == want.version
    raise ContractViolation("BK-11" if same_version else clause, message + ("; the bytes differ from those written" if same_version else ""))


def diff_listing(expected: dict[str, VersionedRecord], listed: list[tuple[str, VersionedRecord]]) -> str | None:
    """Explain how a full listing differs from what the model holds, or None if it does not."""
    seen: dict[str, VersionedRecord] = {}
    problems: list[str] = []
    for key, record in listed:
        if key in seen:
            problems.append(f"key {key!r} listed twice")
        seen[key] = record
    for key in sorted(set(seen) - set(expected)):
        problems.append(f"lists {key!r} (v{seen[key].version}), which holds no live record")
    for key in sorted(set(expected) - set(seen)):
        problems.append(f"omits {key!r} (v{expected[key].version})")
    for key in sorted(set(seen) & set(expected)):
        if seen[key] != expected[key]:
            want, got = expected[key], seen[key]
            what = "other bytes" if want.version == got.version else f"v{got.version} instead of v{want.version}"
            problems.append(f"lists {key!r} with {what}")
    return "; ".join(problems[:5]) if problems else None
