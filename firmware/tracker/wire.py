"""Wire format: OwnTracks-compatible JSON messages and the MQTT topics they travel on.

The one module that says what goes over the air. The tracker builds messages with it, the gateway
and the simulators parse them with it; golden files in ``tests/data/`` pin the exact bytes for
both. See ``docs/contracts.md`` for the field list.

Messages are built by string formatting rather than ``json.dumps`` of a dict: it fixes the field
order (so golden files are stable), and coordinates are printed from integer micro-degrees without
ever becoming floats, which are 32-bit on many boards. Strings go through ``json.dumps`` (hot
spot names come from a trusted compiler but may still hold quotes or non-ASCII); the ``tid`` is
the device id's last two characters (``tracker_id``, in :mod:`tracker.wire_check`).
"""

import json

# The topic roots, the kinds (``loc``, ``event``, ``status``, ``cmd``), ``MAX_PAYLOAD``,
# ``MAX_DEPTH``, ``INT_MAX`` and ``ENERGY_FIELDS`` are the gateway's side of the format: they
# live in :mod:`tracker.wire_check` and are reached as ``tracker.wire.<name>`` (``__getattr__``
# below), so none of them is an interned name in the tracker's heap (docs/memory.md). The
# tracker writes its topics from the literals below, which the golden tests pin.


def device_topic(device_id, kind):
    """Topic a tracker publishes ``kind`` messages on (or receives commands on)."""
    return "hotspots/dev/%s/%s" % (device_id, kind)


def fences_topic(station):
    """Retained topic announcing a station's current fence set: ``{"version", "size"}``."""
    return "hotspots/station/%s/fences" % station


def fences_set_topic(station, version):
    """Topic holding the body of fence set ``version`` (retained): a tracker subscribes to it
    only when the announcement on :func:`fences_topic` names a version it does not run."""
    return "hotspots/station/%s/fences/%s" % (station, version)


