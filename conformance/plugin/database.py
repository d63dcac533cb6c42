"""``--conformance-database``: a Hypothesis example database runs share, in a directory or on a Redis server.

A failure one run finds (a thorough run on a developer's machine, any xdist worker of a
nightly loop) is saved there and replayed first by the next run that uses the same
database, under any profile: CI restoring the directory from its cache replays it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

USAGE = "--conformance-database takes a directory or redis://HOST:PORT[/DB]"


class DatabaseError(ValueError):
    """A ``--conformance-database`` value the kit cannot use; its message is the one line the user sees."""


def open_database(value: str) -> ExampleDatabase:
    """The example database ``value`` names: a directory (made if missing), or a Redis server that answers."""
    if not value.strip():
        raise DatabaseError(f"{USAGE}, got an empty value")
    scheme = urlsplit(value).scheme
    if scheme in ("redis", "rediss"):
        return _redis(value)
    if "://" in value:
        raise DatabaseError(f"{USAGE}, got a {scheme}:// URL: {value!r}")
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise DatabaseError(f"{USAGE}; {value!r} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"--conformance-database: cannot create directory {value!r}: {exc.strerror or exc}") from None
    return DirectoryBasedExampleDatabase(path)


def _redis(value: str) -> ExampleDatabase:
    parts = urlsplit(value)
    url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()  # as shown: without a password
    try:
        port = parts.port
    except ValueError:
        raise DatabaseError(f"{USAGE}; the port in {url!r} is not a number") from None
    if not parts.hostname or port is None:
        raise DatabaseError(f"{USAGE}; {url!r} lacks a host or a port")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise DatabaseError(f"{USAGE}; the database in {url!r} is not a number: {db!r}")
    if parts.query or parts.fragment:
        raise DatabaseError(f"{USAGE}; {url!r} has more than that")
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
    except ImportError:
        raise DatabaseError("--conformance-database=redis://... needs redis-py, which is not installed (pip install redis)") from None
    client = redis.Redis.from_url(value, socket_connect_timeout=5, socket_timeout=30)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        raise DatabaseError(f"--conformance-database: no Redis answers at {parts.hostname}:{port}: {exc}") from None
    return RedisExampleDatabase(client)
