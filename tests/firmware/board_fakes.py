"""Stand-ins for the ``machine`` and ``network`` modules of the ESP32 and RP2 ports, so the real
board files (``boards/esp32s3.py``, ``boards/picow.py``) can be built and driven on the unix
port. Only what cannot exist on a host is faked (pins, I2C, ADC, watchdog, WLAN association);
a UART that the test names (``UART_PATHS``) is a real serial device opened raw, e.g. the
simulated SIM7080G's pseudo-terminal, so the modem path is the real driver over a real tty.

``install()`` puts both into ``sys.modules`` before a board file is imported.
"""

import sys

#: UART number -> serial device path (the rest read nothing)
UART_PATHS = {}


class Pin:
    OUT = 1
    IN = 0
    PULL_UP = 2
    #: every value written to any pin: (pin id, value), in order
    writes = []

    def __init__(self, pin_id, mode=None, pull=None, value=None):
        self.id = pin_id
        self._value = 0
        if value is not None:
            self.value(value)

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = v
        Pin.writes.append((self.id, v))


def UART(uart_id, baudrate=9600, tx=None, rx=None, rxbuf=256):  # noqa: N802 - the port's name
    path = UART_PATHS.get(uart_id)
    if not path:
        return open("/dev/null", "r+b")
    from boards.unix_devices import open_raw

    return open_raw(path)


class I2C:
    def __init__(self, bus, sda=None, scl=None, freq=400000):
        self.bus = bus

    def readfrom_mem_into(self, address, register, buf):
        raise OSError(19)  # ENODEV: no fuel gauge on the bus


class ADC:
    def __init__(self, pin):
        self.pin = pin

    def read_u16(self):
        return 40000


class RTC:
    def datetime(self, value=None):
        return (2026, 12, 4, 4, 10, 0, 0, 0)


class WDT:
    def __init__(self, timeout=5000):
        self.timeout = timeout
        self.feeds = 0

    def feed(self):
        self.feeds += 1


def unique_id():
    return b"\x0b\x0a\x0d"


def lightsleep(ms=0):
    pass


class WLAN:
    """Associates at once with whatever it is told (records it); status 3: got an address."""

    last = None

    def __init__(self, interface):
        self._active = False
        self._connected = False
        self.joined = []  # (ssid, password) of every connect
        self.activity = []
        WLAN.last = self

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        self.activity.append(self._active)
        if not on:
            self._connected = False

    def connect(self, ssid, password=""):
        self.joined.append((ssid, password))
        self._connected = self._active

    def disconnect(self):
        self._connected = False

    def isconnected(self):
        return self._connected

    def status(self):
        return 3 if self._connected else 0

    def ifconfig(self):
        return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")


class _Module:
    pass


def install():
    machine = _Module()
    for name in ("Pin", "UART", "I2C", "ADC", "RTC", "WDT", "unique_id", "lightsleep"):
        setattr(machine, name, globals()[name])
    network = _Module()
    network.WLAN = WLAN
    network.STA_IF = 0
    sys.modules["machine"] = machine
    sys.modules["network"] = network
