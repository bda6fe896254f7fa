"""``hotspots firmware bundle``: exactly what goes on a board, the same as the freeze manifest,
and it imports on MicroPython."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hotspots.bundle import BOARDS, FIRMWARE_DIR, BundleError, bundle
from hotspots.cli import cli

TRACKER = sorted(p.stem for p in (FIRMWARE_DIR / "tracker").glob("*.py"))


def expected(board: str) -> set[str]:
    b = BOARDS[board]
    drivers = list(b.drivers) + [n for n in b.optional
                                 if (FIRMWARE_DIR / "drivers" / f"{n}.py").exists()]
    return ({f"lib/tracker/{n}.mpy" for n in TRACKER}
            | {f"lib/drivers/{n}.mpy" for n in drivers}
            | {f"lib/boards/{n}.mpy" for n in b.boards} | {"main.py"})


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_bundle_holds_exactly_the_board_files(board: str, tmp_path: Path) -> None:
    out = tmp_path / board
    files = bundle(board, out)
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk == {str(p) for p in files} == expected(board)
    assert not any(name.endswith((".so", ".c", ".pxd", ".html")) for name in on_disk)
    assert "lib/boards/unix.mpy" not in on_disk and "lib/boards/dock_serial.mpy" not in on_disk
    assert (out / "main.py").read_text().count(f"from boards import {board}") == 1
    for path in out.rglob("*.mpy"):
        data = path.read_bytes()
        assert data[:2] == b"M\x06", path
        # Compiled as the heap tests compile it (hotspots.bundle.compile_args): the source name
        # is the dotted module name, never this machine's path, and no line-number table.
        name = path.parent.name if path.stem == "__init__" else f"{path.parent.name}.{path.stem}"
        assert name.encode() in data and str(FIRMWARE_DIR).encode() not in data, path


def run_manifest(board: str) -> set[str]:
    """Execute firmware/manifest.py as MicroPython's manifest loader does, recording files."""
    frozen: set[str] = set()

    class Options:
        def __init__(self) -> None:
            self.board = None

        def defaults(self, **kwargs) -> None:
            for key, value in kwargs.items():
                if getattr(self, key) is None:
                    setattr(self, key, value)

    options = Options()
    options.board = board

    def package(name: str, files: list[str] | None = None, base_path: str = ".") -> None:
        folder = FIRMWARE_DIR / name
        names = files if files is not None else sorted(p.name for p in folder.glob("*.py"))
        for file in names:
            frozen.add(f"lib/{name}/{Path(file).stem}.mpy")

    code = (FIRMWARE_DIR / "manifest.py").read_text()
    exec(compile(code, "manifest.py", "exec"), {"options": options, "package": package})
    return frozen


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_freeze_manifest_lists_the_same_modules(board: str) -> None:
    listed = run_manifest(board)
    missing_optional = {f"lib/drivers/{n}.mpy" for n in BOARDS[board].optional
                        if not (FIRMWARE_DIR / "drivers" / f"{n}.py").exists()}
    assert listed - missing_optional == expected(board) - {"main.py"}


BUNDLE_IMPORTS = """
import sys
for name in sys.argv[1:]:
    __import__(name)
print("imported", len(sys.argv) - 1)
"""


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_the_bundle_imports_on_micropython_from_its_mpy_files(board: str, micropython: str,
                                                              tmp_path: Path) -> None:
    out = tmp_path / board
    files = bundle(board, out)
    modules = [f"{p.parent.name}.{p.stem}" for p in files if p.suffix == ".mpy"]
    script = tmp_path / "imports.py"
    script.write_text(BUNDLE_IMPORTS)
    result = subprocess.run([micropython, str(script), *modules], capture_output=True,
                            text=True, timeout=60, env={"MICROPYPATH": f"{out / 'lib'}:.frozen"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(modules)}"


def test_a_config_is_checked_before_it_goes_in(tmp_path: Path) -> None:
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"broker_host": "10.0.0.2", "user": "T-1", "password": "pw1!",
                                "link": "wifi", "wifi_ssid": "station", "wifi_password": "x",
                                "gnss_module": "ublox"}))
    files = bundle("picow", tmp_path / "b", good)
    # into the board's state folder, where the board reads it and the dock writes it
    assert Path("state/config.json") in files and not (tmp_path / "b" / "config.json").exists()
    assert (tmp_path / "b" / "state" / "config.json").read_bytes() == good.read_bytes()
    # a CA named beside the config goes beside it on the board; one that is not there is refused
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\nQUJD\n"
                                     "-----END CERTIFICATE-----\n")
    with_ca = tmp_path / "with-ca.json"
    with_ca.write_text(json.dumps(dict(json.loads(good.read_text()), ca="ca.pem")))
    files = bundle("picow", tmp_path / "e", with_ca)
    assert {Path("state/config.json"), Path("state/ca.pem")} <= set(files)
    assert (tmp_path / "e" / "state" / "ca.pem").read_text().startswith("-----BEGIN")
    with_ca.write_text(json.dumps(dict(json.loads(good.read_text()), ca="missing.pem")))
    with pytest.raises(BundleError, match="must name a file beside it"):
        bundle("picow", tmp_path / "f", with_ca)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"broker_host": "gw", "user": "T-1", "password": "hunter2",
                               "link": "wifi"}))
    with pytest.raises(BundleError, match="wifi_ssid") as caught:
        bundle("picow", tmp_path / "c", bad)
    assert "hunter2" not in str(caught.value)
    cellular = tmp_path / "cell.json"
    cellular.write_text(json.dumps({"broker_host": "gw", "link": "cellular", "apn": "iot"}))
    with pytest.raises(BundleError, match="Wi-Fi only"):
        bundle("picow", tmp_path / "d", cellular)


def test_the_command_and_its_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["firmware", "bundle", "--board", "picow", "--out",
                                 str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "main.py" in result.output and "mpremote cp -r lib :" in result.output
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"broker_host": "10.0.0.2", "link": "wifi", "wifi_ssid": "s"}))
    result = runner.invoke(cli, ["firmware", "bundle", "--board", "picow", "--out",
                                 str(tmp_path / "out"), "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "state/config.json" in result.output and "cp -r lib state :" in result.output
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = runner.invoke(cli, ["firmware", "bundle", "--board", "picow", "--out",
                                 str(tmp_path / "mine")])
    assert result.exit_code != 0 and "not touching it" in result.output
    assert (tmp_path / "mine" / "notes.txt").exists()
