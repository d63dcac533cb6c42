"""Checking concurrent histories: a recorder, linear-time anomaly checks, a linearizability search, timelines.

::

    from conformance.checker import HistoryRecorder, check
    rec = HistoryRecorder()
    ...  # concurrent clients: token = rec.invoke(client, op); rec.respond(token, outcome) or rec.unknown(token)
    verdict = check(rec.history(), KVModel(), budget=5.0)
    verdict.require()  # raises ContractViolation for a violation, and for an undecided verdict (CC-8)

Layout: ``search`` decides one part of a history against any model's transitions;
``adapter`` declares what else the checker may know of a model (partition key, default
clause, projection, cheap checks), ``kv_model`` and ``task_model`` declare it for the two
models and ``registry`` finds it by the model's type; ``linearizability.check`` drives it all.

Clauses: SPEC.md, section Concurrency (CC-1 to CC-8).
"""

from conformance.checker.adapter import ModelAdapter
from conformance.checker.cheap import (
    Anomaly,
    cas_winners,
    cheap_checks,
    duplicate_versions,
    future_reads,
    unwritten_reads,
)
from conformance.checker.history import NEVER, UNKNOWN, Entry, History, HistoryRecorder
from conformance.checker.kv_model import kv_key
from conformance.checker.linearizability import (
    LINEARIZABLE,
    UNDECIDED,
    VIOLATION,
    Verdict,
    check,
)
from conformance.checker.registry import adapter_for, register
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
    "ModelAdapter",
    "Verdict",
    "adapter_for",
    "cas_winners",
    "cheap_checks",
    "check",
    "duplicate_versions",
    "future_reads",
    "kv_key",
    "register",
    "to_html",
    "to_text",
    "unwritten_reads",
]
