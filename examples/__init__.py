"""Example backends a user can copy: each one passes the whole kit (see ``tests/test_examples.py``)."""
