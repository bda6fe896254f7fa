"""The memory budget as a contract (issue 18 item 1, docs/memory.md): the whole tracker, as
``.mpy`` on the 64-bit MicroPython unix port with a ``HEAP_KB`` heap, connected to Mosquitto over
TLS (the broker's certificate checked against its CA), patrols through a city of 200 or 2,000 hot
spots of 20 vertices, receiving and applying a new set mid-patrol, and its working set above the
start-up level stays within the documented bound whatever the number of hot spots: in the
issue's 128 KB (docs/memory.md; ``hotspots bench memory`` finds the smallest heap that passes).

The set stays in flash: the tracker checks it by reading it once a chunk at a time, then reads
only the hot spots of the grid cell it is in (``tracker.fence.FenceStore``).
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from fences.compile import compile_geojson
from fences.publish import publish
from fences.synthetic import city_fences
from hotspots.bench.memory import heap_figures, write_route
from simulators import gps, tracker_process
from simulators.link import wait_for
from simulators.walk import make_walk
from tracker.fence import FenceSet

pytestmark = pytest.mark.micropython
DEVICE = "T-0128"
#: Documented in docs/memory.md: live data above the post-import level, hot spots included.
WORKING_SET_BOUND = 48 * 1024
#: The heap the test runs the tracker in (the same for 200 and 2,000 hot spots): the issue's
#: 128 KB. Both sizes passed three runs out of three, with about 23 KB free at the least; the
#: smallest that passes is in docs/memory.md (``hotspots bench memory`` bisects it).
HEAP_KB = 128


@pytest.fixture(scope="module")
def precompiled(tmp_path_factory, micropython):
    return tracker_process.precompile(tmp_path_factory.mktemp("mpy"))


@pytest.mark.parametrize("hotspots", [200, 2000])
def test_whole_tracker_patrols_a_city_in_a_small_heap_and_takes_a_new_set_mid_patrol(
        tmp_path, tls_mosquitto, precompiled, hotspots):
    mosquitto = tls_mosquitto
    old = compile_geojson(city_fences(hotspots, vertices=20))
    new = compile_geojson(city_fences(hotspots, vertices=20), tolerance_m=0)
    assert new.version != old.version
    state = tmp_path / "state"
    state.mkdir()
    (state / "fences.json").write_text(old.text)  # the set in flash from the last shift
    route = tmp_path / "route.geojson"
    write_route(FenceSet.from_bytes(old.data), route)
    walk = make_walk(route, None, time.time() - 7200)
    account = mosquitto.device(DEVICE)
    terminal = gps.PseudoTerminal()
    log = tmp_path / "firmware.log"
    firmware = tracker_process.start(terminal.path, mosquitto.tls_address, DEVICE, state,
                                     log_path=log, user=account.username,
                                     password=account.password, tls_ca=mosquitto.ca_path,
                                     exit_on_eof=True, precompiled=precompiled,
                                     heap=f"{HEAP_KB}K")
    player = threading.Thread(target=gps.play, args=(walk, terminal), kwargs={"speedup": 150},
                              daemon=True)
    try:
        assert wait_for(lambda: log.exists() and "fences" in log.read_text(), 30)
        player.start()
        time.sleep(4)  # well into the patrol: the new set arrives while the old one runs
        publish(new, mosquitto.host, mosquitto.port, "main", **mosquitto.fences.auth())
        player.join(300)
        terminal.close()
        firmware.wait(120)
    finally:
        if firmware.poll() is None:
            firmware.kill()
            firmware.wait()
    text = log.read_text()
    assert firmware.returncode == 0, text
    assert f"fences {old.version}" in text.splitlines()[0]
    assert f"fences {new.version} active" in text, text
    assert "MemoryError" not in text and "fence set rejected" not in text
    assert "unusable" not in text
    assert "memory:" not in text  # no line dropped, no fix short of heap
    assert "mqtt:" not in text  # the TLS session held: no reconnect
    published = int(re.search(r"published (\d+) messages", text).group(1))
    assert published > 20
    cells = int(re.search(r"fences: (\d+) cells read from flash", text).group(1))
    assert cells >= 5  # it walked from cell to cell, reading each one's hot spots
    heap = heap_figures(text)
    assert heap, text  # the firmware's heap line
    print(f"{hotspots} hot spots: {heap}; {cells} cells read; {published} published")
    assert 0 < heap["working"] <= WORKING_SET_BOUND, heap
    assert heap["peak"] <= HEAP_KB * 1024
