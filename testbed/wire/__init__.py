"""Targets across the wire: bridges that misbehave, and the broken variants of the Node and Rust examples."""
