"""The gallery: deliberately broken backends, one realistic bug each.

Each class changes the reference ``InMemoryBackend`` only where its bug lives, names the
SPEC clause the bug breaks in ``violates``, and describes the bug in its one-line
docstring the way the engineer who wrote it would recognise it. The kit must fail every
one of them, naming that clause; ``GALLERY`` lists them in a stable order.
"""

from __future__ import annotations

import fnmatch
import json
import re
import unicodedata
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, ClassVar

import anyio

from conformance import (
    NotFoundError,
    VersionConflictError,
    VersionedRecord,
    expires_at,
    is_expired,
)
from reference_backend import InMemoryBackend

Clock = Callable[[], float]


class _Broken(InMemoryBackend):
    """Base of the gallery: the reference plus the clause its bug breaks."""

    violates: ClassVar[str]
    #: For a race: the clause the race machines report it under (they must catch it too).
    races: ClassVar[str | None] = None
    #: Other clauses whose text states the same rule (a SEC clause is a BK or TS rule under attack):
    #: a first failure under one of them names the bug's rule too (benchmarks/detection.py).
    also: ClassVar[tuple[str, ...]] = ()


# --- Concurrency (BK-18) ------------------------------------------------------------------


class NonAtomicPut(_Broken):
    """GET then SET in two round trips: concurrent puts read the same version and hand it out twice."""

    violates = "BK-18"
    races = "CC-4"

    async def put(self, key: str, data: bytes) -> int:
        with self._lock:
            current = self._table.records.get(key)
        version = 1 if current is None else current.version + 1
        await anyio.sleep(0)  # the second round trip
        with self._lock:
            self._table.records[key] = VersionedRecord(bytes(data), version)
        return version


class CasYieldsBeforeWrite(_Broken):
    """Checks the version, then writes in a second round trip: concurrent CAS calls all win."""

    violates = "BK-18"
    races = "CC-3"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        with self._lock:
            self._table.check_version(key, expected_version)
        await anyio.sleep(0)  # the second round trip
        with self._lock:
            self._table.records[key] = VersionedRecord(bytes(data), expected_version + 1)
        return expected_version + 1


class CleanupYieldsBetweenScanAndDelete(_Broken):
    """Scans for expired keys, then deletes them in a second round trip: a record rewritten in between is deleted."""

    violates = "CC-1"
    races = "CC-1"

    async def cleanup_expired(self) -> int:
        with self._lock:
            expired = [key for key, record in self._table.records.items() if is_expired(record.data, self._clock())]
        await anyio.sleep(0)  # the second round trip
        with self._lock:
            for key in expired:
                self._table.records.pop(key, None)
        return len(expired)


# --- Compare-and-swap answers (BK-2, BK-8, BK-9) --------------------------------------------


class CasCreatesMissing(_Broken):
    """Conditional write as an upsert (attribute_not_exists OR version = :v): CAS creates missing keys at version 1."""

    violates = "BK-9"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        with self._lock:
            if key not in self._table.records:
                self._table.records[key] = VersionedRecord(bytes(data), 1)
                return 1
        return await super().put_if_version(key, data, expected_version)


class CasMissingIsConflict(_Broken):
    """The seed's Redis script: a missing key reads as version 0 and is reported as a conflict."""

    violates = "BK-9"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        try:
            return await super().put_if_version(key, data, expected_version)
        except NotFoundError:
            raise VersionConflictError(key, expected_version, 0) from None


class ConflictFiguresSwapped(_Broken):
    """Builds VersionConflictError(key, actual, expected): the two figures in the wrong order."""

    violates = "BK-8"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        try:
            return await super().put_if_version(key, data, expected_version)
        except VersionConflictError as conflict:
            raise VersionConflictError(key, conflict.actual, conflict.expected) from None


class CasReturnsBool(_Broken):
    """Returns the driver's "rows affected > 0" bool from the conditional UPDATE, not the new version."""

    violates = "BK-2"

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        await super().put_if_version(key, data, expected_version)
        return True


# --- Writes and deletes (BK-3, BK-6, BK-10) -------------------------------------------------


class PutKeepsVersion(_Broken):
    """UPSERT that updates the data column but leaves the version column as it was."""

    violates = "BK-6"

    async def put(self, key: str, data: bytes) -> int:
        with self._lock:
            current = self._table.records.get(key)
            version = 1 if current is None else current.version
            self._table.records[key] = VersionedRecord(bytes(data), version)
            return version


class DeleteAlwaysTrue(_Broken):
    """Returns True once the DELETE command succeeds, ignoring how many rows it removed."""

    violates = "BK-10"

    async def delete(self, key: str) -> bool:
        await super().delete(key)
        return True


class KeyErrorOnMissing(_Broken):
    """get indexes the dict directly, so a missing key escapes as a bare KeyError."""

    violates = "BK-3"

    async def get(self, key: str) -> VersionedRecord:
        with self._lock:
            return self._table.records[key]


# --- Listings (BK-12) ---------------------------------------------------------------------


