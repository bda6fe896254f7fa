"""Location Information Protocol (ETSI TS 100 392-18-1): bit-exact short and long location reports.

A TETRA radio reports its position in an SDS type-4 message whose protocol identifier is
``0x0A`` (LIP). The PDU after that byte is bit-packed, most significant bit first:

Short location report (PDU type ``00``, 76 bits)::

    PDU type 2 | time elapsed 2 | longitude 25 | latitude 24 | position error 3 |
    horizontal velocity 7 | direction of travel 4 | type of additional data 1 |
    reason for sending or user-defined data 8

Long location report (PDU type ``01``, extension ``0011``)::

    PDU type 2 | PDU type extension 4 | time type 2 | [time elapsed 2 | time of position 22] |
    location shape 4 | [location data, per shape] | velocity type 3 | [velocity data, per type] |
    acknowledgement request 1 | type of additional data 1 | reason or user data 8 |
    type-5 elements (identifier 5, length 6, value) ...

Coordinates are two's complement: longitude 25 bits in units of 360/2^25 degrees, latitude 24
bits in units of 180/2^24 degrees. West and south are negative, so every place west of
Greenwich has the top longitude bit set; decoders that read the field as unsigned put London's
western half near 360 degrees east. :func:`decode` sign-extends; :func:`encode` is its exact
inverse so that round trips can be tested bit for bit.

Everything here is pure: bytes in, a :class:`LipReport` out (or :class:`LipError` with a reason
a user can act on). Nothing is rounded on decode; the report keeps the raw codes and derives
units (degrees, km/h, metres) from them through the standard's formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PROTOCOL_ID = 0x0A  # SDS type-4 protocol identifier of LIP

LON_BITS = 25
LAT_BITS = 24
LON_UNIT_DEG = 360 / (1 << LON_BITS)
LAT_UNIT_DEG = 180 / (1 << LAT_BITS)

SHORT = "short"
LONG = "long"

# Time elapsed class -> the upper bound of the fix's age in seconds (3: not known).
TIME_ELAPSED_MAX_S: dict[int, int | None] = {0: 5, 1: 300, 2: 1800, 3: None}
TIME_ELAPSED_TEXT = {0: "<5 s", 1: "<5 min", 2: "<30 min", 3: "not known"}

# Position error class (3 bits) -> upper bound in metres; 6 (> 200 km) and 7 (not known) have none.
POSITION_ERROR_M: dict[int, float | None] = {
    0: 2.0, 1: 20.0, 2: 200.0, 3: 2000.0, 4: 20000.0, 5: 200000.0, 6: None, 7: None,
}
POSITION_ERROR_TEXT = {
    0: "<2 m", 1: "<20 m", 2: "<200 m", 3: "<2 km", 4: "<20 km", 5: "<=200 km", 6: ">200 km",
    7: "not known",
}

SHAPE_NAMES = {
    0: "no shape", 1: "point", 2: "circle", 3: "ellipse", 4: "point with altitude",
    5: "circle with altitude", 6: "ellipse with altitude",
    7: "circle with altitude and altitude uncertainty",
    8: "ellipse with altitude and altitude uncertainty", 9: "arc",
    10: "point with position error",
}

# Field widths in bits; layouts below list the fields that follow longitude and latitude.
WIDTHS = {
    "radius": 6, "major": 6, "minor": 6, "angle": 8, "confidence": 3, "altitude": 12,
    "altitude_acc": 3, "inner_radius": 16, "outer_radius": 16, "start_angle": 8,
    "stop_angle": 8, "pos_err_class": 3,
    "speed_code": 7, "speed_acc": 3, "vspeed": 8, "vspeed_acc": 3, "direction_ext": 8,
    "direction_acc": 3,
}
SHAPE_LAYOUT: dict[int, tuple[str, ...]] = {
    1: (),
    2: ("radius",),
    3: ("major", "minor", "angle", "confidence"),
    4: ("altitude",),
    5: ("radius", "altitude"),
    6: ("major", "minor", "angle", "altitude", "confidence"),
    7: ("radius", "altitude", "altitude_acc"),
    8: ("major", "minor", "angle", "altitude", "altitude_acc", "confidence"),
    9: ("inner_radius", "outer_radius", "start_angle", "stop_angle", "confidence"),
    10: ("pos_err_class",),
}
VELOCITY_LAYOUT: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("speed_code",),
    2: ("speed_code", "speed_acc"),
    3: ("speed_code", "vspeed"),
    4: ("speed_code", "speed_acc", "vspeed", "vspeed_acc"),
    5: ("speed_code", "direction_ext"),
    6: ("speed_code", "speed_acc", "direction_ext", "direction_acc"),
    7: ("speed_code", "speed_acc", "vspeed", "vspeed_acc", "direction_ext", "direction_acc"),
}
OPTIONAL_FIELDS = tuple(WIDTHS)

# Type-5 element identifiers that this gateway interprets (others are kept raw).
T5_LOCATION_MESSAGE_REFERENCE = 6
T5_RESULT_CODE = 12

REASON_TEXT = {
    0: "powered on", 1: "powered off", 2: "emergency", 3: "push-to-talk", 4: "status",
    5: "transmit inhibit on", 6: "transmit inhibit off", 7: "system access (TMO on)",
    8: "DMO on", 9: "enter service", 10: "service loss", 11: "cell reselection",
    12: "low battery", 13: "car kit connected", 14: "car kit disconnected",
    15: "asks for transfer initialization configuration", 16: "arrival at destination",
    17: "arrival at a defined location", 18: "approaching a defined location",
    19: "SDS type-1 entered", 20: "user application initiated",
    21: "lost ability to determine location", 22: "regained ability to determine location",
    23: "leaving point", 24: "ambience listening call", 25: "start of temporary reporting",
    26: "return to normal reporting", 27: "call setup type 1", 28: "call setup type 2",
    29: "positioning device on", 30: "positioning device off",
    32: "response to an immediate location request",
    129: "maximum reporting interval exceeded", 130: "maximum reporting distance travelled",
}

RESULT_TEXT = {
    0: "success", 1: "system failure", 2: "unspecified error", 3: "unauthorised application",
    4: "unknown subscriber", 5: "absent subscriber", 6: "congestion in provider",
    7: "congestion in mobile network", 8: "unsupported version", 9: "insufficient resources",
    10: "syntax error", 11: "protocol element not supported", 12: "service not supported",
    13: "protocol element value not supported", 14: "type of information not currently available",
    15: "required accuracy not achieved",
}


class LipError(ValueError):
    """A LIP PDU that cannot be decoded; ``reason`` is a short counter key, ``detail`` says why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


