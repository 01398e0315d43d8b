"""Change points on replayed history: E-Divisive means (Apache Otava: what `harness site` shows and the nightly's
history check reports), on stored series with steps injected where we know them, and how many nights after a step
began the nightly could first report it (``first_detected``: the detector run on each night's history so far).

A synthetic store is written through the store's own API (harness/nightly/synthetic.py: 4 phones x 10
builds, ``--nights`` nights, 5 runs a night) and read back as `harness site` reads it: one level per night,
the run-level geometric mean of the runs' P50s.  Each trial takes one stored series, multiplies it by a
night-to-night effect (lognormal, ``--night-sd``: what a real lab adds and the synthetic store does not) and
by up to two injected steps (each lasting until the next, sizes drawn from ``--sizes``, either direction,
at least ``MIN_GAP`` nights from each other and from the ends).  A step counts as found when a detected
point lies within ``--tolerance`` nights of it; every other detected point is a false change point.
The lag is counted for the newest found step of each series, the one the nightly reports.

    python benchmarks/changepoints.py [--nights 120] [--trials 200] [--night-sd 0.01 0.03] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.nightly.changepoints import change_points  # noqa: E402
from harness.nightly.history import first_detected  # noqa: E402
from harness.nightly.synthetic import write_synthetic_history  # noqa: E402
from harness.site.model import series_pages  # noqa: E402
from harness.store import Store  # noqa: E402

MIN_GAP = 15  # nights between injected steps, and from either end


def stored_levels(nights: int, seed: int) -> list[np.ndarray]:
    """Every series' nightly levels, written to a scratch store and read back as the site reads them."""
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "replay.db"
        write_synthetic_history(db, nights=nights, devices=4, builds=10, samples=10, seed=seed)
        with Store(db) as store:
            rows = [r for r in store.history_of_every_plan() if not r["calibration"]]
    return [np.asarray(page.series.p50_ms) for page in series_pages(rows)]


def inject(levels: np.ndarray, rng, night_sd: float, sizes: list[float]) -> tuple[np.ndarray, list[int]]:
    """``levels`` with a night effect and 0, 1 or 2 steps; returns the series and the steps' first nights."""
    n = levels.size
    count = int(rng.integers(0, 3))
    steps: list[int] = []
    while len(steps) < count:
        at = int(rng.integers(MIN_GAP, n - MIN_GAP))
        if all(abs(at - s) >= MIN_GAP for s in steps):
            steps.append(at)
    factor = np.ones(n)
    for at in sorted(steps):
        factor[at:] *= 1 + float(rng.choice(sizes)) * float(rng.choice([-1, 1]))
    return levels * factor * rng.lognormal(0, night_sd, n), sorted(steps)


def score(found: list[int], truth: list[int], tolerance: int) -> tuple[int, int]:
    """(true steps found, false change points)."""
    hit = sum(any(abs(f - t) <= tolerance for f in found) for t in truth)
    false = sum(not any(abs(f - t) <= tolerance for t in truth) for f in found)
    return hit, false


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=120, help="nights per series (default 120)")
    ap.add_argument("--trials", type=int, default=200, help="injected series per night-to-night spread (default 200)")
    ap.add_argument("--night-sd", type=float, nargs="+", default=[0.01, 0.03],
                    help="log-scale sd of a night's level beyond its runs (default 0.01 0.03)")
    ap.add_argument("--sizes", type=float, nargs="+", default=[0.05, 0.10, 0.20],
                    help="relative step sizes to inject (default 0.05 0.10 0.20)")
    ap.add_argument("--tolerance", type=int, default=2, help="nights a found point may be off (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    started = time.perf_counter()
    series = stored_levels(args.nights, args.seed)
    print(f"{len(series)} stored series of {args.nights} nights read back in {time.perf_counter() - started:.1f} s; "
          f"{args.trials} trials per spread, steps of {', '.join(f'{s:.0%}' for s in args.sizes)}, "
          f"tolerance {args.tolerance} nights")
    print(f"{'night sd':>8}  {'steps':>5}  {'E-Divisive found':>16}  {'false':>5}  {'s':>5}  "
          f"{'nightly lag (nights): median':>28}  {'max':>4}")
    rng = np.random.default_rng(args.seed)
    for night_sd in args.night_sd:
        steps, hits, false, spent, lags = 0, 0, 0, 0.0, []
        for trial in range(args.trials):
            values, truth = inject(series[trial % len(series)], rng, night_sd, args.sizes)
            steps += len(truth)
            t0 = time.perf_counter()
            found = [cp.index for cp in change_points(list(values))]
            spent += time.perf_counter() - t0
            hit, wrong = score(found, truth, args.tolerance)
            hits, false = hits + hit, false + wrong
            if found and truth and abs(found[-1] - truth[-1]) <= args.tolerance:
                lags.append(first_detected(list(values), found[-1], 0.05) - truth[-1])
        print(f"{night_sd:>8.2f}  {steps:>5}  {hits:>5} ({hits / steps:>6.1%})  {false:>5}  {spent:>5.1f}  "
              f"{np.median(lags):>28.0f}  {max(lags):>4}")
    print(f"total {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
