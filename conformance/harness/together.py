"""Release several calls in the same loop tick and keep each one's answer or error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from conformance.contract.errors import StorageError
from conformance.spec import ContractViolation


async def run_together(
    calls: list[Callable[[], Awaitable[Any]]],
    catch: tuple[type[BaseException], ...] = (StorageError,),
) -> list[Any]:
    """Start every call at once; return each result, or the ``catch``-able error it raised, in call order.

    Anything not caught (a bug) propagates and fails the program. A contract violation fails it
    once: eight calls breaking one rule the same way are one finding, not a group of eight.
    """
    results: list[Any] = [None] * len(calls)
    violations: list[ContractViolation] = []

    async def one(index: int) -> None:
        try:
            results[index] = await calls[index]()
        except catch as exc:
            results[index] = exc
        except ContractViolation as violation:
            violations.append(violation)

    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(one, index)
    if violations:
        first = violations[0]
        if len(violations) == 1:
            raise first
        more = f" ({len(violations)} of the {len(calls)} calls released together broke a rule; the first shown)"
        raise ContractViolation(first.clause, first.detail + more, first.evidence) from first
    return results


async def warm_up(checked: Any, clients: int) -> None:
    """``clients`` concurrent reads of a key nobody writes, before a probe releases its writers.

    Why: a backend on a server opens connections lazily; on a fresh instance the first
    handshakes take longer than a whole read-modify-write, so writers released together
    would run one after another and a race would hide. Warm, they overlap as in production.
    """
    await run_together([lambda: checked.list_by_prefix("warm-up/") for _ in range(clients)])
