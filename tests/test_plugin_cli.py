"""The plugin end to end, as a backend author meets it: from an empty folder, with pytester."""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.conftest import run_kit, usage_error_line

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

@pytest.mark.slow
def test_reference_backend_passes_from_an_empty_folder(pytester: pytest.Pytester) -> None:
    """README's first command, on both loops: the gallery's correct run of the reference backend is this one."""
    result, verdict = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "--conformance-loop=all")
    assert result.ret == 0, result.stdout.str()
    assert verdict is not None and verdict["verdict"] == "pass"
    assert verdict["violated"] == [] and verdict["loops"] == ["asyncio", "trio"]
    statuses = {c: v["status"] for c, v in verdict["clauses"].items() if v["level"] == "MUST"}
    assert set(statuses.values()) <= {"met", "reference only"}, statuses
    assert [c for c, s in statuses.items() if s == "reference only"] == ["TS-19"]
    result.stdout.fnmatch_lines(["*conformance verdict: PASS*", "*calls made: * backend, * store*", "*clauses: * met*"])
    # The calls each test made add up to the run's total; store tests call the backend under the store.
    per_test = [t["calls"] for t in verdict["tests"].values()]
    assert verdict["calls"] == {c: sum(t.get(c, 0) for t in per_test) for c in ("backend", "store")}
    store_tests = [t["calls"] for nodeid, t in verdict["tests"].items() if nodeid.startswith("test_store_machine.py")]
    assert store_tests and all(t["backend"] > 0 and t["store"] > 0 for t in store_tests), store_tests


def test_shrinking_can_be_switched_off_and_stays_on_by_default() -> None:
    from hypothesis import Phase, settings

    from conformance.plugin import profiles

    before = settings.get_current_profile_name()
    try:
        profiles.load("ci", shrink=False)
        assert Phase.shrink not in settings.default.phases and Phase.generate in settings.default.phases
        assert settings.default.derandomize and settings.default.max_examples == 60
        profiles.load("ci")
        assert Phase.shrink in settings.default.phases
    finally:
        settings.load_profile(before)  # back to what the session had


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("no_colon_here", "*--backend expects 'module:attribute'*got 'no_colon_here'*"),
        ("no_such_module_xyz:Backend", "*cannot import module 'no_such_module_xyz'*ModuleNotFoundError*"),
        ("reference_backend:NoSuchThing", "*module 'reference_backend' has no attribute 'NoSuchThing'*"),
        ("reference_backend.memory:time", "*'time' is a module, not a class or callable*"),
    ],
)
def test_bad_backend_path_is_one_line(pytester: pytest.Pytester, spec: str, expected: str) -> None:
    result, _ = run_kit(pytester, f"--backend={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fnmatch(usage_error_line(result), expected), usage_error_line(result)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def Backend():\n    raise RuntimeError('no database configured')\n",
         "*backend factory mod:Backend raised RuntimeError: no database configured*"),
        ("from reference_backend import InMemoryBackend\nclass Backend(InMemoryBackend):\n    cleanup_expired = None\n",
         "*lacks method(s) cleanup_expired required by the contract*"),
        ("from reference_backend import InMemoryBackend\nclass Backend(InMemoryBackend):\n    def get(self, key):\n        return None\n",
         "*method(s) get must be coroutine functions*"),
        ("class Backend:\n    conformance_capabilities = 'fast'\n",
         "*conformance_capabilities must be a conformance.Capabilities, got str*"),
    ],
)
def test_broken_factories_are_one_line(pytester: pytest.Pytester, source: str, expected: str) -> None:
    pytester.makepyfile(mod=source)
    result, _ = run_kit(pytester, "--backend=mod:Backend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fnmatch(usage_error_line(result), expected), usage_error_line(result)


def test_backend_options_reach_the_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod='''
from reference_backend import InMemoryBackend

class Backend(InMemoryBackend):
    def __init__(self, clock=None, *, namespace):
        assert namespace == "tenant-7", namespace
        super().__init__(clock=clock)
''')
    result, verdict = run_kit(pytester, "--backend=mod:Backend", "--backend-option", "namespace=tenant-7", "-k", "writes")
    assert result.ret == 0, result.stdout.str()
    assert verdict and verdict["verdict"] == "pass"
    bad, _ = run_kit(pytester, "--backend=mod:Backend", "--backend-option", "not-a-pair")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--backend-option expects KEY=VALUE" in usage_error_line(bad)


