"""The ``hotspots`` command: a thin click layer over the libraries.

Each command parses its options, calls one library function and turns domain errors into
``click.ClickException`` so the user sees what to fix rather than a traceback.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import click

from gateway.broker import BrokerError, Mosquitto
from hotspots.bench import bench

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "fences"


@click.group()
@click.version_option(package_name="hotspots")
def cli() -> None:
    """Hot spots policing: tracker firmware, station gateway, simulators and reports."""


# -- broker ---------------------------------------------------------------------------------------
@cli.command()
@click.option("--port", type=int, default=None, help="TCP port (default: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=None,
              help="Folder for config, persistence and log (default: temporary).")
def broker(port: int | None, host: str, workdir: str | None) -> None:
    """Run a private Mosquitto broker until interrupted."""
    # A service manager stops us with SIGTERM: clean up the broker then too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        mosquitto = Mosquitto(port=port, host=host, workdir=workdir).start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        click.echo(f"mosquitto listening on {mosquitto.address} (config in {mosquitto.workdir})")
        sys.stdout.flush()
        while mosquitto.process and mosquitto.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        mosquitto.cleanup()


# -- simulators -----------------------------------------------------------------------------------
@cli.group()
def sim() -> None:
    """Hardware simulators: GNSS module, radio, dock."""


@sim.command("gps")
@click.option("--route", type=click.Path(exists=True, dir_okay=False), required=True,
              help="GeoJSON LineString to walk.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write NMEA to this file (default: a pseudo-terminal, its path printed).")
@click.option("--fences", type=click.Path(exists=True, dir_okay=False),
              default=str(SAMPLE_DIR / "sample.geojson"), show_default=True,
              help="Hot spots for the ground truth.")
@click.option("--truth", type=click.Path(dir_okay=False), default=None,
              help="Ground-truth JSON lines (default: beside --out, or ./gps-truth.jsonl).")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Play simulated time this much faster than real time (0: no pacing).")
@click.option("--start", type=float, default=None, help="Start time, epoch s (default: now).")
@click.option("--noise-m", type=float, default=2.0, show_default=True,
              help="GNSS position noise, metres.")
@click.option("--seed", type=int, default=1, show_default=True)
def sim_gps(route: str, out: str | None, fences: str, truth: str | None, speedup: float,
            start: float | None, noise_m: float, seed: int) -> None:
    """Write 1 Hz NMEA (RMC, GGA) for a walk along ROUTE, with its ground truth."""
    from simulators import gps
    from simulators.walk import RouteError, make_walk

    start = float(int(time.time())) if start is None else start
    try:
        walk = make_walk(route, fences, start)
    except RouteError as exc:
        raise click.ClickException(str(exc)) from exc
    truth = truth or (f"{out}.truth.jsonl" if out else "gps-truth.jsonl")
    if out:
        with open(out, "wb") as sink:
            epochs = gps.play(walk, sink, speedup, noise_m, seed, truth)
        click.echo(f"wrote {epochs} epochs to {out}; ground truth in {truth}")
        return
    terminal = gps.PseudoTerminal()
    click.echo(terminal.path)
    sys.stdout.flush()
    try:
        epochs = gps.play(walk, terminal, speedup, noise_m, seed, truth)
    except KeyboardInterrupt:
        epochs = 0
    terminal.close()
    click.echo(f"wrote {epochs} epochs; ground truth in {truth}", err=True)


# -- firmware -------------------------------------------------------------------------------------
@cli.group()
def firmware() -> None:
    """Run the tracker firmware on this machine."""


@firmware.command("run")
@click.option("--gps", required=True, help="Serial device (or NMEA file) of the GNSS module.")
@click.option("--broker", "broker_address", required=True, help="Broker HOST:PORT.")
@click.option("--device-id", required=True, help="The tracker's device id.")
@click.option("--fences", type=click.Path(exists=True, dir_okay=False), default=None,
              help="GeoJSON hot spots to install before starting.")
@click.option("--state", type=click.Path(file_okay=False), default=None,
              help="The device's flash (default: .hotspots/devices/DEVICE_ID).")
@click.option("--station", default="main", show_default=True,
              help="Station whose fence topic to follow.")
@click.option("--report-s", type=int, default=10, show_default=True,
              help="Report a location at least this often while moving.")
@click.option("--exit-on-eof", is_flag=True, help="Stop once the GNSS stream ends and all is sent.")
@click.option("--cpython", is_flag=True, help="Run the core on CPython instead of MicroPython.")
def firmware_run(gps: str, broker_address: str, device_id: str, fences: str | None,
                 state: str | None, station: str, report_s: int, exit_on_eof: bool,
                 cpython: bool) -> None:
    """Run the firmware main loop (on the MicroPython unix port unless --cpython)."""
    from simulators import tracker_process

    state = state or f".hotspots/devices/{device_id}"
    if fences:
        version = tracker_process.install_fences(state, fences)
        click.echo(f"fences {version} installed in {state}", err=True)
    if cpython:
        from simulators import board

        board.run(gps, broker_address, device_id, state, station, exit_on_eof, report_s)
        return
    try:
        argv = tracker_process.command(gps, broker_address, device_id, state, station=station,
                                       exit_on_eof=exit_on_eof, report_s=report_s)
    except tracker_process.FirmwareError as exc:
        raise click.ClickException(str(exc)) from exc
    import subprocess

    sys.exit(subprocess.call(argv, env=tracker_process.micropython_env()))


# -- gateway --------------------------------------------------------------------------------------
@cli.group()
def gateway() -> None:
    """The station gateway."""


@gateway.command("run")
@click.option("--broker", "broker_address", required=True, help="Broker HOST:PORT.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="SQLite database (created if missing).")
def gateway_run(broker_address: str, db_path: str) -> None:
    """Subscribe to trackers and phones and store what they send, until interrupted."""
    from gateway.service import Gateway

    try:
        service = Gateway(broker_address, db_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    stop = threading.Event()
    click.echo(f"gateway: {broker_address} -> {db_path}", err=True)
    try:
        counts = service.run(stop)
    except KeyboardInterrupt:
        stop.set()
        return
    click.echo(f"stored {dict(counts.stored)}, duplicates {counts.duplicates}", err=True)


# -- reports and exports --------------------------------------------------------------------------
def _open_existing(db_path: str):
    from gateway.schema import open_db

    if not Path(db_path).exists():
        raise click.ClickException(f"no database at {db_path}")
    return open_db(db_path)


@cli.group()
def report() -> None:
    """Reports for supervisors and analysts."""


@report.command("dwell")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per visit.")
def report_dwell(db_path: str, as_json: bool) -> None:
    """Visits and dwell per device and hot spot."""
    import json

    from gateway.reports import dwell_table, visits_from_transitions

    visits = visits_from_transitions(_open_existing(db_path))
    if as_json:
        for visit in visits:
            click.echo(json.dumps(visit.as_dict()))
        return
    for line in dwell_table(visits):
        click.echo(line)


@cli.group()
def export() -> None:
    """Exports of stored data."""


@export.command("positions")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--out", type=click.File("w"), default="-", help="Output file (default stdout).")
def export_positions(db_path: str, fmt: str, out) -> None:
    """Stored positions: device, officer, seq, UTC fix time, lat, lon, speed, course, source."""
    from gateway.reports import export_positions as write

    write(_open_existing(db_path), out, fmt)


# -- demo -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=".hotspots/demo",
              show_default=True, help="Where the database, logs and ground truth go.")
@click.option("--speedup", type=float, default=60.0, show_default=True)
@click.option("--cpython", is_flag=True, help="Run the firmware core on CPython.")
def demo(workdir: str, speedup: float, cpython: bool) -> None:
    """One officer walks through two hot spots; prints the dwell report beside the truth."""
    from hotspots.demo import run_demo

    try:
        for line in run_demo(Path(workdir), speedup=speedup, cpython=cpython):
            click.echo(line)
    except (BrokerError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


# -- command groups that live in their own modules -------------------------------------------------
cli.add_command(bench)


def main() -> None:
    """Entry point for ``python -m hotspots``."""
    cli()
