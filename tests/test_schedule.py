"""Unit tests for ``conformance.harness.schedule``: drawn choices, the steered asyncio queue, the trio fallback.

The race suite trusts this module to (1) make the interleaving of client steps a pure
function of the drawn choices, so a failing race replays and shrinks, (2) leave every
callback that is not a client step in the loop's own order, and (3) hand the loop its
queue back intact. Each test below pins one of those promises down exactly.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import random
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness import schedule as schedule_module
from conformance.harness.schedule import (
    DELAYS,
    Schedule,
    Steering,
    _SteeredReady,
    every_schedule,
    short_switch_interval,
)
from conformance.strategies.programs import MAX_CHOICE

#: One client step: (client number, step number).
Step = tuple[int, int]

STEERED = "steered asyncio ready queue"
FALLBACK = "drawn checkpoints"


# ------------------------------------------------------------------ helpers


def run_clients(
    schedule: Schedule | None,
    clients: int,
    steps: int,
    *,
    yield_first: bool = True,
    noise: bool = False,
) -> list[Any]:
    """Run ``clients`` tasks of ``steps`` steps each under ``schedule`` (``None``: no steering at all); return the order.

    Each client registers as it starts, then makes ``steps`` steps, each recording
    ``(client, step)`` in one shared list, with ``await asyncio.sleep(0)`` between them.

    ``yield_first`` puts the yield *before* each append (register; then K times
    "sleep(0); append"), as ``races.play`` does. It matters: ``register`` can only steer the task's *later* steps (the step that
    calls it is already running), so with ``yield_first=False`` the first append of every
    client always happens in creation order (see ``test_the_step_that_registers_is_not_steered``).

    ``noise`` adds callbacks that are not client steps: two ``call_soon`` callbacks from
    the main task, and an unregistered helper task that records three steps and queues a
    third ``call_soon`` callback on its way. They record strings, clients record tuples.
    (The callbacks are plain functions, not ``order.append``: see
    ``test_a_callback_bound_to_an_unhashable_object_is_queued_safely``.)
    """

    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        steering = Steering(schedule) if schedule is not None else None
        order: list[Any] = []

        def record(name: str) -> None:
            order.append(name)

        async def client(number: int) -> None:
            if steering is not None:
                steering.register()
            for step in range(steps):
                if yield_first:
                    await asyncio.sleep(0)
                order.append((number, step))
                if not yield_first:
                    await asyncio.sleep(0)

        async def helper() -> None:
            order.append("h0")
            await asyncio.sleep(0)
            order.append("h1")
            loop.call_soon(record, "cb3")
            await asyncio.sleep(0)
            order.append("h2")

        async def program() -> None:
            extra: list[asyncio.Task[None]] = []
            if noise:
                loop.call_soon(record, "cb1")
                extra.append(asyncio.create_task(helper()))
            tasks = [asyncio.create_task(client(number)) for number in range(clients)]
            if noise:
                loop.call_soon(record, "cb2")
            await asyncio.gather(*extra, *tasks)

        if steering is None:
            await program()
        else:
            with steering.steer():
                await program()
        return order

    return asyncio.run(main())


def interleavings(clients: int, steps: int) -> set[tuple[Step, ...]]:
    """Every order of ``clients`` x ``steps`` steps that keeps each client's own steps in program order."""
    found: set[tuple[Step, ...]] = set()
    for owners in set(itertools.permutations([c for c in range(clients) for _ in range(steps)])):
        done = [0] * clients
        order = []
        for c in owners:
            order.append((c, done[c]))
            done[c] += 1
        found.add(tuple(order))
    return found


def simulate(choices: Sequence[int], clients: int, steps: int) -> tuple[list[Step], list[int]]:
    """What the steered queue should do, modelled independently: a FIFO of ready clients, the schedule picking among them.

    A client that made a step goes to the back of the queue (``sleep(0)`` re-queues it);
    a decision is made only when two or more clients are ready. Returns the order and the
    widths the schedule should have recorded.
    """
    schedule = Schedule(choices)
    queue = list(range(clients))  # after each client's registration step, in creation order
    done = [0] * clients
    order: list[Step] = []
    while queue:
        index = schedule.pick(len(queue)) if len(queue) >= 2 else 0
        c = queue.pop(index)
        order.append((c, done[c]))
        done[c] += 1
        if done[c] < steps:
            queue.append(c)
    return order, schedule.widths


