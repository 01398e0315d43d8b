"""How long `harness site` takes on a year of nights: 10 devices x 10 builds x 365 nights, target under a minute.

The history is synthetic (harness/nightly/synthetic.py), written into a scratch store through the store's
own API (not timed), with one build 15% slower from night 200 so the site has a change point to show.  The
site is then written exactly as `harness site -o DIR` writes it, timed end to end (wall clock, and the CPU
time of this process and its workers, with the load average: on a shared machine the wall clock says as much
about the neighbours as about the site); ``--profile`` prints a cProfile of the main process.

    python benchmarks/site_scale.py [--nights 365] [--devices 10] [--builds 10] [--keep DIR] [--profile]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.nightly.synthetic import write_synthetic_history  # noqa: E402
from harness.site import write_site  # noqa: E402

TARGET_S = 60.0


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the site's worker processes)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nights", type=int, default=365)
    ap.add_argument("--devices", type=int, default=10)
    ap.add_argument("--builds", type=int, default=10)
    ap.add_argument("--samples", type=int, default=30, help="iterations per cell and night (5 runs), default 30")
    ap.add_argument("--keep", type=Path, help="write the store and the site here instead of a scratch folder")
    ap.add_argument("--profile", action="store_true", help="print the 25 costliest functions (cumulative)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        db = folder / "year.db"
        if not db.exists():
            t0 = time.perf_counter()
            write_synthetic_history(db, nights=args.nights, devices=args.devices, builds=args.builds,
                                    samples=args.samples, step=(min(200, args.nights // 2), 3, 1.15))
            print(f"wrote {args.nights} nights x {args.devices} devices x {args.builds} builds in "
                  f"{time.perf_counter() - t0:.0f} s (not timed)", file=sys.stderr)
        out = folder / "site"
        load = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), cpu_s()
        if args.profile:
            import cProfile
            import pstats

            with cProfile.Profile() as profile:
                write_site(db, out)
            pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        else:
            write_site(db, out)
        elapsed, cpu = time.perf_counter() - t0, cpu_s() - c0
        pages = sum(1 for _ in out.rglob("*.html"))
        size_mb = sum(p.stat().st_size for p in out.rglob("*.html")) / 1e6
    print(f"site of {args.nights} nights x {args.devices} devices x {args.builds} builds: {pages} pages, "
          f"{size_mb:.1f} MB, written in {elapsed:.1f} s = {elapsed / TARGET_S:.2f} x the {TARGET_S:.0f} s target "
          f"({cpu:.1f} CPU s on {os.cpu_count()} cores; load average {load:.1f} when it started)")
    return 0 if elapsed < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
