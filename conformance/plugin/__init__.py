"""The pytest plugin (entry point ``pytest11``): ``pytest --backend=mypkg:Backend`` runs the shipped suite.

It is inert unless a target is named: no fixtures leak into other projects' tests
(they live in the suite's own conftest), and the suite is never collected by accident.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance import spec
from conformance.contract.backend import BACKEND_METHODS
from conformance.contract.store import STORE_METHODS
from conformance.harness.counters import RunCounters
from conformance.harness.runner import LoopRunner
from conformance.harness.target import Target, TargetError, load_command_target, load_target
from conformance.plugin import profiles
from conformance.plugin.database import DatabaseError, open_database
from conformance.plugin.options import add_options, add_short_spellings
from conformance.report.baseline import Baseline, BaselineError
from conformance.report.baseline import load as load_baseline
from conformance.report.collector import RunSettings, VerdictCollector, hide_kit_frames
from conformance.report.repro import TargetSource
from conformance.wire import WireProcess

SUITE_DIR = Path(__file__).resolve().parent.parent / "suite"
TARGET_KEY = pytest.StashKey[Target]()
LOOPS_KEY = pytest.StashKey[list[str]]()
COLLECTOR_KEY = pytest.StashKey[VerdictCollector]()
#: The run's call counts and timeouts: one per session, so runs in one process (pytester) never mix.
COUNTERS_KEY = pytest.StashKey[RunCounters]()
#: How many collected tests, by declared kind, do not apply to the target (said once after collection).
NOT_APPLYING_KEY = pytest.StashKey[dict[str, int]]()
#: The implementation process behind ``--backend-command`` / ``--store-command``, if the target is one.
PROCESS_KEY = pytest.StashKey[WireProcess]()
#: Where the process's stderr stood when the current test started (its lines are shown if the test fails).
STDERR_MARK_KEY = pytest.StashKey[int]()
#: The seed every Hypothesis test of the run draws from, None for a derandomized run.
SEED_KEY = pytest.StashKey[int | None]()
#: Where an xdist worker finds the controller's seed in its ``workerinput``.
SEED_INPUT = "conformance_seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> Generator[None, None, None]:
    result = yield
    add_short_spellings(parser)
    return result


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Load the target and the kit's Hypothesis profile, point collection at the suite.

    Last of every plugin's ``pytest_configure``: Hypothesis' own plugin loads a user's
    ``--hypothesis-profile`` in its ``pytest_configure``, and the kit's profile is built on it.
    """
    config.addinivalue_line("markers", "conformance_clause(*ids): SPEC.md clauses a conformance test checks")
    config.addinivalue_line(
        "markers",
        f"{spec.TARGET_MARKER}(kind): the kind of target a conformance test drives, one of {', '.join(spec.TARGET_KINDS)} "
        "(SPEC.md, Targets); deselected in runs whose target it does not apply to",
    )
    config.addinivalue_line("markers", "security: the security regression gate (tests naming a SEC clause of SPEC.md)")
    config.addinivalue_line("markers", f"{MACHINE_MARKER}: a test that runs a state machine; it runs after every rule's own tests")
    config.addinivalue_line("markers", f"{profiles.EXAMPLES_MARKER}(n): a suite test's Hypothesis example budget under the ci profile")
    try:
        target = _target(config)
        if target is None:
            return
        loops = _loops(config, target)
        database_option = config.getoption("conformance_database", None)
        database = open_database(database_option) if database_option is not None else None
        _probe(target, loops[0], config.getoption("conformance_timeout"))
    except (TargetError, DatabaseError) as exc:
        process = config.stash.get(PROCESS_KEY, None)
        if process is not None:
            process.stop()
        raise pytest.UsageError(str(exc)) from None
    counters = RunCounters()
    config.stash[COUNTERS_KEY] = counters
    config.stash[TARGET_KEY] = target
    config.stash[LOOPS_KEY] = loops
    profile = config.getoption("conformance_profile")
    seed = _run_seed(config, profile)
    config.stash[SEED_KEY] = seed
    profiles.load_over_active(profile, shrink=config.getoption("conformance_shrink") != "no", seed=seed, database=database)
    run = RunSettings(profile, seed, database_option)
    collector = VerdictCollector(target, loops, config.getoption("conformance_report"), counters, run,
                                 source=_source(config, target), repro_dir=config.getoption("conformance_repro"),
                                 baseline=_baseline(config))
    config.stash[COLLECTOR_KEY] = collector
    hide_kit_frames()
    config.pluginmanager.register(collector, "conformance-verdict")
    _point_collection_at_suite(config)


