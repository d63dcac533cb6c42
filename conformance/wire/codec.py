"""The contract's calls, answers and errors as protocol messages, and back: one mapping for the kit and the server.

Both sides of the wire use these functions, so a Python target served by ``conformance.serve``
reaches the kit exactly as it would in-process: same values, same exceptions, same figures.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from conformance.contract.backend import VersionedRecord
from conformance.contract.errors import (
    BackendError,
    CapacityExceededError,
    NotFoundError,
    VersionConflictError,
)
from conformance.contract.store import SecurityConfig, StoreConfig
from conformance.contract.task import TaskPage, TaskRecord, TaskStatus, coerce_status
from conformance.contract.task_errors import TASK_ERRORS, TaskError
from conformance.spec import ContractViolation
from conformance.wire.schema import first_problem

#: The fields of each backend request, in the order of the method's parameters.
BACKEND_FIELDS: dict[str, tuple[str, ...]] = {
    "get": ("key",),
    "put": ("key", "data"),
    "put_if_version": ("key", "data", "expected_version"),
    "delete": ("key",),
    "list_by_prefix": ("prefix",),
    "cleanup_expired": (),
}

#: The fields of each store request, in the order of the method's parameters.
STORE_FIELDS: dict[str, tuple[str, ...]] = {
    "create": ("owner_id", "request_method", "ttl"),
    "get": ("task_id", "owner_id"),
    "update_status": ("task_id", "owner_id", "status", "status_message"),
    "set_variables": ("task_id", "owner_id", "variables"),
    "set_result": ("task_id", "owner_id", "result"),
    "get_result": ("task_id", "owner_id"),
    "complete_with_result": ("task_id", "owner_id", "status", "status_message", "result"),
    "list": ("owner_id", "cursor", "limit"),
    "cancel": ("task_id", "owner_id"),
    "cleanup_expired": (),
}

#: Fields holding bytes (base64 on the wire).
_BYTES_FIELDS = frozenset({"data"})


class Inexpressible(pytest.skip.Exception):  # type: ignore[name-defined,misc]
    """A value the JSON wire cannot carry: the test handing it to a store across the wire is skipped, and says why.

    Why a skip and not a verdict: a store in another language receives its arguments as JSON
    from an MCP server, so a Python set or NaN can never reach it; the rule holds by construction.
    """

    def __init__(self, what: str) -> None:
        super().__init__(f"not expressible on the JSON wire ({what}): checked only on stores in the kit's process")


# ------------------------------------------------------------------ exact JSON


class _Raw(str):
    """JSON text already written (punctuation), told apart from a string value by its type."""


class _Close(str):
    """A container's closing bracket; popping it leaves the container (which may then appear again, not inside itself)."""

    container: int


def exact_json(value: Any) -> str:
    """``value`` as JSON text, or Inexpressible if JSON would change it (a tuple, a non-string key, NaN).

    Iterative, so a value nested a million levels deep (a depth bomb, SEC-5) is written, not a
    RecursionError; strings go through ``json.dumps`` whole, so large ones stay fast.
    """
    parts: list[str] = []
    stack: list[Any] = [value]
    inside: set[int] = set()  # the containers being written: meeting one again is a cycle, which JSON cannot hold
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is _Raw:
            parts.append(item)
        elif kind is _Close:
            inside.discard(item.container)
            parts.append(item)
        elif item is None:
            parts.append("null")
        elif kind is bool:
            parts.append("true" if item else "false")
        elif kind is int:
            try:
                parts.append(str(item))
            except ValueError:  # beyond the interpreter's digit limit for int-to-str
                raise Inexpressible("an integer too long to print") from None
        elif kind is float:
            if not math.isfinite(item):
                raise Inexpressible(f"the float {item!r}")
            parts.append(repr(item))
        elif kind is str:
            parts.append(_string(item))
        elif kind is list:
            stack.append(_closing("]", item, inside))
            for index in range(len(item) - 1, -1, -1):
                stack.append(item[index])
                if index:
                    stack.append(_Raw(","))
            stack.append(_Raw("["))
        elif kind is dict:
            stack.append(_closing("}", item, inside))
            entries = list(item.items())
            for index in range(len(entries) - 1, -1, -1):
                key, member = entries[index]
                if type(key) is not str:
                    raise Inexpressible(f"a map key of type {type(key).__name__}")
                stack.append(member)
                stack.append(_Raw(_string(key) + ":"))
                if index:
                    stack.append(_Raw(","))
            stack.append(_Raw("{"))
        else:
            raise Inexpressible(f"a value of type {kind.__name__}")
    return "".join(parts)


