"""Schedule control: which client runs next is a choice the kit draws, so races replay and shrink.

A concurrent program's clients are tasks on the test's loop. Left alone, the loop runs
ready tasks first-in first-out, so the same program always takes the same interleaving and
a race that needs another one stays hidden. A ``Schedule`` is a sequence of small integers
drawn by Hypothesis; each time two or more clients are ready to run, the next integer picks
which one runs (0: the one the loop would run anyway). Hypothesis shrinks the sequence
toward zeros, so a failing interleaving shrinks to the smallest deviation from the normal
order, and the seed replays it exactly.

Three mechanisms, by what the loop allows:

* asyncio: the loop's ready queue is swapped, for the length of the program, for one that
  picks among ready *client* steps by the schedule (``steer``). Only client tasks are
  reordered; every other callback (the backend's own helper tasks, thread completions,
  anyio internals) keeps its place, so ordering that asyncio guarantees to them still holds.
  The queue is a private attribute of CPython's loops; on a loop without it the kit falls
  back to the next mechanism and says so in ``Schedule.mechanism``.
* trio (and the fallback): before each call a client passes through as many checkpoints
  as the schedule says (``pause``), shifting where its call starts relative to the others'
  suspensions. Trio's own scheduler randomness is seeded by Hypothesis per example.
* real threads and servers: ``short_switch_interval`` makes the interpreter switch threads
  every microsecond while a program runs, and the suite repeats such programs many times
  within one example (BK-18 probes, CC repeat tests); the violating history is the evidence.

For tiny programs ``every_schedule`` walks every interleaving instead of sampling: each run
records how many clients were ready at each decision, and the next run takes the next
untried choice, depth first, until all are tried or a bound is reached.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

T = TypeVar("T")

#: Checkpoints a client may be held back before a call, where the ready queue cannot be steered: 0, 1 or 2.
DELAYS = 3


class Schedule:
    """Drawn choices, consumed one per decision; past the end every choice is 0 (the normal order)."""

    def __init__(self, choices: Sequence[int] = ()) -> None:
        self.choices = tuple(choices)
        self.position = 0
        #: How many clients were ready at each decision made (for the exhaustive walk and the report).
        self.widths: list[int] = []
        #: What each decision picked (0: the loop's own choice).
        self.picked: list[int] = []
        self.mechanism = "none"

    def pick(self, width: int) -> int:
        """The index (0 .. width-1) of the ready client to run, for a decision among ``width`` clients."""
        choice = self.choices[self.position] if self.position < len(self.choices) else 0
        self.position += 1
        self.widths.append(width)
        self.picked.append(choice % width)
        return choice % width

    def delay(self) -> int:
        """How many checkpoints a client passes before its next call (the trio and fallback mechanism)."""
        return self.pick(DELAYS)

    def describe(self) -> str:
        used = self.choices[: self.position]
        deviations = sum(1 for index in self.picked if index)
        return f"schedule {list(used)} ({self.mechanism}; {deviations} deviation{'s' if deviations != 1 else ''} from the loop's own order)"


class _SteeredReady(collections.deque):  # type: ignore[type-arg]
    """An asyncio ready queue that lets the schedule pick which ready client step runs next.

    ``popleft`` is the only place the loop takes work from the queue. When the work at the
    head is a step of a client task and other client steps are ready too, the schedule picks
    one of them; otherwise the head runs, as usual. A client resumed by a future never
    overtakes a callback queued before it (that order is asyncio's promise to futures). ``detached`` queues forward appends to
    the loop's original queue, so a thread that grabbed this queue just before it was
    swapped back still delivers its callback.
    """

    def __init__(self, items: Any, schedule: Schedule, clients: set[asyncio.Task[Any]]) -> None:
        super().__init__(items)
        self.schedule = schedule
        self.clients = clients
        self.forward: collections.deque[Any] | None = None

    def _client(self, handle: Any) -> bool:
        owner = getattr(getattr(handle, "_callback", None), "__self__", None)
        # Hashable first: a callback bound to an unhashable object (a list's append) cannot be looked up in a set.
        return isinstance(owner, Hashable) and owner in self.clients and not handle._cancelled

    def append(self, handle: Any) -> None:
        if self.forward is not None:
            self.forward.append(handle)
        else:
            super().append(handle)

    def popleft(self) -> Any:
        if len(self) < 2 or not self._client(self[0]):
            return super().popleft()
        # Any client step may be picked, except a wakeup queued behind another callback: a task
        # resumed by a future runs after the callbacks queued before it, as asyncio promises
        # (sock_connect's done-callback must run before the task it wakes, or the socket stays
        # registered twice). A plain step (after ``sleep(0)``) is tied to no future and may go first.
        # Threads append concurrently (call_soon_threadsafe): iterate a snapshot, taken in one
        # C call. Only this thread removes, and appends go on the right, so indices stay valid.
        ready, behind_a_callback = [], False
        for i, handle in enumerate(list(self)):
            if not self._client(handle):
                behind_a_callback = True
            elif not (behind_a_callback and _is_wakeup(handle)):
                ready.append(i)
        if len(ready) < 2:
            return super().popleft()
        index = ready[self.schedule.pick(len(ready))]
        if index == 0:
            return super().popleft()
        handle = self[index]
        del self[index]
        return handle


#: A task's resumption after the future it awaited completed (C and pure-Python tasks).
_WAKEUPS = frozenset({"task_wakeup", "__wakeup", "_Task__wakeup"})


def _is_wakeup(handle: Any) -> bool:
    return getattr(handle._callback, "__name__", None) in _WAKEUPS


def _steerable(loop: asyncio.AbstractEventLoop) -> bool:
    return isinstance(getattr(loop, "_ready", None), collections.deque)


class Steering:
    """Client registration and the ready-queue swap for one program run on one loop."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.clients: set[asyncio.Task[Any]] = set()
        self.steers = False

    def register(self) -> None:
        """Called by each client task as it starts, so its steps can be picked by the schedule.

        The step that calls this is already running: a client should then yield once
        (``await anyio.sleep(0)``) so that its first call, too, starts where the schedule says.
        """
        if self.steers:
            task = asyncio.current_task()
            if task is not None:
                self.clients.add(task)

    async def pause(self) -> None:
        """Before a call: the checkpoints the schedule draws, where the ready queue cannot be steered."""
        if not self.steers:
            for _ in range(self.schedule.delay()):
                await anyio.lowlevel.checkpoint()

    @contextmanager
    def steer(self) -> Iterator[None]:
        """Steer the running loop's ready queue for the length of the block (asyncio only)."""
        loop: asyncio.AbstractEventLoop | None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None  # trio
        if loop is None or not _steerable(loop):
            self.schedule.mechanism = "drawn checkpoints"
            yield
            return
        original: collections.deque[Any] = loop._ready  # type: ignore[attr-defined]
        steered = _SteeredReady((), self.schedule, self.clients)
        loop._ready = steered  # type: ignore[attr-defined]
        while original:  # anything queued meanwhile, in order
            steered.append(original.popleft())
        self.steers = True
        self.schedule.mechanism = "steered asyncio ready queue"
        try:
            yield
        finally:
            self.steers = False
            steered.forward = original
            original.extendleft(reversed(steered))
            steered.clear()
            loop._ready = original  # type: ignore[attr-defined]


@contextmanager
def short_switch_interval(seconds: float = 1e-6) -> Iterator[None]:
    """Make the interpreter switch threads far more often, so thread races show within a short run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


#: Runs of a tiny program on a target whose decisions the schedule does not fix (see ``every_schedule``).
UNSTEERED_RUNS = 50
#: Schedules of one tiny program walked under the ci profile (the suite scales it by profile).
SCHEDULE_LIMIT = 500


def every_schedule(run: Callable[[Schedule], T], limit: int = SCHEDULE_LIMIT,
                   unsteered_limit: int = UNSTEERED_RUNS) -> Iterator[tuple[Schedule, T]]:
    """Run ``run(schedule)`` under every schedule of a tiny program, depth first; yield each with its result.

    The walk needs ``run`` to be deterministic given the schedule (an in-process backend on
    the steered asyncio queue is). Stops after ``limit`` schedules, so a program too big to
    walk is sampled rather than hanging the suite.

    On worker threads or a server, the replies' timing decides how many clients are ready at
    each decision, so a branch's replay can meet other decisions than the run it branched
    from: the tree changes under the walk, which then never closes. Once a replay shows that,
    the walk is a sample of releases like any other repeat, and stops after
    ``unsteered_limit`` runs in all (it ran to ``limit`` before: 500 releases of each tiny
    race, a third to a half of a whole-kit run's calls on such backends).
    """
    prefix: list[int] = []
    expected: list[int] = []  # the decisions' widths, up to the branch, in the run the prefix branched from
    steered = True
    for runs in range(1, limit + 1):
        schedule = Schedule(prefix)
        result = run(schedule)
        yield schedule, result
        widths = schedule.widths
        steered = steered and widths[: len(expected)] == expected
        if not steered and runs >= unsteered_limit:
            return
        taken = list(prefix) + [0] * (len(widths) - len(prefix))
        # The deepest decision with an untried alternative is the next branch.
        depth = len(widths) - 1
        while depth >= 0 and taken[depth] + 1 >= widths[depth]:
            depth -= 1
        if depth < 0:
            return
        prefix = [*taken[:depth], taken[depth] + 1]
        expected = widths[: depth + 1]