def clients_only(order: list[Any]) -> list[Step]:
    return [event for event in order if isinstance(event, tuple)]


def others_only(order: list[Any]) -> list[str]:
    return [event for event in order if isinstance(event, str)]


# ------------------------------------------------------------------ Schedule


def test_choices_are_consumed_one_per_decision_and_wrap_modulo_width() -> None:
    """Each decision takes the next choice modulo the number of ready clients, and the width is recorded for the walk."""
    schedule = Schedule([3, 4, 5, 1])
    assert schedule.pick(2) == 1  # 3 % 2
    assert schedule.pick(3) == 1  # 4 % 3
    assert schedule.pick(4) == 1  # 5 % 4
    assert schedule.pick(1) == 0  # one ready client: there is nothing to choose
    assert schedule.position == 4
    assert schedule.widths == [2, 3, 4, 1]


def test_past_the_end_every_pick_is_zero() -> None:
    """Hypothesis shrinks a schedule by shortening it: what is cut off must mean "the loop's own order"."""
    schedule = Schedule([2])
    assert schedule.pick(MAX_CHOICE + 1) == 2
    assert [schedule.pick(MAX_CHOICE + 1) for _ in range(5)] == [0] * 5
    assert schedule.position == 6
    assert schedule.widths == [MAX_CHOICE + 1] * 6
    empty = Schedule()
    assert empty.choices == ()
    assert [empty.pick(3) for _ in range(3)] == [0, 0, 0]


def test_delay_draws_from_delays() -> None:
    """The trio fallback holds a client back 0..DELAYS-1 checkpoints, consuming a choice like any decision."""
    assert DELAYS == 3
    schedule = Schedule([2, 3, 4, 5])
    assert [schedule.delay() for _ in range(5)] == [2, 0, 1, 2, 0]
    assert schedule.widths == [DELAYS] * 5
    assert schedule.position == 5


def test_describe_counts_deviations_among_the_choices_used() -> None:
    """The failure report names the schedule that ran, how far it is from the normal order, and how it was applied."""
    schedule = Schedule([0, 2, 0, 1, 6, 6])
    schedule.mechanism = STEERED
    for width in (3, 3, 3, 3):
        schedule.pick(width)
    text = schedule.describe()
    assert text.startswith("schedule [0, 2, 0, 1] (")  # only the choices used: the 6s were never consumed
    assert STEERED in text
    assert "2 deviations from the loop's own order" in text

    one = Schedule([0, 1])
    one.pick(2)
    one.pick(2)
    assert "; 1 deviation from" in one.describe()  # singular

    none = Schedule()
    none.pick(2)  # the implicit zeros past the end are not listed: the drawn choices are what replays
    assert none.describe() == "schedule [] (none; 0 deviations from the loop's own order)"


# ------------------------------------------------------------------ every_schedule, on its own


def test_every_schedule_walks_a_fixed_tree_depth_first_once_each() -> None:
    """The walk must visit every combination of decisions exactly once, in depth-first order, then stop."""

    def run(schedule: Schedule) -> tuple[int, int]:
        return schedule.pick(2), schedule.pick(3)

    walked = list(every_schedule(run))
    assert [result for _, result in walked] == list(itertools.product(range(2), range(3)))
    for schedule, result in walked:
        assert schedule.widths == [2, 3]
        assert tuple(c % w for c, w in zip(schedule.choices, schedule.widths)) == result[: len(schedule.choices)]


def test_every_schedule_follows_a_tree_whose_shape_depends_on_the_choices() -> None:
    """Later decisions may exist only on some branches (a client that finished early); the walk must follow each branch's own widths."""

    def run(schedule: Schedule) -> tuple[int, ...]:
        first = schedule.pick(3)
        if first == 0:
            return first, schedule.pick(2), schedule.pick(2)
        if first == 1:
            return (first, schedule.pick(4))
        return (first,)

    results = [result for _, result in every_schedule(run)]
    assert results == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0), (1, 1), (1, 2), (1, 3), (2,)]


