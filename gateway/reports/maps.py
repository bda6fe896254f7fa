"""Maps and plots: a self-contained HTML map (Leaflet, inlined) and PNG time-of-day plots.

The map must open on a station PC with no internet, so Leaflet's script and style sheet are
copied into the page from Debian's ``libjs-leaflet`` (``/usr/share/javascript/leaflet``; another
folder can be named with ``HOTSPOTS_LEAFLET_DIR``). No tiles are loaded unless a tile URL is
given: the hot spots, tracks and visits are drawn on a plain background, as vectors, which is
all a supervisor needs to see who went where.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from collections.abc import Iterable
from pathlib import Path

from gateway.reports.dwell import DailyStats, format_duration, format_time
from gateway.reports.exports import Track
from gateway.reports.visits import HotSpotSet, Visit

LEAFLET_DIRS = ("/usr/share/javascript/leaflet", "/usr/share/nodejs/leaflet/dist")
#: Patrol-minutes at which a hot spot gets the darkest colour.
FULL_MINUTES = 60.0
RAMP = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
#: Lower bound (patrol-minutes) of each colour of :data:`RAMP`; 15 minutes is one tasked visit.
THRESHOLDS = (0, 5, 10, 15, 20, 30, 45, FULL_MINUTES)
UNPATROLLED = "#9e9e9e"
TRACK_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
                 "#7f7f7f", "#ff7f0e", "#d62728")


class MapError(RuntimeError):
    """The map cannot be made (Leaflet missing); the message says what to install."""


def leaflet_assets() -> tuple[str, str]:
    """Leaflet's JavaScript and CSS text.

    :raises MapError: when no copy of Leaflet is installed.
    """
    dirs = [os.environ["HOTSPOTS_LEAFLET_DIR"]] if os.environ.get("HOTSPOTS_LEAFLET_DIR") else []
    for folder in (*dirs, *LEAFLET_DIRS):
        js, css = Path(folder) / "leaflet.js", Path(folder) / "leaflet.css"
        if js.is_file() and css.is_file():
            return js.read_text(encoding="utf-8"), css.read_text(encoding="utf-8")
    raise MapError("Leaflet is not installed: run `sudo apt-get install -y libjs-leaflet` "
                   "(or set HOTSPOTS_LEAFLET_DIR to a folder with leaflet.js and leaflet.css)")


def colour_for(minutes: float) -> str:
    """Fill colour for a hot spot's patrol-minutes: grey for none, darker for more."""
    if minutes <= 0:
        return UNPATROLLED
    step = max(k for k, low in enumerate(THRESHOLDS) if minutes >= low)
    return RAMP[step]


def legend_entries() -> list[tuple[str, str]]:
    """``(colour, label)`` for every colour :func:`colour_for` gives, each label the range of
    patrol-minutes it stands for (an earlier legend read "0 min", "≥ 0 min": two entries for
    nothing)."""
    out = [(UNPATROLLED, "not patrolled")]
    for k, colour in enumerate(RAMP):
        low = THRESHOLDS[k]
        if k == 0:
            label = f"under {THRESHOLDS[1]:g} min"
        elif k == len(RAMP) - 1:
            label = f"{low:g} min or more"
        else:
            label = f"{low:g}–{THRESHOLDS[k + 1]:g} min"
        out.append((colour, label))
    return out


def track_lines(track_list: Iterable[Track], simplify_m: float = 0.0) -> list[dict]:
    """Each track segment as ``{label, officer, device_id, coords}`` (``[lat, lon]`` pairs),
    simplified to within ``simplify_m`` metres when asked (a busy day in a browser: 200
    officers' 10-hour tracks). A segment of one fix (a lone fix between silences, or the one fix
    a day holds) has one pair: the maps draw it as a dot, it is never left out."""
    from shapely.geometry import LineString

    tolerance = simplify_m / 111_000
    out = []
    for track in track_list:
        for device_id, points in track.segments:
            coords = [(la, lo) for _, la, lo in points]
            if tolerance > 0 and len(coords) > 2:
                coords = list(LineString(coords).simplify(tolerance).coords)
            out.append({"label": track.label, "officer": track.officer, "device_id": device_id,
                        "coords": [[round(la, 6), round(lo, 6)] for la, lo in coords]})
    return out


