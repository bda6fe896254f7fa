"""The documented systemd unit (deploy/hotspots-web.service, docs/web.md) starts the command
that exists: its ExecStart is the console script with options ``hotspots web`` accepts, the
zone is a real zone, and the unit has the sections systemd needs."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import click

from gateway.reports.dwell import zone
from hotspots.cli import cli

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "hotspots-web.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    # systemd joins a line ending in a backslash with the next one
    parser.read_string(UNIT.read_text().replace("\\\n", " "))
    return parser


def test_the_web_unit_runs_hotspots_web_with_options_it_has():
    unit = _unit()
    assert {"Unit", "Service", "Install"} <= set(unit.sections())
    argv = shlex.split(unit["Service"]["ExecStart"])
    assert argv[0].endswith("/.venv/bin/hotspots") and argv[1] == "web"
    web = cli.commands["web"]
    ctx = click.Context(web, info_name="web")
    values, rest, _ = web.make_parser(ctx).parse_args(argv[2:])
    assert rest == []  # every option is one `hotspots web` has, no subcommand
    assert values["db_path"].startswith(unit["Service"]["ReadWritePaths"])
    zone(values["tz_name"])  # raises for an unknown zone
    assert unit["Service"]["Restart"] == "on-failure"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_accepts_the_unit(tmp_path):
    """``systemd-analyze verify`` (Debian's systemd) on the unit with this checkout's paths: it
    warns about any key or value systemd would ignore, and refuses a command that is not there."""
    import shutil
    import subprocess
    import sys

    import pytest

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian's systemd)")
    script = Path(sys.executable).parent / "hotspots"
    text = (UNIT.read_text().replace("/opt/hotspots/.venv/bin/hotspots", str(script))
            .replace("User=hotspots", "User=root").replace("Group=hotspots", "Group=root"))
    assert str(script) in text
    unit = tmp_path / "hotspots-web.service"
    unit.write_text(text)
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60)
    said = [line for line in (result.stdout + result.stderr).splitlines()
            if "hotspots-web.service" in line]
    assert result.returncode == 0 and said == [], result.stdout + result.stderr
