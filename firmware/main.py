"""Tracker entry point on the MicroPython unix port (boards pick their own in their main.py)."""
import sys

from boards import unix

unix.main(sys.argv[1:])
