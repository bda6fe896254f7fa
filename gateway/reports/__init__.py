"""Reports for supervisors and analysts: visits and dwell, taskings and exceptions, exports and
maps. They only read the database; attribution comes from :mod:`gateway.fleet.identity`."""
