"""Enrolling a tracker at the station: broker account, settings written through the dock, fleet.

``hotspots enrol DEVICE --port PORT --broker-dir DIR ...`` does, in one step, what force IT
would otherwise do by hand:

1. asks the tracker on the dock's serial port who it is (``ID``): it must be there and answer;
2. creates the device's broker account (:func:`gateway.broker.provision_account`: the
   generated password, the per-device ACL, live at once on a running broker);
3. writes the tracker's settings — device id, station, broker, its credentials, the broker's CA,
   and the link (APN, or Wi-Fi network and password) — into its ``config.json`` through the dock
   (:meth:`gateway.fleet.dock.DockClient.provision`); the tracker uses them from its next boot;
4. registers the device in the fleet, so the gateway stores what it sends, and records an
   ``enrolled`` dock event.

Credentials (the broker password, the Wi-Fi password) go only into the frames to the device:
they are never printed, logged, stored in the database or put in an exception message.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlite_utils

from gateway.broker import BrokerError, provision_account
from gateway.fleet import identity
from gateway.fleet.dock.link import DeviceInfo, DockClient, DockError
from gateway.schema import open_db


class EnrolError(RuntimeError):
    """Enrolment could not finish; the message says which step and what to do."""


@dataclass
class Enrolment:
    """What was done (no secrets in here: it is printed)."""

    device_id: str
    previous_id: str
    port: str
    settings: list[str] = field(default_factory=list)  # names of the settings written
    ca: bool = False
    account_created: bool = False


def link_settings(link: str, apn: str | None = None, wifi_ssid: str | None = None,
                  wifi_password: str | None = None) -> dict[str, str]:
    """The link part of the settings; raises :class:`EnrolError` if it is incomplete."""
    if link == "cellular":
        if not apn:
            raise EnrolError("a cellular tracker needs --apn (the SIM provider's APN)")
        return {"link": "cellular", "apn": apn}
    if link == "wifi":
        if not wifi_ssid:
            raise EnrolError("a Wi-Fi tracker needs --wifi-ssid")
        out = {"link": "wifi", "wifi_ssid": wifi_ssid}
        if wifi_password:
            out["wifi_password"] = wifi_password
        return out
    if link == "host":
        return {"link": "host"}
    raise EnrolError(f"unknown link {link!r}: cellular, wifi or host")


@dataclass
class Request:
    """What to enrol a tracker as (the Wi-Fi password may be in ``link``: never print this)."""

    device_id: str
    broker_dir: str
    broker_host: str
    broker_port: int
    station: str = "main"
    link: dict[str, str] = field(default_factory=dict)
    ca_path: str | None = None
    report_s: int | None = None

    def __repr__(self) -> str:  # a traceback or a debugger must not show the secret
        return f"Request({self.device_id!r}, broker {self.broker_host}:{self.broker_port})"


def enrol(device_id: str, port: str, broker_dir: str | Path, broker_host: str,
          broker_port: int, db_path: str | Path, *, station: str = "main",
          link: dict[str, str] | None = None, ca_path: str | Path | None = None,
          report_s: int | None = None, timeout_s: float = 1.0,
          clock=time.time) -> Enrolment:
    """Enrol the tracker on ``port`` as ``device_id`` (see the module docstring); the port
    must be free (no ``hotspots dock run`` serving it: see :func:`request` for that case)."""
    request_ = Request(device_id, str(broker_dir), broker_host, broker_port, station,
                       dict(link or {}), str(ca_path) if ca_path else None, report_s)
    client = DockClient(port, timeout_s=timeout_s)
    try:
        try:
            client.open()
            info = client.identify()
        except (DockError, OSError) as exc:
            raise EnrolError(f"no tracker answers on {port}: {exc}") from None
        db = open_db(str(db_path))
        try:
            return enrol_docked(request_, client, info, db, port, clock)
        finally:
            db.close()
    finally:
        client.close()


def enrol_docked(request_: Request, client: DockClient, info: DeviceInfo,
                 db: sqlite_utils.Database, where: str, clock=time.time) -> Enrolment:
    """Enrol the tracker that answered ``info`` on ``client``: account, settings, fleet."""
    from gateway.broker import Mosquitto

    try:  # before anything is created for it: the one grammar of names
        device_id = identity.check_name(request_.device_id, "device")
    except identity.IdentityError as exc:
        raise EnrolError(str(exc)) from None
    if device_id.startswith(identity.RADIO_PREFIX):
        raise EnrolError(f"device id {device_id!r} names an Airwave radio; a tracker needs a "
                         "name of its own (letters, digits, '_', '.', '-')")
    broker_dir = Path(request_.broker_dir)
    if not (broker_dir / "accounts.json").exists():
        raise EnrolError(f"{broker_dir} is not a broker folder (no accounts.json); "
                         "start one with: hotspots broker --dir DIR")
    try:
        created = device_id not in Mosquitto(workdir=broker_dir).accounts
        account = provision_account(broker_dir, device_id)
    except BrokerError as exc:
        raise EnrolError(f"broker account for {device_id}: {exc}") from None
    settings: dict[str, str | int] = {
        "device_id": device_id, "station": request_.station,
        "broker_host": request_.broker_host, "broker_port": request_.broker_port,
        "user": account.username, "password": account.password,
    }
    settings.update(request_.link)
    if request_.report_s is not None:
        settings["report_s"] = request_.report_s
    try:
        ca_pem = Path(request_.ca_path).read_text() if request_.ca_path else None
    except OSError as exc:
        raise EnrolError(f"CA certificate: {exc.strerror}: {request_.ca_path}") from None
    try:
        client.provision(settings, ca_pem)
    except DockError as exc:  # the device's reasons name keys, never values
        raise EnrolError(f"writing the settings to {info.device_id} on {where}: {exc}") \
            from None
    try:
        identity.register_device(db, device_id, at=int(clock()))
    except identity.IdentityError as exc:
        raise EnrolError(str(exc)) from None
    names = sorted(settings) + (["ca"] if ca_pem else [])
    with db.conn:
        db.execute("INSERT INTO dock_events (ts, slot, device_id, event, batt, detail)"
                   " VALUES (?, ?, ?, 'enrolled', ?, ?)",
                   (int(clock()), where, device_id, info.batt,
                    f"was {info.device_id}; wrote " + ", ".join(names)))
    return Enrolment(device_id, info.device_id, where, names, bool(ca_pem), created)


# -- through a running dock station -----------------------------------------------------------
# ``hotspots dock run`` owns the slots' serial ports. ``hotspots enrol --slot`` therefore leaves
# the request in a private spool folder beside the database (mode 0700, files 0600, deleted as
# soon as the station has taken them); the station's slot thread runs it at its next poll with
# the tracker there and leaves a result without secrets.
def spool_dir(db_path: str | Path) -> Path:
    """Where enrolment requests for the station using ``db_path`` wait."""
    return Path(f"{db_path}.enrol")


def request(db_path: str | Path, slot: str, request_: Request, wait_s: float = 60.0,
            poll_s: float = 0.1) -> Enrolment:
    """Ask the running station to enrol the tracker in ``slot``; waits for its result."""
    spool = spool_dir(db_path)
    spool.mkdir(mode=0o700, exist_ok=True)
    job, result = spool / f"{slot}.job", spool / f"{slot}.result"
    result.unlink(missing_ok=True)
    tmp = spool / f".{slot}.job.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(request_), f)
    os.replace(tmp, job)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if result.exists():
            doc = json.loads(result.read_text())
            result.unlink()
            if "error" in doc:
                raise EnrolError(doc["error"])
            return Enrolment(**doc)
        time.sleep(poll_s)
    job.unlink(missing_ok=True)  # nobody took it: do not leave the secret behind
    raise EnrolError(f"no dock station took the request for slot {slot} within {wait_s:g} s "
                     f"(is 'hotspots dock run --db {db_path}' serving it, with a tracker in it?)")


def run_pending(db_path: str | Path, slot: str, client: DockClient, info: DeviceInfo,
                db: sqlite_utils.Database, clock=time.time) -> bool:
    """Called by the station's slot thread with a tracker answering: run a waiting request
    for ``slot`` if there is one (the result, or the error, goes beside it). True if one ran."""
    job = spool_dir(db_path) / f"{slot}.job"
    if not job.exists():
        return False
    try:
        doc = json.loads(job.read_text())
    finally:
        job.unlink(missing_ok=True)  # taken: the secret leaves the disk now
    try:
        done = enrol_docked(Request(**doc), client, info, db, slot, clock)
        out = asdict(done)
    except (EnrolError, TypeError) as exc:
        out = {"error": str(exc)}
    result = spool_dir(db_path) / f"{slot}.result"
    tmp = result.with_suffix(".tmp")
    tmp.write_text(json.dumps(out))
    os.replace(tmp, result)
    return True
