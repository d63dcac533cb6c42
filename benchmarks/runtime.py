"""Runtime: how long the kit takes on the reference backend, per profile, serial and on two xdist workers, per part of the suite.

Each run is ``python -m pytest --backend=reference_backend:InMemoryBackend`` in a fresh
directory, timed whole (start-up included), with the suite's module paths as arguments to
choose a part (the plugin runs exactly the suite paths it is given): the backend's rules,
the task store's (run through the reference store over the backend), the races
(``*_races.py``, ``*_concurrency.py``) and the attacks (``*_security*.py``); and the whole
suite in one run. The number of tests is the verdict's count of tests that executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import progress, run_kit

TARGET = "--backend=reference_backend:InMemoryBackend"
MODES = {"serial": ("-n", "0"), "2 workers": ("-n", "2", "--dist", "worksteal")}
PARTS = ("backend", "task store", "races", "security")


def suite_dir() -> Path:
    from conformance.plugin import SUITE_DIR

    return SUITE_DIR


def part_of(module: Path) -> str:
    """Which part a suite module belongs to: races and attacks first, then by the contract it tests."""
    name = module.stem
    if name.endswith(("_races", "_concurrency")):
        return "races"
    if "_security" in name:
        return "security"
    return "backend" if name.startswith("test_backend_") else "task store"


def part_paths() -> dict[str, list[str]]:
    """The suite's modules by part (every ``test_*.py`` of the suite lands in exactly one)."""
    parts: dict[str, list[str]] = {part: [] for part in PARTS}
    for module in sorted(suite_dir().glob("test_*.py")):
        parts[part_of(module)].append(str(module))
    return parts


def measure(*, profiles: list[str], timeout: float) -> dict[str, Any]:
    """Every profile x mode x (each part, then the whole suite); thorough runs with seed 1."""
    parts = part_paths()
    rows = []
    for profile in profiles:
        seed = ["--conformance-seed=1"] if profile == "thorough" else []
        for mode, mode_args in MODES.items():
            for part, paths in [*parts.items(), ("whole", [])]:
                run = run_kit(TARGET, f"--conformance-profile={profile}", *seed, *mode_args, *paths, timeout=timeout)
                verdict = run.verdict or {}
                rows.append({"profile": profile, "mode": mode, "part": part, "status": run.status,
                             "tests": verdict.get("executed"), "seconds": round(run.seconds, 1)})
                progress(f"runtime {profile} {mode} {part}: {run.status}, {verdict.get('executed')} tests in {run.seconds:.1f} s")
    return {
        "target": TARGET.split("=", 1)[1],
        "profiles": profiles,
        "modes": {mode: " ".join(args) for mode, args in MODES.items()},
        "parts": {part: [Path(p).name for p in paths] for part, paths in parts.items()},
        "timeout": timeout,
        "rows": rows,
    }
