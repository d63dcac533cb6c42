"""Correct implementations written from SPEC.md and the public API alone, each making its own reasonable choices.

They are the kit's proof that it judges the contract, not the reference: none of them was
written from ``reference_backend`` or the models, and each must pass the whole kit.
"""
