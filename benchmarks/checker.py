"""Checker: verdict time of the linearizability checker against history size, clients and keys, on simulated histories.

Each history is made by running the sequential KV model: clients on each key issue calls
with overlapping intervals, each call takes effect at a random instant inside its
interval, and outcomes are what the model answered at that instant (so the history is
linearizable by construction). The non-linearizable variant turns one read into a stale
read: it returns the record that a write, completed before the read was called, had
already replaced. That passes every cheap check (the data was written, at that version,
before the read), so only the search can refute it. "search only" times the search with
the cheap checks off. Times are the median of several runs in this process: wall time,
and this process's CPU time (the wall time includes waiting for a busy machine).
"""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import replace
from typing import Any

from benchmarks.common import progress
from conformance.checker import NEVER, UNKNOWN, Entry, History, check
from conformance.contract.backend import VersionedRecord
from conformance.models.kv import (
    Delete,
    Get,
    KVModel,
    KVOperation,
    ListByPrefix,
    Put,
    PutIfVersion,
    Returned,
)


def simulate(
    rng: random.Random, ops: int, clients_per_key: int, keys: int, unknown_rate: float = 0.0, list_rate: float = 0.0
) -> History:
    """A linearizable history of about ``ops`` calls, made by running the KV model at random effect points.

    Each key has its own clients; with ``list_rate`` some calls list every key (``list_by_prefix("key-")``),
    which ties the keys together, so the history is checked whole.
    """
    model = KVModel()
    planned: list[list[Any]] = []  # (call, effect, ret, client, key, kind, serial, unknown, takes_effect)
    per_client = max(1, ops // (keys * clients_per_key))
    serial = 0
    for k in range(keys):
        key = f"key-{k}"
        for c in range(clients_per_key):
            client = k * clients_per_key + c
            t = rng.uniform(0, 2)
            for _ in range(per_client):
                duration = rng.uniform(0.5, 3.0)
                effect = rng.uniform(t, t + duration)
                roll = rng.random()
                kind = "get" if roll < 0.4 else "put" if roll < 0.65 else "cas" if roll < 0.95 else "delete"
                if rng.random() < list_rate:
                    kind = "list"
                unknown = rng.random() < unknown_rate
                planned.append([t, effect, t + duration, client, key, kind, serial, unknown, rng.random() < 0.5])
                serial += 1
                t += duration + rng.uniform(0.05, 1.0)
    seen: dict[int, int] = {}  # client -> last version it saw
    state = model.initial()
    results: dict[int, tuple[Any, Any]] = {}
    for _call, _effect, _ret, client, key, kind, serial, unknown, takes_effect in sorted(planned, key=lambda p: p[1]):
        data = f"c{client}-{serial}".encode()
        op: KVOperation
        if kind == "get":
            op = Get(key)
        elif kind == "put":
            op = Put(key, data)
        elif kind == "cas":
            op = PutIfVersion(key, data, seen.get(client, 1))
        elif kind == "delete":
            op = Delete(key)
        else:
            op = ListByPrefix("key-")
        expectation = model.expect(state, op)
        outcome = expectation.example()
        if not unknown or takes_effect:
            state = expectation.then(outcome)
        if isinstance(outcome, Returned):
            value = outcome.value
            if isinstance(value, VersionedRecord):
                seen[client] = value.version
            elif isinstance(value, int) and not isinstance(value, bool):
                seen[client] = value
        results[serial] = (op, UNKNOWN if unknown else outcome)
    times = sorted([(p[0], p[6], 0) for p in planned] + [(p[2], p[6], 1) for p in planned if not p[7]])
    rank = {(s, kind): i for i, (_, s, kind) in enumerate(times)}
    entries = []
    for p in planned:
        op, outcome = results[p[6]]
        ret = NEVER if p[7] else rank[(p[6], 1)]
        entries.append(Entry(p[3], op, rank[(p[6], 0)], ret, outcome))
    return History(entries)


def stale_read(history: History) -> History:
    """Make the last read that can be made stale return the record a completed write had replaced.

    The read returns the data (and version) of a write ``older`` that completed before another
    successful write ``last`` of the key was called, and ``last`` completed before the read was
    called. Written data is unique, so only ``older`` ever stored it, and ``last`` overwrote it
    before the read began: the history is non-linearizable by construction, and the cheap
    checks cannot see it (the data was written, at that version, before the read).
    """
    for g in reversed(history.entries):
        if not isinstance(g.op, Get) or g.unknown:
            continue
        writes = [w for w in history if isinstance(w.op, (Put, PutIfVersion)) and w.op.key == g.op.key
                  and isinstance(w.outcome, Returned) and w.ret < g.call]
        for last in sorted(writes, key=lambda w: -w.ret):
            older = [w for w in writes if w.ret < last.call]
            if older:
                old = max(older, key=lambda w: w.ret)
                record = VersionedRecord(old.op.data, old.outcome.value)
                return History(replace(e, outcome=Returned(record)) if e is g else e for e in history)
    raise RuntimeError("no read could be made stale")


def timed(history: History, repeats: int, budget: float, cheap: bool) -> tuple[float, float, str]:
    """Median wall time, median CPU time of this process, and the verdict."""
    walls, cpus, status = [], [], ""
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        verdict = check(history, KVModel(), budget=budget, cheap=cheap)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        status = verdict.status
    return statistics.median(walls), statistics.median(cpus), status


#: (label, ops, clients per key, keys, simulate keywords); each history is timed honest and with one stale read.
SHAPES: list[tuple[str, int, int, int, dict[str, float]]] = [
    ("3,000 ops, 8 clients/key, 37 keys", 3000, 8, 3000 // 80, {}),
    ("300 ops, 16 clients, 1 key", 300, 16, 1, {}),
    ("100 ops, 4 clients, 1 key, 10% unknown", 100, 4, 1, {"unknown_rate": 0.1}),
    ("100 ops, 8 clients, 1 key, 10% unknown", 100, 8, 1, {"unknown_rate": 0.1}),
    ("300 ops, 8 clients, 1 key, 10% unknown", 300, 8, 1, {"unknown_rate": 0.1}),
    ("300 ops, 16 clients, 1 key, 10% unknown", 300, 16, 1, {"unknown_rate": 0.1}),
    ("300 ops, 4 clients/key, 4 keys, 5% listings (checked whole)", 300, 4, 4, {"list_rate": 0.05}),
]
#: With ``wide``: also 32 clients on one key (slow when not linearizable).
WIDE: tuple[str, int, int, int, dict[str, float]] = ("300 ops, 32 clients, 1 key", 300, 32, 1, {})


def measure(*, repeats: int, budget: float = 20.0, seed: int = 1, wide: bool = False) -> dict[str, Any]:
    """Every shape, honest and with one stale read: its size, and the median time to the verdict with and without the cheap checks."""
    rng = random.Random(seed)
    cases: list[tuple[str, History, bool]] = []
    for label, ops, clients, keys, options in [*SHAPES, *([WIDE] if wide else [])]:
        history = simulate(rng, ops, clients, keys, **options)
        cases.append((label, history, True))
        cases.append((f"{label}, one stale read", stale_read(history), False))
    rows = []
    for name, history, linearizable in cases:
        touched = {e.op.key for e in history if hasattr(e.op, "key")}
        per_key = max(len({e.client for e in history if getattr(e.op, "key", None) == k}) for k in touched)
        wall, cpu, status = timed(history, repeats, budget, cheap=True)
        search_wall, search_cpu, search_status = timed(history, repeats, budget, cheap=False)
        rows.append({"history": name, "ops": len(history), "clients_per_key": per_key, "keys": len(touched),
                     "unknown": history.unknown_count(), "linearizable": linearizable, "verdict": status,
                     "ms": round(wall * 1000, 1), "cpu_ms": round(cpu * 1000, 1),
                     "search_ms": round(search_wall * 1000, 1), "search_cpu_ms": round(search_cpu * 1000, 1),
                     "search_verdict": search_status})
        progress(f"checker {name}: {status} in {wall * 1000:.1f} ms")
    return {"repeats": repeats, "budget": budget, "seed": seed, "rows": rows}
