"""A throwaway redis-server for one test session: loopback only, a free port, nothing persisted.

``start()`` launches the Debian package's ``redis-server`` (installing it as root if it is
missing, see ``testbed.engines.process.find_binary``) in a private directory, with snapshots
and the append-only file off, and returns once the server answers ``PING``. ``url(server)``
is what ``RedisBackend`` and ``--backend-option url=...`` take.
"""

from __future__ import annotations

import contextlib
import socket

from testbed.engines.process import (
    ServerProcess,
    find_binary,
    free_port,
    launch,
    private_directory,
)


def start() -> ServerProcess:
    """A fresh redis-server on 127.0.0.1, ready to serve; ``stop()`` kills it and removes its directory."""
    binary = find_binary("redis-server", package="redis-server")
    port = free_port()
    workdir = private_directory("redis")
    argv = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(workdir),
        "--save", "",  # no RDB snapshots
        "--appendonly", "no",  # no AOF
        "--daemonize", "no",
        "--protected-mode", "yes",
        "--maxmemory-policy", "noeviction",  # a task store must never lose records to eviction
        "--logfile", "",  # log to stdout, which launch() writes to the private directory
    ]
    return launch("redis-server", argv, port=port, workdir=workdir, ready=lambda: answers_ping(port), timeout=30)


def url(server: ServerProcess, db: int = 0) -> str:
    """The URL of one of the server's databases."""
    return f"redis://127.0.0.1:{server.port}/{db}"


def answers_ping(port: int) -> bool:
    """Whether a server on ``port`` answers ``PING`` with ``+PONG`` (listening is not enough: it may be loading)."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(64).startswith(b"+PONG")
    return False
