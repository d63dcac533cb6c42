"""What the kit is tried on, shared by the project's tests and its benchmarks.

- ``backends/``, ``stores/``: galleries of broken backends and stores, each naming the clause its
  bug breaks, and the correct targets every run must pass;
- ``independent/``: correct backends and stores written from SPEC.md alone, in other styles;
- ``engines/``: starts the real engines' servers (Redis, PostgreSQL, moto) on loopback.
"""