# -- bits -----------------------------------------------------------------------------------------
class BitReader:
    """Reads big-endian bit fields from ``data``, never past ``nbits``."""

    def __init__(self, data: bytes, nbits: int | None = None):
        self.value = int.from_bytes(data, "big")
        self.total = len(data) * 8
        self.nbits = self.total if nbits is None else min(nbits, self.total)
        self.pos = 0

    @property
    def remaining(self) -> int:
        return self.nbits - self.pos

    def take(self, width: int, what: str = "field") -> int:
        if width > self.remaining:
            raise LipError(
                "truncated",
                f"{what} needs {width} bits at bit {self.pos}, only {self.remaining} left "
                f"of {self.nbits}",
            )
        shift = self.total - self.pos - width
        self.pos += width
        return (self.value >> shift) & ((1 << width) - 1)

    def rest_is_zero(self) -> bool:
        """Whether every bit still unread is zero (octet padding, not data)."""
        width = self.remaining
        return width <= 0 or (self.value >> (self.total - self.nbits)) & ((1 << width) - 1) == 0


class BitWriter:
    """Packs big-endian bit fields; :meth:`to_bytes` pads the last octet with zeros."""

    def __init__(self) -> None:
        self.value = 0
        self.nbits = 0

    def put(self, value: int, width: int, what: str = "field") -> None:
        if not 0 <= value < (1 << width):
            raise ValueError(f"{what}={value} does not fit in {width} bits")
        self.value = (self.value << width) | value
        self.nbits += width

    def to_bytes(self) -> bytes:
        pad = -self.nbits % 8
        return (self.value << pad).to_bytes((self.nbits + pad) // 8, "big")


def to_signed(value: int, width: int) -> int:
    """Two's complement ``width``-bit field to a Python int."""
    return value - (1 << width) if value & (1 << (width - 1)) else value


def to_unsigned(value: int, width: int) -> int:
    """A signed int to its ``width``-bit two's complement field; raises if out of range."""
    if not -(1 << (width - 1)) <= value < (1 << (width - 1)):
        raise ValueError(f"{value} does not fit in a signed {width}-bit field")
    return value & ((1 << width) - 1)


# -- units ----------------------------------------------------------------------------------------
def lon_to_raw(lon: float) -> int:
    """Degrees east (negative west) to the signed 25-bit field; 180 E wraps to -180."""
    raw = round(lon / LON_UNIT_DEG)
    if raw >= 1 << (LON_BITS - 1):
        raw -= 1 << LON_BITS
    if raw < -(1 << (LON_BITS - 1)):
        raise ValueError(f"longitude {lon} out of range")
    return raw


def lat_to_raw(lat: float) -> int:
    """Degrees north (negative south) to the signed 24-bit field (90 N saturates one unit short)."""
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} out of range")
    return min(round(lat / LAT_UNIT_DEG), (1 << (LAT_BITS - 1)) - 1)


