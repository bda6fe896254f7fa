"""A GNSS module on a pseudo-terminal (or a file): NMEA for a simulated walk, at 1 Hz.

The simulator opens a pseudo-terminal pair and prints the path of its device end, which the
firmware opens as if it were the UART of a real GNSS module. Time in the sentences is simulated
time (``--speedup`` plays it faster than real time); the ground truth of every second and the
exact visits go to a JSON-lines file beside the output.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import termios
import time
import tty
from collections.abc import Iterable
from pathlib import Path

from simulators import nmea_out
from simulators.walk import Sample, Visit, Walk


def epoch_sentences(sample: Sample, hdop: float = 0.9, sats: int = 9) -> list[bytes]:
    """The sentences a receiver sends for one second: RMC then GGA."""
    return [
        nmea_out.rmc(sample.t, sample.reported_lat, sample.reported_lon, sample.speed_mps,
                     sample.course_deg),
        nmea_out.gga(sample.t, sample.reported_lat, sample.reported_lon, sats=sats, hdop=hdop),
    ]


class PseudoTerminal:
    """A pseudo-terminal pair in raw mode; we write the controller end, the firmware reads
    :attr:`path`.

    :param blocking: False for a controller end that never blocks (a thread serving several
        terminals with ``select``).
    """

    def __init__(self, blocking: bool = True) -> None:
        self.controller, self.device = os.openpty()
        tty.setraw(self.device)
        self.path = os.ttyname(self.device)
        if not blocking:
            os.set_blocking(self.controller, False)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.controller, view)
            view = view[written:]

    def unread(self) -> int:
        """Bytes written but not yet read by the other side."""
        buf = fcntl.ioctl(self.device, termios.FIONREAD, b"\0\0\0\0")
        return struct.unpack("i", buf)[0]

    def close(self, drain_timeout_s: float = 30.0) -> None:
        """Wait until the reader took everything, then hang up (the reader sees end of stream)."""
        deadline = time.monotonic() + drain_timeout_s
        while self.unread() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.close(self.device)
        os.close(self.controller)

    def hang_up(self) -> None:
        """Close both ends now, without draining (either may be closed already)."""
        for fd in (self.device, self.controller):
            with contextlib.suppress(OSError):
                os.close(fd)


def write_truth(path: str | Path, samples: Iterable[Sample], visits: list[Visit]) -> None:
    """Ground truth as JSON lines: one ``sample`` per second, then one ``visit`` per visit."""
    with open(path, "w") as out:
        for s in samples:
            out.write(json.dumps({"type": "sample", "t": s.t, "lat": round(s.lat, 7),
                                  "lon": round(s.lon, 7), "inside": s.inside}) + "\n")
        for v in visits:
            out.write(json.dumps({"type": "visit", "hotspot": v.hotspot, "enter": v.enter,
                                  "leave": v.leave, "dwell_s": round(v.dwell_s, 1)}) + "\n")


def play(walk: Walk, sink, speedup: float = 1.0, noise_m: float = 2.0, seed: int = 1,
         truth_path: str | Path | None = None) -> int:
    """Write the walk's NMEA to ``sink`` (``write(bytes)``) paced at ``speedup`` × real time.

    ``speedup`` 0 writes as fast as the sink takes it. Returns the number of epochs written.
    """
    samples = list(walk.samples(noise_m=noise_m, seed=seed))
    if truth_path is not None:
        write_truth(truth_path, samples, walk.visits())
    started = time.monotonic()
    for i, sample in enumerate(samples):
        if speedup > 0:
            delay = started + i / speedup - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        sink.write(b"".join(epoch_sentences(sample)))
    return len(samples)
