"""Issue 19, done when: a tester replays a day of mixed sources (tracker, phone, radio,
vehicle, camera export) into one dwell and exception report that attributes every minute to
the right collar number (``hotspots sim mixed-day``; simulators/mixed_day.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

from simulators import mixed_day


def test_mixed_day_report_matches_the_truth(tmp_path):
    day = mixed_day.build(tmp_path)
    sent = mixed_day.replay(tmp_path / "day.db", tmp_path, day)
    assert set(sent.sent) == {"mqtt", "radio", "vehicle", "camera"}
    result = mixed_day.check(tmp_path / "day.db", day)
    assert result.ok, "\n".join(result.lines())
    # every officer present, each within the tolerance, nobody else credited
    assert {key[0] for key in result.minutes} == {"PC101", "PC202", "PC303", "PC404", "PC405",
                                                  "PC506"}
    assert not result.stray
    with sqlite3.connect(tmp_path / "day.db") as conn:
        sources = dict(conn.execute("SELECT source, count(*) FROM positions GROUP BY source"))
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    assert set(sources) == {"tracker", "owntracks", "airwave", "vehicle", "import"}
    assert quarantined == 0


def test_the_check_fails_when_the_attribution_is_wrong(tmp_path):
    """The comparison can fail: hand the radio to another officer and PC303's minutes go."""
    day = mixed_day.build(tmp_path)
    mixed_day.replay(tmp_path / "day.db", tmp_path, day)
    with sqlite3.connect(tmp_path / "day.db") as conn:
        conn.execute("UPDATE assignments SET collar = 'PC999' WHERE device_id = 'issi:2340303'")
    result = mixed_day.check(tmp_path / "day.db", day)
    assert not result.ok
    assert result.minutes[("PC303", "HS-GRN-01")][0] == 0
    assert any("PC999" in text for text in result.stray)


def test_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "hotspots", "sim", "mixed-day", "--dir",
                          str(tmp_path / "md")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "replay matches the truth" in out.stdout
    assert "PC405" in out.stdout and "too_short" in out.stdout
