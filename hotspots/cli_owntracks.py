"""``hotspots owntracks``: settings for phones running the OwnTracks app."""

from __future__ import annotations

from pathlib import Path

import click

from hotspots.cli_gateway import open_database


@click.group()
def owntracks() -> None:
    """Phones running the OwnTracks app (encryption keys)."""


@owntracks.command("key")
@click.argument("device")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--key-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="File holding the phone's encryptionKey (first line). Without it the key is"
                   " asked for, hidden.")
@click.option("--remove", is_flag=True, help="Forget the device's key.")
def key(device: str, db_path: str, key_file: str | None, remove: bool) -> None:
    """Set the encryptionKey of phone DEVICE (its broker account), so that its encrypted
    messages (``_type: encrypted``) are opened; without one they are quarantined."""
    from gateway.intake import owntracks_crypto

    db = open_database(db_path)
    if remove:
        if not owntracks_crypto.remove_key(db, device):
            raise click.ClickException(f"{device} has no key")
        click.echo(f"{device}: key removed; its encrypted messages will be quarantined")
        return
    if key_file:
        lines = Path(key_file).read_text(encoding="utf-8").splitlines()
        secret = lines[0] if lines else ""
    else:
        secret = click.prompt("encryptionKey", hide_input=True, confirmation_prompt=True)
    try:
        owntracks_crypto.set_key(db, device, secret)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    note = " (the apps use only the first 32 bytes)" if len(secret.encode()) > 32 else ""
    click.echo(f"{device}: key set{note}")


@owntracks.command()
@click.option("--broker", "broker_address", required=True,
              help="HOST:PORT of the trackers' broker.")
@click.option("--accounts", "accounts_path", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="The broker's accounts.json.")
@click.option("--station", required=True,
              help="The bridge's account (role recorder: hotspots broker --recorder STATION);"
                   " the Recorder lists it as the user owning the trackers.")
@click.option("--to", "to_address", default=None,
              help="HOST:PORT of the Recorder's broker (default: the same broker).")
@click.option("--to-user", default=None, help="Login on the Recorder's broker.")
@click.option("--to-password-file", type=click.Path(exists=True, dir_okay=False), default=None)
def bridge(broker_address: str, accounts_path: str, station: str, to_address: str | None,
           to_user: str | None, to_password_file: str | None) -> None:
    """Republish the trackers as OwnTracks devices owntracks/STATION/<device>, with an lwt,
    for the OwnTracks Recorder and apps; runs until Ctrl-C."""
    import threading

    from gateway.intake.service import parse_address
    from gateway.recorder_bridge import RecorderBridge
    from hotspots.cli_gateway import account_password, stop_on_signals

    try:
        host, port = parse_address(broker_address)
        to = None
        if to_address:
            if not to_user or not to_password_file:
                raise click.UsageError("--to needs --to-user and --to-password-file")
            to_host, to_port = parse_address(to_address)
            secret = Path(to_password_file).read_text().splitlines()[0]
            to = (to_host, to_port, to_user, secret)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    bridge_ = RecorderBridge(host, port, station, account_password(accounts_path, station), to)
    stop = threading.Event()
    stop_on_signals(stop)
    click.echo(f"bridging hotspots/dev/+ to owntracks/{station}/<device>", err=True)
    bridge_.run(stop)
    click.echo(f"stopped: republished {bridge_.counts['republished']}", err=True)

