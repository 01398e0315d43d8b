"""Each cell's noise floor: how far apart two measurements of the *same* build land.

Runs within one night show process-to-process noise, and the run-level test accounts for
it.  But a whole night can sit higher or lower than the next (another tenant on the
machine, a different frequency policy after a reboot, a warmer lab), and no number of
runs inside one night can see that.  Two sources show it directly:

* A/A calibrations (``harness calibrate PLAN``): the plan measured with every cell twice,
  interleaved, in one run; each cell gives one log ratio between its two copies.
* History: consecutive nights in which a cell's build (sha256) and settings did not
  change; each such pair gives one log ratio of its run-level geometric means.

The floor is ``exp(SIGMAS * rms) - 1`` over those log ratios: a change smaller than
that is what this cell does on its own, whatever the p-value says.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.stats.runlevel import geometric_estimate

SIGMAS = 3.0  # a 3-sigma band: with normal night-to-night noise, 0.3% of unchanged nights exceed it
MIN_PAIRS = 2  # fewer unchanged pairs and the floor is unknown (the threshold alone applies)
RECENT_PAIRS = 30  # the floor follows the lab as it is now, not as it was a season ago


@dataclass(frozen=True)
class NoiseFloor:
    fraction: float  # a change must exceed this (e.g. 0.04 = 4%) to be called
    pairs: int  # how many A/A or unchanged-night pairs it rests on
    rms_log: float
    sources: str  # "2 A/A, 5 unchanged nights"


def identity(row: dict) -> tuple:
    """What makes two cells 'the same measurement' across nights: device and build configuration."""
    return (row["device_id"], row["model"], row["stage"], row["format"], row["backend"], row["quantization"])


def _centre(row: dict) -> float | None:
    est = geometric_estimate(row["run_p50_ms"])
    return None if est is None else est.value


def learn_floors(history: list[dict], exclude_run: str | None = None) -> dict[tuple, NoiseFloor]:
    """Noise floors per cell identity from stored history rows (see ``Store.history``).

    ``exclude_run``: the night being judged; its own difference must not set its floor.
    """
    by_identity: dict[tuple, list[dict]] = {}
    for row in history:
        if row["run_id"] != exclude_run:
            by_identity.setdefault(identity(row), []).append(row)
    floors = {}
    for key, rows in by_identity.items():
        aa, nights = [], []
        by_run: dict[str, list[dict]] = {}
        for row in rows:
            by_run.setdefault(row["run_id"], []).append(row)
        previous = None
        for run_rows in by_run.values():  # history is oldest first
            if run_rows[0].get("calibration"):
                centres = [_centre(r) for r in run_rows]
                if len(centres) == 2 and all(centres):
                    aa.append(math.log(centres[1] / centres[0]))
                continue
            row = run_rows[0]
            if previous is not None and previous["sha256"] == row["sha256"] and previous["settings"] == row["settings"]:
                a, b = _centre(previous), _centre(row)
                if a and b:
                    nights.append(math.log(b / a))
            previous = row
        logs = (aa + nights)[-RECENT_PAIRS:]
        if len(logs) >= MIN_PAIRS:
            rms = math.sqrt(sum(x * x for x in logs) / len(logs))
            floors[key] = NoiseFloor(math.exp(SIGMAS * rms) - 1, len(logs), rms,
                                     f"{len(aa)} A/A, {len(nights)} unchanged night{'s' if len(nights) != 1 else ''}")
    return floors