def test_namespaced_spelling_when_a_conftest_owns_backend(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('''
def pytest_addoption(parser):
    parser.addoption("--backend", default="postgres", help="the project's own option")
''')
    pytester.makepyfile(test_own='''
def test_own_option(request):
    assert request.config.getoption("--backend") == "sqlite"
''')
    # The project's own test beside one of the kit's (the option plumbing is the subject, not the whole suite).
    result, verdict = run_kit(pytester, "--backend=sqlite", "--conformance-backend=reference_backend:InMemoryBackend", "test_own.py",
                              "-k", "own_option or fresh_instance")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    assert verdict and verdict["verdict"] == "pass"
    assert result.parseoutcomes()["passed"] == 2, result.stdout.str()
    assert [nodeid for nodeid in verdict["tests"]] == ["test_backend_contract.py::test_fresh_instance_is_empty[asyncio]"]


def test_factory_teardown_runs_for_every_instance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod='''
import contextlib, os
from reference_backend import InMemoryBackend

@contextlib.asynccontextmanager
async def Backend(clock=None):
    with open("opened.log", "a") as log:
        log.write("o")
    try:
        yield InMemoryBackend(clock=clock)
    finally:
        with open("closed.log", "a") as log:
            log.write("c")
''')
    result, _ = run_kit(pytester, "--backend=mod:Backend", "-k", "writes")
    assert result.ret == 0, result.stdout.str()
    opened = (pytester.path / "opened.log").read_text()
    closed = (pytester.path / "closed.log").read_text()
    assert len(opened) > 10 and len(closed) == len(opened), (len(opened), len(closed))


def test_hanging_backend_is_reported_and_the_run_stops(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod='''
import anyio
from reference_backend import InMemoryBackend

class Backend(InMemoryBackend):
    async def get(self, key):
        await anyio.Event().wait()
''')
    result, verdict = run_kit(pytester, "--backend=mod:Backend", "--conformance-timeout=0.5", timeout=120)
    assert result.ret == pytest.ExitCode.INTERRUPTED  # stopped after --conformance-max-timeouts
    assert verdict and "BK-19" in verdict["violated"]
    result.stdout.fnmatch_lines(["*did not complete within 0.5 s*", "*calls timed out*stopping*"])
    assert result.duration < 60


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (1.5, "*took * s, over the 0.5 s timeout, and blocked the event loop meanwhile*"),  # returns late
        (8.0, "*blocked the event loop for over * s*"),  # still blocking when the outer bound (3.5 s) gives up
    ],
)
def test_backend_blocking_the_loop_is_reported(pytester: pytest.Pytester, seconds: float, expected: str) -> None:
    pytester.makepyfile(mod=f'''
import time
from reference_backend import InMemoryBackend

class Backend(InMemoryBackend):
    async def delete(self, key):
        time.sleep({seconds})
        return False
''')
    result, verdict = run_kit(pytester, "--backend=mod:Backend", "--conformance-timeout=0.5", "-k", "backend_contract and answers_in_time", timeout=120)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert verdict and verdict["violated"] == ["BK-19"]
    result.stdout.fnmatch_lines([expected])


def test_a_run_that_checks_nothing_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(skipall='''
import pytest

def pytest_runtest_setup(item):
    pytest.skip("everything skipped")
''')
    result, verdict = run_kit(pytester, "-p", "skipall", "--backend=reference_backend:InMemoryBackend")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert verdict and verdict["verdict"] == "fail"
    result.stdout.fnmatch_lines(["*no conformance test ran*"])


