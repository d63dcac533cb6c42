"""The reference backend served over the wire by a bridge that goes wrong after N requests.

    python -m testbed.wire.bad_server MODE N

MODE: ``crash`` (exits with code 7 and a last word on stderr), ``garbage`` (a line that is not
JSON), ``unknown-id`` (answers an id never sent), ``hang`` (stops answering, stays alive),
``off-schema`` (a put answered with a string version), ``foreign-error`` (a get fails with
a KeyError, which is not the contract's).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from conformance.contract.backend import BACKEND_METHODS
from conformance.harness.target import load_target
from conformance.serve import Server


class BadServer(Server):
    def __init__(self, mode: str, after: int) -> None:
        super().__init__(load_target("reference_backend:InMemoryBackend", None, "--backend", "--option",
                                     kind="backend", methods=BACKEND_METHODS))
        self.mode, self.after, self.seen = mode, after, 0

    async def handle(self, line: bytes) -> None:
        self.seen += 1
        request = json.loads(line)
        if self.seen <= self.after:
            await super().handle(line)
        elif self.mode == "crash":
            print("bad_server: giving up", file=sys.stderr, flush=True)
            os._exit(7)
        elif self.mode == "garbage":
            sys.stdout.buffer.write(b"panic: not a reply\n")
            sys.stdout.buffer.flush()
        elif self.mode == "unknown-id":
            sys.stdout.buffer.write(json.dumps({"id": 10**9, "ok": None}).encode() + b"\n")
            sys.stdout.buffer.flush()
        elif self.mode == "hang":
            await asyncio.Event().wait()
        elif self.mode == "off-schema" and request.get("op") == "put":
            print(f"bad_server: answering put {request['id']} with a string", file=sys.stderr, flush=True)
            sys.stdout.buffer.write(json.dumps({"id": request["id"], "ok": "1"}).encode() + b"\n")
            sys.stdout.buffer.flush()
        elif self.mode == "foreign-error" and request.get("op") == "get":
            sys.stdout.buffer.write(json.dumps({"id": request["id"], "error": {"type": "KeyError", "message": "'k'"}}).encode() + b"\n")
            sys.stdout.buffer.flush()
        else:
            await super().handle(line)


if __name__ == "__main__":
    asyncio.run(BadServer(sys.argv[1], int(sys.argv[2])).serve())
