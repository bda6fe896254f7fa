"""Board file: the ESP32-S3 reference tracker (``docs/hardware.md``). Wiring only.

ESP32-S3-WROOM-1 (N8R2), u-blox MAX-M10S on UART1, SIMCom SIM7080G on UART2 (or the S3's own
Wi-Fi with ``"link": "wifi"``), MAX17048 fuel gauge on I2C0, a status LED and a buzzer. The pins
below are the reference wiring; ``config.json`` may override any of them (``gnss_uart``,
``gnss_tx``, ``gnss_rx``, ``pins``: ``modem_tx``, ``modem_rx``, ``modem_pwrkey``, ``i2c_sda``,
``i2c_scl``, ``led``, ``buzzer``). The settings are ``/state/config.json``
(``boards.ports.STATE_DIR``), where the dock writes them at enrolment.
"""

import asyncio
import time

import machine

from boards import ports as board
from tracker import app, config

GNSS_UART = 1
GNSS_TX = 17  # ESP32 TX -> MAX-M10S RXD
GNSS_RX = 18  # ESP32 RX <- MAX-M10S TXD
MODEM_UART = 2
MODEM_TX = 4  # ESP32 TX -> SIM7080G RXD
MODEM_RX = 5  # ESP32 RX <- SIM7080G TXD
MODEM_PWRKEY = 6  # through an NPN: high here pulls PWRKEY low
MODEM_BAUD = 115200
I2C_SDA = 8
I2C_SCL = 9
LED = 2
BOOT_BUTTON = 0  # GPIO0, the devkit's BOOT: held just after reset, the tracker does not start
BUZZER = 7  # active buzzer through an NPN
WDT_TIMEOUT_MS = 30000
# Longest the main loop may sit in one await: an LTE-M registration may take up to the modem's
# register_timeout_s (180 s by default) inside one broker connection attempt.
MAIN_LOOP_STALE_MS = 300000


PWRKEY_PULSE_MS = 1100  # SIM7080G power-on pulse: PWRKEY low for at least 1 s


def modem_power_on(key):
    """Pulse SIM7080G PWRKEY low (``key`` high through the NPN) at boot, before the loop."""
    key.value(1)
    time.sleep_ms(PWRKEY_PULSE_MS)
    key.value(0)


def power_key(key):
    """The modem driver's ``power_key``: the same pulse from inside the event loop, released by
    a task so GNSS parsing goes on meanwhile (the driver pulses it when the UART stays silent,
    a modem in PSM or switched off)."""

    async def release():
        await asyncio.sleep_ms(PWRKEY_PULSE_MS)
        key.value(0)

    def pulse():
        key.value(1)
        asyncio.create_task(release())

    return pulse


def build(cfg, log=print, state_dir=board.STATE_DIR, dock_io=None):
    """The tracker's ports for this board, from the settings dict. The dock talks over the
    native USB CDC (the console), or ``dock_io`` when given (a test's pseudo-terminal)."""
    pin = config.pin
    gnss = board.UartLines(board.gnss_uart(cfg, GNSS_UART, GNSS_TX, GNSS_RX))
    if cfg["link"] == "cellular":
        key = machine.Pin(pin(cfg, "modem_pwrkey", MODEM_PWRKEY), machine.Pin.OUT, value=0)
        modem_power_on(key)
        uart = machine.UART(MODEM_UART, baudrate=MODEM_BAUD,
                            tx=machine.Pin(pin(cfg, "modem_tx", MODEM_TX)),
                            rx=machine.Pin(pin(cfg, "modem_rx", MODEM_RX)), rxbuf=4096)
        # DNS, sockets and TLS in the modem: never blocks the loop, no mbedTLS in the heap.
        radio = board.modem_link(cfg, uart, power_key(key), log)
    else:
        radio = board.wifi_link(cfg, log)
    ports = app.Ports(gnss, radio.open_connection, board.storage(state_dir), log, radio=radio)
    _wire_common(ports, cfg, gnss)
    ports.dock = board.dock_link(dock_io)
    return ports


def _wire_common(ports, cfg, gnss):
    from drivers.battery import Max17048
    from drivers.clock import GnssClock
    from drivers.indicator import Indicator
    from drivers.sleep import LightSleep
    from drivers.watchdog import Watchdog

    pin = config.pin
    if cfg["gnss_module"] != "nmea":
        from drivers.gnss_module import GnssModule

        module = GnssModule(cfg["gnss_module"], gnss, cfg["gnss_rate_ms"])
        ports.gnss_module = module
        ports.gnss_power = module
    i2c = machine.I2C(0, sda=machine.Pin(pin(cfg, "i2c_sda", I2C_SDA)),
                      scl=machine.Pin(pin(cfg, "i2c_scl", I2C_SCL)), freq=400000)
    gauge = Max17048(i2c)
    ports.battery = gauge if gauge.present() else None
    ports.clock = GnssClock(machine.RTC())
    watchdog = Watchdog(machine.WDT(timeout=WDT_TIMEOUT_MS), MAIN_LOOP_STALE_MS)
    ports.watchdog = watchdog
    ports.idle = LightSleep(machine.lightsleep, watchdog)
    led = machine.Pin(pin(cfg, "led", LED), machine.Pin.OUT, value=0)
    buzzer = machine.Pin(pin(cfg, "buzzer", BUZZER), machine.Pin.OUT, value=0)
    ports.tasks = [board.watchdog_task(watchdog),
                   board.indicator_task(Indicator(led, buzzer), ports.battery)]


def main(state_dir=board.STATE_DIR):
    # GPIO0 is sampled by the ROM only at reset (held then: download mode), so it is free to
    # read here, a second later, as "leave me the REPL".
    button = machine.Pin(BOOT_BUTTON, machine.Pin.IN, machine.Pin.PULL_UP)
    board.boot(button.value() == 0, build, state_dir)
