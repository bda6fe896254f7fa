"""The floor the NMEA benchmark measures does the work it claims: checksums and field reads."""

from __future__ import annotations

import pytest

from hotspots.bench.nmea import floor
from simulators import nmea_out


def test_the_floor_reads_every_sentence_of_the_stream():
    lines = list(nmea_out.m8_stream(seconds=30))
    assert floor(b"".join(lines)) == len(lines)


def test_the_floor_checks_checksums():
    line = next(iter(nmea_out.m8_stream(seconds=1)))
    star = line.index(b"*")
    wrong = b"%02X" % (int(line[star + 1:star + 3], 16) ^ 1)
    with pytest.raises(ValueError):
        floor(line[:star + 1] + wrong + b"\r\n")
