"""Harm weights: how much one crime of a category weighs, in days of imprisonment.

The Cambridge Crime Harm Index (Sherman, Neyroud & Neyroud 2016) weighs an offence by the days
of imprisonment of the starting point of its sentencing guideline for a first offender; counts
alone would rank shoplifting with wounding. ``harm_weights.csv`` beside this module ships
defaults for the police.uk crime types and the Home Office offence groups, each row with its
``source`` and an ``estimate`` flag: ``yes`` where the figure is our reading of a guideline
(or a mixed category), not a figure checked against the published CCHI table. A force loads its
own index with ``--harm FILE`` (columns ``category,harm_days``, optionally ``scheme``,
``estimate``, ``source``; a ``category`` may also be an offence code).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TABLE = Path(__file__).with_name("harm_weights.csv")


class HarmError(ValueError):
    """A harm table cannot be used; the message lists the lines to fix."""


def normalise(category: str) -> str:
    """Lower case, one space between words: ``Violence-and sexual_offences`` and ``violence
    and sexual offences`` name the same category (police.uk's API uses slugs)."""
    return re.sub(r"[\s_\-]+", " ", category.strip().lower())


@dataclass
class HarmWeight:
    """One row of the table."""

    scheme: str
    category: str
    harm_days: float
    estimate: bool
    source: str


@dataclass
class HarmTable:
    """Category (or offence code) to weight; :meth:`weight` answers ``None`` when unknown."""

    rows: list[HarmWeight]
    path: str
    _index: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for row in self.rows:
            self._index.setdefault(normalise(row.category), row.harm_days)

    def weight(self, category: str, offence_code: str = "") -> float | None:
        """Days of harm for a crime: its offence code's row if the table has one, else its
        category's, else ``None``."""
        if offence_code:
            w = self._index.get(normalise(offence_code))
            if w is not None:
                return w
        return self._index.get(normalise(category))

    def weights(self, categories: list[str], codes: list[str] | None = None,
                unknown: float = 0.0) -> tuple[list[float], dict[str, int]]:
        """Weights for many crimes, and how many crimes of each category had none (weighted
        ``unknown``)."""
        out, missing = [], {}
        codes = codes or [""] * len(categories)
        cache: dict[tuple[str, str], float | None] = {}
        for cat, code in zip(categories, codes, strict=True):
            key = (cat, code)
            if key not in cache:
                cache[key] = self.weight(cat, code)
            w = cache[key]
            if w is None:
                missing[cat] = missing.get(cat, 0) + 1
                w = unknown
            out.append(w)
        return out, missing


def load_harm(path: str | Path | None = None) -> HarmTable:
    """Load a harm table (the shipped defaults when ``path`` is None).

    :raises HarmError: when the file cannot be read, lacks ``category``/``harm_days`` or has
        bad rows (every bad line is listed).
    """
    source = Path(path) if path else DEFAULT_TABLE
    try:
        text = source.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise HarmError(f"cannot read harm table {source}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(io.StringIO(text))
    fields = [(f or "").strip().lower() for f in reader.fieldnames or []]
    reader.fieldnames = fields
    if not {"category", "harm_days"} <= set(fields):
        raise HarmError(f"harm table {source} needs the columns category and harm_days "
                        f"(found: {', '.join(fields) or 'none'})")
    rows, problems = [], []
    for row in reader:
        line = reader.line_num
        cat = (row.get("category") or "").strip()
        try:
            if not cat:
                raise ValueError("category is empty")
            days = float(row.get("harm_days") or "")
            if not days >= 0:
                raise ValueError("harm_days must be zero or more")
        except ValueError as exc:
            problems.append(f"line {line}: {exc}" if "harm_days" in str(exc) or not cat
                            else f"line {line}: harm_days {row.get('harm_days')!r} is not a"
                                 " number")
            continue
        est = (row.get("estimate") or "").strip().lower() in ("yes", "y", "true", "1")
        rows.append(HarmWeight((row.get("scheme") or "").strip(), cat, days, est,
                               (row.get("source") or "").strip()))
    if problems:
        raise HarmError(f"harm table {source}: {len(problems)} bad line(s):\n"
                        + "\n".join(problems))
    if not rows:
        raise HarmError(f"harm table {source} has no rows")
    return HarmTable(rows, str(source))
