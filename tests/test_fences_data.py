"""The precompiled fence sets in ``tests/data/fences/`` are what the compiler makes today.

The portable engine tests (``tests/firmware/test_fence_engine.py``) cannot run the compiler or
shapely on MicroPython, so they read sets and shapely's expected answers from files. This test
rebuilds those files and fails if any differs; regenerate them with
``.venv/bin/python tests/test_fences_data.py``.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "fences"
SOURCES = {
    "sample": ROOT / "fences" / "sample.geojson",
    "meridian": DATA / "meridian.geojson",
}
BAND_M = 0.2  # points this close to a boundary are left out of the expected answers
NEAR_M = 200.0  # depths are recorded for fences within this distance
POINTS = 600


def build() -> dict[str, str]:
    """Return ``{file name: text}`` for every generated file."""
    from fences.compile import compile_geojson
    from fences.reference import ReferenceFences

    out = {}
    for name, source in SOURCES.items():
        # Tolerance 0: the expected answers come from the source outlines, unsimplified.
        out[f"{name}.json"] = compile_geojson(source, tolerance_m=0).text + "\n"
    ref = ReferenceFences(SOURCES["meridian"])
    rng = random.Random(4)
    rows = []
    while len(rows) < POINTS:
        lat = rng.randint(51_479_500, 51_491_000)
        lon = rng.randint(-3_500, 3_500)
        depths = [ref.depth_m(i, lat, lon) for i in range(len(ref))]
        if any(abs(d) < BAND_M for d in depths):
            continue
        rows.append([lat, lon, ref.locate(lat, lon),
                     [round(d * 100) if abs(d) <= NEAR_M else None for d in depths]])
    lines = ["["] + [json.dumps(r) + "," for r in rows[:-1]] + [json.dumps(rows[-1]), "]"]
    out["meridian_points.json"] = "\n".join(lines) + "\n"
    return out


def test_precompiled_fence_files_are_up_to_date() -> None:
    stale = [name for name, text in build().items()
             if not (DATA / name).exists() or (DATA / name).read_text() != text]
    assert not stale, (f"regenerate with: .venv/bin/python tests/test_fences_data.py "
                       f"(stale: {stale})")


def test_expected_points_cover_inside_outside_holes_and_overlaps() -> None:
    rows = json.loads((DATA / "meridian_points.json").read_text())
    inside = [r for r in rows if r[2]]
    assert len(inside) > 50
    assert any(len(r[2]) == 2 for r in rows), "no point in the overlap"
    assert any(r[1] < 0 for r in inside) and any(r[1] > 0 for r in inside)
    assert any(r[3][0] is not None and r[3][0] < 0 and r[3][0] > -1000
               and -400 < r[1] < 400 for r in rows), "no point in the square's hole"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    for file_name, text in build().items():
        (DATA / file_name).write_text(text)
        print("wrote", DATA / file_name)
