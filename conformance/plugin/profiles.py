"""Hypothesis settings profiles for the kit.

``conformance-ci`` (the default) is derandomized: the same examples every run, so a gate
that passed yesterday passes today on the same code, and a failure replays exactly.
``conformance-thorough`` explores with fresh randomness and many more examples.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings

PROFILES: dict[str, str] = {"ci": "conformance-ci", "thorough": "conformance-thorough"}

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
    "conformance-ci",
    max_examples=60,
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


def load(name: str, *, shrink: bool = True) -> None:
    """Activate a kit profile by its short name; without ``shrink``, failures are reported as first found.

    Why skip shrinking: a red build only needs the clause, and shrinking a stateful machine
    can take ten times as long as finding the bug; the same seed replays it shrunk locally.
    """
    profile = PROFILES[name]
    if not shrink:
        parent = settings.get_profile(profile)
        profile = f"{profile}-unshrunk"
        settings.register_profile(profile, parent=parent, phases=[p for p in parent.phases if p is not Phase.shrink])
    settings.load_profile(profile)


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


def scaled(base: int) -> int:
    """A budget of ``base`` examples under the ci profile, scaled to the active one (thorough: 16 times)."""
    return base * max(1, int(_active().max_examples) // 60)


def apply_budgets(items: Iterable[pytest.Item]) -> None:
    """Give every Hypothesis test among ``items`` the active profile, with its budget scaled to it."""
    active = _active()
    done: set[int] = set()
    for item in items:
        test = getattr(item, "obj", None)
        if getattr(test, "hypothesis", None) is None or id(test) in done:
            continue
        done.add(id(test))
        marker = item.get_closest_marker(EXAMPLES_MARKER)
        budget = active.max_examples if marker is None else scaled(int(marker.args[0]))
        settings(active, max_examples=budget)(test)
