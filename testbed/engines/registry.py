"""Every example backend in ``examples/`` and how to reach a server for it (``ENGINES``), so
``benchmarks/engines.py`` starts and points at them as the engine tests do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from testbed.engines import moto, postgres, redis
from testbed.engines.process import ServerProcess


@dataclass(frozen=True)
class Engine:
    """An example backend and the server it needs (none for SQLite, which is in-process)."""

    name: str
    backend: str
    loops: tuple[str, ...]
    start: Callable[[], ServerProcess] | None = None
    #: The ``--backend-option`` that points a backend at a running server.
    option: Callable[[ServerProcess], str] | None = None

    def kit_args(self, server: ServerProcess | None) -> list[str]:
        """The command-line arguments that run the kit against this engine's example."""
        args = [f"--backend={self.backend}"]
        if self.option is not None and server is not None:
            args.append(f"--backend-option={self.option(server)}")
        return args


ENGINES: tuple[Engine, ...] = (
    Engine("sqlite", "examples.sqlite_backend:SqliteBackend", ("asyncio", "trio")),
    Engine("redis", "examples.redis_backend:RedisBackend", ("asyncio",), redis.start, lambda s: f"url={redis.url(s)}"),
    Engine("postgres", "examples.postgres_backend:PostgresBackend", ("asyncio",), postgres.start,
           lambda s: f"dsn={postgres.dsn(s)}"),
    Engine("dynamodb", "examples.dynamodb_backend:DynamoDbBackend", ("asyncio", "trio"), moto.start,
           lambda s: f"endpoint_url={moto.endpoint(s)}"),
)
