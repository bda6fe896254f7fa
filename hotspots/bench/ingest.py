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

With ``--hostile PCT`` (1 % by default) the gateway is measured twice, on a clean stream and on
one where every ``100/PCT``-th message of each publisher is poison instead of a fix: the shapes
that stopped the gateway in issue 16 (arrays nested 1,990 deep, lone surrogates, NaN, Infinity,
integers beyond 2**53, text that is not JSON or not UTF-8).
Nothing may be lost: every fix stored exactly once, every poison quarantined, the gateway alive
throughout and exiting 0.
"""

from __future__ import annotations

import ast
import json
import multiprocessing as mp
import os
import re
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


def hostile_payloads(device_id: str, t0: int) -> list[tuple[str, bytes]]:
    """Poison a tracker's credentials can send, each under the wire's 4 KB: ``(topic, payload)``.

    Every one of them must be quarantined by the gateway: they break the wire format itself
    (:func:`tracker.wire.decode`), whatever the intake would make of their fields.
    """
    loc = wire.device_topic(device_id, wire.KIND_LOCATION)
    status = wire.device_topic(device_id, wire.KIND_STATUS)
    fix = _template(device_id) % (1, t0, t0)
    deep = "[" * 1990 + "]" * 1990
    shapes = [
        (loc, f'{{"_type":"location","tst":{t0},"lat":51.5,"lon":0,"inregions":{deep}}}'),
        (status, f'{{"_type":"status","online":true,"fw":{deep}}}'),
        (loc, fix.replace(f'"dev":"{device_id}"', f'"dev":"{device_id}\\ud800"')),
        (status, '{"_type":"status","online":true,"fences":"ab\\ud800","fw":"1\\udfff"}'),
        (status, '{"_type":"status","online":true,"batt":NaN,"outbox":Infinity}'),
        (status, f'{{"_type":"status","online":true,"batt":{2**64}}}'),
        (loc, fix.replace('"acc":', '"acc":NaN,"x":')),
        (loc, fix.replace('"vel":', '"vel":Infinity,"x":')),
        (loc, fix.replace('"seq":1,', f'"seq":{2**63 - 1},')),
        (loc, fix.replace('"inregions":["HS-GRN-01"]', '"inregions":["HS\\udc00"]')),
        (loc, fix.replace('"hdop":', '"hdop":1e400,"x":')),
        (loc, fix[: len(fix) // 2]),
    ]
    out = [(topic, text.encode()) for topic, text in shapes]
    out.append((loc, b"\xff\xfe" + fix.encode()))
    for _topic, payload in out:
        assert len(payload) <= wire.MAX_PAYLOAD
    return out


def publish(host: str, port: int, device_id: str, password: str, seconds: float,
            published: mp.Value, stored: mp.Value, backlog: int, result: mp.Queue,
            hostile_every: int = 0) -> None:
    """Stream QoS 1 locations as ``device_id`` for ``seconds``; put the count acknowledged.

    With ``hostile_every`` N, each sequence number that is a multiple of N carries poison
    (:func:`hostile_payloads`) instead of a fix.
    """
    template = _template(device_id)
    topic = wire.device_topic(device_id, wire.KIND_LOCATION)
    t0 = int(time.time()) - 10 * 86400  # fix times well in the past, inside the age filter
    sock = socket.create_connection((host, port))
    sock.sendall(mqtt.connect_packet(device_id, 60, True, device_id, password, None))
    connack = sock.recv(4)
    if len(connack) != 4 or connack[3] != 0:
        result.put((device_id, -1))
        return
    hostile = hostile_payloads(device_id, t0) if hostile_every else []
    seq = acked = 0
    pending = b""
    end = time.monotonic() + seconds
    while True:
        sending = time.monotonic() < end
        if sending and seq - acked < WINDOW and published.value - stored.value < backlog:
            n = min(200, WINDOW - (seq - acked))
            packets = []
            for s in range(seq + 1, seq + n + 1):
                if hostile_every and s % hostile_every == 0:
                    poison_topic, payload = hostile[s // hostile_every % len(hostile)]
                    packets.append(mqtt.publish_packet(poison_topic, payload, 1, False,
                                                       s % 65535 + 1))
                    continue
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


def _max_id(db_path: Path, table: str = "positions") -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _exit_counts(log_path: Path) -> dict | None:
    """The gateway's last accounting line (``stored {...}, duplicates N, status N,
    quarantined {...}``) as numbers, or None if it printed none."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines()
             if line.startswith("stored ")]
    if not lines:
        return None
    match = re.search(r"quarantined (\{.*\})", lines[-1])
    return {"quarantined": sum(ast.literal_eval(match.group(1)).values()) if match else None}


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


