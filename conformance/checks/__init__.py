"""Checks the shipped suite and the machines share, written once: above the harness that drives a
target, below the tests and machines that judge it."""
