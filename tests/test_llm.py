"""LLM builds (Qwen2's architecture through ExecuTorch's own LLM export) and LLM cells on the host.

The small config of the same family is built for real by the zoo; the full-size one has the same
code path and its figures are in docs/measurements.md (``harness zoo build --only qwen2-0.5b-arch-int4-xnnpack``).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tests.conftest import TINY_LLM as TINY
from tests.helpers import eager_tiny_llm_tokens, measure

pytestmark = pytest.mark.slow

PROMPT = "The birch canoe slid on the smooth"


def test_full_size_config_is_qwen2_0_5b():
    from harness.zoo.llm import QWEN2_0_5B  # imports the exporter and torch (3 s): not at collection

    # Qwen2-0.5B's published config.json: hidden_size 896, intermediate_size 4864, 24 layers, 14 attention
    # heads, 2 key-value heads, vocab_size 151936, rope_theta 1e6, rms_norm_eps 1e-6.
    assert (QWEN2_0_5B["dim"], QWEN2_0_5B["hidden_dim"], QWEN2_0_5B["n_layers"]) == (896, 4864, 24)
    assert (QWEN2_0_5B["n_heads"], QWEN2_0_5B["n_kv_heads"], QWEN2_0_5B["vocab_size"]) == (14, 2, 151936)
    assert QWEN2_0_5B["rope_theta"] == 1e6 and QWEN2_0_5B["attention_qkv_bias"]
    # The model ExecuTorch builds from this config (on the meta device: no memory), counted and inspected, not
    # numbers typed here: Qwen2-0.5B has 494,032,768 parameters with the output tied to the embedding, and every
    # RMSNorm has eps 1e-6.  Catches a changed eps, a lost q/k/v bias, a changed head or FFN layout.
    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.model_args import ModelArgs

    with torch.device("meta"):
        model = construct_transformer(ModelArgs(**QWEN2_0_5B))
    params = dict(model.named_parameters())
    assert sum(p.numel() for name, p in params.items() if name != "output.weight") == 494_032_768
    assert "layers.0.attention.wk.bias" in params
    norms = [m for m in model.modules() if type(m).__name__ == "RMSNorm"]
    assert len(norms) == 2 * 24 + 1 and {m.eps for m in norms} == {1e-6}


def test_tiny_build_runs_like_its_eager_source(tiny_llm):
    """The FP32 program's greedy tokens, through ExecuTorch's own runner, are the eager model's."""
    from tokenizers import Tokenizer

    from harness.runners.host_llm_worker import _runner_module

    manifest = json.loads((tiny_llm / f"{TINY[0]}.pte.manifest.json").read_text())
    assert manifest["stage"] == "llm" and "meaningless" in manifest["source"]["weights"]
    tokenizer_path = tiny_llm / manifest["companions"]["tokenizer"]
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    prompt_ids = tokenizer.encode(PROMPT).ids

    expected = tokenizer.decode(eager_tiny_llm_tokens(prompt_ids, 4))

    llm = _runner_module()
    runner = llm.TextLLMRunner(str(tiny_llm / f"{TINY[0]}.pte"), str(tokenizer_path))
    pieces, stats = [], []
    runner.generate(PROMPT, llm.GenerationConfig(echo=False, max_new_tokens=4, temperature=0.0),
                    token_callback=pieces.append, stats_callback=stats.append)
    assert "".join(pieces) == expected
    assert json.loads(stats[0].to_json_string())["prompt_tokens"] == len(prompt_ids)


def test_llm_cell_on_the_host(tiny_llm, tmp_path, host_inventory):
    got = measure(tmp_path / "plan.yaml", tmp_path / "r.db", f"""
        name: llm
        inventory: {host_inventory}
        devices: [host]
        artifacts: ["{tiny_llm / TINY[1]}.pte", "{tiny_llm / TINY[2]}.pte"]
        warmup_iterations: 1
        iterations: 3
        runs: 2
        threads: 1
        llm: {{prompt: "{PROMPT}", seq_len: 20}}
        """)
    assert sorted(c.artifact["quantization"] for c in got.cells) == ["int4", "int8"]  # both quantized exports run
    for cell in got.cells:
        _check_llm_cell(cell, tiny_llm)
    # The report says what the weights are and shows the runner's own generation figures.
    from harness.report.html import write_report

    html = write_report(tmp_path / "r.db", got.outcome.run_id, tmp_path / "out").read_text()
    assert "meaningless text" in html
    # (prefill and decode rates need a measurable span: the tiny model's prefill takes under the stats' 1 ms tick)
    assert "prompt tokens" in html and "generated tokens" in html and "generation (median) ms" in html
    budget = "llm_cpu"  # an XNNPACK build is measured against the CPU budget (500 ms by default)
    assert budget in html