def _closing(bracket: str, container: list[Any] | dict[str, Any], inside: set[int]) -> _Close:
    if id(container) in inside:
        raise Inexpressible("a value that contains itself")
    inside.add(id(container))
    close = _Close(bracket)
    close.container = id(container)
    return close


def _string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Inexpressible("a string holding a lone surrogate") from None
    return json.dumps(text, ensure_ascii=False)


def exact_value(value: Any) -> Any:
    """``value`` checked to cross the wire unchanged, as a JSON-ready object (what ``json.dumps`` may take)."""
    return _Preencoded(exact_json(value))


class _Preencoded:
    """JSON text written by ``exact_json``, spliced into a request as it is."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def dumps_message(message: Mapping[str, Any]) -> str:
    """A request or reply as one line: members in their given order (``id`` first), pre-encoded values spliced in."""
    members = []
    for name, value in message.items():
        text = value.text if isinstance(value, _Preencoded) else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        members.append(f"{json.dumps(name)}:{text}")
    return "{" + ",".join(members) + "}"


# ------------------------------------------------------------------ backend


def backend_request(method: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The fields of a backend call (kit side)."""
    fields: dict[str, Any] = {}
    for name, value in zip(BACKEND_FIELDS[method], args):
        if name in _BYTES_FIELDS:
            if not isinstance(value, bytes | bytearray):
                raise Inexpressible(f"{name} of type {type(value).__name__}, not bytes")
            fields[name] = base64.b64encode(value).decode("ascii")
        else:
            fields[name] = exact_value(value)
    return fields


def backend_arguments(method: str, fields: Mapping[str, Any]) -> list[Any]:
    """The arguments of a backend call (server side); base64 that does not decode is a ValueError."""
    return [base64.b64decode(fields[name], validate=True) if name in _BYTES_FIELDS else fields[name]
            for name in BACKEND_FIELDS[method]]


def backend_answer(method: str, result: Any) -> Any:
    """A backend's answer as the reply's ``ok`` (server side); a wrong type goes out as it is, for the kit to judge."""
    if method == "get" and isinstance(result, VersionedRecord):
        return _record_out(result)
    if method == "list_by_prefix" and isinstance(result, list | tuple):
        return [[item[0], _record_out(item[1])] if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], VersionedRecord)
                else repr(item) for item in result]
    return result if type(result) in (int, bool) else repr(result)


def _record_out(record: VersionedRecord) -> Any:
    if not isinstance(record.data, bytes):
        return {"data": repr(record.data), "version": record.version}
    return {"data": base64.b64encode(record.data).decode("ascii"), "version": record.version}


def backend_result(method: str, call: Callable[[], str], reply: Mapping[str, Any]) -> Any:
    """The contract's value for a reply (kit side); a reply off the schema breaks BK-2."""
    ok = _ok_on_schema(f"reply.backend.{method}", "BK-2", call, reply)
    if method == "get":
        return _record_in(call, ok)
    if method == "list_by_prefix":
        return [(key, _record_in(call, record)) for key, record in ok]
    return ok


def _ok_on_schema(message: str, clause: str, call: Callable[[], str], reply: Mapping[str, Any]) -> Any:
    """The reply's ``ok``, once the reply follows ``message``'s schema; otherwise ``clause`` (the contract's answer-type rule) is broken."""
    problem = first_problem(message, reply)
    if problem is not None:
        raise ContractViolation(clause, f"{call()} was answered off the protocol's schema: {problem}")
    return reply["ok"]


