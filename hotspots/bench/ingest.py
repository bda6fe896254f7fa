"""``hotspots bench ingest``: positions per second from several publishers, through Mosquitto,
into SQLite, with nothing lost; beside a naive one-commit-per-message consumer, same run.

Set-up, all real: a private Mosquitto with the generated accounts and ACL; ``--publishers``
processes, each logged in as its own device, streaming QoS 1 ``location`` messages (the very
bytes ``tracker.wire`` builds, with a rising ``seq``) over a raw socket with a window of
un-acknowledged messages, so that they cost the two cores as little as possible; and the gateway
as the real ``hotspots gateway run`` process, whose peak RSS is read from ``/proc``.

The publishers pause while more than ``--backlog`` acknowledged messages are not yet in SQLite:
the broker's queue for the gateway stays bounded (beyond ``max_queued_messages`` Mosquitto would
drop messages) and the figure measured is what the gateway sustains, not what the broker can
buffer. At the end every device's rows are checked: sequence numbers 1..N, each once, N being
what the broker acknowledged to that publisher.

The naive consumer uses the same parser and schema (:class:`gateway.intake.intake.Intake`) but
commits
after every message and lets paho acknowledge on receipt; it runs first, for ``--naive-s``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import select
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

from gateway.broker import Mosquitto
from gateway.fleet.identity import register_device
from gateway.schema import open_db
from tracker import mqtt, wire

TARGET_PER_S = 20_000
TARGET_RSS_MB = 150
WINDOW = 1000  # un-acknowledged PUBLISH packets per publisher


class _Fix:
    """Just the fields ``wire.location`` reads."""

    t = 2222222222
    lat_e6, lon_e6 = 51_501_234, -123_456
    acc_cm, speed_cmps, course_cdeg, alt_cm = 400, 139, 9100, 2100
    quality, sats, hdop_x100 = 1, 9, 90


def _template(device_id: str) -> str:
    """A real location message with ``%d`` slots for seq, tst and created_at."""
    text = wire.location(device_id, 111111111, _Fix(), 3333333333, ["HS-GRN-01"], 80, "t")
    for marker in ("111111111", "2222222222", "3333333333"):
        assert text.count(marker) == 1
        text = text.replace(marker, "%d")
    return text


def publish(host: str, port: int, device_id: str, password: str, seconds: float,
            published: mp.Value, stored: mp.Value, backlog: int, result: mp.Queue) -> None:
    """Stream QoS 1 locations as ``device_id`` for ``seconds``; put the count acknowledged."""
    template = _template(device_id)
    topic = wire.device_topic(device_id, wire.KIND_LOCATION)
    t0 = int(time.time()) - 10 * 86400  # fix times well in the past, inside the age filter
    sock = socket.create_connection((host, port))
    sock.sendall(mqtt.connect_packet(device_id, 60, True, device_id, password, None))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[3] != 0:
        result.put((device_id, -1))
        return
    seq = acked = 0
    pending = b""
    end = time.monotonic() + seconds
    while True:
        sending = time.monotonic() < end
        if sending and seq - acked < WINDOW and published.value - stored.value < backlog:
            n = min(200, WINDOW - (seq - acked))
            packets = []
            for s in range(seq + 1, seq + n + 1):
                payload = (template % (s, t0 + s, t0 + s)).encode()
                packets.append(mqtt.publish_packet(topic, payload, 1, False, s % 65535 + 1))
            sock.sendall(b"".join(packets))
            seq += n
        elif not sending and acked == seq:
            break
        wait = 0 if sending and seq - acked < WINDOW // 2 else 0.05
        if select.select([sock], [], [], wait)[0]:
            data = sock.recv(65536)
            if not data:
                break
            pending += data
            got = len(pending) // 4  # PUBACK: 0x40 0x02 id id
            pending = pending[got * 4:]
            acked += got
            with published.get_lock():
                published.value += got
        elif sending and published.value - stored.value >= backlog:
            time.sleep(0.002)
    sock.sendall(b"\xe0\x00")
    sock.close()
    result.put((device_id, acked))


def naive_consume(host: str, port: int, username: str, password: str, db_path: str,
                  seconds: float, stored: mp.Value, ready: mp.Event, result: mp.Queue) -> None:
    """One INSERT and one COMMIT per message, acknowledged by paho on receipt."""
    import paho.mqtt.client as paho

    from gateway.intake import mqtt
    from gateway.intake.intake import Intake

    box: list[Intake] = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=username)
    client.username_pw_set(username, password)

    def on_message(_c, _u, msg) -> None:
        if not box:  # SQLite connections belong to the thread that opens them: paho's
            db = open_db(db_path)
            db.execute("PRAGMA synchronous = FULL")
            box.append(Intake(db))
        intake = box[0]
        mqtt.handle(intake, msg.topic, msg.payload)
        intake.commit()
        stored.value = sum(intake.counts.stored.values())

    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe([("hotspots/dev/+/+", 1)])
    client.on_subscribe = lambda *_: ready.set()
    client.connect(host, port)
    client.loop_start()
    ready.wait(10)
    time.sleep(seconds)
    client.disconnect()
    client.loop_stop()
    result.put(stored.value)


def _rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _max_id(db_path: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT coalesce(max(id), 0) FROM positions").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _start_publishers(broker: Mosquitto, devices: list[str], seconds: float,
                      published: mp.Value, stored: mp.Value, backlog: int
                      ) -> tuple[list[mp.Process], mp.Queue]:
    results: mp.Queue = mp.Queue()
    procs = [mp.Process(target=publish, args=(broker.host, broker.port, d,
                                              broker.device(d).password, seconds, published,
                                              stored, backlog, results), daemon=True)
             for d in devices]
    for p in procs:
        p.start()
    return procs, results


def _fleet_db(db_path: Path, prefix: str, count: int) -> list[str]:
    """Create the database at ``db_path`` with ``count`` registered devices; their ids."""
    devices = [f"{prefix}-{i:02d}" for i in range(1, count + 1)]
    db = open_db(str(db_path))
    for d in devices:
        register_device(db, d)
    db.close()
    return devices


def run_naive(broker: Mosquitto, workdir: Path, publishers: int, seconds: float,
              backlog: int) -> dict:
    """Measure the naive consumer for ``seconds``."""
    db_path = workdir / "naive.db"
    devices = _fleet_db(db_path, "N", publishers)
    published, stored, ready = mp.Value("q", 0), mp.Value("q", 0), mp.Event()
    results: mp.Queue = mp.Queue()
    consumer = mp.Process(target=naive_consume, args=(
        broker.host, broker.port, broker.gateway.username, broker.gateway.password,
        str(db_path), seconds, stored, ready, results), daemon=True)
    consumer.start()
    ready.wait(10)
    began = time.monotonic()
    procs, _ = _start_publishers(broker, devices, seconds, published, stored, backlog)
    count = results.get(timeout=seconds + 60)
    elapsed = time.monotonic() - began
    consumer.join(10)
    for p in procs:
        p.join(30)
        if p.is_alive():
            p.kill()
    return {"stored": count, "seconds": round(elapsed, 2), "per_s": round(count / elapsed)}


def run_gateway(broker: Mosquitto, workdir: Path, publishers: int, seconds: float,
                backlog: int, sample_s: float = 1.0) -> dict:
    """Measure ``hotspots gateway run`` with ``publishers`` devices for ``seconds``."""
    import paho.mqtt.client as paho

    from gateway.intake.service import SUBSCRIPTIONS

    db_path = workdir / "gateway.db"
    devices = _fleet_db(db_path, "B", publishers)
    # Create the gateway's persistent session first, as a station's gateway has one: from now
    # on the broker queues every message for it, whenever the process happens to connect.
    session = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="gateway",
                          clean_session=False, protocol=paho.MQTTv311)
    session.username_pw_set(**broker.gateway.auth())
    done = threading.Event()
    session.on_subscribe = lambda *_: done.set()
    session.connect(broker.host, broker.port)
    session.subscribe([(t, 1) for t in SUBSCRIPTIONS])
    session.loop_start()
    done.wait(10)
    session.disconnect()
    session.loop_stop()

    gateway = subprocess.Popen(
        [sys.executable, "-m", "hotspots", "gateway", "run", "--broker", broker.address,
         "--db", str(db_path), "--accounts", str(broker.accounts_path)],
        stdout=subprocess.DEVNULL, stderr=open(workdir / "gateway.log", "w"))  # noqa: SIM115
    published, stored = mp.Value("q", 0), mp.Value("q", 0)
    began = time.monotonic()
    procs, results = _start_publishers(broker, devices, seconds, published, stored, backlog)
    samples: list[tuple[float, int]] = []
    acked: dict[str, int] = {}
    rss = 0.0
    try:
        while len(acked) < len(devices) or stored.value < sum(acked.values()):
            time.sleep(sample_s)
            stored.value = _max_id(db_path)
            samples.append((time.monotonic() - began, stored.value))
            rss = max(rss, _rss_peak_mb(gateway.pid))
            while not results.empty():
                device, n = results.get()
                acked[device] = n
            if gateway.poll() is not None:
                raise click.ClickException(f"the gateway exited; see {workdir / 'gateway.log'}")
            if time.monotonic() - began > seconds + 300:
                raise click.ClickException("the gateway did not catch up within 5 minutes")
        finished = time.monotonic() - began
        rss = max(rss, _rss_peak_mb(gateway.pid))
    finally:
        gateway.send_signal(2)
        try:
            gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
        for p in procs:
            p.join(10)
    with sqlite3.connect(db_path) as conn:
        rows = dict(((d, (n, mx, distinct)) for d, n, mx, distinct in conn.execute(
            "SELECT device_id, count(*), max(seq), count(DISTINCT seq) FROM positions"
            " GROUP BY device_id")))
    lost = sum(n - rows.get(d, (0, 0, 0))[0] for d, n in acked.items())
    exact = all(rows.get(d) == (n, n, n) for d, n in acked.items())
    # Sustained: the slowest 5-second stretch while the publishers were running.
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[5:], strict=False)
               if b[0] <= seconds]
    total = sum(acked.values())
    return {
        "stored": total - lost, "acked": total, "lost": lost, "exactly_once": exact,
        "seconds": round(finished, 2), "per_s": round((total - lost) / finished),
        "min_5s_per_s": round(min(windows)) if windows else None,
        "peak_rss_mb": round(rss, 1),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
@click.option("--seconds", type=float, default=60, show_default=True,
              help="How long the publishers run against the gateway.")
@click.option("--naive-s", type=float, default=10, show_default=True,
              help="How long to measure the naive consumer.")
@click.option("--publishers", type=int, default=4, show_default=True,
              help="Publishing processes, one device each.")
@click.option("--backlog", type=int, default=50_000, show_default=True,
              help="Most acknowledged messages not yet in SQLite before publishers pause.")
def command(as_json: bool, seconds: float, naive_s: float, publishers: int,
            backlog: int) -> None:
    """Positions/s from publishers through Mosquitto into SQLite, against a naive consumer."""
    with tempfile.TemporaryDirectory(prefix="hotspots-bench-ingest-") as tmp:
        workdir = Path(tmp)
        with Mosquitto(workdir=workdir / "broker", persistence=False) as broker:
            naive = run_naive(broker, workdir, publishers, naive_s, backlog)
            gateway = run_gateway(broker, workdir, publishers, seconds, backlog)
    ratio = gateway["per_s"] / naive["per_s"] if naive["per_s"] else float("inf")
    result = {"cores": os.cpu_count(), "publishers": publishers, "gateway": gateway,
              "naive": naive, "ratio": round(ratio, 1), "target_per_s": TARGET_PER_S,
              "target_rss_mb": TARGET_RSS_MB,
              "meets_rate": gateway["per_s"] >= TARGET_PER_S and gateway["lost"] == 0,
              "meets_rss": gateway["peak_rss_mb"] <= TARGET_RSS_MB}
    if as_json:
        click.echo(json.dumps(result))
        return
    g = gateway
    click.echo(f"ingest: {publishers} publishing processes (QoS 1) -> mosquitto -> "
               f"hotspots gateway run -> SQLite, {os.cpu_count()} cores")
    click.echo(f"  gateway (batched):  {g['per_s']:>8,} positions/s over {g['seconds']} s"
               f" ({g['stored']:,} stored of {g['acked']:,} acknowledged, lost {g['lost']},"
               f" exactly once: {g['exactly_once']})")
    click.echo(f"                      slowest 5 s while publishing: {g['min_5s_per_s']:,}/s;"
               f" peak RSS {g['peak_rss_mb']} MB")
    click.echo(f"  naive (1 commit/msg): {naive['per_s']:>6,} positions/s over"
               f" {naive['seconds']} s ({naive['stored']:,} stored)")
    click.echo(f"  ratio batched/naive: {ratio:.1f}x")
    verdict = {True: "met", False: "NOT met"}
    click.echo(f"  target {TARGET_PER_S:,}/s sustained: {verdict[result['meets_rate']]};"
               f" peak RSS <= {TARGET_RSS_MB} MB: {verdict[result['meets_rss']]}")


if __name__ == "__main__":
    command()
