"""An Airwave (TETRA) radio on a pseudo-terminal: PEI answers and LIP reports, with ground truth.

The station gateway's radio is simulated as what the gateway sees on its serial port: a TETRA
terminal that answers the PEI set-up (``AT``, ``ATE0``, ``AT+CTSP=...``, ``AT+CNUMF?``) and,
once LIP is routed to the terminal equipment, passes on the location reports of the officers'
radios as ``+CTSDSR`` unsolicited results.

Each officer walks a route (:mod:`simulators.walk`) and their radio reports like an Airwave
handset does: every 2-5 minutes (reason 129) or after moving a set distance (reason 130),
whichever comes first. The field problems are built in:

- dead spots: reports made inside one never reach the network (lost);
- mast snapping: inside a snap zone the radio has no GNSS and reports its serving mast's
  location instead, still claiming an error under 20 m;
- no-fix reports: some reports carry no position (short: error "not known"; long: no shape and
  a result code);
- drop-outs: a radio goes silent for a while (battery, switched off).

The plan is made up front and deterministically (:func:`plan_reports`), so the ground truth of
every report — true position, what was reported, and its fate — is known exactly and written
as JSON lines. Time in the reports is simulated time: ``speedup`` plays it faster than real
time, and :meth:`RadioTerminal.now` is the clock a gateway under test should use to receive.
"""

from __future__ import annotations

import json
import os
import random
import select
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from shapely.geometry import LineString

from gateway.intake.airwave import lip
from gateway.intake.airwave.filters import distance_m
from gateway.intake.airwave.sds import ctsdsr
from simulators.gps import PseudoTerminal
from simulators.walk import Walk, make_walk


@dataclass
class Zone:
    """A circle on the ground: a dead spot or a mast-snapping zone (with its mast)."""

    lat: float
    lon: float
    radius_m: float
    mast: tuple[float, float] | None = None

    def contains(self, lat: float, lon: float) -> bool:
        return distance_m(self.lat, self.lon, lat, lon) <= self.radius_m


@dataclass
class RadioOfficer:
    """One officer's radio: its ISSI, the walk, and the report form it uses."""

    issi: int
    walk: Walk
    kind: str = lip.SHORT  # or lip.LONG


@dataclass
class RadioScenario:
    """Everything that decides what the radios report."""

    officers: list[RadioOfficer]
    dead_spots: list[Zone] = field(default_factory=list)
    snap_zones: list[Zone] = field(default_factory=list)
    dropouts: list[tuple[int, float, float]] = field(default_factory=list)  # issi, from, to
    nofix_rate: float = 0.1
    min_interval_s: float = 120.0
    max_interval_s: float = 300.0
    distance_m: float = 250.0
    noise_m: float = 3.0
    seed: int = 1
    gateway_issi: int = 9999


@dataclass
class PlannedReport:
    """One location report as planned, with its ground truth and fate.

    ``fate``: ``sent`` (reaches the gateway), ``lost_dead_spot``, ``dropout``, or
    ``not_routed`` (the terminal had not been told to pass LIP on when it came).
    """

    issi: int
    t_fix: int
    t_send: float
    kind: str
    reason: int
    fate: str
    true_lat: float
    true_lon: float
    reported_lat: float | None
    reported_lon: float | None
    nofix: bool
    snapped: bool
    claimed_err_m: float | None
    hex: str
    nbits: int

    def frame(self, gateway_issi: int) -> bytes:
        return ctsdsr(self.issi, gateway_issi, bytes.fromhex(self.hex), self.nbits)


def _report_pdu(kind: str, t_fix: int, t_send: float, lat: float, lon: float, nofix: bool,
                speed_mps: float, course_deg: float, reason: int, ref: int) -> lip.LipReport:
    if kind == lip.SHORT:
        age = t_send - t_fix
        report = lip.short_report(lat, lon, time_elapsed=0 if age < 5 else 1, pos_err_class=1,
                                  speed=speed_mps * 3.6, direction=course_deg, reason=reason)
        if nofix:
            report.pos_err_class = 7
            report.time_elapsed = 3
        return report
    stamp = time.gmtime(t_fix)
    report = lip.LipReport(
        lip.LONG, time_type=2,
        time_of_position=(stamp.tm_mday, stamp.tm_hour, stamp.tm_min, stamp.tm_sec),
        additional_type=0, additional=reason,
        type5=[(lip.T5_LOCATION_MESSAGE_REFERENCE, 8, ref % 256)],
    )
    if nofix:
        report.shape = 0
        report.velocity_type = 0
        report.type5.append((lip.T5_RESULT_CODE, 8, 14))  # type of information not available
        return report
    report.shape = 5  # circle with altitude
    report.lon_raw, report.lat_raw = lip.lon_to_raw(lon), lip.lat_to_raw(lat)
    report.radius = lip.uncertainty_code(15.0)
    report.altitude = lip.altitude_code(20.0)
    report.velocity_type = 5  # horizontal velocity with direction of travel extended
    report.speed_code = lip.speed_code(speed_mps * 3.6)
    report.direction_ext = round(course_deg * 256 / 360) % 256
    return report


