"""Throwaway engine servers for the kit's own tests: one per test session, on a free loopback port.

One module per engine (``redis``, ``postgres``, ``moto``) with ``start()`` and the address a
backend takes; ``process`` launches and stops them; ``registry.ENGINES`` ties each example
backend to its engine. Nothing is imported here, so ``python -m testbed.engines.moto`` runs
that module once.
"""
