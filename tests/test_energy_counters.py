"""Energy counted by the firmware (issue 18, item 4): the status message's ``energy`` object,
kept by the gateway and shown by ``hotspots status --json``, and the counters of a real run of
the firmware on the MicroPython unix port (simulated u-blox module, simulated SIM7080G, a
byte-counting TCP proxy, Mosquitto) priced beside the model by ``hotspots bench patrol
--firmware``'s library."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gateway.fleet.identity import register_device
from gateway.intake import mqtt
from gateway.intake.intake import Intake
from gateway.schema import open_db
from hotspots.cli import cli
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from tracker import wire

T0 = 1_795_000_000
COUNTERS = (60000, 21000, 30500, 28, 2, 3, 4100, 900)


def test_status_energy_is_kept_by_the_gateway_and_shown(tmp_path):
    db_path = tmp_path / "g.db"
    db = open_db(str(db_path))
    for device in ("T-1", "T-2", "T-3"):
        register_device(db, device, at=T0 - 100)
    intake = Intake(db)
    text = wire.status("T-1", True, T0, outbox=0, fw="0.1.0", energy=COUNTERS)
    assert json.loads(text)["energy"] == dict(zip(wire.ENERGY_FIELDS, COUNTERS, strict=True))
    assert mqtt.handle(intake, "hotspots/dev/T-1/status", text.encode(), T0 + 1) == "status"
    # A later status without counters (an older firmware, the last will) keeps the last ones.
    mqtt.handle(intake, "hotspots/dev/T-1/status", wire.status("T-1", False, 0).encode(), T0 + 2)
    # Bad counters are dropped and counted; the status itself is kept.
    bad = json.loads(wire.status("T-2", True, T0, energy=COUNTERS))
    bad["energy"]["tx"] = -5
    assert mqtt.handle(intake, "hotspots/dev/T-2/status", json.dumps(bad).encode(),
                       T0 + 3) == "status"
    partial = json.loads(wire.status("T-3", True, T0, energy=COUNTERS))
    del partial["energy"]["rx"]
    mqtt.handle(intake, "hotspots/dev/T-3/status", json.dumps(partial).encode(), T0 + 3)
    intake.commit()
    db.close()
    result = CliRunner().invoke(cli, ["status", "--db", str(db_path), "--json",
                                      "--now", str(T0 + 10)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    energy = {d["device_id"]: d["energy"] for d in doc["devices"]}
    assert energy == {"T-1": dict(zip(wire.ENERGY_FIELDS, COUNTERS, strict=True)),
                      "T-2": None, "T-3": None}
    assert doc["dropped"].get("energy") == 2


def test_firmware_counts_its_energy_on_a_short_run(micropython, tmp_path):
    from simulators.firmware_energy import (
        SHIFT_S,
        compare,
        firmware_energy,
        model_energy,
        run_firmware,
    )

    # 75 s of the walk: the module's cold start (26 s), then the policy switches it off. The
    # firmware's clock and the simulators run 4x real time (boards/unix_clock.py).
    run = run_firmware(SAMPLE_ROUTE, SAMPLE_FENCES, 75, tmp_path, timeout_s=90, time_scale=4)
    e = run.energy
    assert set(e) == set(wire.ENERGY_FIELDS)
    assert 70_000 <= e["up_ms"] <= 150_000
    # The receiver was switched off between fixes (UBX backup), and the MCU slept meanwhile.
    assert run.gnss["backups"] >= 1 and run.gnss["wakes"] >= run.gnss["backups"] - 1
    assert 20_000 <= e["gnss_on_ms"] <= e["up_ms"] - 5_000
    assert e["awake_ms"] <= e["up_ms"] - 5_000
    # It light-sleeps only with the receiver off (and the radio asleep): awake at least while
    # the receiver is on.
    assert e["awake_ms"] >= e["gnss_on_ms"]
    assert 20 <= e["fixes"] <= run.gnss["fixes"]
    # Every socket the modem opened reached the proxy; a connect that timed out while the
    # modem was still opening (then closed by the driver) is one more than the MQTT sessions.
    assert 1 <= e["connects"] <= run.proxy["connections"] == run.modem["sockets_opened"]
    assert e["wakeups"] == run.modem["wake_ups"]
    # The status was built before its own bytes went out: the link carried a bit more.
    assert 0 < e["tx"] < run.proxy["bytes_up"] == run.modem["bytes_up"]
    assert 0 < e["rx"] <= run.proxy["bytes_down"] == run.modem["bytes_down"]
    final = [line for line in run.log_text.splitlines() if line.startswith("energy: ")][-1]
    counted = [int(v) for v in final[len("energy: ("):-1].split(",")]
    assert counted[6] == run.proxy["bytes_up"] and counted[7] == run.proxy["bytes_down"]
    assert run.payload_bytes > 0 and run.published >= 1
    fw = firmware_energy(run)
    model, model_log = model_energy(SAMPLE_ROUTE, SAMPLE_FENCES, run.duration_s)
    report = compare(run, fw, model, model_log)
    assert report["scale"] == SHIFT_S / run.duration_s
    assert report["firmware"]["total_mah"] > 0 and report["model"]["total_mah"] > 0
    assert any(line.startswith("total: firmware/model") for line in report["lines"])
