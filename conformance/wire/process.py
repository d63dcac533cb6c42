"""One long-lived implementation process, spoken to in JSON lines: requests by id, replies in any order.

Three threads keep the process off every event loop: a writer (a 5 MB request never blocks
the loop that sends it), a reader (replies are matched to their requests by id), and a
stderr reader (the implementation's last lines, shown with any failure). Whatever goes
wrong with the process ends in one line naming what happened, and every call waiting on it,
or made after, fails at once with that line: a broken bridge never hangs a run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import queue
import shlex
import subprocess
import threading
from collections.abc import Callable
from typing import Any

import anyio
import sniffio

from conformance.spec import ContractViolation
from conformance.wire.codec import dumps_message
from conformance.wire.schema import PROTOCOL_VERSION, first_problem

#: Lines of the implementation's stderr kept for failure reports.
STDERR_LINES = 50
#: Seconds the process is given to exit once its stdin is closed, before it is killed.
EXIT_GRACE = 5.0

Reply = dict[str, Any]


class WireStartError(Exception):
    """The command could not be started or did not complete the handshake; one line a user can act on."""


class WireBroken(ContractViolation):
    """The process crashed, wrote something that is not a reply, or answered an id never sent.

    A violation of the call's timeout clause (BK-19, TS-23): the call never completes. The
    message says what the process did instead, with its last stderr lines.
    """


class WireProcess:
    """The implementation behind ``--backend-command`` or ``--store-command``, shared by every test of a run."""

    def __init__(self, command: str, flag: str, clause: str) -> None:
        self.command = command
        self.flag = flag
        #: The clause a broken process is reported under: the contract's timeout clause.
        self.clause = clause
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, Callable[[Reply | WireBroken], None]] = {}
        #: Ids whose caller gave up (a timeout): their late replies are dropped, not called unknown.
        self._abandoned: set[int] = set()
        self._broken: WireBroken | None = None
        self._outbox: queue.Queue[bytes | None] = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        #: stderr lines seen so far, so a test can show the lines written while it ran.
        self.stderr_count = 0
        self._lines_read = 0
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise WireStartError(f"{flag} {command!r}: cannot split the command: {exc}") from None
        if not argv:
            raise WireStartError(f"{flag} is empty: give the command that starts the implementation")
        try:
            self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise WireStartError(f"{flag} {command!r}: cannot start: {exc.strerror or exc}") from None
        self._threads = [threading.Thread(target=target, name=f"wire-{name}", daemon=True)
                         for target, name in ((self._stderr_loop, "stderr"), (self._write_loop, "writer"), (self._read_loop, "reader"))]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ requests

    def handshake(self, contract: str, timeout: float) -> dict[str, Any]:
        """Send ``hello`` and return what the implementation declares; WireStartError if it does not answer well."""
        try:
            reply = self.call("hello", {"protocol": PROTOCOL_VERSION, "contract": contract}, timeout, request_id=0)
        except WireBroken as exc:
            self.stop()
            raise WireStartError(exc.detail) from None
        if "error" in reply:
            self.stop()
            raise WireStartError(f"{self.flag} {self.command!r} refused hello: {str(reply['error'].get('message'))[:200]}")
        problem = first_problem("reply.hello", reply)
        if problem is None and reply["ok"]["contract"] != contract:
            problem = f"it implements a {reply['ok']['contract']}, and {self.flag} runs the {contract} suite"
        if problem is not None:
            self.stop()
            raise WireStartError(f"{self.flag} {self.command!r}: its answer to hello is not the protocol's: {problem}")
        hello: dict[str, Any] = reply["ok"]
        return hello

    def call(self, op: str, fields: dict[str, Any], timeout: float, request_id: int | None = None) -> Reply:
        """One request from a thread with no event loop (the handshake, the kit's probe); blocks up to ``timeout``."""
        done = threading.Event()
        holder: list[Reply | WireBroken] = []

        def deliver(reply: Reply | WireBroken) -> None:
            holder.append(reply)
            done.set()

        request = self._send(op, fields, deliver, request_id)
        if not done.wait(timeout):
            self.fail(f"did not answer {op!r} within {timeout:g} s")
        self._forget(request)
        answer = holder[0] if holder else self._broken
        if isinstance(answer, WireBroken) or answer is None:
            raise self._copy(answer)
        return answer

    async def request(self, op: str, fields: dict[str, Any]) -> Reply:
        """One request from inside an event loop (asyncio or trio); cancellable, as a timeout needs."""
        event = anyio.Event()
        wake = _waker()
        holder: list[Reply | WireBroken] = []

        def deliver(reply: Reply | WireBroken) -> None:
            holder.append(reply)
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody waits for this reply
                wake(event.set)

        request = self._send(op, fields, deliver)
        try:
            await event.wait()
        finally:
            self._forget(request)
        answer = holder[0]
        if isinstance(answer, WireBroken):
            raise self._copy(answer)
        return answer

    def _send(self, op: str, fields: dict[str, Any], deliver: Callable[[Reply | WireBroken], None],
              request_id: int | None = None) -> int:
        number = next(self._ids) if request_id is None else request_id
        # ``id`` first, so a bridge whose parser rejects a line can still answer it by id.
        line = dumps_message({"id": number, "op": op, **fields})
        with self._lock:
            if self._broken is not None:
                raise self._copy(self._broken)
            self._pending[number] = deliver
        self._outbox.put(line.encode("utf-8") + b"\n")
        return number

    def _forget(self, number: int) -> None:
        """The caller no longer waits: a reply still to come is dropped quietly."""
        with self._lock:
            if self._pending.pop(number, None) is not None:
                self._abandoned.add(number)

    # ------------------------------------------------------------------ failure

    def fail(self, what: str) -> WireBroken:
        """Declare the process broken (once), stop it, and fail every waiting call; return the failure."""
        with self._lock:
            if self._broken is None:
                self._broken = WireBroken(self.clause, self._headline(what))
            broken, waiting = self._broken, list(self._pending.values())
            self._pending.clear()
        for deliver in waiting:
            deliver(broken)
        self._terminate()
        return broken

    @property
    def broken(self) -> WireBroken | None:
        return self._broken

    def _headline(self, what: str) -> str:
        if self._proc.poll() is not None:  # it has exited: its last words are on their way
            self._threads[0].join(timeout=1.0)
        tail = [line for line in self._stderr if line.strip()][-3:]
        said = f"; its stderr ended: {' | '.join(tail)}" if tail else ""
        return f"{self.flag} {self.command!r} {what}{said}"

    def _copy(self, broken: WireBroken | None) -> WireBroken:
        """A fresh exception per caller, so tracebacks never pile onto one object."""
        if broken is None:
            return WireBroken(self.clause, self._headline("stopped"))
        return WireBroken(broken.clause, broken.detail)

    def stderr_since(self, mark: int) -> list[str]:
        """The stderr lines written after the ``mark``-th (as many as are still kept)."""
        lines = list(self._stderr)
        fresh = self.stderr_count - mark
        return lines[-fresh:] if fresh > 0 else []

    # ------------------------------------------------------------------ threads

    def _write_loop(self) -> None:
        assert self._proc.stdin is not None
        while (line := self._outbox.get()) is not None:
            try:
                self._proc.stdin.write(line)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.fail(self._exit_reason("closed its stdin"))
                return
        with contextlib.suppress(OSError):
            self._proc.stdin.close()

    def _read_loop(self) -> None:
        assert self._proc.stdout is not None
        for raw in self._proc.stdout:
            self._lines_read += 1
            reply = self._parse(raw)
            if reply is None:
                return
            with self._lock:
                deliver = self._pending.pop(reply["id"], None)
                known = deliver is not None or reply["id"] in self._abandoned
                self._abandoned.discard(reply["id"])
            if deliver is not None:
                deliver(reply)
            elif not known:
                self.fail(f"replied to id {reply['id']}, which the kit never sent or had already been answered")
                return
        if self._broken is None:
            self.fail(self._exit_reason("closed its stdout"))

    def _parse(self, raw: bytes) -> Reply | None:
        """The reply on one line, or None after failing the process for a line that is not one."""
        try:
            reply = json.loads(raw)
        except (ValueError, RecursionError):
            reply = None
        if (
            not isinstance(reply, dict)
            or not isinstance(reply.get("id"), int)
            or isinstance(reply.get("id"), bool)
            or ("ok" in reply) == ("error" in reply)
        ):
            shown = raw[:80].decode("utf-8", "replace").rstrip("\n")
            self.fail(f"wrote line {self._lines_read} of stdout, which is not a protocol reply "
                      f"(a JSON object with an id and one of ok, error): {shown!r}")
            return None
        return reply

    def _stderr_loop(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n")[:500])
            self.stderr_count += 1

    def _exit_reason(self, fallback: str) -> str:
        try:
            code = self._proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return fallback
        return f"exited with code {code}"

    # ------------------------------------------------------------------ shutdown

    def _terminate(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()

    def stop(self) -> None:
        """End the session: close stdin, give the process EXIT_GRACE to exit, then kill it."""
        with self._lock:
            if self._broken is None:
                self._broken = WireBroken(self.clause, self._headline("was stopped by the kit"))
        self._outbox.put(None)  # the writer closes stdin once everything before it is written
        try:
            self._proc.wait(timeout=EXIT_GRACE)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _waker() -> Callable[[Callable[[], None]], None]:
    """A thread-safe way to run a callback on the current event loop, whichever library runs it."""
    if sniffio.current_async_library() == "trio":
        import trio

        token = trio.lowlevel.current_trio_token()
        return token.run_sync_soon
    loop = asyncio.get_running_loop()

    def wake(callback: Callable[[], None]) -> None:
        loop.call_soon_threadsafe(callback)

    return wake
