"""Replay a recorded NMEA log through the tracker core; print what it would publish.

Usage (MicroPython unix port or CPython, firmware on the path)::

    micropython firmware/replay.py NMEAFILE FENCESFILE [DEVICE_ID]

``FENCESFILE`` holds a compiled fence set (the JSON wrapper that ``hotspots fences compile``
writes, or the raw binary). Each message the tracker would queue -- locations and transitions --
is printed as one JSON line, in the order it was queued. ``hotspots firmware replay`` wraps this.
No clock is read: the tracker's notion of now is the GNSS time of the fixes.
"""

import sys

from tracker.app import Tracker
from tracker.fence import FenceStore
from tracker.outbox import Outbox


def replay(nmea_path, fence_set, write, device_id="T-REPLAY"):
    """Feed every line of ``nmea_path`` to a tracker; ``write(text)`` each queued message.

    :returns: the tracker (for its parser statistics and counters).
    """
    outbox = Outbox(None)
    tracker = Tracker(device_id, outbox, fence_set)

    def drain():
        while True:
            item = outbox.peek()
            if item is None:
                return
            seq, _kind, payload = item
            write(str(payload, "utf-8"))
            outbox.ack(seq)

    with open(nmea_path, "rb") as f:
        for line in f:
            tracker.feed_line(line, 0)
            drain()
    tracker.end_of_stream(0)
    drain()
    return tracker


def load_fences(path):
    """Check a compiled fence set in a file (JSON wrapper or raw binary); it stays there, and
    the hot spots near each fix are read from it, as on the tracker."""
    return FenceStore.load(lambda: open(path, "rb"))


def main(argv):
    if len(argv) < 2:
        print("usage: replay.py NMEAFILE FENCESFILE [DEVICE_ID]")
        return 2
    fence_set = load_fences(argv[1])
    tracker = replay(argv[0], fence_set, print, argv[2] if len(argv) > 2 else "T-REPLAY")
    stats = tracker.parser.stats()
    sys.stderr.write("replay: %d fixes, %d invalid epochs, fences %s, nmea %r\n" % (
        tracker.fixes, tracker.invalid_epochs, fence_set.version, stats))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
