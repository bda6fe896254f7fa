"""Commands from the gateway (``hotspots/dev/<id>/cmd``), applied by ``Tracker.command``, and
the report interval they (and the dock, ``tracker.dock``) set.

Rare code: ``tracker.app`` imports this module for a command and drops it again on MicroPython,
so its bytecode and messages are in the heap only while a command is applied (docs/memory.md).
"""

import json


def apply(tracker, payload):
    """Apply a command from the gateway; returns a line for the log.

    ``{"cmd": "report", "interval_s": N}`` sets the location interval (5..3600 s);
    ``{"cmd": "status"}`` only asks for a fresh status message (always sent after a command).
    """
    try:
        body = json.loads(payload)
        name = body["cmd"]
    except (ValueError, KeyError, TypeError):
        return "command rejected: not a JSON object with a cmd"
    if name == "report":
        interval = body.get("interval_s")
        if not isinstance(interval, int) or not 5 <= interval <= 3600:
            return "command rejected: interval_s must be 5..3600"
        tracker.set_report_interval(interval)
        return "report interval now %d s" % interval
    if name == "status":
        return "status requested"
    return "command rejected: unknown cmd %r" % (name,)

