"""A throwaway PostgreSQL server for one test session: ``start()`` and ``dsn(server)``.

``initdb`` makes a fresh cluster in a private directory (trust authentication, superuser
``postgres``, UTF-8, the C locale, ``--no-sync``), and ``postgres`` serves it on a free
loopback port with its Unix socket in the same directory, so it never meets the machine's
own cluster (if any) or another session's. Durability is switched off (``fsync``,
``synchronous_commit``, ``full_page_writes``): the data dies with the session anyway, and
the kit's runs are bound by round trips, not by disks.

PostgreSQL refuses to run as root. Run as root (the CI), both ``initdb`` and ``postgres``
run as the Debian user ``postgres`` (created by ``apt-get install postgresql``) through
``runuser``; run as anyone else, they run as that user.

The server is ready when a real connection succeeds: a TCP accept alone is not enough,
since a starting server accepts connections only to answer "the database system is
starting up". It is stopped with a fast shutdown (SIGINT: disconnect clients, stop), not
the smart one (SIGTERM), which would wait for every client, leaked ones included.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from testbed.engines.process import (
    EngineUnavailable,
    ServerProcess,
    find_binary,
    free_port,
    launch,
    private_directory,
)

#: The Debian package that holds the server binaries, and the OS user they run as when we are root.
PACKAGE = "postgresql"
USER = "postgres"
#: Where Debian puts the binaries (not on PATH): /usr/lib/postgresql/<major>/bin; newest first.
SEARCH = "/usr/lib/postgresql/*/bin/{name}"
#: Settings for a server whose data dies with the session: no disk waits, and room for many pools.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


@dataclass
class PostgresServer(ServerProcess):
    """A running ``postgres``: the launch's process (``runuser`` as root) plus its data directory."""

    data: Path = Path()

    def stop(self) -> None:
        """A fast shutdown (SIGINT) sent to the postmaster itself, not to ``runuser`` in front of it; then clean up."""
        if self.process.poll() is None:
            with suppress(OSError, ValueError, IndexError):
                postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
                os.kill(postmaster, signal.SIGINT)
                with suppress(subprocess.TimeoutExpired):
                    self.process.wait(timeout=20)
        super().stop()


def _binary(name: str) -> str:
    return find_binary(name, package=PACKAGE, search=[SEARCH.format(name=name)])


def _as_user(argv: list[str]) -> list[str]:
    """Run ``argv`` as the ``postgres`` user when we are root (PostgreSQL refuses root)."""
    return ["runuser", "-u", USER, "--", *argv] if os.geteuid() == 0 else argv


def _accepts_sessions(port: int) -> bool:
    import psycopg

    try:
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def start() -> ServerProcess:
    """initdb a fresh cluster and serve it on a free loopback port; ready once it takes a real session."""
    postgres, initdb = _binary("postgres"), _binary("initdb")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            raise EngineUnavailable(
                f"running as root, PostgreSQL needs an unprivileged user {USER!r} (apt-get install {PACKAGE} creates it)"
            ) from None
    workdir = private_directory("postgres", owner=USER)
    data = workdir / "data"
    made = subprocess.run(
        _as_user([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync"]),
        check=False, capture_output=True, text=True, cwd=workdir,
    )
    if made.returncode != 0:
        tail = (made.stderr or made.stdout).strip().splitlines()[-1:] or ["no output"]
        shutil.rmtree(workdir, ignore_errors=True)
        raise EngineUnavailable(f"initdb failed with status {made.returncode}: {tail[0]}")
    port = free_port()
    argv = [postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(workdir)]
    for name, value in SETTINGS.items():
        argv += ["-c", f"{name}={value}"]
    launched = launch("postgres", argv, port=port, workdir=workdir, ready=lambda: _accepts_sessions(port),
                      user=USER)
    return PostgresServer(launched.name, launched.port, launched.workdir, launched.process, launched.log,
                          launched.on_stop, data=data)


def dsn(server: ServerProcess) -> str:
    """The connection string of the server's ``postgres`` database, as superuser ``postgres`` (trust)."""
    return f"postgresql://postgres@127.0.0.1:{server.port}/postgres"


if __name__ == "__main__":  # a server for trying things by hand: prints its DSN, stops on Ctrl-C or SIGTERM
    def _quit(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGINT, _quit)  # also when started in the background, where SIGINT is ignored
    signal.signal(signal.SIGTERM, _quit)
    server = start()
    print(dsn(server), flush=True)
    try:
        signal.pause()
    finally:
        server.stop()
