"""Hypothesis settings profiles for the kit.

``conformance-ci`` (the default) is derandomized: the same examples every run, so a gate
that passed yesterday passes today on the same code, and a failure replays exactly.
``conformance-smoke`` is ci with a fraction of its budgets, for a pre-commit hook: every
test runs, each on a few examples. ``conformance-thorough`` explores with fresh randomness
(one seed drawn per run, which replays it) and many more examples.

The kit's profile is built on the Hypothesis profile active when the run starts (a user's
``--hypothesis-profile``, or Hypothesis' own default): the settings the kit needs (its
budgets, phases, derandomization, no deadline, its suppressed health checks) win, and
the user's others (verbosity, database, print_blob ...) survive.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import ExampleDatabase

PROFILES: dict[str, str] = {"smoke": "conformance-smoke", "ci": "conformance-ci", "thorough": "conformance-thorough"}

#: Examples per property under the ci profile: the unit every budget is written in (``examples``).
CI_EXAMPLES = 60

#: The health checks the kit's tests trip by design (one loop per test serves every example;
#: each example opens its own fresh instance), suppressed on top of any the user suppresses.
_HEALTH_CHECKS = (HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture)

#: No reuse phase: ci has no database (unless one is asked for, which brings the phase back).
_CI_PHASES = (Phase.explicit, Phase.generate, Phase.target, Phase.shrink)

#: What each profile sets whatever profile it is built on: the kit's own keys.
_KEYS: dict[str, dict[str, Any]] = {
    # A pre-commit hook: seconds on the reference backend, every test run on a few examples.
    "smoke": dict(max_examples=4, stateful_step_count=8, derandomize=True, report_multiple_bugs=False, phases=_CI_PHASES),
    # report_multiple_bugs=False: shrink the first bug found, fast; thorough reports every distinct one.
    "ci": dict(max_examples=CI_EXAMPLES, stateful_step_count=40, derandomize=True, report_multiple_bugs=False, phases=_CI_PHASES),
    "thorough": dict(max_examples=1000, stateful_step_count=100, derandomize=False, report_multiple_bugs=True,
                     phases=settings.get_profile("default").phases),
}

#: What the kit sets only when no user profile is active: a user's own choice of these survives.
#: print_blob is off: its "@reproduce_failure as a decorator on your test case" points into the installed kit; a
#: failure says how to replay the run (the seed line) and --conformance-repro writes a script of its calls instead.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "smoke": dict(print_blob=False, database=None),
    "ci": dict(print_blob=False, database=None),
    "thorough": dict(print_blob=False),  # and Hypothesis' default database, as before
}

#: The run's seed (``--conformance-seed``, or drawn for thorough), None for a derandomized run.
#: Module state like Hypothesis' own active profile, which it goes with: a state machine run
#: inside a test body (``machine``) reads it as that test reads ``settings.default``.
_seed: int | None = None


def _profile(name: str, *, shrink: bool = True, database: ExampleDatabase | None = None, parent: settings | None = None,
             user_profile: bool = False) -> settings:
    """The settings of a kit profile, built on ``parent`` (the active profile) or on Hypothesis' default profile.

    The kit's keys (``_KEYS``) always win; its defaults (``_DEFAULTS``) only when ``parent`` is
    no profile of the user's (``user_profile``), whose own print_blob and database survive.
    ``database`` (``--conformance-database``) is used by every profile, with the reuse phase,
    so a failure saved by one run is replayed first by the next.
    """
    base = parent if parent is not None else settings.get_profile("default")
    keys = dict(_KEYS[name])
    keys["deadline"] = None  # time is judged by --conformance-timeout per call, not per example
    keys["suppress_health_check"] = [*_HEALTH_CHECKS, *(check for check in base.suppress_health_check if check not in _HEALTH_CHECKS)]
    if not shrink:
        keys["phases"] = [phase for phase in keys["phases"] if phase is not Phase.shrink]
    # Passing derandomize=True makes Hypothesis drop the database of the settings it builds
    # ("derandomize implies database=None"); a database given to a child of those settings is
    # kept, and a derandomized test does replay and save examples through it.
    built = settings(base, **({} if user_profile else _DEFAULTS[name]), **keys)
    if database is not None:
        built = settings(built, database=database)
    elif user_profile and built.database is not base.database:
        built = settings(built, database=base.database)  # the user's, which derandomize=True dropped
    if built.database is not None and Phase.reuse not in built.phases:
        built = settings(built, phases=[phase for phase in Phase if phase in built.phases or phase is Phase.reuse])
    return built


# Registered under their names too, for a project that names one with --hypothesis-profile.
for _name, _registered in PROFILES.items():
    settings.register_profile(_registered, _profile(_name))


def load(name: str, *, shrink: bool = True, seed: int | None = None, database: ExampleDatabase | None = None,
         parent: settings | None = None, user_profile: bool = False) -> None:
    """Activate a kit profile by its short name, built on ``parent`` (``_profile``).

    Without ``shrink``, failures are reported as first found. Why skip shrinking: a red build
    only needs the clause, and shrinking a stateful machine can take ten times as long as
    finding the bug; the same seed replays it shrunk locally. With ``seed``, every Hypothesis
    test of the suite draws from it (``apply_budgets``, ``machine``).
    """
    global _seed
    profile = PROFILES[name] + ("" if shrink else "-unshrunk")
    settings.register_profile(profile, _profile(name, shrink=shrink, database=database, parent=parent, user_profile=user_profile))
    settings.load_profile(profile)
    _seed = seed


def load_over_active(name: str, *, shrink: bool = True, seed: int | None = None, database: ExampleDatabase | None = None) -> None:
    """``load``, built on the Hypothesis profile active now: a user's (``--hypothesis-profile``, or loaded by
    their conftest) keeps its own settings where the kit sets none.

    Hypothesis' own default profile, and the variants its pytest plugin makes of a profile
    for ``--hypothesis-verbosity`` and ``--hypothesis-explain`` (named ``<profile>-with-...``),
    carry those options into the kit's profile too. A kit profile active already (an earlier
    run in the same process) is no user's: the kit builds on Hypothesis' default then.
    """
    active = settings.get_current_profile_name() or "default"
    chosen = active.split("-with-")[0]
    if chosen.startswith("conformance-"):
        load(name, shrink=shrink, seed=seed, database=database)
        return
    parent, hypothesis_ci = _active(), _is_hypothesis_ci(chosen)
    if hypothesis_ci:
        # Hypothesis loads its own "ci" profile wherever a CI variable is set: nobody chose it, and
        # the kit runs the same on a laptop and in CI (print_blob off; thorough's default database).
        parent = settings(parent, database=settings.get_profile("default").database)
    load(name, shrink=shrink, seed=seed, database=database, parent=parent, user_profile=chosen != "default" and not hypothesis_ci)


#: Hypothesis' own "ci" profile, as registered when it was imported (a user may register another "ci").
_HYPOTHESIS_CI = settings.get_profile("ci")


def _is_hypothesis_ci(chosen: str) -> bool:
    """Whether the active profile is Hypothesis' built-in "ci" one, which it loads itself under a CI variable."""
    return chosen == "ci" and settings.get_profile("ci") is _HYPOTHESIS_CI


