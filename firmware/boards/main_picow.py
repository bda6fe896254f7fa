"""``main.py`` on the Pico W tracker (``hotspots firmware bundle --board picow`` installs it
under that name): the settings from ``/state/config.json``, then the board."""
from boards import picow

picow.main()
