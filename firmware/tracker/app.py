"""The tracker: NMEA in, fences evaluated, messages queued and published.

``Tracker`` is the pure, synchronous core: feed it serial bytes and the time, and it fills the
outbox. ``run`` is the asyncio loop that wires a board's ports to it: a GNSS line source, an
``open_connection`` for MQTT, storage and a clock. Only this module reads the clock.
"""

import asyncio
import gc
import json
import random
import sys

from tracker import wire
from tracker.compat import MICROPYTHON, const, ticks_diff, ticks_ms
from tracker.fence import FenceEngine, FenceSetError, FenceStore
from tracker.meter import Meter
from tracker.mqtt import MQTTClient, MQTTError
from tracker.nmea import NmeaParser
from tracker.outbox import Outbox
from tracker.policy import Policy, approx_distance_m, density_near

FIRMWARE_VERSION = "0.1.0"

_REPORT_INTERVAL_S = const(10)
_MOVE_REPORT_M = const(50)
_BATCH = const(20)  # messages in flight per round trip
_MAX_BACKOFF_S = const(60)
# Longest the radio stays on after an upload for a fence set still coming in; then it sleeps, and
# the fetch starts over at the next connect.
_FETCH_HOLD_MS = const(120000)
_FAR_M = const(100000)  # "no fence anywhere near" for the policy
_SHIFT_S = const(36000)  # the shift the battery budget must reach: ten hours
_GC_EVERY = const(8192)  # bytes allocated between collections (see ``run``)
# Indexes into ``run``'s state list.
_S_EOF = const(0)
_S_PUBLISHED = const(1)
_S_STATUS_DUE = const(2)
_S_DRAINING = const(3)
_S_SHIFT_END = const(4)
_S_BUDGET_MS = const(5)
_S_RTC_T = const(6)
_S_HEAP_MS = const(7)
_S_OOM = const(8)
_S_FETCH = const(9)
_S_FETCHING = const(10)
_S_FETCH_MS = const(11)
_S_UNSUBSCRIBE = const(12)
_S_REFUSED = const(13)
_S_RADIO_OFF = const(14)


