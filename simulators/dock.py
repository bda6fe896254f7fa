"""A docking station with simulated trackers: slots, USB cables, batteries on chargers.

What the gateway sees is what it would see on a Raspberry Pi with a USB dock: one serial port per
slot (here the device end of a pseudo-terminal, :attr:`Slot.port`). Each tracker is the real
firmware on the MicroPython unix port with three simulated parts: a GNSS module
(a :class:`simulators.gps.PseudoTerminal` to play walks into), its USB serial (another
pseudo-terminal, ``--dock``), and a fuel gauge (a file, ``--battery``).

Plugging tracker X into slot S connects the two serial links: one thread copies bytes between
S's and X's pseudo-terminals while they are plugged together and drops them otherwise, exactly as
a cable does. :meth:`DockSimulator.unplug_after` pulls a tracker out after a given number of
bytes have gone from it to the gateway, to cut a transfer mid-frame.

Batteries follow :class:`gateway.fleet.dock.BatteryModel`: charging in a slot, draining at
``tracking_ma`` out of it while the firmware runs, in simulated time (``time_scale`` simulated
seconds per real second).
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gateway.fleet.dock import BatteryModel
from simulators import gps, tracker_process


@dataclass
class Slot:
    """One slot: its serial port as the gateway opens it, and the tracker plugged in, if any."""

    name: str
    terminal: gps.PseudoTerminal
    tracker: SimTracker | None = None

    @property
    def port(self) -> str:
        return self.terminal.path


@dataclass
class SimTracker:
    """One simulated tracker: firmware process, GNSS, USB serial and battery."""

    device_id: str
    state_dir: Path
    gnss: gps.PseudoTerminal
    usb: gps.PseudoTerminal
    battery_path: Path
    batt: float
    model: BatteryModel
    log_path: Path
    process: subprocess.Popen | None = None
    slot: Slot | None = None

    def write_battery(self) -> None:
        # A file per writing thread, renamed into place: the firmware never reads half a file.
        tmp = self.battery_path.with_suffix(f".{threading.get_ident()}.tmp")
        charging = 1 if self.slot is not None and self.batt < 100 else 0
        tmp.write_text(f"{int(self.batt)} {charging}\n")
        os.replace(tmp, self.battery_path)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class DockSimulator:
    """``slots`` dock slots and any number of trackers, each either in a slot or out.

    :param broker: ``HOST:PORT`` the trackers publish to
    :param auth: device id -> ``(user, password)`` for the broker, or None for no login
    :param time_scale: simulated seconds per real second, for the batteries
    """

    def __init__(self, workdir: str | Path, broker: str, slots: int = 3, *,
                 auth=None, time_scale: float = 60.0, model: BatteryModel | None = None,
                 tracking_ma: float = 120.0, report_s: int = 10,
                 fences: str | Path | None = None, sampling: str = "fixed"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.broker = broker
        self.auth = auth
        self.time_scale = time_scale
        self.model = model or BatteryModel()
        self.tracking_ma = tracking_ma
        self.report_s = report_s
        # Fixed sampling by default: a fix reported every ``report_s`` gives the dock a full
        # outbox to pull; the trackers' battery here is the simple model above, not the policy's.
        self.sampling = sampling
        self.fences = fences
        self.slots = [Slot(f"S{i + 1}", gps.PseudoTerminal(blocking=False))
                      for i in range(slots)]
        self.trackers: dict[str, SimTracker] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._cut: dict[str, int] = {}  # slot -> bytes still allowed to the gateway
        self._bridge = threading.Thread(target=self._forward, name="dock-cables", daemon=True)
        self._bridge.start()
        self._charger = threading.Thread(target=self._charge, name="dock-charger", daemon=True)
        self._charger.start()

    # -- trackers ---------------------------------------------------------------------------
    def add_tracker(self, device_id: str, batt: float = 100.0, slot: str | None = None,
                    start: bool = True) -> SimTracker:
        """Make a tracker (its firmware started), plugged into ``slot`` if given."""
        state = self.workdir / "devices" / device_id
        state.mkdir(parents=True, exist_ok=True)
        if self.fences:
            tracker_process.install_fences(state, self.fences)
        tracker = SimTracker(device_id, state, gps.PseudoTerminal(),
                             gps.PseudoTerminal(blocking=False),
                             self.workdir / f"{device_id}.battery", batt, self.model,
                             self.workdir / f"{device_id}.log")
        tracker.write_battery()
        self.trackers[device_id] = tracker
        if slot is not None:
            self.plug(device_id, slot)
        if start:
            self.start(device_id)
        return tracker

    def start(self, device_id: str) -> None:
        """Start (or restart) the tracker's firmware."""
        t = self.trackers[device_id]
        user, password = self.auth(device_id) if self.auth else (None, None)
        t.process = tracker_process.start(
            t.gnss.path, self.broker, device_id, t.state_dir, log_path=t.log_path,
            append_log=True, report_s=self.report_s, user=user, password=password,
            sampling=self.sampling, dock=t.usb.path, battery=t.battery_path)

    def stop_tracker(self, device_id: str) -> None:
        t = self.trackers[device_id]
        if t.process is not None and t.process.poll() is None:
            t.process.terminate()
            try:
                t.process.wait(10)
            except subprocess.TimeoutExpired:
                t.process.kill()
                t.process.wait()

    def slot(self, name: str) -> Slot:
        return next(s for s in self.slots if s.name == name)

    def ports(self) -> dict[str, str]:
        """Slot name -> serial port, as ``hotspots dock run --slot NAME=PORT`` takes them."""
        return {s.name: s.port for s in self.slots}

    def plug(self, device_id: str, slot: str) -> None:
        """Put the tracker into ``slot`` (it must be empty)."""
        with self._lock:
            s = self.slot(slot)
            t = self.trackers[device_id]
            if s.tracker is not None:
                raise ValueError(f"slot {slot} holds {s.tracker.device_id}")
            if t.slot is not None:
                t.slot.tracker = None
            s.tracker = t
            t.slot = s
            self._cut.pop(slot, None)
        t.write_battery()

    def unplug(self, device_id: str) -> None:
        """Take the tracker out of its slot."""
        with self._lock:
            t = self.trackers[device_id]
            if t.slot is not None:
                self._cut.pop(t.slot.name, None)
                t.slot.tracker = None
                t.slot = None
        t.write_battery()

    def unplug_after(self, device_id: str, nbytes: int) -> None:
        """Pull the tracker out once ``nbytes`` more bytes went from it to the gateway."""
        with self._lock:
            t = self.trackers[device_id]
            if t.slot is not None:
                self._cut[t.slot.name] = nbytes

    def play(self, device_id: str, walk, speedup: float = 60.0, seed: int = 1) -> int:
        """Walk ``walk`` (a :class:`simulators.walk.Walk`) with the tracker's GNSS module."""
        return gps.play(walk, self.trackers[device_id].gnss, speedup=speedup, seed=seed)

    def close(self) -> None:
        for device_id in self.trackers:
            self.stop_tracker(device_id)
        self._stop.set()
        self._bridge.join(5)
        self._charger.join(5)
        for t in self.trackers.values():
            t.gnss.hang_up()
            t.usb.hang_up()
        for s in self.slots:
            s.terminal.hang_up()

    # -- the cables -------------------------------------------------------------------------
    def _forward(self) -> None:
        while not self._stop.is_set():
            fds: dict[int, tuple[str, object]] = {}
            with self._lock:
                for s in self.slots:
                    fds[s.terminal.controller] = ("slot", s)
                for t in self.trackers.values():
                    fds[t.usb.controller] = ("tracker", t)
            try:
                ready, _, _ = select.select(list(fds), [], [], 0.05)
            except (OSError, ValueError):
                continue
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                with self._lock:
                    kind, end = fds[fd]
                    if kind == "slot":
                        peer = end.tracker.usb.controller if end.tracker else None
                    else:
                        peer = end.slot.terminal.controller if end.slot else None
                        if peer is not None and end.slot.name in self._cut:
                            left = self._cut[end.slot.name]
                            if len(data) >= left:
                                data = data[:left]
                                self._cut.pop(end.slot.name)
                                end.slot.tracker = None
                                end.slot = None
                                end.write_battery()  # off the charger now, as unplug() says
                            else:
                                self._cut[end.slot.name] = left - len(data)
                if peer is not None and data:
                    with contextlib.suppress(OSError):  # a full buffer: bytes lost, as on USB
                        os.write(peer, data)

    # -- the chargers -----------------------------------------------------------------------
    def _charge(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.2):
            now = time.monotonic()
            dt = (now - last) * self.time_scale
            last = now
            for t in list(self.trackers.values()):
                before = int(t.batt)
                if t.slot is not None:
                    t.batt = self.model.charge(t.batt, dt)
                elif t.process is not None and t.process.poll() is None:
                    t.batt = self.model.drain(t.batt, dt, self.tracking_ma)
                if int(t.batt) != before:
                    t.write_battery()

