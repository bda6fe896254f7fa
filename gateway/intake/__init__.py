"""The intake: every source's positions reach SQLite through one door.

Adapters decode what a source sends (tracker and OwnTracks MQTT messages, Airwave radio
reports, outboxes pulled at the dock, imported files) and hand it on; the intake validates,
filters (per-source rules in :mod:`gateway.intake.filters`), de-duplicates, and stores or
quarantines it. Nothing else writes ``positions``.
"""
