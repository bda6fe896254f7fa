"""The web app in a real browser: Debian's headless Chromium driven by Selenium through Debian's
chromium-driver, against the app served by uvicorn.

A supervisor logs in and watches the live map while the real firmware (MicroPython unix port)
walks the sample route and the real gateway stores its fixes through a private Mosquitto; then
draws a hot spot in the fence editor, sees the validator's message on the shape, saves and
publishes it; then opens the day's reports. A station staff member is refused the live map. An
analyst goes through the planning pages over synthetic crime: harm map, proposals saved as a
draft, the 3D map, taskings drawn and imported, one hot spot's report.
Screenshots go to ``tests/artifacts/web/`` (or ``$HOTSPOTS_TEST_ARTIFACTS``) for review.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from gateway.schema import open_db
from hotspots.demo import SAMPLE_FENCES, SAMPLE_ROUTE
from simulators.patrol import run_patrol
from tests.web_fixtures import PASSWORD, LiveServer, make_app, make_db

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("HOTSPOTS_TEST_ARTIFACTS",
                                Path(__file__).resolve().parent / "artifacts" / "web"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")


def browser(webgl: bool = False):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # WebGL (the 3D harm map) in software: SwiftShader, as test_planning_map3d renders it
    gpu = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader") if webgl else (
        "--disable-gpu",)
    for arg in ("--headless=new", "--no-sandbox", *gpu, "--disable-dev-shm-usage",
                "--window-size=1400,900", "--no-first-run"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_for(driver, script: str, timeout: float = 15.0):
    """Poll a JavaScript expression until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.1)


def log_in(driver, url: str, username: str) -> None:
    driver.get(url + "/login")
    driver.find_element("id", "username").send_keys(username)
    driver.find_element("id", "password").send_keys(PASSWORD)
    driver.find_element("id", "login").click()


