"""A 3D harm map: cells extruded by harm and coloured by Gi* z, in one offline HTML file.

deck.gl's standalone bundle (``dist.min.js`` of the npm package ``deck.gl``, MIT licence) is
inlined into the page: nothing is fetched at run time, and there is no base map (map tiles
would need the network). ``make setup`` installs the bundle from the npm registry into
``.venv/share/hotspots/deck.gl.min.js`` (``make map-assets``); ``HOTSPOTS_DECKGL_JS`` points
elsewhere. Drag to pan, right-drag (or shift-drag) to tilt and turn, scroll to zoom; hover a
cell for its figures.
"""

from __future__ import annotations

import html
import json
import os
import sys
from pathlib import Path

import numpy as np

from planning.projection import to_wgs84
from planning.proposals import Targeting

#: Most cells drawn (the highest-harm ones): keeps the page light enough for a Pi's browser.
MAX_CELLS = 20_000
DECKGL_VERSION = "9.4.0"


class AssetError(RuntimeError):
    """The deck.gl bundle is not installed."""


def deckgl_path() -> Path:
    """Where the deck.gl bundle is (``HOTSPOTS_DECKGL_JS`` or the virtualenv's share)."""
    env = os.environ.get("HOTSPOTS_DECKGL_JS")
    return Path(env) if env else Path(sys.prefix) / "share" / "hotspots" / "deck.gl.min.js"


def deckgl_js() -> str:
    """The bundle's text.

    :raises AssetError: when it is missing, with the command that installs it.
    """
    path = deckgl_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        raise AssetError(f"deck.gl bundle not found at {path}: run `make map-assets` (it takes"
                         f" deck.gl {DECKGL_VERSION} from the npm registry with `npm pack`)"
                         ) from None
    if "PolygonLayer" not in text:
        raise AssetError(f"{path} is not deck.gl's standalone bundle (dist.min.js)")
    return text


def map_data(t: Targeting, hotspots_geojson: dict | None = None) -> dict:
    """Cells (outline in degrees, crimes, harm, z) and hot spot outlines for the page."""
    grid = t.grid
    idx = np.flatnonzero(grid.count > 0)
    if len(idx) > MAX_CELLS:
        idx = idx[np.argsort(-grid.harm[idx])[:MAX_CELLS]]
    cells = []
    for i in idx.tolist():
        ring = np.array(grid.polygon_xy(i))
        lon, lat = to_wgs84(ring[:, 0], ring[:, 1])
        cells.append({
            "p": [[round(a, 6), round(b, 6)] for a, b in zip(lon.tolist(), lat.tolist(),
                                                              strict=True)],
            "c": int(grid.count[i]), "h": round(float(grid.harm[i]), 1),
            "z": round(float(t.gi.z[i]), 2), "hot": bool(t.gi.hot[i]),
            "id": grid.cell_label(i),
        })
    outlines = []
    if hotspots_geojson:
        for f in hotspots_geojson.get("features", []):
            g = f.get("geometry") or {}
            props = f.get("properties") or {}
            polys = ([g["coordinates"]] if g.get("type") == "Polygon"
                     else g.get("coordinates", []) if g.get("type") == "MultiPolygon" else [])
            for poly in polys:
                # a little above the ground, so the outline shows between the columns
                outlines.append({"path": [[*pt[:2], 3] for pt in poly[0]],
                                 "id": props.get("id", "")})
    lons = [pt[0] for c in cells for pt in c["p"]] or [0.0]
    lats = [pt[1] for c in cells for pt in c["p"]] or [51.5]
    return {
        "cells": cells, "hotspots": outlines,
        "centre": [float(np.mean([min(lons), max(lons)])), float(np.mean([min(lats), max(lats)]))],
        "max_harm": max([c["h"] for c in cells] or [1.0]) or 1.0,
        "cell_m": round(grid.cell_m, 1), "crimes": t.total_crimes,
        "harm": round(t.total_harm, 1), "hot": int(t.gi.hot.sum()),
    }


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>__TITLE__</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 html, body { margin: 0; height: 100%; background: #10141c; color: #e8e8e8;
   font: 14px system-ui, sans-serif; }
 #map { position: absolute; inset: 0; }
 #panel { position: absolute; top: 10px; left: 10px; background: rgba(16,20,28,.85);
   padding: 10px 14px; border-radius: 6px; max-width: 330px; z-index: 2; }
 #panel h1 { font-size: 16px; margin: 0 0 6px; }
 .ramp { height: 10px; background: linear-gradient(90deg, #3b6fb6, #d9d9d9, #d7301f);
   margin: 4px 0; }
 #tip { position: absolute; pointer-events: none; background: #fff; color: #111;
   padding: 4px 8px; border-radius: 4px; display: none; z-index: 3; font-size: 12px; }
</style></head>
<body>
<div id="map"></div>
<div id="panel"><h1>__TITLE__</h1>
<div id="stats"></div>
<div>height: harm (days of imprisonment, Cambridge CHI) per cell</div>
<div>colour: Gi* z, cold to hot</div><div class="ramp"></div>
<div>yellow outlines: proposed hot spots</div>
<div style="opacity:.7">drag: pan &middot; right-drag: tilt/turn &middot; scroll: zoom</div>
</div>
<div id="tip"></div>
<script>__DECKGL__</script>
<script>
const DATA = __DATA__;
document.getElementById('stats').textContent =
  DATA.crimes + ' crimes, ' + Math.round(DATA.harm).toLocaleString() + ' harm-days, ' +
  DATA.cells.length + ' cells of ' + DATA.cell_m + ' m, ' + DATA.hot + ' hot (Gi*, FDR)';
function colour(z) {
  const t = Math.max(-1, Math.min(1, z / 5));
  const a = [217, 217, 217], b = t < 0 ? [59, 111, 182] : [215, 48, 31], k = Math.abs(t);
  return [0, 1, 2].map(i => Math.round(a[i] + (b[i] - a[i]) * k)).concat([235]);
}
const tip = document.getElementById('tip');
const scale = 1500 / DATA.max_harm;
const deckgl = new deck.Deck({
  parent: document.getElementById('map'),
  initialViewState: {longitude: DATA.centre[0], latitude: DATA.centre[1], zoom: 13.2,
                     pitch: 55, bearing: -25},
  controller: true,
  layers: [
    new deck.PolygonLayer({id: 'cells', data: DATA.cells, getPolygon: d => d.p,
      extruded: true, wireframe: false, getElevation: d => d.h * scale,
      getFillColor: d => colour(d.z), pickable: true,
      material: {ambient: 0.5, diffuse: 0.6, shininess: 20}}),
    new deck.PathLayer({id: 'hotspots', data: DATA.hotspots, getPath: d => d.path,
      getColor: [255, 200, 0], getWidth: 4, widthUnits: 'pixels'}),
  ],
  onHover: info => {
    if (info.object && info.object.p) {
      const d = info.object;
      tip.style.display = 'block';
      tip.style.left = (info.x + 12) + 'px'; tip.style.top = (info.y + 12) + 'px';
      tip.textContent = d.id + ': ' + d.c + ' crimes, ' + d.h + ' harm-days, Gi* z ' + d.z +
        (d.hot ? ' (hot)' : '');
    } else { tip.style.display = 'none'; }
  },
  onAfterRender: () => { document.body.dataset.rendered = String(DATA.cells.length); },
  onError: e => { document.body.dataset.error = String(e); },
});
</script>
</body></html>
"""


def render(t: Targeting, hotspots_geojson: dict | None = None,
           title: str = "Crime harm by cell") -> str:
    """The self-contained page."""
    data = json.dumps(map_data(t, hotspots_geojson), separators=(",", ":"))
    # "</" cannot end the script element early once escaped
    data = data.replace("</", "<\\/")
    js = deckgl_js().replace("</script", "<\\/script")
    return (PAGE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data)
            .replace("__DECKGL__", js))


def write_map(t: Targeting, path: str | Path, hotspots_path: str | Path | None = None) -> Path:
    """Write :func:`render` to ``path``."""
    doc = json.loads(Path(hotspots_path).read_text()) if hotspots_path else None
    path = Path(path)
    path.write_text(render(t, doc), encoding="utf-8")
    return path