class Tracker:
    """Turns GNSS epochs into OwnTracks messages in the outbox.

    :param device_id: the device id (topic and ``dev`` field)
    :param outbox: an :class:`tracker.outbox.Outbox`
    :param fence_set: the active :class:`tracker.fence.FenceSet`, or None
    :param report_interval_s: with fixed sampling, a location at least this often
    :param policy: a :class:`tracker.policy.Policy` for adaptive sampling and reporting, or None
        for fixed sampling (every epoch evaluated, a location every ``report_interval_s`` or
        50 m moved, everything sent at once)

    With a policy, the receiver is "off" from each fix until ``policy.wake_t``: a board with a
    ``gnss_power`` port switches it off (``run`` does that); epochs that arrive anyway (the unix
    port replays a recorded or simulated stream) are dropped unseen, exactly as if it had been off,
    and counted in ``gnss_off_epochs``.
    """

    def __init__(self, device_id, outbox, fence_set=None, report_interval_s=_REPORT_INTERVAL_S,
                 battery=None, policy=None):
        self.device_id = device_id
        self.outbox = outbox
        self.report_interval_s = report_interval_s
        self.report_override_s = 0  # set by the gateway (command or dock); 0: none
        self.battery = battery
        self.parser = NmeaParser(self._on_fix)
        self.fence_set = fence_set
        self.engine = FenceEngine(fence_set, self._on_transition) if fence_set else None
        # Where a set handed over whole (the dock) is written before it is used: with a
        # storage, the running set is always read from flash (``tracker.dock.apply_fences``).
        self.storage = None
        self.fences_file = "fences.json"  # the set running, in flash
        self.fence_rejects = 0  # sets refused since start-up (status ``fence_rej``)
        self.memory_errors = 0  # fixes whose fence update or report ran out of heap
        self.fence_error = ""  # why the last one was refused (status ``fence_err``)
        self.invalid_epochs = 0
        self.fixes = 0
        self.last_fix_t = 0
        self._last_fix_ms = 0
        self._now_ms = 0
        self._last_report = (0, 0, 0)  # (t, lat_e6, lon_e6) of the last location (fixed sampling)
        # Pooled trackers record nothing off patrol: in the dock, or not signed out to anyone
        # (tracker.dock keeps both). A board without a dock counts as signed out, undocked.
        self.docked = False
        self.assigned = True
        self.policy = policy
        self.gnss_module = None  # the module driver, for the status message (set by run)
        self.meter = None  # tracker.meter.Meter, for the status message (set by run)
        self.link = None  # the MQTT client, whose byte and connection counts the status reports
        self.wall_clock = None  # the board's RTC (``now_s()``), the time before a first fix
        self.gnss_off_until = 0  # GNSS time until which the receiver is off (0: on)
        self.gnss_off_epochs = 0
        self.oldest_pending_t = 0  # when the oldest message now waiting was queued
        self._transitioned = False  # a transition since the last fix was judged for a report

    def tracking(self):
        """True while positions are recorded: assigned to an officer and out of the dock."""
        return self.assigned and not self.docked

    def set_state(self, docked, assigned):
        """Dock and sign-out state; fence state is forgotten whenever tracking stops, so a
        patrol never starts with a stale "inside" (or leaves a hot spot it was never seen in)."""
        was = self.tracking()
        self.docked = docked
        self.assigned = assigned
        if was and not self.tracking() and self.engine is not None:
            self.engine.reset()

    # -- input ----------------------------------------------------------------------------------
    def feed(self, chunk, now_ms):
        """Parse serial bytes from the GNSS module received at ``now_ms`` (ticks)."""
        self._now_ms = now_ms
        self.parser.feed(chunk)

    def feed_line(self, line, now_ms):
        """Parse one NMEA line received at ``now_ms`` (ticks)."""
        self._now_ms = now_ms
        self.parser.feed_line(line)

    def end_of_stream(self, now_ms):
        """The GNSS stream ended: emit the epoch still being assembled."""
        self._now_ms = now_ms
        self.parser.flush()

    def fence_refused(self, exc):
        """Count a fence set that could not be used; returns the reason for the log."""
        self.fence_rejects += 1
        if isinstance(exc, MemoryError):
            why = "memory: too big for this tracker"
        elif isinstance(exc, FenceSetError):
            why = str(exc)[len("fence set: "):]
            why = exc.reason + ": " + why
        elif isinstance(exc, OSError):
            why = "flash: %s" % (exc,)
        else:
            why = "invalid: %s" % (exc,)
        self.fence_error = why[:80]
        return why

    def use_fences(self, new_set):
        """Swap in a checked :class:`tracker.fence.FenceStore` (or a whole ``FenceSet``);
        returns it."""
        if self.engine is None:
            self.engine = FenceEngine(new_set, self._on_transition)
        else:
            self.engine.set_fences(new_set)
        self.fence_set = new_set
        self.fence_error = ""
        return new_set

    # -- time -----------------------------------------------------------------------------------
    def now_s(self):
        """Device wall time: GNSS time of the last fix plus the ticks elapsed since it."""
        if not self.last_fix_t:
            return self.wall_clock() if self.wall_clock is not None else 0
        return self.last_fix_t + ticks_diff(self._now_ms, self._last_fix_ms) // 1000

    # -- core -----------------------------------------------------------------------------------
    def _on_fix(self, fix):
        policy = self.policy
        off = self.gnss_off_until
        if off and policy is not None and fix.t:
            # The policy has the receiver switched off: the epoch is dropped unseen.
            if fix.t < off:
                self.gnss_off_epochs += 1
                return
            self.gnss_off_until = 0
            policy.gnss_on(fix.t)
        if not fix.valid:
            self.invalid_epochs += 1
            if policy is not None and fix.t and self.tracking() and policy.no_fix(fix.t):
                self.gnss_off_until = policy.wake_t  # a dead spot: stop searching for a while
            return
        self.fixes += 1
        self.last_fix_t = fix.t
        self._last_fix_ms = self._now_ms
        if not self.tracking():
            return  # the clock still follows GNSS time; nothing is recorded
        engine = self.engine
        if engine is not None:
            try:
                engine.update(fix.t, fix.lat_e6, fix.lon_e6, fix.acc_cm)
            except MemoryError:
                # Counted (``memory_errors``), and the policy below still runs: skipping it
                # would keep the receiver on, and every extra fix makes it worse.
                self.memory_errors += 1
        if policy is None:
            # Fixed sampling: a transition, the interval, or 50 m moved.
            last = self._last_report
            if self._transitioned:
                trigger = "c"
            elif not last[0] or fix.t - last[0] >= self.report_interval_s:
                trigger = "t"
            elif approx_distance_m(last[1], last[2], fix.lat_e6, fix.lon_e6) >= _MOVE_REPORT_M:
                trigger = "v"
            else:
                trigger = ""
        else:
            nearest = _FAR_M
            density = 0
            pending = 0
            if engine is not None:
                nearest = engine.nearest_m
                density = density_near(engine.fences, fix.lat_e6, fix.lon_e6, nearest)
                pending = engine.pending
            trigger = policy.fix(fix.t, fix.lat_e6, fix.lon_e6, fix.speed_cmps, fix.acc_cm,
                                 nearest, density, self._transitioned, pending)
            if policy.off_s:
                self.gnss_off_until = policy.wake_t
        self._transitioned = False
        if trigger:
            try:
                seq = self.outbox.next_seq()
                regions = ()
                if engine is not None:
                    # A loop, not a comprehension: one would make ``ids`` a closure cell,
                    # allocated at every fix.
                    regions = []
                    ids = engine.fences.ids  # the hot spots read in near this fix
                    for i in engine.inside:
                        regions.append(ids[i])
                battery = self.battery
                payload = wire.location(self.device_id, seq, fix, self.now_s(), regions,
                                        battery.percent() if battery is not None else -1, trigger)
                self._put(seq, "loc", payload, fix.t)  # tracker.wire.KIND_LOCATION
                self._last_report = (fix.t, fix.lat_e6, fix.lon_e6)
            except MemoryError:
                self.memory_errors += 1

    def upload_due(self):
        """Whether the publisher should send what is waiting now (always, without a policy)."""
        n = len(self.outbox)
        if not n:
            self.oldest_pending_t = 0
            return False
        if self.policy is None:
            return True
        return self.policy.upload_due(self.now_s(), n, self.oldest_pending_t)

    def _on_transition(self, entering, index, tst, lat_e6, lon_e6):
        seq = self.outbox.next_seq()
        fences = self.engine.fences
        payload = wire.transition(self.device_id, seq, entering, fences.ids[index],
                                  fences.names[index], tst, lat_e6, lon_e6,
                                  self.parser.fix.acc_cm, self.now_s())
        self._put(seq, "event", payload, tst)  # tracker.wire.KIND_EVENT
        self._transitioned = True

    def _put(self, seq, kind, payload, t):
        if not len(self.outbox):
            self.oldest_pending_t = t
        self.outbox.put(seq, kind, payload)

    def command(self, payload):
        """Apply a command from the gateway; returns a line for the log (``tracker.commands``,
        loaded for the command and dropped again on MicroPython: rare code, out of the heap)."""
        from tracker import commands

        try:
            return commands.apply(self, payload)
        finally:
            if MICROPYTHON:  # CPython keeps it: there it costs nothing that matters
                import tracker

                sys.modules.pop("tracker.commands", None)
                if hasattr(tracker, "commands"):
                    delattr(tracker, "commands")

    def set_report_interval(self, seconds):
        """The gateway's location interval while moving (a command or the dock's ``report_s``):
        fixed sampling reports this often, and the policy uses it instead of its tier's
        interval (it still sleeps in between)."""
        self.report_override_s = seconds
        self.report_interval_s = seconds
        if self.policy is not None:
            self.policy.report_s = seconds

    def status(self, online):
        """The retained status message (``online`` false doubles as the last will)."""
        battery = self.battery
        return wire.status(self.device_id, online, self.now_s(),
                           self.fence_set.version if self.fence_set else "",
                           len(self.outbox), battery.percent() if battery is not None else -1,
                           FIRMWARE_VERSION,
                           gnss=self.gnss_module.status() if self.gnss_module else None,
                           energy=self.energy(), fence_err=self.fence_error,
                           fence_rej=self.fence_rejects)

    def energy(self):
        """The energy counters (``tracker.wire.ENERGY_FIELDS`` order), or None before ``run``."""
        meter = self.meter
        if meter is None:
            return None
        now = ticks_ms()
        link = self.link
        up = meter.up_ms(now)
        return (up, up - meter.sleep_ms, meter.receiver_ms(now), self.fixes, meter.wakeups,
                link.connects if link else 0, link.bytes_out if link else 0,
                link.bytes_in if link else 0)


