"""``hotspots dock``: the docking station — serve the slots, show them, hand out a tracker.

Thin click wrappers over :mod:`gateway.fleet.dock` (and :mod:`simulators.dock` for ``dock sim``).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import asdict

import click

from hotspots.cli_gateway import (
    account_password,
    accounts_option,
    interrupt_on_signals,
    name_values,
    open_database,
    time_option,
)


@click.group()
def dock() -> None:
    """Docking station: pull, charge, sign out and take back pooled trackers."""


@dock.command("run")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Gateway database (created if missing).")
@click.option("--slot", "slots", multiple=True, required=True, metavar="NAME=PORT",
              help="A dock slot and its serial port or pyserial URL (repeatable).")
@click.option("--fences", "fences_path", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Hot spots (GeoJSON or compiled) to push to docked trackers.")
@click.option("--report-s", type=int, default=None, help="Location interval to set, seconds.")
@click.option("--min-charge", type=int, default=50, show_default=True,
              help="Do not arm a tracker below this charge (%).")
def dock_run(db_path: str, slots: tuple[str, ...], fences_path: str | None,
             report_s: int | None, min_charge: int) -> None:
    """Serve the dock slots until interrupted."""
    from gateway.fleet.dock import DockStation

    ports = name_values(slots, "--slot", "PORT")
    fences_text = None
    if fences_path:
        from fences.publish import load_compiled
        from fences.validate import FenceError

        try:
            compiled = load_compiled(fences_path)
        except FenceError as exc:
            raise click.ClickException(str(exc)) from exc
        fences_text = compiled if isinstance(compiled, str) else compiled.text
    open_database(db_path, create=True).close()
    station = DockStation(db_path, ports, fences_text=fences_text,
                          config={"report_s": report_s} if report_s else None,
                          min_charge_pct=min_charge)
    stop = threading.Event()
    interrupt_on_signals()
    click.echo(f"dock: {', '.join(f'{k}={v}' for k, v in ports.items())} -> {db_path}",
               err=True)
    station.start(stop)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop.set()
        station.join()


@dock.command("status")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option("--now", "now_text", default=None, help="Judge as of this time (default: now).")
def dock_status(db_path: str, as_json: bool, now_text: str | None) -> None:
    """Every slot (tracker, charge, time to full, officer) and every tracker out of the dock."""
    from gateway.fleet.dock import dock_status as read_status
    from gateway.fleet.dock import status_lines

    status = read_status(open_database(db_path), now=time_option(now_text))
    if as_json:
        click.echo(json.dumps(asdict(status)))
        return
    for line in status_lines(status):
        click.echo(line)


@dock.command("pick")
@click.argument("collar")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--device", default=None, help="Hand out this tracker rather than the fullest.")
@click.option("--min-charge", type=int, default=50, show_default=True,
              help="Refuse trackers below this charge (%).")
@click.option("--due", "due_text", default=None, help="When it should be back (end of shift).")
def dock_pick(collar: str, db_path: str, device: str | None, min_charge: int,
              due_text: str | None) -> None:
    """Sign the fullest docked tracker (or --device) out to officer COLLAR."""
    from gateway.fleet.dock import PickError, pick
    from gateway.fleet.identity import IdentityError, check_name

    try:
        check_name(collar, "collar")
        if device is not None:
            check_name(device)
        assignment, slot, batt = pick(open_database(db_path), collar, device=device,
                                      min_pct=min_charge, due=time_option(due_text))
    except (PickError, IdentityError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"take {assignment.device_id} from slot {slot} ({batt}%): signed out to {collar}")


@dock.command("sim")
@click.option("--broker", "broker_address", required=True, help="Broker HOST:PORT.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), default=".hotspots/dock",
              show_default=True, help="Trackers' flash, logs and battery files.")
@click.option("--slots", type=int, default=3, show_default=True)
@click.option("--tracker", "trackers", multiple=True, metavar="ID=PCT",
              help="A tracker and its charge, plugged into the next free slot (repeatable).")
@click.option("--time-scale", type=float, default=60.0, show_default=True,
              help="Simulated seconds per real second for the batteries.")
@accounts_option("Trackers log in as themselves, passwords from the broker's accounts.json.")
def dock_sim(broker_address: str, workdir: str, slots: int, trackers: tuple[str, ...],
             time_scale: float, accounts_path: str | None) -> None:
    """A simulated dock: prints each slot's serial port for ``hotspots dock run --slot``."""
    from simulators.dock import DockSimulator

    parsed = []
    for item in trackers:
        device, _, pct = item.partition("=")
        try:
            charge = float(pct or 100)
        except ValueError:
            raise click.BadParameter(f"{item!r}: use ID=PERCENT", param_hint="--tracker") from None
        # Before anything starts: an unknown device is an error now, not a silent refusal later.
        password = account_password(accounts_path, device) if accounts_path else None
        parsed.append((device, charge, password))
    if len(parsed) > slots:
        raise click.BadParameter(f"{len(parsed)} trackers for {slots} slots",
                                 param_hint="--tracker")
    passwords = {device: password for device, _, password in parsed}
    auth = (lambda device: (device, passwords[device])) if accounts_path else None
    interrupt_on_signals()
    sim = DockSimulator(workdir, broker_address, slots=slots, time_scale=time_scale, auth=auth)
    try:
        for i, (device, charge, _) in enumerate(parsed):
            sim.add_tracker(device, batt=charge, slot=sim.slots[i].name)
        for s in sim.slots:
            click.echo(f"{s.name}={s.port}")
        sys.stdout.flush()
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        sim.close()