class GlobPrefixListing(_Broken):
    """Redis SCAN MATCH: the prefix becomes a glob pattern, so * ? [ ] in it act as wildcards."""

    violates = "BK-12"
    also = ('SEC-1',)  # the same rule, stated in SPEC.md under these clauses too

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            return [(k, r) for k, r in self._table.records.items() if fnmatch.fnmatchcase(k, prefix + "*")]


def _like_pattern(pattern: str) -> re.Pattern[str]:
    """SQL LIKE semantics: % is any run, _ any one character, everything else literal."""
    wildcards = {"%": ".*", "_": "."}
    return re.compile("".join(wildcards.get(c, re.escape(c)) for c in pattern), re.DOTALL)


class SqlLikePrefixListing(_Broken):
    """SQL "WHERE key LIKE :prefix || '%'" without ESCAPE: % and _ in the prefix act as wildcards."""

    violates = "BK-12"
    also = ('SEC-1',)  # the same rule, stated in SPEC.md under these clauses too

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        like = _like_pattern(prefix + "%")
        with self._lock:
            return [(k, r) for k, r in self._table.records.items() if like.fullmatch(k)]


class StaleListingIndex(_Broken):
    """Serves listings from a second index dict that writes update but delete and cleanup forget."""

    violates = "BK-12"

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._index: dict[str, VersionedRecord] = {}

    async def put(self, key: str, data: bytes) -> int:
        version = await super().put(key, data)
        with self._lock:
            self._index[key] = self._table.records[key]
        return version

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        version = await super().put_if_version(key, data, expected_version)
        with self._lock:
            self._index[key] = self._table.records[key]
        return version

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            return [(k, r) for k, r in self._index.items() if k.startswith(prefix)]


# --- Keys (BK-13) -------------------------------------------------------------------------