def test_every_schedule_runs_once_when_there_is_no_decision() -> None:
    """A program with a single client makes no decisions: one run, not zero and not a loop."""
    calls: list[Schedule] = []
    walked = list(every_schedule(lambda schedule: calls.append(schedule) or "done"))
    assert len(calls) == 1
    assert walked == [(calls[0], "done")]


@pytest.mark.parametrize("limit", [0, 1, 5, 37])
def test_every_schedule_stops_at_limit(limit: int) -> None:
    """A program too big to walk (here 2**12 schedules) must be cut off at ``limit`` runs, not hang the suite."""
    calls = 0

    def run(schedule: Schedule) -> tuple[int, ...]:
        nonlocal calls
        calls += 1
        return tuple(schedule.pick(2) for _ in range(12))

    results = [result for _, result in every_schedule(run, limit=limit)]
    assert calls == limit
    assert results == list(itertools.islice(itertools.product(range(2), repeat=12), limit))


def test_every_schedule_walks_a_fixed_tree_past_the_unsteered_bound() -> None:
    """The bound for targets it cannot steer must not cut a walk whose tree stays fixed (here 2**7 schedules)."""
    results = [result for _, result in every_schedule(lambda schedule: tuple(schedule.pick(2) for _ in range(7)), unsteered_limit=10)]
    assert results == list(itertools.product(range(2), repeat=7))


def test_every_schedule_stops_at_the_unsteered_bound_once_the_tree_changes_under_it() -> None:
    """Where timing decides how many clients are ready, replays meet other decisions: the walk becomes a bounded sample."""
    timing = random.Random(7)
    calls = 0

    def run(schedule: Schedule) -> int:
        nonlocal calls
        calls += 1
        return sum(schedule.pick(timing.choice([1, 2, 3])) for _ in range(6))

    assert len(list(every_schedule(run, limit=500, unsteered_limit=20))) == calls == 20


# ------------------------------------------------------------------ the steered queue, on its own


class _Owner:
    """Stands in for a task: a handle's callback is one of its bound methods."""

    def step(self) -> None:  # pragma: no cover - never called
        pass

    def task_wakeup(self) -> None:  # pragma: no cover - never called; named as asyncio's C tasks name theirs
        pass


class _Handle:
    """Stands in for an ``asyncio.Handle``: what ``_SteeredReady`` looks at is the callback and the cancelled flag."""

    def __init__(self, callback: Any, name: str, cancelled: bool = False) -> None:
        self._callback = callback
        self._cancelled = cancelled
        self.name = name

    def __repr__(self) -> str:
        return self.name


def test_steered_queue_moves_only_the_picked_client_and_leaves_the_rest_in_place() -> None:
    """A pick takes one client handle out of the middle; every other handle keeps its position."""
    a, b, c, x = _Owner(), _Owner(), _Owner(), _Owner()
    handles = [_Handle(a.step, "A"), _Handle(x.step, "x1"), _Handle(b.step, "B"), _Handle(x.step, "x2"), _Handle(c.step, "C")]
    schedule = Schedule([2])
    queue = _SteeredReady(handles, schedule, {a, b, c})
    assert queue.popleft().name == "C"
    assert schedule.widths == [3]
    assert [h.name for h in queue] == ["A", "x1", "B", "x2"]


def test_a_wakeup_never_overtakes_a_callback_queued_before_it() -> None:
    """asyncio's promise to futures: sock_connect's done-callback runs before the task it wakes.

    With a callback between them, B's wakeup is no candidate and A runs without a decision;
    a plain step of B in the same place may be picked.
    """
    a, b, x = _Owner(), _Owner(), _Owner()
    schedule = Schedule([1, 1, 1])
    queue = _SteeredReady([_Handle(a.step, "A"), _Handle(x.step, "x"), _Handle(b.task_wakeup, "B")], schedule, {a, b})
    assert [queue.popleft().name for _ in range(3)] == ["A", "x", "B"]
    assert schedule.position == 0
    queue = _SteeredReady([_Handle(a.step, "A"), _Handle(x.step, "x"), _Handle(b.step, "B")], schedule, {a, b})
    assert queue.popleft().name == "B"


