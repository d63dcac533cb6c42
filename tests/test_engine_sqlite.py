"""The SQLite example backend passes the whole kit, run as a user would run it, and its engine's classic bug is caught."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from examples.sqlite_backend import SqliteBackend
from testbed.backends import broken_sqlite
from tests.conftest import assert_fails_for_clause, assert_passes_whole_kit


@pytest.mark.slow
def test_sqlite_example_backend_passes_the_whole_kit_on_both_loops(pytester: pytest.Pytester) -> None:
    assert_passes_whole_kit(pytester, "--backend=examples.sqlite_backend:SqliteBackend", loops=["asyncio", "trio"])


def test_sqlite_example_file_database_is_shared_by_instances_and_persists(tmp_path: Path) -> None:
    """What the kit cannot check (it needs a fresh instance each time): a file path is one persistent database."""
    path = str(tmp_path / "tasks.db")
    key = "task:owner\x00:1"

    async def scenario() -> None:
        first, second = SqliteBackend(path), SqliteBackend(path)
        assert await first.put(key, b"{}") == 1
        assert (await second.get(key)).version == 1
        assert await second.put_if_version(key, b"[]", 1) == 2
        await first.aclose()
        await second.aclose()
        reopened = SqliteBackend(path)
        assert [(k, r.data, r.version) for k, r in await reopened.list_by_prefix("task:owner\x00")] == [(key, b"[]", 2)]
        await reopened.aclose()

    anyio.run(scenario)


@pytest.mark.parametrize("broken", broken_sqlite.GALLERY, ids=lambda cls: cls.__name__)
def test_sqlite_classic_bug_fails_for_its_clause(pytester: pytest.Pytester, broken: type) -> None:
    assert_fails_for_clause(pytester, broken, f"--backend=testbed.backends.broken_sqlite:{broken.__name__}", first=not broken.races)


def test_unescaped_like_really_is_the_bug_and_the_example_is_not() -> None:
    """The gallery entry's bug shown directly: '_' and case match what the literal listing refuses."""

    async def listed(backend: SqliteBackend) -> set[str]:
        for key in ("task_1", "taskX1", "TASK_1"):
            await backend.put(key, b"{}")
        found = {key for key, _ in await backend.list_by_prefix("task_")}
        await backend.aclose()
        return found

    assert anyio.run(listed, SqliteBackend()) == {"task_1"}
    assert anyio.run(listed, broken_sqlite.UnescapedLike()) == {"task_1", "taskX1", "TASK_1"}
