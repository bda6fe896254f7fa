"""The radio on a serial port: PEI set-up, reading, reconnecting, storing.

:class:`AirwaveReader` opens the port with pyserial (a device path such as ``/dev/ttyUSB0`` or
``/dev/pts/5``, or any pyserial URL such as ``socket://radio:4001``), sends the set-up commands
that route LIP and status SDS to the terminal equipment, and then hands every ``+CTSDSR`` to an
:class:`~gateway.intake.airwave.store.AirwaveStore`. Set-up answers and unsolicited reports share
the
line, so the set-up is a small state machine inside the read loop: a report arriving while a
command waits for its ``OK`` is stored, not lost.

When the port fails (cable pulled, radio power-cycled, USB serial re-enumerated) the reader
closes it, waits (0.5 s doubling to 10 s), reopens it and sends the set-up again, because a
radio that restarted has forgotten it. Every failure is counted; nothing raises out of
:meth:`AirwaveReader.run` except a programming error.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence

import serial

from gateway.intake.airwave.sds import SETUP_COMMANDS, Event, PeiParser, Sds
from gateway.intake.airwave.store import AirwaveStore
from gateway.schema import open_db

log = logging.getLogger(__name__)
#: Tries at storing one SDS while the database refuses it as a whole.
STORE_ATTEMPTS = 3


class AirwaveReader:
    """Reads one radio and stores what it reports.

    :param port: device path or pyserial URL
    :param store_factory: builds the store in the reading thread (SQLite connections belong to
        the thread that made them)
    :param clock: the receive clock, UTC epoch seconds (injected so tests and simulations can
        run on simulated time)
    :param setup: AT commands sent after every (re)connect
    :param reply_timeout_s: how long a set-up command may wait for OK/ERROR
    :param idle_flush_s: silence after which a line without its line end is taken as complete
    """

    def __init__(
        self,
        port: str,
        store_factory: Callable[[], AirwaveStore],
        *,
        baudrate: int = 38400,
        clock: Callable[[], float] = time.time,
        setup: Sequence[str] = SETUP_COMMANDS,
        reply_timeout_s: float = 2.0,
        idle_flush_s: float = 0.5,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 10.0,
    ):
        self.port = port
        self.store_factory = store_factory
        self.baudrate = baudrate
        self.clock = clock
        self.setup = tuple(setup)
        self.reply_timeout_s = reply_timeout_s
        self.idle_flush_s = idle_flush_s
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.counts: Counter = Counter()
        self.parser = PeiParser()
        self.store: AirwaveStore | None = None
        self.ready = threading.Event()  # set once the set-up has been sent and answered
        self._answers: list[str] = []

    def run(self, stop: threading.Event) -> Counter:
        """Read until ``stop`` is set; returns the counters (reader, parser and store)."""
        self.store = self.store_factory()
        delay = self.reconnect_min_s
        while not stop.is_set():
            try:
                link = serial.serial_for_url(self.port, baudrate=self.baudrate, timeout=0.1)
            except (serial.SerialException, OSError, ValueError) as exc:
                self.counts["open_failures"] += 1
                log.warning("cannot open %s: %s (retry in %.1f s)", self.port, exc, delay)
                stop.wait(delay)
                delay = min(self.reconnect_max_s, delay * 2)
                continue
            self.counts["connects"] += 1
            delay = self.reconnect_min_s
            try:
                self._session(link, stop)
            except (serial.SerialException, OSError) as exc:
                self.counts["disconnects"] += 1
                log.warning("lost %s: %s", self.port, exc)
            finally:
                self._events(self.parser.flush())
                self.ready.clear()
                try:
                    link.close()
                except (serial.SerialException, OSError):
                    pass
            if not stop.is_set():
                stop.wait(delay)
        return self.stats()

    def stats(self) -> Counter:
        """Reader, framing and storage counters in one place."""
        total = Counter(self.counts)
        total.update({f"pei_{k}": v for k, v in self.parser.counts.items()})
        if self.store is not None:
            total.update({f"store_{k}": v for k, v in self.store.counts.items()})
        return total

    # -- one connection ---------------------------------------------------------------------------
    def _session(self, link: serial.SerialBase, stop: threading.Event) -> None:
        pending = list(self.setup)
        waiting_since: float | None = None
        last_data = time.monotonic()
        while not stop.is_set():
            if waiting_since is None and pending:
                command = pending.pop(0)
                link.write(command.encode("ascii") + b"\r")
                self.counts["commands_sent"] += 1
                waiting_since = time.monotonic()
                self._answers.clear()
            chunk = link.read(max(1, link.in_waiting))
            now = time.monotonic()
            if chunk:
                last_data = now
                self._events(self.parser.feed(chunk))
            elif now - last_data > self.idle_flush_s:
                self._events(self.parser.flush())
                last_data = now
            if waiting_since is not None:
                if self._answers:
                    if self._answers[0] != "OK":
                        self.counts["setup_errors"] += 1
                        log.warning("radio answered %s to set-up", self._answers[0])
                    waiting_since = None
                elif now - waiting_since > self.reply_timeout_s:
                    self.counts["setup_timeouts"] += 1
                    waiting_since = None
                if waiting_since is None and not pending:
                    self.ready.set()

    def _store(self, sds: Sds) -> None:
        """Store one SDS; a database refusing it (locked past the busy timeout, full) is tried
        again, then counted (``store_failures``) and logged with the report's hex, and the
        reader goes on: a radio does not send a report twice."""
        assert self.store is not None
        for attempt in range(STORE_ATTEMPTS):
            try:
                self.store.handle(sds, self.clock())
                return
            except sqlite3.OperationalError as exc:
                if attempt + 1 == STORE_ATTEMPTS:
                    self.counts["store_failures"] += 1
                    log.error("SDS not stored (%s), lost: %s", exc, sds.hex)
                    return
                time.sleep(0.5 * (attempt + 1))

    def _events(self, events: list[Event]) -> None:
        assert self.store is not None
        for event in events:
            if event.kind == "sds" and event.sds is not None:
                self._store(event.sds)
            elif event.kind == "final":
                self._answers.append(event.text)
            elif event.kind == "reject":
                log.info("rejected from radio (%s): %s", event.reason, event.text)
                self.store.reject(event.reason, event.text, self.clock())
            elif event.kind == "info":
                log.info("radio: %s", event.text)


def run_airwave(port: str, db_path: str, stop: threading.Event, accept_unknown: bool = False,
                unknown_accuracy: str = "keep", **options) -> Counter:
    """Read ``port`` into the database at ``db_path`` until ``stop`` (the gateway's hook);
    ``unknown_accuracy`` is the fleet's setting for error-class-7 positions (keep or drop)."""

    def store() -> AirwaveStore:
        return AirwaveStore(open_db(db_path), accept_unknown=accept_unknown,
                            unknown_accuracy=unknown_accuracy)

    reader = AirwaveReader(port, store, **options)
    try:
        return reader.run(stop)
    finally:
        if reader.store is not None:
            reader.store.db.close()