class HeapWatch:
    """Heap figures for the memory budget (docs/memory.md), on MicroPython (``gc.mem_alloc``;
    on CPython every figure stays 0).

    The figures, in the order :meth:`line` prints them: bytes in use after the imports,
    collected (the base); the largest working set, i.e. live data above the base, kept by
    ``collect()`` (every few seconds); the peak in use, kept by ``sample()`` (cheap, on every
    GNSS line); the least free after a collection. One list rather than four attributes, whose
    names would be interned for good (docs/memory.md).
    """

    def __init__(self):
        self._figures = [0, 0, 0, -1]  # base, working set, peak, free at least
        if MICROPYTHON:
            gc.collect()
            self._figures[0] = self._figures[2] = gc.mem_alloc()

    def sample(self):
        if MICROPYTHON:
            used = gc.mem_alloc()
            if used > self._figures[2]:
                self._figures[2] = used

    def collect(self):
        if not MICROPYTHON:
            return
        self.sample()
        gc.collect()
        figures = self._figures
        live = gc.mem_alloc() - figures[0]
        if live > figures[1]:
            figures[1] = live
        free = gc.mem_free()
        if figures[3] < 0 or free < figures[3]:
            figures[3] = free

    def line(self):
        return ("heap: %d after start-up, working set %d above it, peak %d in use, %d free at"
                " least" % tuple(self._figures))


