"""Profiles, seeds and a shared example database, end to end as a user meets them (issue 16).

``smoke`` runs every test ci runs on a fraction of the examples; a seed replays a run, and
every failure says which; a database shared by xdist workers of a thorough run hands the
failure it saved to the next ci run, which replays it first; a user's own Hypothesis profile
keeps its settings under the kit's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from conformance.plugin import profiles
from testbed.engines import process
from testbed.engines import redis as redis_engine
from tests.conftest import ROOT, run_kit, usage_error_line

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REFERENCE = "--backend=reference_backend:InMemoryBackend"
#: A bug the BK-13 tests catch within a few examples under every profile: a @given test
#: (whose Hypothesis statistics say in which phase it failed), the machine, and a test that passes.
CASE_FOLDING = ("--backend=testbed.backends.broken:CaseInsensitiveKeys", "--conformance-clause=BK-13", "--conformance-shrink=no")
ROUND_TRIP = "test_backend_records.py::test_data_round_trips_exactly[asyncio]"
REPLAY = re.compile(r"^replay: --conformance-seed=(\d+) --conformance-profile=(\w+)$", re.MULTILINE)


@pytest.fixture
def restore_profile() -> Iterator[None]:
    """In-process loads of a kit profile (each without a seed), undone: the session's own profile again."""
    from hypothesis import settings

    before = settings.get_current_profile_name()
    yield
    settings.load_profile(before)


def test_budgets_shrink_under_smoke_and_grow_under_thorough(restore_profile: None) -> None:
    """Every budget goes through ``scaled``: ci's are as written, thorough's 16 times, smoke's a fifteenth, never below 1."""
    from hypothesis import Phase, settings

    from conformance.machines.load import STORE_LOAD, Load

    profiles.load("ci")
    ci = settings.default
    assert (ci.max_examples, ci.stateful_step_count, ci.derandomize, ci.database, ci.deadline) == (60, 40, True, None, None)
    assert tuple(ci.phases) == (Phase.explicit, Phase.generate, Phase.target, Phase.shrink)
    assert [profiles.scaled(n) for n in (1, 20, 40)] == [1, 20, 40] and profiles.at_most(20) == 20
    assert Load().scaled(float(profiles.factor())) == Load()

    profiles.load("thorough")
    assert [profiles.scaled(n) for n in (1, 20, 40)] == [16, 320, 640] and profiles.at_most(20) == 20
    assert Load().scaled(float(profiles.factor())).rounds == 16 * Load().rounds

    profiles.load("smoke")
    smoke = settings.default
    assert smoke.max_examples <= 10 and smoke.stateful_step_count <= 10 and smoke.derandomize and smoke.database is None
    assert [profiles.scaled(n) for n in (1, 5, 20, 40, 60)] == [1, 1, 1, 2, 4] and profiles.at_most(20) == 1
    load = STORE_LOAD.scaled(float(profiles.factor()))
    assert load.rounds == 1 and load.seconds == pytest.approx(STORE_LOAD.seconds * 4 / 60) and load.clients == STORE_LOAD.clients


def test_every_state_machine_of_the_suite_is_seeded() -> None:
    """``run_state_machine_as_test`` takes its seed from the machine, not from the test it runs in: each call goes through ``machine``."""
    calls = {path.name: text.count("run_state_machine_as_test(") for path in (ROOT / "conformance" / "suite").glob("test_*.py")
             if "run_state_machine_as_test(" in (text := path.read_text(encoding="utf-8"))}
    assert calls, "the suite runs no state machine any more: update this test"
    for name, count in calls.items():
        text = (ROOT / "conformance" / "suite" / name).read_text(encoding="utf-8")
        assert text.count("run_state_machine_as_test(machine(") == count, f"{name} runs a state machine without profiles.machine()"


def test_smoke_runs_every_test_ci_runs(pytester: pytest.Pytester) -> None:
    collected, _ = run_kit(pytester, REFERENCE, "--collect-only")
    ci_ids = {line.strip() for line in collected.outlines if "::" in line}
    result, verdict = run_kit(pytester, REFERENCE, "--conformance-profile=smoke")
    assert result.ret == 0 and verdict is not None, result.stdout.str()[-3000:]
    assert len(ci_ids) > 100 and set(verdict["tests"]) == ci_ids
    assert {t["outcome"] for t in verdict["tests"].values()} == {"passed"}
    assert verdict["profile"] == "smoke" and verdict["seed"] is None
    result.stdout.fnmatch_lines(["*profile smoke, derandomized: the same command draws the same examples*"])