def speed_kmh(code: int) -> float | None:
    """Horizontal velocity code to km/h: 1 km/h steps to 28, then 16 x 1.038^(code-13).

    126 means "more than 1043 km/h" and 127 "not known"; both give ``None``.
    """
    if code <= 28:
        return float(code)
    if code >= 126:
        return None
    return 16.0 * 1.038 ** (code - 13)


def speed_code(kmh: float | None) -> int:
    """The velocity code nearest to ``kmh`` (``None``: 127, not known)."""
    if kmh is None:
        return 127
    if kmh < 28.5:
        return max(0, round(kmh))
    code = round(13 + math.log(kmh / 16.0) / math.log(1.038))
    return 126 if code > 125 else max(29, code)


def uncertainty_m(code: int) -> float | None:
    """Horizontal position uncertainty code (6 bits) to an upper bound in metres.

    The standard tabulates 63 values growing by 20 % a step ("less than 1 m" ... "less than
    403 802.7 m"); 5 x 1.2^code - 4 reproduces that table to within 0.5 % and never below it,
    so it is safe as an error bound. Code 63 is "best effort": no bound.
    """
    if code >= 63:
        return None
    return 5.0 * 1.2**code - 4.0


def uncertainty_code(metres: float) -> int:
    """The smallest uncertainty code whose bound is at least ``metres``."""
    for code in range(63):
        bound = uncertainty_m(code)
        if bound is not None and bound >= metres:
            return code
    return 63


def altitude_m(code: int) -> int | None:
    """Altitude code (the 11 bits after the altitude-type bit) to metres.

    1..1201: -200..1000 m in 1 m steps; 1202..1926: 1002..2450 m in 2 m steps; 1927..2047:
    2525..11525 m in 75 m steps. 0 is reserved.
    """
    if code == 0:
        return None
    if code <= 1201:
        return code - 201
    if code <= 1926:
        return 1000 + 2 * (code - 1201)
    return 2450 + 75 * (code - 1926)


def altitude_code(metres: float) -> int:
    """The altitude code nearest to ``metres`` (clamped to -200 .. 11525 m)."""
    if metres <= 1000:
        return max(1, round(metres) + 201)
    if metres <= 2450:
        return min(1926, 1201 + round((metres - 1000) / 2))
    return min(2047, 1926 + round((metres - 2450) / 75))


def direction_deg(code: int) -> float:
    """4-bit direction of travel (16 points, 22.5 degrees apart, clockwise from north)."""
    return code * 22.5


def angle_deg(code: int) -> float:
    """8-bit angle (direction of travel extended, ellipse orientation): 360/256 degree steps."""
    return code * 360 / 256


