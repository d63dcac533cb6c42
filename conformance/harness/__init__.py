"""Driving a target from synchronous test code: loop thread, clock, timeouts, answer checks."""

from conformance.harness.clock import FakeClock
from conformance.harness.answers import BACKEND_RULES, STORE_RULES
from conformance.harness.guard import AnswerRules, Blocking, Checked, CheckedBackend, SyncBackend, SyncStore
from conformance.harness.harness import Harness, wall_clock
from conformance.harness.runner import LEDGER, LoopRunner
from conformance.harness.target import Target, TargetError, load_target

__all__ = [
    "BACKEND_RULES",
    "LEDGER",
    "AnswerRules",
    "Blocking",
    "Checked",
    "CheckedBackend",
    "FakeClock",
    "Harness",
    "LoopRunner",
    "STORE_RULES",
    "SyncBackend",
    "SyncStore",
    "Target",
    "TargetError",
    "load_target",
    "wall_clock",
]