@given(kinds=st.lists(st.sampled_from(["a", "b", "c", "A", "B", "x"]), max_size=12),
       choices=st.lists(st.integers(0, MAX_CHOICE), max_size=12))
def test_steering_keeps_callbacks_in_order_and_ahead_of_the_wakeups_behind_them(kinds: list[str], choices: list[int]) -> None:
    """Lower case: a client's plain step; upper case: a client's wakeup; x: any other callback."""
    owners = {kind: _Owner() for kind in "abcx"}
    handles = [
        _Handle(owners[k.lower()].task_wakeup if k.isupper() else owners[k].step, f"{k}{i}") for i, k in enumerate(kinds)
    ]
    queue = _SteeredReady(handles, Schedule(choices), {owners["a"], owners["b"], owners["c"]})
    popped = [queue.popleft().name for _ in range(len(handles))]
    assert sorted(popped) == sorted(h.name for h in handles)  # each exactly once
    position = {name: i for i, name in enumerate(popped)}
    for i, before in enumerate(handles):
        for after in handles[i + 1:]:
            if before.name[0] == "x" and (after.name[0] == "x" or after.name[0].isupper()):
                assert position[before.name] < position[after.name], (popped, choices)


def test_clients_opening_connections_under_steering_leave_no_socket_registered_twice() -> None:
    """Real sockets: with wakeups free to overtake, asyncio logged "File descriptor N is used by
    transport" and left a stale writer that made the loop spin (found on redis-py)."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        problems: list[str] = []
        loop.set_exception_handler(lambda _loop, context: problems.append(str(context.get("exception") or context["message"])))
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        for choices in itertools.product([0, 1], repeat=3):
            steering = Steering(Schedule(choices))

            async def client() -> None:
                steering.register()
                await asyncio.sleep(0)
                _reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"x")
                await writer.drain()
                writer.close()

            with steering.steer():
                await asyncio.gather(client(), client())
        server.close()
        return problems

    assert asyncio.run(main()) == []


def test_steered_queue_runs_a_non_client_head_without_a_decision() -> None:
    """When the head is not a client step the loop's order holds and no choice is consumed."""
    a, b, x = _Owner(), _Owner(), _Owner()
    schedule = Schedule([1, 1])
    queue = _SteeredReady([_Handle(x.step, "x"), _Handle(a.step, "A"), _Handle(b.step, "B")], schedule, {a, b})
    assert queue.popleft().name == "x"
    assert schedule.position == 0
    assert queue.popleft().name == "B"  # now the head is a client and two are ready
    assert schedule.widths == [2]


def test_steered_queue_does_not_count_cancelled_or_lone_clients() -> None:
    """A cancelled handle is not a step to choose, and one ready client is no choice at all."""
    a, b, x = _Owner(), _Owner(), _Owner()
    schedule = Schedule([1, 1, 1])
    queue = _SteeredReady([_Handle(a.step, "A"), _Handle(x.step, "x"), _Handle(b.step, "B-cancelled", cancelled=True)], schedule, {a, b})
    assert queue.popleft().name == "A"
    assert schedule.position == 0
    queue2 = _SteeredReady([_Handle(a.step, "A-cancelled", cancelled=True), _Handle(a.step, "A"), _Handle(b.step, "B")], schedule, {a, b})
    assert queue2.popleft().name == "A-cancelled"  # not a client step: runs (and is skipped by the loop) in place
    assert schedule.position == 0


# ------------------------------------------------------------------ asyncio steering