# -- the report -----------------------------------------------------------------------------------
@dataclass
class LipReport:
    """One decoded location report, raw codes kept so it re-encodes bit for bit."""

    kind: str  # SHORT or LONG
    lon_raw: int | None = None  # signed units of LON_UNIT_DEG
    lat_raw: int | None = None  # signed units of LAT_UNIT_DEG
    time_type: int = 1  # long: 0 none, 1 time elapsed, 2 time of position (short: always 1)
    time_elapsed: int | None = None  # class 0..3
    time_of_position: tuple[int, int, int, int] | None = None  # day, hour, minute, second
    shape: int | None = None  # long reports only
    velocity_type: int | None = None  # long reports only
    direction_code: int | None = None  # short reports: 4 bits
    ack_request: int = 0
    additional_type: int = 0  # 0 reason for sending, 1 user-defined data
    additional: int = 0
    type5: list[tuple[int, int, int]] = field(default_factory=list)  # (id, length bits, value)
    warnings: list[str] = field(default_factory=list, compare=False)
    # optional per-shape / per-velocity-type fields (see WIDTHS); None when absent
    radius: int | None = None
    major: int | None = None
    minor: int | None = None
    angle: int | None = None
    confidence: int | None = None
    altitude: int | None = None  # 12 bits: altitude type (top bit) + 11-bit code
    altitude_acc: int | None = None
    inner_radius: int | None = None
    outer_radius: int | None = None
    start_angle: int | None = None
    stop_angle: int | None = None
    pos_err_class: int | None = None
    speed_code: int | None = None
    speed_acc: int | None = None
    vspeed: int | None = None
    vspeed_acc: int | None = None
    direction_ext: int | None = None
    direction_acc: int | None = None

    # derived values ------------------------------------------------------------------------------
    @property
    def lat(self) -> float | None:
        return None if self.lat_raw is None else self.lat_raw * LAT_UNIT_DEG

    @property
    def lon(self) -> float | None:
        return None if self.lon_raw is None else self.lon_raw * LON_UNIT_DEG

    @property
    def nofix(self) -> bool:
        """True when the report carries no usable position.

        Long reports say so with location shape 0 ("no shape"). Short reports have no such
        shape: a radio without a fix sends zeros, or position error 7 ("not known") with a fix
        age that is not known either (it repeats something of unknown age and accuracy).
        Position error 7 with real coordinates and a known age is a position of unknown
        accuracy (:attr:`accuracy_unknown`), as public decodes and other decoders read it: a
        radio that never sends a better class would otherwise never be seen.
        """
        if self.kind == LONG:
            return self.shape == 0
        if self.lat_raw == 0 and self.lon_raw == 0:
            return True
        return self.pos_err_class == 7 and self.time_elapsed == 3

    @property
    def accuracy_unknown(self) -> bool:
        """A position whose error class is 7 ("not known"): stored, flagged
        ``accuracy_unknown`` (see :mod:`gateway.intake.airwave.store`)."""
        return self.pos_err_class == 7 and self.is_point

    @property
    def is_point(self) -> bool:
        """Whether lat/lon is where the radio is (an arc's centre is not: it is often the mast)."""
        return not self.nofix and self.shape != 9

    @property
    def pos_err_m(self) -> float | None:
        """Upper bound of the horizontal position error in metres, when the report gives one."""
        if self.pos_err_class is not None:
            return POSITION_ERROR_M[self.pos_err_class]
        if self.radius is not None:
            return uncertainty_m(self.radius)
        if self.major is not None:
            return uncertainty_m(max(self.major, self.minor or 0))
        return None

    @property
    def speed_kmh(self) -> float | None:
        return None if self.speed_code is None else speed_kmh(self.speed_code)

    @property
    def direction_deg(self) -> float | None:
        if self.direction_ext is not None:
            return angle_deg(self.direction_ext)
        if self.direction_code is not None:
            return direction_deg(self.direction_code)
        return None

    @property
    def altitude_m(self) -> int | None:
        return None if self.altitude is None else altitude_m(self.altitude & 0x7FF)

    @property
    def reason(self) -> int | None:
        return self.additional if self.additional_type == 0 else None

    def type5_value(self, ident: int) -> int | None:
        for element_id, _length, value in self.type5:
            if element_id == ident:
                return value
        return None

    @property
    def result_code(self) -> int | None:
        return self.type5_value(T5_RESULT_CODE)

    def as_dict(self) -> dict:
        """The report as plain JSON-ready values (the ``airwave decode`` output)."""
        tod = self.time_of_position
        out: dict = {
            "kind": self.kind,
            "nofix": self.nofix,
            "accuracy_unknown": self.accuracy_unknown,
            "lat": None if self.lat is None else round(self.lat, 7),
            "lon": None if self.lon is None else round(self.lon, 7),
            "shape": "short report" if self.kind == SHORT else SHAPE_NAMES.get(self.shape or 0),
            "pos_err_m": self.pos_err_m,
            "pos_err_class": (None if self.pos_err_class is None
                              else POSITION_ERROR_TEXT[self.pos_err_class]),
            "speed_kmh": None if self.speed_kmh is None else round(self.speed_kmh, 1),
            "direction_deg": self.direction_deg,
            "altitude_m": self.altitude_m,
            "reason": self.reason,
            "reason_text": None if self.reason is None else REASON_TEXT.get(self.reason),
            "user_data": self.additional if self.additional_type == 1 else None,
            "time_elapsed": (None if self.time_elapsed is None
                             else TIME_ELAPSED_TEXT[self.time_elapsed]),
            "time_elapsed_max_s": (None if self.time_elapsed is None
                                   else TIME_ELAPSED_MAX_S[self.time_elapsed]),
            "time_of_position": None if tod is None else dict(
                zip(("day", "hour", "minute", "second"), tod, strict=True)),
            "result_code": self.result_code,
            "result_text": (None if self.result_code is None
                            else RESULT_TEXT.get(self.result_code)),
            "ack_request": bool(self.ack_request) if self.kind == LONG else None,
            "message_ref": self.type5_value(T5_LOCATION_MESSAGE_REFERENCE),
        }
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out


