"""Pure parts of the SIM7080G driver: 3GPP timer encodings for PSM and eDRX, address checks.

Runs on CPython (pytest) and on the MicroPython unix port (``mprun.py``).
"""

from drivers.modem_sim7080 import (
    _ACTIVE_UNITS,
    _TAU_UNITS,
    edrx_bits,
    is_ipv4,
    timer_bits,
    timer_seconds,
)


def test_tau_uses_the_finest_unit_that_holds_the_value():
    assert timer_bits(60, _TAU_UNITS) == "01111110"  # 30 x 2 s
    assert timer_bits(62, _TAU_UNITS) == "01111111"  # 31 x 2 s
    assert timer_bits(64, _TAU_UNITS) == "10000011"  # 3 x 30 s (rounded up)
    assert timer_bits(3600, _TAU_UNITS) == "00000110"  # 6 x 10 min
    assert timer_bits(86400, _TAU_UNITS) == "00111000"  # 24 x 1 h


def test_timers_round_trip_to_at_least_what_was_asked():
    for seconds in (2, 10, 59, 61, 600, 3600, 7200, 86400, 10 * 86400):
        bits = timer_bits(seconds, _TAU_UNITS)
        back = timer_seconds(bits, _TAU_UNITS)
        assert back >= seconds
        assert len(bits) == 8
    for seconds in (2, 10, 62, 120, 1800):
        assert timer_seconds(timer_bits(seconds, _ACTIVE_UNITS), _ACTIVE_UNITS) >= seconds


def test_active_time_beyond_31_decihours_is_refused():
    assert timer_bits(31 * 360, _ACTIVE_UNITS) == "01011111"
    assert timer_bits(31 * 360 + 1, _ACTIVE_UNITS) is None


def test_edrx_picks_the_shortest_cycle_long_enough():
    assert edrx_bits(5) == "0000"
    assert edrx_bits(6) == "0001"
    assert edrx_bits(80) == "0101"
    assert edrx_bits(100000) == "1111"


def test_ipv4_literals_skip_dns():
    assert is_ipv4("127.0.0.1")
    assert not is_ipv4("broker.station")
    assert not is_ipv4("1.2.3")
    assert not is_ipv4("1.2.3.256")
