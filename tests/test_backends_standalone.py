"""Direct tests of the test backends, without the kit: the correct ones are correct, each broken one is broken.

Every gallery bug has its own demonstration, and each demonstration is also run against
the three correct backends, where it must fail: a demonstration that passed everywhere
would prove nothing about the bug.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from conformance import (
    NotFoundError,
    StorageBackend,
    StorageError,
    VersionConflictError,
    format_timestamp,
)
from conformance.harness.together import run_together
from conformance.spec import parse_clauses
from conformance.strategies import record_bytes
from reference_backend import InMemoryBackend
from testbed.backends import broken
from testbed.backends.broken import GALLERY
from testbed.backends.correct import ThreadedBackend, YieldingBackend

LOOPS = ["asyncio", "trio"]
CORRECT: list[type[Any]] = [InMemoryBackend, ThreadedBackend, YieldingBackend]
SPEC = parse_clauses((Path(__file__).resolve().parents[1] / "SPEC.md").read_text(encoding="utf-8"))

#: A whole-millisecond instant well inside the POSIX range, where the fake clock starts.
START = 1_800_000_000.0


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(expires: float | None = None, **extra: Any) -> bytes:
    """A canonical-JSON task record, expiring at ``expires`` (POSIX seconds) or never."""
    document: dict[str, Any] = {"task": {"id": "t"}, **extra}
    if expires is not None:
        document["expiresAt"] = format_timestamp(expires)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


async def raised(call: Awaitable[Any]) -> BaseException | None:
    """The exception the awaitable raised, or None if it returned."""
    try:
        await call
    except Exception as exc:
        return exc
    return None


async def concurrently(*calls: Callable[[], Awaitable[Any]]) -> list[Any]:
    """Start every call at once; each call's result, or the exception it raised."""
    return await run_together(list(calls), catch=(Exception,))


async def keys_listed(backend: Any, prefix: str) -> set[str]:
    return {key for key, _ in await backend.list_by_prefix(prefix)}


# --- The correct backends -----------------------------------------------------------------


async def basics(backend: Any, clock: FakeClock) -> None:
    assert await backend.list_by_prefix("") == []
    missing = await raised(backend.get("k"))
    assert isinstance(missing, NotFoundError) and missing.key == "k"

    assert await backend.put("k", b"one") == 1
    assert await backend.put("k", b"two") == 2
    got = await backend.get("k")
    assert (got.data, got.version) == (b"two", 2)

    assert await backend.put_if_version("k", b"three", 2) == 3
    conflict = await raised(backend.put_if_version("k", b"stale", 2))
    assert isinstance(conflict, VersionConflictError)
    assert (conflict.key, conflict.expected, conflict.actual) == ("k", 2, 3)
    assert (await backend.get("k")).data == b"three"
    absent = await raised(backend.put_if_version("nope", b"x", 1))
    assert isinstance(absent, NotFoundError) and absent.key == "nope"
    assert await keys_listed(backend, "nope") == set()

    assert await backend.delete("k") is True
    assert await backend.delete("k") is False
    assert await backend.put("k", b"again") == 1  # versions restart after delete (BK-5)

    for key in ("a*b", "axb", "a_b", "a%", "A*b", "a"):
        await backend.put(key, key.encode())
    assert await keys_listed(backend, "a*") == {"a*b"}
    assert await keys_listed(backend, "a_") == {"a_b"}
    assert await keys_listed(backend, "a") == {"a*b", "axb", "a_b", "a%", "a"}
    assert ("a%", (await backend.get("a%"))) in await backend.list_by_prefix("a%")


async def expiry(backend: Any, clock: FakeClock) -> None:
    await backend.put("boundary", record(expires=START))
    await backend.put("past", record(expires=START - 0.001))
    await backend.put("never", record())
    await backend.put("null", b'{"expiresAt":null}')
    await backend.put("opaque", b"\xff\x00 not json")
    assert await backend.cleanup_expired() == 1
    assert await keys_listed(backend, "") == {"boundary", "never", "null", "opaque"}
    clock.now = START + 0.001
    assert (await backend.get("boundary")).version == 1  # kept until cleanup
    assert await backend.cleanup_expired() == 1
    assert await keys_listed(backend, "") == {"never", "null", "opaque"}
    assert await backend.cleanup_expired() == 0


