"""What every benchmark shares: the one way to run the kit in a subprocess, the machine, the results files, engine servers.

``run_kit`` is the only place a benchmark starts ``python -m pytest``: a fresh temporary
working directory (so no ``.hypothesis`` database carries over between runs; only Hypothesis'
caches do, ``HYPOTHESIS_CACHES``), the
repository on ``PYTHONPATH`` (so ``testbed`` and ``examples`` import as a user's own package
would), a JSON verdict read back, the wall time of the whole process (start-up included),
and a timeout that kills the run's whole process group.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
#: What a run's output keeps for the results file: its last characters, where pytest's summary is.
OUTPUT_TAIL = 3000

T = TypeVar("T")
R = TypeVar("R")


#: Where kit subprocesses keep their bytecode (pytest's rewritten modules included), outside the repository.
PYCACHE = Path(tempfile.gettempdir()) / "conformance-bench-pycache"


#: Hypothesis' caches (never its example database), kept between kit runs as in an author's own checkout.
HYPOTHESIS_CACHES = Path(tempfile.gettempdir()) / "conformance-bench-hypothesis"
#: The cache folders under ``.hypothesis``: the Unicode table its text strategies build (1.0 s on
#: this machine) and the constants it reads from the modules it takes for the user's (0.4 s).
CACHE_PARTS = ("unicode_data", "constants")


def _copy_caches(source: Path, destination: Path) -> None:
    """Copy Hypothesis' cache folders, file by file (each cache file is named by its content's key)."""
    for part in CACHE_PARTS:
        if (source / part).is_dir():
            shutil.copytree(source / part, destination / part, dirs_exist_ok=True)


def kit_env(*, cold_in: Path | None = None) -> dict[str, str]:
    """The environment of a kit subprocess: this one, with the repository first on ``PYTHONPATH``.

    Bytecode is cached (in ``PYCACHE``), as on any machine where pip installed the kit and its
    first run wrote pytest's rewritten modules; this machine sets PYTHONDONTWRITEBYTECODE, which
    would compile every module from source on every run. ``cold_in`` measures exactly that: no
    bytecode read or written (the prefix is an empty folder there, which the caller removes).
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if cold_in is not None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPYCACHEPREFIX"] = str(cold_in / "pycache")  # empty: nothing to read
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


@dataclass(frozen=True)
class KitRun:
    """One ``python -m pytest`` run of the kit: its arguments, wall seconds, exit code (None: killed at the timeout) and verdict."""

    args: tuple[str, ...]
    seconds: float
    exit_code: int | None
    verdict: dict[str, Any] | None
    output: str = field(repr=False)

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None

    @property
    def failed_tests(self) -> list[tuple[str, dict[str, Any]]]:
        """The failed tests, in the order the run reported them (the first is the first failure)."""
        tests = (self.verdict or {}).get("tests", {})
        return [(nodeid, test) for nodeid, test in tests.items() if test["outcome"] == "failed"]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and self.verdict is not None and self.verdict["verdict"] == "pass"

    @property
    def status(self) -> str:
        """"pass", "fail" (a verdict that is not a pass), "timeout", or "error" (the run wrote no verdict)."""
        if self.timed_out:
            return "timeout"
        if self.verdict is None:
            return "error"
        return "pass" if self.passed else "fail"


