"""The fleet: which devices exist, who carried which one when, the dock, and their status.

:mod:`gateway.fleet.identity` owns the assignment history, and with it the answer to "which
collar number carried this device at this time": every report, export and status reads
attribution from there.
"""
