"""Position files into observations: GPX, KML, NMEA logs and CSV exports.

Body-worn cameras, phones without the app, hand-held GPS units and other forces' systems hand
over tracks as files. Each format has one decoder module here that turns a file's bytes into
:class:`~gateway.intake.observation.Observation` objects (source ``import``, origin
``<file name>:<row>``) and, for every row it cannot read, a :class:`RowError` saying which row and
why; a bad row never stops the good rows. :mod:`gateway.intake.files.importer` hands them to the
intake (``hotspots import``).

=========  ====================================================================================
``gpx``    GPX 1.0/1.1 track points (``trkpt``) with a ``time`` (:mod:`.gpx`)
``kml``    KML 2.2 ``gx:Track`` (Google Earth) and ``Placemark`` with a ``TimeStamp`` (:mod:`.kml`)
``nmea``   a receiver's NMEA 0183 log, parsed by the firmware's own parser (:mod:`.nmealog`)
``csv``    one fix per row, columns found by name or given as a mapping (:mod:`.csvtrack`)
=========  ====================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.intake.observation import Observation

#: The observation source of every imported fix (its filter rules: gateway.intake.filters).
SOURCE = "import"
FORMATS = ("gpx", "kml", "nmea", "csv")
#: Larger files are refused whole: a day of 1 Hz fixes in GPX is about 10 MB.
MAX_FILE_BYTES = 200 * 1024 * 1024


class FileImportError(ValueError):
    """A file that cannot be imported at all (unknown format, not XML, no header ...)."""


@dataclass(frozen=True)
class RowError:
    """One row (track point, placemark, sentence, CSV line) that could not be read.

    :param origin: ``<file name>:<row>`` as in an observation's origin
    :param reason: a short counter key (``bad_time``, ``bad_coordinate``, ``no_time`` ...)
    :param detail: what is wrong, in words a person can act on
    """

    origin: str
    reason: str
    detail: str


Decoded = Iterator[Observation | RowError]

#: Row "errors" that are not errors: rows that are not fixes by nature, counted as skipped.
SKIPPED = ("no_fix", "not_a_fix")


@dataclass(frozen=True)
class Options:
    """How to read a file.

    :param timezone: IANA zone (``Europe/London``) for times written without a zone (CSV, KML);
        without it such a row is an error, never guessed
    :param columns: CSV column mapping, field -> header (see :mod:`.csvtrack`)
    :param delimiter: CSV delimiter, sniffed from the header when None
    """

    timezone: str | None = None
    columns: dict[str, str] | None = None
    delimiter: str | None = None


def detect_format(path: str | Path, head: bytes) -> str:
    """The format of ``path``: its extension, else a look at its first bytes.

    :raises FileImportError: when neither says
    """
    ext = Path(path).suffix.lower().lstrip(".")
    aliases = {"gpx": "gpx", "kml": "kml", "nmea": "nmea", "nma": "nmea", "log": None,
               "txt": None, "csv": "csv", "tsv": "csv"}
    fmt = aliases.get(ext)
    if fmt:
        return fmt
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
    if text.startswith(b"<"):
        if b"<gpx" in text:
            return "gpx"
        if b"<kml" in text:
            return "kml"
    if text.startswith(b"$") or b"\n$G" in text:
        return "nmea"
    if b"," in text.split(b"\n", 1)[0] or b";" in text.split(b"\n", 1)[0]:
        return "csv"
    raise FileImportError(f"{path}: cannot tell the format from the name or the content;"
                          f" give --format ({', '.join(FORMATS)})")


def decode(data: bytes, name: str, device_id: str, fmt: str,
           options: Options | None = None) -> Decoded:
    """Observations and row errors of one file's bytes, in file order.

    :param name: the file's name, for origins (``name:row``)
    :raises FileImportError: for a file that cannot be read at all
    """
    options = options or Options()
    if fmt == "gpx":
        from gateway.intake.files import gpx as module
    elif fmt == "kml":
        from gateway.intake.files import kml as module
    elif fmt == "nmea":
        from gateway.intake.files import nmealog as module
    elif fmt == "csv":
        from gateway.intake.files import csvtrack as module
    else:
        raise FileImportError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return module.decode(data, name, device_id, options)
