"""Child process that transcribes a corpus through a chain of builds on the host.

Run as ``python -m harness.runners.host_transcribe_worker --mel M --encoder E --decoder D
--corpus DIR [--limit N]`` (or ``--model BUNDLE --processor P`` for a bundled program).  Prints one ``HARNESS_UTT {json}`` line per utterance as it
finishes (so a crash mid-corpus still leaves the finished ones in the log) and a final
``HARNESS_DONE`` line.  The first utterance is decoded once untimed first, as a warm-up.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

UTT_PREFIX, DONE = "HARNESS_UTT ", "HARNESS_DONE"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", required=True, type=Path)
    for role in ("mel", "encoder", "decoder", "model", "processor"):  # a split chain, or a bundle and its processor
        parser.add_argument(f"--{role}", type=Path)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)

    import whisper

    from harness.accuracy.chains import bundle_chain, file_chain
    from harness.accuracy.corpus import read_manifest
    from harness.accuracy.decode import greedy_decode
    from harness.models.whisper import decoding_config
    from harness.models.whisper_split import MAX_TOKENS

    corpus = read_manifest(args.corpus)
    utterances = corpus.utterances[: args.limit or None]
    cfg = decoding_config()
    tokenizer = whisper.tokenizer.get_tokenizer(multilingual=False)
    # Cache shape from the decoder's own inputs: (layers, 1, MAX_TOKENS, width) of Whisper tiny.en.
    if args.model:
        chain = bundle_chain(args.model, args.processor, threads=args.threads or None)
    else:
        chain = file_chain(args.mel, args.encoder, args.decoder, (4, 1, MAX_TOKENS, 384), threads=args.threads or None)

    def decode(audio):
        return greedy_decode(chain, audio, cfg["suppress_ids"], cfg["suppress_ids_begin"], MAX_TOKENS)

    decode(corpus.load_audio(utterances[0]))  # warm-up, not recorded
    for utt in utterances:
        audio = corpus.load_audio(utt)
        out = decode(audio)
        audio_s = len(audio) / 16000
        record = {
            "id": utt.id, "reference": utt.text, "hypothesis": tokenizer.decode(out.tokens).strip(),
            "tokens": len(out.tokens), "mel_ms": out.mel_ms, "encoder_ms": out.encoder_ms,
            "decoder_ms_per_token": (sum(out.step_ms) / len(out.step_ms)) if out.step_ms else None,
            "total_ms": out.total_ms, "audio_s": audio_s, "rtf": out.total_ms / 1000 / audio_s if audio_s else None,
        }
        print(UTT_PREFIX + json.dumps(record), flush=True)
    print(DONE, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
