"""Every backend call goes through here: bounded in time, its answer's type and its errors checked.

``CheckedBackend`` is the async face (for concurrent programs inside the loop);
``SyncBackend`` is the blocking face the suite and the stateful machines use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from conformance.contract.backend import VersionedRecord
from conformance.contract.errors import NotFoundError, StorageError, VersionConflictError
from conformance.harness.runner import LEDGER, LoopRunner
from conformance.spec import ContractViolation


def describe_call(method: str, args: tuple[Any, ...]) -> str:
    shown = [f"<{len(a)} B>" if isinstance(a, bytes) and len(a) > 48 else repr(a) for a in args]
    return f"{method}({', '.join(shown)})"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_record(call: str, record: object) -> None:
    if not isinstance(record, VersionedRecord):
        raise ContractViolation("BK-2", f"{call} returned {type(record).__name__}, not conformance.VersionedRecord")
    if not isinstance(record.data, bytes):
        raise ContractViolation("BK-2", f"{call} returned a record whose data is {type(record.data).__name__}, not bytes")
    if not _is_int(record.version) or record.version < 1:
        raise ContractViolation("BK-2", f"{call} returned a record with version {record.version!r}; versions are ints from 1")


def check_result(method: str, call: str, result: object) -> None:
    """Raise a BK-2 violation if ``result`` is not the type the contract pins for ``method``."""
    if method == "get":
        _check_record(call, result)
    elif method in ("put", "put_if_version"):
        if not _is_int(result) or result < 1:
            raise ContractViolation("BK-2", f"{call} returned {result!r}; a write returns the new version, an int >= 1")
    elif method == "delete":
        if not isinstance(result, bool):
            raise ContractViolation("BK-2", f"{call} returned {result!r}; delete returns a bool")
    elif method == "cleanup_expired":
        if not _is_int(result) or result < 0:
            raise ContractViolation("BK-2", f"{call} returned {result!r}; cleanup returns a count, an int >= 0")
    elif method == "list_by_prefix":
        if not isinstance(result, list):
            raise ContractViolation("BK-2", f"{call} returned {type(result).__name__}; list_by_prefix returns a list")
        for item in result:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ContractViolation("BK-2", f"{call} returned an item {item!r}; items are (key, VersionedRecord) tuples")
            _check_record(call, item[1])


def check_error(call: str, error: BaseException) -> None:
    """Raise a BK-3 violation unless ``error`` is a well-formed StorageError."""
    if not isinstance(error, StorageError):
        raise ContractViolation(
            "BK-3", f"{call} raised {type(error).__name__}: {error}; a backend raises only conformance.StorageError subclasses"
        ) from error
    if isinstance(error, NotFoundError) and not isinstance(getattr(error, "key", None), str):
        raise ContractViolation("BK-3", f"{call} raised NotFoundError without a str .key")
    if isinstance(error, VersionConflictError) and not all(
        _is_int(getattr(error, name, None)) for name in ("expected", "actual")
    ):
        raise ContractViolation("BK-3", f"{call} raised VersionConflictError without int .expected and .actual")


class CheckedBackend:
    """Async proxy: the backend's six methods, each timed out and type-checked."""

    def __init__(self, backend: Any, timeout: float) -> None:
        self.raw = backend
        self.timeout = timeout

    async def invoke(self, method: str, *args: Any) -> Any:
        call = describe_call(method, args)
        try:
            with anyio.fail_after(self.timeout):
                result = await getattr(self.raw, method)(*args)
        except TimeoutError:
            message = f"{call} did not complete within {self.timeout:g} s (--conformance-timeout)"
            LEDGER.record(message)
            raise ContractViolation("BK-19", message) from None
        except ContractViolation:
            raise
        except Exception as error:
            check_error(call, error)
            raise
        check_result(method, call, result)
        return result

    async def get(self, key: str) -> VersionedRecord:
        return await self.invoke("get", key)

    async def put(self, key: str, data: bytes) -> int:
        return await self.invoke("put", key, data)

    async def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return await self.invoke("put_if_version", key, data, expected_version)

    async def delete(self, key: str) -> bool:
        return await self.invoke("delete", key)

    async def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return await self.invoke("list_by_prefix", prefix)

    async def cleanup_expired(self) -> int:
        return await self.invoke("cleanup_expired")


class SyncBackend:
    """Blocking proxy over ``CheckedBackend``, run on the test's loop: what the suite and machines call."""

    def __init__(self, checked: CheckedBackend, runner: LoopRunner) -> None:
        self.checked = checked
        self.runner = runner

    def _call(self, method: str, *args: Any) -> Any:
        # The loop-side bound is a little looser so the per-call bound inside CheckedBackend reports first.
        call = describe_call(method, args)
        return self.runner.call(call, self.checked.invoke, method, *args, timeout=self.checked.timeout + 1)

    def get(self, key: str) -> VersionedRecord:
        return self._call("get", key)

    def put(self, key: str, data: bytes) -> int:
        return self._call("put", key, data)

    def put_if_version(self, key: str, data: bytes, expected_version: int) -> int:
        return self._call("put_if_version", key, data, expected_version)

    def delete(self, key: str) -> bool:
        return self._call("delete", key)

    def list_by_prefix(self, prefix: str) -> list[tuple[str, VersionedRecord]]:
        return self._call("list_by_prefix", prefix)

    def cleanup_expired(self) -> int:
        return self._call("cleanup_expired")

    def run(self, program: Callable[[CheckedBackend], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run an async program against the checked backend on the loop (for concurrent probes)."""
        return self.runner.call("concurrent program", program, self.checked, timeout=timeout)
