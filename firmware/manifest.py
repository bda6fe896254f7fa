# MicroPython manifest: freeze the tracker into a firmware image (docs/deployment.md).
#
# From a board's own manifest (or FROZEN_MANIFEST), with the board as an option:
#
#     include("$(PORT_DIR)/boards/manifest.py")      # the port's modules (asyncio, ...)
#     include("/path/to/hotspots/firmware/manifest.py", board="esp32s3")   # or "picow"
#
# Frozen modules are bytecode in flash: nothing to compile on the device and no heap spent on
# the code. main.py (two lines) and state/config.json still go on the filesystem with mpremote.
# Exactly the files `hotspots firmware bundle --board NAME` puts on a board (tests check both
# lists are the same): no unix-port board, no host-side replay, no Cython build output.

options.defaults(board="esp32s3")  # noqa: F821 - provided by MicroPython's manifest loader

package("tracker")  # noqa: F821
package("drivers", files=[  # noqa: F821
    "__init__.py", "battery.py", "clock.py", "gnss_module.py", "indicator.py", "pmtk.py",
    "sleep.py", "ubx.py", "watchdog.py", "wifi.py",
] + (["modem_sim7080.py"] if options.board == "esp32s3" else []))  # noqa: F821
package("boards", files=[  # noqa: F821
    "__init__.py", "ports.py", "storage.py", options.board + ".py",  # noqa: F821
])
