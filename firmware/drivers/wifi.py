"""Wi-Fi station for the Pico W (and any port with ``network.WLAN``): join, rejoin, sleep.

The ``WLAN`` object arrives from the board file (``network.WLAN(network.STA_IF)``), so this
module imports no ``network`` and runs under test with a fake. Settings come from the tracker's
settings dict: ``wifi_ssid``, ``wifi_password``, and optionally ``wifi_timeout_s`` (per join
attempt, default 20) and ``wifi_max_backoff_s`` (default 300).

- :meth:`WiFi.connect` joins, waiting for the link without blocking the event loop, and raises
  :class:`WiFiError` with a reason a person can act on ("wrong password", "no access point
  with that name") from the driver's status code.
- :meth:`WiFi.ensure` is called before every upload: it rejoins with exponential backoff (and
  jitter, so a station's trackers do not retry in step) and does not hammer the radio while the
  access point is gone.
- :meth:`WiFi.open_connection` is the tracker's ``open_connection``; the broker's address is
  resolved once per association (``getaddrinfo`` blocks on MicroPython, so it runs right after a
  join, not on every MQTT reconnect; an IP address in the settings never blocks).
- :meth:`WiFi.sleep` switches the radio off between uploads (``active(False)``).
"""

import asyncio

from tracker.compat import const, ticks_add, ticks_diff, ticks_ms

# Status codes of the CYW43 driver on the Pico W (network.STAT_* there)
_CYW43 = {0: "idle", 1: "connecting", 2: "connected, no IP address yet", 3: "connected",
          -1: "connection failed", -2: "no access point with that name",
          -3: "wrong password"}
# ESP32 (ESP-IDF) station status codes
_ESP32 = {1000: "idle", 1001: "connecting", 1010: "connected", 200: "beacon timeout",
          201: "no access point with that name", 202: "wrong password",
          203: "association failed", 204: "handshake timeout"}
GOT_IP = (3, 1010)
_FAILED = (-1, -2, -3, 200, 201, 202, 203, 204)
_POLL_MS = const(100)


class WiFiError(OSError):
    """Joining failed; ``reason`` says why in words, ``status`` is the driver's code."""

    def __init__(self, reason, status=None):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def reason(status):
    """The words for a ``WLAN.status()`` code of either driver (CYW43 or ESP-IDF)."""
    text = _CYW43.get(status)
    if text is None:
        text = _ESP32.get(status)
    return text if text is not None else "status %r" % (status,)


class WiFi:
    """One station interface.

    :param wlan: a ``network.WLAN(network.STA_IF)`` (or a fake with ``active``, ``connect``,
        ``disconnect``, ``status``, ``isconnected``, ``ifconfig``)
    :param settings: the tracker's settings dict
    :param getaddrinfo: ``socket.getaddrinfo`` (injected: it blocks, see the module docstring)
    :param open_tcp: coroutine ``(address, port) -> (reader, writer)``
        (``asyncio.open_connection``)
    :param random16: callable returning 16 random bits for the jitter
    """

    def __init__(self, wlan, settings, getaddrinfo=None, open_tcp=None, random16=None,
                 log=None):
        self.wlan = wlan
        self.ssid = settings.get("wifi_ssid") or ""
        self.password = settings.get("wifi_password") or ""
        # (tracker.config's dict holds None for a key not set)
        timeout_s = settings.get("wifi_timeout_s")
        backoff_s = settings.get("wifi_max_backoff_s")
        self.timeout_ms = (20 if timeout_s is None else timeout_s) * 1000
        self.max_backoff_ms = (300 if backoff_s is None else backoff_s) * 1000
        self.getaddrinfo = getaddrinfo
        self.open_tcp = open_tcp or asyncio.open_connection
        self.random16 = random16 or (lambda: 32768)
        self.log = log or (lambda line: None)
        self.backoff_ms = 0
        self.next_try_ms = ticks_ms()  # no wait until a join fails (backoff_ms is 0)
        self._addresses = {}
        self.joins = 0
        self.failures = 0
        self.drops = 0
        self.last_reason = ""
        self._was_up = False

    def isconnected(self):
        return self.wlan.isconnected() and self.wlan.status() in GOT_IP

    async def connect(self):
        """Join the configured network; raises :class:`WiFiError` (with the reason) if the
        driver reports a failure or no address comes within the timeout."""
        if not self.ssid:
            raise WiFiError("no wifi_ssid in the settings")
        wlan = self.wlan
        wlan.active(True)
        wlan.connect(self.ssid, self.password)
        started = ticks_ms()
        while True:
            status = wlan.status()
            if status in GOT_IP and wlan.isconnected():
                break
            if status in _FAILED:
                self._failed(status)
            if ticks_diff(ticks_ms(), started) >= self.timeout_ms:
                wlan.disconnect()
                self._failed(status, "no connection after %d s (%s)" % (
                    self.timeout_ms // 1000, reason(status)))
            await _sleep_ms(_POLL_MS)
        self.joins += 1
        self._was_up = True
        self._addresses = {}  # a new network may resolve names differently
        self.backoff_ms = 0
        self.last_reason = ""
        self.log("wifi: joined %s, address %s" % (self.ssid, wlan.ifconfig()[0]))

    def _failed(self, status, text=None):
        self.failures += 1
        self.last_reason = text or reason(status)
        raise WiFiError(self.last_reason, status)

    async def ensure(self):
        """Make sure the link is up: rejoin if it dropped, respecting the backoff.

        Raises :class:`WiFiError` while the backoff runs or when a rejoin fails (the backoff
        then doubles, up to ``wifi_max_backoff_s``, with jitter)."""
        if self.isconnected():
            return
        if self._was_up:
            self._was_up = False
            self.drops += 1
            self.log("wifi: link lost (%s)" % reason(self.wlan.status()))
        now = ticks_ms()
        if self.backoff_ms and ticks_diff(self.next_try_ms, now) > 0:
            raise WiFiError("waiting %d ms before rejoining (%s)" % (
                ticks_diff(self.next_try_ms, now), self.last_reason))
        try:
            await self.connect()
        except WiFiError:
            base = self.backoff_ms * 2 if self.backoff_ms else 1000
            self.backoff_ms = min(base, self.max_backoff_ms)
            # jitter: between 50 % and 100 % of the backoff
            delay = self.backoff_ms // 2 + (self.backoff_ms // 2) * self.random16() // 65536
            self.next_try_ms = ticks_add(ticks_ms(), delay)
            raise

    def resolve(self, host, port):
        """The address to dial for ``host``: an IP as it is, a name resolved once per join."""
        if _is_ip(host):
            return host
        address = self._addresses.get(host)
        if address is None:
            if self.getaddrinfo is None:
                raise WiFiError("cannot resolve %s: no resolver" % host)
            info = self.getaddrinfo(host, port)
            address = info[0][-1][0]
            self._addresses[host] = address
        return address

    async def open_connection(self, host, port):
        """The tracker's ``open_connection``: join if needed, then TCP to the broker."""
        await self.ensure()
        return await self.open_tcp(self.resolve(host, port), port)

    async def sleep(self):
        """Radio off between uploads; the next :meth:`ensure` rejoins."""
        self._was_up = False
        self.wlan.disconnect()
        self.wlan.active(False)

    def stats(self):
        return {"joins": self.joins, "failures": self.failures, "drops": self.drops,
                "backoff_ms": self.backoff_ms, "reason": self.last_reason}


def _is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


async def _sleep_ms(ms):
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)
