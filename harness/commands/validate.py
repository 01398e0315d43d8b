"""harness validate: parity of every reference build against its eager PyTorch source."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, emit_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "validate", help="parity of every reference build against its eager PyTorch source", formatter_class=RAW,
        description="Run each build on fixed speech samples and compare with the eager source: max absolute error,\n"
                    "cosine similarity, decoder top-1 agreement, and whether each ASR chain's greedy transcripts\n"
                    "are unchanged. Core ML builds are checked statically (no Core ML runtime on Linux).\n"
                    "Exit status 1 when any build misses its threshold (thresholds: harness/zoo/validate.py).")
    p.add_argument("--builds", type=Path, default=Path("builds"),
                   help="folder of reference builds (default: builds/); validation.json is written there")
    p.add_argument("--corpus", type=Path, default=Path("corpora/harvard-hibari"),
                   help="speech corpus the samples come from (default: corpora/harvard-hibari)")
    p.add_argument("--samples", type=number.positive_int, default=5, help="utterances to compare on (default 5)")
    p.add_argument("--json", action="store_true", help="print each build's figures as JSON on stdout")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.zoo.validate import validate_builds, write_report

    rows = validate_builds(args.builds, args.corpus, samples=args.samples)
    out = args.builds / "validation.json"
    write_report(rows, out)
    if args.json:
        emit_json([r.__dict__ for r in rows])
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"parity against the eager PyTorch source ({args.samples} utterances of {args.corpus.name})")
        for col in ("build", "quant", "max |err|", "cosine", "top-1 / decisions", "transcripts same", "verdict"):
            table.add_column(col)
        fmt = lambda v, f: "–" if v is None else format(v, f)
        for r in rows:
            verdict = "[green]pass[/]" if r.passed else f"[red]FAIL[/] {r.why}"
            if r.static:
                verdict += f" (static: {r.static['compressed_weight_ops']} compressed weight ops)"
            table.add_row(r.build, r.quantization, fmt(r.max_abs_error, ".2e"), fmt(r.cosine, ".6f"),
                          fmt(r.top1_agreement, ".1%"), fmt(r.transcripts_unchanged, ".0%"), verdict)
        Console().print(table)
        print(f"written: {out}", file=sys.stderr)
    return 0 if all(r.passed for r in rows) else 1