def test_empty_schedule_is_the_loops_own_fifo_order() -> None:
    """Choice 0 everywhere must reproduce the unsteered run exactly: shrinking to zeros means "nothing changed"."""
    schedule = Schedule()
    steered = run_clients(schedule, 3, 3)
    assert steered == run_clients(None, 3, 3)
    assert steered == [(c, s) for s in range(3) for c in range(3)]  # round robin
    assert schedule.widths == [3, 3, 3, 3, 3, 3, 3, 2]  # decisions were really made, each among the ready clients
    assert schedule.position == 8 and schedule.choices == ()
    assert schedule.mechanism == STEERED


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ([1], [(1, 0), (0, 0), (1, 1), (0, 1)]),  # B first, then the normal alternation
        ([3], [(1, 0), (0, 0), (1, 1), (0, 1)]),  # 3 wraps to 1 among two clients
        ([0, 1], [(0, 0), (0, 1), (1, 0), (1, 1)]),  # A, then A again instead of B
        ([1, 1], [(1, 0), (1, 1), (0, 0), (0, 1)]),
        ([0, 0, 1], [(0, 0), (1, 0), (1, 1), (0, 1)]),
    ],
)
def test_a_choice_picks_the_expected_client(choices: list[int], expected: list[Step]) -> None:
    """Non-zero choices reorder client steps exactly as the ready queue says (worked out by hand)."""
    assert run_clients(Schedule(choices), 2, 2) == expected


def test_three_clients_pick_by_queue_position() -> None:
    """Index 2 among three ready clients is the third in the queue, and the queue rotates after each step."""
    assert run_clients(Schedule([2]), 3, 1) == [(2, 0), (0, 0), (1, 0)]
    # [A B C] pick C; [A B C] (C re-queued) pick 1 = B; [A C B] pick 0 = A; ...
    assert run_clients(Schedule([2, 1]), 3, 2) == [(2, 0), (1, 0), (0, 0), (2, 1), (1, 1), (0, 1)]


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(choices=st.lists(st.integers(0, MAX_CHOICE), max_size=10))
def test_steered_order_matches_an_independent_model(choices: list[int]) -> None:
    """For any drawn schedule, the order and the recorded widths equal a plain model of a FIFO with picks."""
    schedule = Schedule(choices)
    order = run_clients(schedule, 3, 2)
    expected_order, expected_widths = simulate(choices, 3, 2)
    assert order == expected_order
    assert schedule.widths == expected_widths


@pytest.mark.parametrize(("clients", "steps"), [(2, 2), (3, 1), (2, 3), (3, 2)])
def test_every_schedule_yields_every_interleaving_once(clients: int, steps: int) -> None:
    """The exhaustive walk over a real steered program must reach each interleaving, and each only once.

    With one yield per recorded step every decision changes which step is recorded next,
    so distinct schedules give distinct orders: no duplicates, and the count is exactly
    the number of interleavings (6 for 2x2 and 3x1, 20 for 2x3, 90 for 3x2).
    """
    orders = [tuple(order) for _, order in every_schedule(lambda schedule: run_clients(schedule, clients, steps))]
    assert len(orders) == len(set(orders))
    assert set(orders) == interleavings(clients, steps)


def test_every_schedule_small_cases_by_name() -> None:
    """Two small cases spelled out: 2 clients x 2 steps has C(4,2)=6 orders, 3 clients x 1 step all 3! permutations."""
    two_by_two = {tuple(order) for _, order in every_schedule(lambda s: run_clients(s, 2, 2))}
    assert len(two_by_two) == 6
    three_by_one = {tuple(c for c, _ in order) for _, order in every_schedule(lambda s: run_clients(s, 3, 1))}
    assert three_by_one == set(itertools.permutations(range(3)))


def test_the_step_that_registers_is_not_steered() -> None:
    """Work done in the same step as ``register`` (before the client first suspends) always runs in creation order.

    A client that appends before its first yield: register; then K times "append; sleep(0)".
    The first append shares its step with ``register`` and is not a steerable step yet,
    so no schedule can put client 1's first step before client 0's; and the decisions the
    walk makes between the clients' final (append-free) steps give duplicate orders. The
    walk still terminates, with a schedule per decision path.
    """
    walked = list(every_schedule(lambda s: run_clients(s, 2, 2, yield_first=False)))
    orders = [tuple(order) for _, order in walked]
    assert len(walked) == 6  # three decisions of width 2 on most paths
    assert all(order[:2] == ((0, 0), (1, 0)) for order in orders)
    assert set(orders) == {((0, 0), (1, 0), (0, 1), (1, 1)), ((0, 0), (1, 0), (1, 1), (0, 1))}
    assert len(set(orders)) < len(orders)  # legitimately duplicated


