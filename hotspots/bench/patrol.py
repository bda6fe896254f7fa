"""``hotspots bench patrol``: the accuracy-and-energy scoreboard of the sampling strategies.

The same seeded shifts (:func:`simulators.scenario.make_scenario`: several officers, 10-16
minute visits, pass-throughs, GNSS and cellular dead spots, noisy GNSS) run under the five
strategies of :mod:`simulators.strategies`, each charged by :mod:`simulators.energy` for what
it asked the hardware to do. Prints one line per strategy and the issue's targets for the
adaptive policy (``--json`` for the figures).
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
def command(officers: int, hours: float, seed: int, n_hotspots: int, as_json: bool) -> None:
    """Energy per shift, battery life and dwell accuracy of five sampling strategies."""
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
