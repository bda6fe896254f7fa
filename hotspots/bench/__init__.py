"""Benchmarks: ``hotspots bench NAME`` prints figures and ratios against a baseline measured in
the same run. They are not part of ``make test``; ``make bench`` runs them all.

Each module here defines a click command named ``command``; list it in ``BENCHMARKS``.
"""

from __future__ import annotations

import importlib

import click

BENCHMARKS: list[str] = ["fences", "dwell", "ingest", "nmea", "patrol"]


@click.group()
def bench() -> None:
    """Speed and memory benchmarks (figures and ratios against a baseline)."""


for _name in BENCHMARKS:
    bench.add_command(importlib.import_module(f"hotspots.bench.{_name}").command, _name)
