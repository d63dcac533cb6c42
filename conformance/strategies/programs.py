"""Concurrent programs: a few clients, each a short list of calls, all aimed at a handful of keys or tasks.

A program is drawn abstractly (which call, on which key or task, with which expiry class)
and made concrete at run time by ``conformance.machines.races``, which knows the clock and
gives every write data no other write in the run has (so every read says which write it
saw). Everything shrinks toward fewer clients, fewer calls, the first key and the simplest
call, so a race shrinks to the two calls that collide.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from conformance.contract.task import TaskStatus

#: Keys of backend programs; the first two share a prefix so listings and cleanups tie them together.
RACE_KEYS: tuple[str, ...] = ("race/a", "race/ab", "race/b")
#: Prefixes listings are drawn from.
RACE_PREFIXES: tuple[str, ...] = ("race/a", "race/", "")

#: What a key or task holds before the clients start.
ABSENT, LIVE, EXPIRED = "absent", "live", "expired"
#: Expiry classes of written records, made concrete against the run's clock.
NO_EXPIRY, PAST, FUTURE = "none", "past", "future"


@dataclass(frozen=True)
class KVStep:
    """One backend call, abstractly: ``kind`` is get, put, cas, delete, list or cleanup."""

    kind: str
    key: int = 0
    expiry: str = NO_EXPIRY
    expected: int = 1
    prefix: int = 0
    #: Bytes of padding in a written record: load widens a read-then-write window with large records.
    pad: int = 0


@dataclass(frozen=True)
class KVProgram:
    preload: tuple[str, ...]  # per key of RACE_KEYS: ABSENT, LIVE or EXPIRED
    clients: tuple[tuple[KVStep, ...], ...]

    @property
    def calls(self) -> int:
        return sum(len(c) for c in self.clients)


_key = st.integers(0, len(RACE_KEYS) - 1)
_expiry = st.sampled_from([NO_EXPIRY, FUTURE, PAST])

kv_steps: st.SearchStrategy[KVStep] = st.one_of(
    st.builds(KVStep, st.just("put"), _key, _expiry),
    st.builds(KVStep, st.just("cas"), _key, _expiry, st.integers(1, 3)),
    st.builds(KVStep, st.just("get"), _key),
    st.builds(KVStep, st.just("delete"), _key),
    st.builds(KVStep, st.just("cleanup")),
    st.builds(KVStep, st.just("list"), prefix=st.integers(0, len(RACE_PREFIXES) - 1)),
)

#: Largest number a schedule entry is drawn from; the harness wraps entries around the ready clients.
MAX_CHOICE = 7


def kv_programs(min_clients: int = 2, max_clients: int = 6, max_steps: int = 4) -> st.SearchStrategy[KVProgram]:
    """Programs of ``min_clients``..``max_clients`` clients of 1..``max_steps`` calls over ``RACE_KEYS``."""
    return st.builds(
        KVProgram,
        st.tuples(*[st.sampled_from([LIVE, ABSENT, EXPIRED]) for _ in RACE_KEYS]),
        st.lists(st.lists(kv_steps, min_size=1, max_size=max_steps).map(tuple), min_size=min_clients, max_size=max_clients).map(tuple),
    )


def schedules(max_size: int = 64) -> st.SearchStrategy[tuple[int, ...]]:
    """Scheduling choices (see ``conformance.harness.schedule``); shrinks toward the loop's own order."""
    return st.lists(st.integers(0, MAX_CHOICE), max_size=max_size).map(tuple)


# ------------------------------------------------------------------ task-store programs

#: Owners of task-store programs: the tasks' owner and another one.
RACE_OWNERS: tuple[str, ...] = ("alice", "bob")


@dataclass(frozen=True)
class TaskStep:
    """One store call, abstractly. ``task`` indexes the preloaded tasks; ``foreign`` makes another owner call."""

    kind: str  # create, get, update_status, set_variables, set_result, get_result, complete, cancel, list, cleanup
    task: int = 0
    foreign: bool = False
    status: TaskStatus = TaskStatus.WORKING
    variable: str = "v"
    delete: bool = False


@dataclass(frozen=True)
class TaskProgram:
    tasks: tuple[str, ...]  # per preloaded task of alice: LIVE or EXPIRED
    clients: tuple[tuple[TaskStep, ...], ...]

    @property
    def calls(self) -> int:
        return sum(len(c) for c in self.clients)


_task = st.integers(0, 2)
_foreign = st.sampled_from([False, False, False, True])
_status = st.sampled_from([TaskStatus.WORKING, TaskStatus.INPUT_REQUIRED, TaskStatus.COMPLETED, TaskStatus.FAILED])
_terminal = st.sampled_from([TaskStatus.COMPLETED, TaskStatus.FAILED])

task_steps: st.SearchStrategy[TaskStep] = st.one_of(
    st.builds(TaskStep, st.just("set_variables"), _task, _foreign, variable=st.sampled_from(["v", "w"]), delete=st.booleans()),
    st.builds(TaskStep, st.just("update_status"), _task, _foreign, _status),
    st.builds(TaskStep, st.just("complete"), _task, _foreign, _terminal),
    st.builds(TaskStep, st.just("cancel"), _task, _foreign),
    st.builds(TaskStep, st.just("create"), foreign=_foreign),
    st.builds(TaskStep, st.just("get"), _task, _foreign),
    st.builds(TaskStep, st.just("set_result"), _task, _foreign),
    st.builds(TaskStep, st.just("get_result"), _task),
    st.builds(TaskStep, st.just("list"), foreign=_foreign),
    st.builds(TaskStep, st.just("cleanup")),
)


def task_programs(min_clients: int = 2, max_clients: int = 5, max_steps: int = 3) -> st.SearchStrategy[TaskProgram]:
    """Programs over up to three preloaded tasks of one owner, with another owner probing and creating."""
    return st.builds(
        TaskProgram,
        st.lists(st.sampled_from([LIVE, EXPIRED]), min_size=1, max_size=3).map(tuple),
        st.lists(st.lists(task_steps, min_size=1, max_size=max_steps).map(tuple), min_size=min_clients, max_size=max_clients).map(tuple),
    )
