"""Checking concurrent histories: a recorder, linear-time anomaly checks, a linearizability search, timelines.

::

    from conformance.checker import HistoryRecorder, check
    rec = HistoryRecorder()
    ...  # concurrent clients: token = rec.invoke(client, op); rec.respond(token, outcome) or rec.unknown(token)
    verdict = check(rec.history(), KVModel(), budget=5.0)
    verdict.require()  # raises ContractViolation for a violation, and for an undecided verdict (CC-8)

Clauses: SPEC.md, section Concurrency (CC-1 to CC-8).
"""

from conformance.checker.cheap import (
    Anomaly,
    cas_winners,
    cheap_checks,
    duplicate_versions,
    future_reads,
    unwritten_reads,
)
from conformance.checker.history import NEVER, UNKNOWN, Entry, History, HistoryRecorder
from conformance.checker.linearizability import (
    LINEARIZABLE,
    UNDECIDED,
    VIOLATION,
    Verdict,
    check,
    kv_key,
)
from conformance.checker.timeline import to_html, to_text

__all__ = [
    "LINEARIZABLE",
    "NEVER",
    "UNDECIDED",
    "UNKNOWN",
    "VIOLATION",
    "Anomaly",
    "Entry",
    "History",
    "HistoryRecorder",
    "Verdict",
    "cas_winners",
    "cheap_checks",
    "check",
    "duplicate_versions",
    "future_reads",
    "kv_key",
    "to_html",
    "to_text",
    "unwritten_reads",
]
