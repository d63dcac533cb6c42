"""TS-16, TS-17: listings in a total order whose pages never skip or repeat, and cursors only the store issued.

Pages are walked with small limits over tasks created in the same millisecond (the fake
clock is not advanced between creates), so ties in createdAt must be broken by taskId.
Cursors are opaque: the tests only ever alter the string the store handed out.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import (
    INVALID_PARAMS,
    InvalidCursorError,
    StoreConfig,
    TaskPage,
    TaskRecord,
)
from conformance.checks.task_store import OWNER
from conformance.harness import FakeClock, SyncStore
from conformance.plugin.profiles import examples
from conformance.spec import covers, expect_error, require

pytestmark = pytest.mark.conformance_target("store")

OTHER = "bob"


def _order(task: TaskRecord) -> tuple[int, str]:
    """TS-16's order: createdAt descending, then taskId ascending."""
    return (-round(task.created_at * 1000), task.task_id)


class _Walk:
    """Every page of one owner's listing, with the checks each page must pass on the way."""

    def __init__(self, store: SyncStore, owner: str, limit: int | None, cursor: str | None = None) -> None:
        self.pages: list[TaskPage] = []
        self.cursors: list[str] = []
        total_guard = 10_000
        while len(self.pages) < total_guard:
            page = store.list(owner, cursor=cursor, limit=limit)
            self.pages.append(page)
            size = len(page.tasks)
            if limit is not None:
                require("TS-16", size <= limit, f"list(limit={limit}) returned {size} tasks")
            if page.next_cursor is None:
                break
            require("TS-16", size > 0 and (limit is None or size == limit),
                    f"a page of {size} tasks came with a next_cursor; pages hold `limit` ({limit}) tasks while more follow")
            self.cursors.append(page.next_cursor)
            cursor = page.next_cursor
        require("TS-16", len(self.pages) < total_guard, f"the listing of {owner!r} never ended")

    @property
    def tasks(self) -> list[TaskRecord]:
        return [t for page in self.pages for t in page.tasks]

    @property
    def ids(self) -> list[str]:
        return [t.task_id for t in self.tasks]


def _check_complete(walk: _Walk, expected: list[TaskRecord], limit: int | None, what: str) -> None:
    want = [t.task_id for t in sorted(expected, key=_order)]
    got = walk.ids
    repeated = sorted({i for i in got if got.count(i) > 1})
    skipped = sorted(set(want) - set(got))
    foreign = sorted(set(got) - set(want))
    require("TS-16", not repeated and not skipped and not foreign,
            f"{what}: walking the pages with limit={limit} repeated {len(repeated)}, skipped {len(skipped)} and showed "
            f"{len(foreign)} unexpected task(s) among {len(want)}")
    require("TS-16", got == want,
            f"{what}: the pages list the tasks out of order; expected createdAt descending, then taskId ascending:\n"
            + "\n".join(f"  {t.created_at:.3f} {t.task_id}" for t in walk.tasks))


# ---------------------------------------------------------------- TS-16: order and pages