@click.command("enrol")
@click.argument("device")
@click.option("--slot", default=None,
              help="The slot of a running 'hotspots dock run --db PATH' holding the tracker: "
                   "the station enrols it at its next poll.")
@click.option("--port", default=None,
              help="Or the slot's serial port (or pyserial URL) when no station serves it.")
@click.option("--wait-s", type=float, default=60, show_default=True,
              help="With --slot: how long to wait for the station.")
@click.option("--broker-dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The station broker's folder (hotspots broker --dir): the account goes there.")
@click.option("--broker", "broker_address", required=True, metavar="HOST:PORT",
              help="Where the tracker will reach the broker.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="Gateway database: the device is registered there.")
@click.option("--station", default="main", show_default=True)
@click.option("--link", type=click.Choice(["cellular", "wifi", "host"]), default="cellular",
              show_default=True, help="How the tracker reaches the broker.")
@click.option("--apn", default=None, help="APN of the SIM (cellular).")
@click.option("--wifi-ssid", default=None, help="Wi-Fi network (wifi).")
@click.option("--wifi-password", default=None, envvar="HOTSPOTS_WIFI_PASSWORD",
              help="Wi-Fi password (wifi) [env HOTSPOTS_WIFI_PASSWORD]; never printed.")
@click.option("--ca", "ca_path", type=click.Path(exists=True, dir_okay=False), default=None,
              help="CA certificate (PEM) of the broker's TLS listener, stored on the tracker.")
@click.option("--report-s", type=int, default=None, help="Location interval, seconds.")
def enrol(device: str, slot: str | None, port: str | None, wait_s: float, broker_dir: str,
          broker_address: str, db_path: str, station: str, link: str, apn: str | None,
          wifi_ssid: str | None, wifi_password: str | None, ca_path: str | None,
          report_s: int | None) -> None:
    """Enrol the tracker in a dock slot as DEVICE: broker account, settings, fleet."""
    import os

    from gateway.fleet import enrol as enrolment

    if (slot is None) == (port is None):
        raise click.UsageError("give --slot (a running station) or --port (no station)")
    host, sep, port_text = broker_address.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise click.BadParameter(f"{broker_address!r}: use HOST:PORT", param_hint="--broker")
    try:
        link_values = enrolment.link_settings(link, apn, wifi_ssid, wifi_password)
        if port is not None:
            done = enrolment.enrol(
                device, port, broker_dir, host, int(port_text), db_path, station=station,
                ca_path=ca_path, report_s=report_s, link=link_values)
        else:
            done = enrolment.request(db_path, slot, enrolment.Request(
                device, os.path.abspath(broker_dir), host, int(port_text), station,
                link_values, os.path.abspath(ca_path) if ca_path else None, report_s),
                wait_s=wait_s)
    except enrolment.EnrolError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{done.device_id} enrolled on {done.port} (was {done.previous_id or '-'}): "
               f"{'new' if done.account_created else 'existing'} broker account; wrote "
               f"{', '.join(done.settings)}; registered. It uses them from its next start.")
