"""``hotspots airwave``: Airwave (TETRA) radio reports — decode, read a radio, assign, list.

Thin click commands over :mod:`gateway.intake.airwave`; decoding errors become ``ClickException``
with
the reason, so a bad hex string says what is wrong with it instead of a traceback.
"""

from __future__ import annotations

import json
import threading

import click

from hotspots.cli_gateway import interrupt_on_signals, open_database


@click.group()
def airwave() -> None:
    """Airwave (TETRA) radios: LIP decoding, the serial reader, ISSI assignments."""


@airwave.command("decode")
@click.argument("hex_text", metavar="HEX")
@click.option("--no-pid", is_flag=True,
              help="HEX is the bare LIP PDU (no 0A protocol identifier in front).")
def decode(hex_text: str, no_pid: bool) -> None:
    """Decode one LIP location report given in hex and print it as JSON."""
    from gateway.intake.airwave.lip import LipError, decode_hex

    try:
        report = decode_hex(hex_text, with_pid=not no_pid)
    except LipError as exc:
        raise click.ClickException(f"cannot decode ({exc.reason}): {exc.detail}") from exc
    click.echo(json.dumps(report.as_dict(), indent=2))


@airwave.command("read")
@click.option("--port", required=True, help="Serial device or pyserial URL of the radio.")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False),
              help="SQLite database (created if missing).")
@click.option("--baud", type=int, default=38400, show_default=True)
@click.option("--accept-unknown", is_flag=True,
              help="Store positions of radios nobody registered (trials); otherwise they are"
                   " quarantined until `hotspots register issi:<ISSI>` or `airwave assign`.")
def read(port: str, db_path: str, baud: int, accept_unknown: bool) -> None:
    """Read location reports from a radio into the database, until interrupted."""
    from gateway.intake.airwave.reader import run_airwave

    stop = threading.Event()
    interrupt_on_signals()
    click.echo(f"airwave: {port} -> {db_path}", err=True)
    result: dict = {}
    worker = threading.Thread(
        target=lambda: result.update(run_airwave(port, db_path, stop, baudrate=baud,
                                                 accept_unknown=accept_unknown)),
        daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.5)
    except KeyboardInterrupt:
        stop.set()
        worker.join(5)
    click.echo(json.dumps(dict(sorted(result.items()))), err=True)


@airwave.command("assign")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--issi", type=int, required=True, help="The radio's ISSI.")
@click.option("--collar", required=True, help="Collar number of the officer carrying it.")
@click.option("--from", "start_ts", type=int, required=True, help="From, UTC epoch s.")
@click.option("--to", "end_ts", type=int, default=None,
              help="Until, UTC epoch s (if omitted: until the stretch it falls in ended, or"
                   " open); never past the radio's next recorded assignment.")
def assign(db_path: str, issi: int, collar: str, start_ts: int, end_ts: int | None) -> None:
    """Record which officer carries a radio from when (ends the radio's running assignment)."""
    from gateway.fleet.attribution import history
    from gateway.fleet.identity import IdentityError
    from gateway.intake.airwave.store import assign_radio, radio_device_id

    if end_ts is not None and end_ts <= start_ts:
        raise click.ClickException("--to must be after --from")
    db = open_database(db_path, create=True)
    try:
        recorded = assign_radio(db, issi, collar, start_ts, end_ts)
    except IdentityError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{radio_device_id(issi)} -> {collar} from {start_ts}")
    if recorded.end_ts != end_ts:
        # The radio's existing history decided the end (identity's rules): say which part, so
        # a shorter or closed assignment does not surprise whoever typed the command.
        asked = "open" if end_ts is None else end_ts
        nxt = [a for a in history(db, recorded.device_id) if a.start_ts == recorded.end_ts]
        why = (f"{nxt[0].collar}'s assignment starts there" if nxt else
               "the stretch it was recorded in ended there")
        click.echo(f"note: recorded until {recorded.end_ts}, not {asked}: {why}", err=True)


@airwave.command("positions")
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False))
@click.option("--all", "include_all", is_flag=True,
              help="Every report (no-fix, rejected, logged SDS too), not only positions.")
def positions(db_path: str, include_all: bool) -> None:
    """Radio reports as JSON lines: officer, fix time and its basis, position, error, flags."""
    from gateway.intake.airwave.store import radio_rows

    for row in radio_rows(open_database(db_path), include_all):
        click.echo(json.dumps(row))


@click.command("radio")
@click.option("--route", type=click.Path(exists=True, dir_okay=False), required=True,
              help="GeoJSON LineString the officers walk.")
@click.option("--officers", type=int, default=3, show_default=True,
              help="How many officers (radios), staggered 90 s apart, alternately reversed.")
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Write the +CTSDSR frames to this file (default: a pseudo-terminal, path "
                   "printed).")
@click.option("--truth", type=click.Path(dir_okay=False), default=None,
              help="Ground-truth JSON lines (default: beside --out, or ./radio-truth.jsonl).")
@click.option("--speedup", type=float, default=1.0, show_default=True,
              help="Play simulated time this much faster than real time.")
@click.option("--start", type=float, default=None, help="Start time, epoch s (default: now).")
@click.option("--seed", type=int, default=1, show_default=True)
def sim_radio(route: str, officers: int, out: str | None, truth: str | None, speedup: float,
              start: float | None, seed: int) -> None:
    """An Airwave radio answering PEI set-up and passing on LIP reports of walking officers."""
    import sys
    import time

    from simulators import radio
    from simulators.walk import RouteError

    if officers < 1:
        raise click.ClickException("--officers must be at least 1")
    if speedup <= 0:
        raise click.ClickException("--speedup must be positive")
    start = float(int(time.time())) if start is None else start
    try:
        scenario = radio.default_scenario(route, start, officers=officers, seed=seed)
    except RouteError as exc:
        raise click.ClickException(str(exc)) from exc
    reports = radio.plan_reports(scenario)
    truth = truth or (f"{out}.truth.jsonl" if out else "radio-truth.jsonl")
    if out:
        with open(out, "wb") as sink:
            count = radio.write_frames(reports, sink, scenario.gateway_issi)
        radio.write_truth(truth, scenario, reports)
        click.echo(f"wrote {count} of {len(reports)} reports to {out}; ground truth in {truth}")
        return
    interrupt_on_signals()
    terminal = radio.RadioTerminal(reports, speedup, start=start,
                                   gateway_issi=scenario.gateway_issi)
    click.echo(terminal.path)
    sys.stdout.flush()
    try:
        terminal.run(wait_for_setup_s=3600)
    except KeyboardInterrupt:
        pass
    finally:
        radio.write_truth(truth, scenario, terminal.reports)
        terminal.close()
    sent = sum(r.fate == "sent" for r in terminal.reports)
    click.echo(f"passed on {sent} of {len(reports)} reports; ground truth in {truth}", err=True)
