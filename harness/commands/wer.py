"""harness wer: word and character error rates of two text files."""

from __future__ import annotations

from pathlib import Path

from harness.commands.common import RAW, emit_json
from harness.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("wer", help="score two text files (one utterance per line)", formatter_class=RAW,
                       description="Word error rate after Whisper's English normaliser: corpus-level (all errors over\n"
                                   "all reference words), with CER and substitution/deletion/insertion counts.\n"
                                   "An empty line is an empty utterance.",
                       epilog="example:\n  harness wer refs.txt hyps.txt --json")
    p.add_argument("ref", type=Path, help="reference transcripts, one utterance per line")
    p.add_argument("hyp", type=Path, help="the transcripts to score, line for line with REF")
    p.add_argument("--no-normalize", action="store_true", help="compare the text as written (whitespace only)")
    p.add_argument("--json", action="store_true", help="totals and per-utterance figures with alignments")
    p.set_defaults(func=run)


def run(args) -> int:
    from harness.accuracy.wer import score_corpus
    from harness.textfile import read_utf8

    def lines(path: Path) -> list[str]:
        text = read_utf8(path)
        if not text.strip():
            raise UserError("the file is empty: there is nothing to score.", path=path,
                            fix="one utterance per line; give the transcripts to score.")
        return text[:-1].split("\n") if text.endswith("\n") else text.split("\n")

    refs, hyps = lines(args.ref), lines(args.hyp)
    if len(refs) != len(hyps):
        raise UserError(f"{args.ref} has {len(refs)} lines but {args.hyp} has {len(hyps)}.", path=args.hyp,
                        fix="one utterance per line in both files, in the same order (an empty line is an empty utterance).")
    score = score_corpus([str(i + 1) for i in range(len(refs))], refs, hyps, normalise=not args.no_normalize)
    if args.json:
        emit_json(score.as_dict())
        return 0
    t = score.totals()
    wer = "undefined (no reference words)" if t["wer"] is None else f"{t['wer']:.2%}"
    cer = "undefined" if t["cer"] is None else f"{t['cer']:.2%}"
    print(f"WER {wer}  CER {cer}  words {t['words']}  S {t['substitutions']}  D {t['deletions']}  "
          f"I {t['insertions']}  utterances {t['utterances']} ({t['empty_references']} with empty reference)")
    return 0