# -- decode ---------------------------------------------------------------------------------------
def decode(data: bytes, nbits: int | None = None) -> LipReport:
    """Decode a LIP PDU (without the protocol identifier byte) of ``nbits`` bits.

    Raises :class:`LipError` for reserved or unsupported PDU types and for reports cut short.
    Bits after a complete report are padding when zero; otherwise they are read as type-5
    elements (long reports) or noted as a warning (short reports).
    """
    bits = BitReader(data, nbits)
    pdu_type = bits.take(2, "PDU type")
    if pdu_type == 0:
        return _decode_short(bits)
    if pdu_type == 1:
        extension = bits.take(4, "PDU type extension")
        if extension != 3:
            raise LipError("unsupported_pdu", f"LIP PDU type extension {extension} is not a "
                           "long location report")
        return _decode_long(bits)
    raise LipError("reserved_pdu_type", f"LIP PDU type {pdu_type} is reserved")


def _decode_short(bits: BitReader) -> LipReport:
    report = LipReport(SHORT)
    report.time_elapsed = bits.take(2, "time elapsed")
    report.lon_raw = to_signed(bits.take(LON_BITS, "longitude"), LON_BITS)
    report.lat_raw = to_signed(bits.take(LAT_BITS, "latitude"), LAT_BITS)
    report.pos_err_class = bits.take(3, "position error")
    report.speed_code = bits.take(7, "horizontal velocity")
    report.direction_code = bits.take(4, "direction of travel")
    report.additional_type = bits.take(1, "type of additional data")
    report.additional = bits.take(8, "additional data")
    if not bits.rest_is_zero():
        report.warnings.append(f"{bits.remaining} trailing bits after a short report")
    return report


def _decode_long(bits: BitReader) -> LipReport:
    report = LipReport(LONG)
    report.time_type = bits.take(2, "time type")
    if report.time_type == 1:
        report.time_elapsed = bits.take(2, "time elapsed")
    elif report.time_type == 2:
        report.time_of_position = (bits.take(5, "day"), bits.take(5, "hour"),
                                   bits.take(6, "minute"), bits.take(6, "second"))
    elif report.time_type == 3:
        raise LipError("reserved_time_type", "time type 3 is reserved")
    report.shape = bits.take(4, "location shape")
    if report.shape not in SHAPE_NAMES:
        raise LipError("unsupported_shape", f"location shape {report.shape} is reserved or an "
                       "extension this gateway cannot size")
    if report.shape:
        report.lon_raw = to_signed(bits.take(LON_BITS, "longitude"), LON_BITS)
        report.lat_raw = to_signed(bits.take(LAT_BITS, "latitude"), LAT_BITS)
        for name in SHAPE_LAYOUT[report.shape]:
            setattr(report, name, bits.take(WIDTHS[name], name))
    report.velocity_type = bits.take(3, "velocity type")
    for name in VELOCITY_LAYOUT[report.velocity_type]:
        setattr(report, name, bits.take(WIDTHS[name], name))
    report.ack_request = bits.take(1, "acknowledgement request")
    report.additional_type = bits.take(1, "type of additional data")
    report.additional = bits.take(8, "additional data")
    _decode_type5(bits, report)
    return report


def _decode_type5(bits: BitReader, report: LipReport) -> None:
    """Optional type-5 elements; a broken tail is a warning, the position before it stands."""
    while bits.remaining >= 11 and not bits.rest_is_zero():
        start = bits.pos
        ident = bits.take(5)
        length = bits.take(6)
        if length > bits.remaining or length == 0:
            report.warnings.append(f"type-5 element {ident} at bit {start} declares {length} "
                                   f"bits, {bits.remaining} left: tail ignored")
            return
        report.type5.append((ident, length, bits.take(length)))
    if not bits.rest_is_zero():
        report.warnings.append(f"{bits.remaining} trailing bits ignored")


