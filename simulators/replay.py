"""``hotspots firmware replay``: the firmware core over a recorded NMEA log, as JSON lines.

Testers replay captured walks with it: the hot spots are compiled exactly as for a device, the
log is fed line by line to the very ``tracker.app.Tracker`` the device runs (in this process,
or on the MicroPython unix port with ``micropython=True``), and every message the tracker would
publish -- locations with ``inregions``, transitions with interpolated times -- comes out in
order. The implementation lives in ``firmware/replay.py`` so both interpreters run one script.
"""

from __future__ import annotations

import runpy
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from fences.compile import compile_geojson
from simulators import tracker_process

REPLAY_SCRIPT = tracker_process.FIRMWARE_DIR / "replay.py"


class ReplayError(RuntimeError):
    """The replay could not run (no MicroPython, unreadable log, firmware error)."""


def replay(nmea_path: str | Path, fences_geojson: str | Path, *, micropython: bool = False,
           device_id: str = "T-REPLAY", log: Callable[[str], None] | None = None,
           heap_kb: int | None = None) -> Iterator[str]:
    """Yield the JSON text of each message the tracker would publish for this NMEA log.

    :param nmea_path: the recorded NMEA (any line endings; bad lines are counted, not fatal).
    :param fences_geojson: hot spots as GeoJSON; compiled as ``hotspots fences compile`` does.
    :param micropython: run the firmware on the MicroPython unix port instead of CPython.
    :param log: receives the replay's summary line (fixes, invalid epochs, fence version).
    :param heap_kb: with ``micropython``, the heap size; the firmware then runs as ``.mpy``.
    :raises fences.validate.FenceError: if the hot spots do not compile.
    :raises ReplayError: if the log cannot be read or the firmware fails.
    """
    nmea = Path(nmea_path)
    if not nmea.is_file():
        raise ReplayError(f"no NMEA log at {nmea}")
    compiled = compile_geojson(Path(fences_geojson))
    if not micropython:
        from tracker.fence import FenceSet

        script = runpy.run_path(str(REPLAY_SCRIPT), run_name="replay")
        lines: list[str] = []
        tracker = script["replay"](str(nmea), FenceSet.from_json(compiled.text), lines.append,
                                   device_id)
        if log:
            log(f"replay: {tracker.fixes} fixes, {tracker.invalid_epochs} invalid epochs, "
                f"fences {compiled.version}, nmea {tracker.parser.stats()!r}")
        yield from lines
        return
    binary = tracker_process.find_micropython()
    if binary is None:
        raise ReplayError(tracker_process.MICROPYTHON_MISSING)
    with tempfile.TemporaryDirectory(prefix="hotspots-replay-") as tmp:
        fences_file = Path(tmp) / "fences.json"
        fences_file.write_text(compiled.text)
        heap: list[str] = []
        firmware = tracker_process.FIRMWARE_DIR
        if heap_kb is not None:
            heap = ["-X", f"heapsize={heap_kb}K"]
            firmware = tracker_process.precompile(Path(tmp) / "mpy")
        result = subprocess.run(
            [binary, *heap, str(REPLAY_SCRIPT), str(nmea.resolve()), str(fences_file),
             device_id],
            capture_output=True, text=True, env=tracker_process.micropython_env(firmware),
            timeout=600,
        )
    if result.returncode != 0:
        raise ReplayError(f"firmware replay failed ({result.returncode}): "
                          f"{result.stderr.strip()[-2000:]}")
    if log:
        for line in result.stderr.splitlines():
            log(line)
    yield from (line for line in result.stdout.splitlines() if line.strip())