def test_other_callbacks_keep_their_fifo_order_under_every_schedule() -> None:
    """Helper tasks and plain callbacks are never reordered among themselves, whatever the clients do."""
    baseline = run_clients(None, 2, 2, noise=True)
    assert others_only(baseline) == ["cb1", "h0", "cb2", "h1", "cb3", "h2"]
    assert run_clients(Schedule(), 2, 2, noise=True) == baseline
    client_orders = set()
    for schedule, order in every_schedule(lambda s: run_clients(s, 2, 2, noise=True)):
        assert others_only(order) == others_only(baseline), schedule.choices
        client_orders.add(tuple(clients_only(order)))
    assert client_orders == interleavings(2, 2)  # the clients were steered all the same


def test_steer_hands_back_the_original_queue_with_everything_still_queued() -> None:
    """After the block the loop runs its own deque again, and callbacks queued before or during the block all run, in order."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        original = loop._ready  # type: ignore[attr-defined]
        order: list[str] = []

        def record(name: str) -> None:
            order.append(name)

        steering = Steering(Schedule([1, 1, 1]))
        loop.call_soon(record, "before")  # queued before the swap
        with steering.steer():
            steered = loop._ready  # type: ignore[attr-defined]
            assert isinstance(steered, _SteeredReady) and steered is not original
            assert len(original) == 0  # moved across, not copied
            assert steering.steers
            # A callback from another thread while steered; joined, so it is surely queued.
            thread = threading.Thread(target=loop.call_soon_threadsafe, args=(record, "thread"))
            thread.start()
            thread.join()
            loop.call_soon(record, "late")
            assert order == []  # nothing has run yet: all three are queued as the block exits
        assert loop._ready is original  # type: ignore[attr-defined]
        assert not steering.steers
        assert len(steered) == 0
        # A thread that looked up the steered queue just before the swap back still delivers.
        steered.append(asyncio.Handle(record, ("stale",), loop))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert loop._ready is original  # type: ignore[attr-defined]
        return order

    assert asyncio.run(main()) == ["before", "thread", "late", "stale"]


def test_thread_callbacks_during_a_steered_run_are_delivered() -> None:
    """``call_soon_threadsafe`` from worker threads while clients are being steered is neither lost nor run twice."""

    async def main() -> tuple[list[Any], Schedule]:
        loop = asyncio.get_running_loop()
        original = loop._ready  # type: ignore[attr-defined]
        schedule = Schedule([1, 0, 1, 1])
        steering = Steering(schedule)
        order: list[Any] = []

        def record(name: str) -> None:
            order.append(name)

        async def client(number: int) -> None:
            steering.register()
            for step in range(2):
                await asyncio.sleep(0)
                order.append((number, step))
                thread = threading.Thread(target=loop.call_soon_threadsafe, args=(record, f"t{number}{step}"))
                thread.start()
                thread.join()

        with steering.steer():
            await asyncio.gather(*(asyncio.create_task(client(n)) for n in range(2)))
        await asyncio.sleep(0)
        assert loop._ready is original  # type: ignore[attr-defined]
        return order, schedule

    order, schedule = asyncio.run(main())
    assert sorted(others_only(order)) == ["t00", "t01", "t10", "t11"]
    assert clients_only(order) == simulate([1, 0, 1, 1], 2, 2)[0]
    assert schedule.mechanism == STEERED


def test_steer_restores_the_queue_when_the_block_raises() -> None:
    """A client program that fails must not leave the loop on the steered queue or drop its pending callbacks."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        original = loop._ready  # type: ignore[attr-defined]
        order: list[str] = []

        def record(name: str) -> None:
            order.append(name)

        steering = Steering(Schedule())
        with pytest.raises(RuntimeError, match="boom"):
            with steering.steer():
                loop.call_soon(record, "pending")
                raise RuntimeError("boom")
        assert loop._ready is original  # type: ignore[attr-defined]
        assert not steering.steers
        await asyncio.sleep(0)
        return order

    assert asyncio.run(main()) == ["pending"]


@dataclass
class _Inbox:
    """A plain dataclass, as a backend might use: ``eq=True`` makes its instances unhashable."""

    items: list[Any] = field(default_factory=list)

    def deliver(self, item: Any) -> None:
        self.items.append(item)