def _run_seed(config: pytest.Config, profile: str) -> int | None:
    """The seed of this run: ``--conformance-seed``, the controller's under xdist, one drawn for thorough, else None.

    None leaves ci and smoke derandomized: each test draws the same examples every run.
    """
    given: int | None = config.getoption("conformance_seed", None)
    if given is not None:
        return given
    workerinput = getattr(config, "workerinput", None)  # an xdist worker: every worker runs on the controller's seed
    if workerinput is not None and SEED_INPUT in workerinput:
        seed: int | None = workerinput[SEED_INPUT]
        return seed
    return secrets.randbelow(2**32) if profile == "thorough" else None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist, on the controller: hand each worker the run's seed (a thorough run draws one, for every worker)."""
    if SEED_KEY in node.config.stash:
        node.workerinput[SEED_INPUT] = node.config.stash[SEED_KEY]


def _target(config: pytest.Config) -> Target | None:
    """The one thing under test: a backend (run under the reference store too) or a whole task store,
    in the kit's process (``--backend``, ``--store``) or in a process of its own (``--backend-command``, ``--store-command``)."""
    backend = config.getoption("conformance_backend", None)
    store = config.getoption("conformance_store", None)
    backend_command = config.getoption("conformance_backend_command", None)
    store_command = config.getoption("conformance_store_command", None)
    given = [flag for flag, value in (("--backend", backend), ("--store", store), ("--backend-command", backend_command),
                                      ("--store-command", store_command)) if value]
    if len(given) > 1:
        raise TargetError(f"give one target, not {' and '.join(given)} (a backend is also checked under the reference store)")
    if backend_command or store_command:
        kind = "backend" if backend_command else "store"
        target, process = load_command_target(
            str(backend_command or store_command), f"--{kind}-command", kind, BACKEND_METHODS if backend_command else STORE_METHODS,
            config.getoption("conformance_timeout"))
        config.stash[PROCESS_KEY] = process
        return target
    if backend:
        return load_target(backend, config.getoption("conformance_backend_options"), "--backend", "--backend-option",
                           kind="backend", methods=BACKEND_METHODS)
    if store:
        return load_target(store, config.getoption("conformance_store_options"), "--store", "--store-option",
                           kind="store", methods=STORE_METHODS)
    return None


def _baseline(config: pytest.Config) -> Baseline | None:
    path = config.getoption("conformance_baseline", None)
    if not path:
        return None
    try:
        return load_baseline(path)
    except BaselineError as exc:
        raise pytest.UsageError(str(exc)) from None


def _source(config: pytest.Config, target: Target) -> TargetSource:
    """Where a reproduction script finds the target again: the factory and its options, or the command."""
    command = config.getoption(f"conformance_{target.kind}_command", None)
    return TargetSource(
        kind=target.kind, spec=target.spec, factory=None if command else target.spec, command=command,
        options=dict(target.options), cwd=str(config.invocation_params.dir), timeout=config.getoption("conformance_timeout"),
        expired_records=target.capabilities.expired_records.value,
    )


def _loops(config: pytest.Config, target: Target) -> list[str]:
    """The loops to run on: those asked for that the target declares; asking only for unsupported ones is an error."""
    asked = ["asyncio", "trio"] if config.getoption("conformance_loop") == "all" else [config.getoption("conformance_loop")]
    usable = [loop for loop in asked if loop in target.capabilities.loops]
    if not usable:
        raise TargetError(
            f"{target.spec} declares it runs on {sorted(target.capabilities.loops)} only; "
            f"--conformance-loop={config.getoption('conformance_loop')} asks for {asked}"
        )
    if "trio" in usable:
        try:
            import trio  # noqa: F401
        except ImportError:
            raise TargetError("--conformance-loop asks for trio, which is not installed (pip install trio)") from None
    return usable


