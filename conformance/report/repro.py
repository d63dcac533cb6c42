"""A failure's calls, shown in the report and written as a standalone reproduction script.

Why a script and not a seed: the author debugs their own code, in their own debugger, with
nothing of the kit in the way. The script holds the calls the failing example made into the
target and the answers it gave, and replays them (``conformance.report.replay``, carried
whole in the script); it exits 1 while the target answers as it did when the rule broke.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conformance.harness.recording import KIT_STORE, TARGET, Call, CallLog
from conformance.models.operation import describe_call, show
from conformance.report import replay

#: Calls shown in a failure (the last ones: nearest the violation).
SHOWN_CALLS = 20


@dataclass(frozen=True)
class TargetSource:
    """Where the script finds the target: a factory ``module:attr`` with its options, or a command."""

    kind: str
    spec: str
    factory: str | None
    command: str | None
    options: dict[str, str]
    cwd: str
    timeout: float
    #: The target's declared expiry mode (``ExpiredRecords`` value): the model a concurrent replay is checked against.
    expired_records: str = "kept_until_cleanup"


def outcome(call: Call) -> str:
    if call.lost is not None:
        return "timed out"
    if call.error is not None:
        return f"raised {type(call.error).__name__}"
    return f"returned {show(call.result)}"


def described(call: Call) -> str:
    return f"{describe_call(call.method, call.args, call.kwargs)} -> {outcome(call)}"


def shown_calls(log: CallLog) -> list[str]:
    """The test's own calls of the failing example, numbered, the last ``SHOWN_CALLS`` of them.

    For a backend target under the kit's store, the store's calls are what the test made;
    the backend calls beneath them are in the reproduction.
    """
    calls = [c for c in log.calls if c.end is not None]
    top = [c for c in calls if c.instance.role == KIT_STORE] or [c for c in calls if c.instance.role == TARGET]
    lines = [f"  {n:>3}  #{c.instance.number} {described(c)}" for n, c in enumerate(top, start=1)]
    if len(lines) > SHOWN_CALLS:
        lines = [f"  ... {len(lines) - SHOWN_CALLS} earlier call(s)", *lines[-SHOWN_CALLS:]]
    return lines


def replayed_calls(log: CallLog, kind: str) -> list[Call]:
    """The calls a script replays: those made on the target's own instances."""
    return [c for c in log.calls if c.instance.role == TARGET and c.instance.contract == kind and c.end is not None]


def case(log: CallLog, source: TargetSource, *, test: str, loop: str, headline: str, message: str, steering: str | None) -> dict[str, Any]:
    """Everything a script needs, JSON-able: the target, the instances, each call with the answer it got."""
    calls = replayed_calls(log, source.kind)
    clocks = {c.clock_ms for c in calls if c.clock_ms is not None}
    instances = sorted({id(c.instance): c.instance for c in calls}.values(), key=lambda i: i.number)
    return {
        "test": test,
        "target": source.spec,
        "kind": source.kind,
        "contract": source.kind,
        "factory": source.factory,
        "command": source.command,
        "options": source.options,
        "cwd": source.cwd,
        "timeout": source.timeout,
        "loop": loop,
        "headline": headline,
        "message": message,
        "steering": steering,
        "expired_records": source.expired_records,
        "instances": [
            {"number": i.number, "clock": i.clock is not None, "injected": replay.encode(i.injected),
             "opened_ms": next((c.clock_ms for c in calls if c.instance is i), None)}
            for i in instances
        ],
        "steps": [
            {"n": c.instance.number, "m": c.method, "a": replay.encode((c.args, c.kwargs)), "s": c.start, "e": c.end,
             "t": c.clock_ms, "o": replay.observe(source.kind, c.method, c.result, c.error, c.lost, clocks), "d": described(c)}
            for c in calls
        ],
    }


def _runtime_source() -> str:
    """The replay engine's source without its docstring (the script's own comes first)."""
    source = Path(replay.__file__).read_text(encoding="utf-8")
    body = ast.parse(source).body
    start = body[1].lineno - 1 if isinstance(body[0], ast.Expr) else 0
    return "\n".join(source.splitlines()[start:])


def script(case_data: dict[str, Any], calls_shown: list[str]) -> str:
    """The reproduction script: a docstring saying what it shows, the engine, the recorded case."""
    blob = replay.pack(case_data)
    chunks = "\n".join(f'    "{blob[i:i + 1000]}"' for i in range(0, len(blob), 1000)) or '    ""'
    listing = "\n".join(step["d"] for step in case_data["steps"][-200:])
    docstring = "\n".join([
        f"Reproduces: violates {case_data['headline']}",
        "",
        f"Target: {case_data['target']}" + (f" (options {case_data['options']})" if case_data["options"] else ""),
        f"Found by: {case_data['test']} on {case_data['loop']}",
        "",
        "What the kit saw:",
        *case_data["message"].splitlines()[:40],
        "",
        "The test's calls:",
        *calls_shown,
        "",
        f"Replayed: the {len(case_data['steps'])} call(s) made on the target's own instances (#n: fresh instances",
        "from the factory, opened in order), each with the answer it got when the rule broke:",
        listing,
        "",
        "Run it from the folder you ran the kit in (it changes to that folder first): python THIS_FILE",
        "Exit status: 1 while the target answers these calls as it did when the rule broke, 0 once an",
        "answer differs (the bug is gone or has moved: run the kit again), 2 if the target cannot be opened.",
        "Calls that ran concurrently are released in the recorded real-time order; if the race meets other",
        "calls this time, the kit's checker (conformance.checker) judges the replayed history instead.",
        "It needs the installed `conformance` package's contract types (and its wire client for a",
        "--backend-command target, its checker for concurrent calls), and anyio.",
    ])
    docstring = docstring.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    return (
        f'#!/usr/bin/env python3\n"""{docstring}\n"""\n'
        f"{_runtime_source()}\n\n\n"
        f"_CASE = (\n{chunks}\n)\n\n"
        "if __name__ == \"__main__\":\n"
        "    run(_CASE)\n"
    )


def write(directory: Path, clause: str, test: str, loop: str, text: str) -> Path:
    """Write the script under a name saying which clause and test it reproduces."""
    directory.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{clause}__{test.rsplit('::', 1)[-1]}__{loop}").strip("_")
    path = directory / f"{name}.py"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path