async def concurrency(backend: Any, clock: FakeClock) -> None:
    n = 8
    versions = await concurrently(*[lambda: backend.put("k", b"x")] * n)
    assert sorted(versions) == list(range(1, n + 1))
    outcomes = await concurrently(*[lambda: backend.put_if_version("k", b"y", n)] * n)
    assert outcomes.count(n + 1) == 1
    assert sum(isinstance(o, VersionConflictError) for o in outcomes) == n - 1
    assert (await backend.get("k")).version == n + 1


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("scenario", [basics, expiry, concurrency], ids=lambda f: f.__name__)
@pytest.mark.parametrize("backend_class", CORRECT, ids=lambda c: c.__name__)
def test_correct_backends(backend_class: type[Any], scenario: Callable[..., Awaitable[None]], loop: str) -> None:
    clock = FakeClock()
    backend = backend_class(clock=clock)
    assert isinstance(backend, StorageBackend)
    anyio.run(scenario, backend, clock, backend=loop)


def test_yielding_backend_survives_a_change_of_loop() -> None:
    backend = YieldingBackend(clock=FakeClock())
    anyio.run(backend.put, "k", b"x", backend="asyncio")
    assert anyio.run(backend.put, "k", b"y", backend="trio") == 2


# --- The gallery: one demonstration per bug ------------------------------------------------


async def shows_non_atomic_put(backend: Any, clock: FakeClock) -> None:
    versions = await concurrently(*[lambda: backend.put("k", b"x")] * 5)
    assert len(set(versions)) < 5, versions


