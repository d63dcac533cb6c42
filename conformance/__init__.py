"""A property-based conformance kit for MCP task-storage backends.

Point it at a backend with ``pytest --backend=mypkg:Backend``; import the contract from here.
"""

from conformance.contract import *  # noqa: F403  (the contract is the package's public face)
from conformance.contract import __all__ as _contract_all

__all__ = list(_contract_all)
