"""The gateway's processes do not load pandas: sqlite-utils would import it when installed
(OR-tools installs it), and it cost every gateway process about 35 MB of RSS (issue: gateway
RSS 52 -> 90 MB). Regression tests, each in a fresh interpreter."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("pandas") is None,
                                reason="pandas is not installed: nothing to keep out")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(*sys.modules)"],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.parametrize("module", ["gateway.intake.service", "hotspots.cli",
                                    "gateway.web.app", "planning.crime"])
def test_importing_a_gateway_entry_point_does_not_load_pandas(module):
    modules = _modules_after(f"import {module}")
    assert "sqlite_utils" in modules
    assert "pandas" not in modules


def test_pandas_is_still_importable_after_sqlite_utils_was_imported_without_it():
    modules = _modules_after("import gateway.schema\nimport pandas")
    assert "pandas" in modules
