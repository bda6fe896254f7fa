"""``hotspots demo``: a 20-minute patrol through the two sample hot spots, in under a minute.

Every part is real: a private Mosquitto, the firmware on the MicroPython unix port reading a
simulated GNSS module on a pseudo-terminal, and the gateway storing into SQLite. The dwell report
is printed beside the ground truth.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from gateway.broker import Mosquitto
from gateway.reports.dwell import dwell_table, format_duration, format_time, visits_from_transitions
from gateway.schema import open_db
from simulators.patrol import run_patrol
from simulators.strategies import scoreboard_line
from simulators.walk import make_walk

FENCES_DIR = Path(__file__).resolve().parent.parent / "fences"
SAMPLE_FENCES = FENCES_DIR / "sample.geojson"
SAMPLE_ROUTE = FENCES_DIR / "sample_route.geojson"


def run_demo(workdir: Path, speedup: float = 60.0, cpython: bool = False) -> Iterator[str]:
    """Run the demo patrol; yields the lines of its report as they become known."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    runtime = "CPython" if cpython else "the MicroPython unix port"
    with Mosquitto(workdir=workdir / "broker") as broker:
        yield f"broker: mosquitto on {broker.address}"
        yield f"firmware: {runtime}; walking {SAMPLE_ROUTE.name} at {speedup:g}x ..."
        result = run_patrol(broker.address, workdir, SAMPLE_ROUTE, SAMPLE_FENCES,
                            speedup=speedup, cpython=cpython)
    db = open_db(str(result.db_path))
    visits = visits_from_transitions(db)
    yield (f"patrol: {result.walk_duration_s / 60:.1f} simulated minutes in {result.wall_s:.1f} s;"
           f" firmware published {result.published} messages, gateway stored"
           f" {sum(result.counts.stored.values())} ({result.counts.duplicates} duplicates)")
    yield ""
    yield "dwell report (from the tracker's transitions):"
    yield from ("  " + line for line in dwell_table(visits))
    yield ""
    yield "ground truth (from the simulated walk):"
    for visit in result.truth:
        yield (f"  {visit.hotspot:<12} {format_time(visit.enter):>8} {format_time(visit.leave):>8}"
               f" {format_duration(visit.dwell_s):>8}")
    yield ""
    yield "scoreboard (the same walk through the energy model, see docs/sampling.md):"
    walk = make_walk(SAMPLE_ROUTE, SAMPLE_FENCES, 0.0)  # energy does not depend on the date
    yield "  " + scoreboard_line(walk, SAMPLE_FENCES)
    yield ""
    yield f"database: {result.db_path}"
    yield f"firmware log: {result.log_path}; ground truth: {result.truth_path}"
