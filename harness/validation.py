"""What a number must be before the harness takes it: one definition per kind of number.

Every model read from a file (plan, inventory, manifest, corpus) and every numeric command-line option
takes its numbers through these types, so the rules live here once:

* finite: NaN and infinity are not measurements, and a NaN budget would pass every comparison;
* strict: YAML's ``true`` and a quoted ``"1"`` are not numbers (pydantic would turn them into 1);
* in range, with the unit in the name: a timeout of -5 s, port 70000 or a tensor of 10**12 elements is a
  typo found at load time, not a traceback in a cell's log hours later.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Annotated, Any

from pydantic import AllowInfNan, Field, Strict

WEEK_S = 7 * 24 * 3600

Int = Annotated[int, Strict()]
Float = Annotated[float, Strict(), AllowInfNan(False)]  # an integer is a fine float; true and "1" are not

Count = Annotated[int, Strict(), Field(ge=0)]
PositiveCount = Annotated[int, Strict(), Field(ge=1)]
# Lower bounds: a timeout of 1e-300 s or a budget of 1e-320 ms is a typo, not a setting; below these a timeout
# ends every command before it starts, a period samples back to back, a budget fails every build.
MIN_TIMEOUT_S = 0.01
MIN_PERIOD_S = 0.05
MIN_BUDGET_MS = 0.001
MIN_BUDGET_MB = 0.001
Seconds = Annotated[float, Strict(), AllowInfNan(False), Field(ge=MIN_TIMEOUT_S, le=WEEK_S)]  # a timeout
PeriodSeconds = Annotated[float, Strict(), AllowInfNan(False), Field(ge=MIN_PERIOD_S, le=WEEK_S)]  # how often to sample
DurationSeconds = Annotated[float, Strict(), AllowInfNan(False), Field(ge=0, le=WEEK_S)]  # a recording's length
Milliseconds = Annotated[float, Strict(), AllowInfNan(False), Field(ge=MIN_BUDGET_MS, le=3_600_000)]  # a latency budget
Megabytes = Annotated[float, Strict(), AllowInfNan(False), Field(ge=MIN_BUDGET_MB, le=1 << 20)]  # a memory budget
Celsius = Annotated[float, Strict(), AllowInfNan(False), Field(gt=0, lt=150)]  # a phone's CPU temperature
Seed = Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)]  # what every random generator the runners use takes
Threads = Annotated[int, Strict(), Field(ge=1, le=1024)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
Bytes = Annotated[int, Strict(), Field(ge=0)]
Dimension = Annotated[int, Strict(), Field(ge=0, le=1 << 24)]  # one dimension of a tensor's shape
MAX_TENSOR_ELEMENTS = 1 << 26  # 256 MB of float32: more than any input a phone benchmark feeds


# -- command-line options (argparse types: a bad value exits 2 with the option's name and this text) ---------

def _number(text: str, kind: type, example: str = "5") -> float | int:
    """``example``: a value the option itself accepts, for the fix (a fraction's is not 5)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}. "
                                         f"Fix: write digits, e.g. {example}.") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number. Fix: write digits, e.g. {example}.")
    return value


def fraction(text: str) -> float:
    """A relative change such as --threshold: above 0, below 1 (0.05 is 5 %)."""
    value = _number(text, float, example="0.05")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1. Fix: give a fraction (0.05 means 5%).")
    return value


MAX_COUNT = 10**9  # beyond any count of runs or sentences; SQLite's LIMIT overflows past 2**63 - 1


def positive_int(text: str) -> int:
    """A count such as --limit or --jobs: 1 to MAX_COUNT."""
    value = _number(text, int)
    if not 1 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"{text} is not a count from 1 to {MAX_COUNT:,}. "
                                         f"Fix: give a count of 1 or more, at most {MAX_COUNT:,}.")
    return value


def port(text: str) -> int:
    """A TCP port: 1 to 65535."""
    value = _number(text, int)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port. Fix: give a port from 1 to 65535.")
    return value


def port_or_any(text: str) -> int:
    """A TCP port to listen on, or 0 for any free one."""
    return 0 if _number(text, int) == 0 else port(text)


# -- JSON the harness writes --------------------------------------------------------------------------------

def finite_or_null(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None (a figure that could not be computed)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_null(item) for item in value]
    return value


def strict_json(value: Any, **dumps_kwargs: Any) -> str:
    """JSON that every parser reads: json.dumps writes NaN and Infinity bare, which is not JSON; here they are
    null.  Every JSON file or stream the harness writes for people or other tools goes through this."""
    return json.dumps(finite_or_null(value), allow_nan=False, **dumps_kwargs)
