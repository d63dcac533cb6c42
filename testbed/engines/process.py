"""Start, wait for and stop a server process; find its binary or say in one line how to get it.

Shared by every engine launcher (``redis.py``, ``postgres.py``, ``moto.py``). Servers listen
on 127.0.0.1 only, on a port the OS just handed out, and live in a private directory, so
two test sessions (two xdist workers) never meet.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Set to a comma-separated list of engine names (``redis,postgres,dynamodb``) to skip their tests.
SKIP_VARIABLE = "CONFORMANCE_SKIP_ENGINES"
#: Set to 0 to never install a missing Debian package, even as root.
INSTALL_VARIABLE = "CONFORMANCE_INSTALL_ENGINES"


class EngineUnavailable(Exception):
    """The engine cannot be started here; the message says why and what to do, in one line."""


def skipped_engines() -> set[str]:
    return {name.strip() for name in os.environ.get(SKIP_VARIABLE, "").split(",") if name.strip()}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def accepts_connections(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def find_binary(name: str, *, package: str, search: Sequence[str] = ()) -> str:
    """The path of ``name`` (on PATH or in ``search`` globs); install ``package`` as root if allowed."""
    found = _locate(name, search)
    if found is None and _may_install():
        _apt_install(package)
        found = _locate(name, search)
    if found is None:
        raise EngineUnavailable(
            f"{name} not found: install the Debian package {package} (apt-get install {package}; "
            f"the tests do it themselves when run as root), or set {SKIP_VARIABLE} to skip this engine"
        )
    return found


def _locate(name: str, search: Sequence[str]) -> str | None:
    for pattern in search:
        matches = sorted(Path("/").glob(pattern.lstrip("/")), reverse=True)  # newest version first
        if matches:
            return str(matches[0])
    return shutil.which(name)


def _may_install() -> bool:
    return os.environ.get(INSTALL_VARIABLE, "1") != "0" and os.geteuid() == 0 and shutil.which("apt-get") is not None


def _apt_install(package: str) -> None:
    """apt-get install, once per machine even when several xdist workers ask at the same time."""
    lock_path = Path(tempfile.gettempdir()) / "conformance-apt.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        installed = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True, text=True)
        if installed.returncode != 0:  # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
            installed = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env, capture_output=True, text=True)
        if installed.returncode != 0:
            tail = (installed.stderr or installed.stdout).strip().splitlines()[-1:] or ["no output"]
            raise EngineUnavailable(f"apt-get install {package} failed: {tail[0]}")


def wait_until(ready: Callable[[], bool], *, what: str, timeout: float, process: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    """Poll ``ready`` until it holds; fail in one line (with the server's last log line) if it never does."""
    deadline = time.monotonic() + timeout
    pause = 0.01
    while not ready():
        if process is not None and process.poll() is not None:
            raise EngineUnavailable(f"{what} exited with status {process.returncode} while starting{_last_line(log)}")
        if time.monotonic() > deadline:
            raise EngineUnavailable(f"{what} did not become ready within {timeout:g} s{_last_line(log)}")
        time.sleep(pause)  # waiting for a server to start, not timing a test
        pause = min(pause * 2, 0.2)


def _last_line(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    lines = log.read_text(errors="replace").strip().splitlines()
    return f": {lines[-1]}" if lines else ""


@dataclass
class ServerProcess:
    """A running server: its port, its private directory, and how to stop it."""

    name: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    log: Path
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for step in self.on_stop:
            step()
        shutil.rmtree(self.workdir, ignore_errors=True)


def launch(name: str, argv: Sequence[str], *, port: int, workdir: Path, ready: Callable[[], bool] | None = None,
           timeout: float = 60, user: str | None = None, env: dict[str, str] | None = None) -> ServerProcess:
    """Start ``argv`` (as ``user`` if given, for servers that refuse root) and wait until it serves ``port``."""
    log = workdir / f"{name}.log"
    command = list(argv)
    if user is not None and os.geteuid() == 0:
        command = ["runuser", "-u", user, "--", *command]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir,
                                   env={**os.environ, **(env or {})}, start_new_session=True)
    server = ServerProcess(name, port, workdir, process, log)
    try:
        wait_until(ready or (lambda: accepts_connections(port)), what=name, timeout=timeout, process=process, log=log)
    except BaseException:
        server.stop()
        raise
    return server


def private_directory(name: str, *, owner: str | None = None) -> Path:
    """A fresh directory for one server (owned by ``owner`` when running as root); ``stop`` removes it."""
    path = Path(tempfile.mkdtemp(prefix=f"conformance-{name}-"))
    if owner is not None and os.geteuid() == 0:
        shutil.chown(path, user=owner)
    return path


@contextlib.contextmanager
def running(engine: str, start: Callable[[], ServerProcess]) -> Iterator[ServerProcess]:
    """A server for one test session: skipped only when asked to, a one-line failure when it cannot start."""
    import pytest

    if engine in skipped_engines():
        pytest.skip(f"{engine} tests skipped: {SKIP_VARIABLE}={os.environ[SKIP_VARIABLE]}")
    try:
        server = start()
    except EngineUnavailable as exc:
        pytest.fail(f"{engine}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
