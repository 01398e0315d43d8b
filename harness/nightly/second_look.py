"""A second look at changed builds the first look could not call.

A build whose bytes changed is measured beside last night's bytes, paired by round.  When
those rounds are too noisy to call a change of the threshold's size (the minimum detectable
effect is above it), the nightly measures the same pair for as many rounds again, in the
same interleaved order, and decides on all of them.  Both looks test at
:data:`~harness.nightly.checks.PAIRED_ALPHA` (half the nightly's level), so a build that did
not change is called changed no more often than with one look; a real slowdown hidden by a
noisy first look is found by the second.  Only undecided pairs pay for it; unchanged builds
never do.
"""

from __future__ import annotations

from pathlib import Path

from harness.nightly.checks import paired_gate
from harness.run.engine import REF_SUFFIX
from harness.store import Store

LOOKS = 2  # the second look measures as many rounds again as the plan's runs


def undecided_pairs(db: Path, run_id: str, threshold: float) -> dict[str, int]:
    """Cell key -> rounds wanted in all, for both cells of every pair the first look left too noisy to call
    (and for pairs whose second look was interrupted).  Empty when every pair was decided."""
    with Store(db) as store:
        cells = {c.cell_key: c for c in store.cells(run_id)}
    out: dict[str, int] = {}
    for key, reference in cells.items():
        now = cells.get(key[: -len(REF_SUFFIX)]) if key.endswith(REF_SUFFIX) else None
        if now is None or now.status != "ok" or reference.status != "ok":
            continue
        planned = now.runs_planned
        measured = max(len(reference.runs), len(now.runs))
        if measured > planned:
            undecided = measured < LOOKS * planned  # a second look that was interrupted: finish it
        else:
            undecided = paired_gate(reference, now, threshold=threshold).verdict == "too noisy"
        if undecided:
            out[key] = out[now.cell_key] = LOOKS * planned
    return out
