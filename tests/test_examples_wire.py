"""The Node.js and Rust examples pass the whole kit over the wire protocol, and their broken variants fail for their clause."""

from __future__ import annotations

import pytest

from testbed.wire.examples import GALLERY, WireVariant, node_command, rust_command
from tests.conftest import assert_fails_for_clause, assert_passes_whole_kit


@pytest.mark.slow
def test_the_node_example_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    assert_passes_whole_kit(pytester, f"--backend-command={node_command()}", loops=["asyncio"])


@pytest.mark.slow
def test_the_rust_example_passes_the_whole_kit(pytester: pytest.Pytester) -> None:
    assert_passes_whole_kit(pytester, f"--backend-command={rust_command()}", loops=["asyncio"])


@pytest.mark.parametrize("broken", GALLERY, ids=lambda variant: f"{variant.language}-{variant.name}")
def test_a_broken_variant_fails_for_its_clause(pytester: pytest.Pytester, broken: WireVariant) -> None:
    # A race across a process meets whichever of its clause's tests timing decides: the whole clause runs.
    assert_fails_for_clause(pytester, broken, f"--backend-command={broken.command()}", first=broken.races is None)
