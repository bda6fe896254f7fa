"""``hotspots fences``: validate, compile, show and publish hot spot fence sets."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import click

# shapely (and numpy) only for the commands that use them: every other hotspots command, the
# gateway's among them, imports this module too.
from fences.geo import DEFAULT_TOLERANCE_M
from hotspots.cli_gateway import account_password, accounts_option, password_option


@click.group()
def fences() -> None:
    """Hot spot fences: GeoJSON in, compact device format out, retained MQTT distribution."""


@fences.command("validate")
@click.argument("geojson", type=click.Path(exists=True, dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
def fences_validate(geojson: str, strict: bool) -> None:
    """Check GEOJSON and list every problem with the feature it is in and what to fix."""
    from fences.validate import FenceError, validate

    try:
        report = validate(Path(geojson))
    except FenceError as exc:
        raise click.ClickException(str(exc)) from exc
    for problem in report.problems:
        click.echo(str(problem))
    failed = report.errors or (strict and report.warnings)
    click.echo(f"{len(report.hotspots)} hot spots, {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings")
    if failed:
        raise click.ClickException(f"{geojson} is not usable" if report.errors
                                   else f"{geojson} has warnings (--strict)")


@fences.command("compile")
@click.argument("geojson", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write the set here (default: GEOJSON with .fences.json).")
@click.option("--binary", is_flag=True, help="Write the raw HSF1 binary instead of JSON.")
@click.option("--tolerance-m", type=float, default=DEFAULT_TOLERANCE_M, show_default=True,
              help="Largest boundary shift simplification may cause (0 keeps every vertex).")
def fences_compile(geojson: str, out: str | None, binary: bool, tolerance_m: float) -> None:
    """Compile GEOJSON to the device format and print its version and size report."""
    from fences.compile import compile_geojson
    from fences.validate import FenceError

    try:
        compiled = compile_geojson(Path(geojson), tolerance_m=tolerance_m)
    except FenceError as exc:
        raise click.ClickException(str(exc)) from exc
    suffix = ".fences.bin" if binary else ".fences.json"
    target = Path(out) if out else Path(geojson).with_suffix(suffix)
    if binary:
        target.write_bytes(compiled.data)
    else:
        target.write_text(compiled.text + "\n")
    click.echo(compiled.size_report())
    click.echo(f"wrote {target}")


@fences.command("show")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def fences_show(path: str) -> None:
    """Show a fence set (GeoJSON, compiled JSON or binary): version, sizes, every hot spot."""
    from tracker.fence import FenceSet

    raw = Path(path).read_bytes()
    try:
        if raw[:4] == b"HSF1":
            fs = FenceSet.from_bytes(raw)
            size = len(raw)
        else:
            doc = json.loads(raw)
            if isinstance(doc, dict) and doc.get("format") == "hsf1":
                fs = FenceSet.from_json(raw)
                size = len(base64.b64decode(doc["data"]))
            else:
                from fences.compile import compile_geojson

                compiled = compile_geojson(doc)
                click.echo(compiled.size_report())
                fs = FenceSet.from_bytes(compiled.data)
                size = len(compiled.data)
    except (ValueError, KeyError) as exc:  # FenceError and corrupt sets are ValueErrors
        raise click.ClickException(f"{path}: {exc}") from exc
    click.echo(f"version {fs.version}: {len(fs)} hot spots, {size} bytes on the device, "
               f"distances computed within {fs.near_m} m")
    for i in range(len(fs)):
        kind = "circle" if fs.radius[i] else "polygon"
        rings = fs.ring[i + 1] - fs.ring[i]
        verts = sum(fs.rstart[r + 1] - fs.rstart[r] for r in range(fs.ring[i], fs.ring[i + 1]))
        click.echo(f"  {fs.ids[i]:<16} {kind:<7} rings {rings:<2} vertices {verts:<4} "
                   f"density {fs.density[i]:<3} {fs.names[i]}")


@fences.command("publish")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--broker", "broker_address", required=True, help="Broker HOST:PORT.")
@click.option("--station", default="main", show_default=True,
              help="Station whose trackers get the set.")
@click.option("--user", default=None,
              help="Broker account (default: fences with --accounts, else none).")
@password_option
@accounts_option("Take the password from the broker's accounts.json.")
def fences_publish(path: str, broker_address: str, station: str, user: str | None,
                   password: str | None, accounts_path: str | None) -> None:
    """Compile PATH (GeoJSON, or an already compiled set) and publish it retained."""
    from fences.publish import load_compiled, publish
    from fences.validate import FenceError
    from gateway.broker import FENCES_USER, GATEWAY_USER, Mosquitto
    from gateway.intake.service import parse_address

    # No HOTSPOTS_MQTT_USER here: that is a tracker's account for ``firmware run``, which may
    # not write the station topics.
    if user == GATEWAY_USER:
        # One login is one session (use_username_as_clientid): logging in as the gateway would
        # end the gateway's connection and discard the fixes queued for it.
        raise click.ClickException(f"do not publish as {GATEWAY_USER!r}: it would take over "
                                   f"the gateway's session; use --user {FENCES_USER}")
    if accounts_path:
        user = user or FENCES_USER
        password = account_password(accounts_path, user)
    elif password is not None and user is None:
        raise click.ClickException("--password needs --user (or use --accounts)")
    try:
        host, port = parse_address(broker_address)
        if user is None:
            # A broker this process started (the demo, tests): use its fences account.
            running = Mosquitto.running_at(broker_address)
            if running is not None:
                user, password = running.fences.username, running.fences.password
        compiled = load_compiled(path)
        sent = publish(compiled, host, port, station, username=user, password=password)
    except (FenceError, ValueError, ConnectionError) as exc:
        hint = ""
        if user is None and "refused the connection" in str(exc):
            hint = "; log in with --accounts (the broker's accounts.json) or --user and --password"
        raise click.ClickException(f"{exc}{hint}") from exc
    click.echo(f"published fence set {sent.version} ({sent.payload_bytes} bytes) retained on "
               f"{sent.topic}")
