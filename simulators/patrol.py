"""One officer's patrol, end to end on real parts: GNSS simulator → firmware → Mosquitto →
gateway → SQLite.

Used by ``hotspots demo`` and by the end-to-end tests. Only the GNSS module and the officer are
simulated; the firmware runs on the MicroPython unix port (or the core on CPython), the broker is
a real Mosquitto and the gateway is the real one, in a thread.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.broker import Mosquitto
from gateway.fleet.identity import register_device
from gateway.intake.intake import IntakeCounts
from gateway.intake.service import Gateway
from gateway.schema import open_db
from simulators import gps, tracker_process
from simulators.walk import Visit, make_walk, replay_start


class PatrolError(RuntimeError):
    """A part of the chain failed; the message says which and where its log is."""


@dataclass
class PatrolResult:
    """What happened: the truth, what the firmware says it published, what the gateway stored."""

    db_path: Path
    truth_path: Path
    log_path: Path
    truth: list[Visit]
    published: int
    counts: IntakeCounts
    epochs: int
    walk_duration_s: float
    wall_s: float = 0.0
    firmware_log: str = field(default="", repr=False)


def enrol(db_path: str | Path, device_id: str, state_dir: str | Path,
          fences: str | Path) -> None:
    """Ready a tracker for a patrol: its hot spots installed in its state folder (before its
    first fence download) and the device put in the gateway's fleet (the gateway quarantines
    devices it does not know)."""
    tracker_process.install_fences(state_dir, fences)
    db = open_db(str(db_path))
    register_device(db, device_id)
    db.close()


def run_patrol(
    broker: str,
    workdir: str | Path,
    route: str | Path,
    fences: str | Path,
    *,
    device_id: str = "T-0001",
    speedup: float = 60.0,
    start: float | None = None,
    noise_m: float = 2.0,
    seed: int = 1,
    cpython: bool = False,
    db_path: str | Path | None = None,
    timeout_s: float = 120.0,
    modem: str | None = None,
) -> PatrolResult:
    """Walk ``route`` through ``fences`` with one tracker and store everything in SQLite.

    ``modem``: the serial device of a SIM7080G (``simulators.modem``'s pseudo-terminal) the
    firmware reaches the broker through, instead of the host's sockets."""
    began = time.monotonic()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = Path(db_path or workdir / "hotspots.db")
    truth_path = workdir / f"{device_id}.truth.jsonl"
    log_path = workdir / f"{device_id}.log"
    state_dir = workdir / "devices" / device_id
    walk = make_walk(route, fences, 0.0 if start is None else start)
    if start is None:
        walk.start = replay_start(walk.duration_s, speedup)
    enrol(db_path, device_id, state_dir, fences)
    # A broker this process started has accounts for the gateway and (on demand) the device.
    mosquitto = Mosquitto.running_at(broker)
    gateway_auth = mosquitto.gateway.auth() if mosquitto else {}
    device_auth = mosquitto.device(device_id) if mosquitto else None

    stop = threading.Event()
    gateway = Gateway(broker, str(db_path), **gateway_auth)
    counts_box: list[IntakeCounts] = []
    gateway_thread = threading.Thread(
        target=lambda: counts_box.append(gateway.run(stop)), name="gateway", daemon=True
    )
    gateway_thread.start()
    if not gateway.connected.wait(10):
        stop.set()
        raise PatrolError(f"gateway could not connect to the broker at {broker}")

    terminal = gps.PseudoTerminal()
    firmware = tracker_process.start(
        terminal.path, broker, device_id, state_dir, log_path=log_path, exit_on_eof=True,
        cpython=cpython, user=device_auth.username if device_auth else None,
        password=device_auth.password if device_auth else None, modem=modem,
    )
    try:
        epochs = gps.play(walk, terminal, speedup=speedup, noise_m=noise_m, seed=seed,
                          truth_path=truth_path)
        terminal.close()
        firmware.wait(timeout=timeout_s)
    except Exception:
        firmware.kill()
        firmware.wait()
        stop.set()
        raise
    log_text = log_path.read_text()
    if firmware.returncode != 0:
        stop.set()
        raise PatrolError(f"firmware exited with {firmware.returncode}; log {log_path}:\n"
                          + log_text[-2000:])
    match = re.search(r"published (\d+) messages", log_text)
    published = int(match.group(1)) if match else 0

    # The firmware has its PUBACKs; wait until the gateway has committed as many messages.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        intake = gateway.intake
        if intake is not None:
            done = sum(intake.counts.stored.values()) + intake.counts.duplicates
            if done >= published:
                break
        time.sleep(0.1)
    time.sleep(gateway.batch_s * 2)
    stop.set()
    gateway_thread.join(timeout=30)
    return PatrolResult(
        db_path=db_path,
        truth_path=truth_path,
        log_path=log_path,
        truth=walk.visits(),
        published=published,
        counts=counts_box[0] if counts_box else gateway.intake.counts,
        epochs=epochs,
        walk_duration_s=walk.duration_s,
        wall_s=time.monotonic() - began,
        firmware_log=log_text,
    )
