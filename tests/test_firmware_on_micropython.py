"""The portable firmware tests (``tests/firmware/test_*.py``), run again on MicroPython.

pytest runs those files on CPython; here each one runs on the real MicroPython unix port through
``tests/firmware/mprun.py``, so integer sizes, missing stdlib pieces and MicroPython's own
string and bytes quirks are caught before a board ever sees the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PORTABLE = sorted((ROOT / "tests" / "firmware").glob("test_*.py"))


@pytest.mark.micropython
@pytest.mark.parametrize("path", PORTABLE, ids=lambda p: p.name)
def test_portable_file_passes_on_micropython(run_micropython, path: Path) -> None:
    output = run_micropython("tests/firmware/mprun.py", str(path.relative_to(ROOT)), timeout=300)
    summary = output.strip().splitlines()[-1]
    passed, failed = map(int, re.fullmatch(r"(\d+) passed, (\d+) failed", summary).groups())
    assert failed == 0, output
    # As many tests ran as pytest collects from the same file.
    defined = len(re.findall(r"^def test_", path.read_text(), flags=re.M))
    assert passed == defined
