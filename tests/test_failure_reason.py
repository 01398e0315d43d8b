"""A failed run's one-line reason carries the cause from the command's output (harness.runners.base)."""

import pytest

from harness.devices.base import CommandResult
from harness.runners.base import RunnerFailure, check_command, last_error_line

ORT_TRACEBACK = """\
Traceback (most recent call last):
  File "/work/main/harness/runners/host_worker.py", line 91, in measure
    outputs = session.run(None, feeds)
  File "/venv/onnxruntime/capi/onnxruntime_inference_collection.py", line 220, in run
    raise ValueError("errors here are not the cause")
onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument: [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : \
Got invalid dimensions for input: x for the following indices
 index: 1 Got: 3 Expected: 4
"""

ET_LLM_LOG = """\
I 00:00:00.010 executorch:text_llm_runner.cpp:90] Reading metadata from model
E 00:00:00.200 executorch:text_llm_runner.cpp:143] Max new tokens 0 is less than or equal to 0
I 00:00:00.201 executorch:cpuinfo_utils.cpp:62] Reading file /sys/devices/soc0/image_version
"""


def test_python_exception_line_not_a_frame_nor_its_continuation():
    cause = last_error_line(ORT_TRACEBACK)
    assert cause.startswith("onnxruntime.capi.") and "invalid dimensions" in cause


def test_an_error_keeps_its_indented_continuation_lines_up_to_three():
    # Mutation caught: only the first line of the error kept (the old reason ended at "the following indices",
    # the key part "index: 1 Got: 3 Expected: 4" only in the log); and continuation lines left unbounded.
    assert last_error_line(ORT_TRACEBACK).endswith("INVALID_ARGUMENT : Got invalid dimensions for input: x for the "
                                                   "following indices index: 1 Got: 3 Expected: 4")
    many = "error: bad shape\n one\n two\n three\n four\nI 00:00:00.3 done\n"
    assert last_error_line(many) == "error: bad shape one two three"


def test_et_error_line_before_trailing_info_lines():
    assert last_error_line(ET_LLM_LOG) == ("E 00:00:00.200 executorch:text_llm_runner.cpp:143] "
                                           "Max new tokens 0 is less than or equal to 0")


# What the host LLM worker printed for `llm.seq_len: 4` under an 11-token prompt (ExecuTorch's runner logs the
# cause, its Python binding raises a generic error).
LLM_SEQ_LEN_LOG = """\
[text_prefiller.cpp:121] Prefill token result numel(): 1024
[text_llm_runner.cpp:201] Max new tokens resolved: 0, given pos_ 11, num_prompt_tokens 11, max_context_len 128
[text_llm_runner.cpp:209] Max new tokens 0 is less than or equal to 0
Traceback (most recent call last):
  File "/work/main/harness/runners/host_llm_worker.py", line 48, in generate_timed
    runner.generate(prompt, config, token_callback=on_piece, stats_callback=stats.append)
RuntimeError: Generation failed
"""


def test_a_generic_python_error_comes_with_the_native_cause_logged_before_it():
    # Fails when only the last error line is taken ("RuntimeError: Generation failed" says nothing).
    assert last_error_line(LLM_SEQ_LEN_LOG) == ("[text_llm_runner.cpp:209] Max new tokens 0 is less than or equal "
                                                "to 0 (RuntimeError: Generation failed)")


def test_stdout_when_stderr_names_nothing_and_last_line_as_fallback():
    assert last_error_line("", "step 1\nerror: model file missing\n") == "error: model file missing"
    assert last_error_line("loading\nbye now\n", "") == "bye now"
    assert last_error_line("", "") == ""
    assert len(last_error_line("error " + "x" * 1000)) <= 240


@pytest.mark.parametrize("code,status", [(1, "failed"), (-11, "crashed")])
def test_check_command_reason_names_the_cause(code, status):
    result = CommandResult(["worker"], code, "", ET_LLM_LOG, 1.0)
    with pytest.raises(RunnerFailure) as caught:
        check_command(result, "the host worker")
    # Fails when check_command says only "exited with code 1" / "was killed by SIGSEGV".
    assert caught.value.status == status and caught.value.reason.endswith("less than or equal to 0")


@pytest.mark.parametrize("code,status,said", [
    (255, "failed", "exited with code 255"),  # onnxruntime_perf_test's `return -1`: was "killed by signal 127"
    (139, "crashed", "killed by SIGSEGV (exit 139)"),  # a shell's 128+11
    (137, "crashed", "killed by SIGKILL (exit 137)"),
])
def test_only_exit_codes_a_shell_gives_for_a_signal_are_signals(code, status, said):
    result = CommandResult(["onnxruntime_perf_test"], code, "Run failed:bad input\n", "", 1.0)
    with pytest.raises(RunnerFailure) as caught:
        check_command(result, "onnxruntime_perf_test")
    assert caught.value.status == status and said in caught.value.reason, caught.value.reason
    assert "signal 127" not in caught.value.reason


