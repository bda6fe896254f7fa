"""Board file: the Raspberry Pi Pico W reference tracker (``docs/hardware.md``). Wiring only.

RP2040 with the CYW43439 Wi-Fi, u-blox MAX-M10S on UART0 (GP0/GP1), the cell through a 100k/100k
divider on ADC0 (GP26) with the charger's STAT on GP15, a status LED on GP16 and a buzzer on
GP17. (The Pico W's own LED hangs off the Wi-Fi chip, which sleeps with the radio.) The RTC is
the RP2040's; ``config.json`` may override any pin (``gnss_uart``, ``gnss_tx``, ``gnss_rx``,
``pins``: ``battery_adc``, ``charge_stat``, ``led``, ``buzzer``). The settings are
``/state/config.json`` (``boards.ports.STATE_DIR``), where the dock writes them at enrolment.
"""

import machine

from boards import ports as board
from tracker import app, config

GNSS_UART = 0
GNSS_TX = 0  # GP0: Pico TX -> MAX-M10S RXD
GNSS_RX = 1  # GP1: Pico RX <- MAX-M10S TXD
BATTERY_ADC = 26  # GP26/ADC0, cell through 100k (top) / 100k (bottom)
BATTERY_R_TOP = 100
BATTERY_R_BOTTOM = 100
CHARGE_STAT = 15  # MCP73831 STAT: low while charging (open drain, pulled up)
LED = 16
BUZZER = 17
WDT_TIMEOUT_MS = 8000  # the RP2040's longest is 8388 ms


def build(cfg, log=print, state_dir=board.STATE_DIR, dock_io=None):
    """The tracker's ports for this board, from the settings dict (link: Wi-Fi). The dock
    talks over the RP2040's USB CDC (the console), or ``dock_io`` when given (a test's tty)."""
    from drivers.battery import AdcBattery
    from drivers.clock import GnssClock
    from drivers.indicator import Indicator
    from drivers.sleep import LightSleep
    from drivers.watchdog import Watchdog

    pin = config.pin
    gnss = board.UartLines(board.gnss_uart(cfg, GNSS_UART, GNSS_TX, GNSS_RX))
    wifi = board.wifi_link(cfg, log)  # joins in the loop; radio off between uploads
    ports = app.Ports(gnss, wifi.open_connection, board.storage(state_dir), log, radio=wifi)
    if cfg["gnss_module"] != "nmea":
        from drivers.gnss_module import GnssModule

        module = GnssModule(cfg["gnss_module"], gnss, cfg["gnss_rate_ms"])
        ports.gnss_module = module
        ports.gnss_power = module
    stat = machine.Pin(pin(cfg, "charge_stat", CHARGE_STAT), machine.Pin.IN, machine.Pin.PULL_UP)
    ports.battery = AdcBattery(machine.ADC(machine.Pin(pin(cfg, "battery_adc", BATTERY_ADC))),
                               BATTERY_R_TOP, BATTERY_R_BOTTOM, charge_pin=stat)
    ports.clock = GnssClock(machine.RTC())
    watchdog = Watchdog(machine.WDT(timeout=WDT_TIMEOUT_MS))
    ports.watchdog = watchdog
    # The RP2040 cannot light-sleep with the Wi-Fi chip's SPI active for long; 4 s chunks
    # stay inside the watchdog's 8 s.
    ports.idle = LightSleep(machine.lightsleep, watchdog, chunk_ms=4000)
    led = machine.Pin(pin(cfg, "led", LED), machine.Pin.OUT, value=0)
    buzzer = machine.Pin(pin(cfg, "buzzer", BUZZER), machine.Pin.OUT, value=0)
    ports.tasks = [board.watchdog_task(watchdog),
                   board.indicator_task(Indicator(led, buzzer), ports.battery)]
    ports.dock = board.dock_link(dock_io)
    return ports


def main(state_dir=board.STATE_DIR):
    import rp2

    # BOOTSEL held just after reset (held *at* reset it starts the USB mass-storage loader)
    board.boot(rp2.bootsel_button() == 1, build, state_dir, check=_wifi_only)


def _wifi_only(cfg):
    if cfg["link"] != "wifi":
        raise config.ConfigError("the Pico W tracker has Wi-Fi only: set link to wifi")
