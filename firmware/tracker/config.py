"""The tracker's settings: one dict, built from one file on the device (``config.json``).

Every setting the firmware needs arrives here once, is checked once, and is then passed around
as one dict (as mqtt_as hands its client one ``config``). A board builds it with
:func:`load_file` from the file in its state folder (:data:`FILE` in ``/state``, where the dock
writes it when the tracker is enrolled, beside ``ca.pem``); the unix port builds the same dict
from its command line with :func:`build` (and reads its state folder's ``config.json`` first).
The dock's provisioning checks what it is about to write with :func:`build` too. Nothing else
reads settings.

Keys (see ``docs/configuration.md``)::

    device_id      str   default: the board's unique id in hex (machine.unique_id())
    station        str   "main"; the station whose fence topic the tracker follows
    broker_host    str   required
    broker_port    int   1883, or 8883 with ``ca``
    user, password str   the broker account (both or neither); never logged
    ca             str   path of the CA certificate (PEM) that signs the broker's: TLS on;
                         in a file, a relative path is relative to the file's folder
    link           str   "wifi", "cellular" or "host" (the unix port's own network)
    wifi_ssid, wifi_password    for link "wifi"; wifi_timeout_s (20 per join attempt),
                   wifi_max_backoff_s (300): drivers.wifi's rejoin
    apn, apn_user, apn_password for link "cellular"; psm_tau_s, psm_active_s, edrx_s,
                   register_timeout_s, radio_sleep ("cfun0", "psm", "none"): the modem's power
                   saving; modem: unix port, the simulated modem's serial device
    keepalive_s    int   MQTT keepalive while connected (10-3600): 60, or 240 on "cellular"
                         (docs/link.md: link lifecycle)
    gnss_module    str   "ublox", "mtk" or "nmea" (any receiver, left as it is)
    gnss_uart      int   UART number;  gnss_tx, gnss_rx: pins;  gnss_baud: 9600
    gnss_rate_ms   int   1000; the module's measurement period
    gnss_device    str   unix port: the serial device (or NMEA file) of the module
    report_s       int   10; location interval while moving (fixed sampling)
    sampling       str   "adaptive" or "fixed"
    exit_on_eof    bool  stop once the GNSS stream ends and everything is sent (tests)
    state_dir      str   unix port: the folder standing in for flash
    dock, battery  str   unix port: the dock's serial link, a simulated fuel gauge file
    pins           dict  board-specific pin overrides, e.g. {"led": 2, "i2c_sda": 8}

A bad file raises :class:`ConfigError` naming the key and what is wrong, never its value when
the key is a secret. :func:`redacted` is the only form of the settings that may be printed.
"""

import json

FILE = "config.json"  # in the tracker's state folder (the storage port's root)
SECRETS = ("password", "wifi_password", "apn_password")
# The choices of ``link``, ``gnss_module``, ``sampling`` and ``radio_sleep`` are written where
# they are checked (in build): module-level names would be interned for good at every boot.

# key: (type, default). A default of None means "not set"; ... (Ellipsis) means "required".
_SPEC = {
    "device_id": (str, None),
    "station": (str, "main"),
    "broker_host": (str, ...),
    "broker_port": (int, None),
    "user": (str, None),
    "password": (str, None),
    "ca": (str, None),
    "link": (str, "host"),
    "wifi_ssid": (str, None),
    "wifi_password": (str, None),
    "wifi_timeout_s": (int, None),
    "wifi_max_backoff_s": (int, None),
    "apn": (str, None),
    "apn_user": (str, None),
    "apn_password": (str, None),
    # cellular modem (drivers.modem_sim7080): PSM/eDRX timers, registration, radio sleep
    "psm_tau_s": (int, None),
    "psm_active_s": (int, None),
    "edrx_s": (int, None),
    "register_timeout_s": (int, None),
    "radio_sleep": (str, None),
    "keepalive_s": (int, None),
    "modem": (str, None),
    "gnss_module": (str, "nmea"),
    "gnss_uart": (int, None),
    "gnss_tx": (int, None),
    "gnss_rx": (int, None),
    "gnss_baud": (int, 9600),
    "gnss_rate_ms": (int, 1000),
    "gnss_device": (str, None),
    "report_s": (int, 10),
    "sampling": (str, "adaptive"),
    "exit_on_eof": (bool, False),
    "state_dir": (str, None),
    "dock": (str, None),
    "battery": (str, None),
    "pins": (dict, None),
}


class ConfigError(ValueError):
    """The configuration cannot run: the message names the key and what to change."""


