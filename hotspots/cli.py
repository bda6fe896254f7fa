"""The ``hotspots`` command: a thin click layer over the libraries.

Each command parses its options, calls one library function and turns domain errors into
``click.ClickException`` so the user sees what to fix rather than a traceback.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import click

from gateway.broker import BrokerError, Mosquitto
from hotspots import cli_gateway
from hotspots.bench import bench
from hotspots.cli_airwave import airwave, sim_radio
from hotspots.cli_fences import fences
from hotspots.cli_modem import sim_modem
from hotspots.cli_nmea import nmea

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
@click.option("--device", "devices", multiple=True, metavar="ID",
              help="Provision a broker account for this device (repeatable).")
@click.option("--tls", is_flag=True, help="Also listen with TLS (CA generated in DIR/tls).")
@click.option("--tls-port", type=int, default=None, help="TLS port (default: a free one).")
@click.option("--recorder", "recorders", multiple=True, metavar="STATION",
              help="Provision an OwnTracks Recorder bridge account (hotspots owntracks bridge).")
@click.option("--phone", "phones", multiple=True, metavar="USER.DEVICE",
              help="Provision an account for one of several phones of an OwnTracks user.")
def broker(port: int | None, host: str, workdir: str | None, devices: tuple[str, ...],
           tls: bool, tls_port: int | None, recorders: tuple[str, ...],
           phones: tuple[str, ...]) -> None:
    """Run a private Mosquitto broker (accounts and ACL generated, no anonymous access)."""
    cli_gateway.interrupt_on_signals()
    try:
        mosquitto = Mosquitto(port=port, host=host, workdir=workdir, devices=devices, tls=tls,
                              tls_port=tls_port)
        for station in recorders:
            mosquitto.account(station, "recorder")
        for phone in phones:
            mosquitto.account(phone, "phone")
        mosquitto.start()
    except BrokerError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        click.echo(f"mosquitto listening on {mosquitto.address} (config in {mosquitto.workdir})")
        if tls:
            click.echo(f"TLS on {mosquitto.tls_address}; CA certificate {mosquitto.ca_path}")
        click.echo(f"accounts (gateway, observer, devices) in {mosquitto.accounts_path}")
        sys.stdout.flush()
        checked = time.monotonic()
        while mosquitto.process and mosquitto.process.poll() is None:
            time.sleep(0.5)
            if time.monotonic() - checked >= 60:  # the debug log grows ~3 lines a message
                checked = time.monotonic()
                mosquitto.rotate_log()
    except KeyboardInterrupt:
        pass
    finally:
        mosquitto.cleanup()


# -- simulators -----------------------------------------------------------------------------------
@cli.group()
def sim() -> None:
    """Hardware simulators: GNSS module, cellular modem, radio, dock."""


sim.add_command(sim_radio)
sim.add_command(sim_modem)


@sim.command("mixed-day")
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=".hotspots/mixed-day",
              show_default=True, help="Where the day's files, broker and database go.")
def sim_mixed_day(folder: str) -> None:
    """Replay a day of mixed sources (tracker, phone, radio, vehicle, camera export) through
    the real parts, then print the dwell and exception reports against the ground truth."""
    import shutil

    from gateway.reports.dwell import day_window, dwell_table
    from gateway.reports.visits import HotSpotSet, compute_visits
    from gateway.schema import open_db
    from simulators import mixed_day

    path = Path(folder)
    if path.exists():
        shutil.rmtree(path)  # a replay starts from nothing: its own broker and database
    day = mixed_day.build(path)
    db_path = path / "day.db"
    sent = mixed_day.replay(db_path, path, day)
    click.echo(f"replayed {day.date}: " + ", ".join(f"{k} {v}" for k, v in sent.sent.items()))
    db = open_db(str(db_path))
    visits = compute_visits(db, HotSpotSet.load(mixed_day.FENCES), day_window(day.date))
    for line in dwell_table(visits):
        click.echo(line)
    db.close()
    click.echo("")
    result = mixed_day.check(db_path, day)
    for line in result.lines():
        click.echo(line)
    click.echo(f"database: {db_path} (hotspots report exceptions --db {db_path} --date"
               f" {day.date} --fences {mixed_day.FENCES})")
    if not result.ok:
        raise SystemExit(1)


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
@click.option("--start", type=float, default=None,
              help="Start time, epoch s (default: as late as keeps every fix in the past).")
@click.option("--noise-m", type=float, default=2.0, show_default=True,
              help="GNSS position noise, metres.")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--module", type=click.Choice(["ublox", "mtk"]), default=None,
              help="Be a configurable module on the pseudo-terminal: answer UBX (u-blox) or "
                   "PMTK (MediaTek) set-up, switch off and wake as told.")
@click.option("--generation", type=click.Choice(["m10", "m8"]), default="m10",
              show_default=True, help="u-blox generation: m10 takes CFG-VALSET, m8 CFG-MSG.")
@click.option("--cold-start-s", type=float, default=30.0, show_default=True,
              help="With --module: time to the first fix after power-on or a cold start.")
@click.option("--hot-start-s", type=float, default=2.0, show_default=True,
              help="With --module: time to a fix after a wake-up or a hot start.")
def sim_gps(route: str, out: str | None, fences: str, truth: str | None, speedup: float,
            start: float | None, noise_m: float, seed: int, module: str | None,
            generation: str, cold_start_s: float, hot_start_s: float) -> None:
    """Write 1 Hz NMEA (RMC, GGA) for a walk along ROUTE, with its ground truth."""
    from simulators import gps
    from simulators.walk import RouteError, make_walk, replay_start

    try:
        if start is None:
            start = replay_start(make_walk(route, fences, 0.0).duration_s, speedup)
        walk = make_walk(route, fences, start)
    except RouteError as exc:
        raise click.ClickException(str(exc)) from exc
    truth = truth or (f"{out}.truth.jsonl" if out else "gps-truth.jsonl")
    if module:
        if out:
            raise click.ClickException("--module answers set-up: it needs the pseudo-terminal, "
                                       "not --out")
        from simulators import gnss_module

        samples = list(walk.samples(noise_m=noise_m, seed=seed))
        gps.write_truth(truth, samples, walk.visits())
        sim = gnss_module.GnssModuleSim(module, samples, generation, cold_start_s, hot_start_s)
        cli_gateway.interrupt_on_signals()
        terminal = gps.PseudoTerminal()
        click.echo(terminal.path)
        sys.stdout.flush()
        try:
            gnss_module.serve(sim, terminal, speedup)
        except KeyboardInterrupt:
            pass
        terminal.close()
        c = sim.counts
        click.echo(f"{module} module: {c.epochs} epochs ({c.fixes} with a fix), {c.commands} "
                   f"commands, {c.acks} acknowledged, {c.naks} refused, {c.backups} switched "
                   f"off, {c.wakes} woken; ground truth in {truth}", err=True)
        return
    if out:
        with open(out, "wb") as sink:
            epochs = gps.play(walk, sink, speedup, noise_m, seed, truth)
        click.echo(f"wrote {epochs} epochs to {out}; ground truth in {truth}")
        return
    cli_gateway.interrupt_on_signals()
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
@click.option("--user", default=None, envvar="HOTSPOTS_MQTT_USER",
              help="Broker account (default: none) [env HOTSPOTS_MQTT_USER].")
@cli_gateway.password_option
@cli_gateway.accounts_option("Log in as the device, password from the broker's accounts.json.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Speak TLS and check the broker's certificate against this CA (PEM).")
@click.option("--sampling", type=click.Choice(["adaptive", "fixed"]), default="adaptive",
              show_default=True,
              help="adaptive: the policy of docs/sampling.md; fixed: every epoch, --report-s.")
@click.option("--gnss-module", type=click.Choice(["ublox", "mtk", "nmea"]), default="nmea",
              show_default=True,
              help="Set the module up over UBX (u-blox) or PMTK (MediaTek) and switch it off "
                   "between fixes; nmea: take its output as it is.")
@click.option("--modem", default=None, metavar="DEV",
              help="Reach the broker through a SIM7080G on this serial device (hotspots sim "
                   "modem prints one).")
@click.option("--apn", default="internet", show_default=True, help="APN for --modem.")
@click.option("--heap-kb", type=click.IntRange(16, 4096), default=None,
              help="MicroPython heap in KB (the firmware then runs as .mpy, as on a board; "
                   "it logs its heap figures at the end, see docs/memory.md).")
def firmware_run(gps: str, broker_address: str, device_id: str, fences: str | None,
                 state: str | None, station: str, report_s: int, exit_on_eof: bool,
                 cpython: bool, user: str | None, password: str | None,
                 accounts_path: str | None, tls_ca: str | None, sampling: str,
                 gnss_module: str, modem: str | None, apn: str,
                 heap_kb: int | None) -> None:
    """Run the firmware main loop (on the MicroPython unix port unless --cpython)."""
    from simulators import tracker_process

    if accounts_path:
        user = user or device_id
        password = cli_gateway.account_password(accounts_path, user)

    state = state or f".hotspots/devices/{device_id}"
    if fences:
        version = tracker_process.install_fences(state, fences)
        click.echo(f"fences {version} installed in {state}", err=True)
    if heap_kb is not None and cpython:
        raise click.ClickException("--heap-kb is for the MicroPython unix port, not --cpython")
    if cpython:
        from simulators import board

        if gnss_module != "nmea":
            raise click.ClickException("--gnss-module drives the module from the MicroPython "
                                       "unix port: leave out --cpython")
        from tracker.config import ConfigError

        try:
            board.run(gps, broker_address, device_id, state, station, exit_on_eof, report_s,
                      user=user, password=password, tls_ca=tls_ca, sampling=sampling,
                      modem=modem, apn=apn)
        except ConfigError as exc:
            raise click.ClickException(f"configuration: {exc}") from exc
        return
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hotspots-mpy-") as tmp:
        try:
            precompiled = tracker_process.precompile(tmp) if heap_kb is not None else None
            argv = tracker_process.command(
                gps, broker_address, device_id, state, station=station,
                exit_on_eof=exit_on_eof, report_s=report_s, user=user, password=password,
                tls_ca=tls_ca, sampling=sampling, precompiled=precompiled,
                heap=f"{heap_kb}K" if heap_kb is not None else None,
                gnss_module=None if gnss_module == "nmea" else gnss_module, modem=modem,
                apn=apn)
        except tracker_process.FirmwareError as exc:
            raise click.ClickException(str(exc)) from exc
        code = subprocess.call(argv, env=tracker_process.micropython_env(
            precompiled or tracker_process.FIRMWARE_DIR))
    sys.exit(code)


@firmware.command("bundle")
@click.option("--board", type=click.Choice(["esp32s3", "picow"]), required=True,
              help="The reference tracker (docs/hardware.md).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True,
              help="Folder to write (replaced if it holds an earlier bundle).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="A config.json to check and include as state/config.json, "
                                 "with the CA it names (docs/configuration.md).")
def firmware_bundle(board: str, out_dir: str, config_path: str | None) -> None:
    """Exactly what goes on a board: main.py and lib/*.mpy compiled for its architecture."""
    from hotspots.bundle import BundleError, bundle

    try:
        files = bundle(board, out_dir, config_path)
    except BundleError as exc:
        raise click.ClickException(str(exc)) from exc
    for path in files:
        click.echo(path)
    click.echo(f"{len(files)} files in {out_dir}; copy them with: cd {out_dir} && mpremote "
               "cp -r lib" + (" state" if config_path else "") + " : + cp main.py : + reset",
               err=True)


@firmware.command("replay")
@click.argument("nmeafile", type=click.Path(exists=True, dir_okay=False))
@click.option("--fences", "fences_path", type=click.Path(exists=True, dir_okay=False),
              required=True, help="GeoJSON hot spots (compiled as for a device).")
@click.option("--micropython", is_flag=True, help="Run the core on the MicroPython unix port.")
@click.option("--heap-kb", type=click.IntRange(16, 4096), default=None,
              help="MicroPython heap in KB (implies --micropython; the firmware runs as .mpy).")
def firmware_replay(nmeafile: str, fences_path: str, micropython: bool,
                    heap_kb: int | None) -> None:
    """Replay a recorded NMEA log; print what the tracker would publish, as JSON lines."""
    from fences.validate import FenceError
    from simulators.replay import ReplayError, replay

    try:
        for line in replay(nmeafile, fences_path, micropython=micropython or heap_kb is not None,
                           heap_kb=heap_kb, log=lambda text: click.echo(text, err=True)):
            click.echo(line)
    except (FenceError, ReplayError) as exc:
        raise click.ClickException(str(exc)) from exc


# -- gateway --------------------------------------------------------------------------------------
@cli.group()
def gateway() -> None:
    """The station gateway."""


@gateway.command("run")
@click.option("--broker", "broker_address", required=True, help="Broker HOST:PORT.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="SQLite database (created if missing).")
@click.option("--airwave", "airwave_port", default=None,
              help="Also read Airwave radio reports from this serial port (or pyserial URL).")
@click.option("--user", default="gateway", show_default=True, help="Broker account.")
@cli_gateway.password_option
@cli_gateway.accounts_option("Take the password from the broker's accounts.json.")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Connect with TLS, verifying the broker with this CA certificate.")
@click.option("--filters", "filters_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="TOML file of position filter settings per source.")
@click.option("--accept-unknown", is_flag=True,
              help="Store messages of unregistered devices instead of quarantining them.")
def gateway_run(broker_address: str, db_path: str, airwave_port: str | None, user: str,
                password: str | None, accounts_path: str | None, tls_ca: str | None,
                filters_path: str | None, accept_unknown: bool) -> None:
    """Subscribe to trackers and phones and store what they send, until interrupted."""
    service = cli_gateway.make_gateway(broker_address, db_path, airwave_port, user, password,
                           accounts_path, tls_ca, filters_path, accept_unknown)
    stop = threading.Event()
    cli_gateway.stop_on_signals(stop)  # the batch in hand is finished, then run() returns
    click.echo(f"gateway: {broker_address} -> {db_path}", err=True)

    def announce() -> None:
        if service.connected.wait(3600):
            click.echo("gateway: subscribed", err=True)

    threading.Thread(target=announce, daemon=True).start()
    counts = service.run(stop)
    # Every message this run handled, in exactly one of these: what was sent adds up.
    click.echo(f"stored {dict(counts.stored)}, duplicates {counts.duplicates},"
               f" status {counts.status}, quarantined {dict(counts.quarantined)}", err=True)


# -- reports and exports: hotspots/report_commands.py -------------------------------------------
from hotspots import report_commands  # noqa: E402  (kept beside its section, not at the top)

cli.add_command(report_commands.report)
cli.add_command(report_commands.export)

# -- planning: crime import, targeting, taskings (hotspots/cli_crime.py, hotspots/cli_plan.py) --
from hotspots import cli_crime, cli_plan  # noqa: E402

cli.add_command(cli_crime.crime)
cli.add_command(cli_plan.plan)
sim.add_command(cli_crime.sim_crime)
report_commands.report.add_command(cli_plan.report_hotspot)


# -- demo -----------------------------------------------------------------------------------------
@cli.command()
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=".hotspots/demo",
              show_default=True, help="Where the database, logs and ground truth go.")
@click.option("--speedup", type=float, default=60.0, show_default=True)
@click.option("--cpython", is_flag=True, help="Run the firmware core on CPython.")
@click.option("--planning", is_flag=True,
              help="The planning loop instead: crime -> hot spots -> fences -> taskings ->"
                   " patrol -> exceptions (in DIR/planning).")
def demo(workdir: str, speedup: float, cpython: bool, planning: bool) -> None:
    """One officer walks through two hot spots; prints the dwell report beside the truth."""
    from hotspots.demo import run_demo
    from hotspots.demo_planning import run_planning_demo

    runner = run_planning_demo if planning else run_demo
    if planning:
        workdir = str(Path(workdir) / "planning")
    try:
        for line in runner(Path(workdir), speedup=speedup, cpython=cpython):
            click.echo(line)
    except (BrokerError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc


# -- command groups that live in their own modules -------------------------------------------------
cli.add_command(bench)
cli.add_command(nmea)
for _command in cli_gateway.COMMANDS:  # status, register, assign, return
    cli.add_command(_command)
cli.add_command(airwave)
cli.add_command(fences)
from hotspots.cli_dock import dock, enrol  # noqa: E402
from hotspots.cli_web import web  # noqa: E402

cli.add_command(dock)
cli.add_command(enrol)
cli.add_command(web)
from hotspots.cli_import import import_  # noqa: E402

cli.add_command(import_)
from hotspots.cli_owntracks import owntracks  # noqa: E402

cli.add_command(owntracks)
from hotspots.cli_vehicle import vehicle  # noqa: E402

cli.add_command(vehicle)


def main() -> None:
    """Entry point for ``python -m hotspots``."""
    cli()
