"""Bytes fed to the firmware's NMEA parser: the portable tests' helper, shared with CPython.

Portable (plain MicroPython): ``test_nmea.py`` beside it imports it as it imports ``scratch``;
``tests/test_nmea_reference.py`` (CPython only) puts this folder on ``sys.path`` first.
"""

from tracker.nmea import NmeaParser


def parse(data, chunk=0, parser_class=NmeaParser):
    """Feed ``data`` (whole, or ``chunk`` bytes at a time), flush; returns (fixes, parser).

    ``parser_class``: another build of the parser to feed (CPython's comparison tests).
    """
    fixes = []
    p = parser_class(lambda fix: fixes.append(fix.copy()))
    if chunk:
        for i in range(0, len(data), chunk):
            p.feed(data[i : i + chunk])
    else:
        p.feed(data)
    p.flush()
    return fixes, p


def counted(p):
    """Sentences the parser accounted for: taken, or rejected for a reason (noise aside)."""
    stats = p.stats()
    return sum(stats["sentences"].values()) + sum(
        n for reason, n in stats["rejected"].items() if reason != "noise")
