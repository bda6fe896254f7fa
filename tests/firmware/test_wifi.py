"""The Pico W Wi-Fi driver against a fake ``network.WLAN`` whose status follows a script.

Runs on CPython (pytest) and on the MicroPython unix port (``mprun.py``).
"""

import asyncio

from drivers.wifi import WiFi, WiFiError, reason


class FakeWLAN:
    """A station interface: each ``connect`` plays the next script, one status per poll."""

    def __init__(self, *scripts):
        self.scripts = list(scripts)
        self.script = []
        self.up = False
        self.connects = []
        self.disconnects = 0
        self._status = 0

    def active(self, value=None):
        if value is None:
            return self.up
        self.up = value

    def connect(self, ssid, key):
        assert self.up, "connect before active(True)"
        self.connects.append((ssid, key))
        self.script = list(self.scripts.pop(0)) if self.scripts else [-2]

    def disconnect(self):
        self.disconnects += 1
        self._status = 0
        self.script = []

    def status(self):
        if self.script:
            self._status = self.script.pop(0)
        return self._status

    def isconnected(self):
        return self._status == 3

    def ifconfig(self):
        return ("192.168.4.20", "255.255.255.0", "192.168.4.1", "192.168.4.1")

    def drop(self):
        self._status = -1


SETTINGS = {"wifi_ssid": "station-7", "wifi_password": "s3cret", "wifi_timeout_s": 1}


def run(coro):
    return asyncio.run(coro)


def test_joins_after_connecting_states():
    wlan = FakeWLAN([1, 1, 2, 3])
    wifi = WiFi(wlan, SETTINGS)
    run(wifi.connect())
    assert wifi.isconnected()
    assert wlan.connects == [("station-7", "s3cret")]
    assert wifi.joins == 1 and wifi.failures == 0


def test_wrong_password_is_reported_in_words():
    wifi = WiFi(FakeWLAN([1, -3]), SETTINGS)
    try:
        run(wifi.connect())
    except WiFiError as exc:
        assert exc.reason == "wrong password" and exc.status == -3
    else:
        raise AssertionError("joined with a wrong password")
    assert wifi.failures == 1 and wifi.last_reason == "wrong password"


def test_no_answer_within_the_timeout_gives_up_and_disconnects():
    wlan = FakeWLAN([1] * 1000)
    wifi = WiFi(wlan, {"wifi_ssid": "x", "wifi_timeout_s": 0})
    try:
        run(wifi.connect())
    except WiFiError as exc:
        assert "no connection after" in exc.reason and "connecting" in exc.reason
    else:
        raise AssertionError("no timeout")
    assert wlan.disconnects == 1


def test_status_codes_of_both_drivers_have_reasons():
    assert reason(-2) == "no access point with that name"
    assert reason(202) == "wrong password"
    assert reason(1010) == "connected"
    assert reason(77) == "status 77"


def test_rejoin_backs_off_doubling_up_to_the_limit():
    wlan = FakeWLAN([-2], [-2], [-2], [-2], [1, 3])
    wifi = WiFi(wlan, {"wifi_ssid": "x", "wifi_max_backoff_s": 3}, random16=lambda: 65535)
    backoffs = []
    for _ in range(4):
        wifi.next_try_ms = 0  # as if the wait were over
        try:
            run(wifi.ensure())
        except WiFiError:
            pass
        backoffs.append(wifi.backoff_ms)
    assert backoffs == [1000, 2000, 3000, 3000]
    # While the backoff runs, ensure() refuses without touching the radio.
    wifi.next_try_ms = wifi.next_try_ms + 60000
    try:
        run(wifi.ensure())
    except WiFiError as exc:
        assert "waiting" in exc.reason
    assert len(wlan.connects) == 4
    wifi.next_try_ms = 0
    run(wifi.ensure())
    assert wifi.isconnected() and wifi.backoff_ms == 0


def test_a_dropped_link_is_counted_and_rejoined():
    wlan = FakeWLAN([3], [1, 3])
    wifi = WiFi(wlan, SETTINGS)
    run(wifi.ensure())
    wlan.drop()
    run(wifi.ensure())
    assert wifi.drops == 1 and wifi.joins == 2 and wifi.isconnected()


def test_names_resolve_once_per_join_and_addresses_never():
    calls = []

    def getaddrinfo(host, port):
        calls.append(host)
        return [(2, 1, 0, "", ("10.0.0.5", port))]

    opened = []

    async def open_tcp(address, port):
        opened.append((address, port))
        return "reader", "writer"

    wlan = FakeWLAN([3], [3])
    wifi = WiFi(wlan, SETTINGS, getaddrinfo=getaddrinfo, open_tcp=open_tcp)
    assert run(wifi.open_connection("broker.station", 1883)) == ("reader", "writer")
    run(wifi.open_connection("broker.station", 1883))
    run(wifi.open_connection("10.1.2.3", 8883))
    assert calls == ["broker.station"]
    assert opened == [("10.0.0.5", 1883), ("10.0.0.5", 1883), ("10.1.2.3", 8883)]
    run(wifi.sleep())  # radio off; the next connection rejoins and resolves again
    assert not wlan.up
    run(wifi.open_connection("broker.station", 1883))
    assert calls == ["broker.station", "broker.station"] and wifi.joins == 2


def test_no_ssid_is_a_clear_error():
    try:
        run(WiFi(FakeWLAN(), {}).connect())
    except WiFiError as exc:
        assert "wifi_ssid" in exc.reason
    else:
        raise AssertionError("joined nothing")


def test_the_settings_dict_with_its_unset_keys_gives_the_defaults():
    from tracker import config

    cfg = config.build({"broker_host": "gw", "link": "wifi", "wifi_ssid": "s"}, "x")
    wifi = WiFi(None, cfg)
    assert (wifi.timeout_ms, wifi.max_backoff_ms) == (20000, 300000)
    cfg = config.build({"broker_host": "gw", "link": "wifi", "wifi_ssid": "s",
                        "wifi_timeout_s": 5, "wifi_max_backoff_s": 60}, "x")
    wifi = WiFi(None, cfg)
    assert (wifi.timeout_ms, wifi.max_backoff_ms) == (5000, 60000)
