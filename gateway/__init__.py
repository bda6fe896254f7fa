"""The station gateway: intake, fleet, reports and the web app (see the README's layout)."""

import sys


def _import_sqlite_utils_lean() -> None:
    """Import sqlite-utils with pandas and numpy hidden from it, unless they are loaded already.

    sqlite-utils imports both at import time when they are installed, only to know their
    scalar types (``pandas.Timestamp``, ``numpy.int64`` ...) when it creates a column from
    values. Nothing here does: every table is created by :mod:`gateway.schema` with Python
    types, and no value stored is a pandas or numpy one. But OR-tools installs pandas, and
    loading the two cost every gateway process about 55 MB of RSS (``hotspots gateway run``
    idle: 91 MB with both, 36 MB without) and a fifth of a second at start. They are hidden
    for that one import only: a later ``import numpy`` (planning, shapely) or ``import pandas``
    (OR-tools) works as ever; sqlite-utils then still does not map their types.
    """
    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # "import NAME" now fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


# Every gateway module imports sqlite-utils, and this package is imported before any of them.
_import_sqlite_utils_lean()
