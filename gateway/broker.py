"""A private Mosquitto broker on a loopback port, from a generated configuration.

Used by ``hotspots broker``, the demo and the test fixture, so all three run the very same
broker set-up. The broker is a child process; :meth:`Mosquitto.stop` ends it and waits, so
nothing is left running.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto")


class BrokerError(RuntimeError):
    """Mosquitto is missing or did not start."""


def find_mosquitto() -> str:
    """Path of the mosquitto binary; raises :class:`BrokerError` with the install command."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if Path(path).exists():
            return path
    raise BrokerError("mosquitto is not installed; run: sudo apt-get install -y mosquitto")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class Mosquitto:
    """Runs ``mosquitto -c <generated config>`` on ``host:port`` until stopped.

    :param port: TCP port, or None for a free one
    :param workdir: where the config, persistence and log go (a temporary folder by default)
    :param persistence: keep QoS 1 sessions and retained messages across broker restarts
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        workdir: str | Path | None = None,
        persistence: bool = True,
    ):
        self.host = host
        self.port = port or free_port(host)
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="hotspots-broker-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.persistence = persistence
        self.process: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        """``host:port`` as the CLI options take it."""
        return f"{self.host}:{self.port}"

    def config_text(self) -> str:
        """The generated mosquitto.conf."""
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.workdir}/",
            f"log_dest file {self.workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            # The outbox on a device may hold thousands of messages after a dead spot.
            "max_inflight_messages 100",
            "max_queued_messages 100000",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        binary = find_mosquitto()
        config = self.workdir / "mosquitto.conf"
        config.write_text(self.config_text())
        # The log goes to a file: a pipe nobody reads would fill up and stall the broker.
        self.log_path = self.workdir / "mosquitto.stderr"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [binary, "-c", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.log_path.read_text(errors="replace")[-2000:]
                raise BrokerError(f"mosquitto exited with {self.process.returncode}: {err}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not listen on {self.address} within {timeout_s} s")

    def stop(self) -> None:
        """Stop the broker and wait for it to exit."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        """Stop and remove the temporary folder, if we made one."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
