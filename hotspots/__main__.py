"""``python -m hotspots`` runs the ``hotspots`` command."""

from hotspots.cli import main

main()
