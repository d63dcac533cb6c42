"""The kit's verdict on the store gallery: every broken task store fails for its named clause,
and the reference store passes on every event loop. Each run is a real ``pytest --store=...``
in a fresh process, exactly as a store author would type it."""

from __future__ import annotations

import pytest

from tests.conftest import run_kit
from tests.stores.broken import GALLERY

CORRECT = ["reference_backend:in_memory_task_store"]


@pytest.mark.parametrize("spec", CORRECT, ids=[s.rsplit(":", 1)[1] for s in CORRECT])
def test_correct_stores_pass_on_both_loops(pytester: pytest.Pytester, spec: str) -> None:
    result, verdict = run_kit(pytester, f"--store={spec}", "--conformance-loop=all")
    assert verdict is not None, result.stdout.str()
    assert verdict["violated"] == [], f"false alarm on a correct store: {verdict['violated']}\n{result.stdout.str()[-4000:]}"
    assert result.ret == 0
    assert verdict["loops"] == ["asyncio", "trio"]


@pytest.mark.parametrize("broken", GALLERY, ids=[cls.__name__ for cls in GALLERY])
def test_gallery_store_fails_for_its_clause(pytester: pytest.Pytester, broken: type) -> None:
    result, verdict = run_kit(pytester, f"--store=tests.stores.broken:{broken.__name__}", "--conformance-timeout=2")
    assert result.ret != 0, f"{broken.__name__} ({broken.__doc__}) passed the kit"
    assert verdict is not None, result.stdout.str()
    assert broken.violates in verdict["violated"], (
        f"{broken.__name__} should fail {broken.violates}; the kit reported {verdict['violated']}\n"
        + result.stdout.str()[-3000:]
    )