def _calls(verdict: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {nodeid: test["calls"] for nodeid, test in verdict["tests"].items()}


def test_a_thorough_runs_seed_is_printed_and_replays_it(pytester: pytest.Pytester) -> None:
    """Thorough draws a seed per run; each failure prints it, and the run it names draws the same examples, machine included."""
    first, drawn = run_kit(pytester, *CASE_FOLDING, "--conformance-profile=thorough")
    assert first.ret == pytest.ExitCode.TESTS_FAILED and drawn is not None, first.stdout.str()[-3000:]
    out = first.stdout.str()
    replays = REPLAY.findall(out)
    assert len(replays) == 3 and len(set(replays)) == 1, out[-3000:]  # one line in each failure, one seed
    seed, profile = replays[0]
    assert profile == "thorough" and drawn["seed"] == int(seed)
    first.stdout.fnmatch_lines([f"*profile thorough, seed {seed}: --conformance-seed={seed} --conformance-profile=thorough replays it*"])
    # Thorough keeps Hypothesis' default database (.hypothesis/ here), which would replay the saved failures first.
    shutil.rmtree(Path(pytester.path) / ".hypothesis" / "examples")
    again, replayed = run_kit(pytester, *CASE_FOLDING, "--conformance-profile=thorough", f"--conformance-seed={seed}")
    assert replayed is not None and replayed["seed"] == int(seed), again.stdout.str()[-3000:]
    assert _calls(replayed) == _calls(drawn)
    assert any("machine" in nodeid for nodeid in replayed["tests"]) and "BK-13" in drawn["violated"]
    assert replayed["violated"] == drawn["violated"]  # the machine may meet the case folding in a listing first (BK-12)


@pytest.mark.parametrize("ci_variable", ["", "true"])
def test_the_kit_runs_alike_where_hypothesis_sees_a_ci_variable(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                                 ci_variable: str) -> None:
    """Hypothesis loads its own "ci" profile under a CI variable (blob printing on, no database); nobody chose it, so the kit ignores it."""
    monkeypatch.delenv("CI", raising=False)
    if ci_variable:
        monkeypatch.setenv("CI", ci_variable)
    result, verdict = run_kit(pytester, *CASE_FOLDING, "--conformance-profile=thorough")
    assert result.ret == pytest.ExitCode.TESTS_FAILED and verdict is not None and "BK-13" in verdict["violated"]
    assert "reproduce_failure" not in result.stdout.str(), "a blob pointing into the installed kit"
    assert any((Path(pytester.path) / ".hypothesis" / "examples").rglob("*")), "thorough saved no failure in Hypothesis' default database"


def test_thorough_workers_share_a_database_whose_failure_ci_replays_first(pytester: pytest.Pytester) -> None:
    """The scale-out recipe: thorough on two xdist workers saves what it finds; a ci run on the same database replays it first."""
    database = Path(pytester.path) / "conformance-db"
    thorough, found = run_kit(pytester, *CASE_FOLDING, "--conformance-profile=thorough", f"--conformance-database={database}",
                              "-n", "2")
    assert thorough.ret == pytest.ExitCode.TESTS_FAILED and found is not None, thorough.stdout.str()[-3000:]
    assert "BK-13" in found["violated"] and any(database.rglob("*")), "the thorough run saved nothing"
    # Every worker ran on the controller's seed.
    assert {seed for seed, _ in REPLAY.findall(thorough.stdout.str())} == {str(found["seed"])}

    ci, replayed = run_kit(pytester, *CASE_FOLDING, f"--conformance-database={database}", "--hypothesis-show-statistics")
    assert ci.ret == pytest.ExitCode.TESTS_FAILED and replayed is not None and "BK-13" in replayed["violated"], ci.stdout.str()[-3000:]
    assert replayed["tests"][ROUND_TRIP]["outcome"] == "failed"
    ci.stdout.fnmatch_lines([
        "*replay: derandomized (ci profile, no seed): the same command draws the same examples*",
        f"*example database {database}, saved failures replayed first*",
        f"{ROUND_TRIP}:",
        "*during reuse phase*",
        "*0 passing examples, 1 failing examples*",
    ])


def test_an_empty_database_changes_no_example(pytester: pytest.Pytester) -> None:
    """The database only adds the failures it holds: ci on an empty one draws what ci draws without one."""
    selection = ("-k", "lookalike_keys or data_round_trips")
    bare, without = run_kit(pytester, REFERENCE, *selection)
    shared, with_empty = run_kit(pytester, REFERENCE, *selection, "--conformance-database=empty-db")
    assert bare.ret == shared.ret == 0 and without is not None and with_empty is not None, shared.stdout.str()[-3000:]
    assert _calls(with_empty) == _calls(without) and len(without["tests"]) == 2


@pytest.mark.parametrize("how", ["--hypothesis-profile", "conftest"])
def test_a_users_profile_keeps_its_settings_under_the_kits(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """Verbosity, print_blob and the database are the user's; budgets, deadline, derandomization and health checks the kit's.

    The kit's profile is loaded after Hypothesis' plugin loads ``--hypothesis-profile``, and after a conftest loads one.
    """
    pytester.makeconftest("""
import os
from hypothesis import HealthCheck, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase

settings.register_profile("mine", max_examples=3, deadline=5, derandomize=False, verbosity=Verbosity.verbose, print_blob=True,
                          suppress_health_check=[HealthCheck.return_value], database=DirectoryBasedExampleDatabase("user-db"))
if os.environ.get("LOAD_MINE"):
    settings.load_profile("mine")
""")
    pytester.makepyfile(test_own="""
from hypothesis import HealthCheck, Phase, Verbosity, settings
from hypothesis.database import DirectoryBasedExampleDatabase

def test_settings_under_the_kit():
    active = settings.default
    assert active.verbosity is Verbosity.verbose and active.print_blob is True  # the kit's own default is False
    assert active.database == DirectoryBasedExampleDatabase("user-db") and Phase.reuse in active.phases
    assert active.max_examples == 60 and active.stateful_step_count == 40 and active.deadline is None and active.derandomize
    assert {HealthCheck.return_value, HealthCheck.too_slow, HealthCheck.function_scoped_fixture} <= set(active.suppress_health_check)
""")
    suite_test = ("-k", "settings_under_the_kit or first_put_creates_a_record")
    if how == "conftest":
        monkeypatch.setenv("LOAD_MINE", "1")
    result, verdict = run_kit(pytester, REFERENCE, "test_own.py", *suite_test, *(["--hypothesis-profile=mine"] if how != "conftest" else []))
    assert result.ret == 0 and verdict is not None, result.stdout.str()[-3000:]
    assert result.parseoutcomes()["passed"] == 2
    # The suite test drew the examples it draws under the kit's own settings: the same conftest
    # (Hypothesis draws some examples from the literals of the modules loaded), no profile loaded.
    monkeypatch.delenv("LOAD_MINE", raising=False)
    bare, bare_verdict = run_kit(pytester, REFERENCE, *suite_test)
    assert bare.ret == 0 and bare_verdict is not None, bare.stdout.str()[-3000:]
    assert _calls(verdict) == _calls(bare_verdict) and sum(c["backend"] for c in _calls(verdict).values()) > 30


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "*--conformance-database takes a directory or redis://HOST:PORT*, got an empty value"),
        ("postgres://db.example/kit", "*--conformance-database takes a directory or redis://HOST:PORT*, got a postgres:// URL*"),
        ("a-file", "*'a-file' exists and is not a directory"),
        ("redis://", "*lacks a host or a port"),
        ("redis://127.0.0.1:sixty", "*the port in 'redis://127.0.0.1:sixty' is not a number"),
        ("redis://:secret@127.0.0.1:6379/zero", "*the database in 'redis://127.0.0.1:6379/zero' is not a number: 'zero'"),
        ("redis://127.0.0.1:1/0", "*--conformance-database: no Redis answers at 127.0.0.1:1: *"),
    ],
    ids=["empty", "other-url", "a-file", "no-host", "bad-port", "bad-db", "no-server"],
)
def test_bad_database_values_are_one_line(pytester: pytest.Pytester, value: str, expected: str) -> None:
    pytester.makefile("", **{"a-file": "not a directory"})
    result, _ = run_kit(pytester, REFERENCE, f"--conformance-database={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    line = usage_error_line(result)
    assert fnmatch(line, expected), line
    assert "secret" not in line


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with process.running("redis", redis_engine.start) as server:
        yield redis_engine.url(server, db=4)


def test_a_redis_database_is_shared_between_runs(pytester: pytest.Pytester, redis_url: str) -> None:
    """The same as a directory, on a Redis server several machines can reach."""
    first, found = run_kit(pytester, *CASE_FOLDING, f"--conformance-database={redis_url}")
    assert first.ret == pytest.ExitCode.TESTS_FAILED and found is not None and "BK-13" in found["violated"], first.stdout.str()[-3000:]
    again, replayed = run_kit(pytester, *CASE_FOLDING, f"--conformance-database={redis_url}", "--hypothesis-show-statistics")
    assert replayed is not None and "BK-13" in replayed["violated"], again.stdout.str()[-3000:]
    again.stdout.fnmatch_lines([f"{ROUND_TRIP}:", "*during reuse phase*", "*0 passing examples, 1 failing examples*"])


def test_two_sessions_in_one_process_each_apply_their_budget(tmp_path: Path) -> None:
    """A mutation tool runs the suite many times in one process: the second session re-applies the kit's settings, seed included."""
    program = f"""
import sys, pytest
args = ["-p", "no:cacheprovider", "-q", "{REFERENCE}", "-k", "lookalike_keys", "-W", "ignore::DeprecationWarning"]
first = pytest.main([*args, "--conformance-profile=thorough", "--conformance-seed=7"])
second = pytest.main([*args, "--conformance-profile=smoke"])
sys.exit(10 * int(first) + int(second))
"""
    ran = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert ran.stdout.count("1 passed") == 2, ran.stdout[-3000:]
