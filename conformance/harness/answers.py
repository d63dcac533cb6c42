"""What each contract requires of every answer, checked on every call of every test."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeGuard

from conformance.contract.backend import BACKEND_METHODS, VersionedRecord
from conformance.contract.errors import (
    CapacityExceededError,
    NotFoundError,
    StorageError,
    VersionConflictError,
)
from conformance.contract.store import STORE_METHODS
from conformance.contract.task import TaskPage, TaskRecord
from conformance.contract.task_errors import (
    TASK_ERRORS,
    AnonymousAccessError,
    ConcurrentModificationError,
    InvalidCursorError,
    InvalidTransitionError,
    NotReadyError,
    ResourceExhaustedError,
    TaskError,
    TaskExpiredError,
    TaskNotFoundError,
    TtlExceededError,
    VariableSizeExceededError,
    VariableValidationError,
)
from conformance.harness.guard import AnswerRules
from conformance.spec import ContractViolation


def is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


# ------------------------------------------------------------------ StorageBackend


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
        if not isinstance(result, (list, tuple)):
            raise ContractViolation("BK-2", f"{call} returned {type(result).__name__}; list_by_prefix returns a list (or tuple) of pairs")
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


def normalise_backend_result(method: str, result: object) -> object:
    """A listing as a list: the task store only iterates it, so a tuple is as good (BK-2)."""
    return list(result) if method == "list_by_prefix" and isinstance(result, tuple) else result


def unexpected_backend_error(method: str, error: BaseException) -> str | None:
    """The clause a backend breaks by refusing a call its caller had every reason to expect to succeed."""
    if isinstance(error, NotFoundError):
        return "BK-5"  # a record the caller wrote is not there
    if isinstance(error, VersionConflictError):
        return "BK-7"  # a compare-and-swap naming the version the caller was handed
    if isinstance(error, CapacityExceededError):
        return "BK-14"
    return None


BACKEND_RULES = AnswerRules(BACKEND_METHODS, check_backend_result, check_backend_error, "BK-19", "backend",
                            normalise_backend_result, unexpected_backend_error)


# ------------------------------------------------------------------ TaskStore


def check_store_result(method: str, call: str, result: object) -> None:
    """Raise a TS-1 violation if ``result`` is not the type the TaskStore contract pins for ``method``."""
    if method == "list":
        if not isinstance(result, TaskPage):
            raise ContractViolation("TS-1", f"{call} returned {type(result).__name__}, not conformance.TaskPage")
        if not all(isinstance(task, TaskRecord) for task in result.tasks):
            raise ContractViolation("TS-1", f"{call} returned a page holding something other than TaskRecords")
        if result.next_cursor is not None and not isinstance(result.next_cursor, str):
            raise ContractViolation("TS-1", f"{call} returned a next_cursor of type {type(result.next_cursor).__name__}")
    elif method == "cleanup_expired":
        if not is_int(result) or result < 0:
            raise ContractViolation("TS-1", f"{call} returned {result!r}; cleanup returns a count, an int >= 0")
    elif method != "get_result" and not isinstance(result, TaskRecord):
        raise ContractViolation("TS-1", f"{call} returned {type(result).__name__}, not conformance.TaskRecord")


def check_store_error(call: str, error: BaseException) -> None:
    """Raise a TS-2 violation unless ``error`` is a TaskError with its JSON-RPC code."""
    if isinstance(error, RecursionError):
        # A value reached recursive code before its depth was checked: TS-11's own rule.
        raise ContractViolation("TS-11", f"{call} raised RecursionError; values must be depth-checked without recursion") from error
    if not isinstance(error, TaskError):
        raise ContractViolation(
            "TS-2", f"{call} raised {type(error).__name__}: {error}; a task store raises only conformance.TaskError subclasses"
        ) from error
    if getattr(error, "code", None) not in (-32602, -32603):
        raise ContractViolation("TS-2", f"{call} raised {type(error).__name__} with code {getattr(error, 'code', None)!r}")


#: The methods that write a task: each stamps lastUpdatedAt with the store's clock (TS-4).
_WRITES = frozenset({"create", "update_status", "set_variables", "set_result", "complete_with_result", "cancel"})


def stamped_by(clock: Callable[[], float]) -> Callable[[str, str, object], None]:
    """The store's answer rules, plus: every task a write returns is stamped now by ``clock`` (TS-4).

    Checked on every call, so a store stamping from another clock is named at the first write,
    not by whichever later rule (expiry, cleanup, listing order) trips over the wrong time.
    """

    def check(method: str, call: str, result: object) -> None:
        check_store_result(method, call, result)
        if method not in _WRITES or not isinstance(result, TaskRecord):
            return
        now = round(clock() * 1000)
        stamps = {"lastUpdatedAt": result.last_updated_at} | ({"createdAt": result.created_at} if method == "create" else {})
        for name, stamp in stamps.items():
            if not isinstance(stamp, (int, float)) or round(stamp * 1000) != now:
                raise ContractViolation("TS-4", f"{call} returned a task whose {name} is {stamp!r}; the store's clock reads "
                                                f"{now / 1000} (every write stamps the time of the clock it was given)")

    return check


#: The clause that says when each refusal is due; a refusal the caller did not expect breaks it.
_REFUSAL_CLAUSES: tuple[tuple[type[TaskError], str], ...] = (
    (AnonymousAccessError, "TS-3"),
    (TtlExceededError, "TS-5"),
    (ResourceExhaustedError, "TS-6"),
    (TaskExpiredError, "TS-15"),
    (TaskNotFoundError, "TS-7"),
    (NotReadyError, "TS-13"),
    (VariableValidationError, "TS-11"),
    (VariableSizeExceededError, "TS-12"),
    (InvalidCursorError, "TS-17"),
    (ConcurrentModificationError, "TS-18"),
)
#: An InvalidTransitionError breaks the clause of the method refused.
_TRANSITION_CLAUSES = {"update_status": "TS-8", "cancel": "TS-9", "set_variables": "TS-10", "set_result": "TS-13",
                       "complete_with_result": "TS-14"}


def refusal_clause(error_type: type[BaseException], method: str) -> str | None:
    """The clause that says when ``method`` refuses with ``error_type`` (None: no rule of the API does)."""
    if issubclass(error_type, InvalidTransitionError):
        return _TRANSITION_CLAUSES.get(method)
    for kind, clause in _REFUSAL_CLAUSES:
        if issubclass(error_type, kind):
            return clause
    return None


def refusal_clause_named(error: str, method: str) -> str | None:
    """``refusal_clause`` by the error's class name (as a model's outcome names it)."""
    kind = next((k for k in TASK_ERRORS if k.__name__ == error), None)
    return refusal_clause(kind, method) if kind is not None else None


def unexpected_store_error(method: str, error: BaseException) -> str | None:
    """The clause a store breaks by refusing a call the caller built so that every conforming store accepts it."""
    return refusal_clause(type(error), method)  # None for a store failure (TaskStoreError): the test's clause stands


STORE_RULES = AnswerRules(STORE_METHODS, check_store_result, check_store_error, "TS-23", "store",
                          unexpected=unexpected_store_error)
