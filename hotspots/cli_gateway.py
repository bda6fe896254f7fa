"""CLI commands for the station gateway's fleet: ``status``, ``register``, ``assign``, ``return``.

Thin click wrappers over :mod:`gateway.fleet.status` and :mod:`gateway.fleet.identity`, plus the
factory
that ``hotspots gateway run`` uses to turn its options into a
:class:`gateway.intake.service.Gateway`
and the helpers every long-running command shares (database, broker accounts, signals).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import click


def open_database(db_path: str, create: bool = False):
    """The gateway database at ``db_path``, migrated; a ClickException if it is missing (unless
    ``create``). Every command that takes ``--db`` opens it through here."""
    from gateway.schema import open_db

    if not create and not Path(db_path).exists():
        raise click.ClickException(f"no database at {db_path}")
    return open_db(db_path)


def password_option(func):
    """``--password``: the broker password, also from ``HOTSPOTS_MQTT_PASSWORD`` (so that it
    need not stand on a command line, where ``ps`` shows it)."""
    return click.option("--password", default=None, envvar="HOTSPOTS_MQTT_PASSWORD",
                        help="Broker password [env HOTSPOTS_MQTT_PASSWORD].")(func)


def accounts_option(help_text: str):
    """``--accounts FILE``: the broker's accounts.json, whose password for the account
    :func:`account_password` reads."""
    return click.option("--accounts", "accounts_path",
                        type=click.Path(exists=True, dir_okay=False), default=None,
                        help=help_text)


def name_values(items: tuple[str, ...], option: str, value: str) -> dict[str, str]:
    """Repeated ``NAME=VALUE`` option values as a dict; a usage error naming ``option`` for one
    without a name or a value (``value`` names what follows the ``=``, e.g. ``PORT``)."""
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name or not text:
            raise click.BadParameter(f"{item!r}: use NAME={value}", param_hint=option)
        out[name] = text
    return out


def time_option(text: str | None) -> int | None:
    """A ``--at``/``--due``/``--now`` value as epoch seconds (None if not given); the forms of
    :func:`gateway.fleet.identity.parse_time`, a usage error otherwise."""
    from gateway.fleet.identity import IdentityError, parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except IdentityError as exc:
        raise click.BadParameter(str(exc)) from exc


def interrupt_on_signals() -> None:
    """Ctrl-C and SIGTERM (a service manager) both mean "clean up and stop".

    SIGINT is set explicitly: a process started in the background by a non-interactive shell
    inherits SIGINT ignored, and would otherwise leave its broker running.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


def stop_on_signals(stop: threading.Event) -> None:
    """Ctrl-C and SIGTERM set ``stop`` instead of raising, for a loop that checks it often.

    The gateway stores, commits and acknowledges in its main thread; an exception raised in the
    middle of storing a message would leave that message stored but not counted.
    """

    def handler(_signum, _frame) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def account_password(accounts_path: str, user: str) -> str:
    """The password of ``user`` in a broker's ``accounts.json``, or a ClickException."""
    rows = {row["username"]: row for row in json.loads(Path(accounts_path).read_text())}
    if user not in rows:
        raise click.ClickException(f"no account {user!r} in {accounts_path}")
    return rows[user]["password"]


def recorder_accounts(accounts_path: str) -> frozenset[str]:
    """The Recorder bridge accounts of an accounts file (their topics are the gateway's own)."""
    try:
        accounts = json.loads(Path(accounts_path).read_text())
    except (OSError, ValueError):
        return frozenset()
    return frozenset(a.get("username") for a in accounts
                     if isinstance(a, dict) and a.get("role") == "recorder")


def make_gateway(broker_address: str, db_path: str, airwave_port: str | None, user: str,
                 password: str | None, accounts_path: str | None, tls_ca: str | None,
                 filters_path: str | None, accept_unknown: bool):
    """A :class:`gateway.intake.service.Gateway` from ``gateway run``'s options, or a
    ClickException."""
    from gateway.intake.filters import FilterConfigError, load_config
    from gateway.intake.service import Gateway

    ignore: frozenset[str] = frozenset()
    if accounts_path:
        password = account_password(accounts_path, user)
        ignore = recorder_accounts(accounts_path)
    try:
        return Gateway(broker_address, db_path, airwave=airwave_port,
                       username=user if password is not None else None, password=password,
                       tls_ca=tls_ca, filter_config=load_config(filters_path),
                       accept_unknown=accept_unknown, ignore_accounts=ignore)
    except (ValueError, FilterConfigError) as exc:
        raise click.ClickException(str(exc)) from exc


@click.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
@click.option("--silent-min", type=float, default=10, show_default=True,
              help="Alert when an assigned device has sent nothing for this many minutes.")
@click.option("--low-batt", type=int, default=20, show_default=True,
              help="Alert below this battery percentage.")
@click.option("--shift-hours", type=float, default=10, show_default=True,
              help="An assignment without --due is overdue after this many hours.")
@click.option("--after-patrol-min", type=float, default=60, show_default=True,
              help="Alert when a phone still reports this long after its patrol ended.")