def test_supervisor_follows_a_patrol_edits_a_hot_spot_and_opens_the_reports(
        tmp_path, mosquitto, micropython):
    from selenium.webdriver.common.action_chains import ActionChains

    db_path = make_db(tmp_path / "gateway.db")
    db = open_db(str(db_path))
    db["assignments"].insert({"device_id": "T-0001", "collar": "4521",
                              "start_ts": int(time.time()) - 7200})
    db.conn.close()
    app = make_app(db_path, broker=mosquitto.address,
                   accounts_path=str(mosquitto.accounts_path))
    with LiveServer(app) as server:
        driver = browser()
        try:
            # -- live: the marker moves while the firmware walks ---------------------------
            log_in(driver, server.url, "sue")
            wait_for(driver, "document.body.dataset.ready === '1'")
            assert driver.current_url.endswith("/live")
            patrol: list = []
            walker = threading.Thread(target=lambda: patrol.append(run_patrol(
                mosquitto.address, tmp_path / "patrol", SAMPLE_ROUTE, SAMPLE_FENCES,
                speedup=120, db_path=db_path)), daemon=True)
            walker.start()
            wait_for(driver, "document.querySelector('path.hs-device')", 30)
            first = driver.execute_script(
                "return document.querySelector('path.hs-device').getAttribute('d')")
            shot(driver, "live-start")
            seen_patrolled = set()
            positions = {first}
            while walker.is_alive():
                positions.add(driver.execute_script(
                    "return document.querySelector('path.hs-device').getAttribute('d')"))
                seen_patrolled.update(filter(None, (driver.execute_script(
                    "return document.body.dataset.patrolled") or "").split(",")))
                if "HS-GRN-01" in seen_patrolled and not (ARTIFACTS / "live-patrolled.png"
                                                           ).exists():
                    shot(driver, "live-patrolled")
                time.sleep(0.25)
            walker.join()
            assert patrol, "the patrol did not finish"
            shot(driver, "live-end")
            stored = patrol[0].counts
            assert sum(stored.stored.values()) > 0
            fixes_shown = int(wait_for(driver, "document.body.dataset.fixes"))
            assert fixes_shown > 10
            # Trackers upload their fixes in batches (every 10 minutes of walk in the normal
            # tier): the marker jumps once per batch, the trail fills in.
            assert len(positions) >= 2, "the marker did not move"
            # Enter and leave of each hot spot arrive in the same batch, so "being patrolled"
            # is not caught here; tests/test_web_app.py covers it with fixes written directly.
            legend = driver.find_element("id", "legend").text
            assert "4521" in legend
            assert "4521" in driver.find_element("css selector", ".officer-label").text

            # -- fence editor: draw a hot spot, see the validator, save, publish ------------
            driver.get(server.url + "/fences")
            wait_for(driver, "document.body.dataset.ready === '1'")
            wait_for(driver, "document.body.dataset.checkVersion")
            map_el = driver.find_element("id", "map")
            driver.find_element("css selector", ".leaflet-pm-icon-polygon").click()
            w, h = map_el.size["width"], map_el.size["height"]
            # Offsets from the map's centre (W3C actions): a square in the lower right quarter,
            # clear of the toolbars and of the existing hot spots.
            x0, y0 = w // 5, h // 5
            corners = [(x0, y0), (x0 + 70, y0), (x0 + 70, y0 + 60), (x0, y0 + 60)]
            for x, y in [*corners, corners[0]]:
                ActionChains(driver).move_to_element_with_offset(map_el, x, y).click().perform()
                time.sleep(0.15)
            popup = wait_for(driver, "document.querySelector('.leaflet-popup form.props')")
            assert popup is not None
            name = driver.find_element("css selector", ".leaflet-popup input[name=name]")
            name.send_keys("Drawn in the browser")
            driver.find_element("css selector", ".leaflet-popup button[type=submit]").click()
            # The new shape is checked by the project's validator: a warning on the shape.
            tip = wait_for(driver, "document.querySelector('.problem-tip')"
                                   " && document.querySelector('.problem-tip').textContent")
            assert "density" in tip
            wait_for(driver, "document.body.dataset.errors === '0'")
            shot(driver, "fences-drawn")
            driver.find_element("id", "save").click()
            saved = wait_for(driver, "document.body.dataset.savedId")
            wait_for(driver, "!document.getElementById('publish').disabled")
            driver.find_element("id", "publish").click()
            published = wait_for(driver, "document.body.dataset.published", 20)
            shot(driver, "fences-published")
            assert "HS-NEW-1" in driver.find_element("id", "changes").text
            db = open_db(str(db_path))
            row = db.execute("SELECT version, published_by, hotspots FROM fence_sets"
                             " WHERE id = ?", (int(saved),)).fetchone()
            assert row == (published, "sue", 3)

            # -- reports: the patrol's day page with its map, tables and downloads ----------
            # The day the officer entered the first hot spot, not the clock's: a run that
            # crosses midnight (the app's zone is UTC) has its visits, and so its dwell, on the
            # day before. Its track is on both days' maps, whole (tests/test_web_day_midnight).
            entered = db.execute("SELECT min(tst) FROM transitions WHERE event = 'enter'"
                                 ).fetchone()[0]
            today = dt.datetime.fromtimestamp(entered, dt.UTC).date().isoformat()
            # The day's plan: the officer was tasked to HS-GRN-01 for the hour from the minute
            # he entered it (the same date), one minute required; the page says done.
            from gateway.reports.taskings import import_taskings

            begin = dt.datetime.fromtimestamp(entered // 60 * 60, dt.UTC)
            import_taskings(db, io.StringIO(
                "date,hotspot,start,end,officer,team,required_minutes\n"
                f"{today},HS-GRN-01,{begin:%H:%M},{begin + dt.timedelta(hours=1):%H:%M},"
                "4521,,1\n"))
            driver.get(f"{server.url}/day?date={today}")
            wait_for(driver, "document.body.dataset.ready === '1'", 30)
            tasked = driver.find_element("css selector", "#taskings tbody tr").text
            assert tasked.startswith("HS-GRN-01 4521") and "done" in tasked, tasked
            assert int(driver.execute_script("return document.body.dataset.tracks")) >= 1
            assert "4521" in driver.find_element("id", "dwell").text
            assert "4521" in driver.find_element("id", "legend").text
            assert driver.find_element("css selector", ".leaflet-control-scale").is_displayed()
            assert today in driver.find_element("id", "map-title").text
            assert "not patrolled" in driver.find_element("id", "patrol-legend").text
            shot(driver, "day")
            # A run across midnight: the other date's map has the whole patrol too.
            first, last = db.execute("SELECT min(tst), max(tst) FROM positions").fetchone()
            for other in {dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat()
                          for t in (first, last)} - {today}:
                driver.get(f"{server.url}/day?date={other}")
                wait_for(driver, "document.body.dataset.ready === '1'", 30)
                assert int(driver.execute_script("return document.body.dataset.tracks")) >= 1
                assert "4521" in driver.find_element("id", "legend").text
                shot(driver, "day-across-midnight")
            driver.get(server.url + "/audit")
            audit_text = driver.find_element("id", "audit").text
            assert "view_live" in audit_text and "view_day" in audit_text
            assert "fences_publish" in audit_text
            shot(driver, "audit")
        finally:
            driver.quit()


def test_hot_spot_files_from_geojson_io_and_qgis_open_in_the_editor(tmp_path):
    """The five files of tests/test_fences_foreign.py open in the fence editor as drawn, with
    the validator's warnings on the shapes and the same compiled version as ``fences compile``;
    a file in British National Grid is refused with what to do; the last one opened is saved."""
    from fences.compile import compile_geojson
    from tests.conftest import DATA
    from tests.test_fences_foreign import ACCEPTED

    def open_file(driver, path: Path) -> str:
        driver.execute_script("delete document.body.dataset.opened;"
                              " delete document.body.dataset.checkVersion")
        driver.find_element("id", "open-file").send_keys(str(path))
        return wait_for(driver, "document.body.dataset.opened")

    db_path = make_db(tmp_path / "gateway.db")
    with LiveServer(make_app(db_path)) as server:
        driver = browser()
        try:
            log_in(driver, server.url, "ann")
            wait_for(driver, "location.pathname === '/day'")
            driver.get(server.url + "/fences")
            wait_for(driver, "document.body.dataset.ready === '1'")
            wait_for(driver, "document.body.dataset.checkVersion")

            projected = DATA / "fences" / "qgis_british_national_grid.geojson"
            assert open_file(driver, projected) == "refused"
            assert "EPSG:4326" in driver.find_element("id", "status").text
            assert len(driver.find_elements("css selector", "path.leaflet-interactive")) == 2

            for name, ids, _names, _warnings in ACCEPTED:
                path = DATA / "fences" / name
                assert open_file(driver, path) == str(len(ids)), name
                version = wait_for(driver, "document.body.dataset.checkVersion")
                assert version == compile_geojson(path).version, name
                assert driver.execute_script("return document.body.dataset.errors") == "0"
                tips = driver.execute_script(
                    "return Array.from(document.querySelectorAll('.problem-tip'))"
                    ".map(e => e.textContent).join(' ')")
                assert "density" in tips, name
                if "multipolygon" in name:
                    shot(driver, "fences-opened-qgis-multipolygon")
            # The last one (QGIS: a MultiPolygon, the id in a field) saved: the audit trail
            # names its hot spot.
            driver.find_element("id", "save").click()
            saved = wait_for(driver, "document.body.dataset.savedId")
            shot(driver, "fences-opened-saved")
        finally:
            driver.quit()
    db = open_db(str(db_path))
    assert sorted(db.execute("SELECT hotspot FROM fence_edits WHERE fence_set_id = ?"
                             " AND change = 'added'", (int(saved),)).fetchall()) == [("7",)]


def test_staff_see_the_fleet_but_not_the_live_map(tmp_path):
    db_path = make_db(tmp_path / "gateway.db")
    with LiveServer(make_app(db_path)) as server:
        driver = browser()
        try:
            driver.get(server.url + "/live")
            assert "/login" in driver.current_url  # no anonymous access
            log_in(driver, server.url, "stan")
            assert driver.current_url.endswith("/login?next=/live") is False
            assert driver.find_element("id", "fleet-table")
            nav = driver.find_element("tag name", "nav").text
            assert "Fleet" in nav and "Live" not in nav
            driver.get(server.url + "/live")
            assert "may not use /live" in driver.page_source
            shot(driver, "staff-fleet-refused-live")
        finally:
            driver.quit()


def test_analyst_plans_hot_spots_and_taskings(tmp_path):
    from planning.crime import import_crime
    from planning.map3d import deckgl_path
    from simulators.crime import generate, write_force_export

    db_path = make_db(tmp_path / "gateway.db")
    db = open_db(str(db_path))
    import_crime(db, write_force_export(generate(4000, months=4, seed=7), tmp_path / "f.csv"))
    db.conn.close()
    form = "cell_m=150&top=4&max_radius_m=150&min_spacing_m=500&measure=count"
    with LiveServer(make_app(db_path)) as server:
        driver = browser(webgl=True)
        try:
            log_in(driver, server.url, "ann")
            wait_for(driver, "location.pathname === '/day'")
            driver.get(f"{server.url}/plan?{form}")
            wait_for(driver, "document.body.dataset.ready === '1'", 30)
            assert driver.execute_script("return document.body.dataset.proposals") == "4"
            assert int(driver.execute_script("return document.body.dataset.cells")) > 100
            assert "2026-01 to 2026-04" in driver.find_element("id", "map-title").text
            labels = [e.text for e in driver.find_elements("css selector", ".hotspot-label")]
            assert sorted(labels) == ["HS-001", "HS-002", "HS-003", "HS-004"]
            assert "harm-days" in driver.find_element("id", "plan-legend").text
            shot(driver, "plan-harm-map")
            driver.find_element("css selector", "#colour-by option[value=z]").click()
            wait_for(driver, "document.getElementById('plan-legend').textContent"
                             ".includes('Gi* z')")
            driver.find_element("id", "save-draft").click()
            wait_for(driver, "location.pathname === '/fences'")

            if deckgl_path().is_file():
                driver.get(f"{server.url}/plan/map3d?{form}")
                wait_for(driver, "document.body.dataset.rendered || document.body.dataset.error",
                         45)
                assert not driver.execute_script("return document.body.dataset.error")
                assert "crimes" in driver.find_element("id", "deck-stats").text
                shot(driver, "plan-3d")

            driver.get(server.url + "/plan/taskings")
            for field, value in (("from", "2026-03-02"), ("to", "2026-03-03")):
                element = driver.find_element("id", field)
                driver.execute_script("arguments[0].value = arguments[1]", element, value)
            seed = driver.find_element("id", "seed")
            seed.clear()
            seed.send_keys("42")
            driver.find_element("id", "officers").send_keys(
                "early=4521,4522\nlate=4601,team:B-relief")
            driver.find_element("id", "draw").click()  # a form: wait for the next page
            wait_for(driver, "document.getElementById('journeys')", 60)
            journeys = driver.find_element("id", "journeys")
            assert "4521" in journeys.text and "HS-00" in journeys.text
            assert "seed 42" in driver.find_element("id", "taskings-summary").text
            shot(driver, "plan-taskings")
            driver.find_element("id", "import").click()
            wait_for(driver, "document.getElementById('imported')", 60)
            assert "new" in driver.find_element("id", "imported").text

            driver.get(server.url + "/plan/hotspot")
            driver.find_element("id", "show-hotspot").click()
            wait_for(driver, "document.getElementById('hotspot-charts')", 30)
            charts = driver.find_element("id", "hotspot-charts")
            assert len(charts.find_elements("tag name", "svg")) >= 6
            assert "patrol (tasked)" in driver.find_element("id", "patrol-design").text
            shot(driver, "plan-hotspot")
        finally:
            driver.quit()
