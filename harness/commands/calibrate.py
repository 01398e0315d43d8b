"""harness calibrate: an A/A run that learns each cell's noise floor."""

from __future__ import annotations

import sys

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, emit_json, lab_arg, lab_measurer, measuring_args, resuming
from harness.commands.measuring import STOPPED_HELP, measuring
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="A/A run: measure each build twice to learn each cell's noise floor", formatter_class=RAW,
        description="Measure every latency build of PLAN twice in one run, each beside its copy in every round, as\n"
                    "a nightly would. The copies are the same bytes, so their difference is noise: together with\n"
                    "consecutive nights in which a build did not change, it sets each cell's noise floor, and the\n"
                    "nightly calls a change only when it is larger than that floor (and than --threshold).\n"
                    "Run it once when a lab or plan is new, and again after changing devices or settings.",
        epilog=STOPPED_HELP + "\n\nexample:\n  harness calibrate plans/lab.yaml && harness calibrate plans/lab.yaml")
    measuring_args(p, "continue an interrupted calibration")
    p.add_argument("--threshold", type=number.fraction, default=0.05, help="the threshold the nightly uses (default 0.05)")
    p.add_argument("--json", action="store_true", help="print each cell's A/A ratio and noise floor as JSON on stdout")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    lab_arg(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.nightly.calibrate import calibrate

    resuming(args)
    run_id, results = measuring(args, "calibrate", lambda progress: calibrate(
        args.plan, args.db, args.inventory, args.threshold, args.resume, progress, lab_measurer(args)))
    rows = [{"device_id": r.device_id, "build": r.subject, "aa_ratio": r.ratio, "aa_interval": r.interval,
             "verdict": r.verdict, "noise_floor": r.floor.fraction if r.floor else None,
             "floor_rests_on": r.floor.sources if r.floor else None} for r in results]
    if args.json:
        emit_json({"run_id": run_id, "cells": rows})
        return 0
    print(f"A/A calibration {run_id}: each build measured twice, interleaved", file=sys.stderr)
    for r in rows:
        ci = f" [{r['aa_interval'][0]:.3f}, {r['aa_interval'][1]:.3f}]" if r["aa_interval"] else ""
        floor = (f"noise floor {r['noise_floor']:.1%} ({r['floor_rests_on']})" if r["noise_floor"] is not None
                 else "noise floor: needs one more calibration or unchanged night")
        flag = "" if r["verdict"] in ("no change", "too noisy") else f"  <- the nightly rule would call this {r['verdict']}"
        print(term_safe(f"  {r['device_id']} · {r['build']}: A/A {r['aa_ratio']:.3f}{ci}; {floor}{flag}"),
              file=sys.stderr)
    return 0
