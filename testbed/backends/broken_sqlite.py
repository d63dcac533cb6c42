"""SQLite's classic bug, on the real engine: the SQLite example with one thing changed.

The in-memory gallery (``broken.py``) imitates engine bugs; this one is the engine itself,
so the catch also proves the kit's listing probes reach SQLite's own LIKE semantics.
"""

from __future__ import annotations

from typing import ClassVar

from conformance import VersionedRecord
from examples.sqlite_backend import SqliteBackend


class UnescapedLike(SqliteBackend):
    """"WHERE key LIKE ? || '%'" without ESCAPE: % and _ in a prefix are wildcards, and ASCII case is folded."""

    violates: ClassVar[str] = "BK-12"
    #: Not a race: the engine galleries' other bases say so the same way.
    races: ClassVar[str | None] = None
    #: Its interleavings are the engine's, not the kit's: a race replays by luck (tests/conftest.py, assert_reproduces).
    unsteered: ClassVar[bool] = True

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        def list_by_prefix() -> list[tuple[str, VersionedRecord]]:
            with self._connection() as db:
                rows = db.execute(
                    "SELECT key, data, version FROM records WHERE CAST(key AS TEXT) LIKE ? || '%'", (prefix,)
                ).fetchall()
            return [(bytes(k).decode("utf-8"), VersionedRecord(bytes(d), int(v))) for k, d, v in rows]

        return await self._run(list_by_prefix)


#: The SQLite gallery, in a stable order.
GALLERY: list[type[SqliteBackend]] = [UnescapedLike]
