"""Serve a Python backend or task store over the wire protocol (WIRE-PROTOCOL.md).

    python -m conformance.serve --backend reference_backend:InMemoryBackend
    pytest --backend-command="python -m conformance.serve --backend reference_backend:InMemoryBackend"

The reference every port is compared with (the same target judged in-process and across the
wire must get the same verdict), and the bridge for Python users whose code runs elsewhere.
Requests are served concurrently, each as its own task, as the protocol asks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from conformance.contract.backend import BACKEND_METHODS
from conformance.contract.store import STORE_METHODS, TaskStore
from conformance.harness.target import Target, TargetError, accepts_keyword, load_target
from conformance.wire.codec import (
    backend_answer,
    backend_arguments,
    config_in,
    config_out,
    dumps_message,
    error_out,
    security_in,
    store_answer,
    store_arguments,
)
from conformance.wire.schema import PROTOCOL_VERSION

#: Lines may hold a 4 MiB record in base64, and a depth bomb; far above either.
LINE_LIMIT = 1 << 30
_LEADING_ID = re.compile(rb'^\s*\{\s*"id"\s*:\s*(\d+)')


class InstanceClock:
    """An instance's clock: the ``now_ms`` of the latest request, never going backwards."""

    def __init__(self, millis: int) -> None:
        self.millis = millis

    def __call__(self) -> float:
        return self.millis / 1000

    def advance_to(self, millis: int) -> None:
        self.millis = max(self.millis, millis)


class Server:
    """One process serving many instances of one target."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.instances: dict[str, tuple[Any, Callable[[], Awaitable[None]], InstanceClock | None]] = {}
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()

    def hello(self, request: dict[str, Any]) -> Any:
        if request.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(f"this server speaks protocol {PROTOCOL_VERSION}, not {request.get('protocol')!r}")
        declared = self.target.capabilities
        capabilities: dict[str, Any] = {"clock": self.target.accepts_clock, "waivers": dict(declared.waivers)}
        if self.target.kind == "backend":
            capabilities.update(expired_records=declared.expired_records.value, max_record_bytes=declared.max_record_bytes)
        else:
            capabilities["config"] = accepts_keyword(self.target.factory, "config")
        return {"protocol": PROTOCOL_VERSION, "contract": self.target.kind, "name": self.target.spec, "capabilities": capabilities}

    async def open(self, request: dict[str, Any]) -> Any:
        clock = None
        if self.target.accepts_clock:
            clock = InstanceClock(request["now_ms"] if isinstance(request.get("now_ms"), int) else round(time.time() * 1000))
        injected: dict[str, Any] = {"clock": clock}
        if "config" in request:
            injected["config"] = config_in(request["config"])
        if "security" in request:
            injected["security"] = security_in(request["security"])
        instance, closer = await self.target.open(**injected)
        self._next += 1
        handle = str(self._next)
        self.instances[handle] = (instance, closer, clock)
        if self.target.kind == "store":
            store: TaskStore = instance
            return {"instance": handle, "config": config_out(store.config)}
        return {"instance": handle}

    async def call(self, op: str, request: dict[str, Any]) -> Any:
        entry = self.instances.get(request.get("instance"))  # type: ignore[arg-type]
        if entry is None:
            raise ProtocolError(f"no open instance {request.get('instance')!r}")
        instance, closer, clock = entry
        if op == "close":
            del self.instances[request["instance"]]
            await closer()
            return None
        if clock is not None and isinstance(request.get("now_ms"), int):
            clock.advance_to(request["now_ms"])
        if self.target.kind == "backend":
            if op not in BACKEND_METHODS:
                raise ProtocolError(f"a backend has no operation {op!r}")
            return backend_answer(op, await getattr(instance, op)(*backend_arguments(op, request)))
        if op not in STORE_METHODS:
            raise ProtocolError(f"a task store has no operation {op!r}")
        return store_answer(op, await getattr(instance, op)(*store_arguments(op, request)))

    async def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        try:
            if op == "hello":
                result = self.hello(request)
            elif op == "open":
                result = await self.open(request)
            elif isinstance(op, str):
                result = await self.call(op, request)
            else:
                raise ProtocolError("a request needs an op")
        except Exception as error:  # every failure is answered, never fatal to the server
            return {"id": request.get("id"), "error": error_out(error)}
        return {"id": request.get("id"), "ok": result}

    async def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
        except RecursionError:
            # Nested deeper than the parser takes: an MCP server refuses such a request as too deep (SEC-5).
            reply: dict[str, Any] = {"id": _leading_id(line), "error": {
                "type": "VariableValidation", "message": "value nested too deep to parse", "what": "value", "reason": "depth"}}
        except ValueError as exc:
            reply = {"id": _leading_id(line), "error": {"type": "Protocol", "message": f"not JSON: {exc}"}}
        else:
            reply = await self.answer(request) if isinstance(request, dict) else {
                "id": None, "error": {"type": "Protocol", "message": "a request is a JSON object"}}
        try:
            text = dumps_message(reply)
        except (TypeError, ValueError, RecursionError) as exc:
            text = dumps_message({"id": reply.get("id"), "error": {"type": "Protocol", "message": f"unserialisable answer: {exc}"}})
        sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
        sys.stdout.buffer.flush()

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            task = asyncio.create_task(self.handle(line))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for _instance, closer, _clock in self.instances.values():
            with contextlib.suppress(Exception):
                await closer()


class ProtocolError(Exception):
    """A request the server does not understand; answered with error type ``Protocol``."""


def _leading_id(line: bytes) -> int | None:
    found = _LEADING_ID.match(line)
    return int(found.group(1)) if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance.serve", description=__doc__.split("\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--backend", metavar="MODULE:ATTR", help="a StorageBackend factory")
    which.add_argument("--store", metavar="MODULE:ATTR", help="a TaskStore factory")
    parser.add_argument("--option", action="append", metavar="KEY=VALUE", help="keyword argument for the factory (repeatable)")
    args = parser.parse_args(argv)
    kind = "backend" if args.backend else "store"
    try:
        target = load_target(args.backend or args.store, args.option, f"--{kind}", "--option",
                             kind=kind, methods=BACKEND_METHODS if args.backend else STORE_METHODS)
    except TargetError as exc:
        print(f"conformance.serve: {exc}", file=sys.stderr)
        return 2
    asyncio.run(Server(target).serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
