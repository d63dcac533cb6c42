"""A backend or task store in another process, in any language, judged over JSON lines (WIRE-PROTOCOL.md).

``process`` speaks the protocol to one long-lived command; ``codec`` turns the contract's
calls, answers and errors into messages and back; ``adapters`` give the kit Python objects
that keep the contract, so every test runs unchanged on a target across the wire.
"""

from conformance.wire.adapters import WireBackend, WireStore, wire_target
from conformance.wire.process import WireBroken, WireProcess

__all__ = ["WireBackend", "WireBroken", "WireProcess", "WireStore", "wire_target"]
