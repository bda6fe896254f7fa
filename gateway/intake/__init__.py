"""The intake: every source's positions reach SQLite through one door.

Adapters decode what a source sends (tracker and OwnTracks MQTT messages, Airwave radio
reports, outboxes pulled at the dock, imported files) and hand it on; the intake validates,
filters (per-source rules in :mod:`gateway.intake.filters`), de-duplicates, and stores or
quarantines it. Nothing else writes ``positions``.

- :mod:`gateway.intake.observation`: the :class:`Observation` every source decodes into
- :mod:`gateway.intake.intake`: :class:`Intake`, the one door (``submit``, ``reject``)
- :mod:`gateway.intake.validate`: the range of every field
- :mod:`gateway.intake.filters`: per-source plausibility filters
- :mod:`gateway.intake.mqtt`: the tracker and OwnTracks adapter (and the dock's records)
- :mod:`gateway.intake.airwave`: the Airwave radio adapter
- :mod:`gateway.intake.service`: the gateway process (paho, one thread)
"""