@pytest.mark.slow  # the LLM's tokenizer and config loaded
@pytest.mark.parametrize("seq_len,refused", [(4, True), (40, False)])
def test_llm_seq_len_the_prompt_fills_is_refused_at_plan_load(tmp_path, model_dir, host_inventory, seq_len, refused):
    """`llm.seq_len: 4` under a prompt of more tokens failed every run ("Max new tokens 0 ..."); now the plan is
    refused with the line and the fix, counted by the build's own tokenizer.  Fails without _check_llm_room."""
    from harness.errors import UserError
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan
    from harness.zoo.llm import write_tokenizer
    from tests.helpers import copy_model, write

    builds = tmp_path / "builds"
    copy_model(model_dir, "tiny.pte", builds, manifest={"model": "m", "stage": "llm", "backend": "xnnpack",
                                                        "quantization": "fp32", "companions": {"tokenizer": "tok.json"}})
    write_tokenizer(builds / "tok.json", 512, ["the birch canoe slid on the smooth planks"] * 20)
    plan = write(tmp_path / "plan.yaml", f"""
        name: llm
        inventory: {host_inventory}
        artifacts: [builds/tiny.pte]
        llm:
          prompt: "The birch canoe slid on the smooth planks"
          seq_len: {seq_len}
        """)
    parsed, _, lines = load_plan(plan)
    if not refused:
        cells, _ = expand_plan(parsed, plan, lines, load_inventory(host_inventory))
        assert cells
        return
    with pytest.raises(UserError) as caught:
        expand_plan(parsed, plan, lines, load_inventory(host_inventory))
    text = str(caught.value)
    assert f"{plan}:6: llm.seq_len is 4 but the prompt alone is" in text and "Fix: set llm.seq_len to at least" in text


def test_a_plan_without_threads_reads_runtime_default_in_a_not_comparable_reason():
    """A night of `threads: 1` against one without `threads` said "threads 1 -> None"; fails with the raw value."""
    from types import SimpleNamespace

    from harness.nightly.checks import not_comparable

    def view(threads):
        return SimpleNamespace(cell=SimpleNamespace(settings={"threads": threads}, runner="host-python", extra={}))

    assert not_comparable(view(1), view(None), {}, {}) == "threads 1 -> runtime default"
    assert not_comparable(view(None), view(None), {}, {}) is None


@pytest.mark.slow  # two short nights measured on the host
def test_a_changed_build_whose_baseline_bytes_left_the_cache_says_it_is_not_paired(tmp_path):
    """The nightly re-measures last night's bytes from the build cache to pair by round; without them it fell
    back to night against night silently.  Fails without _unpaired_why (the reason read as a paired one's)."""
    import json
    import shutil

    from tests.helpers import cli_in_process, export_kws, write

    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    plan = write(tmp_path / "plan.yaml", """
        name: lab
        inventory: devices.yaml
        artifacts: [build/kws.onnx]
        warmup_iterations: 1
        iterations: 5
        runs: 3
        threads: 1
        """)
    (tmp_path / "build").mkdir()
    db = tmp_path / "h.db"
    for night, width in enumerate((64, 96)):
        export_kws(tmp_path / "build" / "kws.onnx", width)
        if night:
            shutil.rmtree(tmp_path / "h-builds")  # last night's bytes are gone from the cache
        proc = cli_in_process("nightly", str(plan), "--db", str(db), "-o", str(tmp_path / f"n{night}"), "--json", "-q")
        assert proc.returncode in (0, 1), proc.stderr[-2000:]
    checks = json.loads((tmp_path / "n1" / "nightly.json").read_text())["checks"]
    (latency,) = [c for c in checks if c["kind"] == "latency"]
    assert "not paired: last night's build is no longer in the build cache" in latency["detail"], latency


def test_host_workers_get_no_thread_count_when_the_plan_sets_none():
    """A plan without `threads` ran the host workers with `--threads 0`; like every other runner, they now get
    no flag (the runtime's default) and the plan's count when it has one.  Fails with the old `or 0`."""
    from pathlib import Path
    from types import SimpleNamespace

    from harness.runners import RunSettings, host_llm, host_python

    art = SimpleNamespace(inputs=None, format="onnx")
    for threads, want in ((None, None), (2, "2")):
        settings = RunSettings(warmup_iterations=1, iterations=2, timeout_s=60, threads=threads)
        for argv in (host_python.build_command("m.onnx", art, settings),
                     host_llm.build_command("m.pte", str(Path("tok.json")), settings)):
            got = argv[argv.index("--threads") + 1] if "--threads" in argv else None
            assert got == want, argv


