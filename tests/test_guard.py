"""The blocking face of a checked backend: ``each`` makes the same checked calls as ``call``, in one trip."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.contract.backend import VersionedRecord
from conformance.harness.answers import BACKEND_RULES
from conformance.harness.guard import CheckedBackend, SyncBackend
from conformance.harness.runner import LoopRunner
from conformance.spec import UNEXPECTED, ContractViolation
from reference_backend.memory import InMemoryBackend


class RefusesKeyB(InMemoryBackend):
    """Fails a get of one key with an error outside the contract."""

    async def get(self, key: str) -> VersionedRecord:
        if key == "b":
            raise KeyError(key)
        return await super().get(key)


@pytest.fixture
def runner() -> Iterator[LoopRunner]:
    runner = LoopRunner("asyncio", 5.0)
    yield runner
    runner.close()


def sync(raw: InMemoryBackend, runner: LoopRunner) -> SyncBackend:
    return SyncBackend(CheckedBackend(raw, 5.0, BACKEND_RULES), runner)


def test_each_answers_in_order_and_counts_every_call(runner: LoopRunner) -> None:
    backend = sync(InMemoryBackend(), runner)
    versions = backend.each("put", [("a", b"1"), ("b", b"2"), ("a", b"3")])
    assert versions[2] > versions[0]
    records = backend.each("get", [("b",), ("a",)])
    assert [r.data for r in records] == [b"2", b"3"]
    assert backend.each("get", []) == []
    assert backend.checked.counters.calls.take() == {"backend": 5}


def test_each_checks_every_answer_and_names_the_call_that_failed(runner: LoopRunner) -> None:
    backend = sync(RefusesKeyB(), runner)
    backend.each("put", [("a", b"1"), ("b", b"2")])
    with pytest.raises(ContractViolation) as caught:
        backend.each("get", [("a",), ("b",)])
    assert caught.value.clause == "BK-3" and "get('b')" in str(caught.value)


def test_each_marks_a_refusal_the_test_did_not_expect_with_the_refused_call(runner: LoopRunner) -> None:
    backend = sync(InMemoryBackend(), runner)
    backend.each("put", [("a", b"1")])
    with pytest.raises(Exception) as caught:
        backend.each("get", [("a",), ("missing",)])
    marked = getattr(caught.value, UNEXPECTED, None)
    assert isinstance(marked, ContractViolation) and "get('missing')" in str(marked)