@click.option("--now", "now_text", default=None, help="Judge as of this time (default: now).")
@click.option("--watch", type=float, default=None, metavar="SECONDS",
              help="Redraw every SECONDS until interrupted.")
@click.option("--broker-log", type=click.Path(dir_okay=False), default=None,
              help="The broker's mosquitto.log: count the publishes its ACL refused.")
def status(db_path: str, as_json: bool, silent_min: float, low_batt: int, shift_hours: float,
           after_patrol_min: float, now_text: str | None, watch: float | None,
           broker_log: str | None) -> None:
    """Live status per device, alerts, and rejection counters."""
    from gateway.broker import BrokerError, denied_publishes
    from gateway.fleet.status import AlertRules, fleet_status, status_lines

    rules = AlertRules(silent_min=silent_min, low_batt_pct=low_batt, shift_hours=shift_hours,
                       after_patrol_min=after_patrol_min)
    db = open_database(db_path)
    now = time_option(now_text)
    try:
        while True:
            fleet = fleet_status(db, now=now, rules=rules)
            try:
                denied = denied_publishes(broker_log) if broker_log else None
            except BrokerError as exc:
                raise click.ClickException(str(exc)) from None
            if as_json:
                doc = fleet.as_dict()
                if denied is not None:
                    doc["refused_publishes"] = [
                        {"client": c, "topic": t, "count": n} for (c, t), n in denied.items()]
                click.echo(json.dumps(doc))
            else:
                if watch:
                    click.clear()
                for line in status_lines(fleet):
                    click.echo(line)
                if denied is not None:
                    total = sum(denied.values())
                    detail = ", ".join(f"{c} {t} x{n}" for (c, t), n in sorted(denied.items()))
                    click.echo(f"publishes refused by the broker: {total}"
                               + (f" ({detail})" if detail else ""))
            if not watch:
                return
            time.sleep(watch)
    except KeyboardInterrupt:
        return


@click.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--grace-hours", type=float, default=24, show_default=True,
              help="Wait this long for late assignments (a paper log) before judging a fix.")
@click.option("--keep-days", type=float, default=14, show_default=True,
              help="Delete set-apart positions older than this.")
@click.option("--now", "now_text", default=None, help="Judge as of this time (default: now).")
def purge(db_path: str, grace_hours: float, keep_days: float, now_text: str | None) -> None:
    """After the patrol: set apart phone and radio positions no assignment covers (not patrol
    data, left out of reports), and delete them after --keep-days. Run it daily."""
    from gateway.intake.intake import Intake

    if keep_days * 24 < grace_hours:
        raise click.UsageError("--keep-days must be longer than --grace-hours")
    db = open_database(db_path)
    now = time_option(now_text)
    flagged, restored, purged = Intake(db).set_apart_off_duty(
        time.time() if now is None else now, int(grace_hours * 3600), int(keep_days * 86400))
    click.echo(f"set apart {flagged}, back as patrol data {restored} (assignment recorded"
               f" since), deleted {purged}")


@click.command()
@click.argument("device")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--source", type=click.Choice(["tracker", "owntracks", "airwave", "vehicle",
                                           "import"]), default=None,
              help="What DEVICE is [default: airwave for issi:<ISSI>, else tracker].")
def register(device: str, db_path: str, source: str | None) -> None:
    """Add DEVICE to the fleet, so the gateway stores what it sends."""
    from gateway.fleet.identity import IdentityError, check_name, register_device

    try:
        check_name(device)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    db = open_database(db_path, create=True)
    if register_device(db, device, source):
        click.echo(f"{device} registered")
        return
    kept = db.execute("SELECT source FROM devices WHERE device_id = ?", (device,)).fetchone()[0]
    if source is not None and source != kept:
        raise click.ClickException(f"{device} is already registered as {kept}, not {source}")
    click.echo(f"{device} was already registered")


@click.command()
@click.argument("device")
@click.argument("collar")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--at", "at_text", default=None,
              help="When it was handed over (epoch s, ISO 8601 or HH:MM UTC; default now).")
@click.option("--due", "due_text", default=None, help="When it should be back (end of shift).")
def assign(device: str, collar: str, db_path: str, at_text: str | None,
           due_text: str | None) -> None:
    """Record that officer COLLAR carries DEVICE from --at; re-attributes positions it covers."""
    from gateway.fleet.identity import IdentityError
    from gateway.fleet.identity import assign as record

    try:
        a = record(open_database(db_path, create=True), device, collar, time_option(at_text),
                   time_option(due_text))
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    until = "open" if a.end_ts is None else a.end_ts
    click.echo(f"{device} assigned to {collar} from {a.start_ts} until {until}")


@click.command("return")
@click.argument("device")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--at", "at_text", default=None, help="When it came back (default now).")
def return_(device: str, db_path: str, at_text: str | None) -> None:
    """Record that DEVICE came back to the dock, ending its assignment."""
    from gateway.fleet.identity import IdentityError, check_name, return_device

    try:
        check_name(device)
        a = return_device(open_database(db_path), device, time_option(at_text))
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{device} returned by {a.collar} at {a.end_ts}")


COMMANDS = (status, register, assign, return_, purge)
