"""The gateway's processes load neither pandas nor numpy for sqlite-utils: it imports both when
installed (OR-tools installs pandas), and they cost every gateway process about 55 MB of RSS
(issue: gateway RSS 52 -> 90 MB). Regression tests, each in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["gateway.intake.service", "hotspots.cli"])
def test_the_gateway_process_loads_neither_pandas_nor_numpy(module):
    """``hotspots gateway run``: the whole CLI and the intake service."""
    modules = _modules_after(f"import {module}")
    assert "sqlite_utils" in modules
    assert not {"pandas", "numpy", "shapely", "ortools"} & modules


@pytest.mark.parametrize("module", ["gateway.web.app", "planning.crime"])
def test_no_gateway_entry_point_loads_pandas(module):
    modules = _modules_after(f"import {module}")
    assert "sqlite_utils" in modules
    assert "pandas" not in modules


def test_numpy_and_pandas_are_still_importable_after_sqlite_utils_was_imported_without():
    modules = _modules_after("import gateway.schema\nimport numpy\nimport pandas")
    assert {"numpy", "pandas"} <= modules
