"""The station gateway: intake, fleet, reports and the web app (see the README's layout)."""

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """Import sqlite-utils with pandas hidden from it, unless pandas is in use already.

    sqlite-utils imports pandas at import time when it is installed, only to map
    ``pandas.Timestamp`` to ``TEXT`` when it creates a column from values; nothing here stores
    pandas objects (nothing here uses pandas), but OR-tools installs it, and importing it cost
    every gateway process about 35 MB of RSS and a tenth of a second at start. Hidden for that
    one import only: a later ``import pandas`` (by OR-tools, say) works as ever.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # "import pandas" now fails
    try:
        import sqlite_utils  # noqa: F401
    finally:
        if "pandas" in sys.modules and sys.modules["pandas"] is None:
            del sys.modules["pandas"]


# Every gateway module imports sqlite-utils, and this package is imported before any of them.
_import_sqlite_utils_without_pandas()