class _MangledKeys(dict[str, VersionedRecord]):
    """A record dict whose key column rewrites every key it is given, as some engines' columns do."""

    def __init__(self, mangle: Callable[[str], str]) -> None:
        super().__init__()
        self.mangle = mangle

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(self.mangle(key), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(self.mangle(key))

    def __setitem__(self, key: str, value: VersionedRecord) -> None:
        super().__setitem__(self.mangle(key), value)

    def __getitem__(self, key: str) -> VersionedRecord:
        return super().__getitem__(self.mangle(key))

    def __delitem__(self, key: str) -> None:
        super().__delitem__(self.mangle(key))

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        return super().pop(self.mangle(key), *default)


class _MangledKeyBackend(_Broken):
    """The reference over a key column that rewrites keys; listing prefixes are rewritten alike."""

    @staticmethod
    def mangle(key: str) -> str:
        raise NotImplementedError

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._table.records = _MangledKeys(self.mangle)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return await super().list_by_prefix(self.mangle(prefix))


class CaseInsensitiveKeys(_MangledKeyBackend):
    """Case-insensitive collation on the key column: keys equal under casefold() are one record."""

    violates = "BK-13"
    also = ('SEC-2',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return key.casefold()


#: Memcached's key limit, in bytes.
KEY_LIMIT_BYTES = 250


class TruncatedKeys(_MangledKeyBackend):
    """Memcached-style 250-byte key limit: longer keys are silently cut, so long keys collide."""

    violates = "BK-13"
    also = ('SEC-2',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return key.encode("utf-8")[:KEY_LIMIT_BYTES].decode("utf-8", errors="ignore")


class NfcNormalisedKeys(_MangledKeyBackend):
    """Normalises keys to Unicode NFC on the way in, so composed and decomposed spellings collide."""

    violates = "BK-13"
    also = ('SEC-2',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return unicodedata.normalize("NFC", key)


# --- Records (BK-11, BK-14) ---------------------------------------------------------------


class ReserialisedData(_Broken):
    """JSONB-style column: stores the parsed document and hands back json.dumps of it."""

    violates = "BK-11"

    @staticmethod
    def _as_stored(data: bytes) -> bytes:
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            return data  # not JSON: kept as opaque bytes, so only the JSON path is wrong
        return json.dumps(document).encode("utf-8")

    async def put(self, key: str, data: bytes) -> int:
        return await super().put(key, self._as_stored(data))

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await super().put_if_version(key, self._as_stored(data), expected_version)


#: A MySQL BLOB column's size, in bytes.
BLOB_BYTES = 65_535


class TruncatesLargeRecords(_Broken):
    """Data in a 64 KiB BLOB column (non-strict SQL mode): longer records are silently cut."""

    violates = "BK-14"
    also = ('BK-11',)  # the same rule, stated in SPEC.md under these clauses too

    async def put(self, key: str, data: bytes) -> int:
        return await super().put(key, data[:BLOB_BYTES])

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await super().put_if_version(key, data[:BLOB_BYTES], expected_version)


# --- Expiry (BK-15, BK-16, BK-19) ---------------------------------------------------------


class _CleanupBy(_Broken):
    """The reference's atomic cleanup with its own expiry predicate, the one thing its bug changes."""

    @staticmethod
    def expired(data: bytes, now: float) -> bool:
        raise NotImplementedError

    async def cleanup_expired(self) -> int:
        with self._lock:
            now = self._clock()
            doomed = [key for key, record in self._table.records.items() if self.expired(record.data, now)]
            for key in doomed:
                del self._table.records[key]
            return len(doomed)


class ExpiryBoundaryInclusive(_CleanupBy):
    """Cleanup tests expiresAt <= now, deleting a record at the very instant it is still live."""

    violates = "BK-15"

    @staticmethod
    def expired(data: bytes, now: float) -> bool:
        deadline = expires_at(data)
        return deadline is not None and now >= deadline


class CleanupSweepsNeverExpiring(_CleanupBy):
    """Reads a null or absent expiresAt as epoch 0, so cleanup deletes records that never expire."""

    violates = "BK-16"

    @staticmethod
    def expired(data: bytes, now: float) -> bool:
        deadline = expires_at(data)
        return now > (0.0 if deadline is None else deadline)


class HangingCleanup(_Broken):
    """Waits for a background sweeper's "done" event, but the sweeper was never started."""

    violates = "BK-19"

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__(clock)
        self._sweeper_done: anyio.Event | None = None

    async def cleanup_expired(self) -> int:
        if self._sweeper_done is None:
            self._sweeper_done = anyio.Event()
        await self._sweeper_done.wait()
        return await super().cleanup_expired()


# --- Security: owner prefixes and keys (SEC-1, SEC-2) --------------------------------------


class RegexPrefixListing(_Broken):
    """Filters keys with re.match(prefix, key), unescaped: . + * ? ( [ | in an owner's prefix act as regex syntax."""

    violates = "SEC-1"
    also = ('BK-12',)  # the same rule, stated in SPEC.md under these clauses too

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        try:
            pattern = re.compile(prefix)
        except re.error:  # "not a valid pattern": fall back to a plain prefix test
            return await super().list_by_prefix(prefix)
        with self._lock:
            return [(k, r) for k, r in self._table.records.items() if pattern.match(k)]


class CollationPrefixListing(_Broken):
    """Keys stored exactly, but the listing's LIKE runs under MySQL's case-insensitive utf8mb4_0900_ai_ci collation."""

    violates = "SEC-1"
    also = ('BK-12',)  # the same rule, stated in SPEC.md under these clauses too

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        folded = prefix.casefold()
        with self._lock:
            return [(k, r) for k, r in self._table.records.items() if k.casefold().startswith(folded)]


class RangeScanPrefixListing(_Broken):
    """Lists by a sorted range scan prefix <= key < prefix + U+FFFF, missing keys whose next character is U+FFFF or astral."""

    violates = "SEC-1"
    also = ('BK-12',)  # the same rule, stated in SPEC.md under these clauses too

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        with self._lock:
            ordered = sorted(self._table.records)
            low, high = bisect_left(ordered, prefix), bisect_left(ordered, prefix + "\uffff")
            return [(k, self._table.records[k]) for k in ordered[low:high]]


class NulTerminatedKeys(_MangledKeyBackend):
    """Hands keys to the C client library as NUL-terminated strings, so a key ends at its first NUL."""

    violates = "SEC-2"
    also = ('BK-13',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return key.split("\x00", 1)[0]


class TrimmedKeys(_MangledKeyBackend):
    """The key column trims surrounding whitespace on the way in, as CHAR columns and input sanitisers do."""

    violates = "SEC-2"
    also = ('BK-13',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return key.strip()


#: The Unicode categories a "strip the invisible characters" sanitiser removes: control and format.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf"})


class ControlCharactersDroppedKeys(_MangledKeyBackend):
    """A key sanitiser drops control and format characters (NUL, DEL, zero-width space, BOM) before storing."""

    violates = "SEC-2"
    also = ('BK-13',)  # the same rule, stated in SPEC.md under these clauses too

    @staticmethod
    def mangle(key: str) -> str:
        return "".join(c for c in key if unicodedata.category(c) not in INVISIBLE_CATEGORIES)


GALLERY: list[type[_Broken]] = [
    NonAtomicPut,
    CasYieldsBeforeWrite,
    CleanupYieldsBetweenScanAndDelete,
    CasCreatesMissing,
    CasMissingIsConflict,
    ConflictFiguresSwapped,
    CasReturnsBool,
    PutKeepsVersion,
    DeleteAlwaysTrue,
    KeyErrorOnMissing,
    GlobPrefixListing,
    SqlLikePrefixListing,
    StaleListingIndex,
    CaseInsensitiveKeys,
    TruncatedKeys,
    NfcNormalisedKeys,
    ReserialisedData,
    TruncatesLargeRecords,
    ExpiryBoundaryInclusive,
    CleanupSweepsNeverExpiring,
    HangingCleanup,
    RegexPrefixListing,
    CollationPrefixListing,
    RangeScanPrefixListing,
    NulTerminatedKeys,
    TrimmedKeys,
    ControlCharactersDroppedKeys,
]
