"""The 3D harm map: self-contained (deck.gl inlined, nothing fetched) and drawn by a real
headless Chromium with WebGL (SwiftShader), checked in the DOM and in the screenshot."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from planning.crime import load_crimes
from planning.harm import load_harm
from planning.map3d import AssetError, deckgl_js, write_map
from planning.proposals import Settings, propose, to_geojson


@pytest.fixture(scope="module")
def targeting(tmp_path_factory):
    from gateway.schema import open_db
    from planning.crime import import_crime
    from simulators.crime import generate, write_force_export

    tmp = tmp_path_factory.mktemp("map")
    db = open_db(str(tmp / "c.db"))
    import_crime(db, write_force_export(generate(4000, months=3, seed=2), tmp / "f.csv"))
    return propose(load_crimes(db), load_harm(), Settings(cell_m=150, top=3))


def _bundle_or_skip():
    try:
        deckgl_js()
    except AssetError as exc:
        pytest.skip(str(exc))


def test_page_is_self_contained(targeting, tmp_path):
    _bundle_or_skip()
    page = write_map(targeting, tmp_path / "m.html").read_text()
    bundle = deckgl_js().replace("</script", "<\\/script")
    assert bundle in page  # inlined whole
    ours = page.replace(bundle, "")
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=|https?://", ours)
    assert "new deck.Deck" in ours and "PolygonLayer" in ours


def test_chromium_draws_extruded_hot_cells(targeting, tmp_path):
    _bundle_or_skip()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    fences = tmp_path / "p.geojson"
    import json

    fences.write_text(json.dumps(to_geojson(targeting)))
    page = write_map(targeting, tmp_path / "m.html", fences)
    cells = int((targeting.grid.count > 0).sum())
    args = [browser, "--headless", "--no-sandbox", "--no-first-run",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000",
            "--window-size=1000,700",
            # no name resolves: the page must draw with no network at all
            "--host-resolver-rules=MAP * ~NOTFOUND"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert f'data-rendered="{cells}"' in dom.stdout, dom.stderr[-2000:]
    assert "data-error" not in dom.stdout
    png = tmp_path / "m.png"
    subprocess.run([*args, f"--screenshot={png}", page.as_uri()], capture_output=True,
                   timeout=120)
    import matplotlib.image as mpimg

    img = mpimg.imread(png)[:, :, :3]
    red = (img[:, :, 0] > 0.7) & (img[:, :, 1] < 0.35) & (img[:, :, 2] < 0.3)
    grey = (np.abs(img[:, :, 0] - img[:, :, 2]) < 0.05) & (img[:, :, 0] > 0.6)
    assert red.sum() > 500, "no hot (red) columns drawn"
    assert grey.sum() > 20_000, "no cold cells drawn"
