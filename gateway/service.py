"""The gateway process: subscribe with paho-mqtt, store with :class:`gateway.ingest.Ingest`.

The MQTT session is persistent (clean session off, QoS 1) and acknowledgements are manual: a
message is acknowledged to the broker only after the batch holding it is committed to SQLite.
If the gateway dies in between, the broker delivers the message again and the unique
``(device, seq)`` index turns the second copy into a counted duplicate.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from gateway.ingest import Ingest, IngestCounts
from gateway.schema import open_db

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
    :param batch_s: longest a message waits for its commit
    """

    def __init__(
        self,
        broker: str,
        db_path: str,
        client_id: str = "hotspots-gateway",
        batch_size: int = 500,
        batch_s: float = 0.2,
        username: str | None = None,
        password: str | None = None,
    ):
        self.host, self.port = parse_address(broker)
        self.db_path = db_path
        self.batch_size = batch_size
        self.batch_s = batch_s
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.connected = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = lambda _client, _userdata, msg: self._queue.put(msg)
        self.ingest: Ingest | None = None

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            return
        client.subscribe([(topic, 1) for topic in SUBSCRIPTIONS])
        self.connected.set()

    def _on_disconnect(self, *_args) -> None:
        self.connected.clear()

    def run(
        self,
        stop: threading.Event | None = None,
        on_batch: Callable[[IngestCounts], None] | None = None,
    ) -> IngestCounts:
        """Store messages until ``stop`` is set; then drain what already arrived and return.

        The database is opened in this thread, so ``run`` may itself run in a thread.
        """
        stop = stop or threading.Event()
        db = open_db(self.db_path)
        self.ingest = ingest = Ingest(db)
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        try:
            while True:
                pending = self._take_batch(stop)
                if pending is None:
                    break
                for msg in pending:
                    ingest.handle(msg.topic, msg.payload)
                ingest.commit()
                for msg in pending:
                    self.client.ack(msg.mid, msg.qos)
                if pending and on_batch:
                    on_batch(ingest.counts)
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            ingest.commit()
            db.close()
        return ingest.counts

    def _take_batch(self, stop: threading.Event) -> list[mqtt.MQTTMessage] | None:
        batch: list[mqtt.MQTTMessage] = []
        deadline = time.monotonic() + self.batch_s
        while len(batch) < self.batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(self._queue.get(timeout=timeout))
            except queue.Empty:
                break
        if not batch and stop.is_set():
            return None
        return batch
