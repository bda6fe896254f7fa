"""The unix board's command line (and ``--config FILE``, or the state folder's ``config.json``)
into the settings dict of ``tracker.config``.

A module of its own because it is needed once, at boot: ``boards.unix.parse_args`` imports it
and drops it again, as it drops ``tracker.config``, so neither's bytecode stays in the heap
the tracker runs in (on the unix port bytecode is heap: a 220 KB heap must still take a
city-sized fence set, ``tests/test_fences_on_device.py``).
"""

import json
import sys


def parse(argv):
    """The settings dict of ``tracker.config`` from the command line (and ``--config FILE``).

    Exits with the usage line on a malformed command line, and with the configuration error
    (which never shows a secret) on a setting that cannot run.
    """
    # Tables local to the function, not module globals: a global's name is interned for good.
    usage = ("usage: main.py (--config FILE | --gps PATH --broker HOST:PORT --device-id ID) "
             "--state DIR [options]")
    # command-line option -> settings key (tracker.config); every other option is its own key
    option_keys = {"gps": "gnss_device", "tls_ca": "ca", "state": "state_dir"}
    int_keys = ("report_s", "broker_port", "gnss_baud", "gnss_rate_ms", "psm_tau_s",
                "psm_active_s", "edrx_s", "register_timeout_s", "time_scale")
    values = {}
    path = None
    i = 0
    while i < len(argv):
        name = argv[i]
        if name == "--exit-on-eof":
            values["exit_on_eof"] = True
            i += 1
            continue
        if i + 1 >= len(argv) or not name.startswith("--"):
            raise SystemExit(usage)
        key = name[2:].replace("-", "_")
        value = argv[i + 1]
        i += 2
        if key == "config":
            path = value
        elif key == "broker":
            host, _, port = value.rpartition(":")
            if not host or not port.isdigit():
                raise SystemExit("--broker must be HOST:PORT, got %r" % value)
            values["broker_host"] = host
            values["broker_port"] = int(port)
        else:
            key = option_keys.get(key, key)
            if key in int_keys:
                if not value.isdigit():
                    raise SystemExit("--%s must be a whole number, got %r" % (name[2:], value))
                value = int(value)
            values[key] = value
    if path is None and values.get("state_dir"):
        path = values["state_dir"] + "/config.json"  # tracker.config.FILE, as a board reads it
        try:
            open(path).close()
        except OSError:
            path = None  # not enrolled: the command line is all there is
    if path is not None:
        try:
            with open(path) as f:
                loaded = json.loads(f.read())
        except (OSError, ValueError) as exc:
            raise SystemExit(path + ": " + str(exc))
        if not isinstance(loaded, dict):
            raise SystemExit(path + ": not a JSON object")
        ca = loaded.get("ca")
        if isinstance(ca, str) and ca and not ca.startswith("/"):
            cut = path.rfind("/")  # beside the file (tracker.config.beside)
            loaded["ca"] = ca if cut < 0 else path[:cut + 1] + ca
        loaded.update(values)
        values = loaded
    if not values.get("gnss_device") or not values.get("state_dir"):
        raise SystemExit(usage)
    # The unix port's bench clock (boards/unix_clock.py): not a tracker setting.
    scale = values.pop("time_scale", 1)
    # tracker.config.build(values), then the config module is dropped again: its bytecode is
    # heap on the unix port (several KB), needed once at boot and never after.
    from tracker import config

    try:
        cfg = config.build(values)
    except config.ConfigError as exc:
        raise SystemExit("configuration: %s" % exc)
    finally:
        sys.modules.pop("tracker.config", None)
        import tracker

        if hasattr(tracker, "config"):
            delattr(tracker, "config")
    cfg["time_scale"] = scale
    return cfg


