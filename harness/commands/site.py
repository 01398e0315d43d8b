"""harness site: every stored run and night, and each build's history, as a static site."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, db_arg, existing_db


def add_parser(sub) -> None:
    p = sub.add_parser("site", help="render every stored run and night, and each build's history, as a static site",
                       formatter_class=RAW,
                       description="Rebuilt from the database alone, nothing re-measured: index.html lists every run "
                                   "with its date, plan,\ndevices and verdict; one page per night, and one per series "
                                   "(a device and build configuration\nacross a plan's nights) with its history chart "
                                   "and E-Divisive change points (Apache Otava).",
                       epilog="example:\n  harness site -o reports/site && xdg-open reports/site/index.html")
    p.add_argument("-o", "--output", type=Path, required=True,
                   help="output folder (index.html, nights/ and series/ are written there)")
    p.add_argument("--threshold", type=number.fraction, default=0.05,
                   help="smallest relative change a change point or a night-to-night check calls (default: 0.05)")
    db_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.site import write_site

    target = write_site(existing_db(args.db), args.output, args.threshold)
    print(f"history site written: {target}", file=sys.stderr)
    return 0
