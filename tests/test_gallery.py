"""The kit's verdict on the gallery: every broken backend fails for its named clause, every
correct backend passes, on every event loop it runs on. Each run is a real ``pytest
--backend=...`` in a fresh process, exactly as a backend author would type it."""

from __future__ import annotations

import pytest

from tests.backends.broken import GALLERY
from tests.conftest import run_kit

CORRECT = [
    "reference_backend:InMemoryBackend",
    "tests.backends.correct:ThreadedBackend",
    "tests.backends.correct:YieldingBackend",
    "tests.backends.correct:HidingBackend",
]


@pytest.mark.parametrize("spec", CORRECT, ids=[s.rsplit(":", 1)[1] for s in CORRECT])
def test_correct_backends_pass_on_both_loops(pytester: pytest.Pytester, spec: str) -> None:
    result, verdict = run_kit(pytester, f"--backend={spec}", "--conformance-loop=all")
    assert verdict is not None, result.stdout.str()
    assert verdict["violated"] == [], f"false alarm on a correct backend: {verdict['violated']}\n{result.stdout.str()[-4000:]}"
    assert result.ret == 0
    assert verdict["loops"] == ["asyncio", "trio"]


@pytest.mark.parametrize("broken", GALLERY, ids=[cls.__name__ for cls in GALLERY])
def test_gallery_backend_fails_for_its_clause(pytester: pytest.Pytester, broken: type) -> None:
    result, verdict = run_kit(pytester, f"--backend=tests.backends.broken:{broken.__name__}", "--conformance-timeout=1")
    assert result.ret != 0, f"{broken.__name__} ({broken.__doc__}) passed the kit"
    assert verdict is not None, result.stdout.str()
    assert broken.violates in verdict["violated"], (
        f"{broken.__name__} should fail {broken.violates}; the kit reported {verdict['violated']}\n"
        + result.stdout.str()[-3000:]
    )
