"""Hypothesis settings profiles for the kit.

``conformance-ci`` (the default) is derandomized: the same examples every run, so a gate
that passed yesterday passes today on the same code, and a failure replays exactly.
``conformance-smoke`` is ci with a fraction of its budgets, for a pre-commit hook: every
test runs, each on a few examples. ``conformance-thorough`` explores with fresh randomness
(one seed drawn per run, which replays it) and many more examples.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import HealthCheck, Phase, settings

PROFILES: dict[str, str] = {"smoke": "conformance-smoke", "ci": "conformance-ci", "thorough": "conformance-thorough"}

#: Examples per property under the ci profile: the unit every budget is written in (``examples``).
CI_EXAMPLES = 60

_COMMON: dict[str, Any] = dict(
    deadline=None,  # time is judged by --conformance-timeout per call, not per example
    # One loop per test serves every example; each example opens its own fresh instance.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
    print_blob=True,
)

settings.register_profile(
    "conformance-smoke",  # a pre-commit hook: seconds on the reference backend, every test run on a few examples
    max_examples=6,
    stateful_step_count=10,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    **_COMMON,
)
settings.register_profile(
    "conformance-ci",
    max_examples=CI_EXAMPLES,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    report_multiple_bugs=False,  # shrink the first bug found, fast; thorough reports every distinct one
    phases=[Phase.explicit, Phase.generate, Phase.target, Phase.shrink],
    **_COMMON,
)
settings.register_profile(
    "conformance-thorough",
    max_examples=1000,
    stateful_step_count=100,
    report_multiple_bugs=True,
    **_COMMON,
)


#: The run's seed (``--conformance-seed``, or drawn for thorough), None for a derandomized run.
#: Module state like Hypothesis' own active profile, which it goes with: a state machine run
#: inside a test body (``machine``) reads it as that test reads ``settings.default``.
_seed: int | None = None


def load(name: str, *, shrink: bool = True, seed: int | None = None) -> None:
    """Activate a kit profile by its short name; without ``shrink``, failures are reported as first found.

    Why skip shrinking: a red build only needs the clause, and shrinking a stateful machine
    can take ten times as long as finding the bug; the same seed replays it shrunk locally.
    With ``seed``, every Hypothesis test of the suite draws from it (``apply_budgets``, ``machine``).
    """
    global _seed
    profile = PROFILES[name]
    if not shrink:
        parent = settings.get_profile(profile)
        profile = f"{profile}-unshrunk"
        settings.register_profile(profile, parent=parent, phases=[p for p in parent.phases if p is not Phase.shrink])
    settings.load_profile(profile)
    _seed = seed


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
    """How the active profile's budgets compare with ci's: thorough's are a whole multiple (16), smoke's a fraction (6/60).

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
        if _seed is not None:
            hypothesis.seed(_seed)(test)  # first: @seed gives the test database=None, and the settings below put the run's back
        settings(active, max_examples=budget)(test)
