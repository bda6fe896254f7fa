"""Analyst access to the database: readable views (ISO 8601 UTC times, officers, payloads as
text), visits stored by a command, and Datasette opening the database with its metadata."""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from gateway import schema
from gateway.reports.dwell import day_window
from hotspots.cli import cli
from tests.web_fixtures import SAMPLE_FENCES

DAY = "2026-03-02"
T0 = day_window(DAY)[0] + 10 * 3600


def fill(db) -> None:
    db["devices"].insert({"device_id": "T-1", "source": "tracker", "registered_at": T0 - 600})
    db["assignments"].insert({"device_id": "T-1", "collar": "4521", "start_ts": T0 - 600})
    rows = [("T-1", k + 1, T0 + 10 * k, 51.4806, -0.004 + min(k, 20) * 0.0001, T0 + 10 * k + 0.25)
            for k in range(150)]
    db.conn.executemany("INSERT INTO positions (device_id, seq, source, tst, lat, lon, acc_m,"
                        " received_at) VALUES (?, ?, 'tracker', ?, ?, ?, 5, ?)", rows)
    db.conn.execute("INSERT INTO quarantine (received_at, topic, reason, detail, raw) VALUES"
                    " (?, 'owntracks/x/T-9', 'unknown_device', '', ?)",
                    (T0, b'{"_type":"location","lat":51.5}'))
    db.conn.commit()


def test_views_show_iso_times_officers_and_text_payloads_after_an_upgrade(database_before):
    db = database_before(schema._v_analyst)
    fill(db)
    schema.migrate(db)
    row = db.execute("SELECT officer, time_utc, received_utc, tst FROM positions_iso"
                     " ORDER BY id LIMIT 1").fetchone()
    assert row == ("4521", "2026-03-02T10:00:00Z", "2026-03-02T10:00:00.250Z", T0)
    payload, hexed = db.execute("SELECT payload, payload_hex FROM quarantine_text").fetchone()
    assert json.loads(payload) == {"_type": "location", "lat": 51.5}
    assert bytes.fromhex(hexed) == b'{"_type":"location","lat":51.5}'
    start = db.execute("SELECT start_utc, end_utc FROM assignments_iso").fetchone()
    assert start == ("2026-03-02T09:50:00Z", None)


def test_visits_table_is_filled_once_per_window_and_summed_per_day(tmp_path):
    db_path = str(tmp_path / "g.db")
    db = schema.open_db(db_path)
    fill(db)
    runner = CliRunner()
    args = ["report", "materialise", "--db", db_path, "--fences", str(SAMPLE_FENCES),
            "--date", DAY]
    for _ in range(2):  # a second run replaces the window's rows
        result = runner.invoke(cli, args)
        assert result.exit_code == 0, result.output
        assert "1 visits stored" in result.output
    rows = db.execute("SELECT officer, hotspot, enter_utc, dwell_s, method FROM visits"
                      ).fetchall()
    assert len(rows) == 1
    officer, hotspot, enter_utc, dwell_s, method = rows[0]
    assert (officer, hotspot, method) == ("4521", "HS-GRN-01", "positions")
    assert enter_utc.startswith("2026-03-02T10:01") and 20 * 60 < dwell_s < 25 * 60
    assert db.execute("SELECT date_utc, officer, hotspot, visits, dwell_s FROM dwell_daily"
                      ).fetchall() == [("2026-03-02", "4521", "HS-GRN-01", 1, dwell_s)]


def test_datasette_opens_the_database_with_its_metadata(tmp_path, monkeypatch):
    # The dev extra's MicroPython stubs install a module called ``mip`` (MicroPython's package
    # manager), which Datasette's vendored pint takes for the optimiser of that name; a real
    # install has no such stub. None in sys.modules makes ``import mip`` an ImportError.
    import sys

    if "datasette.app" not in sys.modules:
        monkeypatch.setitem(sys.modules, "mip", None)
    datasette_app = pytest.importorskip("datasette.app", reason="datasette is not installed")
    db_path = str(tmp_path / "patrol.db")
    db = schema.open_db(db_path)
    fill(db)
    out = tmp_path / "metadata.json"
    result = CliRunner().invoke(cli, ["report", "datasette", "--db", db_path, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metadata = json.loads(out.read_text())

    async def browse():
        ds = datasette_app.Datasette([db_path], metadata=metadata)
        await ds.invoke_startup()
        rows = (await ds.client.get("/patrol/positions_iso.json?_shape=objects&_size=1")).json()
        tables = (await ds.client.get("/patrol.json")).json()
        meta = (await ds.client.get("/-/metadata.json")).json()
        return rows, tables, meta

    rows, tables, meta = asyncio.run(browse())
    assert rows["rows"][0]["time_utc"] == "2026-03-02T10:24:50Z"  # newest first (metadata)
    assert rows["rows"][0]["officer"] == "4521"
    hidden = {t["name"] for t in tables["tables"] if t["hidden"]}
    assert {"web_users", "web_sessions", "audit_log"} <= hidden
    assert "positions_iso" in {v["name"] for v in tables["views"]}
    assert meta["title"].startswith("hotspots")
    assert "Officers' positions" in meta["description_html"]
