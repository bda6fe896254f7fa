"""SIMCom SIM7080G (LTE-M / NB-IoT) driver: the data link and the MQTT client's TCP sockets.

Written against the SIM7070/SIM7080/SIM7090 Series AT Command Manual (v1.04); only the subset
the tracker needs:

- bring-up: ``AT`` (until the modem answers), ``ATE0``, ``AT+CPIN?``, ``AT+CFUN=1``, the APN
  (``AT+CGDCONT`` for attach, ``AT+CNCFG`` for the app PDP context), PSM and eDRX timers
  (``AT+CPSMS``, ``AT+CEDRXS``), registration by polling ``AT+CEREG?``, then ``AT+CNACT=0,1``
  and the ``+APP PDP: 0,ACTIVE`` URC;
- DNS through the modem (``AT+CDNSGIP``, answered by a URC), so no blocking ``getaddrinfo``
  runs in the event loop;
- TCP through the modem's sockets: ``AT+CASTATE?`` (stale ones closed at bring-up; a cid
  whose ``AT+CAOPEN`` was abandoned or failed is closed with ``AT+CACLOSE`` before it is
  opened again: the modem keeps it, and refuses to open it, until then),
  ``AT+CAOPEN`` / ``AT+CASEND`` (``>`` prompt, then exactly the announced bytes) /
  ``AT+CARECV`` / ``AT+CACLOSE``, with the ``+CADATAIND`` (data waiting) and ``+CASTATE``
  (closed by the peer) URCs;
- TLS in the modem when the broker's CA is given: ``AT+CFSINIT``/``AT+CFSWFILE`` (the CA
  into the modem's file system)/``AT+CFSTERM``, ``AT+CSSLCFG`` (TLS 1.2, convert the CA) and
  ``AT+CASSLCFG`` (SSL on the socket, checked against that CA);
- radio sleep between uploads: ``AT+CFUN=0`` (RF off; the modem keeps its settings) and
  ``AT+CFUN=1`` with re-registration to wake, or the network's PSM when the timers are set.

The UART arrives as an asyncio stream (``read``/``readinto``, ``write``, ``drain``): on a board
``asyncio.StreamReader(machine.UART(...))``, on the unix port a pseudo-terminal to
``simulators/modem.py``. Settings arrive as the tracker's one settings dict (``apn``, and
optionally ``psm_tau_s``, ``psm_active_s``, ``edrx_s``, ``register_timeout_s``,
``radio_sleep``).

Allocation: the UART is read into one preallocated buffer and answers are parsed in place;
received socket data is copied from it into each socket's preallocated buffer, which the MQTT
client drains with ``readinto``. AT command lines are short ``bytes``.

:meth:`Modem.open_connection` is the ``open_connection(host, port)`` of ``tracker.app.Ports``:
it returns ``(reader, writer)`` (one :class:`ModemSocket` twice), as ``asyncio.open_connection``
does, so ``tracker.mqtt.MQTTClient`` does not know it talks through a modem.
"""

import asyncio

from tracker.compat import const, ticks_diff, ticks_ms

# Reads ask for at most _SOCK_RX bytes (the modem allows 1460): a 42 KB fence set then takes ~42
# AT+CARECV round trips at 115200 baud, and the tracker keeps ~2.5 KB of buffers, not ~5 KB.
_SOCK_RX = const(1024)
_IN_SIZE = const(1152)  # UART receive buffer: one +CARECV of _SOCK_RX bytes plus its framing
_SEND_MAX = const(1460)  # the largest AT+CASEND the SIM7080 takes
_SOCKETS = const(1)  # cids used (0..12 exist; the MQTT client needs one)
_CMD_TIMEOUT_MS = const(5000)
_OPEN_TIMEOUT_MS = const(30000)  # TCP connect over LTE-M, as the manual's maximum response
_DNS_TIMEOUT_MS = const(20000)
_PDP_TIMEOUT_MS = const(30000)
_DATA_POLL_MS = const(5000)  # read anyway if no +CADATAIND arrived for this long
_STALE_MS = const(2000)  # how long an abandoned command's late answer is waited for
_CA_NAME = "hotspots-ca.pem"  # in the modem's customer file system (AT+CFSWFILE dir 3)

