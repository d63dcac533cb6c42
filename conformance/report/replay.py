"""Replaying recorded calls against a target, outside the kit: the engine of every reproduction script.

Each script the kit writes (``--conformance-repro``) carries this module's source whole, so
it runs with nothing of the kit but its public contract (``conformance.contract``; for a
target behind ``--backend-command`` also its wire client). The kit imports the same module
to write down what the target answered, so recording and replay judge answers one way.

The judgment: the kit's checks are a function of the calls and the answers. If the target,
asked the same calls, gives the same answers, the kit's check fails again; so a replay whose
answers all match the failing run *reproduces* the violation. Answers are compared up to
what the target is free to choose (SPEC.md): versions up to a renaming that keeps their
order, task ids up to one that keeps their order, cursors up to any renaming, and
timestamps only as "the injected clock's time" or not. Concurrent calls are released in the
recorded real-time order: a call starts only after every call that returned before it started,
so the replay is never more concurrent than the failing run, and matching answers are still a
violation. Where the target chooses differently (random task ids in another order, another
interleaving), the attempt is repeated.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import enum
import hashlib
import importlib
import inspect
import itertools
import json
import os
import random
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from typing import Any

import anyio

# ------------------------------------------------------------------ values
# A value is written as a flat table of nodes, children before parents, so depth bombs
# 100,000 levels deep and self-referencing lists survive JSON and come back exactly.

_CONTAINERS = (list, dict, set)


def encode(value: Any) -> list[Any]:
    """``[nodes, root]``: ``value`` as a flat table (no recursion, so any depth)."""
    nodes: list[Any] = []
    done: dict[int, int] = {}
    keep: list[Any] = []  # holds each encoded object, so no id is reused while encoding
    stack: list[tuple[Any, bool]] = [(value, False)]
    results: list[int] = []
    while stack:
        item, expanded = stack.pop()
        if not expanded and id(item) in done:  # met before: a shared value, or a cycle back to a list or dict
            results.append(done[id(item)])
            continue
        kind = type(item)
        if not _is_composite(item) and kind not in _CONTAINERS:
            results.append(_leaf(nodes, item))
            continue
        children = _children(item)
        if not expanded:
            if isinstance(item, _CONTAINERS):  # mutable: its slot first, so a cycle can point back at it
                done[id(item)] = len(nodes)
                nodes.append(None)
                keep.append(item)
            stack.append((item, True))
            stack.extend((child, False) for child in reversed(children))
            continue
        indices = results[len(results) - len(children):] if children else []
        del results[len(results) - len(indices):]
        node = _composite(item, indices)
        if isinstance(item, _CONTAINERS):
            nodes[done[id(item)]] = node
        else:
            done[id(item)] = len(nodes)
            nodes.append(node)
            keep.append(item)
        results.append(done[id(item)])
    return [nodes, results[-1]]


def _is_composite(item: Any) -> bool:
    return type(item) in (tuple, frozenset) or (dataclasses.is_dataclass(item) and not isinstance(item, type))


def _children(item: Any) -> list[Any]:
    if type(item) is dict:
        return [part for pair in item.items() for part in pair]
    if type(item) in (set, frozenset):
        return sorted(item, key=repr)
    if dataclasses.is_dataclass(item):
        return [getattr(item, f.name) for f in dataclasses.fields(item)]
    return list(item)


def _composite(item: Any, indices: list[int]) -> list[Any]:
    kind = type(item)
    if kind is dict:
        return ["d", indices]
    if kind in (list, tuple):
        return ["l" if kind is list else "t", indices]
    if kind in (set, frozenset):
        return ["set" if kind is set else "fz", indices]
    return ["dc", kind.__name__, [f.name for f in dataclasses.fields(item)], indices]


def _leaf(nodes: list[Any], item: Any) -> int:
    kind = type(item)
    if item is None:
        node: list[Any] = ["n"]
    elif kind is bool:
        node = ["b", item]
    elif kind is int:
        node = ["i", hex(item)]  # hex: no digit limit, exact at any size
    elif kind is float:
        node = ["f", item.hex()]
    elif kind is str:
        node = ["s", item]
    elif kind in (bytes, bytearray):
        node = ["y" if kind is bytes else "ba", base64.b64encode(bytes(item)).decode("ascii")]
    elif isinstance(item, enum.Enum):
        node = ["enum", kind.__name__, _encoded_enum_value(item)]
    elif kind is decimal.Decimal:
        node = ["dec", str(item)]
    else:  # something JSON has no word for, and no plain Python literal: an object of its own
        node = ["opaque", f"{kind.__module__}.{kind.__qualname__}", _safe_repr(item)]
    nodes.append(node)
    return len(nodes) - 1


def _encoded_enum_value(item: enum.Enum) -> Any:
    return item.value if isinstance(item.value, (str, int)) else _safe_repr(item.value)


class Opaque:
    """Stands in for an object the recording could not write down (the kit's non-JSON probes)."""

    def __init__(self, kind: str, shown: str) -> None:
        self.kind, self.shown = kind, shown

    def __repr__(self) -> str:
        return f"<{self.kind} {self.shown}>"


def decode(table: list[Any]) -> Any:
    """The value ``encode`` wrote: containers first made empty, then the rest bottom-up, then filled."""
    nodes, root = table
    built: list[Any] = [None] * len(nodes)
    for index, node in enumerate(nodes):
        if node[0] in ("l", "d", "set"):
            built[index] = {"l": list, "d": dict, "set": set}[node[0]]()
    for index, node in enumerate(nodes):
        tag = node[0]
        if tag in ("l", "d", "set"):
            continue
        if tag == "t":
            built[index] = tuple(built[i] for i in node[1])
        elif tag == "fz":
            built[index] = frozenset(built[i] for i in node[1])
        elif tag == "dc":
            built[index] = _dataclass(node[1], dict(zip(node[2], (built[i] for i in node[3]))))
        else:
            built[index] = _decode_leaf(node)
    for index, node in enumerate(nodes):
        tag, made = node[0], built[index]
        if tag == "l":
            made.extend(built[i] for i in node[1])
        elif tag == "d":
            parts = node[1]
            for k, v in zip(parts[::2], parts[1::2]):
                made[built[k]] = built[v]
        elif tag == "set":
            made.update(built[i] for i in node[1])
    return built[root]


def _decode_leaf(node: list[Any]) -> Any:
    tag = node[0]
    if tag == "n":
        return None
    if tag == "b":
        return node[1]
    if tag == "i":
        return int(node[1], 16)
    if tag == "f":
        return float.fromhex(node[1])
    if tag == "s":
        return node[1]
    if tag in ("y", "ba"):
        data = base64.b64decode(node[1])
        return data if tag == "y" else bytearray(data)
    if tag == "enum":
        return _contract(node[1])(node[2])
    if tag == "dec":
        return decimal.Decimal(node[1])
    return Opaque(node[1], node[2])


def _contract(name: str) -> Any:
    import conformance.contract as contract

    return getattr(contract, name)


def _dataclass(name: str, fields: dict[str, Any]) -> Any:
    return _contract(name)(**fields)


def _safe_repr(value: Any, limit: int = 200) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile object's own repr: never let it stop the recording
        text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------ answers

#: Values the target chooses, compared up to a renaming: versions keep their order; task ids and cursors need not
#: (ids tie-break a listing, checked where they do: ``Renaming._ties``).
ORDERED, RENAMED = ("ver",), ("id", "cur")


def observe(contract: str, method: str, result: Any, error: BaseException | None, lost: str | None, clocks: set[int]) -> Any:
    """An answer as the replay compares it (JSON-able); ``clocks`` are the injected clock's instants, in ms."""
    if lost is not None:
        return ["lost", lost]
    if error is not None:
        return _error(error)
    if contract == "backend":
        return _backend_answer(method, result)
    from conformance.contract import TaskPage, TaskRecord

    if isinstance(result, TaskRecord):
        return _task(result, clocks)
    if isinstance(result, TaskPage):
        cursor = None if result.next_cursor is None else ["cur", result.next_cursor]
        return ["page", [_task(t, clocks) if isinstance(t, TaskRecord) else _other(t) for t in result.tasks], cursor]
    if method == "cleanup_expired" and type(result) is int:
        return ["count", result]
    return ["value", encode(result)]


def _backend_answer(method: str, result: Any) -> Any:
    if method in ("put", "put_if_version"):
        return _version(result)
    if method == "get":
        return _record(result)
    if method == "list_by_prefix":
        if not isinstance(result, (list, tuple)):  # a list or a tuple: SPEC BK-2 lets a backend answer either
            return _other(result)
        # In any order (BK-12): compared sorted, so a backend listing in hash or scan order replays alike.
        return ["listed", sorted((_listed(item) for item in result), key=lambda shown: json.dumps(shown, sort_keys=True))]
    if method == "delete":
        return ["bool", result] if type(result) is bool else _other(result)
    return ["count", result] if type(result) is int else _other(result)


def _listed(item: Any) -> Any:
    if isinstance(item, tuple) and len(item) == 2:
        key = ["key", item[0]] if type(item[0]) is str else _other(item[0])
        return [key, _record(item[1])]
    return _other(item)


def _record(record: Any) -> Any:
    from conformance.contract import VersionedRecord

    if not isinstance(record, VersionedRecord):
        return _other(record)
    data = record.data
    shown = ["bytes", len(data), hashlib.sha256(data).hexdigest()[:32]] if type(data) is bytes else _other(data)
    return ["record", shown, _version(record.version)]


def _version(value: Any) -> Any:
    return ["ver", value] if type(value) is int else _other(value)


def _task(record: Any, clocks: set[int]) -> Any:
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if f.name == "task_id":
            fields[f.name] = ["id", value] if type(value) is str else _other(value)
        elif f.name == "version":
            fields[f.name] = _version(value)
        elif f.name in ("created_at", "last_updated_at"):
            fields[f.name] = _instant(value, clocks)
        elif f.name == "expires_at" and type(value) in (int, float) and type(record.created_at) in (int, float):
            fields[f.name] = ["after creation", round((value - record.created_at) * 1000)]  # what a TTL makes of it
        else:
            fields[f.name] = ["value", encode(value)]
    return ["task", fields]


def _instant(value: Any, clocks: set[int]) -> Any:
    """A timestamp as what the layer above can tell: the injected clock's time at some call, or another."""
    if type(value) not in (int, float):
        return _other(value)
    ms = round(value * 1000)
    return ["at", ms] if ms in clocks else ["at", "not the injected clock"]


#: An error's figures that are versions or task ids: compared up to the renaming, like the answers holding them.
_ERROR_VERSIONS, _ERROR_IDS = ("expected", "actual", "expected_version", "actual_version"), ("task_id",)


def _error(error: BaseException) -> Any:
    """An error as the kit judges it: its type, and for the contract's own errors their figures, message (ids
    renamed) and whether they chain a cause. Any other error breaks the contract by its type alone (BK-3, TS-2)."""
    from conformance.contract import StorageError, TaskError

    if not isinstance(error, (StorageError, TaskError)):
        return ["raises", type(error).__name__]
    # A backend's error is judged by its figures (BK-3), its wording is free; a store's message is judged too (TS-2, TS-7).
    worded = isinstance(error, TaskError)
    figures: dict[str, Any] = {}
    for name, value in sorted(vars(error).items()):
        if name.startswith(("_", "conformance_")) or (name == "message" and not worded):  # private, the kit's note, free text
            continue
        if name in _ERROR_VERSIONS and type(value) is int:
            figures[name] = ["ver", value]
        elif name in _ERROR_IDS and type(value) is str:
            figures[name] = ["id", value]
        else:
            figures[name] = ["value", encode(value)]
    chained = error.__cause__ is not None or (error.__context__ is not None and not error.__suppress_context__)
    message = ["message", _safe_repr(str(error), 2000)] if worded else None
    return ["raises", type(error).__name__, figures, message, chained]


def _is_task(answer: Any) -> bool:
    return isinstance(answer, list) and len(answer) == 2 and answer[0] == "task" and isinstance(answer[1], dict)


def _other(value: Any) -> Any:
    return ["other", type(value).__name__, _safe_repr(value)]


class Renaming:
    """The target's own choices matched between the failing run and a replay (see the module docstring)."""

    def __init__(self) -> None:
        self.forward: dict[str, dict[Any, Any]] = {tag: {} for tag in (*ORDERED, *RENAMED)}

    def differs(self, recorded: Any, replayed: Any) -> str | None:
        """None if the two answers are the same up to the renaming (which grows); else what differs."""
        stack = [(recorded, replayed)]
        messages: list[tuple[Any, Any]] = []
        while stack:
            was, now = stack.pop()
            if isinstance(was, list) and len(was) == 2 and isinstance(was[0], str) and was[0] in self.forward:
                if not (isinstance(now, list) and len(now) == 2 and now[0] == was[0]):
                    return "a value of another kind"
                problem = self._pair(was[0], was[1], now[1])
                if problem:
                    return problem
            elif isinstance(was, list) and len(was) == 2 and was[0] == "message":
                messages.append((was, now))  # after the ids beside it are matched
            elif isinstance(was, list) and was and was[0] == "value":
                if was != now:
                    return "another value"
            elif isinstance(was, list) and isinstance(now, list):
                if len(was) != len(now):
                    return "another number of items"
                if was and was[0] == "page":
                    stack.append((("ties", was[1]), ("ties", now[1])))
                stack.extend(zip(was, now))
            elif isinstance(was, tuple):  # a page's ties, queued above: see _ties
                problem = self._ties(was[1], now[1])
                if problem:
                    return problem
            elif isinstance(was, dict) and isinstance(now, dict):
                if was.keys() != now.keys():
                    return "other fields"
                stack.extend((was[k], now[k]) for k in was)
            elif was != now:
                return "another answer"
        for was, now in messages:
            if not isinstance(now, list) or self._renamed_back(str(now[1])) != was[1]:
                return "another message"
        return None

    def _renamed_back(self, text: str) -> str:
        """A replay's message with the task ids it quotes spelled as the failing run's were."""
        for was, now in self.forward["id"].items():
            if isinstance(now, str) and now and now != was:
                text = text.replace(now, str(was))
        return text

    def _ties(self, was: list[Any], now: list[Any]) -> str | None:
        """Tasks created at the same instant are listed by task id: the replay's ids must tie-break as the recorded ones did.

        Only there does the order of ids show (SPEC TS-16); elsewhere any renaming of ids is the store's freedom.
        """
        for (first, second), (first_now, second_now) in zip(itertools.pairwise(was), itertools.pairwise(now)):
            if not (_is_task(first) and _is_task(second) and _is_task(first_now) and _is_task(second_now)):
                continue
            if first[1]["created_at"] != second[1]["created_at"]:
                continue
            try:
                if (first[1]["task_id"][1] < second[1]["task_id"][1]) != (first_now[1]["task_id"][1] < second_now[1]["task_id"][1]):
                    return "task ids that tie-break in another order"
            except TypeError:
                return "task ids of another type"
        return None

    def _pair(self, tag: str, was: Any, now: Any) -> str | None:
        forward = self.forward[tag]
        if was in forward:
            return None if forward[was] == now else f"{tag} {was!r} was {forward[was]!r} before, now {now!r}"
        if now in forward.values():
            return f"{tag} {now!r} stands for two recorded values"
        if tag in ORDERED:
            try:
                for other_was, other_now in forward.items():
                    if (was < other_was) != (now < other_now):
                        return f"{tag}s in another order"
            except TypeError:
                return f"{tag} of another type"
        forward[was] = now
        return None

    def translate(self, tag: str, value: Any) -> Any:
        """An argument the failing run derived from an answer, as this replay's answer spells it."""
        forward = self.forward[tag]
        if value in forward:
            return forward[value]
        if tag == "ver" and type(value) is int and forward:
            # A version no answer handed out (a stale or made-up one): keep its distance to the nearest one seen.
            nearest = min(forward, key=lambda v: (abs(v - value), v))
            return forward[nearest] + (value - nearest)
        return value


#: Where a store method takes a task id the store chose, and where ``list`` takes a cursor.
_TASK_ID_METHODS = ("get", "update_status", "set_variables", "set_result", "get_result", "complete_with_result", "cancel")


def translated(contract: str, method: str, args: tuple[Any, ...], renaming: Renaming) -> tuple[Any, ...]:
    moved = list(args)
    if contract == "backend" and method == "put_if_version" and len(moved) > 2:
        moved[2] = renaming.translate("ver", moved[2])
    elif contract == "store" and method in _TASK_ID_METHODS and moved:
        moved[0] = renaming.translate("id", moved[0])
    elif contract == "store" and method == "list" and len(moved) > 1 and moved[1] is not None:
        moved[1] = renaming.translate("cur", moved[1])
    return tuple(moved)


# ------------------------------------------------------------------ the target


class Clock:
    """The clock the script injects, set to each call's recorded instant."""

    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> float:
        return self.ms / 1000


def _accepts(factory: Callable[..., Any], name: str) -> bool:
    try:
        parameter = inspect.signature(factory).parameters.get(name)
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


class Target:
    """Opens fresh instances the way the kit does: the factory given what it accepts, awaited or entered as needed."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.case = case
        self.process: Any = None
        if case.get("command"):
            from conformance.wire import WireProcess, wire_target

            clause = "BK-19" if case["kind"] == "backend" else "TS-23"
            self.process = WireProcess(case["command"], f"--{case['kind']}-command", clause)
            self.factory: Callable[..., Any] = wire_target(self.process, case["kind"], case["timeout"]).factory
        else:
            module_name, _, attributes = case["factory"].partition(":")
            found: Any = importlib.import_module(module_name)
            for part in attributes.split("."):
                found = getattr(found, part)
            self.factory = found

    async def open(self, clock: Clock | None, injected: dict[str, Any]) -> tuple[Any, Callable[[], Any]]:
        offered = {"clock": clock, **injected}
        kwargs = {k: v for k, v in offered.items() if v is not None and _accepts(self.factory, k)}
        kwargs.update(self.case.get("options") or {})
        made = self.factory(**kwargs)
        if inspect.isawaitable(made):
            made = await made
        if hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
            entered = await made.__aenter__()
            return entered, lambda: made.__aexit__(None, None, None)
        for name in ("aclose", "close"):
            if callable(getattr(made, name, None)):
                return made, getattr(made, name)
        return made, lambda: None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


# ------------------------------------------------------------------ one attempt


class Outcome:
    """What one attempt found: the first call whose answer differed, if any, and the contract's complaint about its history."""

    def __init__(self) -> None:
        self.first_difference: str | None = None
        self.broken: str | None = None
        #: Each call as replayed, for the checker: (method, args, start, end, result, error, lost).
        self.calls: list[tuple[Any, ...]] = []


def recorded_ids(case: dict[str, Any]) -> list[uuid.UUID]:
    """The ids a store handed out at creation, in order, if they are all UUIDs (else none)."""
    ids = []
    for step in case["steps"]:
        answer = step["o"]
        if step["m"] == "create" and _is_task(answer) and answer[1]["task_id"][0] == "id":
            try:
                ids.append(uuid.UUID(answer[1]["task_id"][1]))
            except (ValueError, TypeError, AttributeError):
                return []
    return ids


class _SameIds:
    """While replaying in this process, ``uuid.uuid4`` hands out the recorded task ids first, in order.

    Why: a store listing tasks created at the same instant orders them by id (SPEC TS-16), so
    with ids of its own a replay shows another order. A store drawing its ids elsewhere is
    unaffected, and its replay is retried until its ids tie-break the same way.
    """

    def __init__(self, ids: list[uuid.UUID]) -> None:
        self.ids, self.real = list(ids), uuid.uuid4

    def __enter__(self) -> None:
        queue = list(self.ids)
        real = self.real
        uuid.uuid4 = lambda: queue.pop(0) if queue else real()

    def __exit__(self, *_exc: object) -> None:
        uuid.uuid4 = self.real


@dataclasses.dataclass(frozen=True)
class Plan:
    """What every attempt replays, worked out once per script: the calls in start order, the calls each waits for
    (those that returned before it started), the injected clock's instants, how many calls overlapped, and the
    task ids to hand back (``_SameIds``)."""

    case: dict[str, Any]
    steps: list[dict[str, Any]]
    waits: list[list[int]]
    clocks: set[int]
    overlapping: int
    ids: list[uuid.UUID]


def plan(case: dict[str, Any]) -> Plan:
    """A case's plan: worked out once, so each of up to a thousand attempts only replays."""
    steps = sorted(case["steps"], key=lambda s: s["s"])
    waits = [[before for before, other in enumerate(steps) if other["e"] is not None and other["e"] < step["s"]] for step in steps]
    return Plan(case, steps, waits, {step["t"] for step in steps if step["t"] is not None}, concurrent_calls(steps),
                recorded_ids(case) if not case.get("command") else [])


async def attempt(plan: Plan, target: Target, jitter: random.Random | None) -> Outcome:
    """Replay every call once on fresh instances; the outcome names the first answer that differed."""
    with _SameIds(plan.ids):
        return await _attempt(plan, target, jitter)


async def _attempt(plan: Plan, target: Target, jitter: random.Random | None) -> Outcome:
    case, steps, clocks = plan.case, plan.steps, plan.clocks
    renaming, outcome = Renaming(), Outcome()
    ticks = itertools.count(1)
    instances: dict[int, tuple[Any, Clock | None]] = {}
    closers = []
    try:
        for spec in case["instances"]:
            clock = Clock() if spec["clock"] else None
            if clock is not None and spec.get("opened_ms") is not None:
                clock.ms = spec["opened_ms"]
            made, closer = await target.open(clock, decode(spec["injected"]))
            instances[spec["number"]] = (made, clock)
            closers.append(closer)
        finished = [anyio.Event() for _ in steps]

        async def run(index: int) -> None:
            step = steps[index]
            for before in plan.waits[index]:
                await finished[before].wait()
            if jitter is not None:
                for _ in range(jitter.randrange(3)):
                    await anyio.lowlevel.checkpoint()
            made, clock = instances[step["n"]]
            if clock is not None and step["t"] is not None:
                clock.ms = step["t"]
            args, kwargs = decode(step["a"])
            args = translated(case["contract"], step["m"], args, renaming)
            result: Any = None
            error: BaseException | None = None
            lost: str | None = None
            start = next(ticks)
            try:
                with anyio.fail_after(case["timeout"]):
                    result = await getattr(made, step["m"])(*args, **kwargs)
            except TimeoutError:
                lost = "timeout"
            except Exception as raised:  # the target's answer, whatever it is
                error = raised
            outcome.calls.append((step["m"], args, start, next(ticks), result, error, lost is not None, step["t"]))
            now = observe(case["contract"], step["m"], result, error, lost, clocks)
            problem = renaming.differs(step["o"], now)
            if problem and outcome.first_difference is None:
                outcome.first_difference = (
                    f"call {index + 1} of {len(steps)}, {step['d']}: the failing run saw {_shown(step['o'])}, "
                    f"this replay {_shown(now)} ({problem})"
                )
            finished[index].set()

        async with anyio.create_task_group() as group:
            for index in range(len(steps)):
                group.start_soon(run, index)
        if outcome.first_difference is not None and plan.overlapping:
            outcome.broken = _checked(case, outcome, instances, clocks)
    finally:
        for closer in reversed(closers):
            done = closer()
            if inspect.isawaitable(done):
                await done
    return outcome


def _checked(case: dict[str, Any], outcome: Outcome, instances: dict[int, tuple[Any, Clock | None]], clocks: set[int]) -> str | None:
    """The kit's checker on a concurrent replay whose race met other calls (``conformance.checker.replayed``)."""
    from conformance.checker.replayed import ReplayedCall, violation
    from conformance.contract import StoreConfig

    # A listing may come as a tuple (SPEC BK-2); the model reads lists.
    calls = [ReplayedCall(m, tuple(args), s, e, list(r) if m == "list_by_prefix" and type(r) is tuple else r, err, lost,
                          None if t is None else t / 1000)
             for m, args, s, e, r, err, lost, t in sorted(outcome.calls, key=lambda call: call[2])]
    now = (next(iter(clocks)) / 1000) if clocks else time.time()
    config = next((getattr(made, "config", None) for made, _ in instances.values()), None)
    return violation(case["contract"], calls, now=now, expired_records=case.get("expired_records") or "kept_until_cleanup",
                     config=config if isinstance(config, StoreConfig) else None)


def _shown(answer: Any) -> str:
    text = json.dumps(answer)
    return text if len(text) <= 120 else text[:117] + "..."


def concurrent_calls(steps: list[dict[str, Any]]) -> int:
    """How many calls overlapped another in the failing run."""
    overlapping = 0
    for step in steps:
        if any(o is not step and o["s"] < (step["e"] or 1 << 62) and step["s"] < (o["e"] or 1 << 62) for o in steps):
            overlapping += 1
    return overlapping


# ------------------------------------------------------------------ the script's main


#: Attempts and seconds a replay may take: more for concurrent calls, whose interleaving the loop picks.
SEQUENTIAL_BUDGET, CONCURRENT_BUDGET = (1000, 20.0), (1000, 30.0)
#: A replay that differs at the same call in the same way this many times running is a target that now answers
#: otherwise, not a target choosing differently: stop there.
SETTLED = 3


def main(case: dict[str, Any], argv: list[str] | None = None) -> int:
    """Replay until the violation reproduces or the attempts run out: 1 reproduced, 0 not, 2 could not run.

    ``--factory MODULE:ATTR`` replays against another factory (a fixed copy, say) instead of the recorded one.
    """
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--factory":
        case = {**case, "factory": argv[1], "command": None, "target": argv[1]}
    elif argv:
        print("usage: python THIS_FILE [--factory MODULE:ATTR]")
        return 2
    if os.path.isdir(case.get("cwd") or ""):
        os.chdir(case["cwd"])
        sys.path.insert(0, case["cwd"])
    planned = plan(case)
    overlapping = planned.overlapping
    attempts, budget = CONCURRENT_BUDGET if overlapping else SEQUENTIAL_BUDGET
    print(f"replaying {len(case['steps'])} call(s) of the failing run of {case['test']}")
    print(f"against {case['target']} on {case['loop']}")
    if overlapping:
        print(f"{overlapping} of them ran concurrently. The replay keeps the recorded real-time order (a call starts")
        print("only after every call that returned before it started) and lets the event loop interleave the rest,")
        print(f"with random yields from the second attempt on; the kit ran them {case.get('steering') or 'as the target interleaved them'}.")
    try:
        target = Target(case)
    except Exception as exc:  # the factory cannot be found: a script that cannot run is not a fixed bug
        print(f"cannot load the target: {type(exc).__name__}: {exc}")
        return 2
    started = time.monotonic()
    differences: list[str] = []
    switching = sys.getswitchinterval()
    if overlapping:
        sys.setswitchinterval(1e-6)  # threads switch as often as the kit makes them when it races them
    try:
        for number in range(1, attempts + 1):
            jitter = random.Random(number) if overlapping and number > 1 else None
            try:
                outcome = anyio.run(attempt, planned, target, jitter, backend=case["loop"])
            except Exception as exc:  # the factory or a teardown raised: say so, do not call it fixed
                cause: BaseException = exc
                while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
                    cause = cause.exceptions[0]
                print(f"could not replay: {type(cause).__name__}: {cause}")
                return 2
            if outcome.first_difference is None:
                print(f"REPRODUCED on attempt {number}: every answer matched the failing run, so this still holds:")
                print(f"  violates {case['headline']}")
                for line in case["message"].splitlines()[:12]:
                    print(f"  {line}")
                return 1
            if outcome.broken is not None:
                print(f"REPRODUCED on attempt {number}: the race met other calls this time ({outcome.first_difference}),")
                print("and the kit's checker proves the replayed history breaks the contract again:")
                for line in outcome.broken.splitlines()[:12]:
                    print(f"  {line}")
                return 1
            differences.append(outcome.first_difference)
            settled = len(differences) >= SETTLED and len(set(differences[-SETTLED:])) == 1
            if (settled and not overlapping) or time.monotonic() - started > budget:
                break
    finally:
        sys.setswitchinterval(switching)
        target.stop()
    print(f"not reproduced in {len(differences)} attempt(s): the target now answers differently, first at")
    print(f"  {differences[0]}")
    print("If you fixed the bug, run the kit again to confirm the rule holds.")
    return 0


def pack(case: dict[str, Any]) -> str:
    """A case as the text a script carries (compressed JSON in base85)."""
    return base64.b85encode(zlib.compress(json.dumps(case, separators=(",", ":")).encode("utf-8"), 9)).decode("ascii")


def run(packed: str) -> None:
    """A script's entry point: exit 1 only for a reproduced violation, never for a crash of the script itself."""
    try:
        status = main(json.loads(zlib.decompress(base64.b85decode(packed))))
    except Exception:  # the replay itself broke: say how, and do not let it pass for a reproduction
        import traceback

        traceback.print_exc()
        print("the reproduction script itself failed (exit 2): please report it with this script")
        status = 2
    sys.exit(status)
