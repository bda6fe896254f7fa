"""``hotspots demo --planning``: the whole loop, crime to exceptions, with a real broker, the
gateway and the firmware core (on CPython here, to keep the run short)."""

from __future__ import annotations

from hotspots.demo_planning import run_planning_demo


def test_the_loop_from_crime_to_exceptions(tmp_path):
    lines = list(run_planning_demo(tmp_path / "demo", speedup=600, cpython=True))
    text = "\n".join(lines)
    assert "force: 16629 imported, 0 already there, 0 rejected" in text
    assert "0 errors, 0 warnings; compiled version" in text
    assert "taskings.csv: 2 imported, 0 rejected" in text
    outcomes = [line for line in lines if "officer 4521:" in line]
    # the officer walked the first visit of the sheet and skipped the second
    assert len(outcomes) == 2
    assert sum(": done (" in line for line in outcomes) == 1
    assert sum(": not_performed (" in line for line in outcomes) == 1
    assert "officer-min" in text and "HS-00" in text