async def shows_cas_race(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", b"x")
    outcomes = await concurrently(*[lambda: backend.put_if_version("k", b"y", 1)] * 5)
    assert outcomes.count(2) > 1, outcomes


async def shows_cleanup_deleting_a_rewrite(backend: Any, clock: FakeClock) -> None:
    # Trio may start the two in either order; the rewrite must land inside cleanup's window at least once.
    lost = []
    for attempt in range(20):
        key = f"k{attempt}"
        await backend.put(key, record_bytes("old", clock() - 1))
        await concurrently(backend.cleanup_expired, lambda key=key: backend.put(key, record_bytes("fresh", None, serial=1)))
        lost.append(isinstance(await raised(backend.get(key)), NotFoundError))
    assert any(lost), "no rewrite was deleted"


async def shows_cas_creating_missing(backend: Any, clock: FakeClock) -> None:
    assert await raised(backend.put_if_version("k", b"{}", 1)) is None
    assert (await backend.get("k")).data == b"{}"


async def shows_cas_missing_as_conflict(backend: Any, clock: FakeClock) -> None:
    error = await raised(backend.put_if_version("k", b"{}", 3))
    assert isinstance(error, VersionConflictError) and error.actual == 0, error


async def shows_swapped_figures(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", b"1")
    await backend.put("k", b"2")
    error = await raised(backend.put_if_version("k", b"3", 1))
    assert isinstance(error, VersionConflictError)
    assert (error.expected, error.actual) == (2, 1)


async def shows_bool_from_cas(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", b"1")
    assert await backend.put_if_version("k", b"2", 1) is True


async def shows_kept_version(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", b"1")
    assert await backend.put("k", b"2") == 1
    got = await backend.get("k")
    assert (got.data, got.version) == (b"2", 1)


async def shows_delete_always_true(backend: Any, clock: FakeClock) -> None:
    assert await backend.delete("never-written") is True


async def shows_key_error(backend: Any, clock: FakeClock) -> None:
    error = await raised(backend.get("missing"))
    assert isinstance(error, KeyError) and not isinstance(error, StorageError), error


async def shows_glob_listing(backend: Any, clock: FakeClock) -> None:
    await backend.put("task*1", b"1")
    await backend.put("task-1", b"2")
    assert await keys_listed(backend, "task*") == {"task*1", "task-1"}


async def shows_like_listing(backend: Any, clock: FakeClock) -> None:
    await backend.put("owner_a/t", b"1")
    await backend.put("ownerXa/t", b"2")
    await backend.put("100%/t", b"3")
    await backend.put("1000/t", b"4")
    assert await keys_listed(backend, "owner_a/") == {"owner_a/t", "ownerXa/t"}
    assert await keys_listed(backend, "100%") == {"100%/t", "1000/t"}


async def shows_stale_index(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", b"1")
    assert await backend.delete("k") is True
    assert isinstance(await raised(backend.get("k")), NotFoundError)
    assert await keys_listed(backend, "") == {"k"}


async def shows_colliding(backend: Any, first: str, second: str) -> None:
    assert first != second
    await backend.put(first, b"first")
    await backend.put(second, b"second")
    got = await backend.get(first)
    assert (got.data, got.version) == (b"second", 2)


async def shows_case_folding(backend: Any, clock: FakeClock) -> None:
    await shows_colliding(backend, "owner/Task", "owner/task")
    assert await keys_listed(backend, "owner/T") == {"owner/task"}


async def shows_key_truncation(backend: Any, clock: FakeClock) -> None:
    stem = "é" * 200  # 400 bytes of UTF-8
    await shows_colliding(backend, stem + "a", stem + "b")


async def shows_nfc(backend: Any, clock: FakeClock) -> None:
    await shows_colliding(backend, "caf\u00e9", "cafe\u0301")


async def shows_reserialisation(backend: Any, clock: FakeClock) -> None:
    data = '{"a":[1,2],"b":"é"}'.encode()
    await backend.put("k", data)
    stored = (await backend.get("k")).data
    assert stored != data and json.loads(stored) == json.loads(data), stored
    assert (await backend.list_by_prefix("k"))[0][1].data == stored


async def shows_large_record_truncation(backend: Any, clock: FakeClock) -> None:
    data = b"x" * (256 * 1024)
    assert await backend.put("k", data) == 1
    assert len((await backend.get("k")).data) == 65_535


async def shows_inclusive_boundary(backend: Any, clock: FakeClock) -> None:
    await backend.put("k", record(expires=clock.now))
    assert await backend.cleanup_expired() == 1
    assert isinstance(await raised(backend.get("k")), NotFoundError)


async def shows_never_expiring_swept(backend: Any, clock: FakeClock) -> None:
    await backend.put("absent", record())
    await backend.put("null", b'{"expiresAt":null}')
    await backend.put("future", record(expires=clock.now + 3600))
    assert await backend.cleanup_expired() == 2
    assert await keys_listed(backend, "") == {"future"}


async def shows_hang(backend: Any, clock: FakeClock) -> None:
    with anyio.move_on_after(0.05) as scope:
        await backend.cleanup_expired()
    assert scope.cancelled_caught


async def shows_regex_listing(backend: Any, clock: FakeClock) -> None:
    await backend.put("task:a.b:1", b"1")
    await backend.put("task:axb:1", b"2")
    await backend.put("task:a+:1", b"3")
    await backend.put("task:a(:1", b"4")
    assert await keys_listed(backend, "task:a.b:") == {"task:a.b:1", "task:axb:1"}
    assert await keys_listed(backend, "task:a+:") == set()
    assert await keys_listed(backend, "task:a(") == {"task:a(:1"}  # not a valid pattern: a plain prefix test


async def shows_collation_listing(backend: Any, clock: FakeClock) -> None:
    await backend.put("task:Ann:1", b"1")
    await backend.put("task:ann:1", b"2")
    assert (await backend.get("task:Ann:1")).data == b"1"  # stored apart
    assert await keys_listed(backend, "task:ann:") == {"task:Ann:1", "task:ann:1"}


async def shows_range_scan_gaps(backend: Any, clock: FakeClock) -> None:
    for key in ("task:a:1", "task:a:\U0001f511", "task:a:\U0010ffff", "task:a:\uffff"):
        await backend.put(key, key.encode())
    assert await keys_listed(backend, "task:a:") == {"task:a:1"}


async def shows_nul_terminated(backend: Any, clock: FakeClock) -> None:
    await shows_colliding(backend, "task:a:1", "task:a:1\x00evil")


async def shows_trimming(backend: Any, clock: FakeClock) -> None:
    await shows_colliding(backend, "task:a:1", " task:a:1\n")


async def shows_control_characters_dropped(backend: Any, clock: FakeClock) -> None:
    await shows_colliding(backend, "task:a:1", "task:a:\u200b1")
    await shows_colliding(backend, "task:ab:1", "task:a\x00b:1")


DEMONSTRATIONS: dict[type[Any], Callable[[Any, FakeClock], Awaitable[None]]] = {
    broken.NonAtomicPut: shows_non_atomic_put,
    broken.CasYieldsBeforeWrite: shows_cas_race,
    broken.CleanupYieldsBetweenScanAndDelete: shows_cleanup_deleting_a_rewrite,
    broken.CasCreatesMissing: shows_cas_creating_missing,
    broken.CasMissingIsConflict: shows_cas_missing_as_conflict,
    broken.ConflictFiguresSwapped: shows_swapped_figures,
    broken.CasReturnsBool: shows_bool_from_cas,
    broken.PutKeepsVersion: shows_kept_version,
    broken.DeleteAlwaysTrue: shows_delete_always_true,
    broken.KeyErrorOnMissing: shows_key_error,
    broken.GlobPrefixListing: shows_glob_listing,
    broken.SqlLikePrefixListing: shows_like_listing,
    broken.StaleListingIndex: shows_stale_index,
    broken.CaseInsensitiveKeys: shows_case_folding,
    broken.TruncatedKeys: shows_key_truncation,
    broken.NfcNormalisedKeys: shows_nfc,
    broken.ReserialisedData: shows_reserialisation,
    broken.TruncatesLargeRecords: shows_large_record_truncation,
    broken.ExpiryBoundaryInclusive: shows_inclusive_boundary,
    broken.CleanupSweepsNeverExpiring: shows_never_expiring_swept,
    broken.HangingCleanup: shows_hang,
    broken.RegexPrefixListing: shows_regex_listing,
    broken.CollationPrefixListing: shows_collation_listing,
    broken.RangeScanPrefixListing: shows_range_scan_gaps,
    broken.NulTerminatedKeys: shows_nul_terminated,
    broken.TrimmedKeys: shows_trimming,
    broken.ControlCharactersDroppedKeys: shows_control_characters_dropped,
}


def test_gallery_is_complete_and_stable() -> None:
    assert len(GALLERY) >= 16
    assert len(set(GALLERY)) == len(GALLERY)
    assert set(DEMONSTRATIONS) == set(GALLERY)
    named = {cls.__name__ for cls in GALLERY}
    assert len(named) == len(GALLERY)
    required = {"BK-2", "BK-3", "BK-6", "BK-8", "BK-9", "BK-10", "BK-11", "BK-12",
                "BK-13", "BK-14", "BK-15", "BK-16", "BK-18", "BK-19"}
    assert required <= {cls.violates for cls in GALLERY}


@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_gallery_class_is_well_formed(broken_class: type[Any]) -> None:
    clause = SPEC.get(broken_class.violates)
    assert clause is not None, f"{broken_class.violates} is not a clause of SPEC.md"
    assert clause.level == "MUST"
    doc = inspect.getdoc(broken_class) or ""
    assert doc and "\n" not in doc and doc != inspect.getdoc(InMemoryBackend)
    assert "clock" in inspect.signature(broken_class).parameters
    assert isinstance(broken_class(clock=FakeClock()), StorageBackend)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_bug_is_present(broken_class: type[Any], loop: str) -> None:
    clock = FakeClock()
    anyio.run(DEMONSTRATIONS[broken_class], broken_class(clock=clock), clock, backend=loop)


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.parametrize("correct_class", CORRECT, ids=lambda c: c.__name__)
@pytest.mark.parametrize("broken_class", GALLERY, ids=lambda c: c.__name__)
def test_demonstration_fails_on_correct_backends(broken_class: type[Any], correct_class: type[Any], loop: str) -> None:
    clock = FakeClock()
    with pytest.raises(AssertionError):
        anyio.run(DEMONSTRATIONS[broken_class], correct_class(clock=clock), clock, backend=loop)
