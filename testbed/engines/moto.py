"""A throwaway moto server standing in for DynamoDB for one test session: ``start()`` and ``endpoint(server)``.

``start()`` runs moto's server application (the WSGI application ``python -m moto.server``
serves) on 127.0.0.1, on a free port, in a private directory, with dummy AWS credentials
and region in its environment (it never talks to AWS; nothing here ever reads real
credentials), and returns once it answers HTTP. ``endpoint(server)`` is the URL that
``DynamoDbBackend`` and ``--backend-option endpoint_url=...`` take.

The server runs this module's ``serve``. Before serving, it corrects three places where
moto 5's DynamoDB differs from DynamoDB:

* **Conditional writes are atomic per item.** DynamoDB evaluates a ``ConditionExpression``
  and applies the write as one step. moto's threaded server evaluates the condition in one
  Python statement and mutates the item in later ones, with no lock, so two requests on
  one item can interleave: 6 clients racing a ``version = :v`` UpdateItem of 100 kB on one
  key produced two winners in 5 of 100 rounds (measured on moto 5.2.1). A correct backend
  would then fail BK-18 and CC-3 for the emulator's race. The fix runs one request at a
  time (a lock around the WSGI application, response included): the server becomes
  linearizable, which is what DynamoDB guarantees per item.
* **An update measures the item it leaves, not the old item plus the new values.** moto
  adds an attribute's new size to the item's current size, old value included, so an
  UpdateItem replacing 300 kB of data with 300 kB more is refused as "Item size to update
  has exceeded the maximum allowed size" (the largest accepted replacement of a 300 kB
  value was 104,971 bytes). DynamoDB measures the resulting item. The fix leaves the value
  being replaced out of the sum; moto's own limit (405,000 bytes) is kept.
* **Memory follows what the table holds, not every request ever served.** moto keeps
  every DynamoDB ``Item`` object it ever made (``instances_tracked``, for its dashboard),
  and every read makes copies; and it keeps an empty entry for every partition key ever
  written (a delete empties it, never removes it) or merely read (a ``defaultdict``),
  which every Scan then walks. Over seven whole-kit runs against one server its memory
  grew to 1.2 GB and a run slowed from 390 s to 870 s. The fix stops the tracking of
  DynamoDB models, and drops a table's empty partitions after each request (under the
  lock above, so nothing else runs meanwhile; an empty partition holds nothing, so no
  answer changes).

It serves the application over HTTP/1.1 connections that stay open (``KeepAliveWsgiHandler``),
not through werkzeug's development server, which ``python -m moto.server`` uses and which
closes the connection after every response: a new TCP connection and a new thread for each
of a whole-kit run's ~60,000 requests. Kept open, a boto3 PutItem or GetItem round trip on an
idle machine costs 1.7 to 1.9 ms instead of 2.5 to 2.6 ms.

Request lines are not logged (a whole-kit run makes about 60,000 requests); errors are.

Run a server by hand for the kit with ``PYTHONPATH=. python -m testbed.engines.moto -p 5000``.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import http.server
import io
import os
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from testbed.engines.process import ServerProcess, free_port, launch, private_directory

ROOT = Path(__file__).resolve().parents[2]

#: The environment of the server process: dummy credentials and region, so nothing can reach AWS.
DUMMY_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def start() -> ServerProcess:
    """A fresh moto server on 127.0.0.1, ready to serve; ``stop()`` ends it and removes its directory."""
    port = free_port()
    workdir = private_directory("moto")
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "testbed.engines.moto", "-H", "127.0.0.1", "-p", str(port)]
    env = {**DUMMY_AWS, "PYTHONPATH": pythonpath, "PYTHONDONTWRITEBYTECODE": "1"}
    return launch("moto", argv, port=port, workdir=workdir, ready=lambda: answers_http(port), timeout=60, env=env)


def endpoint(server: ServerProcess) -> str:
    """The URL a DynamoDB client is pointed at (``endpoint_url``)."""
    return f"http://127.0.0.1:{server.port}"


def answers_http(port: int) -> bool:
    """Whether something on ``port`` answers an HTTP request (any status: moto is up and routing)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    with suppress(OSError, http.client.HTTPException):
        try:
            connection.request("GET", "/moto-api/")
            connection.getresponse().read()
            return True
        finally:
            connection.close()
    return False


