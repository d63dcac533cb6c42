"""Histories of concurrent calls, and a recorder that concurrent tasks or threads write into.

A history is what the linearizability checker judges: for each call, which client made it,
the model operation it was, when it was called and when it returned on ONE logical clock
(integers, strictly increasing over every event of the run), and what it did. A call whose
outcome the kit never learned (a timeout, a cancellation, a transport error) is recorded with
the outcome ``UNKNOWN`` and a return time of +infinity: it may have taken effect at any
instant after its call, or never (SPEC CC-7).

Client ids are labels for the report; the checker does not rely on a client issuing one call
at a time (after an unknown outcome a client usually moves on while its call may still be in
flight).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, final, overload

#: The return time of a call whose outcome is unknown.
NEVER = math.inf


@final
class _Unknown:
    """The outcome of a call that timed out, was cancelled or lost in transport (a singleton)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"

    def describe(self) -> str:
        return "outcome unknown (timed out, cancelled or lost)"


#: The outcome of a call whose effect the kit cannot know: it happened once, or never.
UNKNOWN = _Unknown()


def describe(thing: Any) -> str:
    """An operation's or outcome's own description, or its repr."""
    method = getattr(thing, "describe", None)
    return method() if callable(method) else repr(thing)


@dataclass(frozen=True, eq=False)
class Entry:
    """One call in a history. ``ret`` is ``NEVER`` (+inf) exactly when ``outcome`` is ``UNKNOWN``."""

    client: int
    op: Any
    call: int
    ret: int | float
    outcome: Any

    @property
    def unknown(self) -> bool:
        return self.outcome is UNKNOWN

    def span(self) -> str:
        return f"t{self.call}..{'?' if self.unknown else f't{self.ret}'}"

    def describe(self) -> str:
        """``client 2 get('k') -> returned record v1 b'a' [t3..t7]``."""
        return f"client {self.client} {describe(self.op)} -> {describe(self.outcome)} [{self.span()}]"

    def __repr__(self) -> str:
        return f"Entry(client={self.client}, op={self.op!r}, call={self.call}, ret={self.ret}, outcome={self.outcome!r})"


class History(Sequence[Entry]):
    """Entries ordered by call time; immutable. Build by hand with ``History(entries)`` or from a recorder."""

    __slots__ = ("_entries",)

    def __init__(self, entries: Iterable[Entry] = ()) -> None:
        ordered = tuple(sorted(entries, key=lambda e: e.call))
        seen: set[int | float] = set()
        for entry in ordered:
            if entry.unknown != (entry.ret == NEVER):
                raise ValueError(f"an entry returns at +infinity exactly when its outcome is UNKNOWN: {entry!r}")
            if not entry.call < entry.ret:
                raise ValueError(f"an entry must return after its call: {entry!r}")
            for moment in (entry.call, entry.ret):
                if moment in seen and moment != NEVER:
                    raise ValueError(f"two events at time {moment}: times on the logical clock must be distinct")
                seen.add(moment)
        self._entries = ordered

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> History: ...
    def __getitem__(self, index: int | slice) -> Entry | History:
        if isinstance(index, slice):
            return History(self._entries[index])
        return self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries)

    def __repr__(self) -> str:
        return f"History({list(self._entries)!r})"

    @property
    def entries(self) -> tuple[Entry, ...]:
        return self._entries

    def clients(self) -> list[int]:
        return sorted({e.client for e in self._entries})

    def unknown_count(self) -> int:
        return sum(1 for e in self._entries if e.unknown)

    def where(self, keep: Callable[[Entry], bool]) -> History:
        return History(e for e in self._entries if keep(e))

    def partition(self, key_of: Callable[[Any], Hashable | None]) -> dict[Hashable, History] | None:
        """Split by ``key_of(op)``; None if some operation names no single key (then it cannot be split)."""
        groups: dict[Hashable, list[Entry]] = {}
        for entry in self._entries:
            key = key_of(entry.op)
            if key is None:
                return None
            groups.setdefault(key, []).append(entry)
        return {key: History(group) for key, group in groups.items()}

    def describe(self) -> str:
        return "\n".join(e.describe() for e in self._entries)


class HistoryRecorder:
    """Records calls from concurrent tasks (asyncio, trio) or threads on one logical clock.

    ::

        token = rec.invoke(client, Get("k"))
        try:
            record = await backend.get("k")
        except StorageError as exc:
            rec.respond(token, observe(error=exc))
        except (TimeoutError, Cancelled):
            rec.unknown(token)
        else:
            rec.respond(token, observe(record))

    Calls still pending when ``history()`` is taken are reported as UNKNOWN: they may or may
    not have taken effect.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clock = 0
        self._pending: dict[int, tuple[int, Any]] = {}
        self._done: list[Entry] = []

    def _tick(self) -> int:
        # Caller holds the lock.
        self._clock += 1
        return self._clock

    def invoke(self, client: int, op: Any) -> int:
        """Record a call about to be made; return its token (its call time)."""
        with self._lock:
            token = self._tick()
            self._pending[token] = (client, op)
            return token

    def respond(self, token: int, outcome: Any, op: Any = None) -> None:
        """Record the outcome of a call that returned or raised.

        ``op`` replaces the operation recorded at the call when the answer completes it (a
        create records the id the store assigned).
        """
        if outcome is UNKNOWN:
            self.unknown(token)
            return
        with self._lock:
            client, called = self._take(token)
            self._done.append(Entry(client, called if op is None else op, token, self._tick(), outcome))

    def unknown(self, token: int) -> None:
        """Record that the call's outcome will never be known (timeout, cancellation, lost reply)."""
        with self._lock:
            client, op = self._take(token)
            self._done.append(Entry(client, op, token, NEVER, UNKNOWN))

    def _take(self, token: int) -> tuple[int, Any]:
        try:
            return self._pending.pop(token)
        except KeyError:
            raise ValueError(f"token {token} was never invoked or has already been answered") from None

    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def history(self) -> History:
        """Everything recorded so far; calls still pending count as UNKNOWN."""
        with self._lock:
            entries = list(self._done)
            entries.extend(Entry(c, op, token, NEVER, UNKNOWN) for token, (c, op) in self._pending.items())
        return History(entries)
