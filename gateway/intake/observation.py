"""The one thing every source decodes into: an :class:`Observation` of one device.

A tracker's MQTT message, an OwnTracks phone's, an Airwave radio's LIP report, a record pulled
from a tracker's outbox at the dock, a vehicle's AVL report and a row of an imported GPX, KML,
NMEA or CSV file all become observations, and only observations reach the intake
(:mod:`gateway.intake.intake`). An adapter's job ends there: it decodes, it does not validate
ranges, filter, de-duplicate, attribute or store.

Times are UTC epoch seconds from the device's own clock (GNSS time on a tracker), never the
gateway's receive time, which travels beside the observation. Coordinates are WGS84 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: What an observation says.
LOCATION = "location"
TRANSITION = "transition"
STATUS = "status"
#: A phone app's own message that is no position (OwnTracks card, waypoints, steps, app status,
#: command): stored as it came, in ``app_messages`` (issue 19).
APP = "app"
KINDS = (LOCATION, TRANSITION, STATUS, APP)
#: The kinds of kit; each picks its filter rules (:mod:`gateway.intake.filters`).
SOURCES = ("tracker", "owntracks", "airwave", "vehicle", "import")


@dataclass(slots=True)
class Observation:
    """One position, hot spot transition or status report of one device, decoded.

    :param kind: ``location``, ``transition``, ``status`` or ``app``
    :param source: the kind of kit, which picks the filter rules: ``tracker``, ``owntracks``,
        ``airwave``, ``vehicle`` or ``import``
    :param device_id: the device, already resolved by the adapter (topic, ISSI, dock slot, file
        option); the intake checks its grammar and that it is registered
    :param origin: where it came from, for a person reading the quarantine: a topic, a serial
        port, ``dock:<slot>``, ``file.gpx:17``
    :param seq: the device's sequence number, where it numbers its messages (trackers); without
        one, duplicates are recognised by fix time
    :param tst: fix time (location), crossing time (transition); None for a status
    :param extra: fields a source sends that have no column of their own but that a supervisor
        or analyst would use (OwnTracks ``conn``, ``bssid``; a radio's position error class);
        kept as JSON
    """

    kind: str
    source: str
    device_id: str
    origin: str
    seq: int | None = None
    tst: int | None = None
    lat: float | None = None
    lon: float | None = None
    acc_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    alt_m: float | None = None
    #: hot spot ids (or, for a phone, its own region names) the device says it is in
    inregions: tuple[str, ...] | None = None
    #: why the device reported: OwnTracks ``t`` (``p`` ping, ``t`` timer, ``v`` move, ...)
    trigger: str | None = None
    #: when the device created the message, if it differs from ``tst``
    created_at: int | None = None
    #: GNSS fix quality (GGA: 0 no fix ... 8 simulation), where the device says it
    fix_quality: int | None = None
    # transition
    event: str | None = None  # "enter" or "leave"
    rid: str | None = None  # hot spot id
    desc: str | None = None
    # status
    online: bool | None = None
    batt: int | None = None
    outbox: int | None = None
    fences: str | None = None
    firmware: str | None = None
    #: a tracker's energy counters (``tracker.meter``), a dict of non-negative integers
    energy: dict | None = None
    #: why the tracker refused the last fence set offered (it still runs ``fences``), None when
    #: it applied it; how many it refused since start-up (docs/fences.md)
    fence_error: str | None = None
    fence_rejects: int | None = None
    extra: dict = field(default_factory=dict)
    # app message: its type (``card``, ``waypoints`` ...) and its JSON, attachments removed
    app_type: str | None = None
    payload: str | None = None
