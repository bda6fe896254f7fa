"""The fleet: which devices exist, who carried which one when, the dock, and their status.

:mod:`gateway.fleet.identity` writes the registry and the assignment history (and checks every
name); :mod:`gateway.fleet.attribution` answers "which collar number carried this device at this
time": every report, export and status reads attribution from there.
"""