class Ports:
    """What a board hands the tracker.

    :param gnss: object with ``async readline() -> bytes`` (``b""`` at end of stream)
    :param open_connection: coroutine ``(host, port) -> (reader, writer)``
    :param storage: object with ``read(name)`` and atomic ``write(name, text)``
    :param log: callable taking one line of text, for the operator's console
    :param dock: the dock's serial link (``async readline()``, ``write(bytes)``), or None for a
        board without a dock (it then tracks all the time, see ``tracker.dock``)
    :param battery: object with ``percent()`` (and optionally ``charging()``), or None
    :param gnss_power: object with ``on()`` and ``off()`` for the receiver's power, or None (the
        receiver stays powered; the core still ignores epochs while the policy has it "off")
    :param radio: the link's radio (``drivers.modem_sim7080.Modem``, ``drivers.wifi.WiFi``):
        with adaptive sampling, ``await radio.sleep()`` after each upload, the MQTT session
        closed, until the next upload is due (``open_connection`` wakes it); None: stay connected
    :param gnss_module: the module driver (``drivers.gnss_module.GnssModule``: ``feed`` every
        line read, ``async configure(log)``, ``status()``), or None to take the NMEA as it comes

    Boards may also set: ``clock`` (``now_s()`` and ``sync(t)``: the RTC, set from GNSS time and
    read before the first fix, ``drivers.clock.GnssClock``), ``watchdog`` (``kick()`` on every
    pass of the main loop, ``drivers.watchdog.Watchdog``), ``idle`` (``async pause(seconds,
    busy)`` while the receiver is off, ``drivers.sleep.LightSleep``) and ``tasks`` (callables
    taking the tracker and returning a coroutine to run, e.g. the LED and the watchdog feeder).
    """

    def __init__(self, gnss, open_connection, storage, log=print, dock=None, battery=None,
                 gnss_power=None, gnss_module=None, radio=None):
        self.gnss = gnss
        self.open_connection = open_connection
        self.storage = storage
        self.log = log
        self.dock = dock
        self.battery = battery
        self.gnss_power = gnss_power
        self.gnss_module = gnss_module
        self.clock = None
        self.watchdog = None
        self.idle = None
        self.tasks = []
        self.radio = radio


