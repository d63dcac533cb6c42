"""Profiles, seeds and a shared example database, end to end as a user meets them (issue 16).

``smoke`` runs every test ci runs on a fraction of the examples.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.plugin import profiles
from tests.conftest import run_kit

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REFERENCE = "--backend=reference_backend:InMemoryBackend"


@pytest.fixture
def restore_profile() -> Iterator[None]:
    """In-process loads of a kit profile, undone: the session's own profile again."""
    from hypothesis import settings

    before = settings.get_current_profile_name()
    yield
    settings.load_profile(before)


def test_budgets_shrink_under_smoke_and_grow_under_thorough(restore_profile: None) -> None:
    """Every budget goes through ``scaled``: ci's are as written, thorough's 16 times, smoke's a tenth, never below 1."""
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
    assert [profiles.scaled(n) for n in (1, 5, 20, 40)] == [1, 1, 2, 4] and profiles.at_most(20) == 2
    load = STORE_LOAD.scaled(float(profiles.factor()))
    assert load.rounds == 2 and load.seconds == pytest.approx(1.0) and load.clients == STORE_LOAD.clients


def test_smoke_runs_every_test_ci_runs(pytester: pytest.Pytester) -> None:
    """Less detection power, the same clauses: every test ci collects runs and passes on smoke's few examples."""
    collected, _ = run_kit(pytester, REFERENCE, "--collect-only")
    ci_ids = {line.strip() for line in collected.outlines if "::" in line}
    result, verdict = run_kit(pytester, REFERENCE, "--conformance-profile=smoke")
    assert result.ret == 0 and verdict is not None, result.stdout.str()[-3000:]
    assert len(ci_ids) > 100 and set(verdict["tests"]) == ci_ids
    assert {t["outcome"] for t in verdict["tests"].values()} == {"passed"}
