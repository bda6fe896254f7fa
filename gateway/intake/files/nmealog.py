"""NMEA 0183 logs (a receiver's output saved to a file) through the firmware's own parser.

The log is fed line by line to :class:`tracker.nmea.NmeaParser`, the code the tracker runs, so
an imported log and a live tracker turn the same sentences into the same fixes (checksums,
epochs, the date carried over midnight, accuracy from GST or HDOP). A line the parser rejects
is a row error with the parser's reason (``checksum``, ``no_checksum``, ``bad_field``, ...); an
epoch without a valid position (the receiver still searching) is counted as ``no_fix``. The
row of a fix is the range of lines its epoch was assembled from (``log.nmea:12-18``).
"""

from __future__ import annotations

from gateway.intake.files import SOURCE, Decoded, Options, RowError
from gateway.intake.observation import LOCATION, Observation


def decode(data: bytes, name: str, device_id: str, options: Options) -> Decoded:
    """Observations and row errors of an NMEA log (see the module docstring)."""
    from tracker.nmea import NmeaParser

    out: list[Observation | RowError] = []
    span = {"first": 1, "line": 0}

    def on_fix(fix) -> None:
        line = span["line"]
        origin = f"{name}:{span['first']}-{line}" if span["first"] < line else f"{name}:{line}"
        span["first"] = line
        if not fix.valid:
            out.append(RowError(origin, "no_fix", "an epoch without a valid position"))
            return
        out.append(Observation(
            kind=LOCATION, source=SOURCE, device_id=device_id, origin=origin, tst=fix.t,
            lat=fix.lat_e6 / 1e6, lon=fix.lon_e6 / 1e6,
            acc_m=None if fix.acc_cm < 0 else fix.acc_cm / 100,
            speed_mps=None if fix.speed_cmps < 0 else fix.speed_cmps / 100,
            course_deg=None if fix.course_cdeg < 0 else fix.course_cdeg / 100,
            alt_m=None if fix.alt_cm <= -1000000 else fix.alt_cm / 100,
            extra={"sats": fix.sats, "hdop": None if fix.hdop_x100 < 0
                   else fix.hdop_x100 / 100}))

    parser = NmeaParser(on_fix)
    before: dict[str, int] = {}
    for number, line in enumerate(data.splitlines(), 1):
        span["line"] = number
        if not line.strip():
            continue
        parser.feed_line(line)
        rejected = parser.stats()["rejected"]
        for reason, count in rejected.items():
            if count > before.get(reason, 0):
                out.append(RowError(f"{name}:{number}", reason,
                                    f"NMEA line rejected ({reason}): {_show(line)}"))
        before = rejected
    parser.flush()
    if not any(isinstance(item, Observation) for item in out) and not parser.stats()[
            "sentences"]:
        out.append(RowError(f"{name}:1", "empty", "no NMEA sentence in the file"))
    return iter(out)


def _show(line: bytes) -> str:
    text = line.decode("ascii", "replace").strip()
    return text if len(text) <= 90 else text[:87] + "..."
