"""What one run counts across its tests: calls into the target, and calls that timed out.

One ``RunCounters`` lives in the pytest session (``config.stash``), handed to each test's
harness; nothing is a module global, so two sessions in one process (pytester) never mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from conformance.harness.recording import CallLog


class CallCounter:
    """Calls into targets per contract since the last ``take``: the cost a run puts on an engine.

    Counted where every call passes (``Checked.invoke``), so a backend's count includes the
    calls the kit's store makes on it. One loop thread per test increments it.
    """

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, contract: str) -> None:
        self.counts[contract] = self.counts.get(contract, 0) + 1

    def take(self) -> dict[str, int]:
        counts, self.counts = self.counts, {}
        return counts


class TimeoutLedger:
    """Calls that timed out in this run, so the plugin can stop a run that keeps hanging."""

    def __init__(self) -> None:
        self.count = 0
        self.last = ""

    def record(self, message: str) -> None:
        self.count += 1
        self.last = message


@dataclass
class RunCounters:
    """The counters of one run."""

    calls: CallCounter = field(default_factory=CallCounter)
    timeouts: TimeoutLedger = field(default_factory=TimeoutLedger)
    #: The current test's calls, for a reproduction of its failure (reset as each test starts).
    log: CallLog = field(default_factory=CallLog)
