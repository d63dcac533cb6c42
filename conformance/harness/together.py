"""Release several calls in the same loop tick and keep each one's answer or error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from conformance.contract.errors import StorageError


async def run_together(
    calls: list[Callable[[], Awaitable[Any]]],
    catch: tuple[type[BaseException], ...] = (StorageError,),
) -> list[Any]:
    """Start every call at once; return each result, or the ``catch``-able error it raised, in call order.

    Anything not caught (a contract violation, a bug) propagates and fails the program.
    """
    results: list[Any] = [None] * len(calls)

    async def one(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except catch as exc:
            results[index] = exc

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(one, index)
    return results


async def warm_up(checked: Any, clients: int) -> None:
    """``clients`` concurrent reads of a key nobody writes, before a probe releases its writers.

    Why: a backend on a server opens connections lazily; on a fresh instance the first
    handshakes take longer than a whole read-modify-write, so writers released together
    would run one after another and a race would hide. Warm, they overlap as in production.
    """
    await run_together([lambda: checked.list_by_prefix("warm-up/") for _ in range(clients)])
