"""The results store: SQLite, one transaction per finished cell."""

from harness.store.db import CellRecord, RunRecord, Store

__all__ = ["CellRecord", "RunRecord", "Store"]
