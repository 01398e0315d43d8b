"""Report generation over a year of nightly history: time and database size.

Writes a synthetic history (default 365 nights x 10 devices x 10 builds x 200 samples:
36,500 cells, 7.3 million samples) into a scratch database, then times what a nightly
does after measuring: compare the last night with its baseline, read the whole history,
detect steps, and render the report with its charts.  Target: under 30 s on 2 cores.

    python benchmarks/nightly_report.py [--nights 365 --devices 10 --builds 10 --samples 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()

    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "year.db"
        t0 = time.perf_counter()
        runs = write_synthetic_history(db, args.nights, args.devices, args.builds, args.samples,
                                       step=(args.nights - 6, 2, 1.10))
        written_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in Path(tmp).glob("year.db*")) / 1e6
        t0 = time.perf_counter()
        outcome = compare_and_write(db, runs[-1], None, Path(tmp) / "report", threshold=0.05)
        report_s = time.perf_counter() - t0
        html_mb = (Path(tmp) / "report" / "index.html").stat().st_size / 1e6
    cells = args.nights * args.devices * args.builds
    print(f"history: {args.nights} nights x {args.devices} devices x {args.builds} builds x {args.samples} samples "
          f"= {cells} cells, {cells * args.samples:,} samples")
    print(f"database: {size_mb:.0f} MB (written in {written_s:.0f} s)")
    print(f"nightly compare + history + report: {report_s:.1f} s (target < 30 s); report {html_mb:.1f} MB; "
          f"{sum(c.kind == 'history' for c in outcome.checks)} history steps flagged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