# Registration states of +CEREG (3GPP TS 27.007)
REG_HOME = const(1)
REG_SEARCHING = const(2)
REG_DENIED = const(3)
REG_ROAMING = const(5)

# T3412-extended (periodic TAU) units in seconds, by the three high bits (TS 24.008 10.5.7.4a)
_TAU_UNITS = ((3, 2), (4, 30), (5, 60), (0, 600), (1, 3600), (2, 36000), (6, 1152000))
# T3324 (active time) units in seconds (TS 24.008 10.5.7.3)
_ACTIVE_UNITS = ((0, 2), (1, 60), (2, 360))
# eDRX cycles for LTE-M (TS 24.008 10.5.5.32), in units of 10 ms, for the values 0..15
_EDRX_10MS = (512, 1024, 2048, 4096, 6144, 8192, 10240, 12288, 14336, 16384, 32768, 65536,
              131072, 262144, 524288, 1048576)


class ModemError(OSError):
    """The modem refused a command, did not answer in time, or the link is down."""


def timer_bits(seconds, units):
    """The 8-bit GPRS timer string (``"00100011"``) for at least ``seconds``: the finest unit
    that can hold it (value up to 31), or ``None`` if none can."""
    for code, unit_s in units:
        value = (seconds + unit_s - 1) // unit_s
        if value <= 31:
            byte = (code << 5) | value
            return "".join("1" if byte & (1 << (7 - i)) else "0" for i in range(8))
    return None


def timer_seconds(bits, units):
    """Seconds encoded by an 8-bit timer string (inverse of :func:`timer_bits`), or None for
    "deactivated" or a unit not in ``units``."""
    byte = int(bits, 2)
    code = byte >> 5
    for c, unit_s in units:
        if c == code:
            return (byte & 31) * unit_s
    return None


def edrx_bits(seconds):
    """The 4-bit eDRX value (``"0101"``) of the shortest LTE-M cycle of at least ``seconds``."""
    want = seconds * 100
    for i, cycle in enumerate(_EDRX_10MS):
        if cycle >= want:
            return "".join("1" if i & (1 << (3 - b)) else "0" for b in range(4))
    return "1111"


def is_ipv4(host):
    """True for a dotted-quad address (no DNS needed)."""
    parts = host.split(".")
    if len(parts) != 4:
        return False
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return False
    return True