@pytest.mark.slow  # nights measured on the host
def test_a_failed_chain_is_named_as_its_chain_and_is_not_also_missing_tonight(tmp_path, model_dir):
    """A chain whose encoder broke was reported as its decoder build ('whisper-tiny.en asr-decoder int4 ...
    failed'), counted as a latency cell, and its WER check said 'missing tonight' besides.  Fails without the
    chain label, the chain tile for a failed transcription cell, or the failed chain counted as present."""
    from types import SimpleNamespace

    import numpy as np
    import soundfile as sf

    from harness.nightly.checks import missing_tonight
    from harness.report.model import build_report_data
    from harness.report.verdict import CHAIN_GROUP, MISSING, run_judgements
    from harness.store import Store
    from tests.helpers import chain_parts, measure, write

    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    write(tmp_path / "c" / "manifest.jsonl", '{"id": "u", "audio": "u.wav", "text": "x", "duration_s": 1}\n')
    sf.write(tmp_path / "c" / "u.wav", np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    plan = write(tmp_path / "plan.yaml", """
        name: p
        inventory: devices.yaml
        accuracy: {corpus: c, chains: [{name: broken-int4, PARTS}]}
        """.replace("PARTS", chain_parts(model_dir, tmp_path / "parts")))  # not a Whisper: the chain fails
    measured = measure(plan, tmp_path / "h.db")
    (cell,) = measured.cells
    assert cell.status != "ok" and cell.label == "chain broken-int4", cell.label
    with Store(tmp_path / "h.db") as store:
        data = build_report_data(store, measured.outcome.run_id)
    (failed,) = [c for c in run_judgements(data) if c.status == "failed"]
    assert failed.subject == "chain broken-int4" and failed.group == CHAIN_GROUP, failed
    baseline = SimpleNamespace(run=SimpleNamespace(run_id="B"), cells=[],
                               chains=[SimpleNamespace(cell=SimpleNamespace(device_id="host"),
                                                       chain={"name": "broken-int4"})])
    assert not [c for c in missing_tonight(data, baseline) if c.status == MISSING]


def test_a_chain_that_got_slower_and_bigger_is_shown_not_passed_in_silence():
    """A chain whose encoder bytes were swapped for a 3x bigger build (P95 679 -> 1368 ms) passed the night with no
    check naming it (only budget and WER were checked for chains).  Sizes are exact, so a part that grew is a
    regression; the latency move is shown as undecided (one pass per night cannot be judged), and so is a WER
    check with too few utterances (the banner said '0 undecided' beside three of them)."""
    from types import SimpleNamespace

    from harness.nightly.checks import chain_change_checks
    from harness.report.verdict import headline

    def chain(encoder_sha, encoder_bytes, p95_ms):
        parts = {"encoder": {"sha256": encoder_sha, "size_bytes": encoder_bytes, "quantization": "int8"},
                 "decoder": {"sha256": "d", "size_bytes": 1000, "quantization": "int8"}}
        return SimpleNamespace(chain={"name": "onnx-int8", **parts}, cell=SimpleNamespace(device_id="host"),
                               timing={"p95_total_ms": p95_ms})

    checks = chain_change_checks(chain("a", 11_500_000, 679.0), chain("b", 37_800_000, 1368.0), 0.05)
    by_kind = {c.kind: c for c in checks}
    assert by_kind["size"].status == "regression" and "encoder" in by_kind["size"].subject
    assert by_kind["latency"].status in ("too few runs",) and "679 -> 1368" in by_kind["latency"].detail
    assert "encoder" in by_kind["latency"].detail and "not judged" in by_kind["latency"].detail
    assert chain_change_checks(chain("a", 11_500_000, 679.0), chain("a", 11_500_000, 690.0), 0.05) == []
    # The same bytes moving is the machine (every night a little): not called out, or every banner would fill.
    assert chain_change_checks(chain("a", 11_500_000, 679.0), chain("a", 11_500_000, 1368.0), 0.05) == []
    from harness.report.verdict import Check

    few = Check("host", "onnx-int8", "wer", "too few utterances", "too few utterances for an interval (3)")
    top = headline(checks + [few])
    assert top.counts["undecided"] == 2 and not top.passed


def test_the_advice_for_a_missing_interval_fits_the_plan_that_got_it():
    """'runs too spread for an interval ... (set 'runs' in the plan to 3 or more)' was told to a plan of runs: 3, and
    a stopped run of a runs: 3 plan was told to change its plan instead of resuming.  Fails with the fixed advice."""
    from harness.stats import RunValues, summarize
    from harness.stats.runlevel import more_runs_advice

    assert "set 'runs' in the plan to 3" in more_runs_advice(1)
    assert "--resume" in more_runs_advice(1, runs_planned=3) and "set 'runs'" not in more_runs_advice(1, 3)
    assert "set 'runs'" not in more_runs_advice(3, 3) and "throttling" in more_runs_advice(3, 3)
    spread = [RunValues(1.0, 1.2, 30), RunValues(40.0, 48.0, 30), RunValues(1500.0, 1800.0, 30)]  # > 10x wide
    s = summarize([], spread, runs_planned=3)
    (flag,) = [w for w in s.warnings if "interval" in w]
    assert "too spread" in flag and "set 'runs'" not in flag, flag
