"""The fleet table station staff and supervisors see (``/fleet``, ``/api/fleet``, the live
page's fleet events): every state issue 21 names, each from the record the gateway and the dock
keep, and the page itself lists them."""

from __future__ import annotations

import time

from starlette.testclient import TestClient

from gateway.schema import open_db
from tests.web_fixtures import login, make_app, make_db


def _device(db, device_id: str, now: int, registered: bool = True, **fields) -> None:
    db["devices"].insert({"device_id": device_id, "source": "tracker", "first_seen": now - 7200,
                          "last_seen": now - 30, "registered_at": now - 86400 if registered
                          else None, "batt": 80, **fields}, replace=True)


def test_every_fleet_state_is_shown_to_staff(tmp_path):
    now = int(time.time())
    db_path = make_db(tmp_path / "gateway.db")
    app = make_app(db_path)
    with TestClient(app) as client:
        assert login(client, "stan").status_code == 303
        in_force = client.get("/api/fleet")  # the seeded set's version, from the app
        assert in_force.status_code == 200
        db = open_db(str(db_path))
        version = db.execute("SELECT version FROM fence_sets ORDER BY id LIMIT 1").fetchone()[0]
        _device(db, "T-DOCK", now, fence_version=version)
        db["dock_slots"].insert({"slot": "1", "port": "/dev/ttyACM0", "device_id": "T-DOCK",
                                 "state": "docked", "charging": 1, "docked_at": now - 600})
        _device(db, "T-OUT", now, fence_version=version)
        db["assignments"].insert({"device_id": "T-OUT", "collar": "4521",
                                  "start_ts": now - 3600, "due_ts": now + 3600})
        _device(db, "T-LATE", now, fence_version=version)
        db["assignments"].insert({"device_id": "T-LATE", "collar": "4522",
                                  "start_ts": now - 11 * 3600, "due_ts": now - 1800})
        _device(db, "T-QUIET", now, last_seen=now - 1800, fence_version=version)
        db["assignments"].insert({"device_id": "T-QUIET", "collar": "4523",
                                  "start_ts": now - 3600, "due_ts": now + 3600})
        _device(db, "T-LOW", now, batt=9, fence_version=version)
        _device(db, "T-OLD", now, fence_version="0123456789ab")
        _device(db, "T-REF", now, fence_version=version, fence_error="memory",
                fence_rejects=2)
        _device(db, "T-WHO", now, registered=False)
        db.conn.commit()

        fleet = client.get("/api/fleet").json()
        states = {d["device_id"]: d["states"] for d in fleet["devices"]}
        assert states["T-DOCK"] == ["docked", "charging"]
        assert states["T-OUT"] == ["signed out"]
        assert states["T-LATE"] == ["signed out", "not returned"]
        assert states["T-QUIET"] == ["signed out", "silent"]
        assert states["T-LOW"] == ["low battery"]
        assert states["T-OLD"] == ["fences out of date"]
        assert states["T-REF"] == ["fences refused"]
        assert states["T-WHO"] == ["unknown device"]
        page = client.get("/fleet").text
        for state in ("docked", "charging", "signed out", "not returned", "silent",
                      "low battery", "fences out of date", "fences refused", "unknown device"):
            assert f'class="state state-{state.replace(" ", "-")}">{state}</span>' in page
    # Who carries which device (and where a tracker not returned was last) is about officers:
    # both views are in the audit log with the officers they named.
    rows = db.execute("SELECT username, subject FROM audit_log WHERE action = 'view_fleet'"
                      " ORDER BY id").fetchall()
    assert rows[-2:] == [("stan", "officers:4521,4522,4523")] * 2