def test_asyncio_only_backend_is_not_forced_onto_trio(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(mod='''
from conformance import Capabilities
from reference_backend import InMemoryBackend

class Backend(InMemoryBackend):
    conformance_capabilities = Capabilities(loops=frozenset({"asyncio"}))
''')
    only_trio, _ = run_kit(pytester, "--backend=mod:Backend", "--conformance-loop=trio")
    assert only_trio.ret == pytest.ExitCode.USAGE_ERROR
    assert "declares it runs on ['asyncio'] only" in usage_error_line(only_trio)
    both, verdict = run_kit(pytester, "--backend=mod:Backend", "--conformance-loop=all", "-k", "writes")
    assert both.ret == 0
    assert verdict and verdict["loops"] == ["asyncio"]


def test_suite_is_inert_without_a_target(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", "--pyargs", "conformance.suite", "test_plain.py")
    result.assert_outcomes(passed=1)


def test_reference_store_passes_with_store_flag(pytester: pytest.Pytester) -> None:
    """The verdict's shape for a store (the whole store suite runs in the gallery's correct runs)."""
    result, verdict = run_kit(pytester, "--store=reference_backend:in_memory_task_store", "-k", "test_store_contract")
    assert result.ret == 0, result.stdout.str()
    assert verdict is not None and verdict["kind"] == "store" and verdict["verdict"] == "pass"
    assert verdict["clauses"] and all(c.startswith(("TS-", "CC-", "SEC-")) for c in verdict["clauses"])
    assert {"CC-2", "CC-7", "CC-8"} <= set(verdict["clauses"]) and "CC-1" not in verdict["clauses"]
    # SEC-1 and SEC-2 are a backend's own half of isolation: a whole store is not judged on them.
    assert {"SEC-3", "SEC-9"} <= set(verdict["clauses"]) and not {"SEC-1", "SEC-2"} & set(verdict["clauses"])
    assert not any("test_backend" in nodeid for nodeid in verdict["tests"]), "a store target ran backend tests"


def test_backend_and_store_together_is_one_line(pytester: pytest.Pytester) -> None:
    result, _ = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "--store=reference_backend:in_memory_task_store")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "give one target, not --backend and --store" in usage_error_line(result)


def test_backend_runs_the_store_suite_through_the_reference_store(pytester: pytest.Pytester) -> None:
    result, verdict = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "-k", "store_machine")
    assert result.ret == 0, result.stdout.str()
    assert verdict and any("test_store_machine" in nodeid for nodeid in verdict["tests"])
    assert verdict["calls"]["backend"] > 0 and verdict["calls"]["store"] > 0, verdict["calls"]


def test_clause_selection_runs_only_that_clauses_tests(pytester: pytest.Pytester) -> None:
    result, verdict = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "--conformance-clause=BK-12")
    assert result.ret == 0, result.stdout.str()
    assert verdict and verdict["tests"]
    assert all("BK-12" in test["covers"] for test in verdict["tests"].values())
    bad, _ = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "--conformance-clause=BK-99")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "--conformance-clause names no clause of SPEC.md: BK-99" in usage_error_line(bad)


def test_race_failure_shows_a_timeline_and_writes_html(pytester: pytest.Pytester) -> None:
    """A violating concurrent history is drawn per client in the terminal, and as HTML on request."""
    pages = Path(pytester.path) / "timelines"
    result, verdict = run_kit(
        pytester, "--backend=testbed.backends.broken:NonAtomicPut", "--conformance-clause=CC-4", f"--conformance-timelines={pages}"
    )
    assert result.ret != 0 and verdict is not None and "CC-4" in verdict["violated"]
    out = result.stdout.str()
    assert "failing history: 3 calls by 2 clients" in out and "  client 2 " in out, out[-3000:]
    written = sorted(pages.glob("CC-4-*.html"))
    assert written, f"no HTML timeline in {pages}"
    page = written[0].read_text(encoding="utf-8")
    assert page.lstrip().lower().startswith("<!doctype html") and "race/a" in page and "<script" not in page


