"""Battery state for the policy and the status: a MAX17048 fuel gauge, or an ADC divider.

Both give ``percent()`` (0-100) and ``charging()`` as ``tracker.app.Ports.battery`` wants, and
``millivolts()``. Integer maths only.

MAX17048 (Analog Devices/Maxim MAX17048/MAX17049 data sheet): I2C address 0x36; VCELL (0x02) in
78.125 µV per LSB; SOC (0x04) in 1/256 % per LSB; CRATE (0x16), signed, 0.208 %/h per LSB,
positive while charging. Its ModelGauge algorithm needs no sense resistor and draws 23 µA
(hibernate 3 µA), so it stays powered on the cell.

ADC divider: the cell through a resistor divider to an ADC pin (``machine.ADC.read_u16``, 0-65535
for 0-3.3 V on RP2040 and ESP32-S3 with 11 dB attenuation). State of charge from the open-circuit
voltage of a LiPo cell, piecewise linear: rough under load (about ±10 %), which is why the
ESP32-S3 reference tracker has the gauge.
"""

from tracker.compat import const

MAX17048_ADDRESS = const(0x36)
_REG_VCELL = const(0x02)
_REG_SOC = const(0x04)
_REG_VERSION = const(0x08)
_REG_CRATE = const(0x16)

# (mV, %) of a LiPo cell at rest, from 4.20 V full to 3.30 V empty (typical discharge curve).
LIPO_CURVE = ((3300, 0), (3500, 5), (3600, 10), (3700, 25), (3750, 40), (3800, 55),
              (3850, 65), (3900, 75), (4000, 85), (4100, 95), (4200, 100))


def percent_from_mv(mv, curve=LIPO_CURVE):
    """State of charge (0-100) of a cell at ``mv`` millivolts, by the curve."""
    if mv <= curve[0][0]:
        return 0
    for i in range(1, len(curve)):
        hi_mv, hi_pct = curve[i]
        if mv <= hi_mv:
            lo_mv, lo_pct = curve[i - 1]
            return lo_pct + (mv - lo_mv) * (hi_pct - lo_pct) // (hi_mv - lo_mv)
    return 100


class Max17048:
    """The fuel gauge on ``i2c`` (``machine.I2C``: ``readfrom_mem_into``)."""

    def __init__(self, i2c, address=MAX17048_ADDRESS):
        self.i2c = i2c
        self.address = address
        self._buf = bytearray(2)
        self.errors = 0

    def _read(self, register):
        self.i2c.readfrom_mem_into(self.address, register, self._buf)
        return self._buf[0] << 8 | self._buf[1]

    def present(self):
        """True if a MAX1704x answers (VERSION reads 0x001_ for the MAX17048/9)."""
        try:
            return self._read(_REG_VERSION) & 0xFFF0 == 0x0010
        except OSError:
            return False

    def millivolts(self):
        """Cell voltage; -1 if the gauge does not answer."""
        try:
            return self._read(_REG_VCELL) * 78125 // 1000000
        except OSError:
            self.errors += 1
            return -1

    def percent(self):
        """State of charge 0-100 (the gauge reports up to a little over 100 when full); -1 if
        the gauge does not answer (the status then leaves the battery out)."""
        try:
            soc = self._read(_REG_SOC) >> 8
        except OSError:
            self.errors += 1
            return -1
        return 100 if soc > 100 else soc

    def charging(self):
        """True while the charge rate is positive (above 0.4 %/h, to ignore noise)."""
        try:
            rate = self._read(_REG_CRATE)
        except OSError:
            self.errors += 1
            return False
        if rate >= 0x8000:
            rate -= 0x10000
        return rate > 1


class AdcBattery:
    """A cell through a divider: ``adc`` has ``read_u16()``; the cell's voltage is the pin's
    times ``(r_top + r_bottom) / r_bottom``. ``charge_pin``: a charger's status output (e.g.
    the MCP73831 STAT, low while charging), or None."""

    def __init__(self, adc, r_top, r_bottom, full_scale_mv=3300, charge_pin=None, samples=8):
        self.adc = adc
        self.r_top = r_top
        self.r_bottom = r_bottom
        self.full_scale_mv = full_scale_mv
        self.charge_pin = charge_pin
        self.samples = samples

    def millivolts(self):
        total = 0
        for _ in range(self.samples):  # average out the ADC's noise
            total += self.adc.read_u16()
        pin_mv = total // self.samples * self.full_scale_mv // 65535
        return pin_mv * (self.r_top + self.r_bottom) // self.r_bottom

    def percent(self):
        return percent_from_mv(self.millivolts())

    def charging(self):
        return self.charge_pin is not None and self.charge_pin.value() == 0
