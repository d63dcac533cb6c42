"""Throwaway engine servers for the kit's own tests: one per test session, on a free loopback port."""
