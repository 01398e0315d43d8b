"""Each cell's night-to-night spread: how far two occasions of the *same* build land apart
beyond what their runs explain.

Runs within one night show process-to-process noise, and the run-level test accounts for
it.  But a whole night can sit higher or lower than the next (another tenant on the
machine, a different frequency policy after a reboot, a warmer lab), and no number of
runs inside one night can see that.  It shows between *occasions* on which the bytes and
settings did not change: consecutive nights, and separate ``harness calibrate`` runs (an
A/A run's first copy is one occasion).  For each such pair, with d the log ratio of the
two occasions' run-level geometric means and v the part of d's variance their runs
predict (s_a^2/R_a + s_b^2/R_b):

    E[d^2] = v + 2 * night_sd^2   =>   night_sd^2 = mean(d^2 - v) / 2   (floored at 0)

The nightly adds 2 * night_sd^2 to the variance of its test, and a change must also exceed
the noise floor, ``exp(2.576 * sqrt(2) * night_sd) - 1``: what night-to-night spread alone
explains at 99%.  ``tests/test_noise.py`` checks the estimate on simulated nights with a
known night_sd.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.stats.runlevel import log_values

Z99 = 2.5758  # two-sided 99%
MIN_PAIRS = 2  # fewer unchanged pairs and the spread is unknown (taken as 0: runs and threshold alone decide)
RECENT_PAIRS = 30  # the spread follows the lab as it is now, not as it was a season ago


@dataclass(frozen=True)
class NoiseFloor:
    night_sd: float  # log-scale sd of a night's level beyond its runs' spread
    fraction: float  # the change night-to-night spread alone explains at 99% (e.g. 0.04 = 4%)
    pairs: int  # how many unchanged occasion pairs it rests on
    sources: str  # "1 calibration pair, 5 unchanged nights"


def _level(row: dict) -> tuple[float, float, int] | None:
    """(mean log run median, its variance over runs / R, runs) of one occasion."""
    return _level_of(tuple(row["run_p50_ms"]))


@lru_cache(maxsize=65536)  # the history site learns each night's floors from the same recent occasions again
def _level_of(run_p50_ms: tuple) -> tuple[float, float, int] | None:
    logs = log_values(run_p50_ms)
    if logs.size < 2:
        return None
    return float(logs.mean()), float(logs.var(ddof=1)) / logs.size, int(logs.size)


def learn_floors(history: list[dict], exclude_run: str | None = None) -> dict[tuple, NoiseFloor]:
    """Night-to-night spread per cell identity from stored history rows (see ``Store.history``).

    ``exclude_run``: the night being judged; its own difference must not set its floor.
    """
    from harness.run.engine import AA_SUFFIX, identity_of

    by_identity: dict[tuple, list[dict]] = {}
    for row in history:
        if row["run_id"] != exclude_run and not row["cell_key"].endswith(AA_SUFFIX):
            by_identity.setdefault(identity_of(row["device_id"], row), []).append(row)
    floors = {}
    for key, rows in by_identity.items():
        excess, kinds = [], []
        for before, after in zip(rows, rows[1:]):  # history is oldest first: consecutive occasions
            if before["sha256"] != after["sha256"] or before["settings"] != after["settings"]:
                continue
            a, b = _level(before), _level(after)
            if a is None or b is None:
                continue
            d = b[0] - a[0]
            excess.append(d * d - a[1] - b[1])
            kinds.append(before["calibration"] or after["calibration"])
        excess, kinds = excess[-RECENT_PAIRS:], kinds[-RECENT_PAIRS:]
        if len(excess) >= MIN_PAIRS:
            night_sd = math.sqrt(max(0.0, float(np.mean(excess))) / 2)
            cal = sum(kinds)
            floors[key] = NoiseFloor(night_sd, math.exp(Z99 * math.sqrt(2) * night_sd) - 1, len(excess),
                                     f"{cal} calibration pair{'s' if cal != 1 else ''}, "
                                     f"{len(excess) - cal} unchanged night{'s' if len(excess) - cal != 1 else ''}")
    return floors