def plan_reports(scenario: RadioScenario) -> list[PlannedReport]:
    """Every report every radio makes, in sending order, with truth and fate."""
    rng = random.Random(scenario.seed)
    planned: list[PlannedReport] = []
    for number, officer in enumerate(scenario.officers):
        last_t: float | None = None
        last_pos: tuple[float, float] | None = None
        interval = rng.uniform(scenario.min_interval_s, scenario.max_interval_s)
        ref = 0
        samples = officer.walk.samples(noise_m=scenario.noise_m, seed=scenario.seed + number)
        for sample in samples:
            reason = None
            if last_t is None:
                reason = 0  # powered on at the start of the patrol
            elif sample.t - last_t >= interval:
                reason = 129
            elif last_pos and distance_m(*last_pos, sample.lat, sample.lon) >= scenario.distance_m:
                reason = 130
            if reason is None:
                continue
            last_t, last_pos = sample.t, (sample.lat, sample.lon)
            interval = rng.uniform(scenario.min_interval_s, scenario.max_interval_s)
            ref += 1
            planned.append(_plan_one(scenario, officer, sample, reason, ref, rng))
    planned.sort(key=lambda p: (p.t_send, p.issi))
    return planned


def _plan_one(scenario: RadioScenario, officer: RadioOfficer, sample, reason: int, ref: int,
              rng: random.Random) -> PlannedReport:
    t_fix = int(sample.t)
    t_send = t_fix + rng.uniform(0.5, 3.0)
    fate = "sent"
    if any(officer.issi == issi and start <= t_fix < end
           for issi, start, end in scenario.dropouts):
        fate = "dropout"
    elif any(zone.contains(sample.lat, sample.lon) for zone in scenario.dead_spots):
        fate = "lost_dead_spot"
    snap = next((z for z in scenario.snap_zones if z.contains(sample.lat, sample.lon)), None)
    nofix = snap is None and rng.random() < scenario.nofix_rate
    if snap is not None and snap.mast is not None:
        lat, lon = snap.mast
    else:
        lat, lon = sample.reported_lat, sample.reported_lon
    report = _report_pdu(officer.kind, t_fix, t_send, lat, lon, nofix, sample.speed_mps,
                         sample.course_deg, reason, ref)
    data, nbits = lip.encode(report)
    return PlannedReport(
        issi=officer.issi, t_fix=t_fix, t_send=round(t_send, 3), kind=officer.kind,
        reason=reason, fate=fate, true_lat=sample.lat, true_lon=sample.lon,
        reported_lat=None if nofix else report.lat, reported_lon=None if nofix else report.lon,
        nofix=nofix, snapped=snap is not None, claimed_err_m=None if nofix else report.pos_err_m,
        hex=(bytes([lip.PROTOCOL_ID]) + data).hex().upper(), nbits=8 + nbits,
    )


def default_scenario(route_path: str | Path, start: float, officers: int = 3, seed: int = 1,
                     first_issi: int = 2340001, kinds: tuple[str, ...] = (lip.SHORT, lip.LONG),
                     ) -> RadioScenario:
    """Officers walking ROUTE (alternately reversed, staggered by 90 s), a dead spot at 30 %
    of the way, a mast-snapping zone at 75 % with its mast 360 m off, one radio dropping out."""
    base = make_walk(route_path, None, start)
    coords = list(base.route.coords)
    crew = []
    for k in range(officers):
        route = LineString(coords[::-1] if k % 2 else coords)
        walk = Walk(route, base.projection, start + 90 * k, base.speed_mps)
        crew.append(RadioOfficer(first_issi + k, walk, kinds[k % len(kinds)]))

    def at(fraction: float, dx: float = 0.0, dy: float = 0.0) -> tuple[float, float]:
        point = base.route.interpolate(fraction * base.route.length)
        lon, lat = base.projection.to_lonlat(point.x + dx, point.y + dy)
        return lat, lon

    dead = Zone(*at(0.30), radius_m=110.0)
    snap = Zone(*at(0.75), radius_m=130.0, mast=at(0.75, 300.0, 200.0))
    dropouts = [(first_issi + 1, start + 0.45 * base.duration_s,
                 start + 0.60 * base.duration_s)] if officers > 1 else []
    return RadioScenario(crew, [dead], [snap], dropouts, seed=seed)


def write_truth(path: str | Path, scenario: RadioScenario, reports: list[PlannedReport]) -> None:
    """Ground truth as JSON lines: the zones and masts, then one line per report."""
    with open(path, "w") as out:
        for zone in scenario.dead_spots:
            out.write(json.dumps({"type": "dead_spot", **asdict(zone)}) + "\n")
        for zone in scenario.snap_zones:
            out.write(json.dumps({"type": "snap_zone", **asdict(zone)}) + "\n")
        for issi, start, end in scenario.dropouts:
            out.write(json.dumps({"type": "dropout", "issi": issi, "from": start,
                                  "to": end}) + "\n")
        for report in reports:
            out.write(json.dumps({"type": "report", **asdict(report)}) + "\n")


