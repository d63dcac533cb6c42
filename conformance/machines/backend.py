"""The stateful machine for StorageBackend: every method, hostile keys, the clock, checked at every step.

Unlike zarr's store machine (which compares against another implementation and
special-cases store types inside the rules), the oracle here is the pure model, the
backend's declared capabilities choose the model's behaviour, and time is injected.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from conformance.harness.harness import wall_clock
from conformance.machines.bound import HarnessMachine
from conformance.machines.judge import judge
from conformance.machines.kv_driver import diff_listing, invoke, refine
from conformance.models.kv import (
    CleanupExpired,
    Delete,
    Get,
    KVModel,
    KVOperation,
    ListByPrefix,
    Put,
    PutIfVersion,
    floor_of,
)
from conformance.spec import ContractViolation
from conformance.strategies import (
    expiry_offsets,
    key_families,
    other_versions,
    payloads,
    prefixes_of,
    record_bytes,
    wall_expiries,
)


class BackendMachine(HarnessMachine):
    """Drives one fresh backend per example against the KV model. Build with ``for_harness``."""


    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.clock = self.harness.new_clock()
        self.backend = self.harness.open_backend(self.clock)
        self.model = KVModel(self.harness.capabilities.expired_records)
        self.state = self.model.initial(self.now())
        self.serial = 0
        self.known_keys: list[str] = []


    # ------------------------------------------------------------ plumbing

    def now(self) -> float:
        return self.clock() if self.clock is not None else wall_clock()

    def perform(self, op: KVOperation) -> Any:
        self.state = self.state.at(self.now())
        outcome = invoke(self.backend, op)
        self.state = judge(self.model, self.state, op, outcome, refine)
        return outcome

    def record(self, payload: Any, expiry: float | str | None) -> bytes:
        self.serial += 1
        if self.clock is not None and isinstance(expiry, float):
            expiry = self.clock() + expiry
        return record_bytes(payload, expiry, self.serial, created_at=self.now())

    def expiries(self) -> st.SearchStrategy[float | str | None]:
        return expiry_offsets() if self.clock is not None else wall_expiries()

    # ------------------------------------------------------------ rules

    @initialize(target=keys, family=key_families())
    def introduce_keys(self, family: list[str]) -> Any:
        self.known_keys = family
        return multiple(*family)

    @rule(key=keys, payload=payloads(), data=st.data())
    def put(self, key: str, payload: Any, data: st.DataObject) -> None:
        self.perform(Put(key, self.record(payload, data.draw(self.expiries(), label="expiry"))))

    @rule(key=keys, payload=payloads(), data=st.data())
    def put_if_current_version(self, key: str, payload: Any, data: st.DataObject) -> None:
        stored = self.state.records.get(key)
        version = floor_of(stored.version) if stored is not None else 1
        self.perform(PutIfVersion(key, self.record(payload, data.draw(self.expiries(), label="expiry")), version))

    @rule(key=keys, payload=payloads(), data=st.data())
    def put_if_other_version(self, key: str, payload: Any, data: st.DataObject) -> None:
        stored = self.state.records.get(key)
        version = data.draw(other_versions(floor_of(stored.version) if stored is not None else 1), label="expected_version")
        self.perform(PutIfVersion(key, self.record(payload, None), version))

    @rule(key=keys)
    def get(self, key: str) -> None:
        self.perform(Get(key))

    @rule(key=keys)
    def delete(self, key: str) -> None:
        self.perform(Delete(key))

    @rule(data=st.data())
    def list_by_prefix(self, data: st.DataObject) -> None:
        self.perform(ListByPrefix(data.draw(prefixes_of(self.known_keys), label="prefix")))

    @rule()
    def cleanup_expired(self) -> None:
        self.perform(CleanupExpired())

    @precondition(lambda self: self.clock is not None)
    @rule(millis=st.integers(min_value=1, max_value=3_600_000))
    def advance_clock(self, millis: int) -> None:
        self.kit_clock().advance(millis / 1000)

    @precondition(lambda self: self.clock is not None and any(s.expires_at for s in self.state.records.values()))
    @rule(data=st.data(), past_by_millis=st.sampled_from([0, 1, 2]))
    def advance_clock_to_an_expiry(self, data: st.DataObject, past_by_millis: int) -> None:
        """Land exactly on an expiry instant, or one or two milliseconds past it (BK-15's boundary)."""
        deadlines = sorted({s.expires_at for s in self.state.records.values() if s.expires_at and s.expires_at >= self.kit_clock()()})
        if deadlines:
            self.kit_clock().set(data.draw(st.sampled_from(deadlines), label="deadline") + past_by_millis / 1000)

    # ------------------------------------------------------------ invariants

    @invariant()
    def listing_matches_model(self) -> None:
        """After every step, the whole store (listed with the empty prefix) is what the model holds."""
        self.state = self.state.at(self.now())
        problem = diff_listing(self.model.visible(self.state), self.backend.list_by_prefix(""))
        if problem:
            raise ContractViolation("BK-12", f"list_by_prefix('') disagrees with the writes so far: {problem}")

    def teardown(self) -> None:
        self.harness.release(self.backend.checked.raw)
