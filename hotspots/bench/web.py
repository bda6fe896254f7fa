"""``hotspots bench web``: the station web app under load, in a real browser.

1. **Fix-to-browser latency**: ``--devices`` simulated devices publish OwnTracks-style locations
   over a private Mosquitto to the real gateway (in this process) while headless Chromium keeps
   the live page open on the web app (``hotspots web`` in its own process). For every fix: the
   time from publishing to the gateway receiving it (``received_at``: the baseline, what the
   broker costs) and from there to the page receiving it over the event stream (the gateway's
   batched commit, the web app's poll, the stream, the page).
2. **A busy day**: ``--officers`` officers x ``--hours`` hours of fixes every ``--every-s``
   seconds written into the database; the time for the day page to load and draw its map in
   the browser (server time of ``/api/day`` apart).
3. **Server memory**: the web process's resident set size idle, after the live run and after
   the busy day (``VmRSS``, and the peak ``VmHWM``).

Not part of the test run. Needs Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click

PASSWORD = "bench password 123"
DAY = "2026-03-02"


def _rss_kib(pid: int) -> tuple[int, int]:
    """``(VmRSS, VmHWM)`` of a process in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields["VmRSS"], fields["VmHWM"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        raise click.ClickException("needs Debian's chromium and chromium-driver "
                                   "(apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver), options=options)


def _wait(driver, script: str, timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise click.ClickException(f"the page did not get ready: {script}")
        time.sleep(0.05)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def _busy_day(db, officers: int, hours: float, every_s: int, seed: int) -> int:
    """Store a day of walking officers (around the sample hot spots) through the intake, as a
    station would have stored it; returns the fixes stored."""
    from gateway.intake.intake import Intake
    from gateway.intake.observation import Observation

    rng = random.Random(seed)
    start = int(dt.datetime.fromisoformat(f"{DAY}T08:00:00+00:00").timestamp())
    steps = int(hours * 3600 / every_s)
    total = 0
    intake = Intake(db, accept_unknown=True)
    for i in range(officers):
        device = f"D-{i:04d}"
        db["devices"].insert({"device_id": device, "source": "tracker", "registered_at": start},
                             replace=True)
        db["assignments"].insert({"device_id": device, "collar": f"{2000 + i}",
                                  "start_ts": start - 600, "end_ts": start + steps * every_s})
        lat, lon = 51.4806 + rng.uniform(-0.01, 0.01), -0.002 + rng.uniform(-0.015, 0.015)
        heading = rng.uniform(0, 2 * math.pi)
        intake.begin()
        for k in range(steps):
            heading += rng.gauss(0, 0.4)
            metres = 1.3 * every_s * rng.uniform(0.3, 1.0)
            lat += metres * math.cos(heading) / 111_000
            lon += metres * math.sin(heading) / 69_000
            tst = start + k * every_s
            obs = Observation("location", "tracker", device, "bench", seq=k + 1, tst=tst,
                              lat=round(lat, 6), lon=round(lon, 6), acc_m=5.0)
            if intake.submit(obs, tst + 1) == "stored":
                total += 1
        intake.commit()
    return total


@click.command()
@click.option("--devices", type=int, default=200, show_default=True,
              help="Devices reporting during the live run.")
@click.option("--interval-s", type=float, default=5.0, show_default=True,
              help="Each device reports this often.")
@click.option("--duration-s", type=float, default=30.0, show_default=True,
              help="Length of the live run.")
@click.option("--officers", type=int, default=200, show_default=True, help="Busy day: officers.")
@click.option("--hours", type=float, default=10.0, show_default=True, help="Busy day: hours.")
@click.option("--every-s", type=int, default=30, show_default=True,
              help="Busy day: seconds between an officer's fixes.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def command(devices: int, interval_s: float, duration_s: float, officers: int, hours: float,
            every_s: int, as_json: bool) -> None:
    """Fix-to-browser latency with many devices, a busy day in the browser, server memory."""
    import paho.mqtt.client as mqtt

    from gateway.broker import Mosquitto
    from gateway.fleet.identity import register_device
    from gateway.intake.service import Gateway
    from gateway.schema import open_db
    from gateway.web.auth import add_user
    from hotspots.demo import SAMPLE_FENCES

    figures: dict = {"devices": devices, "interval_s": interval_s, "duration_s": duration_s,
                     "officers": officers, "hours": hours, "every_s": every_s}
    work = Path(tempfile.mkdtemp(prefix="hotspots-bench-web-"))
    db_path = str(work / "gateway.db")
    db = open_db(db_path)
    add_user(db, "bench", "supervisor", PASSWORD)
    now = int(time.time())
    for i in range(devices):
        register_device(db, f"L-{i:04d}")
        db["assignments"].insert({"device_id": f"L-{i:04d}", "collar": f"{1000 + i}",
                                  "start_ts": now - 3600})
    db.conn.commit()

    broker = Mosquitto(workdir=work / "broker").start()
    stop = threading.Event()
    gateway = Gateway(broker.address, db_path, **broker.gateway.auth())
    gateway_thread = threading.Thread(target=gateway.run, args=(stop,), daemon=True)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "hotspots", "web", "--db", db_path, "--port", str(port),
         "--fences", str(SAMPLE_FENCES)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    driver = None
    try:
        gateway_thread.start()
        if not gateway.connected.wait(10):
            raise click.ClickException("the gateway could not connect to the broker")
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError as exc:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise click.ClickException(
                        "hotspots web did not start: "
                        + (server.stderr.read() if server.stderr else "")) from exc
                time.sleep(0.1)
        time.sleep(0.5)
        figures["rss_idle_kib"] = _rss_kib(server.pid)[0]

        driver = _browser()
        driver.get(url + "/login")
        driver.find_element("id", "username").send_keys("bench")
        driver.find_element("id", "password").send_keys(PASSWORD)
        driver.find_element("id", "login").click()
        _wait(driver, "document.body.dataset.ready === '1'", 30)

        # -- live: many devices publishing through the broker and the gateway -----------------
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-publisher")
        admin = broker.account("bench-admin", "admin")
        publisher.username_pw_set(**admin.auth())
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        published: dict[tuple[str, int], float] = {}
        rng = random.Random(1)
        spots = {f"L-{i:04d}": (51.4806 + rng.uniform(-0.005, 0.005),
                                -0.002 + rng.uniform(-0.008, 0.008)) for i in range(devices)}
        rounds = max(1, int(duration_s / interval_s))
        gap = interval_s / devices
        began = time.monotonic()
        for r in range(rounds):
            for i in range(devices):
                device = f"L-{i:04d}"
                lat, lon = spots[device]
                lat += rng.uniform(-0.0001, 0.0001)
                spots[device] = (lat, lon)
                due = began + r * interval_s + i * gap
                time.sleep(max(0.0, due - time.monotonic()))
                tst = int(time.time())
                payload = json.dumps({"_type": "location", "dev": device, "seq": r + 1,
                                      "tst": tst, "created_at": tst, "lat": round(lat, 6),
                                      "lon": round(lon, 6), "acc": 5, "t": "t"})
                published[(device, r + 1)] = time.time()
                publisher.publish(f"hotspots/dev/{device}/loc", payload, qos=1)
        time.sleep(3)
        publisher.loop_stop()
        publisher.disconnect()
        arrivals = driver.execute_script("return window.hsArrivals")
        figures["rss_after_live_kib"] = _rss_kib(server.pid)[0]
        reader = open_db(db_path)
        rows = {pid: (dev, seq, received) for pid, dev, seq, received in reader.execute(
            "SELECT id, device_id, seq, received_at FROM positions WHERE device_id LIKE 'L-%'")}
        to_gateway, to_browser, total = [], [], []
        for pid, seen in arrivals:
            if pid not in rows:
                continue
            dev, seq, received = rows[pid]
            sent = published.get((dev, seq))
            to_browser.append(seen - received)
            if sent is not None:
                to_gateway.append(received - sent)
                total.append(seen - sent)
        figures["fixes_published"] = len(published)
        figures["fixes_stored"] = len(rows)
        figures["fixes_in_browser"] = len(to_browser)
        figures["rate_per_s"] = round(len(published) / (rounds * interval_s), 1)
        for name, values in (("publish_to_gateway", to_gateway), ("gateway_to_browser",
                                                                  to_browser),
                             ("publish_to_browser", total)):
            if values:
                figures[f"{name}_p50_ms"] = round(statistics.median(values) * 1000, 1)
                figures[f"{name}_p95_ms"] = round(_percentile(values, 0.95) * 1000, 1)

        # -- a busy day ------------------------------------------------------------------------
        writer = open_db(db_path)
        t0 = time.perf_counter()
        figures["busy_day_fixes"] = _busy_day(writer, officers, hours, every_s, seed=3)
        figures["busy_day_write_s"] = round(time.perf_counter() - t0, 1)
        import urllib.request

        from gateway.reports import exports, maps
        from gateway.web import day as day_report

        # Baseline in this process: the same figures and tracks, no HTTP, no browser.
        t0 = time.perf_counter()
        computed = day_report.compute(writer, DAY)
        maps.track_lines(exports.day_tracks(writer, computed.window), simplify_m=3.0)
        figures["baseline_compute_s"] = round(time.perf_counter() - t0, 2)
        driver.set_page_load_timeout(600)

        def day_in_browser(prefix: str) -> None:
            driver.get("about:blank")
            t0 = time.perf_counter()
            driver.get(f"{url}/day?date={DAY}")
            html_s = time.perf_counter() - t0
            _wait(driver, "document.body.dataset.ready === '1'", 600)
            figures[f"{prefix}_html_s"] = round(html_s, 2)
            figures[f"{prefix}_total_s"] = round(time.perf_counter() - t0, 2)
            figures[f"{prefix}_fetch_ms"] = int(driver.execute_script(
                "return document.body.dataset.fetchMs"))
            figures[f"{prefix}_render_ms"] = int(driver.execute_script(
                "return document.body.dataset.renderMs"))
            figures["day_tracks_drawn"] = int(driver.execute_script(
                "return document.body.dataset.tracks"))

        day_in_browser("day_cold")  # the server computes the day on this first visit
        cookie = driver.get_cookie("hotspots_session")["value"]
        request = urllib.request.Request(f"{url}/api/day?date={DAY}",
                                         headers={"Cookie": f"hotspots_session={cookie}"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read()
        figures["api_day_warm_s"] = round(time.perf_counter() - t0, 2)
        figures["api_day_bytes"] = len(body)
        day_in_browser("day_warm")
        if os.environ.get("HOTSPOTS_BENCH_SCREENSHOT"):
            driver.save_screenshot(os.environ["HOTSPOTS_BENCH_SCREENSHOT"])
        figures["rss_after_day_kib"], figures["rss_peak_kib"] = _rss_kib(server.pid)
        figures["load_average"] = os.getloadavg()[0]
        figures["cpus"] = os.cpu_count()
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        stop.set()
        gateway_thread.join(15)
        broker.cleanup()
        shutil.rmtree(work, ignore_errors=True)

    if as_json:
        click.echo(json.dumps(figures))
        return
    f = figures
    click.echo(f"web: {devices} devices every {interval_s:g} s for {duration_s:g} s"
               f" ({f['rate_per_s']} fixes/s); busy day {officers} officers x {hours:g} h,"
               f" a fix every {every_s} s ({f['busy_day_fixes']} fixes)")
    click.echo(f"live: published {f['fixes_published']}, stored {f['fixes_stored']},"
               f" shown in the browser {f['fixes_in_browser']}")
    for name, label in (("publish_to_gateway", "publish -> gateway received (baseline)"),
                        ("gateway_to_browser", "received -> browser (commit + web app)"),
                        ("publish_to_browser", "publish -> browser (total)")):
        if f"{name}_p50_ms" in f:
            click.echo(f"  {label:<48} p50 {f[f'{name}_p50_ms']:8.1f} ms"
                       f"  p95 {f[f'{name}_p95_ms']:8.1f} ms")
    if "gateway_to_browser_p50_ms" in f and f.get("publish_to_gateway_p50_ms"):
        click.echo(f"  web share of the total at p50: {f['gateway_to_browser_p50_ms']:.0f} ms"
                   f" vs the gateway's {f['publish_to_gateway_p50_ms']:.0f} ms"
                   f" (x{f['gateway_to_browser_p50_ms'] / f['publish_to_gateway_p50_ms']:.1f});"
                   " target: under 2000 ms")
    click.echo(f"busy day: baseline (figures and tracks in-process) {f['baseline_compute_s']} s;"
               f" map data {f['api_day_bytes'] // 1024} KiB, {f['day_tracks_drawn']} track"
               f" segments; /api/day once computed {f['api_day_warm_s']} s")
    for prefix, label in (("day_cold", "first visit (server computes)"),
                          ("day_warm", "next visit (computed)")):
        total = f[f"{prefix}_total_s"]
        click.echo(f"  day page, {label:<30} map drawn {total:6.2f} s after navigation"
                   f" (x{total / f['baseline_compute_s']:.1f} baseline; HTML"
                   f" {f[f'{prefix}_html_s']} s, map data {f[f'{prefix}_fetch_ms']} ms, drawn at"
                   f" {f[f'{prefix}_render_ms']} ms)")
    click.echo(f"server RSS: idle {f['rss_idle_kib'] / 1024:.0f} MiB, after live"
               f" {f['rss_after_live_kib'] / 1024:.0f} MiB, after busy day"
               f" {f['rss_after_day_kib'] / 1024:.0f} MiB, peak {f['rss_peak_kib'] / 1024:.0f} MiB")
    click.echo(f"machine: load average {f['load_average']:.1f} on {f['cpus']} CPUs"
               " (shared: figures are upper bounds)")
