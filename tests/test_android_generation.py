"""The LLM and Whisper runners on the simulated phone: llama_main and ExecuTorch's Whisper runner.

Both go through adbutils -> Debian's adb server -> the simulated phone, whose fake
runners really run the pushed programs; expected outputs come from eager PyTorch.
"""

from __future__ import annotations

import json
import re

import pytest

from harness.sim.sandbox import stand_in
from harness.run.engine import run_plan
from harness.store import Store
from tests.conftest import TINY_LLM
from tests.helpers import REPO, bundle_accuracy, copy_model, eager_tiny_llm_tokens, measure, write

# Whisper and LLM runners on the simulated phone, with real builds: every test is slow but the one that runs none.

def _inventory(tmp_path, serial, port, tools, backends: str = "xnnpack", soc: str | None = None,
               other_tools: dict | None = None):
    """One simulated phone with stand-ins for these benchmark binaries (and ``other_tools``: name -> path)."""
    paths = {name: write(tmp_path / "tools" / name, stand_in()) for name in tools} | (other_tools or {})
    write(tmp_path / "devices.yaml", f"""
        devices:
          - id: sim-s24
            platform: android
            serial: "{serial}"
            adb_port: {port}
            {f"soc: {soc}" if soc else ""}
            backends: [{backends}]
            tools: {json.dumps({k: str(v) for k, v in paths.items()})}
        """)


@pytest.mark.slow
def test_llama_main_on_the_phone_reports_time_to_first_token_and_the_generated_text(
        tmp_path, adb_server, phones, tiny_llm):
    """The phone's llama_main is ExecuTorch's own runner (TextLLMRunner) on the zoo's tiny Qwen2-family export."""
    from tokenizers import Tokenizer

    server, serial = phones()
    _inventory(tmp_path, serial, adb_server.port, {"llama_main": "", "executor_runner": ""})
    build = tiny_llm / f"{TINY_LLM[0]}.pte"
    plan = write(tmp_path / "plan.yaml", f"""
        name: lm
        inventory: devices.yaml
        artifacts: [{build}]
        warmup_iterations: 1
        iterations: 2
        runs: 1
        timeout_s: 120
        llm: {{prompt: "Hi there", seq_len: 14}}
        """)
    measured = measure(plan, tmp_path / "r.db")
    outcome, (cell,) = measured.outcome, measured.cells
    assert cell.status == "ok" and cell.runner == "android-llama-main", (cell.reason, cell.log)
    assert len(cell.samples_ms) == 2 and all(s >= 0 for s in cell.samples_ms)
    # Each measured generation warmed up in its own process (--warmup), not in a process of its own before it.
    generations = [a for a in server.phone.invocations if a[0] == "llama_main"]
    assert len(generations) == 2 and all("--warmup" in a for a in generations), generations
    tokenizer = Tokenizer.from_file(str(tiny_llm / "qwen2-tiny-arch.tokenizer.json"))
    prompt_ids = tokenizer.encode("Hi there").ids
    assert cell.extra["prompt_tokens"] == len(prompt_ids)
    # --seq_len bounds prompt + new tokens; the prefill's token is printed but not counted as generated.
    assert cell.extra["prompt_tokens"] + 1 + cell.extra["generated_tokens"] == 14
    # The phone's greedy text (echoed prompt, then the new tokens) is the eager model's.
    expected = tokenizer.decode(eager_tiny_llm_tokens(prompt_ids, 14 - len(prompt_ids)))
    assert repr("Hi there" + expected)[1:-1][:60] in cell.log
    from harness.cli import main as cli_main

    assert cli_main(["report", outcome.run_id, "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "rep")]) == 0
    assert "generated tokens" in (tmp_path / "rep" / "index.html").read_text()
    sha = cell.artifact["sha256"]
    assert (server.phone.root / "data/local/tmp/harness" / sha / build.name).is_file()
    assert list((server.phone.root / "data/local/tmp/harness").rglob("qwen2-tiny-arch.tokenizer.json"))


@pytest.mark.slow
def test_llm_build_without_a_tokenizer_fails_with_the_manifest_fix(tmp_path, adb_server, phones, tiny_llm):
    server, serial = phones()
    _inventory(tmp_path, serial, adb_server.port, {"llama_main": ""})
    lone = tmp_path / "b" / "lone-llm.pte"
    lone.parent.mkdir()
    lone.write_bytes((tiny_llm / f"{TINY_LLM[0]}.pte").read_bytes())
    (lone.parent / "lone-llm.pte.manifest.json").write_text(json.dumps({"stage": "llm", "backend": "xnnpack"}))
    plan = write(tmp_path / "plan.yaml", "name: lm\ninventory: devices.yaml\nartifacts: [b/lone-llm.pte]\n"
                 "iterations: 2\nruns: 1\ntimeout_s: 60\n")
    (cell,) = measure(plan, tmp_path / "r.db").cells
    assert cell.status == "failed" and "companions: {tokenizer: FILE}" in cell.reason


def _eager_upstream_transcript(audio) -> tuple[str, int]:
    """What examples/models/whisper/main.cpp's loop says, computed independently of the harness and of
    ExecuTorch: openai-whisper's own mel and module, tokens from 50258 (main.cpp's hard-coded start), argmax,
    until <|endoftext|> or 128 tokens; the words are the text tokens (ids below 50256), as printed by a
    tokenizer that spells special tokens out; also how many timestamp tokens (no text in tokenizer.json)."""
    import torch
    import whisper

    from harness.models.whisper import load_whisper

    model = load_whisper()
    tokens = [50258]
    # openai-whisper's own key/value cache (as its decoding uses it): each step feeds the new token only and the
    # encoder's keys and values are projected once (was: the whole prefix and the projections again every step,
    # twice the time for the same tokens).
    cache, hooks = model.install_kv_cache_hooks()
    try:
        with torch.no_grad():
            features = model.embed_audio(whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))[None])
            while len(tokens) - 1 < 128:
                step = tokens if not cache else tokens[-1:]
                tokens.append(int(model.decoder(torch.tensor([step]), features, kv_cache=cache)[0, -1].argmax()))
                if tokens[-1] == 50256:
                    break
    finally:
        for hook in hooks:
            hook.remove()
    generated = tokens[1:]
    tokenizer = whisper.tokenizer.get_tokenizer(multilingual=False)
    text = tokenizer.decode([t for t in generated if t < 50256]).strip()
    return " ".join(text.split()), sum(t >= 50363 for t in generated)