def _check_llm_cell(cell, tiny_llm):
    from tokenizers import Tokenizer

    assert cell.status == "ok", (cell.reason, cell.log)
    assert cell.runner == "host-llm"
    runs = cell.runs
    assert [r["n"] for r in runs] == [3, 3] and sorted(cell.samples_run.tolist()) == [0, 0, 0, 1, 1, 1]
    assert len(cell.warmup_ms) == 2  # one per run, kept apart from the measured values
    prompt_tokens = len(Tokenizer.from_file(str(tiny_llm / "qwen2-tiny-arch.tokenizer.json")).encode(PROMPT).ids)
    for run in runs:
        extra = run["extra"]
        assert extra["prompt_tokens"] == prompt_tokens
        # seq_len bounds prompt + every new token; the runner emits the prefill's token first and counts only
        # the decode loop's tokens as generated (extension/llm/runner/text_llm_runner.cpp, stats.h).
        assert extra["prompt_tokens"] + 1 + extra["generated_tokens"] == 20
        # The samples are first tokens, not whole generations: each comes before the end of its own generation on
        # the same clock, so the run's median first token lies below its median generation, however loaded the
        # machine (the runner's ms-clock total is no bound: a preemption before it starts falls outside it).
        mine = cell.samples_ms[cell.samples_run == run["run_index"]]
        assert float(np.median(mine)) <= extra["generation_ms_median"]
        assert run["peak_rss_mb"] > extra["rss_before_load_mb"] > 0
        assert run["load_ms"] is not None and run["load_ms"] >= 0


def test_voice_pipeline_per_utterance(tiny_llm, asr_builds, tmp_path, host_inventory):
    """VAD -> ASR on the speech found -> LLM next word, per utterance, stored and reported."""
    from silero_vad import get_speech_timestamps, load_silero_vad

    from harness.accuracy.corpus import read_manifest
    from harness.report.html import write_report
    from tests.helpers import REPO

    zoo = asr_builds
    corpus = REPO / "corpora" / "harvard-hibari"
    got = measure(tmp_path / "plan.yaml", tmp_path / "r.db", f"""
        name: pipeline
        inventory: {host_inventory}
        devices: [host]
        threads: 1
        accuracy:
          corpus: {corpus}
          limit: 3
          chains:
            - name: int8-int4
              vad: {zoo / 'silero-vad-int8.onnx'}
              mel: {zoo / 'whisper-logmel-fp32.onnx'}
              encoder: {zoo / 'whisper-tiny.en-encoder-int8.onnx'}
              decoder: {zoo / 'whisper-tiny.en-decoder-int8.onnx'}
              llm: {tiny_llm / TINY[1]}.pte
        """)
    (cell,) = got.cells
    assert cell.status == "ok", (cell.reason, cell.log)
    rows = cell.transcripts
    assert [r["utt_id"] for r in rows] == ["h01-01", "h01-02", "h01-03"]
    utterances = read_manifest(corpus).utterances
    silero = load_silero_vad(onnx=True)
    for row, utt in zip(rows, utterances):
        assert row["pipeline_ms"] == pytest.approx(row["vad_ms"] + row["total_ms"] + row["llm_ms"])
        assert row["hypothesis"] and row["continuation"]  # transcribed, then continued
        # silero-vad's own segmentation of the clip lies inside the span the pipeline transcribed.
        audio = read_manifest(corpus).load_audio(utt)
        found = get_speech_timestamps(audio, silero, sampling_rate=16000)
        speech_s = (found[-1]["end"] - found[0]["start"]) / 16000
        assert speech_s - 0.05 <= row["speech_s"] <= min(row["audio_s"], speech_s + 0.5)
    assert sorted(cell.samples_ms.tolist()) == sorted(r["pipeline_ms"] for r in rows)
    assert cell.peak_rss_mb > 0

    html = write_report(tmp_path / "r.db", got.outcome.run_id, tmp_path / "out").read_text()
    assert 'id="pipeline"' in html and "needs ≥ 72 utts" in html  # 3 utterances: no interval for a P95
    assert "LLM next word" in html and 'aria-label="median time per utterance by stage' in html  # the stack chart
    # The P95 printed in the pipeline row itself, not its digits anywhere in a page of base64 and numbers (catches a
    # wrong P95 that happened to share digits with something else).  Linear interpolation over 3 totals a <= b <= c:
    # rank 0.95 * (3 - 1) = 1.9, so P95 = b + 0.9 (c - b); printed to 3 significant digits.
    _, b, c = sorted(r["pipeline_ms"] for r in rows)
    section = html.split('<section id="pipeline">', 1)[1].split("</section>", 1)[0]
    (printed,) = re.findall(r'<tr id="[^"]*"><td class="l">host</td>.*?<td><b>([^<]+)</b></td>', section, re.S)
    assert float(printed) == pytest.approx(b + 0.9 * (c - b), rel=0.006), (printed, b, c)
