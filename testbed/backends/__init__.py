"""Backends the kit is tried on: correct ones built unlike the reference, and a gallery of broken ones."""
