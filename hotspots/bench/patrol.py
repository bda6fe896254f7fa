"""``hotspots bench patrol``: the accuracy-and-energy scoreboard of the sampling strategies.

The same seeded shifts (:func:`simulators.scenario.make_scenario`: several officers, 10-16
minute visits, pass-throughs, GNSS and cellular dead spots, noisy GNSS) run under the five
strategies of :mod:`simulators.strategies`, each charged by :mod:`simulators.energy` for what
it asked the hardware to do. Prints one line per strategy and the issue's targets for the
adaptive policy (``--json`` for the figures).

``--firmware`` instead runs the real firmware on the MicroPython unix port over the demo walk
(simulated u-blox module, simulated SIM7080G, a byte-counting TCP proxy, Mosquitto), its clock
and the simulators' ``--time-scale`` times faster than real time, prices its own energy counters
and sets them beside the model's policy over the same walk, with the bytes over the link per
shift against the bytes of the messages (:mod:`simulators.firmware_energy`).
"""

from __future__ import annotations

import json
import time

import click


@click.command()
@click.option("--officers", type=int, default=6, show_default=True)
@click.option("--hours", type=float, default=10.0, show_default=True, help="Shift length.")
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--hotspots", "n_hotspots", type=int, default=14, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--firmware", is_flag=True,
              help="Run the real firmware (MicroPython unix port, simulated GNSS module and "
                   "modem) over the demo walk and price its own counters beside the model.")
@click.option("--minutes", type=float, default=20.0, show_default=True,
              help="With --firmware: minutes of the walk to play (the whole walk is 20).")
@click.option("--time-scale", type=click.IntRange(1, 20), default=4, show_default=True,
              help="With --firmware: the firmware's clock and the simulators run this many "
                   "times faster than real time (1: real time).")
def command(officers: int, hours: float, seed: int, n_hotspots: int, as_json: bool,
            firmware: bool, minutes: float, time_scale: int) -> None:
    """Energy per shift, battery life and dwell accuracy of five sampling strategies
    (``--firmware``: the firmware's counted energy beside the model's)."""
    if firmware:
        _firmware(minutes * 60, seed, as_json, time_scale)
        return
    from simulators.scenario import make_scenario
    from simulators.strategies import HEADER, format_score, scoreboard, targets

    began = time.perf_counter()
    scenario = make_scenario(officers, hours, seed, n_hotspots)
    board = scoreboard(scenario)
    goals = targets(board)
    elapsed = time.perf_counter() - began
    if as_json:
        click.echo(json.dumps({
            "officers": officers, "hours": hours, "seed": seed, "hotspots": n_hotspots,
            "strategies": {k: v.as_dict() for k, v in board.items()},
            "targets": {k: {"met": met, "measured": m} for k, (met, m) in goals.items()},
            "meets_targets": all(met for met, _ in goals.values()),
            "wall_s": round(elapsed, 1),
        }))
        return
    click.echo(f"patrol: {officers} officers x {hours:g} h, {n_hotspots} hot spots, seed {seed}"
               f" ({elapsed:.1f} s)")
    click.echo(HEADER)
    for s in board.values():
        click.echo(format_score(s))
    a = board["policy"]
    click.echo(f"policy energy split per shift: GNSS {a.gnss_mah:.1f} mAh, modem"
               f" {a.modem_mah:.1f} mAh, MCU {a.mcu_mah:.1f} mAh")
    click.echo("targets: " + "; ".join(f"{k}: {m} ({'met' if ok else 'NOT met'})"
                                       for k, (ok, m) in goals.items()))


def _firmware(seconds: float, seed: int, as_json: bool, time_scale: int) -> None:
    import tempfile

    from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
    from simulators.firmware_energy import (
        FirmwareRunError,
        compare,
        firmware_energy,
        model_energy,
        run_firmware,
    )

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hotspots-energy-") as work:
        try:
            run = run_firmware(SAMPLE_ROUTE, SAMPLE_FENCES, seconds, work, seed=seed,
                               time_scale=time_scale)
        except FirmwareRunError as exc:
            raise click.ClickException(str(exc)) from exc
    fw = firmware_energy(run)
    model, model_log = model_energy(SAMPLE_ROUTE, SAMPLE_FENCES, run.duration_s, seed=seed)
    report = compare(run, fw, model, model_log)
    report["wall_s"] = round(time.perf_counter() - began, 1)
    if as_json:
        click.echo(json.dumps(report))
        return
    for line in report["lines"]:
        click.echo(line)
    click.echo(f"({report['wall_s']:.0f} s wall)")
