"""``main.py`` on the ESP32-S3 tracker (``hotspots firmware bundle --board esp32s3`` installs it
under that name): the settings from ``/state/config.json``, then the board."""
from boards import esp32s3

esp32s3.main()
