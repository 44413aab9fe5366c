"""Benchmarks: the project's functions timed against a named alternative in the same process.

Run ``python -m benchmarks`` (``--quick`` for smaller inputs, ``--only NAME``,
``--json PATH``). Each suite module exposes ``SUITE``: a list of callables
taking ``quick: bool`` and returning :class:`benchmarks.harness.Row` objects.
Benchmarks are never run as timed unit tests.
"""
