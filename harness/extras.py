"""The optional parts of the harness and the extra that installs each.

The light install (a controller that drives Android phones, stores, reports, scores WER) leaves out what only
some labs need; this one place names the distribution, so every "install this" message says the same.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from harness.errors import UserError

# The name on the package index (`harness` there is an unrelated project); the import package and CLI are `harness`.
DISTRIBUTION = "device-lab-harness"


def install_command(extra: str) -> str:
    """The pip command that adds ``extra`` to this install."""
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def require(module: str, extra: str, needed_by: str) -> ModuleType:
    """``module`` imported, or a UserError naming the extra that installs it (never an ImportError traceback)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{needed_by} needs the '{module.split('.')[0]}' package, which this install leaves out.",
                        fix=install_command(extra)) from None
