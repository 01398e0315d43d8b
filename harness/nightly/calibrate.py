"""``harness calibrate PLAN``: an A/A run that teaches the nightly each cell's noise floor.

The plan's builds are measured twice in one run, every cell beside its copy in each
round, exactly as a nightly measures them.  The two copies are the same bytes, so any
difference between them is noise; stored as a calibration run, it joins the unchanged
nights in :mod:`harness.nightly.noise`.  Calibration runs are never baselines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.nightly.noise import NoiseFloor, learn_floors
from harness.run.engine import AA_SUFFIX, identity_of, run_plan
from harness.stats.compare import compare_runs
from harness.store import Store


@dataclass
class AAResult:
    device_id: str
    subject: str
    ratio: float
    interval: tuple[float, float] | None
    verdict: str  # what the nightly rule says of two copies of one build: anything but no change is a false alarm
    floor: NoiseFloor | None  # the floor learned from every calibration and unchanged night so far


def calibrate(plan: Path, db: Path, inventory: Path | None, threshold: float, resume: str | None = None,
              progress=None, measure=None) -> tuple[str, list[AAResult]]:
    """Run the A/A calibration; return its run id and, per cell, the A/A ratio and the floor now learned."""
    outcome = run_plan(plan, db, inventory_path=inventory, resume=resume, progress=progress, calibration=True,
                       measure=measure)
    with Store(db) as store:
        plan_name = store.run(outcome.run_id).plan_name
        history = store.history(plan_name)
    floors = learn_floors(history)
    pairs: dict[tuple, dict[bool, dict]] = {}
    for row in history:
        if row["run_id"] == outcome.run_id:
            pairs.setdefault(identity_of(row["device_id"], row), {})[row["cell_key"].endswith(AA_SUFFIX)] = row
    results = []
    for key, both in sorted(pairs.items()):
        if len(both) != 2:
            continue
        a, b = both[False], both[True]
        cmp = compare_runs(a["run_p50_ms"], b["run_p50_ms"], paired=True, threshold=threshold)
        interval = (cmp.ratio_ci.low, cmp.ratio_ci.high) if cmp.ratio_ci else None
        results.append(AAResult(key[0], " ".join(key[1:3]) + f" {key[5]} {key[4]}", cmp.ratio, interval,
                                cmp.verdict, floors.get(key)))
    return outcome.run_id, results
