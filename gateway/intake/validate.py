"""Ranges for every field of an :class:`~gateway.intake.observation.Observation`.

Whatever a source is, its values are judged here, once, before anything is stored. A field is
either **essential** (without a good value the observation means nothing, or would slip past a
filter: the whole observation is quarantined) or **optional** (a bad value is dropped, the rest is
stored, and the drop is counted per device and field). The table is in ``docs/contracts.md``;
:data:`ESSENTIAL` and :data:`OPTIONAL` below are the same table in code.

Pure and allocation-light: :func:`check` runs on every message of the gateway's hot path.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

from gateway.intake.observation import (
    APP,
    KINDS,
    LOCATION,
    SOURCES,
    STATUS,
    TRANSITION,
    Observation,
)

#: GPS time starts on 1980-01-06: a fix time before it is no fix time at all. Times before 2020
#: still pass here and are stored flagged ``past`` by the filters (a GNSS week roll-over).
TST_MIN = 315_964_800
TST_MAX = 4_102_444_800  # 2100-01-01
#: The tracker's sequence numbers are unsigned 32-bit (the outbox record header, docs/outbox.md).
SEQ_MAX = 2**32 - 1
#: Stated accuracy beyond this is not a position (and is not stored as one).
ACC_MAX_M = 1_000_000
#: Faster than any person or vehicle on a patrol (360 km/h): the reading is wrong.
SPEED_MAX_MPS = 100
ALT_MIN_M, ALT_MAX_M = -1_000, 20_000
OUTBOX_MAX = 10_000_000
#: Hot spot ids are at most 32 bytes (fences/validate.py); a device is in a handful at once.
REGION_MAX_BYTES = 32
REGIONS_MAX = 64
DESC_MAX = 200
VERSION_MAX = 64
TRIGGER_MAX = 8
EXTRA_MAX_BYTES = 1024
#: An app message (OwnTracks waypoints of a few dozen regions, a card without its image).
PAYLOAD_MAX_BYTES = 32_768
APP_TYPE_MAX = 32
#: A tracker's reason for refusing a fence set (it sends at most 80 characters).
FENCE_ERROR_MAX = 200
#: Fence sets a tracker refused since start-up (read everywhere as a signed 32-bit number).
FENCE_REJECTS_MAX = (1 << 31) - 1

#: Fields whose bad value quarantines the observation (with reason ``bad_field``).
ESSENTIAL = ("source", "kind", "tst", "lat", "lon", "acc_m", "seq", "event", "rid", "online")
#: Fields whose bad value is dropped and counted (``dropped:<field>``).
OPTIONAL = ("speed_mps", "course_deg", "alt_m", "inregions", "trigger", "created_at",
            "fix_quality", "desc", "batt", "outbox", "fences", "firmware", "energy", "fence_error",
            "fence_rejects", "extra")
#: The keys of a tracker status's ``energy`` counters (``tracker.wire.ENERGY_FIELDS``).
ENERGY_KEYS = ("up_ms", "awake_ms", "gnss_on_ms", "fixes", "wakeups", "connects", "tx", "rx")
#: An energy counter above this is not a counter (2**53: still exact in JSON and SQLite).
COUNTER_MAX = 2**53

# Control characters (C0, DEL, C1), lone surrogates (JSON lets "\ud800" through, and UTF-8
# cannot encode it) and the bidirectional overrides/isolates that make text read differently
# from what it is.
_NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class Invalid(ValueError):
    """An essential field is bad: the observation is quarantined (reason ``bad_field``)."""

    def __init__(self, field: str, detail: str):
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail


def is_text(value: object, max_len: int, allow_empty: bool = False) -> bool:
    """A ``str`` of at most ``max_len`` characters with nothing unprintable or unencodable."""
    return (type(value) is str and (allow_empty or value != "") and len(value) <= max_len
            and _NOT_TEXT.search(value) is None)


def is_region(value: object) -> bool:
    """A hot spot id (or a phone's region name): text of 1 to 32 UTF-8 bytes."""
    return is_text(value, REGION_MAX_BYTES) and len(value.encode()) <= REGION_MAX_BYTES


def _int_in(value: object, lo: int, hi: int) -> bool:
    # type(), not isinstance(): bool is an int subclass and is not a number here.
    return type(value) is int and lo <= value <= hi


def _num_in(value: object, lo: float, hi: float) -> bool:
    # NaN fails every comparison and infinities are out of any finite range, so the range test
    # is also the finiteness test; int and float compare exactly, however large the int.
    t = type(value)
    return (t is float or t is int) and lo <= value <= hi


#: Region lists already found good (trackers repeat the same few): skips the per-item checks.
_GOOD_REGIONS: set[tuple] = set()


def _regions_ok(regions: object) -> bool:
    if type(regions) is tuple and regions in _GOOD_REGIONS:
        return True
    if (type(regions) not in (tuple, list) or len(regions) > REGIONS_MAX
            or not all(is_region(r) for r in regions)):
        return False
    if len(_GOOD_REGIONS) < 4096:
        _GOOD_REGIONS.add(tuple(regions))
    return True


def check(obs: Observation) -> tuple[Observation, list[str]]:
    """The observation with every bad optional field set to None, and the fields dropped.

    :raises Invalid: for a bad essential field (which one, and why)
    """
    if obs.source not in SOURCES:
        raise Invalid("source", f"unknown source {ascii(obs.source)[:40]}")
    if obs.kind not in KINDS:
        raise Invalid("kind", f"unknown kind {ascii(obs.kind)[:40]}")
    if obs.seq is not None and not _int_in(obs.seq, 1, SEQ_MAX):
        raise Invalid("seq", f"not a whole number 1..{SEQ_MAX}")
    changes: dict[str, object] = {}
    dropped: list[str] = []

    def drop(name: str) -> None:
        changes[name] = None
        dropped.append(name)

    if obs.kind == LOCATION or obs.kind == TRANSITION:
        if not _int_in(obs.tst, TST_MIN, TST_MAX):
            raise Invalid("tst", f"not a whole number of seconds {TST_MIN}..{TST_MAX}")
        position_required = obs.kind == LOCATION
        if position_required or obs.lat is not None or obs.lon is not None:
            if not _num_in(obs.lat, -90, 90):
                raise Invalid("lat", "not a finite number -90..90")
            if not _num_in(obs.lon, -180, 180):
                raise Invalid("lon", "not a finite number -180..180")
        # A bad accuracy dropped would let the fix escape the accuracy filter: quarantined.
        if obs.acc_m is not None and not _num_in(obs.acc_m, 0, ACC_MAX_M):
            raise Invalid("acc_m", f"not a finite number 0..{ACC_MAX_M}")
        if obs.created_at is not None and not _int_in(obs.created_at, TST_MIN, TST_MAX):
            drop("created_at")
    if obs.kind == LOCATION:
        if obs.speed_mps is not None and not _num_in(obs.speed_mps, 0, SPEED_MAX_MPS):
            drop("speed_mps")
        if obs.course_deg is not None and not _num_in(obs.course_deg, 0, 360):
            drop("course_deg")
        if obs.alt_m is not None and not _num_in(obs.alt_m, ALT_MIN_M, ALT_MAX_M):
            drop("alt_m")
        if obs.fix_quality is not None and not _int_in(obs.fix_quality, 0, 8):
            drop("fix_quality")
        if obs.trigger is not None and not is_text(obs.trigger, TRIGGER_MAX):
            drop("trigger")
        regions = obs.inregions
        if regions is not None:
            if not _regions_ok(regions):
                drop("inregions")
            elif type(regions) is list:
                changes["inregions"] = tuple(regions)
        if obs.batt is not None and not _int_in(obs.batt, 0, 100):
            drop("batt")
    elif obs.kind == TRANSITION:
        if obs.event not in ("enter", "leave"):
            raise Invalid("event", "not enter or leave")
        if not is_region(obs.rid):
            raise Invalid("rid", f"not a hot spot id (text of 1..{REGION_MAX_BYTES} bytes)")
        if obs.desc is not None and not is_text(obs.desc, DESC_MAX, allow_empty=True):
            drop("desc")
    elif obs.kind == APP:
        if not is_text(obs.app_type, APP_TYPE_MAX):
            raise Invalid("app_type", f"not text of 1..{APP_TYPE_MAX} characters")
        if (type(obs.payload) is not str or _SURROGATE.search(obs.payload)
                or len(obs.payload.encode("utf-8")) > PAYLOAD_MAX_BYTES):
            raise Invalid("payload", f"not UTF-8 text of at most {PAYLOAD_MAX_BYTES} bytes")
        if obs.tst is not None and not _int_in(obs.tst, TST_MIN, TST_MAX):
            drop("tst")
    elif obs.kind == STATUS:
        if type(obs.online) is not bool:
            raise Invalid("online", "not true or false")
        if obs.batt is not None and not _int_in(obs.batt, 0, 100):
            drop("batt")
        if obs.outbox is not None and not _int_in(obs.outbox, 0, OUTBOX_MAX):
            drop("outbox")
        if obs.fences is not None and not is_text(obs.fences, VERSION_MAX):
            drop("fences")
        if obs.firmware is not None and not is_text(obs.firmware, VERSION_MAX):
            drop("firmware")
        if obs.energy is not None and not is_energy(obs.energy):
            drop("energy")
        if obs.fence_error is not None and not is_text(obs.fence_error, FENCE_ERROR_MAX):
            drop("fence_error")
        if obs.fence_rejects is not None and not _int_in(obs.fence_rejects, 0, FENCE_REJECTS_MAX):
            drop("fence_rejects")
    if obs.extra:
        if extra_json(obs.extra) is None:
            drop("extra")
    if changes:
        if "extra" in changes:
            changes["extra"] = {}
        obs = replace(obs, **changes)
    return obs, dropped


def is_energy(value: object) -> bool:
    """Exactly the energy counters' keys, each a non-negative integer."""
    return (type(value) is dict and set(value) == set(ENERGY_KEYS)
            and all(_int_in(v, 0, COUNTER_MAX) for v in value.values()))


def extra_json(extra: object) -> str | None:
    """``extra`` as compact JSON if it is a small object of plain text keys and values that
    JSON can hold exactly; None otherwise."""
    if type(extra) is not dict:
        return None
    try:
        text = json.dumps(extra, separators=(",", ":"), allow_nan=False, sort_keys=True,
                          ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        return None
    if len(text.encode("utf-8", "replace")) > EXTRA_MAX_BYTES or _NOT_TEXT.search(text):
        return None
    return text
