"""The history site: every run and night in the store, and every cell series with its change points."""

from harness.site.render import write_site

__all__ = ["write_site"]