def build(values, default_device_id=None):
    """The validated settings dict from ``values`` (a dict, e.g. parsed ``config.json``).

    Unknown keys are errors (a misspelt key would otherwise be silently ignored); missing keys
    take their defaults. ``default_device_id``: the board's own id, used when the file names
    none. Raises :class:`ConfigError`.
    """
    if not isinstance(values, dict):
        raise ConfigError("the configuration must be a JSON object")
    for key in values:
        if key not in _SPEC:
            raise ConfigError("unknown setting %r (known: %s)" % (key, ", ".join(sorted(_SPEC))))
    cfg = {}
    for key, (kind, default) in _SPEC.items():
        value = values.get(key)
        if value is None:
            if default is ...:
                raise ConfigError("%s is required" % key)
            cfg[key] = default
            continue
        # bool is an int in Python: refuse true for a number and 1 for a flag.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            # Whole phrases, not "a string" and the like: short literals are interned names.
            must = {str: " must be a string", int: " must be an integer",
                    bool: " must be true or false", dict: " must be an object"}[kind]
            if key in SECRETS:
                raise ConfigError(key + must)
            raise ConfigError("%s%s, got %r" % (key, must, value))
        cfg[key] = value
    if cfg["device_id"] is None:
        cfg["device_id"] = default_device_id
    device_id = cfg["device_id"]
    if not device_id:
        raise ConfigError("device_id is required on a board without a unique id")
    for c in device_id:
        if not (c.isalpha() or c.isdigit() or c in "-_."):
            raise ConfigError("device_id may hold letters, digits, '-', '_' and '.', got %r"
                              % device_id)  # it is an MQTT topic level and a client id
    if not cfg["broker_host"]:
        raise ConfigError("broker_host is required")
    if cfg["broker_port"] is None:
        cfg["broker_port"] = 8883 if cfg["ca"] else 1883
    if not 0 < cfg["broker_port"] < 65536:
        raise ConfigError("broker_port must be 1-65535, got %d" % cfg["broker_port"])
    if (cfg["user"] is None) != (cfg["password"] is None):
        raise ConfigError("user and password go together: give both or neither")
    # The settings with a fixed set of values (radio_sleep may be unset).
    for key, choices in (("link", ("wifi", "cellular", "host")),
                         ("gnss_module", ("ublox", "mtk", "nmea")),
                         ("sampling", ("adaptive", "fixed")),
                         ("radio_sleep", ("cfun0", "psm", "none"))):
        if cfg[key] is not None and cfg[key] not in choices:
            raise ConfigError("%s must be one of %s, got %r"
                              % (key, ", ".join(choices), cfg[key]))
    if cfg["link"] == "wifi" and not cfg["wifi_ssid"]:
        raise ConfigError("link wifi needs wifi_ssid")
    for key, low, high in (("wifi_timeout_s", 1, 600), ("wifi_max_backoff_s", 1, 86400)):
        if cfg[key] is not None and not low <= cfg[key] <= high:
            raise ConfigError("%s must be %d-%d, got %d" % (key, low, high, cfg[key]))
    if cfg["link"] == "cellular" and not cfg["apn"]:
        raise ConfigError("link cellular needs apn (the SIM provider's access point name)")
    if cfg["keepalive_s"] is None:
        # A held cellular link pings rarely (each PINGREQ is a radio wake-up), yet inside the
        # shortest carrier NAT idle time (5 min); Wi-Fi and the host ping every minute.
        cfg["keepalive_s"] = 240 if cfg["link"] == "cellular" else 60
    elif not 10 <= cfg["keepalive_s"] <= 3600:
        raise ConfigError("keepalive_s must be 10-3600, got %d" % cfg["keepalive_s"])
    if cfg["gnss_baud"] not in (4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800):
        raise ConfigError("gnss_baud must be a standard rate (4800-460800), got %d"
                          % cfg["gnss_baud"])
    if not 25 <= cfg["gnss_rate_ms"] <= 65535:
        raise ConfigError("gnss_rate_ms must be 25-65535, got %d" % cfg["gnss_rate_ms"])
    if not 1 <= cfg["report_s"] <= 86400:
        raise ConfigError("report_s must be 1-86400, got %d" % cfg["report_s"])
    pins = cfg["pins"]
    if pins is not None:
        for name, pin in pins.items():
            if not isinstance(pin, int) or isinstance(pin, bool) or pin < 0:
                raise ConfigError("pins.%s must be a pin number, got %r" % (name, pin))
    return cfg


def load(text, default_device_id=None):
    """Settings from the text of ``config.json`` (see :func:`build`)."""
    try:
        values = json.loads(text)
    except ValueError as exc:
        raise ConfigError("config.json is not valid JSON: %s" % (exc,)) from None
    return build(values, default_device_id)


def load_file(path, default_device_id=None):
    """Settings from the file at ``path``; a missing or unreadable file is a ConfigError. A
    relative ``ca`` is taken relative to the file's folder (the dock writes ``"ca": "ca.pem"``
    beside ``config.json``)."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("no configuration file at %s" % path) from None
    cfg = load(text, default_device_id)
    if cfg["ca"]:
        cfg["ca"] = beside(path, cfg["ca"])
    return cfg


def beside(path, name):
    """``name`` as a path: as it is if absolute, else in the folder of the file ``path``."""
    if name.startswith("/"):
        return name
    cut = path.rfind("/")
    return name if cut < 0 else path[:cut + 1] + name


def redacted(cfg):
    """A copy safe to print or log: secrets replaced by ``"***"`` (or left None if unset)."""
    out = {}
    for key, value in cfg.items():
        out[key] = "***" if key in SECRETS and value is not None else value
    return out


def pin(cfg, name, default):
    """A board pin: the config's override or the board's default wiring."""
    pins = cfg.get("pins")
    if pins and name in pins:
        return pins[name]
    return default
