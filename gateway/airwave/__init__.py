"""Airwave (TETRA) radio locations at the station gateway.

- :mod:`gateway.airwave.lip`: bit-exact LIP short/long location report codec (ETSI TS 100 392-18-1)
- :mod:`gateway.airwave.sds`: PEI set-up commands and ``+CTSDSR`` framing into SDS messages
- :mod:`gateway.airwave.timing`: fix times from age classes and day-of-month times
- :mod:`gateway.airwave.filters`: implausible jumps, mast locations, coarse fixes
- :mod:`gateway.airwave.store`: reports into SQLite, attributed by ISSI
- :mod:`gateway.airwave.reader`: the serial reader with reconnect
"""
