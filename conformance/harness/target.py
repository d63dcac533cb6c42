"""Turning ``--backend=module:attr`` into fresh backend instances, with one-line errors for every misuse."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from conformance.contract.backend import BACKEND_METHODS
from conformance.contract.capabilities import Capabilities, capabilities_of
from conformance.spec import ContractViolation
from conformance.wire import WireProcess, wire_target
from conformance.wire.process import WireStartError

#: The clause a call that never completes breaks, by kind of target (SPEC BK-19, TS-23).
TIMEOUT_CLAUSES: dict[str, str] = {"backend": "BK-19", "store": "TS-23"}


class TargetError(Exception):
    """The thing under test cannot be loaded or built; the message is one line a user can act on."""


Closer = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Target:
    """A factory the kit calls once per test (or per Hypothesis example) for a fresh instance."""

    spec: str
    factory: Callable[..., Any]
    options: Mapping[str, str] = field(default_factory=dict)
    capabilities: Capabilities = field(default_factory=Capabilities)
    methods: tuple[str, ...] = BACKEND_METHODS
    kind: str = "backend"

    @property
    def accepts_clock(self) -> bool:
        return accepts_keyword(self.factory, "clock")

    async def open(self, **injected: Any) -> tuple[Any, Closer]:
        """Build an instance (awaiting or entering it as needed) and the coroutine that tears it down."""
        kwargs = {k: v for k, v in injected.items() if v is not None and accepts_keyword(self.factory, k)}
        kwargs.update(self.options)
        try:
            made = self.factory(**kwargs)
            if inspect.isawaitable(made):
                made = await made
            if hasattr(made, "__aenter__") and hasattr(made, "__aexit__"):
                instance = await made.__aenter__()
                closer: Closer = lambda: made.__aexit__(None, None, None)  # noqa: E731
            else:
                instance, closer = made, _closer_for(made)
        except ContractViolation:  # a target across the wire that broke while opening: its own one line
            raise
        except Exception as exc:  # the user's factory: report, never crash the kit
            raise TargetError(f"{self.kind} factory {self.spec} raised {type(exc).__name__}: {exc}") from exc
        check_methods(instance, self.methods, self.spec, self.kind)
        return instance, closer


def _closer_for(instance: Any) -> Closer:
    async def close() -> None:
        for name in ("aclose", "close"):
            method = getattr(instance, name, None)
            if callable(method):
                result = method()
                if inspect.isawaitable(result):
                    await result
                return

    return close


def accepts_keyword(factory: Callable[..., Any], name: str) -> bool:
    """Whether the factory names the keyword explicitly (``**kwargs`` alone does not count)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(name)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def check_methods(instance: Any, methods: tuple[str, ...], spec: str, kind: str) -> None:
    """Refuse an instance missing a contract method, or offering a plain function where a coroutine is due."""
    missing = [name for name in methods if not callable(getattr(instance, name, None))]
    if missing:
        raise TargetError(f"{kind} {spec} lacks method(s) {', '.join(missing)} required by the contract")
    not_async = [name for name in methods if not inspect.iscoroutinefunction(getattr(instance, name))]
    if not_async:
        raise TargetError(f"{kind} {spec}: method(s) {', '.join(not_async)} must be coroutine functions (async def)")


def parse_options(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """``KEY=VALUE`` strings to keyword arguments; values stay strings."""
    options: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise TargetError(f"{flag} expects KEY=VALUE with KEY a Python identifier, got {pair!r}")
        options[key] = value
    return options


def resolve(spec: str, flag: str) -> Callable[..., Any]:
    """Import ``module:attr`` (dotted attributes allowed); the current folder is importable as with ``python -m``."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise TargetError(f"{flag} expects 'module:attribute' (e.g. mypkg.storage:RedisBackend), got {spec!r}")
    try:
        module = _import(module_name)
    except Exception as exc:
        raise TargetError(f"{flag}={spec}: cannot import module {module_name!r}: {type(exc).__name__}: {exc}") from exc
    found: Any = module
    for part in attr_path.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise TargetError(f"{flag}={spec}: module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(found):
        raise TargetError(f"{flag}={spec}: {attr_path!r} is a {type(found).__name__}, not a class or callable")
    factory: Callable[..., Any] = found
    return factory


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        here = os.getcwd()
        if exc.name != module_name.split(".")[0] or here in sys.path:
            raise
        sys.path.insert(0, here)
        return importlib.import_module(module_name)


def load_target(spec: str, option_pairs: list[str] | None, flag: str, option_flag: str, **fields: Any) -> Target:
    """Everything about the target that can be checked before a single test runs."""
    factory = resolve(spec, flag)
    options = parse_options(option_pairs, option_flag)
    try:
        capabilities = capabilities_of(factory)
    except (TypeError, ValueError) as exc:
        raise TargetError(f"{flag}={spec}: {exc}") from exc
    return Target(spec=spec, factory=factory, options=options, capabilities=capabilities, **fields)


def load_command_target(command: str, flag: str, kind: str, methods: tuple[str, ...], timeout: float) -> tuple[Target, WireProcess]:
    """Start the implementation behind ``--backend-command`` or ``--store-command`` and shake hands (WIRE-PROTOCOL.md).

    The one process serves every test of the run; the Target's factory opens an instance in it per test.
    """
    try:
        process = WireProcess(command, flag, TIMEOUT_CLAUSES[kind])
        made = wire_target(process, kind, timeout)
    except WireStartError as exc:
        raise TargetError(str(exc)) from None
    target = Target(spec=f"{flag}={command}", factory=made.factory, capabilities=made.capabilities, methods=methods, kind=kind)
    return target, process
