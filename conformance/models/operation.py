"""What every model operation shares: it describes itself as the call a person would type."""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from typing import Any, ClassVar


def show(value: Any) -> str:
    """A short, exact-enough rendering of an argument for failure messages."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bytes) and len(value) > 48:
        return f"<{len(value)} B>"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # a depth bomb, an integer past repr's digit limit: the kit's probes
        return f"<{type(value).__name__} too deep or too large to print>"
    return text if len(text) <= 80 else text[:77] + "..."


def describe_call(method: str, args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> str:
    """A call as a person would type it: ``put('k', <64 B>)``."""
    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in (kwargs or {}).items()]
    return f"{method}({', '.join(shown)})"


class Operation:
    """Base of the frozen dataclasses naming one call; subclasses may set ``method`` if it is not the snake-cased class name."""

    method: ClassVar[str] = ""
    #: Fields shown as keywords rather than positionally.
    keywords: ClassVar[tuple[str, ...]] = ()
    #: Fields that record what was observed rather than what was asked (not part of the call).
    hidden: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def name(cls) -> str:
        """The contract method this operation calls."""
        return cls.method or re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()

    def arguments(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's positional and keyword arguments, in the contract's order (the field order)."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for field in dataclasses.fields(self):  # type: ignore[arg-type]
            if field.name in self.hidden:
                continue
            value = getattr(self, field.name)
            if field.name in self.keywords:
                kwargs[field.name] = value
            else:
                args.append(value)
        return tuple(args), kwargs

    def apply(self, target: Any) -> Any:
        """Make this call on ``target`` (sync or async: whatever the method returns is returned)."""
        args, kwargs = self.arguments()
        return getattr(target, self.name())(*args, **kwargs)

    def describe(self) -> str:
        return describe_call(self.name(), *self.arguments())


def by_method(operations: Any) -> dict[str, type[Operation]]:
    """The operation classes of a union (``kv.KVOperation``, ``tasks.TaskOperation``) by the contract method each calls."""
    return {kind.name(): kind for kind in typing.get_args(operations)}
