"""Damaged fence sets with recomputed content hashes into both loaders, in bulk (issue 16 item 6).

The portable file ``tests/firmware/test_fence_damage.py`` runs a few hundred mutations on
CPython and on the MicroPython unix port; this runs thousands with the same generator, with
exact accounting: every set is loaded-and-evaluated-without-error or refused with a reason,
and nothing raises anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "firmware"))
from test_fence_damage import run  # noqa: E402


@pytest.mark.parametrize(("name", "seed"), [("sample.json", 101), ("meridian.json", 202)])
def test_thousands_of_damaged_sets_are_refused_or_evaluate_without_error(name, seed,
                                                                         monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parent.parent)
    rounds = 2500
    loaded, refused, failures = run(name, seed, rounds)
    print(f"{name}: {rounds} damaged sets: {loaded} loaded and evaluated, refused {refused},"
          f" {len(failures)} failures")
    assert failures == []
    assert loaded + sum(refused.values()) == rounds
    assert set(refused) == {"structure", "strings", "size"}
    assert loaded > rounds // 5