def format_e6(value):
    """Micro-degrees as a decimal degree string with six places, without floats."""
    sign = ""
    if value < 0:
        sign = "-"
        value = -value
    return "%s%d.%06d" % (sign, value // 1000000, value % 1000000)


def location(device_id, seq, fix, created_at, inregions=(), batt=-1, trigger="t"):
    """Build a ``location`` message for a valid fix.

    :param fix: a ``tracker.nmea.Fix`` (or anything with the same integer fields)
    :param inregions: ids of the hot spots the tracker is inside
    :param batt: battery percentage, -1 when unknown (then omitted)
    :param trigger: OwnTracks trigger letter (``t`` timer, ``v`` moved, ``c`` region, ``p`` ping)
    """
    parts = [
        '{"_type":"location","tid":%s,"dev":%s,"seq":%d,"tst":%d,"created_at":%d,"lat":%s,'
        '"lon":%s,"acc":%d'
        % (json.dumps(device_id[-2:]), json.dumps(device_id), seq, fix.t, created_at,
           format_e6(fix.lat_e6), format_e6(fix.lon_e6), (fix.acc_cm + 50) // 100),
    ]
    if fix.speed_cmps >= 0:
        # km/h, as OwnTracks has it: cm/s * 0.036.
        parts.append(',"vel":%d' % ((fix.speed_cmps * 36 + 500) // 1000))
    if fix.course_cdeg >= 0:
        parts.append(',"cog":%d' % ((fix.course_cdeg + 50) // 100 % 360))
    alt = fix.alt_cm
    if alt > -1000000:
        # Metres, rounded half away from zero (``//`` alone floors negatives).
        alt = (alt + 50) // 100 if alt >= 0 else -((50 - alt) // 100)
        parts.append(',"alt":%d' % alt)
    if batt >= 0:
        parts.append(',"batt":%d' % batt)
    parts.append(',"fix":%d,"sats":%d' % (fix.quality, fix.sats))
    if fix.hdop_x100 >= 0:
        parts.append(',"hdop":%d.%02d' % (fix.hdop_x100 // 100, fix.hdop_x100 % 100))
    parts.append(',"inregions":[%s],"t":%s}' % (",".join([json.dumps(i) for i in inregions]),
                                                  json.dumps(trigger)))
    return "".join(parts)


def transition(device_id, seq, entering, rid, desc, tst, lat_e6, lon_e6, acc_cm, created_at):
    """Build a ``transition`` message: the tracker entered or left hot spot ``rid`` at ``tst``."""
    return (
        '{"_type":"transition","tid":%s,"dev":%s,"seq":%d,"tst":%d,"created_at":%d,'
        '"event":%s,"rid":%s,"desc":%s,"lat":%s,"lon":%s,"acc":%d,"t":"c"}'
        % (
            json.dumps(device_id[-2:]),
            json.dumps(device_id),
            seq,
            tst,
            created_at,
            '"enter"' if entering else '"leave"',
            json.dumps(rid),
            json.dumps(desc),
            format_e6(lat_e6),
            format_e6(lon_e6),
            (acc_cm + 50) // 100,
        )
    )


def status(device_id, online, created_at, fences="", outbox=0, batt=-1, fw="", seq=0,
           gnss=None, energy=None, fence_err="", fence_rej=0):
    """Build a (retained) ``status`` message; with ``online`` false it doubles as the last will.

    ``gnss``: the GNSS module's set-up as ``drivers.gnss_module.GnssModule.status`` gives it
    (module, state, refused, no_answer), or None for a board without a module driver.
    ``energy``: the energy counters since boot, a tuple of integers in ``ENERGY_FIELDS`` order
    (``tracker.meter``), or None.
    ``fence_err``: why the last fence set offered was refused (the tracker kept ``fences``),
    empty once a set is applied; ``fence_rej``: sets refused since start-up.
    """
    text = '{"_type":"status","tid":%s,"dev":%s,"online":%s,"created_at":%d' % (
        json.dumps(device_id[-2:]),
        json.dumps(device_id),
        json.dumps(bool(online)),  # true or false
        created_at,
    )
    if seq:
        text += ',"seq":%d' % seq
    if fences:
        text += ',"fences":%s' % json.dumps(fences)
    text += ',"outbox":%d' % outbox
    if batt >= 0:
        text += ',"batt":%d' % batt
    if fw:
        text += ',"fw":%s' % json.dumps(fw)
    if gnss:
        # The counts by key inside the format: "refused" and "no_answer" as literals would be
        # interned names on a tracker without a module driver too.
        text += ',"gnss":{"module":%s,"state":%s' % (json.dumps(gnss["module"]),
                                                     json.dumps(gnss["state"]))
        text += ',"refused":%(refused)d,"no_answer":%(no_answer)d}' % gnss
    if energy:
        text += (',"energy":{"up_ms":%d,"awake_ms":%d,"gnss_on_ms":%d,"fixes":%d,"wakeups":%d,'
                 '"connects":%d,"tx":%d,"rx":%d}' % energy)
    if fence_err:
        text += ',"fence_err":%s' % json.dumps(fence_err)
    if fence_rej:
        text += ',"fence_rej":%d' % fence_rej
    return text + "}"


def decode(payload):
    """Parse and check one message; returns the dict or raises :class:`WireError` (reason
    ``oversize``, ``too_deep``, ``malformed``, ``bad_text``, ``unknown_type``,
    ``missing_field`` or ``bad_field``). The checks are in :mod:`tracker.wire_check`, loaded
    here on first use: the tracker never decodes a message, so their bytecode stays out of its
    heap."""
    from tracker import wire_check

    return wire_check.decode(payload)


def __getattr__(name):
    # Only the gateway, the simulators and the tests use these (WireError, parse_topic,
    # fences_announcement, the constants above); the tracker never does, so they are in
    # tracker.wire_check, loaded on first use (PEP 562, which MicroPython supports too): their
    # bytecode and names stay out of the tracker's heap (docs/memory.md).
    from tracker import wire_check

    return getattr(wire_check, name)
