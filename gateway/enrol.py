"""Enrolling a tracker at the station: broker account, settings written through the dock, fleet.

``hotspots enrol DEVICE --port PORT --broker-dir DIR ...`` does, in one step, what force IT
would otherwise do by hand:

1. asks the tracker on the dock's serial port who it is (``ID``): it must be there and answer;
2. creates the device's broker account (:func:`gateway.broker.provision_account`: the
   generated password, the per-device ACL, live at once on a running broker);
3. writes the tracker's settings — device id, station, broker, its credentials, the broker's CA,
   and the link (APN, or Wi-Fi network and password) — into its ``config.json`` through the dock
   (:meth:`gateway.dock.DockClient.provision`); the tracker uses them from its next boot;
4. registers the device in the fleet, so the gateway stores what it sends, and records an
   ``enrolled`` dock event.

Credentials (the broker password, the Wi-Fi password) go only into the frames to the device:
they are never printed, logged, stored in the database or put in an exception message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway import identity
from gateway.broker import BrokerError, provision_account
from gateway.dock import DockClient, DockError
from gateway.schema import open_db

SECRET_KEYS = frozenset({"password", "wifi_password", "apn_password"})


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


def enrol(device_id: str, port: str, broker_dir: str | Path, broker_host: str,
          broker_port: int, db_path: str | Path, *, station: str = "main",
          link: dict[str, str] | None = None, ca_path: str | Path | None = None,
          report_s: int | None = None, timeout_s: float = 1.0,
          clock=time.time) -> Enrolment:
    """Enrol the tracker on ``port`` as ``device_id`` (see the module docstring)."""
    client = DockClient(port, timeout_s=timeout_s)
    try:
        try:
            client.open()
            info = client.identify()
        except (DockError, OSError) as exc:
            raise EnrolError(f"no tracker answers on {port}: {exc}") from None
        broker_dir = Path(broker_dir)
        if not (broker_dir / "accounts.json").exists():
            raise EnrolError(f"{broker_dir} is not a broker folder (no accounts.json); "
                             "start one with: hotspots broker --dir DIR")
        try:
            from gateway.broker import Mosquitto

            created = device_id not in Mosquitto(workdir=broker_dir).accounts
            account = provision_account(broker_dir, device_id)
        except BrokerError as exc:
            raise EnrolError(f"broker account for {device_id}: {exc}") from None
        settings: dict[str, str | int] = {
            "device_id": device_id, "station": station, "broker_host": broker_host,
            "broker_port": broker_port, "user": account.username,
            "password": account.password,
        }
        settings.update(link or {})
        if report_s is not None:
            settings["report_s"] = report_s
        ca_pem = Path(ca_path).read_text() if ca_path else None
        try:
            client.provision(settings, ca_pem)
        except DockError as exc:  # the device's reasons name keys, never values
            raise EnrolError(f"writing the settings to {info.device_id} on {port}: {exc}") \
                from None
    finally:
        client.close()
    db = open_db(str(db_path))
    try:
        try:
            identity.register_device(db, device_id, at=int(clock()))
        except identity.IdentityError as exc:
            raise EnrolError(str(exc)) from None
        names = sorted(settings) + (["ca"] if ca_pem else [])
        with db.conn:
            db.execute("INSERT INTO dock_events (ts, slot, device_id, event, batt, detail)"
                       " VALUES (?, ?, ?, 'enrolled', ?, ?)",
                       (int(clock()), port, device_id, info.batt,
                        f"was {info.device_id}; wrote " + ", ".join(names)))
    finally:
        db.close()
    return Enrolment(device_id, info.device_id, port, names, bool(ca_pem), created)
