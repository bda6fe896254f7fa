"""The fence engine on the real MicroPython unix port: a 64 KB heap, and replayed walks."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fences.compile import compile_geojson
from fences.synthetic import city_fences, city_walk
from simulators import tracker_process
from simulators.nmea_out import sentence
from simulators.replay import replay

ROOT = Path(__file__).resolve().parent.parent

HEAP_SCRIPT = r"""
import gc, json, sys
from tracker.fence import FenceEngine, FenceStore
gc.collect()
# The set stays in its file: checked there, then read a grid cell at a time (as on the tracker).
fs = FenceStore.load(lambda: open(sys.argv[1], "rb"))
events = []
eng = FenceEngine(fs, lambda e, i, t, la, lo: events.append([e, eng.fences.gidx[i], t]))
t = 1795000000
inside = 0
with open(sys.argv[2]) as f:  # one "lat lon" line per fix: the walk is never all in RAM
    for line in f:
        lat, lon = line.split()
        eng.update(t, int(lat), int(lon), 400)
        inside += len(eng.inside)
        t += 2
gc.collect()
print(json.dumps({"n": len(fs), "events": events, "inside": inside,
                  "free": gc.mem_free(), "alloc": gc.mem_alloc()}))
"""


@pytest.mark.micropython
def test_200_fences_of_20_vertices_load_and_run_in_a_64k_heap(micropython, tmp_path):
    # Firmware modules are deployed precompiled (.mpy) or frozen; compiling fence.py from
    # source on the device would itself need more than the set does.
    lib = tracker_process.precompile(tmp_path / "lib")
    doc = city_fences(200, vertices=20, seed=3, holes=False, circles=False)
    compiled = compile_geojson(doc)
    assert all(f.vertices_in == 21 or f.kind == "polygon" for f in compiled.fences)
    assert sum(f.vertices_out for f in compiled.fences) >= 200 * 18  # little to simplify
    (tmp_path / "set.hsf").write_bytes(compiled.data)
    walk = city_walk(1500, seed=4)
    (tmp_path / "walk.txt").write_text("".join(f"{lat} {lon}\n" for lat, lon in walk))
    (tmp_path / "run.py").write_text(HEAP_SCRIPT)
    env = tracker_process.micropython_env(lib)
    result = subprocess.run([micropython, "-X", "heapsize=64K", "run.py", "set.hsf", "walk.txt"],
                            cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["n"] == 200
    assert got["alloc"] + got["free"] <= 64 * 1024
    # The same fixes on CPython give the very same events.
    from tracker.fence import FenceEngine, FenceSet

    events: list[list] = []
    eng = FenceEngine(FenceSet.from_bytes(compiled.data),
                      lambda e, i, t, la, lo: events.append([e, i, t]))
    t = 1795000000
    for lat, lon in walk:
        eng.update(t, lat, lon, 400)
        t += 2
    assert got["events"] == events and len(events) >= 4


def test_replay_of_a_simulated_walk_gives_the_true_visits(tmp_path):
    from click.testing import CliRunner

    from hotspots.cli import cli

    nmea = tmp_path / "walk.nmea"
    result = CliRunner().invoke(cli, ["sim", "gps", "--route", "fences/sample_route.geojson",
                                      "--out", str(nmea), "--speedup", "0",
                                      "--start", "1795000000"])
    assert result.exit_code == 0, result.output
    truth = [json.loads(line) for line in Path(f"{nmea}.truth.jsonl").read_text().splitlines()]
    visits = [v for v in truth if v["type"] == "visit"]
    lines = list(replay(nmea, "fences/sample.geojson"))
    msgs = [json.loads(line) for line in lines]
    transitions = [m for m in msgs if m["_type"] == "transition"]
    assert [(m["event"], m["rid"]) for m in transitions] == [
        (e, v["hotspot"]) for v in visits for e in ("enter", "leave")]
    pairs = zip(transitions[::2], transitions[1::2], strict=True)
    for v, (enter, leave) in zip(visits, pairs, strict=True):
        assert abs(enter["tst"] - v["enter"]) <= 3 and abs(leave["tst"] - v["leave"]) <= 3
    inside = [m for m in msgs if m["_type"] == "location" and m["inregions"]]
    assert inside and {r for m in inside for r in m["inregions"]} == {"HS-GRN-01", "HS-GRN-02"}
    # The CLI prints the same JSON lines.
    result = CliRunner().invoke(cli, ["firmware", "replay", str(nmea), "--fences",
                                      "fences/sample.geojson"])
    assert result.exit_code == 0
    assert [line for line in result.output.splitlines() if line.startswith("{")] == lines


@pytest.mark.micropython
def test_replay_on_micropython_matches_cpython(micropython, tmp_path):
    nmea = tmp_path / "walk.nmea"
    lines = []
    for k in range(400):  # walk north through HS-GRN-01 at 1.4 m/s, 1 Hz
        lat = 51.4795 + k * 1.4 / 111_250
        t = 1795000000 + k
        hhmmss = f"{(t // 3600) % 24:02d}{(t // 60) % 60:02d}{t % 60:02d}"
        body = (f"GPRMC,{hhmmss}.00,A,{int(lat):02d}{(lat % 1) * 60:08.5f},N,00000.12000,W,"
                f"2.7,0.0,{'110826'},,,A")
        lines.append(sentence(body).decode())
    lines.insert(5, "$GPRMC,garbage*00\r\n")
    nmea.write_text("".join(lines))
    cp = list(replay(nmea, "fences/sample.geojson"))
    mp = list(replay(nmea, "fences/sample.geojson", micropython=True))
    assert cp == mp
    events = [json.loads(line)["event"] for line in cp if '"transition"' in line]
    assert events == ["enter", "leave"]
