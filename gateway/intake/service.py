"""The gateway process: subscribe with paho-mqtt, store through the intake.

Each message goes through the MQTT adapter (:mod:`gateway.intake.mqtt`) into
:class:`gateway.intake.intake.Intake`.

The MQTT session is persistent (clean session off, QoS 1) and acknowledgements are manual: a
message is acknowledged to the broker only after the batch holding it is committed to SQLite
(with ``synchronous=FULL``, so "committed" survives a power cut). If the gateway dies in
between, the broker delivers the message again and the unique ``(device, seq)`` index turns the
second copy into a counted duplicate.

One thread does everything: it waits for the socket, lets paho parse every packet that has
arrived, stores them, commits, and writes their PUBACKs in one go
(:mod:`gateway.intake.batched_socket`). Batching is adaptive ("group commit"): a batch is whatever
has
arrived, up to ``batch_size``. Under light load a batch is a message or two and nothing waits;
under heavy load messages pile up during each commit and the batches grow, which is what
amortises the fsync. The broker's in-flight window for the gateway (``max_inflight_messages``,
see :mod:`gateway.broker`) must be at least ``batch_size``, since un-acknowledged messages are
exactly the ones waiting for the commit.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from gateway.intake import mqtt as mqtt_source
from gateway.intake.batched_socket import BatchingClient, Publish
from gateway.intake.filters import FilterConfig
from gateway.intake.intake import Intake, IntakeCounts, QuarantineBudget
from gateway.schema import open_db

log = logging.getLogger(__name__)

RECONNECT_MAX_S = 30
#: Attempts more at a batch the database refused as a whole (locked, I/O) before stopping.
LOCKED_RETRIES = 3
STABLE_S = 10  # a connection that lasted this long resets the reconnect pause
SUBSCRIPTIONS = ("hotspots/dev/+/+", "owntracks/#")


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` to a tuple; raises ``ValueError`` with what is wrong."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"broker address must be HOST:PORT, not {address!r}")
    return host, int(port)


class Gateway:
    """One gateway: an MQTT subscription feeding one SQLite database.

    :param broker: ``host:port`` of the broker
    :param db_path: the SQLite file (created and migrated if needed)
    :param client_id: fixed, so the broker keeps our session and queued messages across restarts
    :param batch_size: most messages per transaction
    :param batch_s: how long to wait for the broker before looking at ``stop`` again
    :param username: broker account (the gateway's own, see :mod:`gateway.broker`)
    :param tls_ca: CA certificate to verify the broker's TLS listener with; enables TLS
    :param filter_config: per-source position filters (:mod:`gateway.intake.filters`)
    :param accept_unknown: store messages of unregistered devices instead of quarantining them
    :param budget: the per-device quarantine budget
        (:class:`gateway.intake.intake.QuarantineBudget`)
    """

    def __init__(
        self,
        broker: str,
        db_path: str,
        client_id: str = "hotspots-gateway",
        batch_size: int = 1000,
        batch_s: float = 0.2,
        username: str | None = None,
        password: str | None = None,
        airwave: str | None = None,
        tls_ca: str | None = None,
        filter_config: dict[str, FilterConfig] | None = None,
        accept_unknown: bool = False,
        budget: QuarantineBudget | None = None,
        ignore_accounts: frozenset[str] = frozenset(),
    ):
        #: Accounts whose OwnTracks topics are the gateway's own output (the Recorder bridge,
        #: gateway/recorder_bridge.py): acknowledged and counted, never stored or quarantined.
        self.ignore_accounts = ignore_accounts
        self.ignored = 0
        self.host, self.port = parse_address(broker)
        self.db_path = db_path
        self.batch_size = batch_size
        self.batch_s = batch_s
        self._arrived: list[mqtt.MQTTMessage | Publish] = []
        self._reconnect_s = 0
        self._up_since = 0.0  # monotonic time of the last accepted CONNECT
        self.connected = threading.Event()
        self.client = BatchingClient(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca is not None:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.filter_config = filter_config
        self.accept_unknown = accept_unknown
        self.budget = budget
        self.refused: str | None = None
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _client, _userdata, msg: self._arrived.append(msg)
        self.intake: Intake | None = None
        self.airwave = airwave  # serial port of an Airwave radio, read in its own thread

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            # Wrong password or not authorised: say so instead of retrying in silence.
            self.refused = str(reason_code)
            return
        self.refused = None
        self._up_since = time.monotonic()
        client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])

    def _on_subscribe(self, *_args) -> None:
        # Only now will the broker queue tracker messages for our session: "connected" means
        # "nothing published from here on can miss us".
        self.connected.set()

    def _on_disconnect(self, *_args) -> None:
        self.connected.clear()

    def run(
        self,
        stop: threading.Event | None = None,
        on_batch: Callable[[IntakeCounts], None] | None = None,
    ) -> IntakeCounts:
        """Store messages until ``stop`` is set; then store what already arrived and return.

        The database is opened in this thread, so ``run`` may itself run in a thread; the MQTT
        client runs in it too.
        """
        stop = stop or threading.Event()
        db = open_db(self.db_path)
        # The broker forgets a message once we acknowledge it, so a commit must be on disk.
        db.execute("PRAGMA synchronous = FULL")
        self.intake = intake = Intake(db, self.filter_config, self.accept_unknown,
                                      budget=self.budget)
        client = self.client
        client.connect_async(self.host, self.port, keepalive=30)
        radio = None
        if self.airwave:
            from gateway.intake.airwave.reader import run_airwave

            radio_config = (self.filter_config or {}).get("airwave")
            radio = threading.Thread(
                target=run_airwave, args=(self.airwave, self.db_path, stop),
                kwargs={"accept_unknown": self.accept_unknown,
                        "unknown_accuracy": getattr(radio_config, "unknown_accuracy", "keep")},
                name="airwave", daemon=True)
            radio.start()
        try:
            while not stop.is_set():
                if client.socket() is None:
                    self._connect(stop)
                    continue
                # Anything queued (CONNECT, SUBSCRIBE, PINGREQ) goes out before we wait; if the
                # socket would not take it all, look again soon rather than after batch_s.
                wait = self.batch_s if client.flush() else 0.01
                rc = client.loop(wait)
                if rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS:
                    client.read_buffered(self.batch_size - len(self._arrived))
                if self._arrived:
                    self._store(intake, on_batch)
        finally:
            if self._arrived:
                self._store(intake, on_batch)
            client.disconnect()
            intake.commit()
            db.close()
            if radio is not None:
                stop.set()
                radio.join(5)
        return intake.counts

    def _connect(self, stop: threading.Event) -> None:
        """Open the connection, after a pause that doubles with each failure (up to 30 s).

        The pause starts again from nothing only after a connection that lasted: a broker that
        accepts and then drops us at once (another client with our id) is not hammered.
        """
        if self._up_since and time.monotonic() - self._up_since >= STABLE_S:
            self._reconnect_s = 0
        self._up_since = 0.0
        if self._reconnect_s and stop.wait(self._reconnect_s):
            return
        self._reconnect_s = min(max(1, 2 * self._reconnect_s), RECONNECT_MAX_S)
        try:
            self.client.reconnect()  # a refused CONNACK arrives later, in _on_connect
        except OSError:
            pass  # broker down or unreachable, TLS failure: try again after the pause

    def _store(self, intake: Intake, on_batch: Callable[[IntakeCounts], None] | None) -> None:
        """Store, commit, then acknowledge the messages that have arrived.

        Every message is acknowledged once the transaction holding it (stored or quarantined)
        is committed. Should the batch's commit itself fail, the batch is stored again one
        message per transaction, so a message that cannot be committed is isolated and
        quarantined alone (``store_failed``) and the others are kept. A database that refuses
        the batch as a whole (locked beyond the busy timeout, I/O, disk full) is retried a few
        times, then raised with the batch unacknowledged: that is no message's fault.
        """
        arrived, self._arrived = self._arrived, []
        received_at = time.time()
        for attempt in range(LOCKED_RETRIES + 1):
            try:
                for msg in arrived:
                    if self.ignore_accounts and self._ignored(msg.topic):
                        continue
                    mqtt_source.handle(intake, msg.topic, msg.payload, received_at)
                intake.commit()
                break
            except sqlite3.OperationalError as exc:
                # Locked past the busy timeout (another writer), or the disk: not the messages'
                # fault. Keep them unacknowledged and try the whole batch again; in the end
                # stop without acknowledging, so the broker delivers them again.
                intake.rollback()
                if attempt == LOCKED_RETRIES:
                    raise
                log.warning("batch of %d not stored (%s): retrying", len(arrived), exc)
                time.sleep(0.5 * (attempt + 1))
            except Exception as exc:  # noqa: BLE001 - isolate the message at fault, below
                log.warning("batch of %d failed to commit (%r): storing one by one",
                            len(arrived), exc)
                intake.rollback()
                for msg in arrived:
                    self._store_alone(intake, msg, received_at)
                break
        self.client.ack_all([msg.mid for msg in arrived if msg.qos == 1])
        if on_batch:
            on_batch(intake.counts)

    def _ignored(self, topic: str) -> bool:
        parts = topic.split("/", 2)
        if len(parts) > 1 and parts[0] == "owntracks" and parts[1] in self.ignore_accounts:
            self.ignored += 1
            return True
        return False

    @staticmethod
    def _store_alone(intake: Intake, msg: mqtt.MQTTMessage | Publish, received_at: float) -> None:
        try:
            mqtt_source.handle(intake, msg.topic, msg.payload, received_at)
            intake.commit()
        except sqlite3.OperationalError:
            intake.rollback()
            raise  # the database, not this message: unacknowledged, delivered again
        except Exception as exc:  # noqa: BLE001 - this message is the one at fault
            intake.rollback()
            intake.reject(msg.topic, "store_failed", f"{type(exc).__name__}: {exc}",
                          msg.payload, received_at)
            intake.commit()