def test_a_callback_bound_to_an_unhashable_object_is_queued_safely() -> None:
    """A backend's own callbacks may be bound methods of anything; steering must leave them in place, not crash on them.

    Checked on the queue alone: on a running loop the same TypeError escapes the loop's
    ``_run_once`` and kills the whole program.
    """
    a, b = _Owner(), _Owner()
    inbox = _Inbox()
    delivery = _Handle(inbox.deliver, "deliver")
    schedule = Schedule([1])
    queue = _SteeredReady([_Handle(a.step, "A"), delivery, _Handle(b.step, "B")], schedule, {a, b})
    assert queue.popleft().name == "B"
    assert [h.name for h in queue] == ["A", "deliver"]


def test_pause_is_free_while_the_queue_is_steered() -> None:
    """On the steered queue the schedule is spent on picks; ``pause`` must neither draw a delay nor yield."""

    async def main() -> tuple[Schedule, list[str]]:
        loop = asyncio.get_running_loop()
        schedule = Schedule([2, 2, 2])
        steering = Steering(schedule)
        order: list[str] = []

        def record(name: str) -> None:
            order.append(name)

        with steering.steer():
            steering.register()
            loop.call_soon(record, "other")
            for _ in range(3):
                await steering.pause()
            assert order == []  # no checkpoint was passed: the queued callback has not run
        await asyncio.sleep(0)
        return schedule, order

    schedule, order = asyncio.run(main())
    assert order == ["other"]
    assert schedule.position == 0 and schedule.widths == []
    assert schedule.mechanism == STEERED


def test_a_callback_left_on_the_original_queue_is_not_lost() -> None:
    """A thread holding the original deque from before the swap may append to it while steered: it runs after the block."""

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        original = loop._ready  # type: ignore[attr-defined]
        order: list[str] = []

        def record(name: str) -> None:
            order.append(name)

        with Steering(Schedule()).steer():
            original.append(asyncio.Handle(record, ("stale",), loop))
            loop.call_soon(record, "steered")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return order

    assert sorted(asyncio.run(main())) == ["stale", "steered"]


def test_register_outside_steering_does_nothing() -> None:
    """Only tasks registered while steering are steered; registering before ``steer`` has no effect."""

    async def main() -> Steering:
        steering = Steering(Schedule())
        steering.register()
        return steering

    assert asyncio.run(main()).clients == set()


def test_asyncio_without_a_steerable_queue_falls_back_to_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a loop whose ready queue cannot be swapped, the kit must say so and fall back to drawn delays."""
    monkeypatch.setattr(schedule_module, "_steerable", lambda loop: False)
    schedule = Schedule([2])

    async def main() -> list[int]:
        steering = Steering(schedule)
        order: list[int] = []
        original = asyncio.get_running_loop()._ready  # type: ignore[attr-defined]

        async def client(number: int) -> None:
            steering.register()
            await steering.pause()
            order.append(number)

        with steering.steer():
            assert asyncio.get_running_loop()._ready is original  # type: ignore[attr-defined]
            await asyncio.gather(*(asyncio.create_task(client(n)) for n in range(2)))
        assert steering.clients == set()
        return order

    assert asyncio.run(main()) == [1, 0]  # client 0 held back two checkpoints; client 1 drew 0 (past the end)
    assert schedule.mechanism == FALLBACK
    assert schedule.widths == [DELAYS, DELAYS]


# ------------------------------------------------------------------ trio: drawn checkpoints


class _StepCounter(trio.abc.Instrument):
    """Counts how many times each trio task is stepped: one more than the checkpoints it passed."""

    def __init__(self) -> None:
        self.steps: collections.Counter[trio.lowlevel.Task] = collections.Counter()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task] += 1


def _trio_race(schedule: Schedule) -> list[int]:
    """Client 1 pauses by the schedule before its step; client 2 always passes one checkpoint before its own.

    With delay 0 client 1 records in the first scheduler batch and client 2 in the second;
    with delay 2 client 1 records in the third. Trio shuffles tasks within a batch, so delay
    1 (same batch) is left out: the other two cases do not depend on that randomness.
    """
    order: list[int] = []

    async def main() -> None:
        steering = Steering(schedule)

        async def first() -> None:
            steering.register()
            await steering.pause()
            order.append(1)

        async def second() -> None:
            await trio.lowlevel.checkpoint()
            order.append(2)

        with steering.steer():
            async with trio.open_nursery() as nursery:
                nursery.start_soon(first)
                nursery.start_soon(second)

    trio.run(main)
    return order


@pytest.mark.parametrize(("choices", "expected"), [([], [1, 2]), ([0], [1, 2]), ([2], [2, 1]), ([5], [2, 1])])
def test_trio_delay_lets_the_other_client_go_first(choices: list[int], expected: list[int]) -> None:
    """Under trio the only lever is the delay: two checkpoints on client 1 let client 2's step come first."""
    schedule = Schedule(choices)
    assert _trio_race(schedule) == expected
    assert schedule.mechanism == FALLBACK
    assert schedule.position == 1
    assert schedule.widths == [DELAYS]