def _record_in(call: Callable[[], str], record: Mapping[str, Any]) -> VersionedRecord:
    try:
        data = base64.b64decode(record["data"], validate=True)
    except (binascii.Error, ValueError):
        raise ContractViolation("BK-2", f"{call()} was answered with data that is not base64: {record['data'][:40]!r}") from None
    return VersionedRecord(data, record["version"])


# ------------------------------------------------------------------ store


def store_request(method: str, args: tuple[Any, ...]) -> dict[str, Any]:
    """The fields of a store call (kit side); a status member goes as its wire spelling."""
    fields: dict[str, Any] = {}
    for name, value in zip(STORE_FIELDS[method], args):
        fields[name] = value.value if type(value) is TaskStatus else exact_value(value)
    return fields


def store_arguments(method: str, fields: Mapping[str, Any]) -> list[Any]:
    """The arguments of a store call (server side); a status's wire spelling becomes the member."""
    values = []
    for name in STORE_FIELDS[method]:
        value = fields.get(name)
        if name == "status":
            value = coerce_status(value) or value
        values.append(value)
    return values


def task_out(task: TaskRecord) -> dict[str, Any]:
    """A TaskRecord as the protocol's ``task`` object, times in POSIX milliseconds."""
    return {
        "task_id": task.task_id,
        "owner_id": task.owner_id,
        "request_method": task.request_method,
        "status": task.status.value if isinstance(task.status, TaskStatus) else task.status,
        "status_message": task.status_message,
        "created_at_ms": _millis(task.created_at),
        "last_updated_at_ms": _millis(task.last_updated_at),
        "ttl": task.ttl,
        "poll_interval": task.poll_interval,
        "expires_at_ms": None if task.expires_at is None else _millis(task.expires_at),
        "variables": task.variables,
        "has_result": task.has_result,
        "result": task.result,
        "version": task.version,
    }


def _millis(seconds: Any) -> Any:
    return round(seconds * 1000) if isinstance(seconds, int | float) and not isinstance(seconds, bool) else seconds


def task_in(task: Mapping[str, Any]) -> TaskRecord:
    return TaskRecord(
        task_id=task["task_id"],
        owner_id=task["owner_id"],
        request_method=task["request_method"],
        status=TaskStatus(task["status"]),
        status_message=task["status_message"],
        created_at=task["created_at_ms"] / 1000,
        last_updated_at=task["last_updated_at_ms"] / 1000,
        ttl=task["ttl"],
        poll_interval=task["poll_interval"],
        expires_at=None if task["expires_at_ms"] is None else task["expires_at_ms"] / 1000,
        variables=task["variables"],
        has_result=task["has_result"],
        result=task["result"],
        version=task["version"],
    )


def store_answer(method: str, result: Any) -> Any:
    """A store's answer as the reply's ``ok`` (server side)."""
    if isinstance(result, TaskRecord):
        return task_out(result)
    if isinstance(result, TaskPage):
        return {"tasks": [task_out(task) for task in result.tasks], "next_cursor": result.next_cursor}
    if method == "get_result":
        try:
            return exact_value(result)
        except Inexpressible:  # a store that kept a value JSON cannot hold: the kit sees what it would print
            return repr(result)
    return result if type(result) in (int, bool) else repr(result)


def store_result(method: str, call: Callable[[], str], reply: Mapping[str, Any]) -> Any:
    """The contract's value for a store reply (kit side); a reply off the schema breaks TS-1."""
    ok = _ok_on_schema(f"reply.store.{method}", "TS-1", call, reply)
    if method == "list":
        return TaskPage(tuple(task_in(task) for task in ok["tasks"]), ok["next_cursor"])
    if method in ("get_result", "cleanup_expired"):
        return ok
    return task_in(ok)


def config_out(config: StoreConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in StoreConfig.__dataclass_fields__}