def stored_fences(storage, name="fences.json", new=False):
    """The fence set in flash (or the one just spooled there, with ``new``) as a checked
    :class:`tracker.fence.FenceStore`, or None when there is none. It stays in flash: checking
    it reads it a few hundred bytes at a time, and the engine reads the hot spots near the
    tracker from it as it moves. Raises ``ValueError`` if it is not a valid set."""
    f = storage.open(name, new)
    if f is None:
        return None
    f.close()
    return FenceStore.load(lambda: storage.open(name, new))


class _Spool:
    """Where a fence set arriving over MQTT is written: its next version in flash
    (``storage.create``). A write error is remembered, not raised, so the link stays up."""

    def __init__(self, storage, name):
        self.ok = True
        try:
            self._f = storage.create(name)
        except OSError:
            self._f = None
            self.ok = False

    def write(self, data):
        if self.ok:
            try:
                self._f.write(data)
            except OSError:
                self.ok = False

    def close(self):
        if self._f is not None:
            try:
                self._f.close()
            except OSError:
                self.ok = False
            self._f = None


async def run(ports, cfg):
    """Run the tracker until the GNSS stream ends (with ``exit_on_eof``) or forever.

    ``cfg``: the settings dict of ``tracker.config`` (device id, station, broker, account,
    sampling...), validated once by ``config.build`` or ``config.load``.

    Two tasks share the outbox: one reads and parses GNSS lines, the other publishes. A dead link
    only stops the publisher; parsing and fence evaluation carry on and the outbox fills.
    """
    heap = HeapWatch()
    threshold = getattr(gc, "threshold", None)  # MicroPython's: CPython's gc has none
    if threshold is not None:
        # Collect after every _GC_EVERY bytes allocated rather than only when the heap is full:
        # garbage then never spreads over the whole heap, and what lives long (a window's
        # arrays, a set being checked) lands in low holes instead of between it. The tracker
        # patrols with 2,000 hot spots in 8 KB less heap (docs/memory.md).
        threshold(_GC_EVERY)
    device_id = cfg["device_id"]
    station = cfg["station"]
    sampling = cfg["sampling"]
    storage = ports.storage
    fences_file = "fences.json"  # Tracker.fences_file
    outbox = Outbox(storage)
    fence_set = None
    refused = None
    try:
        fence_set = stored_fences(storage, fences_file)
    except (ValueError, MemoryError, OSError) as exc:
        refused = exc
    policy = Policy() if sampling == "adaptive" else None
    battery = ports.battery
    power = ports.gnss_power
    tracker = Tracker(device_id, outbox, fence_set, cfg["report_s"], battery=battery,
                      policy=policy)
    tracker.storage = storage
    if refused is not None:
        ports.log("stored fences unusable: %s" % tracker.fence_refused(refused))
    module = ports.gnss_module
    tracker.gnss_module = module
    meter = tracker.meter = Meter(ticks_ms())
    clock = ports.clock
    if clock is not None:
        tracker.wall_clock = clock.now_s
    watchdog = ports.watchdog
    ports.log("hotspots firmware %s on %s %s: device %s, fences %s, %s sampling" % (
        FIRMWARE_VERSION, sys.implementation.name, ".".join(str(v) for v in
                                                         sys.implementation.version[:3]),
        device_id, fence_set.version if fence_set else "none", sampling))
    wake = asyncio.Event()
    # The loop's state, shared with the tasks: a list indexed by the _S_ constants rather than
    # a dict, whose keys would be 15 more interned names (docs/memory.md).
    state = [False, 0, False, False, 0, 0, 0, 0, 0, "", "", 0, "", "", False]

    async def read_gnss():
        paused = 0  # the gnss_off_until of the last pause
        while True:
            line = await ports.gnss.readline()
            if not line:
                tracker.end_of_stream(ticks_ms())
                state[_S_EOF] = True
                wake.set()
                return
            if module is not None:
                module.feed(line)  # its acknowledgements travel among the NMEA
            try:
                tracker.feed_line(line, ticks_ms())
            except MemoryError as exc:
                # Never silent, never fatal: a reader task that died would leave the tracker
                # connected and reporting nothing. The line is lost and counted.
                state[_S_OOM] += 1
                if state[_S_OOM] == 1:
                    ports.log("memory: out of heap while parsing (%r); lines dropped are counted"
                              % (exc,))
                    if hasattr(sys, "print_exception"):
                        sys.print_exception(exc)
                gc.collect()
                continue
            heap.sample()
            if clock is not None and tracker.last_fix_t - state[_S_RTC_T] >= 60:
                state[_S_RTC_T] = tracker.last_fix_t
                clock.sync(tracker.last_fix_t)  # at most once a minute: it rarely drifts
            if len(outbox):
                wake.set()
            if power is not None and tracker.gnss_off_until and policy.off_s and (
                    tracker.gnss_off_until != paused):
                # Switch the receiver off until the policy wants the next fix. Once per
                # decision: epochs still buffered from before the pause are dropped unseen
                # after it, and must not start another whole pause.
                paused = tracker.gnss_off_until
                power.off()
                meter.gnss_off(ticks_ms())
                if ports.idle is not None:
                    # Light sleep only while the radio sleeps too (a live link needs the MCU:
                    # AT answers, keepalives); awake while docked (the dock's link is served
                    # by this loop); out of the dock a light-sleep chunk only delays noticing
                    # the dock by seconds. Only the light sleep itself counts as asleep.
                    meter.sleep_ms += await ports.idle.pause(
                        policy.off_s, lambda: not state[_S_RADIO_OFF] or (
                            ports.dock is not None and tracker.docked) or tracker.upload_due())
                else:
                    await asyncio.sleep(policy.off_s)  # awake: the event loop only waits
                power.on()
                meter.gnss_on(ticks_ms())

    fences_topic = wire.fences_topic(station)
    set_prefix = fences_topic + "/"

    def spool(topic, size):
        # A fence set goes to flash as it arrives and is checked there: it is never in RAM
        # (docs/memory.md).
        return _Spool(storage, fences_file) if topic.startswith(set_prefix) else None

    def on_message(topic, payload):
        if topic == fences_topic:
            if payload is not None:
                # The station's current set is named here (a few dozen bytes, at every
                # connect): fetch its body only when it is not the set running, nor one refused
                # already (it would fail the same way). An unchanged set costs nothing more.
                try:
                    doc = json.loads(payload)
                    version = doc["version"]
                    if not isinstance(version, str) or not 0 < len(version) <= 32 or (
                            "/" in version):
                        raise ValueError(version)
                except (ValueError, KeyError, TypeError):
                    ports.log("fence set rejected: %s" % tracker.fence_refused(
                        ValueError("announcement is not {\"version\": ..., \"size\": ...}")))
                    state[_S_STATUS_DUE] = True
                    return
                running = tracker.fence_set.version if tracker.fence_set is not None else ""
                if version != running and version != state[_S_REFUSED]:
                    state[_S_FETCH] = version
                    wake.set()
                return
            # Larger than a RAM payload: an old publisher sending the whole set here.
            ports.log("fence set rejected: %s" % tracker.fence_refused(
                ValueError("the fences topic must carry an announcement, not a set")))
        elif topic.startswith(set_prefix):
            # Whatever happens, the old set stays unless the new one is whole and valid; a
            # refused set is acknowledged anyway and not fetched again until a restart.
            # ``spool`` hands every fence set to flash, so ``payload`` is always a _Spool here.
            version = topic[len(set_prefix):]
            state[_S_UNSUBSCRIBE] = topic
            state[_S_FETCH] = ""
            try:
                if not payload.ok:
                    raise OSError("flash write failed")
                new_set = stored_fences(storage, fences_file, True)
                if new_set is None:
                    raise OSError("spooled set missing")
                storage.replace(fences_file)  # in flash first: what runs is what reboots
                new_set.reopen(lambda: storage.open(fences_file))
                tracker.use_fences(new_set)
                heap.sample()
            except (ValueError, MemoryError, OSError) as exc:
                storage.discard(fences_file)
                # Counted and reported in the status (the gateway raises an alert); the old
                # set keeps running.
                ports.log("fence set rejected: %s" % tracker.fence_refused(exc))
                state[_S_REFUSED] = version
                state[_S_STATUS_DUE] = True
                wake.set()
                return
            ports.log("fences %s active" % new_set.version)
        elif topic == command_topic:
            ports.log(tracker.command(payload))
        state[_S_STATUS_DUE] = True
        wake.set()

    status_topic = wire.device_topic(device_id, "status")
    command_topic = wire.device_topic(device_id, "cmd")
    client = MQTTClient(device_id, ports.open_connection, user=cfg["user"],
                        password=cfg["password"],
                        will=(status_topic, wire.status(device_id, False, 0), 1, True),
                        on_message=on_message, clean=False, spool=spool,
                        keepalive_s=cfg.get("keepalive_s") or 60)
    tracker.link = client
    reader = asyncio.create_task(read_gnss())
    if module is not None:
        from tracker import lowpower  # only with a GNSS module driver

        asyncio.create_task(lowpower.configure_gnss(module, ports.log, state, wake))
    for start in ports.tasks:
        asyncio.create_task(start(tracker))
    if ports.dock is not None:  # the dock link's code is loaded only on a board with a dock
        from tracker import dock

        def due():
            state[_S_STATUS_DUE] = True
            wake.set()

        dock.start(ports, tracker, due)
    backoff_s = 1
    while True:
        if watchdog is not None:
            watchdog.kick()  # out of coverage is not a hang: each attempt counts as progress
        try:
            await client.connect(cfg["broker_host"], cfg["broker_port"])
            meter.connected()
            await client.subscribe(fences_topic)
            await client.subscribe(command_topic)
            await client.publish(status_topic, tracker.status(True), 1, True)
            backoff_s = 1
            state[_S_FETCHING] = ""  # a new connection: a fetch in progress starts over
            while True:
                if watchdog is not None:
                    watchdog.kick()
                if state[_S_FETCH] and state[_S_FETCH] != state[_S_FETCHING]:
                    # The announced set is not the one running: its body, retained on its own
                    # topic, arrives once after this subscription (and goes to flash).
                    state[_S_FETCHING] = state[_S_FETCH]
                    state[_S_FETCH_MS] = ticks_ms()
                    await client.subscribe(wire.fences_set_topic(station, state[_S_FETCH]))
                if state[_S_UNSUBSCRIBE]:
                    topic = state[_S_UNSUBSCRIBE]
                    state[_S_UNSUBSCRIBE] = ""
                    state[_S_FETCHING] = ""
                    await client.unsubscribe(topic)
                if state[_S_STATUS_DUE]:
                    state[_S_STATUS_DUE] = False
                    await client.publish(status_topic, tracker.status(True), 1, True)
                if ticks_diff(ticks_ms(), state[_S_HEAP_MS]) >= 2000:
                    state[_S_HEAP_MS] = ticks_ms()
                    heap.collect()
                if ticks_diff(ticks_ms(), state[_S_BUDGET_MS]) >= 60000:
                    state[_S_BUDGET_MS] = ticks_ms()
                    # The battery state for the policy (shift: ten hours from the first fix).
                    if policy is not None and battery is not None and tracker.last_fix_t:
                        if not state[_S_SHIFT_END]:
                            state[_S_SHIFT_END] = tracker.last_fix_t + _SHIFT_S
                        policy.power(tracker.now_s(), battery.percent(),
                                     battery.charging() if hasattr(battery, "charging") else False,
                                     tracker.docked, state[_S_SHIFT_END])
                # Adaptive sampling batches reports per radio wake-up: wait until one is due,
                # then send everything waiting. At the end of the stream, send it all.
                if not state[_S_DRAINING] and (state[_S_EOF] or tracker.upload_due()):
                    state[_S_DRAINING] = True
                batch = outbox.batch(_BATCH) if state[_S_DRAINING] else []
                if not batch:
                    if state[_S_DRAINING]:
                        state[_S_DRAINING] = False
                        if policy is not None:
                            policy.uploaded(tracker.now_s(), True)
                    if policy is not None:
                        # After an upload, or a connection that only carried a status (boot, a
                        # command): the radio sleeps until the next upload is due. Not while
                        # a fence set is coming in: ending the session would cut it, and a
                        # large set would start over at every upload. Bounded: a body that
                        # never comes must not keep the radio on.
                        fetching = state[_S_FETCHING] and ticks_diff(
                            ticks_ms(), state[_S_FETCH_MS]) < _FETCH_HOLD_MS
                        if ports.radio is not None and not state[_S_EOF] and not fetching:
                            from tracker import lowpower  # with a modem only

                            await lowpower.sleep(ports, client, tracker, state, wake)
                            break  # reconnect: open_connection wakes the radio
                    if state[_S_EOF]:
                        await client.publish(status_topic, tracker.status(False), 1, True)
                        await client.disconnect()
                        # The summary's code is loaded only now (tracker.summary).
                        from tracker import summary

                        summary.log(ports, tracker, heap, state[_S_PUBLISHED], state[_S_OOM])
                        return tracker
                    wake.clear()
                    try:
                        await asyncio.wait_for(wake.wait(), 1)
                    except asyncio.TimeoutError:
                        pass
                    if not client.connected:
                        # The receiver saw the link end: reconnect now rather than at the
                        # next publish (commands and new fence sets come in on this link).
                        raise MQTTError("connection lost")
                    continue
                # One radio wake-up sends everything waiting, in batches acknowledged together.
                # The packet id of a message is derived from its sequence number: the same on
                # every resend.
                messages = [(wire.device_topic(device_id, kind), payload, (seq - 1) % 65535 + 1)
                            for seq, kind, payload in batch]
                try:
                    await client.publish_batch(messages)
                finally:
                    done = client.batch_acked
                    if done:
                        outbox.ack(batch[done - 1][0])
                        state[_S_PUBLISHED] += done
        except Exception as exc:  # noqa: BLE001 - any link failure (MicroPython's TLS raises
            # ValueError on a bad certificate) means: drop the link, back off, try again.
            await client.close()
            if policy is not None and state[_S_DRAINING]:
                policy.uploaded(tracker.now_s(), False)
            # Jitter spreads a fleet's reconnects after a broker restart.
            delay_ms = backoff_s * 500 + random.getrandbits(16) * backoff_s * 500 // 65536
            ports.log("mqtt: %r; retry in %d ms" % (exc, delay_ms))
            await asyncio.sleep(delay_ms / 1000)
            backoff_s = min(backoff_s * 2, _MAX_BACKOFF_S)
            # Only after a failure: the stream ending during a radio sleep reconnects for the
            # final status (and logs), as a clean end of stream does.
            if reader.done() and state[_S_EOF] and not len(outbox):
                return tracker