def _probe(target: Target, loop: str, timeout: float) -> None:
    """Build and tear down one instance before any test, so a broken factory is one line, not N failures."""
    runner = LoopRunner(loop, timeout)
    try:
        async def build_and_close() -> None:
            _instance, closer = await target.open(clock=None)
            await closer()

        runner.call(f"{target.kind} factory {target.spec}", build_and_close)
    except AssertionError as exc:  # a timeout inside the factory
        raise TargetError(f"{target.kind} factory {target.spec}: {getattr(exc, 'detail', exc)}") from None
    finally:
        runner.close()


def _point_collection_at_suite(config: pytest.Config) -> None:
    """Run the shipped suite: alone when no paths were given, beside explicit paths otherwise."""
    suite = str(SUITE_DIR)
    explicit = config.args_source == pytest.Config.ArgsSource.ARGS
    if not explicit:
        config.args[:] = [suite]
    elif not any(str(Path(arg.split("::")[0]).resolve()).startswith(suite) for arg in config.args):
        config.args.append(suite)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never collect the suite without a target (which tests apply to it is each test's declared kind)."""
    if SUITE_DIR not in (collection_path, *collection_path.parents):
        return None
    return True if TARGET_KEY not in config.stash else None


def declared_kind(item: pytest.Item) -> str | None:
    """The kind of target a test declares it drives (``conformance_target``), or None if it declares none.

    Why a declaration and not the file's name: what applies to a target is data the coverage
    self-test can hold against the SPEC's ``Target:`` lines, and a project's own tests can use it too.
    """
    marker = item.get_closest_marker(spec.TARGET_MARKER)
    if marker is None:
        return None
    kind = marker.args[0] if len(marker.args) == 1 and not marker.kwargs else None
    if kind not in spec.TARGET_KINDS:
        raise pytest.UsageError(f"{item.nodeid}: {spec.TARGET_MARKER} takes one of {spec.TARGET_KINDS}, got {marker.args!r}")
    return str(kind)


def _deselect(config: pytest.Config, items: list[pytest.Item], keep: list[pytest.Item]) -> None:
    """Narrow ``items`` to ``keep``, telling pytest (and its summary's "deselected" count) about the rest."""
    if len(keep) == len(items):
        return
    kept = set(keep)
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = keep


#: Sections in the order their rules build on each other: the backend's, the store's over it,
#: the attacks on both, then whole concurrent histories.
_SECTION_ORDER = {"BK": 0, "TS": 1, "SEC": 2, "CC": 3}
#: A test naming this many clauses judges a whole contract (a state machine): after the direct tests.
_WHOLE_CONTRACT = 5
#: The marker of a test that runs a state machine, whatever clauses it names: after the direct tests too.
MACHINE_MARKER = "conformance_machine"


def _rule_order(item: pytest.Item) -> tuple[int, int, int, int]:
    """Where a suite test runs: the backend's own tests before the store's over it, each by the
    clause it is about (the first it names), the simplest rules first; the tests of a whole
    contract (state machines) after every rule's own tests.

    Why: a bug usually breaks one rule and, through it, others built on it; run in this order, the
    first failure is the test of the rule the bug breaks, not a later one that trips over it
    (a pagination bug met first by a quota test). A machine trips over anything, and it is the
    slowest test there is: run last, it neither names a rule another test names better nor delays
    that test's failure under ``-x`` (an owner-isolation bug reached the store machine before the
    SEC test of its rule; a quota shared by look-alike owners reached the owner-isolation probe
    machine, which names two SEC clauses only, 7 s into a run, before the direct SEC-4 test). A backend's bug, races included, is met by the backend's own tests
    before the store suite over it runs (a backend race waited for every store test).
    """
    marker = item.get_closest_marker("conformance_clause")
    if marker is None or not marker.args:
        return (-1, 0, 0, 0)
    prefix, _, number = str(marker.args[0]).partition("-")
    # Every CC test judges whole histories, and is no machine for that.
    whole = item.get_closest_marker(MACHINE_MARKER) is not None or (len(marker.args) >= _WHOLE_CONTRACT and prefix != "CC")
    layer = 0 if item.path.name.startswith("test_backend_") else 1
    return (1 if whole else 0, layer, _SECTION_ORDER.get(prefix, len(_SECTION_ORDER)), int(number) if number.isdigit() else 0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests whose declared kind applies to the target, order them by rule (``_rule_order``);
    ``--conformance-clause`` keeps only the tests of those clauses.

    Tests that do not apply are deselected, not skipped: they are no part of the target's verdict,
    and a deselected test builds no fixture (a store target never constructs a backend).
    """
    target = config.stash.get(TARGET_KEY, None)
    if target is None:
        return
    keep: list[pytest.Item] = []
    not_applying: dict[str, int] = {}
    for item in items:
        kind = declared_kind(item)
        if kind is None or spec.judged_on(kind, target.kind):  # undeclared tests (a project's own) always run
            keep.append(item)
        else:
            not_applying[kind] = not_applying.get(kind, 0) + 1
    config.stash[NOT_APPLYING_KEY] = not_applying
    _deselect(config, items, keep)
    items.sort(key=_rule_order)  # stable: a test's loops stay together, a project's own tests keep their order
    profiles.apply_budgets(item for item in items if SUITE_DIR in item.path.parents)
    wanted = set(config.getoption("conformance_clauses", None) or ())
    if not wanted:
        return
    unknown = wanted - set(spec.clauses())
    if unknown:
        raise pytest.UsageError(f"--conformance-clause names no clause of SPEC.md: {', '.join(sorted(unknown))}")
    _deselect(config, items, [item for item in items if wanted & set(_clauses_of(item))])


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move everything alive after collection (modules, classes, test items) out of the collector's reach.

    Why: none of it becomes garbage before the process ends, yet every full collection walks it,
    and pytest runs several at the end of every session (to report unraisable exceptions). On a
    run that stops at its first failure that was 0.3 s of a 1.1 s run. Objects made by the tests
    themselves are collected as before.
    """
    if session.config.stash.get(TARGET_KEY, None) is not None:
        gc.freeze()


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    """Say why tests were deselected, so a store author does not read "45 deselected" as something missing."""
    target = config.stash.get(TARGET_KEY, None)
    not_applying = config.stash.get(NOT_APPLYING_KEY, {})
    if target is None or not not_applying:
        return []
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(not_applying.items()))
    return [f"conformance: deselected {counts} test(s), which do not apply to a {target.kind} target (SPEC.md, Targets)"]


def _clauses_of(item: pytest.Item) -> tuple[str, ...]:
    marker = item.get_closest_marker("conformance_clause")
    return tuple(marker.args) if marker else ()


def pytest_unconfigure(config: pytest.Config) -> None:
    process = config.stash.get(PROCESS_KEY, None)
    if process is not None:
        process.stop()


def pytest_runtest_setup(item: pytest.Item) -> None:
    process = item.config.stash.get(PROCESS_KEY, None)
    if process is not None:
        item.config.stash[STDERR_MARK_KEY] = process.stderr_count


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test against a process shows what the process wrote to stderr while the test ran."""
    report = yield
    process = item.config.stash.get(PROCESS_KEY, None)
    if process is not None and report.failed:
        lines = process.stderr_since(item.config.stash.get(STDERR_MARK_KEY, 0))
        if lines:
            report.sections.append(("Captured stderr of the target process", "\n".join(lines)))
    return report


#: Where Hypothesis leaves a test's failing examples for its pytest plugin to turn into a patch file.
_HYPOTHESIS_PATCH_ATTRIBUTE = "_hypothesis_failing_examples"


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if SUITE_DIR in item.path.parents and hasattr(item, _HYPOTHESIS_PATCH_ATTRIBUTE):
        # Hypothesis would build a patch adding @example to the kit's own test, in site-packages, which
        # no author can apply (the reproduction script is theirs); it imports libcst to do so: 0.6 s
        # on every failing run.
        delattr(item, _HYPOTHESIS_PATCH_ATTRIBUTE)
    process = item.config.stash.get(PROCESS_KEY, None)
    if process is not None and process.broken is not None:
        item.session.shouldstop = f"conformance: {process.broken.detail}"
    counters = item.config.stash.get(COUNTERS_KEY, None)
    if counters is None:
        return
    timeouts = counters.timeouts
    if timeouts.count >= item.config.getoption("conformance_max_timeouts", 3):
        item.session.shouldstop = f"conformance: {timeouts.count} calls timed out (last: {timeouts.last}); stopping"