def config_in(fields: Mapping[str, Any]) -> StoreConfig:
    return StoreConfig(**fields)


def security_out(security: SecurityConfig) -> dict[str, Any]:
    return {"allow_anonymous": security.allow_anonymous, "anonymous_owner_ids": sorted(security.anonymous_owner_ids),
            "max_owner_id_bytes": security.max_owner_id_bytes}


def security_in(fields: Mapping[str, Any]) -> SecurityConfig:
    return SecurityConfig(allow_anonymous=fields["allow_anonymous"], anonymous_owner_ids=frozenset(fields["anonymous_owner_ids"]),
                          max_owner_id_bytes=fields["max_owner_id_bytes"])


# ------------------------------------------------------------------ errors

#: Error types by wire name: the contract's exceptions, named without their ``Error`` suffix.
ERROR_TYPES: dict[str, type[Exception]] = {
    "NotFound": NotFoundError,
    "VersionConflict": VersionConflictError,
    "CapacityExceeded": CapacityExceededError,
    "Backend": BackendError,
    **{cls.__name__.removesuffix("Error"): cls for cls in TASK_ERRORS},
    "ValueError": ValueError,
}
_WIRE_NAMES: dict[type[BaseException], str] = {cls: name for name, cls in ERROR_TYPES.items()}
#: The attributes an error carries across the wire, where its class has them.
FIGURES = ("key", "expected", "actual", "task_id", "status", "expected_version", "actual_version", "what", "limit_bytes",
           "actual_bytes", "reason", "path", "requested_ms", "max_ms", "limit", "current", "requested", "message")


def error_out(error: BaseException) -> dict[str, Any]:
    """An exception as the reply's ``error`` (server side); one outside the contract keeps its own name, for the kit to judge."""
    name = _WIRE_NAMES.get(type(error), type(error).__name__)
    out: dict[str, Any] = {"type": name, "message": str(error)}
    for figure in FIGURES[:-1]:
        if figure in vars(error):
            value = getattr(error, figure)
            if isinstance(value, TaskStatus):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            try:
                out[figure] = json.loads(exact_json(value))
            except (Inexpressible, RecursionError):
                out[figure] = repr(value)
    return out


_FOREIGN: dict[str, type[Exception]] = {}


def error_in(call: Callable[[], str], clause: str, error: Mapping[str, Any]) -> Exception:
    """The exception an error reply stands for (kit side): the contract's class with its figures, or a foreign one.

    Built without the class's constructor, so every figure is the one the implementation sent
    and the message is its own (TS-2 judges messages).
    """
    name = error.get("type") if isinstance(error, Mapping) else None
    cls = ERROR_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        shown = name if isinstance(name, str) and name.isidentifier() else "UnknownWireError"
        foreign = _FOREIGN.setdefault(shown, type(shown, (Exception,), {"__module__": "wire"}))
        message = error.get("message", "") if isinstance(error, Mapping) else repr(error)
        return foreign(message)
    problem = first_problem("reply.error", {"id": 0, "error": error})
    if problem is not None:
        raise ContractViolation(clause, f"{call()} failed with an error reply off the protocol's schema: {problem}")
    exc = cls.__new__(cls)
    Exception.__init__(exc, error["message"])
    for figure in FIGURES:
        if figure in error:
            value = error[figure]
            if figure == "status" and issubclass(cls, TaskError):
                value = coerce_status(value) or value
            elif figure == "path":
                value = tuple(value)
            setattr(exc, figure, value)
    return exc


__all__ = [
    "BACKEND_FIELDS",
    "ERROR_TYPES",
    "STORE_FIELDS",
    "Inexpressible",
    "backend_answer",
    "backend_arguments",
    "backend_request",
    "backend_result",
    "config_in",
    "config_out",
    "dumps_message",
    "error_in",
    "error_out",
    "exact_json",
    "security_in",
    "security_out",
    "store_answer",
    "store_arguments",
    "store_request",
    "store_result",
    "task_in",
    "task_out",
]
