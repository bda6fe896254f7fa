"""The docking station, gateway side: pooled trackers in, data out, charged trackers handed out.

Each dock slot is a USB serial port (pyserial: ``/dev/ttyACM0``, a pseudo-terminal from
``simulators/dock.py``, or any pyserial URL). :class:`DockStation` polls every slot with the
line protocol of ``docs/dock.md`` (the device side is ``tracker/dock.py``). When a tracker
appears in a slot it:

1. asks who it is (``ID``: device, firmware, fence version, battery, outbox depth);
2. pulls its outbox record by record into SQLite through the intake
   (:func:`gateway.intake.mqtt.handle_record` decodes each record, the same messages as on
   MQTT, into :class:`gateway.intake.intake.Intake`), and acknowledges (``ACK``) only after the
   commit, as a broker's PUBACK would: a record the broker also delivered is a counted
   duplicate, and a tracker pulled out mid-transfer keeps everything not yet committed;
3. ends the assignment (the tracker is back), tells the tracker it is no longer signed out, and
   pushes the settings and the current fence set if the tracker's version differs;
4. runs a waiting enrolment for the slot (``hotspots enrol --slot``, :mod:`gateway.fleet.enrol`):
   broker account, settings and credentials written to the tracker's ``config.json``.

While a tracker sits in a slot the station keeps asking (``ID`` every ``poll_s``), records its
charge, and, when someone signs it out (``hotspots assign`` or ``hotspots dock pick``), arms it
(``ASN``) — unless its charge is below the threshold, in which case it refuses and names the
fullest tracker instead. The tracker starts recording positions once it leaves the dock.

Charge state and time to full come from :class:`BatteryModel` (constant current to
``cv_from_pct``, then a linear taper), which the dock simulator also uses to charge its trackers.

Four concerns, four modules: :mod:`~gateway.fleet.dock.battery` (the battery model),
:mod:`~gateway.fleet.dock.link` (the serial protocol client and the ``ID`` answer),
:mod:`~gateway.fleet.dock.station` (the slot threads), :mod:`~gateway.fleet.dock.desk` (status
and pick for the station staff). Everything public is importable from here.
"""

from gateway.fleet.dock.battery import BatteryModel
from gateway.fleet.dock.desk import (
    MIN_CHARGE_PCT,
    DockStatus,
    OutStatus,
    PickError,
    SlotStatus,
    candidates,
    dock_status,
    pick,
    refusal,
    status_lines,
)
from gateway.fleet.dock.link import (
    FENCE_CHUNK,
    PROVISION_CHUNK,
    PULL_BATCH,
    BadAnswer,
    DeviceInfo,
    DockClient,
    DockError,
    LinkDown,
)
from gateway.fleet.dock.station import MISSED_POLLS, DockStation, SlotCounts

__all__ = [
    "FENCE_CHUNK", "MIN_CHARGE_PCT", "MISSED_POLLS", "PROVISION_CHUNK", "PULL_BATCH", "BadAnswer",
    "BatteryModel", "DeviceInfo",
    "DockClient", "DockError", "DockStation", "DockStatus", "LinkDown", "OutStatus", "PickError",
    "SlotCounts", "SlotStatus", "candidates", "dock_status", "pick", "refusal", "status_lines",
]