class ModemSocket:
    """One TCP connection through the modem: the ``(reader, writer)`` the MQTT client gets.

    Reading: the modem holds received data until ``AT+CARECV``; ``+CADATAIND`` says some is
    waiting. Writing: ``write`` queues, ``drain`` sends with ``AT+CASEND`` in pieces of at most
    1460 bytes.
    """

    def __init__(self, modem, cid):
        self.modem = modem
        self.cid = cid
        self._rx = bytearray(_SOCK_RX)
        self._rx_view = memoryview(self._rx)
        self._start = 0
        self._end = 0
        self._out = []
        self.data_waiting = asyncio.Event()
        self.open = False
        self.closed_by_peer = False
        # An AT+CAOPEN on this cid was abandoned (the caller's connect timed out) or failed:
        # the modem may still hold the cid, and refuses AT+CAOPEN on it until AT+CACLOSE.
        self.stale = False

    def _reset(self):
        self._start = self._end = 0
        self._out = []
        self.data_waiting = asyncio.Event()
        self.open = True
        self.closed_by_peer = False

    def _stored(self, data_view, n):
        # Called by the modem's parser with the bytes of one +CARECV.
        self._rx_view[:n] = data_view[:n]
        self._start = 0
        self._end = n

    async def _fill(self):
        while self._start >= self._end:
            if not self.open:
                raise ModemError("socket %d closed" % self.cid)
            got = await self.modem.receive(self)
            if got:
                return
            if self.closed_by_peer:
                self.open = False
                raise ModemError("socket %d closed by the peer" % self.cid)
            try:
                await _wait(self.data_waiting, _DATA_POLL_MS)
            except asyncio.TimeoutError:
                pass

    async def readinto(self, buf):
        """Copy up to ``len(buf)`` received bytes into ``buf``; returns how many (>= 1)."""
        await self._fill()
        n = min(len(buf), self._end - self._start)
        buf[:n] = self._rx_view[self._start:self._start + n]
        self._start += n
        return n

    async def readexactly(self, n):
        """Exactly ``n`` bytes (``bytes``); raises :class:`ModemError` if the socket closes."""
        out = bytearray(n)
        view = memoryview(out)
        got = 0
        while got < n:
            got += await self.readinto(view[got:])
        return bytes(out)

    async def read(self, n=-1):
        """Whatever is waiting, up to ``n`` bytes (at least one)."""
        await self._fill()
        k = self._end - self._start if n < 0 else min(n, self._end - self._start)
        data = bytes(self._rx_view[self._start:self._start + k])
        self._start += k
        return data

    def write(self, data):
        self._out.append(data)

    async def drain(self):
        out = self._out
        self._out = []
        for data in out:
            view = memoryview(data)
            while len(view):
                piece = view[:_SEND_MAX]
                await self.modem.send(self, piece)
                view = view[len(piece):]

    def close(self):
        self._out = []
        if self.open:
            self.open = False
            self.modem.closing(self)

    async def wait_closed(self):
        await self.modem.close_socket(self)

    def get_extra_info(self, name):
        return None