#: The marker a suite test names its example budget with, in examples of the ci profile.
EXAMPLES_MARKER = "conformance_examples"


def examples(base: int) -> pytest.MarkDecorator:
    """A Hypothesis test's example budget under the ci profile; other profiles scale it (``apply_budgets``).

    A marker, not ``@settings(max_examples=...)``: settings built when a suite module is
    imported would freeze whatever profile was active then. The budget is applied at
    collection, after the kit's profile is loaded, whatever the import order.
    """
    marker: pytest.MarkDecorator = getattr(pytest.mark, EXAMPLES_MARKER)(base)
    return marker


def _active() -> settings:
    """The loaded profile (Hypothesis always has one once imported)."""
    active = settings.default
    assert active is not None
    return active


def factor() -> Fraction:
    """How the active profile's budgets compare with ci's: thorough's are a whole multiple (16), smoke's a fraction (4/60).

    Whole multiples upwards keep thorough's budgets what they were before smoke existed.
    """
    ratio = Fraction(_active().max_examples, CI_EXAMPLES)
    return Fraction(math.floor(ratio)) if ratio >= 1 else ratio


def scaled(base: int) -> int:
    """A budget of ``base`` under the ci profile, scaled to the active one; never below 1."""
    return max(1, math.floor(base * factor()))


def at_most(base: int) -> int:
    """A budget of ``base`` that shrinks with the profile's (smoke) but does not grow (thorough keeps ``base``)."""
    return min(base, scaled(base))


M = TypeVar("M", bound=Callable[..., Any])


def machine(factory: M) -> M:
    """A state machine (class or factory) seeded with the run's seed, if it has one: what the suite runs.

    ``run_state_machine_as_test`` takes its seed from ``@seed`` on the machine, not from the
    test it runs in, so a machine run inside a plain test must be seeded here.
    """
    return factory if _seed is None else hypothesis.seed(_seed)(factory)


def apply_budgets(items: Iterable[pytest.Item]) -> None:
    """Give every Hypothesis test among ``items`` the active profile, with its budget scaled to it, and the run's seed."""
    active = _active()
    done: set[int] = set()
    for item in items:
        test: Any = getattr(item, "obj", None)
        if getattr(test, "hypothesis", None) is None or id(test) in done:
            continue
        done.add(id(test))
        marker = item.get_closest_marker(EXAMPLES_MARKER)
        budget = active.max_examples if marker is None else scaled(int(marker.args[0]))
        _undo_budget(test)
        if _seed is not None:
            hypothesis.seed(_seed)(test)  # first: @seed gives the test database=None, and the settings below put the run's back
        settings(active, max_examples=budget)(test)
        test._conformance_budget = True


def _undo_budget(test: Any) -> None:
    """Take off the settings and seed an earlier session in this process put on ``test``.

    A second pytest session in one process (``pytester.runpytest``, a mutation tool running the
    suite per mutant) imports nothing again: the suite's functions still carry the first session's
    budget, which Hypothesis refuses to overwrite. Only what the kit itself applied is taken off.
    """
    if getattr(test, "_conformance_budget", False):
        del test._hypothesis_internal_settings_applied
        test._hypothesis_internal_use_seed = None  # as @given leaves it
