"""harness zoo build: the reference builds, made from installed packages (no network)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, emit_json


def add_parser(sub) -> None:
    p = sub.add_parser("zoo", help="reference builds made from installed packages (no network)")
    zoo = p.add_subparsers(dest="zoo_command", required=True, metavar="ZOO_COMMAND")
    b = zoo.add_parser("build", help="build the reference models and their manifests (cached)", formatter_class=RAW,
                       description="Write reference builds and manifests; a build is redone only when its\n"
                                   "recipe or source changed (or with --force).  Made only when named with --only:\n"
                                   "the LLM builds (Qwen2-0.5B's architecture with seeded weights,\n"
                                   "qwen2-0.5b-arch-{fp32,int8,int4}-xnnpack: minutes and GBs each) and the Whisper\n"
                                   "bundles for the phones' whisper_runner (whisper-tiny.en-asr-{fp32,int8}-xnnpack).\n"
                                   "'harness zoo list' names every build --only takes.")
    b.add_argument("-o", "--output", type=Path, default=Path("builds"), help="output folder (default: builds/)")
    b.add_argument("--only", action="append", metavar="NAME", help="build only this one (repeatable)")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("-j", "--jobs", type=number.positive_int, default=min(os.cpu_count() or 1, 4), metavar="N",
                   help="builds at once, each in its own process (default: the CPU count, at most 4)")
    b.add_argument("--json", action="store_true", help="print each build's result as JSON on stdout")
    b.set_defaults(func=run_build)
    listing = zoo.add_parser("list", help="every reference build's name (what --only takes) and whether a plain "
                                          "'harness zoo build' makes it")
    listing.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    listing.set_defaults(func=run_list)


def run_build(args) -> int:
    from harness.zoo import build_all

    results = build_all(args.output, only=args.only, force=args.force, log=lambda m: print(m, file=sys.stderr),
                        jobs=args.jobs)
    if args.json:
        emit_json([r.as_dict() for r in results])
    return 0


def run_list(args) -> int:
    from harness.zoo import recipe_list

    rows = recipe_list()
    if args.json:
        emit_json(rows)
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:  # the name as --only takes it, then the file it writes
        made = "built by default" if r["default"] else "only with --only"
        needs = f"; made from {', '.join(r['needs'])}" if r["needs"] else ""
        print(f"{r['name']:<{width}}  {r['suffix']:<12}  {made}{needs}")
    return 0