@pytest.mark.parametrize("flag", ["--backend=reference_backend:InMemoryBackend", "--store=reference_backend:in_memory_task_store"])
def test_security_marker_selects_exactly_the_sec_gate(pytester: pytest.Pytester, flag: str) -> None:
    """``-m security`` runs every test naming a SEC clause and nothing else, and every SEC clause the target can meet is met."""
    from conformance import spec

    result, verdict = run_kit(pytester, flag, "-m", "security")
    assert result.ret == 0 and verdict is not None, result.stdout.str()
    tests = verdict["tests"]
    assert tests and all(any(c.startswith("SEC-") for c in t["covers"]) for t in tests.values()), sorted(tests)
    met = {c for c, v in verdict["clauses"].items() if c.startswith("SEC-") and v["status"] == "met"}
    expected = {c for c in spec.clauses() if c.startswith("SEC-")}
    if flag.startswith("--store"):  # SEC-1 and SEC-2 are a backend's own half of isolation
        expected -= {"SEC-1", "SEC-2"}
    assert met == expected, verdict["clauses"]


def test_rules_run_simplest_first_and_whole_contract_machines_last(pytester: pytest.Pytester) -> None:
    """The backend's own tests, then the store's, each in section order (BK, TS, SEC, CC); then the machines, which trip over anything."""
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--backend=reference_backend:InMemoryBackend", "--collect-only", "-q")
    names = [line.split("::")[-1] for line in result.outlines if "::" in line]
    machines = [i for i, name in enumerate(names)
                if name.startswith(("test_backend_agrees_with_model", "test_store_agrees_with_model", "test_owner_isolation_probe_machine"))]
    races = [i for i, name in enumerate(names) if "linearizable" in name or "races_under_load" in name]
    first_store = names.index("test_store_offers_the_task_store_methods[asyncio]")
    assert len(machines) == 3 and len(races) == 4 and min(machines) > max(races), names
    assert names.index("test_fresh_instance_is_empty[asyncio]") < min(races) < first_store < max(races), names
    assert names.index("test_owner_prefixes_list_only_their_owners_keys[asyncio]") < first_store, names  # the backend's SEC tests


def test_the_kit_store_meets_its_own_races_over_a_backend_that_never_yields(pytester: pytest.Pytester) -> None:
    """A dict in memory never yields, so a store call over it would run whole: the kit ends each backend call at a
    switch point, and a kit store that turns a lost compare-and-swap into TaskStoreError fails TS-18 over it."""
    pytester.makeconftest("""
from conformance import VersionConflictError
from conformance.taskstore.generic import GenericTaskStore

_call = GenericTaskStore._call

async def _conflicts_become_backend_failures(self, method, *args, passing=()):
    return await _call(self, method, *args, passing=tuple(p for p in passing if p is not VersionConflictError))

GenericTaskStore._call = _conflicts_become_backend_failures
""")
    result, verdict = run_kit(pytester, "--backend=reference_backend:InMemoryBackend", "-k", "concurrent_writes_lose_no_update")
    assert verdict is not None and verdict["violated"] == ["TS-18"], result.stdout.str()[-3000:]
    result.stdout.fnmatch_lines(["*raised TaskStoreError*the only refusal contention may cause is ConcurrentModificationError*"])


def test_a_failing_run_never_builds_a_hypothesis_patch_for_the_kits_own_tests(pytester: pytest.Pytester) -> None:
    """Hypothesis would build an @example patch against the kit's test file (which no author can
    apply), importing libcst to do it: 0.6 s on every failing run."""
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        "    print('patching imported:', 'hypothesis.extra._patching' in sys.modules)\n"
    )
    result, verdict = run_kit(pytester, "--backend=testbed.backends.broken:ReserialisedData", "-x")
    assert result.ret == 1 and verdict is not None and verdict["verdict"] == "fail"
    result.stdout.fnmatch_lines(["patching imported: False"])
