"""``hotspots sim modem``: a SIM7080G-like cellular modem on a pseudo-terminal.

Thin click wrapper over :mod:`simulators.modem`.
"""

from __future__ import annotations

import sys
import time

import click

from hotspots.cli_gateway import interrupt_on_signals, name_values


@click.command("modem")
@click.option("--register-delay-s", type=float, default=2.0, show_default=True,
              help="Seconds from AT+CFUN=1 until the network registers the modem.")
@click.option("--deny", is_flag=True, help="The network refuses registration (+CEREG: 0,3).")
@click.option("--dns", "dns", multiple=True, metavar="NAME=ADDRESS",
              help="Answer AT+CDNSGIP for NAME with ADDRESS (repeatable); others: this host's "
                   "resolver.")
@click.option("--stats", "stats_path", type=click.Path(dir_okay=False), default=None,
              help="Keep the counters (wake-ups, sleeps, radio-on seconds, bytes each way) in "
                   "this JSON file.")
@click.option("--psm-time-scale", type=float, default=1.0, show_default=True,
              help="Divide the PSM active time by this (sleep sooner in a test).")
def sim_modem(register_delay_s: float, deny: bool, dns: tuple[str, ...],
              stats_path: str | None, psm_time_scale: float) -> None:
    """A SIM7080G-like modem on a pseudo-terminal (path printed); its sockets are real TCP.

    Give the path to the firmware: hotspots firmware run --modem PATH ...
    """
    from simulators.modem import SimulatedModem

    names = name_values(dns, "--dns", "ADDRESS")
    interrupt_on_signals()
    modem = SimulatedModem(register_delay_s=register_delay_s, deny=deny, dns=names,
                           stats_path=stats_path, psm_time_scale=psm_time_scale).start()
    click.echo(modem.path)
    sys.stdout.flush()
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        modem.stop()
        c = modem.counters
        click.echo(f"modem: {c.at_commands} AT commands, {c.wake_ups} wake-ups, {c.sleeps} "
                   f"sleeps, {c.psm_entries} PSM entries, radio on {c.radio_on_s:.0f} s, "
                   f"{c.bytes_up} bytes up, {c.bytes_down} down", err=True)
