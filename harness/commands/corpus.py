"""harness corpus build|check|import: the speech corpora accuracy is scored on."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import validation as number  # one check per kind of number, as the files' models use
from harness.commands.common import RAW, emit_json
from harness.termsafe import term_safe


def add_parser(sub) -> None:
    p = sub.add_parser("corpus", help="build, check and import speech corpora")
    corpus = p.add_subparsers(dest="corpus_command", required=True, metavar="CORPUS_COMMAND")
    c = corpus.add_parser("build", help="synthesize the shipped Harvard corpora (or --verify them bit for bit)",
                          formatter_class=RAW,
                          description="Names: harvard-hibari (hibari-tts voice), harvard-espeak (espeak-ng voice).")
    c.add_argument("names", nargs="+", metavar="NAME", help="harvard-hibari, harvard-espeak")
    c.add_argument("-o", "--output", type=Path, default=Path("corpora"),
                   help="folder the corpora are written to, one folder each (default: corpora/)")
    c.add_argument("--limit", type=number.positive_int, help="only the first N sentences")
    c.add_argument("--verify", action="store_true", help="rebuild in a scratch folder and compare with SHA256SUMS")
    c.set_defaults(func=run_build)
    c = corpus.add_parser("check", help="find missing audio, wrong rates, empty references, duplicate ids, escaping paths")
    c.add_argument("corpus", type=Path, help="corpus folder or manifest.jsonl")
    c.add_argument("--json", action="store_true", help="print the problems and warnings as JSON on stdout")
    c.set_defaults(func=run_check)
    c = corpus.add_parser("import", help="write a manifest for a LibriSpeech, Kaldi or NeMo/HF JSONL corpus",
                          formatter_class=RAW,
                          description="librispeech: SOURCE is a folder of <speaker>/<chapter>/*.trans.txt + .flac\n"
                                      "kaldi: SOURCE is a data dir with wav.scp and text (file paths only, no pipes)\n"
                                      "jsonl: SOURCE is a NeMo / Hugging Face manifest (audio_filepath|audio|path, "
                                      "text|sentence|transcript, duration)")
    c.add_argument("layout", choices=["librispeech", "kaldi", "jsonl"], help="how SOURCE is laid out (see above)")
    c.add_argument("source", type=Path, help="what to import: a folder, or for jsonl the manifest file (see above)")
    c.add_argument("-o", "--output", type=Path,
                   help="folder for manifest.jsonl; must contain the audio (default: the source folder)")
    c.add_argument("--force", action="store_true", help="replace a manifest.jsonl that is already there")
    c.set_defaults(func=run_import)


def run_build(args) -> int:
    from harness.accuracy.synth import build_corpus, verify_corpus

    for name in args.names:
        if args.verify:
            check = verify_corpus(name, args.output / name)
            if not check.bit_for_bit:
                how = " with its int8 layers computed exactly" if check.exact_int8 else ""
                lengths = ("every audio file has the shipped length (the manifest's durations)" if check.lengths_match
                           else "some audio files have other lengths than the shipped ones")
                print(f"{name}: rebuilt{how}, {len(check.differing)} checksum lines differ from the shipped SHA256SUMS; "
                      f"{lengths}:\n  " + "\n  ".join(check.differing[:10])
                      + f"\n  This CPU's int8 path: {check.int8_path}. hibari's voice is int8 and its float layers round "
                      "differently on other CPUs, so bytes match only on a CPU like the one that built the corpus "
                      "(harness/accuracy/synth.py says more). The shipped audio is what every measurement uses.",
                      file=sys.stderr)
                return 1
            print(f"{name}: rebuilt bit for bit (every checksum in SHA256SUMS matches)", file=sys.stderr)
        else:
            root = build_corpus(name, args.output, limit=args.limit)
            print(f"{name}: written to {root}", file=sys.stderr)
    return 0


def run_check(args) -> int:
    from harness.accuracy.corpus import check_corpus, read_manifest

    corpus = read_manifest(args.corpus)
    found = check_corpus(corpus, with_warnings=True)
    problems = [p for p in found if not p.warning]
    if args.json:
        emit_json({"manifest": str(corpus.manifest), "utterances": len(corpus.utterances),
                    "problems": [p.__dict__ for p in found]})
    else:
        for p in found:
            print(term_safe(f"{corpus.manifest}:{p.line}: {'warning: ' if p.warning else ''}{p.utterance_id}: "
                            f"{p.message}"), file=sys.stderr)
        hours = sum(u.duration_s for u in corpus.utterances) / 3600
        warnings = len(found) - len(problems)
        print(f"{corpus.manifest}: {len(corpus.utterances)} utterances, {hours:.2f} h, "
              f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
              + (f", {warnings} warning{'s' if warnings != 1 else ''} (scored all the same)" if warnings else ""),
              file=sys.stderr)
        if problems:
            print("Fix: correct those lines of the manifest, or the audio (16 kHz mono WAV or FLAC, inside the "
                  "corpus folder, no links out of it), then check again.", file=sys.stderr)
    return 2 if problems else 0


def run_import(args) -> int:
    from harness.accuracy.importers import import_corpus

    root = import_corpus(args.layout, args.source, args.output, args.force)
    print(f"imported {args.layout} corpus into {root}/manifest.jsonl; check it with 'harness corpus check {root}'",
          file=sys.stderr)
    return 0