# -- encode ---------------------------------------------------------------------------------------
def encode(report: LipReport) -> tuple[bytes, int]:
    """The PDU for ``report`` (without protocol identifier) and its length in bits.

    The exact inverse of :func:`decode`; raises ``ValueError`` when a field is missing or out of
    range for the report's shape and velocity type.
    """
    out = BitWriter()
    if report.kind == SHORT:
        out.put(0, 2)
        out.put(_need(report.time_elapsed, "time_elapsed"), 2, "time elapsed")
        out.put(to_unsigned(_need(report.lon_raw, "lon_raw"), LON_BITS), LON_BITS)
        out.put(to_unsigned(_need(report.lat_raw, "lat_raw"), LAT_BITS), LAT_BITS)
        out.put(_need(report.pos_err_class, "pos_err_class"), 3, "position error")
        out.put(_need(report.speed_code, "speed_code"), 7, "horizontal velocity")
        out.put(_need(report.direction_code, "direction_code"), 4, "direction")
        out.put(report.additional_type, 1)
        out.put(report.additional, 8, "additional data")
        return out.to_bytes(), out.nbits
    out.put(1, 2)
    out.put(3, 4)
    out.put(report.time_type, 2, "time type")
    if report.time_type == 1:
        out.put(_need(report.time_elapsed, "time_elapsed"), 2, "time elapsed")
    elif report.time_type == 2:
        day, hour, minute, second = _need(report.time_of_position, "time_of_position")
        for value, width in ((day, 5), (hour, 5), (minute, 6), (second, 6)):
            out.put(value, width, "time of position")
    shape = _need(report.shape, "shape")
    if shape not in SHAPE_NAMES:
        raise ValueError(f"location shape {shape} cannot be encoded")
    out.put(shape, 4)
    if shape:
        out.put(to_unsigned(_need(report.lon_raw, "lon_raw"), LON_BITS), LON_BITS)
        out.put(to_unsigned(_need(report.lat_raw, "lat_raw"), LAT_BITS), LAT_BITS)
        for name in SHAPE_LAYOUT[shape]:
            out.put(_need(getattr(report, name), name), WIDTHS[name], name)
    velocity_type = _need(report.velocity_type, "velocity_type")
    out.put(velocity_type, 3, "velocity type")
    for name in VELOCITY_LAYOUT[velocity_type]:
        out.put(_need(getattr(report, name), name), WIDTHS[name], name)
    out.put(report.ack_request, 1)
    out.put(report.additional_type, 1)
    out.put(report.additional, 8, "additional data")
    for ident, length, value in report.type5:
        out.put(ident, 5, "type-5 identifier")
        out.put(length, 6, "type-5 length")
        out.put(value, length, "type-5 value")
    return out.to_bytes(), out.nbits


def _need(value, name: str):
    if value is None:
        raise ValueError(f"{name} is required for this report")
    return value


def decode_hex(text: str, with_pid: bool = True) -> LipReport:
    """Decode a hex string: the SDS user data (protocol identifier ``0A`` first) or, with
    ``with_pid=False``, the bare LIP PDU."""
    cleaned = "".join(text.split())
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    if not cleaned:
        raise LipError("empty", "no hex digits")
    try:
        data = bytes.fromhex(cleaned + ("0" if len(cleaned) % 2 else ""))
    except ValueError as exc:
        raise LipError("bad_hex", f"not hexadecimal: {text!r}") from exc
    nbits = 4 * len(cleaned)
    if with_pid:
        if data[0] != PROTOCOL_ID:
            raise LipError("not_lip", f"protocol identifier 0x{data[0]:02X} is not LIP (0x0A);"
                           " use --no-pid for a bare LIP PDU")
        return decode(data[1:], nbits - 8)
    return decode(data, nbits)


def short_report(lat: float, lon: float, *, time_elapsed: int = 0, pos_err_class: int = 1,
                 speed: float | None = None, direction: float | None = None,
                 reason: int = 129) -> LipReport:
    """A short report from everyday units (the simulator and the tests build them this way)."""
    return LipReport(
        SHORT, lon_raw=lon_to_raw(lon), lat_raw=lat_to_raw(lat), time_elapsed=time_elapsed,
        pos_err_class=pos_err_class, speed_code=speed_code(speed),
        direction_code=0 if direction is None else round(direction / 22.5) % 16,
        additional_type=0, additional=reason,
    )