def test_trio_pause_awaits_exactly_the_drawn_checkpoints() -> None:
    """Each ``pause`` consumes one choice and passes exactly that many checkpoints (counted by trio's own instrument)."""
    schedule = Schedule([0, 1, 2, 4])  # delays 0, 1, 2, 1
    counter = _StepCounter()
    seen: dict[str, Any] = {}

    async def main() -> None:
        steering = Steering(schedule)
        with steering.steer():
            seen["task"] = trio.lowlevel.current_task()
            steering.register()  # no asyncio here: must be a no-op, not an error
            seen["clients"] = set(steering.clients)
            seen["steers"] = steering.steers
            before = counter.steps[seen["task"]]
            for _ in range(4):
                await steering.pause()
            seen["steps"] = counter.steps[seen["task"]] - before

    trio.run(main, instruments=[counter])
    assert seen["steps"] == 0 + 1 + 2 + 1
    assert seen["clients"] == set() and seen["steers"] is False
    assert schedule.position == 4
    assert schedule.widths == [DELAYS] * 4
    assert schedule.mechanism == FALLBACK


def test_anyio_on_trio_falls_back_too() -> None:
    """The suite runs programs through anyio; on its trio backend the fallback is chosen and the delays still order clients."""
    schedule = Schedule([2])
    order: list[int] = []

    async def main() -> None:
        steering = Steering(schedule)

        async def first() -> None:
            steering.register()
            await steering.pause()
            order.append(1)

        async def second() -> None:
            await anyio.sleep(0)
            order.append(2)

        with steering.steer():
            async with anyio.create_task_group() as group:
                group.start_soon(first)
                group.start_soon(second)

    anyio.run(main, backend="trio")
    assert order == [2, 1]
    assert schedule.mechanism == FALLBACK


def test_steer_outside_any_loop_falls_back() -> None:
    """With no running asyncio loop (trio, or plain code) ``steer`` must not touch anything and must say so."""
    schedule = Schedule()
    steering = Steering(schedule)
    with steering.steer():
        assert not steering.steers
    assert schedule.mechanism == FALLBACK


# ------------------------------------------------------------------ short_switch_interval


@pytest.fixture
def switch_interval() -> Iterator[float]:
    """A known starting interval (one that round-trips through CPython's microsecond storage), restored afterwards."""
    real = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        yield sys.getswitchinterval()
    finally:
        sys.setswitchinterval(real)


def test_short_switch_interval_sets_and_restores(switch_interval: float) -> None:
    """Thread races need frequent switches during the program, and the rest of the session needs its interval back."""
    with short_switch_interval():
        assert sys.getswitchinterval() == pytest.approx(1e-6)
    assert sys.getswitchinterval() == switch_interval
    with short_switch_interval(0.002):
        assert sys.getswitchinterval() == pytest.approx(0.002)
    assert sys.getswitchinterval() == switch_interval


def test_short_switch_interval_restores_on_exception(switch_interval: float) -> None:
    """A failing program (the usual case when a race is found) must not leave the interpreter switching every microsecond."""
    with pytest.raises(ValueError, match="race"):
        with short_switch_interval():
            assert sys.getswitchinterval() == pytest.approx(1e-6)
            raise ValueError("race found")
    assert sys.getswitchinterval() == switch_interval
