"""``hotspots nmea``: run the firmware NMEA parser over a file, on CPython or MicroPython.

``hotspots nmea parse FILE`` prints one JSON line per GNSS epoch and a last line with the counts
of sentences by type and of rejections by reason. With ``--micropython`` the very same parser
runs on the MicroPython unix port, reading the file the way a board reads its UART (``readinto``
a preallocated buffer), and the output is byte-for-byte what CPython prints.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import click

from simulators import tracker_process

#: The JSON formatting, shared as source so that CPython and MicroPython run the same code.
#: Integer arithmetic only: micro-degrees print as exact decimal degrees; unknown is null, and
#: an invalid epoch never prints a position.
RECORD_SOURCE = '''
def _dec(value, places, unknown):
    if value == unknown:
        return "null"
    sign = "-" if value < 0 else ""
    value = -value if value < 0 else value
    scale = 10 ** places
    return sign + str(value // scale) + "." + ("%0" + str(places) + "d") % (value % scale)


def record(fix):
    valid = bool(fix.valid)
    return ('{"t": %s, "ms": %d, "valid": %s, "lat": %s, "lon": %s, "speed_mps": %s, '
            '"course": %s, "alt_m": %s, "fix": %d, "sats": %d, "hdop": %s, "acc_m": %s}' % (
                str(fix.t) if fix.t else "null", fix.ms, "true" if valid else "false",
                _dec(fix.lat_e6, 6, None) if valid else "null",
                _dec(fix.lon_e6, 6, None) if valid else "null",
                _dec(fix.speed_cmps, 2, -1), _dec(fix.course_cdeg, 2, -1),
                _dec(fix.alt_cm, 2, -1000000), fix.quality, fix.sats,
                _dec(fix.hdop_x100, 2, -1), _dec(fix.acc_cm, 2, -1)))


def counts(stats):
    parts = []
    for group in ("sentences", "rejected"):
        items = stats[group]
        inner = ", ".join('"%s": %d' % (k, items[k]) for k in sorted(items))
        parts.append('"%s": {%s}' % (group, inner))
    return "{" + ", ".join(parts) + "}"
'''

_MICROPYTHON_MAIN = '''
import sys
from tracker.nmea import NmeaParser

def emit(fix):
    print(record(fix))

parser = NmeaParser(emit)
buf = bytearray(512)
with open(sys.argv[1], "rb") as f:
    while True:
        n = f.readinto(buf)
        if not n:
            break
        parser.feed(buf, n)
parser.flush()
print(counts(parser.stats()))
'''

_shared: dict = {}
exec(RECORD_SOURCE, _shared)  # noqa: S102 - our own constant source, see RECORD_SOURCE


def parse_file(path: str | Path, chunk_size: int = 512) -> Iterator[str]:
    """JSON lines for ``path`` parsed on CPython: one per epoch, then the counts."""
    from tracker.nmea import NmeaParser

    out: list[str] = []
    parser = NmeaParser(lambda fix: out.append(_shared["record"](fix)))
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            parser.feed(chunk)
            yield from out
            out.clear()
    parser.flush()
    yield from out
    yield _shared["counts"](parser.stats())


def parse_file_micropython(path: str | Path, timeout_s: float = 600) -> Iterator[str]:
    """The same lines from the parser running on the MicroPython unix port.

    :raises tracker_process.FirmwareError: if MicroPython is missing or the run fails.
    """
    binary = tracker_process.find_micropython()
    if binary is None:
        raise tracker_process.FirmwareError(tracker_process.MICROPYTHON_MISSING)
    result = subprocess.run(
        [binary, "-c", RECORD_SOURCE + _MICROPYTHON_MAIN, str(path)], capture_output=True,
        text=True, env=tracker_process.micropython_env(), timeout=timeout_s)
    if result.returncode != 0:
        raise tracker_process.FirmwareError(
            f"micropython failed ({result.returncode}): {result.stderr.strip()}")
    yield from result.stdout.splitlines()


@click.group()
def nmea() -> None:
    """The firmware's NMEA parser, run on this machine."""


@nmea.command("parse")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--micropython", "on_micropython", is_flag=True,
              help="Run the parser on the MicroPython unix port instead of CPython.")
def parse(file: str, on_micropython: bool) -> None:
    """One JSON line per GNSS epoch in FILE, then the counts of sentences and rejections."""
    try:
        lines = parse_file_micropython(file) if on_micropython else parse_file(file)
        for line in lines:
            click.echo(line)
    except tracker_process.FirmwareError as exc:
        raise click.ClickException(str(exc)) from exc
