"""A small asyncio MQTT 3.1.1 client for the tracker, with the transport passed in.

Why not a package: umqtt.simple blocks on the socket, which would stall NMEA parsing on a dead
link, and mqtt_as manages Wi-Fi through ``network`` itself, which the pure core must not import.
This client speaks only what the tracker needs (CONNECT with will and credentials, PUBLISH at
QoS 0/1 with retransmission under the same packet id, SUBSCRIBE, PINGREQ) over any
``open_connection(host, port)`` coroutine that returns asyncio-style ``(reader, writer)``; the
board decides whether that is a plain socket, TLS or a modem.
"""

import asyncio

from tracker.compat import const, ticks_diff, ticks_ms

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_UNSUBSCRIBE = const(0xA2)
_UNSUBACK = const(0xB0)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

# Largest packet accepted: a fence set is spooled to flash as it arrives, never held in RAM, so
# this is a flash budget (2,000 twenty-vertex hot spots are ~390 KB as the JSON wrapper;
# fences.publish refuses anything larger than this before sending it).
_MAX_PACKET = const(1048576)
# Largest payload held in RAM (commands; anything not spooled): no allocation after start-up
# is bigger than this (docs/memory.md). A larger one is skipped and handed over as None.
_MAX_RAM_PAYLOAD = const(4096)
_CHUNK = const(512)  # bytes read at a time when a payload is spooled or dropped
_MAX_TOPIC = const(256)


class MQTTError(OSError):
    """The broker refused us or broke the protocol; the caller reconnects."""