@covers("TS-16")
@examples(20)
@given(
    plan=st.lists(st.tuples(st.sampled_from([OWNER, OWNER, OTHER]), st.sampled_from([0, 0, 0, 1, 7])), max_size=11),
    limit=st.integers(min_value=1, max_value=4),
)
# The page-size boundaries, every run: pages exactly full (no trailing empty page), one task over, all in one millisecond.
@example(plan=[(OWNER, 0)] * 4, limit=2)
@example(plan=[(OWNER, 0)] * 5, limit=2)
@example(plan=[(OWNER, 0)] * 3, limit=3)
def test_pages_hold_every_task_once_newest_first(make_store: Callable[..., SyncStore], clock: FakeClock | None,
                                                 plan: list[tuple[str, int]], limit: int) -> None:
    store = make_store()
    created: dict[str, list[TaskRecord]] = {OWNER: [], OTHER: []}
    for owner, gap_ms in plan:
        if clock is not None and gap_ms:
            clock.advance(gap_ms / 1000)
        created[owner].append(store.create(owner, "m"))
    for owner, tasks in created.items():
        walk = _Walk(store, owner, limit)
        _check_complete(walk, tasks, limit, f"{owner!r} with {len(tasks)} task(s)")
        pages = max(1, -(-len(tasks) // limit))
        require("TS-16", len(walk.pages) == pages,
                f"{len(tasks)} tasks at limit {limit} came in {len(walk.pages)} pages, expected {pages} (never a trailing empty page)")
        for listed in walk.tasks:
            require("TS-16", listed.to_wire() == store.get(listed.task_id, owner).to_wire(),
                    f"the listed task {listed.task_id} differs from what get returns")


@covers("TS-16")
def test_ties_in_created_at_are_broken_by_task_id(store: SyncStore, fake_clock: FakeClock) -> None:
    tasks = [store.create(OWNER, "m") for _ in range(7)]  # all in the same millisecond
    fake_clock.advance(0.001)
    tasks += [store.create(OWNER, "m") for _ in range(3)]
    require("TS-16", len({t.created_at for t in tasks[:7]}) == 1, "tasks created without the clock moving have different createdAt")
    for limit in (2, 3, 10, 11):
        walk = _Walk(store, OWNER, limit)
        _check_complete(walk, tasks, limit, "7 tasks sharing one millisecond and 3 newer ones")


@covers("TS-16")
def test_next_cursor_only_while_more_tasks_follow(limited_store: Callable[..., SyncStore]) -> None:
    store = limited_store(config=StoreConfig(default_page_size=3))
    empty = store.list(OWNER)
    require("TS-16", empty.tasks == () and empty.next_cursor is None, f"an owner without tasks got {empty!r}")
    tasks = [store.create(OWNER, "m") for _ in range(3)]
    page = store.list(OWNER)
    require("TS-16", len(page.tasks) == 3 and page.next_cursor is None,
            f"exactly default_page_size=3 tasks gave a page of {len(page.tasks)} with next_cursor {page.next_cursor!r}; "
            "no cursor may promise an empty page")
    tasks.append(store.create(OWNER, "m"))
    page = store.list(OWNER)
    require("TS-16", len(page.tasks) == 3 and page.next_cursor is not None,
            f"4 tasks with default_page_size=3 gave a page of {len(page.tasks)} with next_cursor {page.next_cursor!r}")
    rest = store.list(OWNER, cursor=page.next_cursor)
    require("TS-16", len(rest.tasks) == 1 and rest.next_cursor is None, f"the second page is {rest!r}; expected one task and no cursor")
    _check_complete(_Walk(store, OWNER, None), tasks, None, "the default page size")


@covers("TS-16")
def test_a_limit_that_is_not_a_positive_int_is_a_value_error(store: SyncStore) -> None:
    store.create(OWNER, "m")

    async def program(checked: Any) -> list[tuple[Any, str]]:
        outcomes = []
        for limit in (0, -1, 2.5, True, "3", [2]):
            try:
                page = await checked.raw.list(OWNER, None, limit)
                outcomes.append((limit, f"returned {page!r}"))
            except ValueError:
                pass
            except Exception as exc:  # reported below
                outcomes.append((limit, f"raised {type(exc).__name__}: {exc}"))
        return outcomes

    wrong = store.run(program)
    require("TS-16", not wrong, "list(limit=...) must raise ValueError for a limit that is not a positive int (a server bug); "
            + "; ".join(f"limit={limit!r} {outcome}" for limit, outcome in wrong))


@covers("TS-16")
def test_cursor_is_a_position_not_a_page_number(store: SyncStore, fake_clock: FakeClock) -> None:
    older = [store.create(OWNER, "m") for _ in range(5)]
    first = store.list(OWNER, limit=2)
    fake_clock.advance(0.001)
    newer = [store.create(OWNER, "m") for _ in range(3)]  # newer tasks sort before the cursor: they must not shift it
    walk = _Walk(store, OWNER, 2, cursor=first.next_cursor)
    _check_complete(walk, [t for t in older if t.task_id not in {s.task_id for s in first.tasks}], 2,
                    "the pages after a cursor, once 3 newer tasks were created")
    _check_complete(_Walk(store, OWNER, 2), older + newer, 2, "a fresh walk over old and new tasks")


@covers("TS-16")
def test_cursor_survives_the_removal_of_its_task(store: SyncStore, fake_clock: FakeClock) -> None:
    older = [store.create(OWNER, "m", ttl=100_000) for _ in range(4)]
    fake_clock.advance(0.001)
    newest = [store.create(OWNER, "m", ttl=1000) for _ in range(2)]
    page = store.list(OWNER, limit=2)
    require("TS-16", sorted(t.task_id for t in page.tasks) == sorted(t.task_id for t in newest), "the first page is not the two newest tasks")
    fake_clock.advance(2)  # the cursor's own task expires ...
    _check_complete(_Walk(store, OWNER, 3, cursor=page.next_cursor), older, 3, "the pages after a cursor whose task expired")
    store.cleanup_expired()  # ... and is removed
    _check_complete(_Walk(store, OWNER, 3, cursor=page.next_cursor), older, 3, "the pages after a cursor whose task was cleaned up")


# ---------------------------------------------------------------- TS-17: cursors the store did not issue


def _issued(store: SyncStore, owner: str, count: int = 5) -> tuple[list[str], list[TaskRecord]]:
    tasks = [store.create(owner, "m") for _ in range(count)]
    return _Walk(store, owner, 1).cursors, tasks


def _refuses(store: SyncStore, owner: str, cursor: Any, what: str) -> None:  # Any: the cursors include hostile non-strings
    error = expect_error("TS-17", InvalidCursorError, lambda: store.list(owner, cursor=cursor, limit=2),
                         f"list({owner!r}, cursor={cursor!r:.60}) with {what}")
    require("TS-17", error.code == INVALID_PARAMS, f"InvalidCursorError carries code {error.code}, expected -32602")


@covers("TS-17")
def test_malformed_cursors_are_refused(store: SyncStore) -> None:
    cursors, _ = _issued(store, OWNER)
    issued = set(cursors)
    cursor = cursors[1]
    candidates = [
        "", " ", "0", "1", "-1", "2", "page=2", "bogus", "%%%", "null", "{}", "[]", "x" * 10_000,
        cursor + "=", cursor + "==", cursor + "===", " " + cursor, cursor + " ", cursor + "\n", cursor + "\x00",
        cursor[:-1], cursor[:-2], cursor[: len(cursor) // 2], cursor[1:], cursor + cursor[-1], cursor + "A", cursor + cursor,
        cursor[::-1], cursor.upper(), cursor.lower(), cursor.replace("-", "+").replace("_", "/"),
    ]
    for bad in dict.fromkeys(candidates):
        if bad not in issued:
            _refuses(store, OWNER, bad, "a malformed or truncated cursor")
    for wrong in (5, 0, 1.5, True, b"bytes", cursor.encode(), [cursor], {"cursor": cursor}):
        _refuses(store, OWNER, wrong, f"a {type(wrong).__name__} as cursor")
    require("TS-17", len(store.list(OWNER, cursor=cursor, limit=10).tasks) == 3,
            "the genuine cursor no longer works after the refused ones")


@covers("TS-17", "SEC-3")
@examples(20)
@given(pair=st.sampled_from([("alice", "bob"), ("a", "a:b"), ("a:b", "a"), ("A", "a"), ("ß", "ss"), ("é", "e\u0301"), ("a", "a ")]),
       theirs=st.integers(min_value=2, max_value=4))
def test_another_owners_cursor_is_refused(make_store: Callable[..., SyncStore], pair: tuple[str, str], theirs: int) -> None:
    store = make_store()
    owner, intruder = pair
    cursors, _ = _issued(store, owner, 3)
    _issued(store, intruder, theirs)
    for cursor in cursors:
        _refuses(store, intruder, cursor, f"a cursor issued to {owner!r}")
        require("TS-17", isinstance(store.list(owner, cursor=cursor, limit=2), TaskPage), "the cursor stopped working for its owner")


@covers("TS-17")
def test_tampered_cursors_are_refused(store: SyncStore) -> None:
    """Any one-character change to an issued cursor is a cursor the store never issued: never a restart, never a jump."""
    cursors, _ = _issued(store, OWNER, 6)
    issued = set(cursors)
    alphabet = string.ascii_letters + string.digits + "-_"
    accepted: list[str] = []
    tried = 0
    for cursor in cursors[:2]:
        for index, char in enumerate(cursor):
            position = alphabet.find(char)
            for step in (1, 17, 45):
                substitute = alphabet[(position + step) % len(alphabet)] if position >= 0 else alphabet[step]
                forged = cursor[:index] + substitute + cursor[index + 1:]
                if forged in issued:
                    continue
                tried += 1
                try:
                    page = store.list(OWNER, cursor=forged, limit=2)
                except InvalidCursorError:
                    continue
                accepted.append(f"{forged} (character {index} of {cursor}) -> {[t.task_id[:8] for t in page.tasks]}")
    require("TS-17", not accepted,
            f"{len(accepted)} of {tried} one-character alterations of issued cursors were accepted as positions instead of "
            "raising InvalidCursorError, e.g.:\n  " + "\n  ".join(accepted[:3]))