def _script_json(value) -> str:
    # "</" inside a <script> would end it early.
    return json.dumps(value, separators=(",", ":")).replace("</", "<\\/")


def map_html(hotspots: HotSpotSet, stats: Iterable[DailyStats], track_list: Iterable[Track],
             visits: Iterable[Visit], title: str, tz: dt.tzinfo = dt.UTC,
             tiles_url: str | None = None) -> str:
    """The whole page as text: hot spots coloured by patrol-minutes, tracks, visit pop-ups."""
    js, css = leaflet_assets()
    minutes = {s.hotspot: s.patrol_minutes for s in stats}
    visits = list(visits)
    by_spot: dict[str, list[Visit]] = {}
    for v in visits:
        by_spot.setdefault(v.hotspot, []).append(v)

    def visit_line(v: Visit) -> str:
        return (f"{html.escape(v.who)}: {format_time(v.enter, tz)}–{format_time(v.leave, tz)}"
                f" ({format_duration(v.dwell_s)})")

    spots = []
    for i, hid in enumerate(hotspots.ids):
        mins = minutes.get(hid, 0.0)
        lines = "<br>".join(visit_line(v) for v in by_spot.get(hid, [])) or "no visits"
        spots.append(hotspots.geojson_feature(
            i, patrol_minutes=mins, colour=colour_for(mins),
            popup=f"<b>{html.escape(hotspots.names[i])}</b> ({html.escape(hid)})<br>"
                  f"patrol-minutes: {mins:g}<br>{lines}"))
    index = {h: i for i, h in enumerate(hotspots.ids)}
    marks = []
    for v in visits:
        if v.hotspot in index:
            p = hotspots.lonlat[index[v.hotspot]].representative_point()
            marks.append({"lat": p.y, "lon": p.x, "popup": f"<b>{html.escape(v.hotspot)}</b><br>"
                          + visit_line(v)})
    colours: dict[str, str] = {}
    lines_out = []
    for line in track_lines(track_list):
        colour = colours.setdefault(line["label"],
                                    TRACK_COLOURS[len(colours) % len(TRACK_COLOURS)])
        lines_out.append({"colour": colour, "who": line["label"],
                          "label": f"{line['label']} ({line['device_id']})",
                          "coords": line["coords"]})
    data = {"hotspots": {"type": "FeatureCollection", "features": spots}, "tracks": lines_out,
            "visits": marks, "tiles": tiles_url, "title": title,
            "officers": [[who, colour] for who, colour in colours.items()]}
    legend = "".join(f'<i style="background:{c}"></i>{html.escape(label)}<br>'
                     for c, label in legend_entries())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}</style>
