"""A property-based conformance kit for MCP task-storage backends.

Point it at a backend with ``pytest --backend=mypkg:Backend``; import the contract from here,
and the kit's GenericTaskStore, to run over a backend of your own.
"""

from conformance.contract import *  # noqa: F403  (the contract is the package's public face)
from conformance.contract import __all__ as _contract_all
from conformance.taskstore import TASK_RECORD_SCHEMA, GenericTaskStore

__all__ = [*_contract_all, "TASK_RECORD_SCHEMA", "GenericTaskStore"]
