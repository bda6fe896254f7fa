"""The energy model charges exactly what the hardware was asked to do."""

from __future__ import annotations

import pytest

from simulators.energy import (
    DEFAULT_HARDWARE,
    GnssReceiver,
    HardwareLog,
    ModemParams,
    modem_charge_mas,
    shift_energy,
)


def test_receiver_starts_cold_then_hot_only_with_fresh_ephemeris() -> None:
    log = HardwareLog(duration_s=10_000)
    rx = GnssReceiver(DEFAULT_HARDWARE.gnss, log)
    rx.power_on(0)
    fixes = [t for t in range(40) if rx.second(t, True)]
    assert fixes[0] == 26  # cold start
    rx.power_off()
    rx.power_on(100)  # only 14 s of tracking: no ephemeris yet -> warm
    assert log.gnss_starts == {"cold": 1, "warm": 1, "hot": 0}
    assert [t for t in range(100, 160) if rx.second(t, True)][0] == 125  # 35 s tracked
    rx.power_off()
    rx.power_on(200)
    assert rx.second(200, True) is False and rx.second(201, True) is True  # hot: 1 s
    assert log.gnss_starts["hot"] == 1


def test_dead_spot_is_charged_as_acquisition() -> None:
    log = HardwareLog(duration_s=100)
    rx = GnssReceiver(DEFAULT_HARDWARE.gnss, log)
    rx.power_on(0)
    for t in range(100):
        rx.second(t, False)
    assert log.gnss_acquisition_s == 100 and log.gnss_tracking_s == 0
    e = shift_energy(log)
    assert e.gnss_mah == pytest.approx(100 * 29.0 / 3600)


def test_one_connection_costs_setup_data_and_the_connected_tail() -> None:
    m = ModemParams()
    charge, work = modem_charge_mas(m, [(0.0, 4)], [], 100)
    data = m.setup_s + 4 * m.per_message_s
    expected = (data * m.active_ma + m.tail_s * m.tail_ma + m.idle_s * m.idle_ma
                + (100 - data - m.tail_s - m.idle_s) * m.psm_ma)
    assert charge == pytest.approx(expected) and work == pytest.approx(data)


def test_connections_inside_the_tail_skip_setup_and_cut_the_tail() -> None:
    m = ModemParams()
    every_10s, _ = modem_charge_mas(m, [(t, 1) for t in range(0, 600, 10)], [], 600)
    separate, _ = modem_charge_mas(m, [(t, 1) for t in range(0, 600, 60)], [], 600)
    # 60 reports 10 s apart keep the modem connected: about tail current all along, which is
    # less than 60 set-ups but more than 10 separate wake-ups.
    assert every_10s < 60 * (m.setup_s * m.active_ma)
    assert 600 * m.tail_ma < every_10s < 600 * m.tail_ma + 60 * m.active_ma
    assert separate < every_10s


def test_failed_attempts_cannot_search_more_than_all_the_time() -> None:
    m = ModemParams()
    charge, work = modem_charge_mas(m, [], [float(t) for t in range(100)], 100)
    assert work == pytest.approx(99 + m.failed_attempt_s)


def test_battery_life_and_scaling() -> None:
    log = HardwareLog(duration_s=3600)
    e = shift_energy(log)  # asleep for an hour: MCU light sleep, GNSS backup, modem PSM
    floor = 0.8 + 0.015 + 0.005
    assert e.mean_ma == pytest.approx(floor)
    assert e.battery_life_h == pytest.approx(2000 / floor)
    assert e.total_mwh == pytest.approx(floor * 3.7)