<style>html,body,#map{{height:100%;margin:0}} #map{{background:#f4f4f0}}
.legend{{background:#fff;padding:6px 8px;font:12px sans-serif;line-height:18px}}
.legend.officers{{max-height:45vh;overflow:auto}}
.legend i{{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:middle}}
</style></head>
<body><div id="map"></div>
<script>{js}</script>
<script>
const DATA = {_script_json(data)};
const map = L.map('map', {{preferCanvas: false}});
if (DATA.tiles) {{ L.tileLayer(DATA.tiles, {{maxZoom: 19}}).addTo(map); }}
// The view must be set before vector layers are added, so build them first, fit, then add.
const spots = L.geoJSON(DATA.hotspots, {{
  style: f => ({{color: '#333', weight: 1, fillColor: f.properties.colour, fillOpacity: 0.7,
                className: 'hs-hotspot'}}),
  onEachFeature: (f, layer) => layer.bindPopup(f.properties.popup)
}});
const layers = [spots];
for (const t of DATA.tracks) {{
  // A segment of one fix is a dot: a one-point polyline draws nothing.
  layers.push((t.coords.length > 1
    ? L.polyline(t.coords, {{color: t.colour, weight: 2, className: 'hs-track'}})
    : L.circleMarker(t.coords[0], {{radius: 4, color: t.colour, weight: 2, className: 'hs-track'}}))
    .bindTooltip(t.label));
}}
for (const v of DATA.visits) {{
  layers.push(L.circleMarker([v.lat, v.lon], {{radius: 5, color: '#000', weight: 1,
    fillColor: '#fff', fillOpacity: 1, className: 'hs-visit'}}).bindPopup(v.popup));
}}
// Each officer's name where their track ends, so nobody has to click to know who is who.
const ends = new Map();
for (const t of DATA.tracks) ends.set(t.who, [t.coords[t.coords.length - 1], t.colour]);
for (const [who, [at, colour]] of ends) {{
  layers.push(L.circleMarker(at, {{radius: 3, color: colour, className: 'hs-officer'}})
    .bindTooltip(who.replace(/[&<>]/g, ''), {{permanent: true, direction: 'right'}}));
}}
const group = L.featureGroup(layers);
map.fitBounds(group.getBounds(), {{padding: [20, 20]}});
group.addTo(map);
L.control.scale({{imperial: false, position: 'bottomleft'}}).addTo(map);
const title = L.control({{position: 'topright'}});
title.onAdd = () => {{ const d = L.DomUtil.create('div', 'legend title');
  d.textContent = DATA.title; return d; }};
title.addTo(map);
const legend = L.control({{position: 'bottomleft'}});
legend.onAdd = () => {{ const d = L.DomUtil.create('div', 'legend');
  d.innerHTML = '<b>hot spot patrol-minutes</b><br>{legend}'; return d; }};
legend.addTo(map);
const names = L.control({{position: 'bottomright'}});
names.onAdd = () => {{ const d = L.DomUtil.create('div', 'legend officers');
  const esc = s => s.replace(/[&<>"']/g, c => '&#' + c.charCodeAt(0) + ';');
  d.innerHTML = '<b>officers (track colour)</b><br>' + (DATA.officers.length ? DATA.officers.map(
    ([who, c]) => '<i style="background:' + c + '"></i>' + esc(who)).join('<br>') : 'no tracks');
  return d; }};
names.addTo(map);
document.body.dataset.hotspots = DATA.hotspots.features.length;
document.body.dataset.tracks = DATA.tracks.length;
document.body.dataset.visits = DATA.visits.length;
</script>
<noscript>{html.escape(title)}: this map needs JavaScript.</noscript>
</body></html>
"""


def write_map(path: Path, *args, **kwargs) -> Path:
    """Write :func:`map_html` to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(map_html(*args, **kwargs), encoding="utf-8")
    return path


def plot_time_of_day(stats: list[DailyStats], out_dir: Path, tz_name: str = "UTC",
                     ) -> list[Path]:
    """PNG bar charts of patrol-minutes per local hour: all hot spots, then each visited one."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    charts = [("all", "all hot spots",
               [sum(s.hourly_patrol_s[h] for s in stats) / 60 for h in range(24)])]
    charts += [(s.hotspot, s.name or s.hotspot, [x / 60 for x in s.hourly_patrol_s])
               for s in stats if s.patrol_s]
    day = stats[0].date if stats else ""
    paths = []
    for key, label, minutes in charts:
        fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
        ax.bar(range(24), minutes, width=0.8, color="#fc4e2a")
        ax.set_xticks(range(0, 24, 2))
        ax.set_xlim(-0.6, 23.6)
        ax.set_xlabel(f"hour of day ({tz_name})")
        ax.set_ylabel("patrol-minutes")
        ax.set_title(f"{label}: presence by time of day, {day}")
        fig.tight_layout()
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
        path = out_dir / f"time_of_day_{safe}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths
