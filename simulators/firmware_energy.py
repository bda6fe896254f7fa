"""Energy from a firmware run: the real tracker, its counters, priced by the energy model.

:func:`run_firmware` runs the firmware on the MicroPython unix port for a stretch of a walk:
GNSS from the simulated u-blox module (``simulators.gnss_module``, set up over UBX and switched
to backup between fixes by the firmware), MQTT through the simulated SIM7080G
(``simulators.modem``, radio switched off between uploads) and a byte-counting TCP proxy
(``simulators.tcp_proxy``) to a private Mosquitto. The tracker's final status message carries
its energy counters (``tracker.meter``); :func:`firmware_log` turns them into the energy
model's :class:`simulators.energy.HardwareLog`, and :func:`model_log` runs the model's own
policy strategy over the same stretch of the same walk, so both are priced by one model.

Time: with ``time_scale`` K > 1 the firmware's clock runs K times faster than the host's
(``firmware/boards/unix_clock.py``: its ticks, asyncio sleeps and timeouts and its light sleep
are scaled) and every simulator is paced to the same clock: the GNSS module plays its epochs K
times faster, the modem's registration delay is divided by K. So the whole demo walk plays in
minutes, all of it in one clock. What is not scaled is the host: a millisecond of real work or
pseudo-terminal latency counts as K milliseconds of firmware time, so the MCU's awake time is
overstated by that (never understated). Both figures are then scaled linearly to a ten-hour
shift (``SHIFT_S / duration``): the walk is 20 minutes, a shift is 30 of them.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from simulators.energy import (
    DEFAULT_HARDWARE,
    Hardware,
    HardwareLog,
    ShiftEnergy,
    mcu_active_s,
    shift_energy,
)

SHIFT_S = 36000  # the ten-hour shift


class FirmwareRunError(RuntimeError):
    """The firmware run failed (it exited with an error, or reported no counters)."""


@dataclass
class FirmwareRun:
    """What one firmware run did, as counted on every side."""

    duration_s: float  # walk seconds played
    energy: dict[str, int]  # the final status message's counters (``wire.ENERGY_FIELDS``)
    published: int  # messages the firmware had acknowledged
    payload_bytes: int  # topic + payload bytes of every message the tracker published
    proxy: dict[str, int]  # bytes each way and connections at the TCP proxy
    modem: dict[str, object]  # the simulated modem's counters
    gnss: dict[str, int]  # the simulated module's counters
    log_text: str = field(default="", repr=False)
    time_scale: int = 1  # the firmware's clock against the host's


def run_firmware(route: str | Path, fences: str | Path, seconds: float, workdir: str | Path,
                 *, device_id: str = "T-ENERGY", noise_m: float = 2.0, seed: int = 1,
                 start: float | None = None, timeout_s: float | None = None,
                 time_scale: int = 1) -> FirmwareRun:
    """Run the firmware over the first ``seconds`` of the walk along ``route``, its clock
    ``time_scale`` times faster than real time."""
    import paho.mqtt.client as mqtt

    from gateway.broker import Mosquitto
    from simulators import tracker_process
    from simulators.gnss_module import GnssModuleSim, serve
    from simulators.gps import PseudoTerminal
    from simulators.modem import SimulatedModem
    from simulators.tcp_proxy import CountingProxy
    from simulators.walk import make_walk

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    walk = make_walk(route, fences, time.time() if start is None else start)
    samples = [s for s in walk.samples(noise_m=noise_m, seed=seed)
               if s.t - walk.start <= seconds]
    duration_s = samples[-1].t - samples[0].t + 1
    state_dir = workdir / "devices" / device_id
    tracker_process.install_fences(state_dir, fences)
    log_path = workdir / f"{device_id}.log"
    # The model's u-blox M8 figures (simulators.energy.GnssParams): cold start 26 s, hot 1 s.
    module = GnssModuleSim("ublox", samples, generation="m8", cold_start_s=26, hot_start_s=1)
    payload = {"bytes": 0, "status": None}
    lock = threading.Lock()
    with Mosquitto(workdir=workdir / "broker", persistence=False) as broker, \
            CountingProxy((broker.host, broker.port)) as proxy, \
            SimulatedModem(register_delay_s=1.0 / time_scale,
                           stats_path=workdir / "modem.json") as sim:
        account = broker.device(device_id)
        observer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="energy-observer")
        observer.username_pw_set(**broker.observer.auth())

        def on_message(_c, _u, message) -> None:
            with lock:
                # What the tracker published: topic and payload, as an application sees it.
                if not message.retain or message.topic.endswith("/status"):
                    payload["bytes"] += len(message.topic.encode()) + len(message.payload)
                if message.topic.endswith("/status"):
                    payload["status"] = json.loads(message.payload)

        observer.on_message = on_message
        observer.on_connect = lambda c, *_: c.subscribe(f"hotspots/dev/{device_id}/#", 1)
        observer.connect(broker.host, broker.port)
        observer.loop_start()
        terminal = PseudoTerminal()
        # The board's GNSS UART buffer (boards/ports.py): what the firmware does not read in
        # time (it light-sleeps with the receiver on, or is busy) is lost, not queued.
        feeder = threading.Thread(target=serve, args=(module, terminal, float(time_scale)),
                                  kwargs={"rx_buffer": 2048}, daemon=True)
        firmware = tracker_process.start(
            terminal.path, proxy.address, device_id, state_dir, log_path=log_path,
            exit_on_eof=True, user=account.username, password=account.password,
            gnss_module="ublox", modem=sim.path, time_scale=time_scale)
        try:
            feeder.start()
            feeder.join(duration_s / time_scale + 120)
            terminal.close(drain_timeout_s=10)
            # The stream may end while the receiver is off: the firmware notices at the end
            # of that pause (up to the policy's longest, an hour in the lowest tier).
            try:
                firmware.wait(timeout=timeout_s or 1200)
            except subprocess.TimeoutExpired:
                firmware.kill()
                firmware.wait()
                tail = log_path.read_text()[-3000:] if log_path.exists() else ""
                raise FirmwareRunError(
                    f"firmware still running {timeout_s or 1200} s after the stream ended "
                    f"(modem {dataclasses.asdict(sim.counters)}, module "
                    f"{dataclasses.asdict(module.counts)}); its log ends:\n{tail}") from None
        finally:
            if firmware.poll() is None:
                firmware.kill()
                firmware.wait()
            terminal.hang_up()
        time.sleep(0.5)  # the observer's copy of the last status
        observer.loop_stop()
        observer.disconnect()
        modem_counters = dataclasses.asdict(sim.counters)
    log_text = log_path.read_text()
    if firmware.returncode != 0:
        raise FirmwareRunError(f"firmware exited with {firmware.returncode}:\n{log_text[-2000:]}")
    status = payload["status"] or {}
    if "energy" not in status:
        raise FirmwareRunError(f"no energy counters in the final status {status!r}")
    match = re.search(r"published (\d+) messages", log_text)
    return FirmwareRun(
        duration_s=duration_s, energy=status["energy"],
        published=int(match.group(1)) if match else 0, payload_bytes=payload["bytes"],
        proxy=dataclasses.asdict(proxy.counters), modem=modem_counters,
        gnss=dataclasses.asdict(module.counts), log_text=log_text, time_scale=time_scale)


def firmware_log(run: FirmwareRun) -> HardwareLog:
    """The energy model's hardware log from the firmware's own counters.

    Receiver on-time splits into tracking (one second per fix the firmware used: the module
    gives one epoch a second) and acquisition (the rest). The counters give the number of
    radio wake-ups, not their times: they are spread evenly over the run, and the messages
    evenly over them (the model charges a wake-up's tail by the gap to the next one).
    """
    e = run.energy
    duration = max(1, round(e["up_ms"] / 1000))
    on_s = round(e["gnss_on_ms"] / 1000)
    tracking = min(e["fixes"], on_s)
    connects = max(1, e["connects"])
    per = run.published / connects
    log = HardwareLog(duration_s=duration, gnss_acquisition_s=on_s - tracking,
                      gnss_tracking_s=tracking, fixes=e["fixes"], messages=run.published)
    log.connections = [(k * duration / connects, round(per)) for k in range(connects)]
    return log


def firmware_energy(run: FirmwareRun, hw: Hardware = DEFAULT_HARDWARE) -> ShiftEnergy:
    """Price the firmware's counters; the MCU from its measured awake time, not per event."""
    log = firmware_log(run)
    priced = shift_energy(log, hw)
    mcu = hw.mcu
    awake_s = min(run.energy["awake_ms"] / 1000, log.duration_s)
    mcu_mah = (awake_s * mcu.active_ma + (log.duration_s - awake_s) * mcu.light_sleep_ma) / 3600
    return dataclasses.replace(priced, mcu_mah=mcu_mah)


def model_energy(route: str | Path, fences: str | Path, seconds: float, *,
                 noise_m: float = 2.0, seed: int = 1,
                 hw: Hardware = DEFAULT_HARDWARE) -> tuple[ShiftEnergy, HardwareLog]:
    """The model's own policy strategy over the same stretch of the same walk."""
    from simulators.scenario import OfficerShift, trace_from_walk
    from simulators.strategies import compiled_fence_set, run_one
    from simulators.walk import make_walk

    walk = make_walk(route, fences, 0.0)
    trace = trace_from_walk(walk, noise_m, seed)
    n = min(len(trace), int(seconds) + 1)
    trace = dataclasses.replace(trace, lat_e6=trace.lat_e6[:n], lon_e6=trace.lon_e6[:n],
                                speed_cmps=trace.speed_cmps[:n], gnss_ok=trace.gnss_ok[:n],
                                cell_ok=trace.cell_ok[:n])
    fence_doc = json.loads(Path(fences).read_text())
    shift = OfficerShift("bench", walk, walk.visits(), trace, noise_m)
    run = run_one("policy", shift, compiled_fence_set(fence_doc), fence_doc, hw)
    return run.energy, run.log


def per_shift(e: ShiftEnergy) -> dict[str, float]:
    """mAh per ten-hour shift, per component, scaled linearly from the run's duration."""
    k = SHIFT_S / e.duration_s
    return {"gnss_mah": e.gnss_mah * k, "modem_mah": e.modem_mah * k, "mcu_mah": e.mcu_mah * k,
            "total_mah": e.total_mah * k}


def compare(run: FirmwareRun, fw: ShiftEnergy, model: ShiftEnergy,
            model_log: HardwareLog) -> dict:
    """Both figures per ten-hour shift, their ratio, the link's bytes, and a verdict.

    Returns a JSON-ready dict; ``lines`` is the printed report.
    """
    a, b = per_shift(model), per_shift(fw)
    ratio = b["total_mah"] / a["total_mah"] if a["total_mah"] else float("inf")
    agree = abs(ratio - 1) <= 0.10
    e = run.energy
    k = SHIFT_S / run.duration_s
    lines = [
        f"firmware run: {run.duration_s:.0f} s of the demo walk on the MicroPython unix port "
        f"(firmware up {e['up_ms'] / 1000:.0f} s), its clock {run.time_scale}x the host's; "
        f"scaled x{k:.1f} to a 10-hour shift",
        f"{'per 10 h shift':<16}{'model':>10}{'firmware':>10}{'ratio':>8}",
    ]
    for key, name in (("gnss_mah", "GNSS mAh"), ("modem_mah", "modem mAh"),
                      ("mcu_mah", "MCU mAh"), ("total_mah", "total mAh")):
        r = b[key] / a[key] if a[key] else float("inf")
        lines.append(f"{name:<16}{a[key]:>10.1f}{b[key]:>10.1f}{r:>8.2f}")
    lines += [
        f"{'receiver on s':<16}{model_log.gnss_on_s:>10d}{e['gnss_on_ms'] / 1000:>10.0f}",
        f"{'fixes':<16}{model_log.fixes:>10d}{e['fixes']:>10d}",
        f"{'connections':<16}{len(model_log.connections):>10d}{e['connects']:>10d}"
        f"   (radio wake-ups {e['wakeups']})",
        f"{'MCU awake s':<16}{mcu_active_s(model_log):>10.0f}{e['awake_ms'] / 1000:>10.0f}"
        f"   of {e['up_ms'] / 1000:.0f} s",
        f"GNSS module: {run.gnss['epochs']} epochs sent, {run.gnss['lost_epochs']} lost in "
        f"the UART (the firmware did not read them in time), {run.gnss['backups']} backups, "
        f"{run.gnss['wakes']} wakes",
        f"bytes over the link: firmware counted {e['tx']} up / {e['rx']} down (to its last "
        f"status); TCP proxy {run.proxy['bytes_up']} up / {run.proxy['bytes_down']} down in "
        f"{run.proxy['connections']} connections; modem simulator {run.modem['bytes_up']} up / "
        f"{run.modem['bytes_down']} down; the messages themselves (topic + payload) "
        f"{run.payload_bytes} bytes, {run.published} published "
        f"(link/messages {run.proxy['bytes_up'] / max(1, run.payload_bytes):.2f})",
        f"per 10 h shift: {run.proxy['bytes_up'] * k / 1000:.0f} KB up and "
        f"{run.proxy['bytes_down'] * k / 1000:.0f} KB down over the link (TCP proxy) for "
        f"{run.payload_bytes * k / 1000:.0f} KB of messages (topic + payload)",
    ]
    if run.gnss.get("lost_epochs"):
        lines.append(f"WARNING: {run.gnss['lost_epochs']} GNSS epochs lost: the host was too "
                     f"slow for --time-scale {run.time_scale}; run with a lower one")
    lines += [
        f"total: firmware/model {ratio:.2f}: "
        + ("agree within 10 %" if agree else "DISAGREE by more than 10 % — " + verdict(
            run, a, b)),
    ]
    return {"duration_s": run.duration_s, "scale": k, "model": a, "firmware": b,
            "ratio": ratio, "agree": agree, "energy": e, "published": run.published,
            "payload_bytes": run.payload_bytes, "proxy": run.proxy,
            "modem": {k2: v for k2, v in run.modem.items() if k2 != "commands"},
            "gnss_module": {k2: v for k2, v in run.gnss.items() if k2 != "applied"},
            "lines": lines}


def verdict(run: FirmwareRun, model: dict[str, float], fw: dict[str, float]) -> str:
    """Which side is wrong, from the component that differs most."""
    worst = max(("gnss_mah", "modem_mah", "mcu_mah"), key=lambda c: abs(fw[c] - model[c]))
    e = run.energy
    if worst == "mcu_mah":
        return (f"the MCU: the firmware was awake {e['awake_ms'] / 1000:.0f} of "
                f"{e['up_ms'] / 1000:.0f} s; it light-sleeps only with the receiver off and "
                "the radio asleep, as the model charges it (awake while the receiver is on, "
                "per message and per second of radio work); beyond that, each millisecond of "
                f"host time counts {run.time_scale} ms of firmware time (--time-scale)")
    if worst == "gnss_mah":
        return (f"the receiver: on {e['gnss_on_ms'] / 1000:.0f} s for {e['fixes']} fixes in "
                "the firmware; the model's receiver follows the policy second by second, the "
                "firmware's module needs its start-up and set-up time after each wake"
                + (f", and {run.gnss['lost_epochs']} epochs were lost (the host too slow for "
                   "--time-scale)" if run.gnss.get("lost_epochs") else ""))
    return (f"the modem: {e['connects']} connections in the firmware, among them one-offs the "
            "model's policy does not make (a status at boot and once the GNSS module is set "
            "up, the final upload at the end of the stream); scaled from one walk to a shift "
            "they count many times over, in a real shift once")
