"""paho-mqtt with whole-chunk reads and whole-batch writes, for the gateway's single thread.

paho reads a packet with three or four ``recv`` calls (one byte of type, one or two of length,
then the rest) and writes every packet, PUBACKs included, with its own ``send``. At 20,000
positions a second those system calls and paho's per-packet bookkeeping cost the gateway more
than storing the positions does. So the gateway hands paho a :class:`BatchedSocket`:

- reads come from a buffer refilled 64 KiB at a time, and :meth:`BatchedSocket.pending` tells
  paho (which asks, as it does of a TLS socket) that more is buffered, so it does not wait in
  ``select`` for bytes it already has;
- writes are appended to a buffer that the gateway flushes once per loop turn, so a committed
  batch's PUBACKs leave in one system call;
- a QoS 0 or 1 ``PUBLISH`` that lies whole in the read-ahead buffer is decoded here, in one
  step, into a :class:`Publish` (:meth:`BatchedSocket.take_publish`), instead of through paho's
  dozen calls per packet (about a third of the gateway's time at 20,000 messages a second).
  Everything else (CONNACK, SUBACK, PINGRESP, QoS 2, a packet cut at the buffer's end, a topic
  that is not UTF-8) still goes through paho, which then sees the stream at a packet boundary.

Ordering is kept: everything paho writes and every PUBACK :meth:`BatchedSocket.write` takes go
through the same buffer, in call order. A broken connection shows on the next read, where paho
notices it and closes the socket; the gateway then reconnects, and the broker delivers again
whatever it had not seen acknowledged.
"""

from __future__ import annotations

import ssl
import time

import paho.mqtt.client as mqtt

from tracker.mqtt import puback_packet

CHUNK = 1 << 16
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)
_PUBLISH = 0x30


class Publish:
    """A received ``PUBLISH``: the attributes of paho's ``MQTTMessage`` the gateway reads."""

    __slots__ = ("topic", "payload", "mid", "qos", "retain", "dup", "timestamp")

    def __init__(self, topic: str, payload: bytes, mid: int, qos: int, retain: bool, dup: bool):
        self.topic = topic
        self.payload = payload
        self.mid = mid
        self.qos = qos
        self.retain = retain
        self.dup = dup
        self.timestamp = time.monotonic()


class BatchedSocket:
    """A non-blocking socket (plain or TLS) with a read-ahead buffer and a write buffer."""

    def __init__(self, sock, chunk: int = CHUNK):
        self._sock = sock
        # A TLS socket's count of decrypted bytes; looked up once, asked once per packet.
        self._inner_pending = getattr(sock, "pending", None)
        self._chunk = chunk
        self._in = b""
        self._pos = 0
        self._out = bytearray()

    # -- what paho calls --------------------------------------------------------------------------
    def recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: buffered ones first, else one large read of the socket.

        Raises what the socket raises (``BlockingIOError`` when nothing has arrived); returns
        ``b""`` at end of stream, as a socket does.
        """
        if self._pos >= len(self._in):
            self._in = self._sock.recv(max(size, self._chunk))
            self._pos = 0
        start = self._pos
        self._pos = min(start + size, len(self._in))
        return self._in[start:self._pos]

    def pending(self) -> int:
        """Bytes readable without waiting: ours, plus a TLS socket's decrypted ones."""
        inner = self._inner_pending
        return len(self._in) - self._pos + (inner() if inner is not None else 0)

    def take_publish(self) -> Publish | None:
        """The next packet, decoded, if it is a QoS 0 or 1 ``PUBLISH`` (MQTT 3.1.1) lying whole
        in the buffer with a UTF-8 topic; else None, and nothing is consumed."""
        buf, pos = self._in, self._pos
        end = len(buf)
        if pos >= end:
            return None
        header = buf[pos]
        qos = (header >> 1) & 3
        if header & 0xF0 != _PUBLISH or qos > 1:
            return None
        # Remaining length: up to four bytes, seven bits each, least significant first.
        length = shift = 0
        i = pos + 1
        while True:
            if i >= end or shift > 21:
                return None  # cut at the buffer's end, or malformed: paho's to judge
            byte = buf[i]
            length |= (byte & 0x7F) << shift
            shift += 7
            i += 1
            if byte < 0x80:
                break
        body_end = i + length
        if body_end > end or length < 2:
            return None
        topic_end = i + 2 + ((buf[i] << 8) | buf[i + 1])
        payload_start = topic_end + 2 * qos  # QoS 1: the packet id follows the topic
        if topic_end == i + 2 or payload_start > body_end:
            return None  # no topic, or no room for it: paho refuses the packet
        try:
            topic = buf[i + 2:topic_end].decode("utf-8")
        except UnicodeDecodeError:
            return None
        mid = (buf[topic_end] << 8) | buf[topic_end + 1] if qos else 0
        self._pos = body_end
        return Publish(topic, buf[payload_start:body_end], mid, qos, bool(header & 1),
                       bool(header & 8))

    def send(self, data: bytes | bytearray) -> int:
        """Take all of ``data`` for the next :meth:`flush`."""
        self._out += data
        return len(data)

    def close(self) -> None:
        """Send what is buffered (the last PUBACKs, a DISCONNECT), waiting up to a second for a
        full socket, then close. What still does not go is only re-delivered, never lost."""
        try:
            if not self.flush():
                self._sock.settimeout(1.0)
                self._sock.sendall(self._out)
        except OSError:
            pass
        finally:
            self._sock.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def setblocking(self, flag: bool) -> None:
        self._sock.setblocking(flag)

    def __getattr__(self, name: str):
        # Anything else paho or ssl may look up (settimeout, getpeercert...) is the socket's.
        return getattr(self._sock, name)

    # -- what the gateway calls -------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue bytes of our own (PUBACKs) behind whatever paho has queued."""
        self._out += data

    def flush(self) -> bool:
        """Send as much of the write buffer as the socket takes; True once it is empty.

        A connection error drops the buffer: paho sees the broken connection on its next read
        and reconnects, and unacknowledged messages come again.
        """
        try:
            while self._out:
                sent = self._sock.send(self._out)
                del self._out[:sent]
        except _WOULD_BLOCK:
            return False
        except OSError:
            self._out.clear()
        return True