#: A WSGI application: ``app(environ, start_response)`` and its body.
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class KeepAliveWsgiHandler(http.server.BaseHTTPRequestHandler):
    """Serves a WSGI application over HTTP/1.1 connections that stay open between requests.

    Enough WSGI for moto behind boto3: request bodies come with a Content-Length, and
    each response is sent whole, with its own.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: without it, each waits ~40 ms for an ACK
    app: WsgiApp

    def handle_request(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        path, _, query = self.path.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": self.command,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote(path, "latin-1"),
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "SERVER_NAME": self.server.server_address[0],
            "SERVER_PORT": str(self.server.server_address[1]),
            "SERVER_PROTOCOL": self.request_version,
            "REMOTE_ADDR": self.client_address[0],
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for name, value in self.headers.items():
            key = "HTTP_" + name.upper().replace("-", "_")
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers]
            return lambda data: None  # moto never writes through it

        payload = b"".join(self.app(environ, start_response))  # a list: OneRequestAtATime buffers and closes
        status, headers = started
        code, _, reason = status.partition(" ")
        self.send_response(int(code), reason)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_request

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # errors still reach log_error


def serve(argv: list[str]) -> None:
    """Serve moto's application, with the corrections described above, on ``-H HOST -p PORT``."""
    parser = argparse.ArgumentParser(prog="testbed.engines.moto")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    args = parser.parse_args(argv)
    from moto.core.model_instances import model_data
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type, dynamodb_backends
    from moto.dynamodb.models.utilities import bytesize
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    class OneRequestAtATime(DomainDispatcherApplication):
        """moto's dispatcher, serving one request at a time: each request's writes are atomic."""

        _serial = threading.Lock()

        @functools.cache  # noqa: B019 (one instance, for the server's life) moto matches the Host against every service's URL patterns on each request
        def get_backend_for_host(self, host: str | None) -> Any:
            return super().get_backend_for_host(host)

        def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            with self._serial:
                response = super().__call__(environ, start_response)
                try:
                    return list(response)  # the whole body while holding the lock
                finally:
                    close = getattr(response, "close", None)
                    if callable(close):
                        close()
                    drop_empty_partitions()

    def drop_empty_partitions() -> None:
        for regions in list(dynamodb_backends.values()):
            for backend in list(regions.values()):
                for table in list(backend.tables.values()):
                    if table.range_key_attr:  # only then is a partition a dict of items
                        for hash_key in [k for k, items in table.items.items() if not items]:
                            del table.items[hash_key]

    def size_of(part: Any) -> int:
        return part.size() if type(part) is dynamo_type.DynamoType else bytesize(str(part))

    def set_measuring_the_result(self: dict[str, Any], key: str, value: Any) -> None:
        kept = sum(size_of(k) + size_of(v) for k, v in self.items() if k != key)  # the replaced value leaves
        if kept + size_of(key) + size_of(value) > 405_000:  # moto's own item limit, unchanged
            raise ItemSizeTooLarge
        dict.__setitem__(self, key, value)

    class NotTracked(list[Any]):
        """A model's ``instances_tracked`` that keeps nothing."""

        def append(self, instance: Any) -> None:
            pass

    for model in list(model_data["dynamodb"].values()):
        model.instances_tracked = NotTracked()  # type: ignore[attr-defined]
    dynamo_type.LimitedSizeDict.__setitem__ = set_measuring_the_result  # type: ignore[method-assign]
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server.main sets it

    class Handler(KeepAliveWsgiHandler):
        app = OneRequestAtATime(create_backend_app)

    with http.server.ThreadingHTTPServer((args.host, args.port), Handler) as server:
        server.daemon_threads = True
        server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1:])
