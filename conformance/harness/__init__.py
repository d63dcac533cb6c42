"""Driving a target from synchronous test code: loop thread, clock, timeouts, answer checks."""

from conformance.harness.answers import BACKEND_RULES, STORE_RULES
from conformance.harness.clock import FakeClock
from conformance.harness.counters import RunCounters
from conformance.harness.guard import (
    AnswerRules,
    Blocking,
    Checked,
    CheckedBackend,
    CheckedStore,
    SyncBackend,
    SyncStore,
)
from conformance.harness.harness import Harness, StoreOverBackend, wall_clock
from conformance.harness.runner import LoopRunner
from conformance.harness.target import Target, TargetError, load_target

__all__ = [
    "BACKEND_RULES",
    "STORE_RULES",
    "AnswerRules",
    "Blocking",
    "Checked",
    "CheckedBackend",
    "CheckedStore",
    "FakeClock",
    "Harness",
    "LoopRunner",
    "RunCounters",
    "StoreOverBackend",
    "SyncBackend",
    "SyncStore",
    "Target",
    "TargetError",
    "load_target",
    "wall_clock",
]