def _start_publishers(broker: Mosquitto, devices: list[str], seconds: float,
                      published: mp.Value, stored: mp.Value, backlog: int,
                      hostile_every: int = 0) -> tuple[list[mp.Process], mp.Queue]:
    results: mp.Queue = mp.Queue()
    procs = [mp.Process(target=publish, args=(broker.host, broker.port, d,
                                              broker.device(d).password, seconds, published,
                                              stored, backlog, results, hostile_every),
                        daemon=True)
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
                backlog: int, sample_s: float = 1.0, hostile_every: int = 0) -> dict:
    """Measure ``hotspots gateway run`` with ``publishers`` devices for ``seconds``; with
    ``hostile_every`` N, every N-th message of each publisher is poison."""
    import paho.mqtt.client as paho

    from gateway.intake.service import SUBSCRIPTIONS

    name = "hostile" if hostile_every else "gateway"
    db_path = workdir / f"{name}.db"
    log_path = workdir / f"{name}.log"
    devices = _fleet_db(db_path, "H" if hostile_every else "B", publishers)
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
        stdout=subprocess.DEVNULL, stderr=open(log_path, "w"))  # noqa: SIM115
    published, stored = mp.Value("q", 0), mp.Value("q", 0)
    began = time.monotonic()
    procs, results = _start_publishers(broker, devices, seconds, published, stored, backlog,
                                       hostile_every)
    samples: list[tuple[float, int]] = []
    acked: dict[str, int] = {}
    rss = 0.0
    crashes = 0
    try:
        # Handled = stored + quarantined: what the publishers' backlog is measured against.
        while len(acked) < len(devices) or stored.value < sum(acked.values()):
            time.sleep(sample_s)
            positions = _max_id(db_path)
            stored.value = positions + (_max_id(db_path, "quarantine") if hostile_every else 0)
            samples.append((time.monotonic() - began, positions))
            rss = max(rss, _rss_peak_mb(gateway.pid))
            while not results.empty():
                device, n = results.get()
                acked[device] = n
            if gateway.poll() is not None:
                crashes += 1
                raise click.ClickException(f"the gateway exited; see {log_path}")
            if time.monotonic() - began > seconds + 300:
                raise click.ClickException("the gateway did not catch up within 5 minutes")
        finished = time.monotonic() - began
        rss = max(rss, _rss_peak_mb(gateway.pid))
    finally:
        gateway.send_signal(2)
        try:
            code = gateway.wait(30)
        except subprocess.TimeoutExpired:
            gateway.kill()
            code = gateway.wait()
        for p in procs:
            p.join(10)
    crashes += code != 0
    # Poison took the sequence numbers that are multiples of hostile_every.
    poison = {d: n // hostile_every if hostile_every else 0 for d, n in acked.items()}
    fixes = {d: n - poison[d] for d, n in acked.items()}
    with sqlite3.connect(db_path) as conn:
        rows = dict(((d, (n, mx, distinct)) for d, n, mx, distinct in conn.execute(
            "SELECT device_id, count(*), max(seq), count(DISTINCT seq) FROM positions"
            " GROUP BY device_id")))
        poison_stored = conn.execute(
            "SELECT count(*) FROM positions WHERE seq % ? = 0",
            (hostile_every,)).fetchone()[0] if hostile_every else 0
        quarantine_rows = conn.execute("SELECT count(*) FROM quarantine").fetchone()[0]

    def top(d: str, n: int) -> int:
        return n - 1 if hostile_every and n % hostile_every == 0 else n

    lost = sum(n - rows.get(d, (0, 0, 0))[0] for d, n in fixes.items())
    exact = poison_stored == 0 and all(rows.get(d) == (n, top(d, acked[d]), n)
                                       for d, n in fixes.items())
    counted = _exit_counts(log_path) or {}
    # Sustained: the slowest 5-second stretch while the publishers were running.
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in zip(samples, samples[5:], strict=False)
               if b[0] <= seconds]
    total = sum(fixes.values())
    return {
        "stored": total - lost, "acked": total, "lost": lost, "exactly_once": exact,
        "seconds": round(finished, 2), "per_s": round((total - lost) / finished),
        "min_5s_per_s": round(min(windows)) if windows else None,
        "peak_rss_mb": round(rss, 1), "crashes": crashes,
        "hostile_sent": sum(poison.values()), "hostile_quarantined": counted.get("quarantined"),
        "quarantine_rows": quarantine_rows,
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
@click.option("--hostile", "hostile_pct", type=click.FloatRange(0, 50), default=1.0,
              show_default=True,
              help="Also measure a stream with this percentage of poison messages (0: don't).")
def command(as_json: bool, seconds: float, naive_s: float, publishers: int,
            backlog: int, hostile_pct: float) -> None:
    """Positions/s from publishers through Mosquitto into SQLite, against a naive consumer;
    then again with a share of hostile messages mixed in."""
    every = round(100 / hostile_pct) if hostile_pct else 0
    with tempfile.TemporaryDirectory(prefix="hotspots-bench-ingest-") as tmp:
        workdir = Path(tmp)
        with Mosquitto(workdir=workdir / "broker", persistence=False) as broker:
            naive = run_naive(broker, workdir, publishers, naive_s, backlog)
            gateway = run_gateway(broker, workdir, publishers, seconds, backlog)
            hostile = (run_gateway(broker, workdir, publishers, seconds, backlog,
                                   hostile_every=every) if every else None)
    ratio = gateway["per_s"] / naive["per_s"] if naive["per_s"] else float("inf")
    measured = hostile or gateway
    result = {"cores": os.cpu_count(), "publishers": publishers, "gateway": gateway,
              "naive": naive, "ratio": round(ratio, 1), "target_per_s": TARGET_PER_S,
              "target_rss_mb": TARGET_RSS_MB, "hostile": hostile,
              "hostile_every": every or None,
              "meets_rate": all(g["per_s"] >= TARGET_PER_S and g["lost"] == 0
                                and g["crashes"] == 0 for g in (gateway, measured)),
              "meets_rss": max(gateway["peak_rss_mb"], measured["peak_rss_mb"])
              <= TARGET_RSS_MB}
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
    if hostile:
        h = hostile
        click.echo(f"  with 1 in {every} messages hostile ({100 / every:g} %):"
                   f" {h['per_s']:>8,} positions/s over {h['seconds']} s"
                   f" ({h['per_s'] / g['per_s']:.2f}x the clean stream);"
                   f" slowest 5 s {h['min_5s_per_s']:,}/s")
        click.echo(f"                      crashes {h['crashes']}, lost {h['lost']}, exactly"
                   f" once: {h['exactly_once']}; hostile sent {h['hostile_sent']:,},"
                   f" quarantined {_count(h['hostile_quarantined'])} ({h['quarantine_rows']:,} rows"
                   f" kept); peak RSS {h['peak_rss_mb']} MB")
    verdict = {True: "met", False: "NOT met"}
    click.echo(f"  target {TARGET_PER_S:,}/s sustained, nothing lost, no crash:"
               f" {verdict[result['meets_rate']]};"
               f" peak RSS <= {TARGET_RSS_MB} MB: {verdict[result['meets_rss']]}")


if __name__ == "__main__":
    command()
