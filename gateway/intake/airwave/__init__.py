"""Airwave (TETRA) radio locations at the station gateway.

- :mod:`gateway.intake.airwave.lip`: bit-exact LIP short/long location report codec (ETSI TS 100
392-18-1)
- :mod:`gateway.intake.airwave.sds`: PEI set-up commands and ``+CTSDSR`` framing into SDS messages
- :mod:`gateway.intake.airwave.timing`: fix times from age classes and day-of-month times
- :mod:`gateway.intake.airwave.filters`: implausible jumps, mast locations, coarse fixes
- :mod:`gateway.intake.airwave.store`: reports into SQLite, attributed by ISSI
- :mod:`gateway.intake.airwave.reader`: the serial reader with reconnect
"""
