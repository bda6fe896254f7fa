"""Benchmarks: ``hotspots bench NAME`` prints figures and ratios against a baseline measured in
the same run. They are not part of ``make test``; ``make bench`` runs them all.

Each module here defines a click command named ``command``; list it in ``BENCHMARKS``.
"""

from __future__ import annotations

import importlib

import click

BENCHMARKS: list[str] = ["fences", "dwell", "ingest", "link", "memory", "nmea", "patrol",
                         "planning", "web"]


class _Benchmarks(click.Group):
    """Imports a benchmark's module only when that benchmark is asked for: they load numpy,
    shapely and the broker, which no other ``hotspots`` command should pay for at start-up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHMARKS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in BENCHMARKS:
            return None
        return importlib.import_module(f"hotspots.bench.{cmd_name}").command


@click.group(cls=_Benchmarks)
def bench() -> None:
    """Speed and memory benchmarks (figures and ratios against a baseline)."""