def run_kit(*args: str, timeout: float | None = None, cwd: Path | None = None, keep: int | None = OUTPUT_TAIL,
            cold: bool = False) -> KitRun:
    """``python -m pytest -p no:cacheprovider -q --conformance-report=... ARGS`` in a fresh temporary directory.

    ``cwd`` runs it elsewhere instead (the temporary directory still holds the report).
    The wall time is the whole subprocess's, start-up included; at ``timeout`` seconds the
    run's process group (the kit and whatever it started) is killed and no verdict is read.
    ``keep`` is how many of the output's last characters the result holds (None: all of it).
    ``cold``: without bytecode (``kit_env``) and without Hypothesis' caches, as on a fresh machine;
    otherwise the run starts with the caches earlier runs left, and adds its own.
    """
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        report = Path(tmp) / "report.json"
        caches = Path(cwd or tmp) / ".hypothesis"
        if not cold:
            _copy_caches(HYPOTHESIS_CACHES, caches)
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", f"--conformance-report={report}", *args]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd or tmp, env=kit_env(cold_in=Path(tmp) if cold else None), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, text=True, start_new_session=True)
        exit_code: int | None
        try:
            output, _ = process.communicate(timeout=timeout)
            exit_code = process.returncode
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the kit and any server it started
            output, _ = process.communicate()
            exit_code = None
        seconds = time.perf_counter() - started
        if not cold:
            _copy_caches(caches, HYPOTHESIS_CACHES)
        verdict = json.loads(report.read_text()) if exit_code is not None and report.exists() else None
    return KitRun(tuple(args), seconds, exit_code, verdict, output if keep is None else output[-keep:])


def progress(message: str) -> None:
    """A line of progress on stderr (stdout stays for what a script prints as its result)."""
    print(message, file=sys.stderr, flush=True)


def parallel(function: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``function`` over ``items`` on ``workers`` threads (each runs its own subprocess), results in the items' order."""
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


# ---------------------------------------------------------------- the machine and the results files


def git_commit() -> str:
    """The checkout's commit (short), with "+changes" when the work tree differs from it."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results", ":!BENCHMARKS.md")
    return commit + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    """Where and when a section was measured: date, cores, Python, OS, commit, and the load when it started."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "commit": git_commit(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def save(section: str, data: dict[str, Any], *, quick: bool, seconds: float, measured: dict[str, Any]) -> Path:
    """Write one section's results to ``benchmarks/results/SECTION.json`` (what render.py reads back)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{section}.json"
    document = {"section": section, "quick": quick, "seconds": round(seconds, 1), "measured": measured, **data}
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def load(section: str, directory: Path = RESULTS) -> dict[str, Any] | None:
    """A section's saved results, or None if it was never run."""
    path = directory / f"{section}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


# ---------------------------------------------------------------- engine servers


@dataclass(frozen=True)
class EngineTarget:
    """An engine ready for the kit: its name, its example backend, and the ``--backend-option`` that reaches its server."""

    name: str
    backend: str
    options: tuple[str, ...]

    def args(self, spec: str | None = None) -> list[str]:
        """The kit's target arguments for the example backend, or for ``spec`` (a broken variant) on the same server."""
        return [f"--backend={spec or self.backend}", *self.options]


@contextmanager
def engine_servers(names: Sequence[str]) -> Iterator[dict[str, EngineTarget | str]]:
    """Start each named engine's server (as the engine tests do); yield name -> target, or the reason it is unavailable.

    SQLite needs no server. A server that cannot start (binary missing, install refused, a
    start-up failure) is reported by its one-line reason and the others go on; every started
    server is stopped on exit.
    """
    from testbed.engines.process import skipped_engines
    from testbed.engines.registry import ENGINES

    known = {engine.name: engine for engine in ENGINES}
    ready: dict[str, EngineTarget | str] = {}
    with ExitStack() as stack:
        for name in names:
            engine = known.get(name)
            if engine is None:
                ready[name] = f"no engine named {name}"
                continue
            if name in skipped_engines():
                ready[name] = "skipped by CONFORMANCE_SKIP_ENGINES"
                continue
            if engine.start is None or engine.option is None:
                ready[name] = EngineTarget(name, engine.backend, ())
                continue
            try:
                server = engine.start()
            except Exception as exc:  # EngineUnavailable, or whatever else stopped the server starting
                ready[name] = f"server did not start: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                continue
            stack.callback(server.stop)
            ready[name] = EngineTarget(name, engine.backend, (f"--backend-option={engine.option(server)}",))
        yield ready


def engine_names() -> list[str]:
    """Every engine with an example backend, in the registry's order (sqlite first)."""
    from testbed.engines.registry import ENGINES

    return [engine.name for engine in ENGINES]
