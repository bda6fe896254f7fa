"""The settings dict: one file on the device, checked once (``tracker.config``).

Portable: pytest on CPython and the MicroPython unix port.
"""

from tracker import config


def minimal(**extra):
    values = {"broker_host": "gw.station.example"}
    values.update(extra)
    return values


def fails(values, *words, default_device_id="abc123"):
    try:
        config.build(values, default_device_id)
    except config.ConfigError as exc:
        text = str(exc)
        for word in words:
            assert word in text, (word, text)
        return text
    raise AssertionError("accepted: %r" % (values,))


def test_defaults_and_the_board_id():
    cfg = config.build(minimal(), "e8db84c1a2b3")
    assert cfg["device_id"] == "e8db84c1a2b3"
    assert (cfg["station"], cfg["broker_port"], cfg["link"], cfg["gnss_module"]) == (
        "main", 1883, "host", "nmea")
    assert (cfg["report_s"], cfg["sampling"], cfg["gnss_baud"], cfg["gnss_rate_ms"]) == (
        10, "adaptive", 9600, 1000)
    assert cfg["user"] is None and cfg["password"] is None and cfg["ca"] is None


def test_a_named_device_wins_and_tls_defaults_to_8883():
    cfg = config.build(minimal(device_id="T-0001", ca="ca.pem"), "e8db84c1a2b3")
    assert (cfg["device_id"], cfg["broker_port"]) == ("T-0001", 8883)


def test_a_whole_board_file():
    text = """{"device_id": "T-0042", "station": "north", "broker_host": "10.0.0.2",
               "broker_port": 8883, "user": "T-0042", "password": "s3cret!", "ca": "ca.pem",
               "link": "cellular", "apn": "iot.example", "gnss_module": "ublox",
               "gnss_uart": 1, "gnss_tx": 17, "gnss_rx": 18, "gnss_baud": 38400,
               "gnss_rate_ms": 1000, "report_s": 15, "sampling": "fixed",
               "pins": {"led": 2, "i2c_sda": 8, "i2c_scl": 9}}"""
    cfg = config.load(text, "ignored")
    assert cfg["device_id"] == "T-0042" and cfg["link"] == "cellular"
    assert (cfg["gnss_uart"], cfg["gnss_tx"], cfg["gnss_rx"], cfg["gnss_baud"]) == (
        1, 17, 18, 38400)
    assert config.pin(cfg, "led", 48) == 2 and config.pin(cfg, "buzzer", 5) == 5


def test_every_mistake_names_its_key():
    fails({}, "broker_host", "required")
    fails(minimal(brokerhost="x"), "unknown setting", "brokerhost")
    fails(minimal(broker_port="1883"), "broker_port", "integer")
    fails(minimal(broker_port=70000), "broker_port", "1-65535")
    fails(minimal(report_s=True), "report_s", "integer")
    fails(minimal(exit_on_eof=1), "exit_on_eof", "true or false")
    fails(minimal(user="T-1"), "user and password")
    fails(minimal(link="lora"), "link", "wifi, cellular, host")
    fails(minimal(link="wifi"), "wifi_ssid")
    fails(minimal(link="cellular"), "apn")
    fails(minimal(gnss_module="sirf"), "gnss_module", "ublox, mtk, nmea")
    fails(minimal(gnss_baud=1234), "gnss_baud")
    fails(minimal(gnss_rate_ms=10), "gnss_rate_ms")
    fails(minimal(report_s=0), "report_s")
    fails(minimal(sampling="sometimes"), "sampling")
    fails(minimal(device_id="T 01/#"), "device_id")
    fails(minimal(), "device_id", default_device_id=None)
    fails(minimal(pins={"led": "GPIO2"}), "pins.led")
    fails([1, 2], "JSON object")
    try:
        config.load("{broker_host: x}")
    except config.ConfigError as exc:
        assert "not valid JSON" in str(exc)
    else:
        raise AssertionError("bad JSON accepted")


def test_secrets_never_appear_in_errors_or_redacted_settings():
    text = fails(minimal(user="T-1", password=12345678), "password")
    assert "12345678" not in text
    text = fails(minimal(link="wifi", wifi_ssid="station", wifi_password=["hunter2"]),
                 "wifi_password")
    assert "hunter2" not in text
    cfg = config.build(minimal(user="T-1", password="hunter2", link="wifi", wifi_ssid="station",
                               wifi_password="pa55word"), "x")
    shown = repr(config.redacted(cfg))
    assert "hunter2" not in shown and "pa55word" not in shown and "***" in shown
    assert cfg["password"] == "hunter2"  # the settings themselves keep it
    assert config.redacted(config.build(minimal(), "x"))["password"] is None


def test_a_missing_file_is_a_configuration_error():
    try:
        config.load_file("/nonexistent/config.json", "x")
    except config.ConfigError as exc:
        assert "/nonexistent/config.json" in str(exc)
    else:
        raise AssertionError("no error")


def test_a_relative_ca_in_a_file_is_beside_the_file():
    # The dock writes "ca": "ca.pem" next to config.json in the state folder.
    import json

    from scratch import scratch, wipe

    storage = scratch("hotspots-config")
    try:
        storage.write(config.FILE, json.dumps(minimal(ca="ca.pem")))
        cfg = config.load_file(storage.path(config.FILE), "x")
        assert cfg["ca"] == storage.root + "/ca.pem"
        storage.write(config.FILE, json.dumps(minimal(ca="/flash/certs/ca.pem")))
        assert config.load_file(storage.path(config.FILE), "x")["ca"] == "/flash/certs/ca.pem"
        storage.write(config.FILE, json.dumps(minimal()))
        assert config.load_file(storage.path(config.FILE), "x")["ca"] is None
    finally:
        wipe(storage)
    assert config.beside("config.json", "ca.pem") == "ca.pem"  # the current folder
    assert config.beside("/state/config.json", "ca.pem") == "/state/ca.pem"


def test_wifi_timers_are_checked():
    fails(minimal(link="wifi", wifi_ssid="s", wifi_timeout_s=0), "wifi_timeout_s", "1-600")
    fails(minimal(link="wifi", wifi_ssid="s", wifi_max_backoff_s=10 ** 6), "wifi_max_backoff_s")
    assert config.build(minimal(wifi_timeout_s=30), "x")["wifi_timeout_s"] == 30
