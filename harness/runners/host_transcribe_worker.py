"""Child process that transcribes a corpus through a chain of builds on the host.

Run as ``python -m harness.runners.host_transcribe_worker --mel M --encoder E --decoder D
--corpus DIR [--limit N]`` (or ``--model BUNDLE --processor P`` for a bundled program).  Prints one ``HARNESS_UTT {json}`` line per utterance as it
finishes (so a crash mid-corpus still leaves the finished ones in the log) and a final
``HARNESS_DONE {json}`` line with the process's peak memory.  The first utterance is run once untimed
first, as a warm-up.

With ``--vad V --llm L --llm-tokenizer T`` it is a voice pipeline, every stage loaded in this one
process as an app would hold them: per utterance the VAD runs over the whole clip (Silero's windows,
timed together), the ASR transcribes only the speech it found, and the LLM (ExecuTorch's
TextLLMRunner, as in host_llm_worker) takes the transcript as its prompt; the LLM's time is its time
to first token, timed as host_llm_worker times it.  The utterance's pipeline time is the sum of the three.
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
    parser.add_argument("--vad", type=Path, help="a voice pipeline: the Silero VAD build (.onnx)")
    parser.add_argument("--llm", type=Path, help="a voice pipeline: the LLM build (.pte)")
    parser.add_argument("--llm-tokenizer", type=Path, help="the LLM build's tokenizer")
    args = parser.parse_args(argv)

    # Nothing here imports torch: an ONNX chain runs on onnxruntime and numpy alone (a .pte chain's runtime
    # brings torch itself).
    from harness.accuracy.chains import bundle_chain, file_chain
    from harness.accuracy.corpus import read_manifest
    from harness.accuracy.decode import greedy_decode
    from harness.models.whisper_facts import MAX_TOKENS, decoding_config, english_tokenizer

    corpus = read_manifest(args.corpus)
    utterances = corpus.utterances[: args.limit or None]
    cfg = decoding_config()
    tokenizer = english_tokenizer()
    # Cache shape from the decoder's own inputs: (layers, 1, MAX_TOKENS, width) of Whisper tiny.en.
    if args.model:
        chain = bundle_chain(args.model, args.processor, threads=args.threads or None)
    else:
        chain = file_chain(args.mel, args.encoder, args.decoder, (4, 1, MAX_TOKENS, 384), threads=args.threads or None)

    def decode(audio):
        return greedy_decode(chain, audio, cfg["suppress_ids"], cfg["suppress_ids_begin"], MAX_TOKENS)

    stages = _PipelineStages(args) if args.vad else None

    def transcribe(utt) -> dict:
        audio = corpus.load_audio(utt)
        audio_s = len(audio) / 16000
        front = stages.listen(audio) if stages else {}
        speech = audio[slice(*front["span"])] if front.get("span") else (audio if not stages else None)
        out = decode(speech) if speech is not None else None  # no speech found: nothing to transcribe
        text = tokenizer.decode(out.tokens).strip() if out else ""
        asr_ms = out.total_ms if out else 0.0
        record = {
            "id": utt.id, "reference": utt.text, "hypothesis": text, "tokens": len(out.tokens) if out else 0,
            "mel_ms": out.mel_ms if out else None, "encoder_ms": out.encoder_ms if out else None,
            "decoder_ms_per_token": (sum(out.step_ms) / len(out.step_ms)) if out and out.step_ms else None,
            "total_ms": asr_ms, "audio_s": audio_s, "rtf": asr_ms / 1000 / audio_s if audio_s else None,
        }
        if stages:
            llm_ms, continuation = stages.next_words(text) if text else (None, "")
            record.update(vad_ms=front["vad_ms"], speech_s=(len(speech) / 16000) if speech is not None else 0.0,
                          llm_ms=llm_ms, continuation=continuation,
                          pipeline_ms=front["vad_ms"] + asr_ms + (llm_ms or 0.0))
        return record

    transcribe(utterances[0])  # warm-up, not recorded
    for utt in utterances:
        print(UTT_PREFIX + json.dumps(transcribe(utt)), flush=True)
    from harness.runtime import peak_rss_mb

    print(f"{DONE} " + json.dumps({"peak_rss_mb": peak_rss_mb()}), flush=True)
    return 0


class _PipelineStages:
    """The VAD and the LLM of a voice pipeline, loaded once."""

    def __init__(self, args) -> None:
        from harness.runners.host_llm_worker import _runner_module
        from harness.runtime import ort_session

        self.vad = ort_session(str(args.vad), args.threads or None)
        llm = _runner_module()
        self.runner = llm.TextLLMRunner(str(args.llm), str(args.llm_tokenizer))
        # Next-word prediction: the prompt's prefill and one sampled token are what the user waits for.
        self.config = llm.GenerationConfig(echo=False, max_new_tokens=2, temperature=0.0)

    def listen(self, audio) -> dict:
        """VAD over the whole clip: its time, and the span of samples that holds speech (None: none)."""
        import time

        from harness.models.vad import speech_span, vad_frames

        probabilities = []

        def step(feed):
            prob, state = self.vad.run(None, feed)
            probabilities.append(float(prob.ravel()[0]))
            return state

        t0 = time.perf_counter_ns()
        for _ in vad_frames(audio, step):
            pass
        return {"vad_ms": (time.perf_counter_ns() - t0) / 1e6, "span": speech_span(probabilities, len(audio))}

    def next_words(self, prompt: str) -> tuple[float, str]:
        """The LLM's time to first token on ``prompt`` (nanosecond clock, as host_llm_worker), and its words."""
        from harness.runners.host_llm_worker import generate_timed

        self.runner.reset()
        pieces, _, first_token_ms = generate_timed(self.runner, prompt, self.config)
        return first_token_ms, "".join(pieces)


if __name__ == "__main__":
    sys.exit(main())
