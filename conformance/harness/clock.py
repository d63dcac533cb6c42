"""The injected clock: every TTL rule is tested by moving time, never by sleeping."""

from __future__ import annotations

import threading

#: 2027-01-15T08:00:00Z: a whole millisecond, far from any epoch edge, the same in every run.
FAKE_EPOCH = 1_800_000_000.0


class FakeClock:
    """A zero-argument callable returning POSIX seconds, like ``time.time``, that only moves when told.

    Times are kept in whole milliseconds so a backend comparing at millisecond resolution
    and one comparing floats reach the same verdict (SPEC BK-15).
    """

    def __init__(self, start: float = FAKE_EPOCH) -> None:
        self._millis = round(start * 1000)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._millis / 1000

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (rounded to the millisecond); return the new time."""
        if seconds < 0:
            raise ValueError("the clock never goes backwards")
        with self._lock:
            self._millis += round(seconds * 1000)
            return self._millis / 1000

    def set(self, posix_seconds: float) -> None:
        """Jump to an instant no earlier than now."""
        millis = round(posix_seconds * 1000)
        with self._lock:
            if millis < self._millis:
                raise ValueError("the clock never goes backwards")
            self._millis = millis