@pytest.mark.slow
def test_whisper_runner_transcribes_the_corpus_on_the_phone_like_eager_whisper(
        tmp_path, adb_server, phones, whisper_bundle):
    from harness.accuracy.corpus import read_manifest

    server, serial = phones()
    # The phone's runner is a 1.3 build (test_whisper_runner_is_given_benchmark_only_where_its_help_lists_it's
    # release case, folded in here: it transcribed an utterance of its own on a phone of its own).
    server.phone.versions["whisper_runner"] = "1.3"
    _inventory(tmp_path, serial, adb_server.port, {"whisper_runner": ""})
    (tmp_path / "tools" / "whisper_runner").write_text(stand_in("a 1.3 build"))  # its own sha
    corpus = REPO / "corpora" / "harvard-hibari"
    text = f"""
        name: asr
        inventory: devices.yaml
        warmup_iterations: 1
        timeout_s: 300
{bundle_accuracy(whisper_bundle / 'whisper-tiny.en-asr-fp32-xnnpack.pte', limit='{limit}')}
        """
    plan = write(tmp_path / "plan.yaml", text.replace("{limit}", "2"))
    measured = measure(plan, tmp_path / "r.db")
    (cell,) = measured.cells
    transcripts = cell.transcripts
    assert cell.status == "ok" and cell.runner == "android-whisper-runner", (cell.reason, cell.log)
    # The report's legend said "whole chain (log-mel + encoder + greedy decoding)" of a time main.cpp takes after
    # its preprocessor ran; it now says what this cell's log says: the transcription only.
    from harness.cli import main as cli_main

    assert cli_main(["report", measured.outcome.run_id, "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "rep")]) == 0
    legend = (tmp_path / "rep" / "index.html").read_text().split("WER is corpus-level", 1)[1].split("</p>", 1)[0]
    assert "whisper_runner times its transcription only" in legend and "log-mel runs before" in legend, legend
    assert "log-mel and the model load are outside it" in cell.log, cell.log  # the cell log agrees
    assert len(cell.samples_ms) == 2 and cell.load_ms > 0
    # No release defines --benchmark (gflags exits 1 on it); every release prints a PyTorchObserver line, which is
    # no part of a transcript.  Fails if a 1.3 build is given --benchmark (the harness assumed releases before 1.4
    # had it).
    assert all(row["hypothesis"] and "PyTorchObserver" not in row["hypothesis"] for row in transcripts)
    runs = [a for a in server.phone.invocations if a[0] == "whisper_runner" and "--help" not in a]
    assert runs and not any("--benchmark" in a for a in runs), runs

    # FP32 on the phone must say exactly what the same loop over eager PyTorch says, special tokens removed.
    corpus_data = read_manifest(corpus)
    undecodable = 0
    for utt, row in zip(corpus_data.utterances[:2], transcripts):
        expected, timestamps = _eager_upstream_transcript(corpus_data.load_audio(utt))
        undecodable += timestamps
        assert row["utt_id"] == utt.id and row["hypothesis"] == expected
        assert "<|" not in row["hypothesis"]
        assert row["reference"] == utt.text and row["audio_s"] == pytest.approx(utt.duration_s, abs=0.05)
    # tiny.en's own start token is 50257: the cell says the runner started it at 50258, and how many tokens
    # (timestamps, which tokenizer.json cannot spell) the runner logged as undecodable.
    assert "starts decoding at token 50257" in cell.log and "always starts at 50258" in cell.log
    assert f"({undecodable} generated tokens" in cell.log and undecodable > 0

    # The corpus audio crossed the cable once: a second run (one utterance, no warm-up) pushes nothing.
    plan = write(tmp_path / "plan.yaml", text.replace("{limit}", "1").replace("warmup_iterations: 1", "warmup_iterations: 0"))
    again = run_plan(plan, tmp_path / "r.db")
    with Store(tmp_path / "r.db") as store:
        (cell2,) = store.cells(again.run_id)
    assert cell2.status == "ok" and all(p["skipped"] for p in cell2.extra["pushes"])
    assert len(list((server.phone.root / "data/local/tmp/harness").rglob("*.wav"))) == 2


@pytest.mark.slow
@pytest.mark.parametrize("build", ["c26a4e38fd"])  # a release's case (1.3): in the corpus test above
def test_whisper_runner_is_given_benchmark_only_where_its_help_lists_it(
        tmp_path, adb_server, phones, whisper_bundle, build):
    """No release defines --benchmark (gflags exits 1 on it); every release prints a PyTorchObserver line. A build
    of the unmerged commit that adds the flag lists it in --help and gets it. Fails if the flag is never passed
    (test_whisper_runner_transcribes_the_corpus_on_the_phone_like_eager_whisper's 1.3 build fails if a release is
    given it)."""
    server, serial = phones()
    server.phone.versions["whisper_runner"] = build
    _inventory(tmp_path, serial, adb_server.port, {"whisper_runner": ""})
    (tmp_path / "tools" / "whisper_runner").write_text(stand_in(f"a {build} build"))  # its own sha
    plan = write(tmp_path / "plan.yaml", f"""
        name: asr13
        inventory: devices.yaml
        warmup_iterations: 0
        timeout_s: 300
{bundle_accuracy(whisper_bundle / 'whisper-tiny.en-asr-fp32-xnnpack.pte', limit='1')}
        """)
    (cell,) = measure(plan, tmp_path / "r.db").cells
    assert cell.status == "ok" and len(cell.samples_ms) == 1 and cell.load_ms > 0, (cell.reason, cell.log)
    assert cell.transcripts[0]["hypothesis"] and "PyTorchObserver" not in cell.transcripts[0]["hypothesis"]
    runs = [a for a in server.phone.invocations if a[0] == "whisper_runner" and "--help" not in a]
    assert runs and all(("--benchmark" in a) == (build == "c26a4e38fd") for a in runs), runs


def test_whisper_runner_gets_no_benchmark_flag_when_its_help_cannot_be_read():
    from harness.runners.whisper_runner import wants_benchmark

    assert not wants_benchmark(None) and wants_benchmark({"benchmark", "model_path"})
    assert not wants_benchmark({"model_path", "audio_path"})


@pytest.mark.slow
def test_the_voice_pipeline_runs_on_the_phone_as_three_runner_invocations_per_utterance(
        tmp_path, adb_server, phones, whisper_bundle, tiny_llm, silero_vad):
    """VAD (onnxruntime_perf_test), ASR (whisper_runner), LLM (llama_main with the transcript as its prompt), one
    after another per utterance; the LLM's words must be the eager model's greedy continuation of the transcript,
    so the transcript crossed the shell intact (h01-03 says "It's")."""
    from tokenizers import Tokenizer

    server, serial = phones()
    _inventory(tmp_path, serial, adb_server.port, {"whisper_runner": "", "onnxruntime_perf_test": "", "llama_main": ""})
    devices = (tmp_path / "devices.yaml").read_text().replace("backends: [xnnpack]", "backends: [xnnpack, ort-cpu]")
    (tmp_path / "devices.yaml").write_text(devices)
    # Two utterances, the corpus's first and h01-03 (was: its first three, a whole pipeline more for h01-02, which
    # no assertion singles out): still more than one utterance, in the corpus's order, and h01-03's apostrophe.
    plan = _pipeline_plan(tmp_path, whisper_bundle / 'whisper-tiny.en-asr-fp32-xnnpack.pte',
                          _vad_build(tmp_path, silero_vad), tiny_llm / (TINY_LLM[0] + '.pte'),
                          seq_len=24, utterances=2, corpus=harvard_subset(tmp_path / "corpus", ["h01-01", "h01-03"]))
    measured = measure(plan, tmp_path / "r.db")
    (cell,) = measured.cells
    assert cell.status == "ok" and cell.runner == "android-pipeline", (cell.reason, cell.log)
    rows = cell.transcripts
    assert [r["utt_id"] for r in rows] == ["h01-01", "h01-03"] and len(cell.samples_ms) == 2
    assert "It's" in rows[1]["hypothesis"] or "it's" in rows[1]["hypothesis"].lower()
    tokenizer = Tokenizer.from_file(str(tiny_llm / "qwen2-tiny-arch.tokenizer.json"))
    for row, sample in zip(rows, cell.samples_ms):
        assert row["vad_ms"] > 0 and row["total_ms"] > 0 and row["llm_ms"] >= 0
        assert sample == pytest.approx(row["vad_ms"] + row["total_ms"] + row["llm_ms"])
        prompt_ids = tokenizer.encode(row["hypothesis"]).ids
        expected = tokenizer.decode(eager_tiny_llm_tokens(prompt_ids, 24 - len(prompt_ids)))
        assert " ".join(row["continuation"].split()) == " ".join(expected.split()), row
    assert {"load_ms_vad", "load_ms_asr", "load_ms_llm"} <= set(cell.extra)
    from harness.cli import main as cli_main

    assert cli_main(["report", measured.outcome.run_id, "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert 'id="pipeline"' in html and "phone-pipeline" in html  # the pipeline section, bundle chain and all
    # Each stage's peak from the phone's kernel, the pipeline's their sum, judged against the plan's default
    # pipeline_memory_mb (1,024 MB).  Before, a phone pipeline had no peak and its memory verdict was "–".
    stage_peaks = [cell.extra[f"peak_rss_mb_{stage}"] for stage in ("vad", "asr", "llm")]
    assert all(p > 0 for p in stage_peaks) and cell.peak_rss_mb == pytest.approx(sum(stage_peaks))
    row = html[html.index('id="row-pipeline-'):]
    row = row[:row.index("</tr>")]
    assert re.search(r'<span class="badge pass">pass</span> [\d.]+ MB vs budget 1024 MB', row), row



def _as_qnn_build(folder, name: str, dest):
    """A zoo build as a qnn build: its XNNPACK delegate ids rewritten in place (this machine has no QNN SDK to
    export one; the simulated phone's HTP runs it, once its QNN libraries are found), beside its companions,
    with its manifest saying qnn."""
    manifest = json.loads((folder / f"{name}.manifest.json").read_text())
    for key in ("sha256", "size_bytes"):
        manifest.pop(key, None)
    manifest["backend"] = "qnn"
    dest.mkdir(parents=True, exist_ok=True)
    for companion in manifest["companions"].values():
        (dest / companion).write_bytes((folder / companion).read_bytes())
    data = (folder / name).read_bytes()
    assert b"XnnpackBackend" in data
    target = dest / name.replace("xnnpack", "qnn")
    target.write_bytes(data.replace(b"XnnpackBackend", b"QnnBackend\0\0\0\0"))
    (dest / f"{target.name}.manifest.json").write_text(json.dumps(manifest))
    return target


@pytest.fixture(scope="session")
def qnn_bundle(tmp_path_factory, whisper_bundle):
    """The Whisper bundle as a qnn build, rewritten once a session: each test read and wrote its 230 MB again."""
    return _as_qnn_build(whisper_bundle, "whisper-tiny.en-asr-fp32-xnnpack.pte", tmp_path_factory.mktemp("qnn-bundle"))


@pytest.mark.slow  # the tiny LLM build's fixture (~2 s of cache lookup the first time in a session)
def test_the_simulated_runners_load_an_xnnpack_program_from_its_file_and_a_qnn_one_only_with_its_libraries(
        tmp_path, tiny_llm, monkeypatch):
    """The simulated whisper_runner read a whole program into memory (230 MB for Whisper) and searched all of it
    for a QNN delegate id before loading it from those bytes: ~0.5-1.5 s of every transcription that is the
    simulator's, not the runner's.  The id is read from the program's flatbuffer only and an XNNPACK program is
    loaded from its file, as the phone's runner loads it.  Fails if on_htp hands back the program's bytes again,
    or if the flatbuffer read misses a delegate id (a QNN program then runs without its libraries)."""
    from harness.sim import fake_runners

    program = tiny_llm / f"{TINY_LLM[0]}.pte"
    flatbuffer = fake_runners.program_flatbuffer(str(program))
    assert fake_runners.XNNPACK_DELEGATE_ID in flatbuffer and len(flatbuffer) < program.stat().st_size / 4
    assert fake_runners.on_htp("whisper_runner", str(program)) == str(program)
    qnn = _as_qnn_build(tiny_llm, f"{TINY_LLM[0]}.pte", tmp_path / "qnn")
    monkeypatch.setenv("HARNESS_SIM_ROOT", str(tmp_path / "phone"))
    for variable in ("HARNESS_SIM_ENV_LD_LIBRARY_PATH", "HARNESS_SIM_CWD", "HARNESS_SIM_SOC"):
        monkeypatch.delenv(variable, raising=False)
    assert fake_runners.on_htp("whisper_runner", str(qnn)) is None  # no libqnn_executorch_backend.so: no load
    write(tmp_path / "phone" / "qnn" / "libqnn_executorch_backend.so", "stands in\n")
    for library in ("libQnnHtp.so", "libQnnHtpV75Stub.so", "libQnnHtpV75Skel.so"):
        write(tmp_path / "phone" / "qnn" / library, "stands in\n")
    monkeypatch.setenv("HARNESS_SIM_ENV_LD_LIBRARY_PATH", "/qnn")
    monkeypatch.setenv("HARNESS_SIM_ENV_ADSP_LIBRARY_PATH", "/qnn")
    assert fake_runners.on_htp("whisper_runner", str(qnn)) == program.read_bytes()  # the XNNPACK program again


def _qnn_sdk(root, version: str = "V75"):
    """A QNN SDK with one chip's Stub and Skel (files stand in for the libraries)."""
    for rel in ("lib/aarch64-android/libQnnHtp.so", f"lib/aarch64-android/libQnnHtp{version}Stub.so",
                "lib/aarch64-android/libQnnHtpPrepare.so", "lib/aarch64-android/libQnnSystem.so",
                f"lib/hexagon-{version.lower()}/unsigned/libQnnHtp{version}Skel.so"):
        write(root / rel, f"stands in for {rel}\n")
    return root


def _qnn_phone_inventory(tmp_path, serial, port, tools: list[str], backends: str, soc: str = "SM8650",
                         sdk_version: str = "V75"):
    """An SM8650 with these benchmark binaries, the QNN SDK (``sdk_version``'s Stub and Skel) and ExecuTorch's QNN
    backend library; ``soc`` as the inventory says it."""
    _inventory(tmp_path, serial, port, tools, backends, soc, other_tools={
        "qnn_sdk": _qnn_sdk(tmp_path / "qairt", sdk_version),
        "qnn_executorch_backend": write(tmp_path / "et-android" / "libqnn_executorch_backend.so", "stands in\n")})


@pytest.mark.slow
def test_a_qnn_whisper_bundle_is_transcribed_with_its_qnn_libraries_pushed(
        tmp_path, adb_server, phones, qnn_bundle):
    """A transcription chain whose model is a qnn build: whisper_runner needs ExecuTorch's QNN backend library and
    the QNN SDK's libraries on the phone, on LD_LIBRARY_PATH and ADSP_LIBRARY_PATH, as qnn_executor_runner does.
    The code as it was pushed none of them and set no path: the phone's loader refused the runner ("CANNOT LINK
    EXECUTABLE ... libqnn_executorch_backend.so") and every such cell failed."""
    server, serial = phones()
    _qnn_phone_inventory(tmp_path, serial, adb_server.port, ["whisper_runner"], "qnn")
    plan = write(tmp_path / "plan.yaml", f"""
        name: asr-qnn
        inventory: devices.yaml
        warmup_iterations: 0
        timeout_s: 300
{bundle_accuracy(qnn_bundle, limit='1')}
        """)
    (cell,) = measure(plan, tmp_path / "r.db").cells
    assert cell.status == "ok" and cell.runner == "android-whisper-runner", (cell.reason, cell.log)
    assert len(cell.transcripts) == 1 and cell.transcripts[0]["hypothesis"].strip()
    pushed = sorted(p.name for p in (server.phone.root / "data/local/tmp/harness/qnn-v75").iterdir())
    assert pushed == [".harness-pushed", "libQnnHtp.so", "libQnnHtpPrepare.so", "libQnnHtpV75Skel.so",
                      "libQnnHtpV75Stub.so", "libQnnSystem.so", "libqnn_executorch_backend.so"]


@pytest.mark.slow
def test_a_chain_with_a_qnn_part_carries_the_plans_htp_performance_mode(tmp_path, qnn_bundle):
    """Only latency cells got the plan's htp_performance_mode: a chain's QNN parts always ran in burst, and a
    change of the mode did not make the nights not comparable."""
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan

    _qnn_phone_inventory(tmp_path, "X", 5037, ["whisper_runner"], "qnn")
    plan = write(tmp_path / "plan.yaml", f"""
        name: asr-qnn
        inventory: devices.yaml
        htp_performance_mode: balanced
{bundle_accuracy(qnn_bundle, limit='1')}
        """)
    parsed, _, lines = load_plan(plan)
    (cell,), _ = expand_plan(parsed, plan, lines, load_inventory(tmp_path / "devices.yaml"))
    assert cell.chain is not None and cell.settings.htp_performance_mode == "balanced", cell.settings


def harvard_subset(folder, ids: list[str]):
    """A corpus of these Harvard utterances only, in this order (their manifest lines and audio, copied)."""
    lines = (REPO / "corpora" / "harvard-hibari" / "manifest.jsonl").read_text().splitlines()
    by_id = {json.loads(line)["id"]: line for line in lines if line.strip()}
    for utt_id in ids:
        copy_model(REPO / "corpora" / "harvard-hibari" / "audio", f"{utt_id}.wav", folder / "audio")
    write(folder / "manifest.jsonl", "".join(by_id[utt_id] + "\n" for utt_id in ids))
    return folder


def _pipeline_plan(tmp_path, model, vad, llm, seq_len: int = 20, utterances: int = 1,
                   corpus=REPO / "corpora" / "harvard-hibari") -> object:
    """A plan with one voice pipeline (VAD, the Whisper bundle, the LLM) over the first utterances of the corpus."""
    return write(tmp_path / "plan.yaml", f"""
        name: pipe
        inventory: devices.yaml
        warmup_iterations: 0
        timeout_s: 300
        llm: {{seq_len: {seq_len}}}
        accuracy:
          corpus: {corpus}
          limit: {utterances}
          chains:
            - name: phone-pipeline
              model: {model}
              vad: {vad}
              llm: {llm}
        """)


@pytest.fixture(scope="session")
def silero_vad(tmp_path_factory):
    """The zoo's FP32 Silero VAD, built once and kept in the tests' build cache (each pipeline test built it again)."""
    from tests.conftest import reference_builds

    return reference_builds(tmp_path_factory, "vad", ["silero-vad-fp32"])


def _vad_build(tmp_path, silero_vad, backend: str | None = None):
    """The FP32 VAD in ``tmp_path``/vad, its manifest saying ``backend`` (the zoo's own when None)."""
    manifest = json.loads((silero_vad / "silero-vad-fp32.onnx.manifest.json").read_text())
    manifest["backend"] = backend or manifest["backend"]
    return copy_model(silero_vad, "silero-vad-fp32.onnx", tmp_path / "vad", manifest=manifest)


@pytest.mark.slow
def test_a_pipeline_on_qnn_runs_its_vad_on_the_npu_and_its_whisper_with_the_qnn_libraries(
        tmp_path, adb_server, phones, qnn_bundle, tiny_llm, silero_vad):
    """An ort-qnn VAD, a qnn Whisper bundle and a qnn LLM in one phone pipeline.  The code as it was ran the VAD
    with -e cpu whatever its backend (an ort-qnn VAD measured on the CPU, unsaid), and pushed no QNN library for
    the bundle or the LLM (whisper_runner and llama_main refused by the phone's loader: the cell failed)."""
    server, serial = phones()
    _qnn_phone_inventory(tmp_path, serial, adb_server.port, ["whisper_runner", "onnxruntime_perf_test", "llama_main"],
                         "qnn, ort-qnn")
    plan = _pipeline_plan(tmp_path, qnn_bundle,
                          _vad_build(tmp_path, silero_vad, "ort-qnn"),
                          _as_qnn_build(tiny_llm, TINY_LLM[0] + ".pte", tmp_path / "llm"))
    (cell,) = measure(plan, tmp_path / "r.db").cells
    assert cell.status == "ok" and cell.runner == "android-pipeline", (cell.reason, cell.log)
    vad_runs = [a for a in server.phone.invocations if a[0] == "onnxruntime_perf_test"]
    assert vad_runs and all(a[a.index("-e") + 1] == "qnn" for a in vad_runs), vad_runs
    assert all("session.disable_cpu_ep_fallback|1" in a for a in vad_runs), vad_runs
    assert "VAD windows (-e qnn)" in cell.log, cell.log  # the cell's notes say where the VAD ran
    row = cell.transcripts[0]
    assert row["hypothesis"].strip() and row["vad_ms"] > 0 and row["llm_ms"] >= 0 and row["continuation"].strip(), row


@pytest.mark.slow
def test_an_ort_qnn_vad_that_cannot_reach_the_npu_fails_the_pipeline_instead_of_measuring_the_cpu(
        tmp_path, adb_server, phones, whisper_bundle, tiny_llm, silero_vad):
    """The inventory says SM8550 on an SM8650 phone: the VAD's QNN EP cannot set up its backend.  The code as it was
    never asked for the QNN EP (-e cpu), so the pipeline's VAD time was the CPU's and the cell ok; now the QNN EP
    runs with CPU fallback disabled and the cell fails saying why, before Whisper or the LLM run."""
    server, serial = phones()
    del server.phone.props["ro.soc.model"]  # as on Android 11: the phone cannot say the inventory is wrong
    _qnn_phone_inventory(tmp_path, serial, adb_server.port, ["whisper_runner", "onnxruntime_perf_test", "llama_main"],
                         "xnnpack, ort-qnn", soc="SM8550", sdk_version="V73")
    plan = _pipeline_plan(tmp_path, whisper_bundle / "whisper-tiny.en-asr-fp32-xnnpack.pte",
                          _vad_build(tmp_path, silero_vad, "ort-qnn"), tiny_llm / (TINY_LLM[0] + ".pte"))
    (cell,) = measure(plan, tmp_path / "r.db").cells
    assert cell.status == "failed", (cell.reason, cell.log)
    assert "did not take the whole graph" in cell.reason and "SetupBackend failed" in cell.reason, cell.reason
    stages = [a for a in server.phone.invocations if a[0] in ("whisper_runner", "llama_main") and "--help" not in a]
    assert not stages, stages
