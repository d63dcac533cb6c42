"""Time and memory of the reference task store refusing depth bombs.

Usage: python benchmarks/depth_bombs.py [--depths 1000,10000,100000,1000000] [--repeats N]

A depth bomb is a value nested far deeper than ``StoreConfig.max_depth`` (10): nested lists
``[[[...]]]``, nested objects ``{"k": {"k": ...}}``, or lists and objects alternating (the
outermost a list). Each bomb is built iteratively, once per shape and depth, outside every
measured region, and reused across calls and repeats (the script checks afterwards, by an
iterative walk, that the store left it unchanged). For each depth, shape and call
(``set_variables(id, "alice", {"v": bomb})``, ``set_result(id, "alice", bomb)``,
``complete_with_result(id, "alice", COMPLETED, None, bomb)``), every run uses a fresh
``in_memory_task_store()`` holding one task of owner "alice", and must end in
``VariableValidationError`` with ``reason == "depth"``; afterwards ``get`` must return the
task unchanged, ``get_result`` must still say "no result", and the bomb's reference count
must be back where it was (the store kept no reference to it).

Measured: wall time of the store call alone (``time.perf_counter`` inside the coroutine, so
event-loop start-up is excluded), median and max of ``--repeats`` runs; and, in a separate
run so that tracing does not slow the timed ones, the peak memory allocated during the call
(``tracemalloc`` started after the bomb and the store exist, stopped after the call). Before
each measured call ``gc.collect(0)`` empties the youngest generation, so no automatic
collection (which would traverse the whole bomb: a cost of holding the bomb, not of the
store) can start inside the call; the script counts collections during measured calls and
reports them. Prints a Markdown table for benchmarks/RESULTS.md and a conclusion computed
from it; build and free times of the deepest bombs go to the lines above the table. Any
run that ends otherwise (RecursionError, acceptance, a changed task...) is reported on
stderr and the script exits 1.

Never ``repr()``, ``str()``, compare or serialise a bomb: every recursive walk of one fails.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from conformance import NotReadyError, StoreConfig, TaskStatus, VariableValidationError
from conformance.checks.task_store import OWNER
from reference_backend.store import in_memory_task_store

SHAPES = ("lists", "objects", "alternating")
CALLS = ("set_variables", "set_result", "complete_with_result")


# ---------------------------------------------------------------- bombs (built and checked without recursion)


def _outer_is_list(shape: str, level: int) -> bool:
    """Whether the container at ``level`` (1 = outermost) is a list."""
    if shape == "lists":
        return True
    if shape == "objects":
        return False
    return level % 2 == 1


def build_bomb(shape: str, depth: int) -> Any:
    """A value of exactly ``depth`` nested containers (the innermost empty), built inside out."""
    bomb: Any = [] if _outer_is_list(shape, depth) else {}
    for level in range(depth - 1, 0, -1):
        bomb = [bomb] if _outer_is_list(shape, level) else {"k": bomb}
    return bomb


def bomb_intact(bomb: Any, shape: str, depth: int) -> bool:
    """Whether ``bomb`` is still what ``build_bomb(shape, depth)`` made: one walk down, no recursion."""
    item = bomb
    for level in range(1, depth + 1):
        innermost = level == depth
        if _outer_is_list(shape, level):
            if type(item) is not list or len(item) != (0 if innermost else 1):
                return False
            if not innermost:
                item = item[0]
        else:
            if type(item) is not dict or len(item) != (0 if innermost else 1):
                return False
            if not innermost:
                if "k" not in item:
                    return False
                item = item["k"]
    return True


# ---------------------------------------------------------------- one measured refusal


@dataclass
class Result:
    seconds: list[float] = field(default_factory=list)
    peak_bytes: int = 0
    failures: list[str] = field(default_factory=list)
    collections: int = 0


def _collections() -> int:
    return sum(s["collections"] for s in gc.get_stats())


async def _invoke(store: Any, call: str, task_id: str, argument: Any) -> Any:
    if call == "set_variables":
        return await store.set_variables(task_id, OWNER, argument)
    if call == "set_result":
        return await store.set_result(task_id, OWNER, argument)
    return await store.complete_with_result(task_id, OWNER, TaskStatus.COMPLETED, None, argument)


async def _one_run(bomb: Any, call: str, traced: bool, result: Result) -> None:
    """One refusal on a fresh store: timed (traced=False) or memory-traced (traced=True)."""
    store = in_memory_task_store()
    task = await store.create(OWNER, "tools/call")
    before = await store.get(task.task_id, OWNER)
    refs = sys.getrefcount(bomb)
    argument = {"v": bomb} if call == "set_variables" else bomb
    outcome = "no exception: the store accepted the bomb"
    gc.collect(0)
    collections = _collections()
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    try:
        await _invoke(store, call, task.task_id, argument)
    except VariableValidationError as exc:
        elapsed = time.perf_counter() - start
        outcome = "" if exc.reason == "depth" else f"VariableValidationError with reason {exc.reason!r}, not 'depth'"
    except Exception as exc:  # RecursionError and friends are what we are looking for
        elapsed = time.perf_counter() - start
        outcome = f"{type(exc).__name__}: {str(exc)[:200]}"
    else:
        elapsed = time.perf_counter() - start
    if traced:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        result.peak_bytes = max(result.peak_bytes, peak)
    else:
        result.seconds.append(elapsed)
    result.collections += _collections() - collections
    del argument
    if outcome:
        result.failures.append(outcome)
        return
    after = await store.get(task.task_id, OWNER)
    if after != before:
        result.failures.append("the refused call changed the task")
    try:
        await store.get_result(task.task_id, OWNER)
        result.failures.append("the task holds a result after the refusal")
    except NotReadyError:
        pass
    if len((await store.list(OWNER)).tasks) != 1:
        result.failures.append("the owner's task list changed after the refusal")
    if sys.getrefcount(bomb) != refs:
        result.failures.append(f"the store kept references to the bomb ({sys.getrefcount(bomb) - refs:+d})")


async def _measure(bomb: Any, call: str, repeats: int) -> Result:
    result = Result()
    for _ in range(repeats):
        await _one_run(bomb, call, False, result)
    await _one_run(bomb, call, True, result)
    return result


# ---------------------------------------------------------------- main


def _depths(text: str) -> list[int]:
    depths = sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})
    if not depths or depths[0] < 1:
        raise argparse.ArgumentTypeError("depths must be positive integers")
    return depths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depths", type=_depths, default=_depths("1000,10000,100000,1000000"),
                        help="comma-separated nesting depths (default: 1000,10000,100000,1000000)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per depth, shape and call (default: 5)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    max_depth = StoreConfig().max_depth
    deepest = args.depths[-1]
    wall = time.perf_counter()

    rows: list[tuple[int, str, str, Result]] = []
    failures: list[str] = []
    context: list[str] = []
    for depth in args.depths:
        for shape in SHAPES:
            start = time.perf_counter()
            bomb = build_bomb(shape, depth)
            built = time.perf_counter() - start
            for call in CALLS:
                result = asyncio.run(_measure(bomb, call, args.repeats))
                rows.append((depth, shape, call, result))
                failures.extend(f"depth {depth:,}, {shape}, {call}: {f}" for f in dict.fromkeys(result.failures))
            if not bomb_intact(bomb, shape, depth):
                failures.append(f"depth {depth:,}, {shape}: the store changed the bomb")
            start = time.perf_counter()
            del bomb  # CPython frees deep nests through its trashcan mechanism, without deep C recursion
            freed = time.perf_counter() - start
            if depth == deepest:
                context.append(f"{shape}: built in {built * 1000:.0f} ms, freed in {freed * 1000:.0f} ms")

    print(f"Reference store (`in_memory_task_store()`, max_depth={max_depth}); median and max of {args.repeats} "
          f"timed refusals per row, peak from one separate tracemalloc run; Python {sys.version.split()[0]}.")
    print(f"Building and freeing each {deepest:,}-level bomb, outside every measurement (no crash): "
          + "; ".join(context) + ".\n")
    print("| depth | shape | call | median ms | max ms | peak KiB |")
    print("|---:|---|---|---:|---:|---:|")
    for depth, shape, call, result in rows:
        median = f"{statistics.median(result.seconds) * 1000:.3f}" if result.seconds else "failed"
        worst = f"{max(result.seconds) * 1000:.3f}" if result.seconds else "failed"
        flag = " **FAILED**" if result.failures else ""
        print(f"| {depth:,} | {shape} | `{call}`{flag} | {median} | {worst} | {result.peak_bytes / 1024:.1f} |")

    shallow, deep = args.depths[0], args.depths[-1]
    medians = {(d, s, c): statistics.median(r.seconds) for d, s, c, r in rows if r.seconds and not r.failures}
    ratios = [medians[(deep, s, c)] / medians[(shallow, s, c)]
              for s in SHAPES for c in CALLS if (deep, s, c) in medians and (shallow, s, c) in medians]
    peaks = [r.peak_bytes / 1024 for *_, r in rows if not r.failures]
    collections = sum(r.collections for *_, r in rows)
    print()
    if ratios and peaks:
        print(f"Conclusion: over the {len(ratios)} shape/call pairs, the median refusal at {deep:,} levels takes "
              f"{min(ratios):.2f}x to {max(ratios):.2f}x the median at {shallow:,} levels (a {deep // shallow:,}-fold "
              f"deeper value), and peak extra memory stays between {min(peaks):.1f} and {max(peaks):.1f} KiB at "
              f"every depth: the walk stops at max_depth + 1 = {max_depth + 1} levels. Garbage collections during "
              f"measured calls: {collections}. Whole run: {time.perf_counter() - wall:.1f} s.")
    if failures:
        print(f"\nFAILED: {len(failures)} problem(s); see stderr.")
        for failure in failures:
            print(f"DEPTH BOMB FAILURE: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