def _remaining_length(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _utf8(text):
    data = text.encode() if isinstance(text, str) else bytes(text)
    return len(data).to_bytes(2, "big") + data


def connect_packet(client_id, keepalive_s, clean, user=None, password=None, will=None):
    """CONNECT bytes; ``will`` is ``(topic, payload, qos, retain)`` or None."""
    flags = 0x02 if clean else 0
    payload = _utf8(client_id)
    if will:
        topic, message, qos, retain = will
        flags |= 0x04 | (qos << 3) | (0x20 if retain else 0)
        payload += _utf8(topic) + _utf8(message)
    if user is not None:
        flags |= 0x80
        payload += _utf8(user)
        if password is not None:
            flags |= 0x40
            payload += _utf8(password)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + keepalive_s.to_bytes(2, "big") + payload
    return bytes([_CONNECT]) + _remaining_length(len(body)) + body


def publish_packet(topic, payload, qos, retain, pid, dup=False):
    """PUBLISH bytes."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = _PUBLISH | (qos << 1) | (0x01 if retain else 0) | (0x08 if dup else 0)
    body = _utf8(topic) + (pid.to_bytes(2, "big") if qos else b"") + payload
    return bytes([head]) + _remaining_length(len(body)) + body


def puback_packet(pid):
    """PUBACK bytes for a QoS 1 packet id."""
    return bytes((_PUBACK, 2, pid >> 8, pid & 0xFF))


class MQTTClient:
    """One connection to the broker. ``connect`` again after any ``OSError``.

    :param open_connection: coroutine ``(host, port) -> (reader, writer)``
    :param on_message: called as ``on_message(topic: str, payload)`` for subscriptions; the
        payload is ``bytes`` or ``bytearray``, None when it did not fit in memory, or the object
        ``spool`` returned, once the payload is written to it and it is closed
    :param spool: ``spool(topic, length)`` may return a file-like object (``write``, ``close``)
        to receive that message's payload a few hundred bytes at a time instead of in RAM (a
        fence set goes to flash this way), or None
    """

    def __init__(self, client_id, open_connection, keepalive_s=60, user=None, password=None,
                 will=None, clean=True, on_message=None, ack_timeout_s=5, retries=3,
                 spool=None):
        self.client_id = client_id
        self.open_connection = open_connection
        self.keepalive_s = keepalive_s
        self.user = user
        self.password = password
        self.will = will
        self.clean = clean
        self.on_message = on_message
        self.spool = spool
        # Spooling buffer, allocated up front: when a payload is dropped for lack of memory,
        # this is what reads it, so it must not need an allocation then.
        self._chunk = memoryview(bytearray(_CHUNK))
        self.ack_timeout_s = ack_timeout_s
        self.retries = retries
        self._reader = None
        self._writer = None
        self._pid = 0
        self._acked = {}
        self._ack_event = asyncio.Event()
        self._tasks = []
        self.connected = False
        self.last_rx_ms = 0
        self.batch_acked = 0
        # Energy counters (tracker.meter): bytes over the link each way, connections made.
        self.bytes_out = 0
        self.bytes_in = 0
        self.connects = 0

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        while self._pid in self._acked:  # in flight under a caller-chosen id
            self._pid = self._pid % 65535 + 1
        return self._pid

    async def connect(self, host, port):
        """Open the link, send CONNECT and wait for CONNACK; raises ``OSError`` on failure."""
        await self.close()
        await asyncio.wait_for(self._open_link(host, port), 10)
        await self._send(connect_packet(self.client_id, self.keepalive_s, self.clean,
                                        self.user, self.password, self.will))
        head, length = await asyncio.wait_for(self._read_fixed_header(), 10)
        if head != _CONNACK or length != 2:
            raise MQTTError("no CONNACK")
        body = await asyncio.wait_for(self._read_exactly(2), 10)
        if body[1] != 0:
            raise MQTTError("connection refused, code %d" % body[1])
        self.connected = True
        self.connects += 1
        self._tasks = [asyncio.create_task(self._receive()),
                       asyncio.create_task(self._keepalive())]

    async def _open_link(self, host, port):
        # The link is kept here, by the opening coroutine itself: asyncio.wait_for drops a
        # result that lands in the same turn as its time-out, and a link lost that way was
        # never closed (on the SIM7080 its socket stayed taken: "no free modem socket" on
        # every retry after). Kept, the caller's close() (or the next connect) closes it.
        self._reader, self._writer = await self.open_connection(host, port)

    async def close(self):
        """Drop the link without DISCONNECT, so the broker publishes the will."""
        self.connected = False
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        if self._writer is not None:
            try:
                self._writer.close()
                await self._writer.wait_closed()
            except Exception:  # the link is already gone; nothing to save
                pass
        self._reader = self._writer = None
        self._ack_event.set()

    async def disconnect(self):
        """Clean shutdown: DISCONNECT (the broker discards the will), then close."""
        if self.connected:
            try:
                await self._send(bytes([_DISCONNECT, 0]))
            except OSError:
                pass
        await self.close()

    async def publish(self, topic, payload, qos=1, retain=False, pid=0):
        """Publish; with QoS 1, return only after PUBACK, retransmitting with DUP on time-out.

        ``pid`` lets the caller fix the packet id (the tracker derives it from the message's
        sequence number, so a retransmission after a reconnect or a reboot reuses it).
        """
        if not self.connected:
            raise MQTTError("not connected")
        if not qos:
            await self._send(publish_packet(topic, payload, 0, retain, 0))
            return
        await self.publish_batch([(topic, payload, pid or self._next_pid())], retain)

    async def publish_batch(self, messages, retain=False):
        """Publish ``(topic, payload, pid)`` messages at QoS 1 back to back, then wait for every
        PUBACK, retransmitting the missing ones with DUP.

        One round trip for the whole batch instead of one per message matters after a dead spot,
        when hundreds are waiting. ``batch_acked`` counts the leading messages acknowledged, also
        when this raises, so the caller can release exactly those.
        """
        self.batch_acked = 0
        if not self.connected:
            raise MQTTError("not connected")
        acked = self._acked
        for _topic, _payload, pid in messages:
            acked[pid] = False
        try:
            for attempt in range(self.retries + 1):
                for topic, payload, pid in messages:
                    if not acked[pid]:
                        await self._send(publish_packet(topic, payload, 1, retain, pid,
                                                        attempt > 0))
                if await self._wait_acks(messages):
                    return
            raise MQTTError("no PUBACK")
        finally:
            n = 0  # the leading messages acknowledged
            for _topic, _payload, pid in messages:
                if not acked.get(pid):
                    break
                n += 1
            if n > self.batch_acked:
                self.batch_acked = n
            for _topic, _payload, pid in messages:
                acked.pop(pid, None)

    async def subscribe(self, topic, qos=1):
        """Subscribe and wait for SUBACK."""
        pid = self._next_pid()
        self._acked[pid] = False
        body = pid.to_bytes(2, "big") + _utf8(topic) + bytes([qos])
        try:
            await self._send(bytes([_SUBSCRIBE]) + _remaining_length(len(body)) + body)
            if not await self._wait_acks(((None, None, pid),)):
                raise MQTTError("no SUBACK")
        finally:
            self._acked.pop(pid, None)

    async def unsubscribe(self, topic):
        """Unsubscribe and wait for UNSUBACK."""
        pid = self._next_pid()
        self._acked[pid] = False
        body = pid.to_bytes(2, "big") + _utf8(topic)
        try:
            await self._send(bytes([_UNSUBSCRIBE]) + _remaining_length(len(body)) + body)
            if not await self._wait_acks(((None, None, pid),)):
                raise MQTTError("no UNSUBACK")
        finally:
            self._acked.pop(pid, None)

    async def _wait_acks(self, messages):
        """True once every pid in ``messages`` is acknowledged, False after ``ack_timeout_s``."""
        waited_ms = 0
        while True:
            for _topic, _payload, pid in messages:
                if not self._acked.get(pid):
                    break
            else:
                return True
            if not self.connected:
                raise MQTTError("connection lost")
            if waited_ms >= self.ack_timeout_s * 1000:
                return False
            self._ack_event.clear()
            try:
                await asyncio.wait_for(self._ack_event.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
            waited_ms += 100

    async def _send(self, data):
        if self._writer is None:
            raise MQTTError("not connected")
        self._writer.write(data)
        await self._writer.drain()
        self.bytes_out += len(data)

    async def _read_fixed_header(self):
        head = (await self._reader.readexactly(1))[0]
        length = 0
        shift = 0
        while True:
            byte = (await self._reader.readexactly(1))[0]
            self.bytes_in += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("bad remaining length")
        self.bytes_in += 1  # the header byte
        if length > _MAX_PACKET:
            raise MQTTError("packet too large")
        self.last_rx_ms = ticks_ms()
        return head, length

    async def _read_exactly(self, n):
        """``n`` bytes, in a buffer of their own."""
        if not n:
            return b""
        buf = bytearray(n)
        await self._fill(buf)
        return buf

    async def _fill(self, buf):
        """Fill ``buf`` from the link.

        MicroPython's ``readexactly`` joins the pieces as they arrive, so a 40 KB fence set
        would need about twice its size at the end; ``readinto`` one preallocated buffer needs
        it once.
        """
        readinto = getattr(self._reader, "readinto", None)
        if readinto is None:  # CPython's asyncio streams: memory is not the constraint there
            buf[:] = await self._reader.readexactly(len(buf))
            self.bytes_in += len(buf)
            return
        view = memoryview(buf)
        got = 0
        while got < len(buf):
            k = await readinto(view[got:])
            if k is None:  # woken, but nothing to read yet (TLS between records): wait again
                continue
            if not k:
                raise EOFError
            got += k
            self.bytes_in += k

    async def _copy(self, n, file):
        """Read ``n`` bytes a chunk at a time, handing each to ``file.write`` (None: drop)."""
        while n > 0:
            k = n if n < _CHUNK else _CHUNK
            view = self._chunk[:k]
            await self._fill(view)
            if file is not None:
                file.write(view)
            n -= k

    async def _receive(self):
        """Read packets until the link breaks: acknowledgements, and PUBLISHes for ``on_message``.

        A PUBLISH is read piece by piece, so the payload is held once, in a buffer of its own
        (no copy of the packet around it), or not at all when ``spool`` takes it. A payload too
        big for the free memory is skipped and handed over as None: the application says so,
        and the message is still acknowledged, because receiving it again (a retained fence set
        comes at every connect) cannot go better.
        """
        try:
            while True:
                head, length = await self._read_fixed_header()
                kind = head & 0xF0
                if kind == _PUBLISH:
                    qos = (head >> 1) & 0x03
                    word = await self._read_exactly(2)  # 16-bit numbers are big-endian
                    topic_len = word[0] << 8 | word[1]
                    if 2 + topic_len > length or topic_len > _MAX_TOPIC:
                        raise MQTTError("bad PUBLISH")
                    topic = bytes(await self._read_exactly(topic_len)).decode()
                    length -= 2 + topic_len
                    pid = 0
                    if qos:
                        word = await self._read_exactly(2)
                        pid = word[0] << 8 | word[1]
                        length -= 2
                    if length < 0:
                        raise MQTTError("bad PUBLISH")
                    payload = self.spool(topic, length) if self.spool is not None else None
                    if payload is not None:
                        try:
                            await self._copy(length, payload)
                        finally:
                            payload.close()
                    else:
                        try:
                            payload = bytearray(length) if length <= _MAX_RAM_PAYLOAD else None
                        except MemoryError:
                            payload = None
                        if payload is None:
                            await self._copy(length, None)
                        else:
                            await self._fill(payload)
                    if self.on_message is not None:
                        self.on_message(topic, payload)
                    if qos:
                        await self._send(puback_packet(pid))
                    continue
                if length > _MAX_RAM_PAYLOAD:
                    raise MQTTError("packet too large")
                body = await self._read_exactly(length)
                if kind in (_PUBACK, _SUBACK, _UNSUBACK) and len(body) >= 2:
                    pid = body[0] << 8 | body[1]
                    if pid in self._acked:
                        self._acked[pid] = True
                        self._ack_event.set()
        except asyncio.CancelledError:
            raise
        except Exception:  # EOF or a broken packet: the link is unusable either way
            self.connected = False
            self._ack_event.set()

    async def _keepalive(self):
        """PINGREQ when idle; a link silent for 1.5 keepalive periods is declared dead.

        A half-open TCP connection (a radio that lost coverage) otherwise looks alive for many
        minutes while publishes pile up unacknowledged.
        """
        period_ms = self.keepalive_s * 1000
        try:
            while self.connected:
                await asyncio.sleep(self.keepalive_s / 2)
                if ticks_diff(ticks_ms(), self.last_rx_ms) > period_ms * 3 // 2:
                    raise MQTTError("keepalive: no answer from the broker")
                await self._send(bytes([_PINGREQ, 0]))
        except asyncio.CancelledError:
            raise
        except Exception:
            self.connected = False
            self._ack_event.set()
            if self._writer is not None:
                try:
                    self._writer.close()
                except Exception:  # already closed
                    pass
