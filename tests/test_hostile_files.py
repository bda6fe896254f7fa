"""Hostile files for ``hotspots import`` (issue 16): XML bombs and external entities, deep
nesting, binary garbage, CSV with NUL bytes, huge fields and odd encodings, NMEA noise. A file
that cannot be read is refused with a clear error and stores nothing; in a file that can, every
bad row is an error with its row and reason, every good row is stored, and nothing hangs.

Real files in a temporary directory, imported by the ``hotspots import`` command into SQLite.
"""

from __future__ import annotations

import os
import random
import sqlite3

import pytest
from click.testing import CliRunner

from hotspots.cli import cli

GOOD = "".join(f'<trkpt lat="51.48{i}" lon="-0.001"><time>2026-12-04T10:00:0{i}Z</time>'
               "</trkpt>" for i in range(3))


def gpx(points: str) -> bytes:
    return (f'<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><trkseg>{points}'
            "</trkseg></trk></gpx>").encode()


def run(tmp_path, name: str, data: bytes, *extra: str) -> tuple[int, str, str]:
    path = tmp_path / name
    path.write_bytes(data)
    db = str(tmp_path / "imports.db")
    result = CliRunner().invoke(cli, ["import", str(path), "--device", "CAM-1", "--db", db,
                                      *extra])
    return result.exit_code, result.output, db


def stored(db: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM positions").fetchone()[0]


@pytest.mark.parametrize("name,data", [
    ("laughs.gpx", b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY a "aaaaaaaaaa">'
     + b"".join(b'<!ENTITY %s "%s">' % (bytes([98 + i]), (b"&%s;" % bytes([97 + i])) * 10)
                for i in range(8))
     + b"]><gpx><trk><trkseg>" + GOOD.encode() + b"<name>&i;</name></trkseg></trk></gpx>"),
    ("xxe.kml", b'<?xml version="1.0"?><!DOCTYPE k [<!ENTITY x SYSTEM "file://MARKER">]>'
     b"<kml><Placemark><name>&x;</name></Placemark></kml>"),
    ("param.gpx", b'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY % p SYSTEM "http://127.0.0.1:9/">'
     b" %p;]><gpx/>"),
])
def test_entities_are_never_expanded_nor_fetched(tmp_path, name, data):
    marker = tmp_path / "secret.txt"
    marker.write_text("SECRET-CONTENT")
    code, output, db = run(tmp_path, name, data.replace(b"MARKER", str(marker).encode()))
    assert code == 1 and "DOCTYPE is not accepted" in output, output
    assert "SECRET-CONTENT" not in output
    assert not os.path.exists(db) or stored(db) == 0


def test_garbage_and_deep_nesting_are_refused_or_empty(tmp_path):
    rng = random.Random(16)
    code, output, _ = run(tmp_path, "noise.gpx", bytes(rng.getrandbits(8) for _ in range(50_000)))
    assert code == 1 and "not well-formed XML" in output
    code, output, db = run(tmp_path, "deep.gpx", b"<gpx>" + b"<a>" * 100_000 + b"</a>" * 100_000
                           + b"</gpx>")
    assert code == 0 and "no trkpt" in output and stored(db) == 0


def test_bad_rows_are_errors_and_good_rows_are_kept(tmp_path):
    bad = ('<trkpt lat="nan" lon="inf"><time>x</time></trkpt>'
           '<trkpt lat="1e999" lon="0"><time>9999-99-99</time></trkpt>'
           f'<trkpt lat="51" lon="0"><time>{"1" * 5000}</time></trkpt>'
           + '<trkpt lat="x" lon="0"/>' * 5000)
    code, output, db = run(tmp_path, "mixed.gpx", gpx(bad + GOOD))
    assert code == 0, output
    assert "5006 rows, 3 stored" in output and "5003 errors" in output
    assert output.count("mixed.gpx:1: ") == 100 and "and 4903 more errors" in output
    assert stored(db) == 3


def test_a_row_dated_year_one_gives_no_one_a_device_for_two_thousand_years(tmp_path):
    points = '<trkpt lat="51" lon="0"><time>0001-01-01T00:00:00Z</time></trkpt>' + GOOD
    code, output, db = run(tmp_path, "year1.gpx", gpx(points), "--collar", "PC1")
    assert code == 0, output
    with sqlite3.connect(db) as conn:
        spans = conn.execute("SELECT start_ts, end_ts FROM assignments").fetchall()
    assert spans and all(start >= 315_964_800 for start, _end in spans), spans
    assert "fixes from 2026-12-04T10:00:00Z" in output


def test_csv_with_nul_bytes_huge_fields_and_a_bom(tmp_path):
    data = (b"\xef\xbb\xbftime,lat,lon\n2026-12-04T10:00:00Z,51.5,-0.1\n\x00\x00,\x00,1\n"
            b"2026-12-04T10:00:01Z," + b"5" * 200_000 + b",1\n"
            b"2026-12-04T10:00:02Z,nan,inf\n2026-12-04T10:00:03Z,51.5,-0.1\n")
    code, output, db = run(tmp_path, "nul.csv", data)
    assert code == 0, output
    assert "5 rows, 2 stored" in output and "3 errors" in output and stored(db) == 2
    # Excel's "Unicode Text": UTF-16 with a byte order mark.
    code, output, _ = run(tmp_path, "utf16.csv",
                          "time,lat,lon\n2026-12-04T10:00:09Z,51.5,-0.1\n".encode("utf-16"))
    assert code == 0 and "1 rows, 1 stored" in output, output


def test_a_stray_quote_does_not_swallow_the_rows_after_it(tmp_path):
    data = (b'time,lat,lon,note\n2026-12-04T10:00:00Z,51.5,-0.1,ok\n'
            b'2026-12-04T10:00:01Z,51.5,-0.1,"stray quote\n'
            + b"".join(b"2026-12-04T10:00:%02dZ,51.5,-0.1,ok\n" % i for i in range(2, 12))
            + b'2026-12-04T10:00:12Z,51.5,-0.1,"a note\non two lines"\n')
    code, output, db = run(tmp_path, "quote.csv", data)
    assert code == 0, output
    assert "quote.csv:3: bad_row: a quote" in output
    # One row is one line: a note over two lines is two bad rows, said so.
    assert "quote.csv:14: bad_row: a quote" in output and "quote.csv:15: bad_time" in output
    assert "14 rows, 11 stored" in output and "3 errors" in output and stored(db) == 11


def test_nmea_noise(tmp_path):
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(100_000))
    data = (noise + b"\n$GPGGA," + b"," * 50_000 + b"*00\n" + b"$" * 50_000 + b"\n"
            + b"\x00" * 1000 + b"\n")
    code, output, db = run(tmp_path, "noise.nmea", data)
    assert code == 0, output
    assert " 0 stored" in output and "errors" in output and stored(db) == 0
