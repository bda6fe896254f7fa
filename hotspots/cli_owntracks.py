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
