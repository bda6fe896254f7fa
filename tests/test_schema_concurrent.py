"""Several processes opening a new database at once: each migrates it or waits, none fails."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest
import sqlite_utils

from gateway.schema import MIGRATIONS, migrate, open_db


def _open(path: str, go, results) -> None:
    go.wait()
    try:
        open_db(path).close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports what went wrong
        results.put(repr(exc))


def test_processes_opening_a_new_database_together_all_succeed(tmp_path):
    for attempt in range(20):  # a race: give it a few chances to happen
        path = str(tmp_path / f"station-{attempt}.db")
        go, results = mp.Event(), mp.Queue()
        procs = [mp.Process(target=_open, args=(path, go, results)) for _ in range(4)]
        for p in procs:
            p.start()
        go.set()
        outcomes = [results.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(10)
        assert outcomes == ["ok"] * 4
        with sqlite3.connect(path) as conn:
            assert conn.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)


def test_a_failing_migration_leaves_the_previous_version_whole(tmp_path, monkeypatch):
    path = str(tmp_path / "old.db")
    open_db(path).close()

    def broken(db) -> None:
        db["half_done"].create({"id": int})
        raise RuntimeError("migration failed")

    monkeypatch.setattr("gateway.schema.MIGRATIONS", [*MIGRATIONS, broken])
    db = sqlite_utils.Database(path)
    with pytest.raises(RuntimeError, match="migration failed"):
        migrate(db)
    assert "half_done" not in db.table_names()
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    db.close()