def puback_packets(mids: list[int]) -> bytes:
    """MQTT 3.1.1 PUBACKs for QoS 1 message ids, in order (the firmware client's encoder)."""
    return b"".join(map(puback_packet, mids))


class BatchingClient(mqtt.Client):
    """A paho client whose connection is a :class:`BatchedSocket`.

    Driven by one thread calling :meth:`loop` and :meth:`read_buffered` (never ``loop_start``);
    QoS 1 messages are acknowledged with :meth:`ack_all` after they are stored. paho keeps no
    state for a QoS 1 message it has handed over with ``manual_ack``, so writing the PUBACKs
    ourselves leaves it consistent.
    """

    #: Set once a per-topic callback is added: paho then picks the callback of each message.
    _filtered = False

    def _create_socket(self):
        return BatchedSocket(super()._create_socket())

    def message_callback_add(self, sub: str, callback) -> None:
        self._filtered = True
        super().message_callback_add(sub, callback)

    def read_buffered(self, most: int) -> mqtt.MQTTErrorCode:
        """Handle up to ``most`` packets already read from the socket, without waiting.

        A whole QoS 0/1 ``PUBLISH`` in the buffer goes straight to ``on_message`` as a
        :class:`Publish` (when no per-topic callbacks are set), provided paho is not halfway
        through reading a packet; anything else is paho's ``loop_read``.
        """
        sock = self.socket()
        rc = mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS
        took = False
        while most > 0 and rc == mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS and sock is not None \
                and sock.pending():
            most -= 1
            if (self._in_packet["command"] == 0 and self.on_message is not None
                    and not self._filtered and self._protocol != mqtt.MQTTv5):
                message = sock.take_publish()
                if message is not None:
                    took = True
                    self.on_message(self, self._userdata, message)
                    continue
            rc = self.loop_read()
            sock = self.socket()
        if took:
            with self._msgtime_mutex:  # paho's keepalive: the broker is talking to us
                self._last_bytes_received = time.monotonic()
        return rc

    def ack_all(self, mids: list[int]) -> None:
        """Acknowledge QoS 1 messages by id and send what is queued."""
        sock = self.socket()
        if sock is not None:
            sock.write(puback_packets(mids))
            sock.flush()

    def flush(self) -> bool:
        """Send what is queued; True when nothing is left waiting for the socket."""
        sock = self.socket()
        return sock.flush() if sock is not None else True
