"""Every call into a target goes through here: bounded in time, its answer's type and its errors checked.

One mechanism serves every contract: ``AnswerRules`` say what a contract's methods must
return and raise and which clause a timeout breaks. ``Checked`` is the async face (for
concurrent programs inside the loop); ``Blocking`` is the face the suite and machines call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from conformance.contract.backend import BACKEND_METHODS, VersionedRecord
from conformance.contract.errors import NotFoundError, StorageError, VersionConflictError
from conformance.harness.runner import LEDGER, LoopRunner
from conformance.models.operation import show
from conformance.spec import ContractViolation


def describe_call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in (kwargs or {}).items()]
    return f"{method}({', '.join(shown)})"


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class AnswerRules:
    """What one contract requires of every answer: the methods, the result and error checks, the timeout clause."""

    methods: tuple[str, ...]
    check_result: Callable[[str, str, object], None]
    check_error: Callable[[str, BaseException], None]
    timeout_clause: str


# ------------------------------------------------------------------ StorageBackend rules


def _check_record(call: str, record: object) -> None:
    if not isinstance(record, VersionedRecord):
        raise ContractViolation("BK-2", f"{call} returned {type(record).__name__}, not conformance.VersionedRecord")
    if not isinstance(record.data, bytes):
        raise ContractViolation("BK-2", f"{call} returned a record whose data is {type(record.data).__name__}, not bytes")
    if not is_int(record.version) or record.version < 1:
        raise ContractViolation("BK-2", f"{call} returned a record with version {record.version!r}; versions are ints from 1")


def check_backend_result(method: str, call: str, result: object) -> None:
    """Raise a BK-2 violation if ``result`` is not the type the contract pins for ``method``."""
    if method == "get":
        _check_record(call, result)
    elif method in ("put", "put_if_version"):
        if not is_int(result) or result < 1:
            raise ContractViolation("BK-2", f"{call} returned {result!r}; a write returns the new version, an int >= 1")
    elif method == "delete":
        if not isinstance(result, bool):
            raise ContractViolation("BK-2", f"{call} returned {result!r}; delete returns a bool")
    elif method == "cleanup_expired":
        if not is_int(result) or result < 0:
            raise ContractViolation("BK-2", f"{call} returned {result!r}; cleanup returns a count, an int >= 0")
    elif method == "list_by_prefix":
        if not isinstance(result, list):
            raise ContractViolation("BK-2", f"{call} returned {type(result).__name__}; list_by_prefix returns a list")
        for item in result:
            if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
                raise ContractViolation("BK-2", f"{call} returned an item {item!r}; items are (key, VersionedRecord) tuples")
            _check_record(call, item[1])


def check_backend_error(call: str, error: BaseException) -> None:
    """Raise a BK-3 violation unless ``error`` is a well-formed StorageError."""
    if not isinstance(error, StorageError):
        raise ContractViolation(
            "BK-3", f"{call} raised {type(error).__name__}: {error}; a backend raises only conformance.StorageError subclasses"
        ) from error
    if isinstance(error, NotFoundError) and not isinstance(getattr(error, "key", None), str):
        raise ContractViolation("BK-3", f"{call} raised NotFoundError without a str .key")
    if isinstance(error, VersionConflictError) and not all(is_int(getattr(error, name, None)) for name in ("expected", "actual")):
        raise ContractViolation("BK-3", f"{call} raised VersionConflictError without int .expected and .actual")


BACKEND_RULES = AnswerRules(BACKEND_METHODS, check_backend_result, check_backend_error, "BK-19")


# ------------------------------------------------------------------ the proxies


class Checked:
    """Async proxy: each contract method timed out and its answer checked by the contract's rules."""

    def __init__(self, raw: Any, timeout: float, rules: AnswerRules) -> None:
        self.raw = raw
        self.timeout = timeout
        self.rules = rules

    async def invoke(self, method: str, *args: Any, **kwargs: Any) -> Any:
        call = describe_call(method, args, kwargs)
        try:
            with anyio.fail_after(self.timeout):
                result = await getattr(self.raw, method)(*args, **kwargs)
        except TimeoutError:
            message = f"{call} did not complete within {self.timeout:g} s (--conformance-timeout)"
            LEDGER.record(message)
            raise ContractViolation(self.rules.timeout_clause, message) from None
        except ContractViolation:
            raise
        except Exception as error:
            self.rules.check_error(call, error)
            raise
        self.rules.check_result(method, call, result)
        return result

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method not in self.rules.methods:
            raise AttributeError(method)
        return partial(self.invoke, method)


class Blocking:
    """Blocking proxy over ``Checked``, run on the test's loop: what the suite and machines call."""

    def __init__(self, checked: Checked, runner: LoopRunner) -> None:
        self.checked = checked
        self.runner = runner

    def __getattr__(self, method: str) -> Callable[..., Any]:
        if method not in self.checked.rules.methods:
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            # The loop-side bound is a little looser so the per-call bound inside Checked reports first.
            return self.runner.call(
                describe_call(method, args, kwargs),
                partial(self.checked.invoke, method, *args, **kwargs),
                timeout=self.checked.timeout + 1,
            )

        return call

    def run(self, program: Callable[[Checked], Awaitable[Any]], timeout: float | None = None) -> Any:
        """Run an async program against the checked target on the loop (for concurrent probes)."""
        return self.runner.call("concurrent program", program, self.checked, timeout=timeout)


#: The names the suite uses for a backend behind the checks.
CheckedBackend = Checked
SyncBackend = Blocking
