"""Wall-clock timestamps as stored: UTC, ISO 8601, whole seconds."""

from datetime import datetime, timezone


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