class Modem:
    """A SIM7080G on a UART: bring-up, DNS, TCP sockets, sleep and wake.

    :param port: asyncio stream over the UART (``readinto`` or ``read``, ``write``, ``drain``)
    :param settings: the tracker's settings dict (``apn`` required)
    :param log: callable taking a line of text
    """

    def __init__(self, port, settings, log=None, ca_pem=None, power_key=None):
        self.port = port
        # Callable that pulses PWRKEY (the board's pin): wakes a modem whose UART sleeps in PSM.
        self.power_key = power_key
        self.key_pulses = 0
        # TLS in the modem (AT+CSSLCFG/AT+CASSLCFG) when the broker's CA is given: the
        # handshake and its buffers live in the modem, not in the tracker's heap
        # (docs/link.md has the figures).
        self.ca_pem = ca_pem
        self.apn = settings.get("apn") or ""
        self.psm_tau_s = settings.get("psm_tau_s") or 0
        self.psm_active_s = settings.get("psm_active_s") or 0
        self.edrx_s = settings.get("edrx_s") or 0
        self.register_timeout_ms = (settings.get("register_timeout_s") or 180) * 1000
        # "cfun0": RF off between uploads (AT+CFUN=0); "psm": leave it to the network's PSM
        # (the modem sleeps by itself after the active time); "none": stay registered.
        self.radio_sleep = settings.get("radio_sleep") or "cfun0"
        self.log = log or (lambda line: None)
        self._in = bytearray(_IN_SIZE)
        self._in_view = memoryview(self._in)
        self._fill = 0
        self._lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._prompt = asyncio.Event()
        self._pdp = asyncio.Event()
        self._dns = asyncio.Event()
        self._dns_answer = None
        self._prefix = None
        self._lines = []
        self._result = None
        self._carecv_sock = None
        self._carecv_got = 0
        self._reader_task = None
        self._up_state = None  # [Event, error] of the bring-up or wake in progress
        self._stale = False  # a command was abandoned before its final answer
        self.sockets = [ModemSocket(self, cid) for cid in range(_SOCKETS)]
        self.up = False  # registered with an active PDP context
        self.asleep = False
        self.ip = ""
        self.registration = 0
        # Counters, for the status log and the energy work.
        self.commands = 0
        self.timeouts = 0
        self.errors = 0
        self.urcs = 0
        self.noise = 0  # bytes dropped: a line too long for the buffer
        self.bytes_sent = 0
        self.bytes_received = 0
        self.bring_ups = 0
        self.sleeps = 0

    # -- the UART reader: answers and URCs --------------------------------------------------------
    def start(self):
        """Start the task that reads the UART (idempotent)."""
        if self._reader_task is None:
            self._reader_task = asyncio.create_task(self._read_uart())

    async def _read_uart(self):
        port = self.port
        readinto = getattr(port, "readinto", None)
        while True:
            if self._fill >= _IN_SIZE:  # no line end in the whole buffer: noise
                self.noise += self._fill
                self._fill = 0
            if readinto is not None:
                n = await readinto(self._in_view[self._fill:])
            else:
                chunk = await port.read(_IN_SIZE - self._fill)
                n = len(chunk)
                self._in_view[self._fill:self._fill + n] = chunk
            if not n:  # nothing (or the other end hung up for now): do not spin
                await _sleep_ms(50)
                continue
            self._fill += n
            try:
                self._parse()
            except Exception:  # noqa: BLE001 - whatever the line noise, the reader lives on
                self.noise += self._fill
                self._fill = 0

    def _consume(self, k):
        rest = self._fill - k
        if rest:  # memoryview slice assignment moves overlapping bytes correctly
            self._in_view[:rest] = self._in_view[k:self._fill]
        self._fill = rest

    def _parse(self):
        buf = self._in
        while self._fill:
            # Line ends before an answer are framing, not content.
            k = 0
            while k < self._fill and buf[k] in (10, 13):
                k += 1
            if k:
                self._consume(k)
                continue
            if buf[0] == 62 and self._prefix == b">":  # the "> " prompt of AT+CASEND
                k = 2 if self._fill > 1 and buf[1] == 32 else 1
                self._consume(k)
                self._prompt.set()
                continue
            if self._carecv_sock is not None and self._starts(b"+CARECV: "):
                if not self._parse_carecv():
                    return  # wait for the rest of the data
                continue
            nl = buf.find(b"\n", 0, self._fill)
            if nl < 0:
                return
            end = nl
            if end and buf[end - 1] == 13:
                end -= 1
            line = bytes(self._in_view[:end])
            self._consume(nl + 1)
            self._line(line)

    def _starts(self, prefix):
        n = len(prefix)
        return self._fill >= n and self._in_view[:n] == prefix

    def _parse_carecv(self):
        """``+CARECV: <len>,<data>``: the data may hold line ends, so it is cut by length."""
        buf = self._in
        comma = -1
        for i in range(9, min(self._fill, 16)):
            if buf[i] == 44:
                comma = i
                break
            if buf[i] in (13, 10):  # "+CARECV: 0": nothing waiting
                self._carecv_got = 0
                self._consume(i)
                return True
        if comma < 0:
            if self._fill >= 16:  # not a length: skip the line as noise
                self.noise += 1
                self._carecv_sock = None
                return True
            return False
        try:
            n = int(bytes(self._in_view[9:comma]))
        except ValueError:
            n = -1
        if not 0 <= n <= _SOCK_RX:
            self.noise += 1
            self._consume(comma + 1)
            return True
        if self._fill < comma + 1 + n:
            return False
        sock = self._carecv_sock
        if sock is not None:  # (checked by the caller; here for the type checker)
            sock._stored(self._in_view[comma + 1:], n)
        self._carecv_got = n
        self.bytes_received += n
        self._consume(comma + 1 + n)
        return True

    def _line(self, line):
        if line == b"DOWNLOAD" and self._prefix == b"DOWNLOAD":  # AT+CFSWFILE's prompt
            self._prompt.set()
            return
        # A URC first: they can arrive in the middle of any command's answer.
        if line.startswith(b"+CADATAIND: "):
            self.urcs += 1
            cid = _int(line[12:])
            if 0 <= cid < _SOCKETS:
                self.sockets[cid].data_waiting.set()
            return
        if line.startswith(b"+CASTATE: ") and self._prefix != b"+CASTATE: ":
            self.urcs += 1
            cid, _, state = line[10:].partition(b",")
            cid = _int(cid)
            if 0 <= cid < _SOCKETS and _int(state) == 0:
                sock = self.sockets[cid]
                sock.closed_by_peer = True
                sock.data_waiting.set()
            return
        if line.startswith(b"+APP PDP: "):
            self.urcs += 1
            if line.endswith(b"DEACTIVE"):
                self.up = False
                self._pdp.clear()
            else:
                self._pdp.set()
            return
        if line.startswith(b"+CDNSGIP: ") and self._prefix != b"+CDNSGIP: ":
            self.urcs += 1
            self._dns_answer = line[10:]
            self._dns.set()
            return
        prefix = self._prefix
        if prefix and len(prefix) > 1 and line.startswith(prefix):
            self._lines.append(line)  # the answer asked for (+CFUN: and +CPIN: are URCs too)
            return
        if line in (b"NORMAL POWER DOWN", b"RDY", b"+CFUN: 1", b"+CFUN: 0", b"SMS Ready",
                    b"ENTER PSM", b"EXIT PSM") or line.startswith(b"+CPIN: "):
            self.urcs += 1
            if line == b"NORMAL POWER DOWN":
                self.up = False
            return
        if self._prefix is None:
            self.urcs += 1  # something unsolicited we do not use
            return
        if line == b"OK":
            self._finish(True)
        elif line == b"ERROR" or line.startswith(b"+CME ERROR") or line.startswith(
                b"+CMS ERROR"):
            self._lines.append(line)
            self._finish(False)
        elif self._prefix == b"" or line.startswith(self._prefix):
            self._lines.append(line)
        else:
            self.urcs += 1

    def _finish(self, ok):
        self._result = ok
        self._done.set()
        self._prompt.set()  # a final answer instead of the prompt ends that wait too

    # -- commands ---------------------------------------------------------------------------------
    async def command(self, text, prefix=b"", timeout_ms=_CMD_TIMEOUT_MS, data=None,
                      prompt=b">"):
        """Send ``AT<text>``; returns the answer lines starting with ``prefix`` (before OK).

        ``data``: bytes sent after the ``prompt`` (``>`` for ``AT+CASEND``, ``DOWNLOAD`` for
        ``AT+CFSWFILE``). Raises :class:`ModemError` on ``ERROR``/``+CME ERROR`` (also in
        place of the prompt) or when no final answer comes within ``timeout_ms``.
        """
        self.start()
        async with self._lock:
            if self._stale:
                # The last command was abandoned (its caller cancelled, or it timed out):
                # let its final answer arrive before sending, or it would be taken for this
                # command's, and every answer after it would be one late.
                self._stale = False
                if not self._done.is_set():
                    try:
                        await _wait(self._done, _STALE_MS)
                    except asyncio.TimeoutError:
                        pass
            self._lines = []
            self._result = None
            self._done.clear()
            self._prompt.clear()
            self._prefix = prompt if data is not None else prefix
            self.commands += 1
            try:
                self.port.write(b"AT" + (text.encode() if isinstance(text, str) else text)
                                + b"\r")
                await self.port.drain()
                if data is not None:
                    await _wait(self._prompt, timeout_ms)
                    if self._result is None:  # the prompt, not ERROR
                        self._prefix = b""
                        self.port.write(data)
                        await self.port.drain()
                await _wait(self._done, timeout_ms)
            except asyncio.TimeoutError:
                self.timeouts += 1
                raise ModemError("AT%s: no answer" % (text,))
            finally:
                if self._result is None:  # abandoned: keep catching its final answer
                    self._stale = True
                    self._prefix = b""
                else:
                    self._prefix = None
            if not self._result:
                self.errors += 1
                raise ModemError("AT%s: %s" % (text, self._lines[-1].decode()
                                                if self._lines else "ERROR"))
            return self._lines

    async def query(self, text, prefix):
        """The value after ``prefix`` of the one answer line (``str``), e.g. ``+CPIN: READY``."""
        lines = await self.command(text, prefix.encode())
        if not lines:
            raise ModemError("AT%s: no %s line" % (text, prefix))
        return lines[0][len(prefix):].decode()

    # -- bring-up ---------------------------------------------------------------------------------
    async def wake_uart(self, tries=10):
        """Send ``AT`` until the modem answers (it autobauds after power-on). After three
        silent tries, pulse PWRKEY (``power_key``, from the board) once: a modem in PSM has its
        UART off and only PWRKEY wakes it."""
        for i in range(tries):
            if i == 3 and self.power_key is not None:
                self.power_key()
                self.key_pulses += 1
            try:
                await self.command("", timeout_ms=500)
                return
            except ModemError:
                self._stale = False  # silence here means the modem did not hear it
        raise ModemError("modem does not answer AT")

    async def bring_up(self):
        """Attach and activate the data link; raises :class:`ModemError` with the step."""
        if '"' in self.apn:
            raise ModemError("the APN may not contain a quote")
        await self.wake_uart()
        await self.command("E0")
        pin = await self.query("+CPIN?", "+CPIN: ")
        if pin != "READY":
            raise ModemError("SIM not ready: " + pin)
        await self.command("+CFUN=1", timeout_ms=10000)
        self.asleep = False
        # A socket left open before an MCU reset (the modem kept running) would make
        # AT+CAOPEN on its cid fail: close what AT+CASTATE? lists.
        for line in await self.command("+CASTATE?", b"+CASTATE: "):
            cid = _int(line[10:].partition(b",")[0])
            if 0 <= cid < _SOCKETS:
                self.sockets[cid].open = False
                await self.command("+CACLOSE=%d" % cid)
        if self.apn:
            await self.command('+CGDCONT=1,"IP","%s"' % self.apn)
            await self.command('+CNCFG=0,1,"%s"' % self.apn)
        await self.configure_power_saving()
        await self.wait_registered()
        await self.activate()
        if self.ca_pem:
            await self.configure_tls()
        self.bring_ups += 1
        self.log("modem: up, %s, IP %s" % (
            "home" if self.registration == REG_HOME else "roaming", self.ip))

    async def configure_tls(self):
        """The CA into the modem's file system, then TLS 1.2 on the socket, checked against it."""
        ca = self.ca_pem
        await self.command("+CFSINIT")
        try:
            await self.command('+CFSWFILE=3,"%s",0,%d,10000' % (_CA_NAME, len(ca)), data=ca,
                               prompt=b"DOWNLOAD", timeout_ms=15000)
        finally:
            await self.command("+CFSTERM")
        await self.command('+CSSLCFG="sslversion",0,3')  # TLS 1.2
        await self.command('+CSSLCFG="convert",2,"%s"' % _CA_NAME)
        await self.command('+CASSLCFG=0,"SSL",1')
        await self.command('+CASSLCFG=0,"CACERT","%s"' % _CA_NAME)

    async def configure_power_saving(self):
        """PSM (periodic TAU and active time) and eDRX as the settings ask, or off."""
        if self.psm_tau_s and self.psm_active_s:
            tau = timer_bits(self.psm_tau_s, _TAU_UNITS)
            active = timer_bits(self.psm_active_s, _ACTIVE_UNITS)
            if tau is None or active is None:
                raise ModemError("PSM timers out of range")
            await self.command('+CPSMS=1,,,"%s","%s"' % (tau, active))
        else:
            await self.command("+CPSMS=0")
        if self.edrx_s:
            await self.command('+CEDRXS=1,4,"%s"' % edrx_bits(self.edrx_s))

    async def wait_registered(self):
        """Poll ``AT+CEREG?`` until registered (home or roaming)."""
        started = ticks_ms()
        delay = 200
        while True:
            value = await self.query("+CEREG?", "+CEREG: ")
            parts = value.split(",")
            stat = _int(parts[1].encode()) if len(parts) > 1 else -1
            self.registration = stat
            if stat in (REG_HOME, REG_ROAMING):
                return stat
            if stat == REG_DENIED:
                raise ModemError("registration denied by the network")
            if ticks_diff(ticks_ms(), started) > self.register_timeout_ms:
                raise ModemError("not registered after %d s (state %d)" % (
                    self.register_timeout_ms // 1000, stat))
            await _sleep_ms(delay)
            delay = min(delay * 2, 2000)

    async def activate(self):
        """``AT+CNACT=0,1`` and wait for ``+APP PDP: 0,ACTIVE``; reads the address."""
        self._pdp.clear()
        await self.command("+CNACT=0,1")
        try:
            await _wait(self._pdp, _PDP_TIMEOUT_MS)
        except asyncio.TimeoutError:
            self.timeouts += 1
        for line in await self.command("+CNACT?", b"+CNACT: "):
            parts = line[8:].split(b",")
            if len(parts) >= 3 and parts[0] == b"0" and parts[1] == b"1":
                self.ip = parts[2].strip(b'"').decode()
                self.up = True
                return self.ip
        raise ModemError("PDP context not active")

    # -- sleep between uploads --------------------------------------------------------------------
    async def sleep(self):
        """Let the radio sleep until the next :meth:`wake` (sockets are closed first)."""
        for sock in self.sockets:
            if sock.open:
                await self.close_socket(sock)
        if self.radio_sleep == "none":
            return  # stays registered: the next connection only opens a socket
        if self.radio_sleep == "cfun0":
            await self.command("+CFUN=0", timeout_ms=10000)
            self.up = False
        self.asleep = True
        self.sleeps += 1

    async def wake(self):
        """Bring the link back after :meth:`sleep` (or after a drop)."""
        if self.radio_sleep == "psm":
            await self.wake_uart()  # asleep in PSM, its UART is off
        if self.radio_sleep == "cfun0" or not self.up:
            await self.command("+CFUN=1", timeout_ms=10000)
            await self.wait_registered()
            await self.activate()
        else:
            await self.wait_registered()  # PSM keeps the registration and the PDP context
        self.asleep = False

    async def link_up(self):
        """Registered with an active PDP context, waking or bringing the modem up if needed.

        The work runs in a task of its own that the caller only waits for: registering can
        take minutes, longer than the MQTT client's connect timeout, and a caller that gives
        up (its wait is cancelled) must not abort the bring-up half-way; the next call waits
        for the same one."""
        if self.up and not self.asleep:
            return
        state = self._up_state
        if state is None:
            state = self._up_state = [asyncio.Event(), None]
            asyncio.create_task(self._link_worker(state))
        await state[0].wait()
        if state[1] is not None:
            raise state[1]

    async def _link_worker(self, state):
        try:
            if self.asleep:
                await self.wake()
            else:
                await self.bring_up()
        except Exception as exc:  # noqa: BLE001 - handed to every waiter
            state[1] = exc if isinstance(exc, ModemError) else ModemError(repr(exc))
        finally:
            self._up_state = None
            state[0].set()

    # -- DNS and sockets --------------------------------------------------------------------------
    async def resolve(self, host):
        """IPv4 address of ``host`` through the modem's DNS (``AT+CDNSGIP``)."""
        if is_ipv4(host):
            return host
        if '"' in host:
            raise ModemError("bad host name")
        self._dns.clear()
        self._dns_answer = None
        await self.command('+CDNSGIP="%s",1,10000' % host)
        try:
            await _wait(self._dns, _DNS_TIMEOUT_MS)
        except asyncio.TimeoutError:
            self.timeouts += 1
            raise ModemError("DNS: no answer for " + host)
        answer = self._dns_answer or b""
        parts = answer.split(b",")
        if parts[0] != b"1" or len(parts) < 3:
            raise ModemError("DNS: %s not found (%s)" % (host, answer.decode()))
        return parts[2].strip(b'"').decode()

    async def open_connection(self, host, port):
        """TCP to ``host:port`` through the modem: ``(reader, writer)`` for the MQTT client.

        Brings the link up (or wakes it) first, so the caller only ever sees one coroutine.
        """
        await self.link_up()
        # With modem TLS the modem resolves the name itself and checks the certificate
        # against it; otherwise resolve here (through the modem, never blocking).
        address = host if self.ca_pem else await self.resolve(host)
        sock = None
        for s in self.sockets:
            if not s.open:
                sock = s
                break
        if sock is None:
            raise ModemError("no free modem socket")
        if sock.stale:
            await self.close_socket(sock)  # ERROR (nothing open there) is fine
        sock.stale = True  # until the modem says it opened: a cancelled wait leaves it so
        lines = await self.command('+CAOPEN=0,%d,"TCP","%s",%d' % (sock.cid, address, port),
                                   b"+CAOPEN: ", _OPEN_TIMEOUT_MS)
        result = -1
        if lines:
            result = _int(lines[0][9:].partition(b",")[2])
        if result != 0:
            raise ModemError("CAOPEN %s:%d failed, result %d" % (address, port, result))
        sock.stale = False
        sock._reset()
        return sock, sock

    async def send(self, sock, view):
        """``AT+CASEND`` one piece (at most 1460 bytes)."""
        if not sock.open or sock.closed_by_peer:
            raise ModemError("socket %d is closed" % sock.cid)
        await self.command("+CASEND=%d,%d" % (sock.cid, len(view)), data=view)
        self.bytes_sent += len(view)

    async def receive(self, sock):
        """``AT+CARECV``: fill ``sock``'s buffer; returns the number of bytes (0: none)."""
        sock.data_waiting.clear()
        self._carecv_sock = sock
        self._carecv_got = 0
        try:
            await self.command("+CARECV=%d,%d" % (sock.cid, _SOCK_RX), b"+CARECV: ")
        finally:
            self._carecv_sock = None
        return self._carecv_got

    def closing(self, sock):
        sock.data_waiting.set()  # wake a reader blocked on it: it sees the socket closed

    async def close_socket(self, sock):
        sock.open = False
        try:
            await self.command("+CACLOSE=%d" % sock.cid)
        except ModemError:
            pass  # already closed by the peer: the modem answers ERROR

    def stats(self):
        """Counters as a dict (for the log line and the energy model)."""
        return {"commands": self.commands, "timeouts": self.timeouts, "errors": self.errors,
                "urcs": self.urcs, "noise": self.noise, "sent": self.bytes_sent,
                "received": self.bytes_received, "bring_ups": self.bring_ups,
                "sleeps": self.sleeps, "key_pulses": self.key_pulses}


def _int(text):
    try:
        return int(text)
    except ValueError:
        return -1


async def _sleep_ms(ms):
    if hasattr(asyncio, "sleep_ms"):
        await asyncio.sleep_ms(ms)
    else:
        await asyncio.sleep(ms / 1000)


async def _wait(event, timeout_ms):
    if hasattr(asyncio, "wait_for_ms"):
        await asyncio.wait_for_ms(event.wait(), timeout_ms)
    else:
        await asyncio.wait_for(event.wait(), timeout_ms / 1000)