class RadioTerminal:
    """The radio attached to the gateway: a pseudo-terminal speaking PEI.

    :param reports: the plan (see :func:`plan_reports`)
    :param speedup: simulated seconds per real second (> 0)
    :param start: simulated time at which playing starts (default: the first report's time)
    :param chatter: also pass on a status and a text SDS, as a real radio would
    """

    def __init__(self, reports: list[PlannedReport], speedup: float = 1.0,
                 start: float | None = None, gateway_issi: int = 9999, chatter: bool = True):
        if speedup <= 0:
            raise ValueError("speedup must be positive for a live terminal")
        self.reports = reports
        self.speedup = speedup
        self.start = start if start is not None else (reports[0].t_send - 1 if reports else 0.0)
        self.gateway_issi = gateway_issi
        self.chatter = chatter
        self.terminal = PseudoTerminal()
        self.path = self.terminal.path
        self.echo = True
        self.routed: set[tuple[int, int]] = set()
        self.commands: list[str] = []
        self._t0: float | None = None
        self._inbox = bytearray()

    def now(self) -> float:
        """Simulated time (UTC epoch seconds): the clock a gateway under test receives by."""
        if self._t0 is None:
            return self.start
        return self.start + (time.monotonic() - self._t0) * self.speedup

    @property
    def lip_routed(self) -> bool:
        return any(layer1 == 3 and layer2 == 10 for layer1, layer2 in self.routed)

    def run(self, stop: threading.Event | None = None, wait_for_setup_s: float = 10.0,
            linger_s: float = 0.5) -> list[PlannedReport]:
        """Answer commands and pass the reports on at their times; returns the reports with
        their final fates. Waits up to ``wait_for_setup_s`` for LIP routing before starting the
        clock (a radio is on before the patrol starts)."""
        stop = stop or threading.Event()
        deadline = time.monotonic() + wait_for_setup_s
        while not self.lip_routed and time.monotonic() < deadline and not stop.is_set():
            self._serve(0.05)
        self._t0 = time.monotonic()
        if self.chatter and self.lip_routed:
            issi = self.reports[0].issi if self.reports else 1
            self._write(ctsdsr(issi, self.gateway_issi, bytes.fromhex("8002"), 16,
                               ai_service=13))
            text = bytes([0x82, 0x00, 0x01, 0x01]) + b"on patrol"
            self._write(ctsdsr(issi, self.gateway_issi, text, 8 * len(text)))
        for report in self.reports:
            while not stop.is_set():
                wait = (report.t_send - self.now()) / self.speedup
                if wait <= 0:
                    break
                self._serve(min(wait, 0.05))
            if stop.is_set():
                break
            if report.fate != "sent":
                continue
            if not self.lip_routed:
                report.fate = "not_routed"
                continue
            self._write(report.frame(self.gateway_issi))
        end = time.monotonic() + linger_s
        while time.monotonic() < end and not stop.is_set():
            self._serve(0.05)
        return self.reports

    def close(self, drain_timeout_s: float = 5.0) -> None:
        self.terminal.close(drain_timeout_s)

    # -- the PEI side -----------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        self.terminal.write(data)

    def _serve(self, timeout_s: float) -> None:
        ready, _, _ = select.select([self.terminal.controller], [], [], timeout_s)
        if not ready:
            return
        try:
            self._inbox.extend(os.read(self.terminal.controller, 4096))
        except OSError:
            return
        while True:
            cut = min((i for i in (self._inbox.find(b"\r"), self._inbox.find(b"\n")) if i >= 0),
                      default=-1)
            if cut < 0:
                return
            line = self._inbox[:cut].decode("ascii", errors="replace").strip()
            del self._inbox[: cut + 1]
            if line:
                self._command(line)

    def _command(self, line: str) -> None:
        self.commands.append(line)
        if self.echo:
            self._write(line.encode("ascii", errors="replace") + b"\r\n")
        command = line.upper()
        reply = "ERROR"
        if command in ("AT", "ATZ") or command.startswith("AT+CTOM="):
            reply = "OK"
        elif command in ("ATE0", "ATE1"):
            self.echo = command == "ATE1"
            reply = "OK"
        elif command.startswith("AT+CTSP="):
            parts = command[8:].split(",")
            if len(parts) >= 2 and all(p.strip().isdigit() for p in parts[:3]):
                profile, layer1 = int(parts[0]), int(parts[1])
                layer2 = int(parts[2]) if len(parts) > 2 else 0
                if profile in (1, 2) and layer1 in (0, 1, 2, 3):
                    self.routed.add((layer1, layer2))
                    reply = "OK"
        elif command == "AT+CNUMF?":
            self._write(f"\r\n+CNUMF: 0,{self.gateway_issi}\r\n".encode("ascii"))
            reply = "OK"
        self._write(f"\r\n{reply}\r\n".encode("ascii"))


def write_frames(reports: list[PlannedReport], sink, gateway_issi: int = 9999) -> int:
    """Write the frames of the reports that reach the gateway to ``sink`` (a file); returns
    how many."""
    count = 0
    for report in reports:
        if report.fate == "sent":
            sink.write(report.frame(gateway_issi))
            count += 1
    return count
