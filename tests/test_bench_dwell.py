"""``hotspots bench dwell`` leaves no day behind unless asked to (``--keep``), even when it fails.

Tiny days (two officers, a few minutes, five hot spots): these pin the bench's housekeeping, not
its figures.
"""

from __future__ import annotations

import tempfile

import pytest

from fences.geo import LocalFrame
from hotspots.bench import dwell

TINY = {"officers": 2, "hours": 0.2, "period_s": 10, "n_hotspots": 5, "sample": 20}


@pytest.fixture
def temp_root(tmp_path, monkeypatch):
    """Where ``tempfile`` makes its folders during the test."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_run_removes_its_day(temp_root):
    figures = dwell.run(**TINY, keep=None)
    assert figures["positions"] == 2 * 72 and figures["visits"] >= 1
    assert list(temp_root.iterdir()) == []


def test_a_run_that_fails_while_measuring_removes_its_day(temp_root, monkeypatch):
    """Regression: the temporary folder, with the whole day in it, was left behind."""
    made = []

    def failing(*_args):
        made.extend(temp_root.glob("bench-dwell-*/day-*.db"))
        raise RuntimeError("baseline failed")

    monkeypatch.setattr(dwell, "naive_per_point_s", failing)
    with pytest.raises(RuntimeError, match="baseline failed"):
        dwell.run(**TINY, keep=None)
    assert made, "the day was never built"
    assert list(temp_root.iterdir()) == []


def test_a_run_interrupted_while_building_removes_its_day(temp_root, monkeypatch):
    def interrupted(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(LocalFrame, "to_lonlat", interrupted)  # after the database is created
    with pytest.raises(KeyboardInterrupt):
        dwell.run(**TINY, keep=None)
    assert list(temp_root.iterdir()) == []


def test_keep_keeps_the_day_and_never_reuses_one_cut_short(tmp_path, monkeypatch):
    keep = tmp_path / "kept"
    built = []
    make_day = dwell.make_day
    monkeypatch.setattr(dwell, "make_day", lambda *args: built.append(args[1]) or make_day(*args))
    first = dwell.run(**TINY, keep=str(keep))
    again = dwell.run(**TINY, keep=str(keep))
    assert built == [2] and again["positions"] == first["positions"]
    assert len(list(keep.glob("day-*.db"))) == 1

    def interrupted(*_args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(LocalFrame, "to_lonlat", interrupted)
        with pytest.raises(KeyboardInterrupt):
            dwell.run(**{**TINY, "officers": 3}, keep=str(keep))
    assert len(list(keep.glob("day-*.db*"))) == 1  # only the complete day, and no WAL
    rebuilt = dwell.run(**{**TINY, "officers": 3}, keep=str(keep))
    assert built == [2, 3, 3] and rebuilt["positions"] == 3 * 72


def test_keep_rebuilds_a_day_whose_build_was_killed(tmp_path, monkeypatch):
    """SIGKILL or the OOM killer run no cleanup: a database without the marker is rebuilt."""
    keep = tmp_path / "kept"
    dwell.run(**TINY, keep=str(keep))
    (marker,) = keep.glob("day-*.complete")
    marker.unlink()  # as if the build had been killed before it finished
    built = []
    make_day = dwell.make_day
    monkeypatch.setattr(dwell, "make_day", lambda *args: built.append(args[1]) or make_day(*args))
    again = dwell.run(**TINY, keep=str(keep))
    assert built == [2] and again["positions"] == 2 * 72
    assert len(list(keep.glob("day-*.complete"))) == 1


def test_sigterm_removes_the_day_being_built(tmp_path):
    """A service manager's SIGTERM cleans up like Ctrl-C: no 400 MB folder left in /tmp."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = tmp_path / "tmp"
    root.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "hotspots", "bench", "dwell", "--officers", "300"],
        env={**os.environ, "TMPDIR": str(root)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not list(root.glob("bench-dwell-*/day-*.db")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(root.glob("bench-dwell-*/day-*.db")), "the day was never started"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)
    assert process.returncode != 0
    assert list(root.iterdir()) == []
