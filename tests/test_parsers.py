"""Parsers are pure functions from a tool's real output format to records; expectations counted by hand."""

from __future__ import annotations

import json

import pytest

from harness.runners import (base, executor_runner, host_llm, llama_main, onnxruntime_perf_test, pytorch_observer, qnn_executor_runner,
                             whisper_runner)
from harness.thermal import thermalservice
from tests.helpers import REPO, cli_in_process, run_cli

LOGS = REPO / "tests" / "logs"


def test_executor_runner_logcat_gives_every_iteration():
    m = executor_runner.parse((LOGS / "executor_runner_logcat.txt").read_text())
    assert m.samples_ms == [12.5, 12.25, 13.0, 12.75] and m.load_ms == 41.25
    assert m.extra["executions"] == 4 and m.extra["total_ms"] == 50.5  # a total, not a mean
    assert m.extra["mean_ms"] == pytest.approx(12.625)


def test_old_executor_runner_prints_only_a_total():
    m = executor_runner.parse((LOGS / "executor_runner_old.txt").read_text())
    # No iterations, so no percentiles: the run's centre is its mean, said as such, and no P95 stands in.
    assert m.samples_ms == [] and m.summary_ms == {"mean_ms": 25.0} and "only a total" in m.notes[0]
    with pytest.raises(ValueError):
        executor_runner.parse("Segmentation fault\n")


def test_executor_runner_flags_come_from_the_binarys_gflags_help(monkeypatch):
    # gflags' --help (as v1.2's executor_runner prints it, then exits 1): --print_all_output, no --print_output.
    help_text = """executor_runner: Usage...
  Flags from examples/portable/executor_runner/executor_runner.cpp:
    -cpu_threads (Number of CPU threads for inference. Defaults to -1, which implies we'll use a heuristic
      to derive the # of performant cores for a specific device.) type: int32 default: -1
    -model_path (Model serialized in flatbuffer format.) type: string default: "model.pte"
    -num_executions (Number of times to run the model.) type: uint32 default: 1
    -print_all_output (Prints all output. By default only first and last 100 elements are printed.)
      type: bool default: false
"""
    from types import SimpleNamespace

    asked = []

    class Phone:
        def run(self, argv, timeout_s):
            asked.append(argv)
            return SimpleNamespace(stdout=help_text, stderr="", exit_code=1, timed_out=False)

    runner = "/data/local/tmp/harness/" + "ab" * 32 + "/executor_runner"
    monkeypatch.setattr(base, "_ACCEPTED", {})  # the cache of an earlier test session in this process (mutmut's)
    flags = base.accepted_flags(Phone(), runner)
    assert {"model_path", "num_executions", "cpu_threads", "print_all_output"} <= flags and "print_output" not in flags
    assert "--print_output" not in executor_runner.build_command(runner, "m.pte", 5, None, flags)
    base.accepted_flags(Phone(), runner)
    assert asked == [[runner, "--help"]]  # asked once per binary
    # A binary whose --help names no model_path (it crashed or hung answering) is asked once too: every cell of
    # a hanging binary waited out the help's timeout again.
    help_text, hanging = "", runner.replace("ab" * 32, "cd" * 32)
    assert base.accepted_flags(Phone(), hanging) is None and base.accepted_flags(Phone(), hanging) is None
    assert asked == [[runner, "--help"], [hanging, "--help"]]


def test_commands_are_argument_lists():
    argv = executor_runner.build_command("/data/local/tmp/harness/bin/executor_runner", "/data/local/tmp/m.pte", 50, 4)
    assert argv[1:] == ["--model_path", "/data/local/tmp/m.pte", "--num_executions", "50", "--print_output", "none",
                        "--cpu_threads", "4"]
    argv, env = qnn_executor_runner.build_command("qnn_executor_runner", "m.pte", 100, 5, "/data/local/tmp/qnn")
    assert env == {"LD_LIBRARY_PATH": "/data/local/tmp/qnn", "ADSP_LIBRARY_PATH": "/data/local/tmp/qnn"}
    assert argv[argv.index("--warm_up") + 1] == "5" and "--htp_performance_mode" in argv
    qnn = onnxruntime_perf_test.build_command("p", "m.onnx", 200, "qnn", qnn_lib_dir="/data/local/tmp/q")
    # -C "key|value": perf_test's session config entries (command_args_parser.cc), CPU fallback off for the NPU.
    assert qnn == ["p", "-e", "qnn", "-m", "times", "-r", "200", "-I", "-i",
                   "backend_path|/data/local/tmp/q/libQnnHtp.so htp_performance_mode|burst",
                   "-C", "session.disable_cpu_ep_fallback|1", "m.onnx"]
    assert "-C" not in onnxruntime_perf_test.build_command("p", "m.onnx", 200, "cpu")
    with pytest.raises(ValueError, match="QNN libraries"):
        onnxruntime_perf_test.build_command("p", "m.onnx", 200, "qnn")


def test_the_plans_htp_mode_reaches_qnn_executor_runner_as_executorchs_number():
    # QnnExecuTorchHtpPerformanceMode (qc_schema.py, v1.0.0-v1.4.0): burst 2, sustained_high_performance 1.
    # Catches the fixed "--htp_performance_mode 1" (sustained) the runner was given whatever the plan said.
    argv, _ = qnn_executor_runner.build_command("q", "m.pte", 10, 0, "/l")
    assert argv[argv.index("--htp_performance_mode") + 1] == "2"
    argv, _ = qnn_executor_runner.build_command("q", "m.pte", 10, 0, "/l", "sustained_high_performance")
    assert argv[argv.index("--htp_performance_mode") + 1] == "1"
    # ONNX Runtime's QNN EP takes the same mode by name, among its -i 'key|value' pairs.
    argv = onnxruntime_perf_test.build_command("p", "m.onnx", 5, "qnn", qnn_lib_dir="/q",
                                               htp_performance_mode="sustained_high_performance")
    assert "htp_performance_mode|sustained_high_performance" in argv[argv.index("-i") + 1].split()


def _perf_test_result(code: int, stdout: str = "", stderr: str = ""):
    from harness.devices.base import CommandResult

    return CommandResult(["onnxruntime_perf_test"], code, stdout, stderr, 1.0)


def test_ort_qnn_that_fell_back_to_the_cpu_is_not_a_measurement():
    """ORT logs "QNN SetupBackend failed" (to logcat on Android), runs the graph on the CPU and exits 0: the code
    as it was stored that as NPU latency.  With fallback disabled the tool exits 255 with inference_session.cc's
    message; the reason says the EP did not take the graph, not "signal 127"."""
    summary = (LOGS / "onnxruntime_perf_test.txt").read_text()
    logcat = (" E onnxruntime:  [E:onnxruntime:, qnn_execution_provider.cc:591 GetCapability] QNN SetupBackend "
              "failed qnn_backend_manager.cc:334 InitializeBackend Failed to initialize backend\n")
    with pytest.raises(base.RunnerFailure, match="did not take the whole graph.*SetupBackend failed"):
        onnxruntime_perf_test.check_run(_perf_test_result(0, summary), logcat)
    refused = ("This session contains graph nodes that are assigned to the default CPU EP, but fallback to CPU EP "
               "has been explicitly disabled by the user.\n")
    with pytest.raises(base.RunnerFailure, match="did not take the whole graph.*explicitly disabled") as failure:
        onnxruntime_perf_test.check_run(_perf_test_result(255, "", refused))
    assert "signal" not in failure.value.reason
    onnxruntime_perf_test.check_run(_perf_test_result(0, summary))  # a clean run passes


def test_a_missing_onnxruntime_library_names_the_inventory_key():
    """bionic's message for a shared ORT build without its libraries (linker_main.cpp / linker.cpp)."""
    stderr = ('CANNOT LINK EXECUTABLE "/data/local/tmp/harness/ab/onnxruntime_perf_test": library "libonnxruntime.so" '
              "not found: needed by main executable\n")
    with pytest.raises(base.RunnerFailure, match="tools.onnxruntime_libs.*libonnxruntime.so"):
        onnxruntime_perf_test.check_run(_perf_test_result(1, "", stderr))


def test_the_onnxruntime_libraries_each_backend_needs(tmp_path):
    """An ort-qnn cell also needs the shared QNN EP's two libraries; any ORT cell needs libonnxruntime.so.  (Was
    not checked before the phone: any .so in the folder passed.)"""
    (tmp_path / "libonnxruntime.so").write_text("stands in\n")
    assert onnxruntime_perf_test.missing_ort_libraries(tmp_path, "ort-cpu") == []
    assert onnxruntime_perf_test.missing_ort_libraries(tmp_path, "ort-qnn") == [
        "libonnxruntime_providers_shared.so", "libonnxruntime_providers_qnn.so"]
    (tmp_path / "libonnxruntime.so").unlink()
    assert onnxruntime_perf_test.missing_ort_libraries(tmp_path, "ort-cpu") == ["libonnxruntime.so"]


def test_qnn_libraries_follow_the_soc():
    # The SDK's own layout, as ExecuTorch's Qualcomm docs push it (docs/source/backends-qualcomm.md).
    assert qnn_executor_runner.qnn_libraries("SM8650") == [
        "lib/aarch64-android/libQnnHtp.so", "lib/aarch64-android/libQnnHtpV75Stub.so",
        "lib/aarch64-android/libQnnHtpPrepare.so", "lib/aarch64-android/libQnnSystem.so",
        "lib/hexagon-v75/unsigned/libQnnHtpV75Skel.so"]
    assert "lib/aarch64-android/libQnnHtpV79Stub.so" in qnn_executor_runner.qnn_libraries("sm8750")
    assert "lib/hexagon-v81/unsigned/libQnnHtpV81Skel.so" in qnn_executor_runner.qnn_libraries("SM8850")
    with pytest.raises(ValueError, match="unknown Snapdragon"):
        qnn_executor_runner.qnn_libraries("SM7325")


def test_qnn_executor_runner_total_and_speed_file():
    m = qnn_executor_runner.parse((LOGS / "qnn_executor_runner.txt").read_text(), "5.1230\n")
    assert m.extra == {"executions": 100, "total_ms": 512.3, "mean_ms": 5.123, "inference_speed_txt_ms": 5.123}


def test_qnn_executor_runner_without_an_input_list():
    # examples/qualcomm/executor_runner/qnn_executor_runner.cpp (executorch main): with no input list the
    # iterations are timed as one ET_LOG "%d inferences took %f ms, avg %f ms" (here as logcat shows it).
    m = qnn_executor_runner.parse((LOGS / "qnn_executor_runner_no_input_list.txt").read_text())
    assert m.extra == {"executions": 100, "total_ms": 512.3, "mean_ms": 5.123} and m.summary_ms == {"mean_ms": 5.123}
    with pytest.raises(ValueError, match="inferences took"):
        qnn_executor_runner.parse("I 00:00:00.1 executorch:x.cpp:1] Model executed successfully.")


def test_onnxruntime_perf_test_current_and_old_formats():
    m = onnxruntime_perf_test.parse((LOGS / "onnxruntime_perf_test.txt").read_text())
    assert m.load_ms == pytest.approx(53.2) and m.first_inference_ms == 14 and m.extra["mean_ms"] == 12.345
    assert m.extra["p90_ms"] == pytest.approx(13.5) and m.extra["p999_ms"] == pytest.approx(20.1)
    assert m.peak_rss_mb == 50.0 and m.extra["requests"] == 100
    # Current builds (the layout of the transcripts in Arm's published onnxruntime_perf_test runs): the mean is
    # "Average inference time cost total", and the summary is repeated in a compact form ("Runs:50").
    total = onnxruntime_perf_test.parse((LOGS / "onnxruntime_perf_test_total.txt").read_text())
    assert total.extra["mean_ms"] == pytest.approx(12.2424) and total.summary_ms["p95_ms"] == pytest.approx(13.1007)
    assert total.extra["requests"] == 50 and total.peak_rss_mb == pytest.approx(61865984 / 2**20)
    old = onnxruntime_perf_test.parse((LOGS / "onnxruntime_perf_test_old.txt").read_text())
    assert old.extra["p50_ms"] == pytest.approx(12.0) and old.extra["p95_ms"] == pytest.approx(13.9)


def test_pytorch_observer_derives_generation_figures():
    s = pytorch_observer.parse((LOGS / "llama_main.txt").read_text())
    assert s.load_ms == 2500 and s.time_to_first_token_ms == 250  # 4250 - 4000
    assert s.prefill_tokens_per_s == pytest.approx(20 / 0.2)  # 20 prompt tokens in 200 ms
    assert s.decode_tokens_per_s == pytest.approx(64 / 3.2)  # 64 tokens from 4200 to 7400 ms
    assert s.total_ms == 3400


def test_llama_main_output_is_one_sample_with_its_generation_figures():
    m = llama_main.parse((LOGS / "llama_main.txt").read_text())
    assert m.samples_ms == [250] and m.load_ms == 2500
    assert m.extra["total_ms"] == 3400 and m.extra["generated_tokens"] == 64


def test_host_llm_worker_output_one_sample_per_measured_generation():
    # Recorded from the real worker over the tiny Qwen2-family build; the runner's own printf lines
    # (generated text, PyTorchObserver) are interleaved with the worker's lines, as they are live.
    m = host_llm.parse((LOGS / "host_llm_worker.txt").read_text())
    assert m.samples_ms == [1.0, 0.0]  # first_token_ms - inference_start_ms: 398 - 397, 398 - 398
    assert m.warmup_ms == [1.0] and m.load_ms == 2.0  # load from the first generation: 394 - 392
    assert m.peak_rss_mb == pytest.approx(371.44140625)
    assert (m.extra["prompt_tokens"], m.extra["generated_tokens"], m.extra["total_ms_median"]) == (9, 2, 1.5)
    with pytest.raises(ValueError, match="HARNESS_RESULT"):
        host_llm.parse("Traceback (most recent call last):\n")
    # Workers now time the first token themselves (the stats tick in whole ms): that value is the sample.
    timed = (LOGS / "host_llm_worker.txt").read_text().replace('"phase": "measured", ', '"phase": "measured", "first_token_ms": 0.75, ')
    assert host_llm.parse(timed).samples_ms == [0.75, 0.75] and host_llm.parse(timed).warmup_ms == [1.0]


def test_whisper_runner_benchmark_lines_and_the_stats_line_fallback():
    m = whisper_runner.parse((LOGS / "whisper_runner_logcat.txt").read_text())
    assert (m.samples_ms, m.load_ms, m.extra) == ([388.25], 410.52, {"tokens": 14})
    # A runner that prints only the PyTorchObserver line: inference is its start-to-end span.
    from_stats = whisper_runner.parse((LOGS / "llama_main.txt").read_text())
    assert (from_stats.samples_ms, from_stats.load_ms, from_stats.extra) == ([3400], 2500, {"tokens": 64})
    with pytest.raises(ValueError, match="--benchmark"):
        whisper_runner.parse("First 2 values of audio data: 0.1, 0.2\n")


def test_whisper_runner_transcript_is_stdout_without_special_tokens_or_the_stats_line():
    # runner.cpp (03d27e7) prints every generated token through decode(prev, cur), which spells special
    # tokens out, then "\n" and print_report's line; a token the tokenizer cannot spell prints nothing.
    stdout = ('<|startoftranscript|> the birch can use slit on the smooth planks.<|endoftext|>\n'
              'PyTorchObserver {"prompt_tokens":0,"generated_tokens":17}\n')
    assert whisper_runner.transcript_of(stdout) == "the birch can use slit on the smooth planks."
    assert whisper_runner.transcript_of("<|notimestamps|> It's easy.<|endoftext|>\n") == "It's easy."
    assert whisper_runner.transcript_of("<|endoftext|>\n") == ""


def test_llm_and_asr_commands_are_argument_lists():
    argv = llama_main.build_command("/r/llama_main", "/m/a b.pte", "/m/tok", "It's \"raining\"; rm -rf /", 16, 4)
    assert argv[argv.index("--prompt") + 1] == "It's \"raining\"; rm -rf /"  # one argument, quoted by the transport
    assert argv[argv.index("--temperature") + 1] == "0" and argv[-2:] == ["--cpu_threads", "4"]
    w = whisper_runner.build_command("/r/w", "/m/model.pte", "/m/tok", "/m/proc.pte", "/a/u 1.bin")
    assert w[w.index("--audio_path") + 1] == "/a/u 1.bin" and "--benchmark" in w


def test_thermalservice_status_and_hal_temperatures():
    d = thermalservice.parse((LOGS / "thermalservice.txt").read_text())
    assert (d.status, d.status_name) == (2, "MODERATE")
    assert [(r.name, r.type, r.temp_c, r.status) for r in d.temperatures] == [
        ("battery", "BATTERY", 36.5, "NONE"), ("cpu-1-0", "CPU", 71.2, "MODERATE"), ("skin", "SKIN", 39.4, "NONE")]


@pytest.mark.parametrize("tool, log, key, value", [
    ("executor_runner", "executor_runner_logcat.txt", "load_ms", 41.25),
    ("onnxruntime_perf_test", "onnxruntime_perf_test.txt", "first_inference_ms", 14),
    ("llama_main", "llama_main.txt", "samples_ms", [250]),
    ("whisper_runner", "whisper_runner_logcat.txt", "samples_ms", [388.25]),
    ("thermalservice", "thermalservice.txt", "status_name", "MODERATE"),
])
def test_parse_cli_prints_json(tool, log, key, value):
    proc = cli_in_process("parse", tool, str(LOGS / log))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[key] == value


def test_parse_cli_rejects_the_wrong_log():
    proc = run_cli("parse", "thermalservice", str(LOGS / "llama_main.txt"))
    assert proc.returncode == 2 and "not thermalservice output" in proc.stderr and "Traceback" not in proc.stderr


def test_the_phone_pipeline_counts_vad_windows_as_silero_s_wrapper_steps():
    """vad_windows (from a clip's length) against the feeds harness.models.vad actually yields for such a clip."""
    import numpy as np

    from harness.models.vad import vad_frames
    from harness.runners.android_pipeline import vad_windows

    for samples in (512, 513, 1023, 1024, 16000, 42400, 44100):
        fed = sum(1 for _ in vad_frames(np.zeros(samples, np.float32), lambda feed: feed["state"]))
        assert vad_windows(samples / 16000) == fed, samples


def test_perf_test_data_is_the_manifest_s_inputs_as_named_tensor_protos(tmp_path):
    """onnx_test_runner's layout, read back with onnx's own loader: one named TensorProto per input, values as the
    manifest gives them (Silero VAD's window, zero state and 16 kHz)."""
    from onnx import load_tensor, numpy_helper

    from harness.runners.onnxruntime_perf_test import build_command, write_test_data
    from harness.zoo.recipes import VAD_INPUTS

    files = write_test_data([dict(spec) for spec in VAD_INPUTS], tmp_path / "test_data_set_0")
    assert [f.name for f in files] == ["input_0.pb", "input_1.pb", "input_2.pb"]
    tensors = {t.name: numpy_helper.to_array(t) for t in map(load_tensor, map(str, files))}
    assert tensors["input"].shape == (1, 576) and tensors["input"].dtype == "float32" and tensors["input"].std() > 0.5
    assert tensors["state"].shape == (2, 1, 128) and not tensors["state"].any()
    assert tensors["sr"].shape == () and int(tensors["sr"]) == 16000 and tensors["sr"].dtype == "int64"
    # With test data staged the tool must not be told to make its own inputs (-I): -s keeps the percentiles.
    argv = build_command("perf", "/m/model.onnx", 7, test_data=True)
    assert "-I" not in argv and "-s" in argv and argv[-1] == "/m/model.onnx"
    assert "-I" in build_command("perf", "/m/model.onnx", 7)


def test_an_ios_result_nested_deeply_or_with_a_key_twice_is_a_contract_error():
    # Catches: ios_result parsed with plain json.loads: 100,000 '[' gave a RecursionError traceback, and a
    # duplicated "status" silently kept the second value.
    from harness.runners import ios_app

    with pytest.raises(ValueError, match="nested too deeply"):
        ios_app.parse("[" * 100_000 + "]" * 100_000)
    shipped = (REPO / "harness/runners/ios_contract/examples/result.latency.json").read_text()
    with pytest.raises(ValueError, match="appears twice"):
        ios_app.parse(shipped.replace('"status"', '"status": "failed", "status"', 1))
    assert ios_app.parse(shipped).samples_ms, "the shipped example must still parse"


@pytest.mark.parametrize("line, wrong, field", [
    ("P50 Latency: 0.0121 s", "P50 Latency: -0.0012 s", "p50_ms"),
    ("Session creation time cost: 0.0532 s", "Session creation time cost: -5 s", "load_ms"),
    ("P95 Latency: 0.0142 s", "P95 Latency: 0.0100 s", "p95_ms"),  # below P50 (12.1 ms)
    ("P95 Latency: 0.0142 s", "P95 Latency: 1e309 s", "p95_ms"),
])
def test_parse_refuses_impossible_runner_numbers_naming_the_field(tmp_path, line, wrong, field):
    # Catches: 'harness parse' (and a run) taking a negative P50 (-1.2 ms), a negative load time, P95 below
    # P50 or an infinite P95 (printed as null) from a runner's output; the shipped log still parses.
    text = (LOGS / "onnxruntime_perf_test.txt").read_text()
    base.check_measured(onnxruntime_perf_test.parse(text))
    (tmp_path / "ort.txt").write_text(text.replace(line, wrong))
    proc = cli_in_process("parse", "onnxruntime_perf_test", str(tmp_path / "ort.txt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert field in proc.stderr and "Fix:" in proc.stderr and "ort.txt" in proc.stderr, proc.stderr


@pytest.mark.parametrize("latency", ["[1e308, 12.0]", "[]", "[12.0, 1e309]"])
def test_an_ios_result_with_impossible_or_no_latencies_is_refused(latency):
    # Catches: ios_result accepting 1e308 ms, an empty latency_ms with status ok, and 1e309 (infinite).
    import re

    from harness.runners import ios_app

    shipped = (REPO / "harness/runners/ios_contract/examples/result.latency.json").read_text()
    with pytest.raises(ValueError, match="samples_ms|nothing was measured"):
        base.check_measured(ios_app.parse(re.sub(r'"latency_ms":\s*\[[^\]]*\]', f'"latency_ms": {latency}', shipped)))


def test_a_run_fails_a_cell_whose_runner_returned_an_impossible_number():
    # Catches: the run storing NaN / negative samples (stored as null) instead of failing the cell with the field.
    from harness.run import cell

    with pytest.raises(base.RunnerFailure, match=r"impossible number: samples_ms\[1\] is nan"):
        cell._check_numbers(base.Measurement(samples_ms=[12.0, float("nan")]))
    with pytest.raises(base.RunnerFailure, match="warmup_ms"):
        cell._check_numbers(base.Measurement(samples_ms=[12.0], warmup_ms=[-3.0]))
    cell._check_numbers(base.Measurement(samples_ms=[12.0], extra={"measured_start_epoch_s": 1.7e9}))


def test_every_missing_qnn_sdk_file_is_named_at_once(tmp_path):
    """A person fixing a QNN SDK folder learned its five files one run at a time (an outside tester)."""
    from types import SimpleNamespace

    (tmp_path / "sdk" / "lib" / "aarch64-android").mkdir(parents=True)
    (tmp_path / "sdk" / "lib" / "aarch64-android" / "libQnnHtp.so").write_text("x")
    device = SimpleNamespace(id="p", config=SimpleNamespace(tools={"qnn_sdk": tmp_path / "sdk"}, soc="SM8650"),
                             run=lambda *a, **k: pytest.fail("nothing may be pushed before every file is there"))
    with pytest.raises(base.RunnerFailure) as failure:
        qnn_executor_runner.push_qnn_libraries(device, with_executorch_backend=False)
    reason = failure.value.reason
    for name in ("libQnnHtpV75Stub.so", "libQnnHtpPrepare.so", "libQnnSystem.so", "libQnnHtpV75Skel.so"):
        assert name in reason, reason
    assert "libQnnHtp.so," not in reason and "soc" in reason


def _qnn_config(tmp_path, soc="SM8650", **tools):
    from types import SimpleNamespace

    return SimpleNamespace(id="phone", soc=soc, tools=tools)


def test_a_missing_or_empty_qnn_sdk_is_refused_at_plan_load(tmp_path):
    """tools.qnn_sdk missing or empty was found only while measuring: every qnn / ort-qnn cell failed after the
    night had started.  check_qnn_libraries is what the plan calls at load."""
    from harness.errors import UserError

    with pytest.raises(UserError, match="has no tools.qnn_sdk") as err:
        qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path), "ort-qnn", tmp_path / "devices.yaml",
                                                lambda: 7)
    assert "devices.yaml:7" in str(err.value) and "ort-qnn cell" in str(err.value)
    (tmp_path / "sdk").mkdir()  # an empty folder: every library named
    with pytest.raises(UserError, match="libQnnHtpV75Skel.so \\(missing\\)"):
        qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path, qnn_sdk=tmp_path / "sdk"), "ort-qnn",
                                                tmp_path / "devices.yaml")
    for rel in qnn_executor_runner.qnn_libraries("SM8650"):
        (tmp_path / "sdk" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "sdk" / rel).write_text("stands in\n")
    qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path, qnn_sdk=tmp_path / "sdk"), "ort-qnn",
                                            tmp_path / "devices.yaml")
    with pytest.raises(UserError, match="qnn_executorch_backend"):  # a .pte on qnn also needs ExecuTorch's library
        qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path, qnn_sdk=tmp_path / "sdk"), "qnn",
                                                tmp_path / "devices.yaml")
    (tmp_path / "sdk" / "lib" / "aarch64-android" / "libQnnSystem.so").write_bytes(b"")  # an interrupted copy
    with pytest.raises(UserError, match="libQnnSystem.so \\(empty\\)"):
        qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path, qnn_sdk=tmp_path / "sdk"), "ort-qnn",
                                                tmp_path / "devices.yaml")


def test_without_a_soc_yet_the_soc_independent_qnn_libraries_are_checked(tmp_path):
    """The inventory may leave soc to the phone (read when it is opened): the load still refuses an SDK folder
    without the libraries every SoC needs, and does not refuse for the SoC it cannot know."""
    from harness.errors import UserError

    (tmp_path / "sdk").mkdir()
    with pytest.raises(UserError, match="libQnnHtp.so \\(missing\\)") as err:
        qnn_executor_runner.check_qnn_libraries(_qnn_config(tmp_path, soc=None, qnn_sdk=tmp_path / "sdk"),
                                                "ort-qnn", tmp_path / "devices.yaml")
    assert "Skel" not in str(err.value) and "unknown Snapdragon" not in str(err.value)


def test_an_empty_onnxruntime_library_is_refused_as_empty(tmp_path):
    """A zero-byte libonnxruntime.so passed the load check (it is a file) and failed every cell on the phone."""
    (tmp_path / "libonnxruntime.so").write_bytes(b"")
    assert onnxruntime_perf_test.missing_ort_libraries(tmp_path, "ort-cpu") == ["libonnxruntime.so (empty)"]


def test_toybox_time_report_is_taken_off_the_runners_stderr_and_gives_its_peak():
    """toybox time -v (toys/posix/time.c) appends ten lines to stderr; without split_time_report they reached the
    runners' parsers and no peak was read.  The runner's last line may lack its newline."""
    from harness.devices.peak_memory import split_time_report

    report = ("Real time (s): 0.651298\nUser time (s): 0.118850\nSystem time (s): 0.082906\nMax RSS (KiB): 115836\n"
              "Major faults: 0\nMinor faults: 35059\nFile system inputs: 0\nFile system outputs: 8\n"
              "Voluntary context switches: 102\nInvoluntary context switches: 79\n")
    assert split_time_report("E runner said this" + report) == ("E runner said this", 115836 / 1024)
    assert split_time_report("Max RSS (KiB): 5\n") == ("Max RSS (KiB): 5\n", None)  # a runner's own line, no report


def test_llama_main_argv_is_upstream_s_flags_and_its_stats_give_hand_worked_rates():
    """The whole argv against the flags examples/models/llama/main.cpp defines (gflags exits 1 on a flag it does
    not know), and llama_main.parse's rates worked by hand.  Catches a mutated flag name ('--model_path' ->
    '--MODEL_PATH'), a flag dropped or moved, and rates swapped or computed over the wrong span."""
    # DEFINE_* names in examples/models/llama/main.cpp at v1.4.0 (3dd7ccd1d863), the newest tag the module names;
    # v1.0.0 defines the same ones this command uses (data_path instead of data_paths, which the harness never
    # passes).
    upstream_v1_4_0 = {"model_path", "data_paths", "tokenizer_path", "prompt", "prompt_file", "temperature", "seq_len",
                       "max_new_tokens", "cpu_threads", "num_bos", "num_eos", "warmup", "ignore_eos", "etdump_path",
                       "method_name"}
    argv = llama_main.build_command("/r/llama_main", "/m/a b.pte", "/m/tok", "It's raining", 16, 4, warmup=True)
    assert argv == ["/r/llama_main", "--model_path", "/m/a b.pte", "--tokenizer_path", "/m/tok",
                    "--prompt", "It's raining", "--seq_len", "16", "--temperature", "0", "--warmup",
                    "--cpu_threads", "4"]
    assert {a[2:] for a in argv if a.startswith("--")} <= upstream_v1_4_0
    assert llama_main.build_command("/r/llama_main", "/m/a.pte", "/m/tok", "Hi", 8) == [
        "/r/llama_main", "--model_path", "/m/a.pte", "--tokenizer_path", "/m/tok", "--prompt", "Hi",
        "--seq_len", "8", "--temperature", "0"]  # no warm-up, no thread count: neither flag
    # tests/logs/llama_main.txt's stats line, by stats.h's print_report (v1.4.0): prompt evaluation is
    # inference_start 4000 -> prompt_eval_end 4200 ms, so 20 prompt tokens / 0.2 s = 100 tokens/s; generation is
    # prompt_eval_end 4200 -> inference_end 7400 ms, so 64 generated tokens / 3.2 s = 20 tokens/s.
    extra = llama_main.parse((LOGS / "llama_main.txt").read_text()).extra
    assert extra["prompt_tokens"] == 20
    assert extra["prefill_tokens_per_s"] == pytest.approx(100.0)
    assert extra["decode_tokens_per_s"] == pytest.approx(20.0)


def _observer_line(**stats) -> str:
    return "PyTorchObserver " + json.dumps(stats)


def test_pytorch_observer_scales_by_its_units_reads_the_last_line_and_has_no_rate_for_an_empty_phase():
    """Stats in microseconds (SCALING_FACTOR_UNITS_PER_SECOND 1e6), by hand: load 0 -> 2 s is 2000 ms; the first token
    0.6 s after the start; 10 prompt tokens in a 0.5 s prefill, 20 tokens in a 0.8 s decode (both under a second);
    total 1.3 s.  Only the last stats line of a log counts, wherever it sits in its line.  Without the scaling key
    the units are ms; a prefill or decode of no time has no rate (not a division by zero).  Survivors of `make
    mutants` this kills in pytorch_observer: the default unit or the scale changed, an earlier line read, a rate
    required to last over a second, '> 0' made '>= 0'."""
    us = dict(prompt_tokens=10, generated_tokens=20, model_load_start_ms=0, model_load_end_ms=2_000_000,
              inference_start_ms=3_000_000, prompt_eval_end_ms=3_500_000, first_token_ms=3_600_000,
              inference_end_ms=4_300_000, SCALING_FACTOR_UNITS_PER_SECOND=1_000_000)
    earlier = _observer_line(**{**us, "prompt_tokens": 99})
    s = pytorch_observer.parse(f"{earlier}\nI 00:00:04 runner.cpp:1] {_observer_line(**us)}\n")
    assert s.as_dict() == {"load_ms": 2000.0, "time_to_first_token_ms": 600.0, "prefill_tokens_per_s": 20.0,
                           "decode_tokens_per_s": 25.0, "prompt_tokens": 10, "generated_tokens": 20, "total_ms": 1300.0}
    ms = dict(prompt_tokens=3, generated_tokens=0, model_load_start_ms=5, model_load_end_ms=9, inference_start_ms=10,
              prompt_eval_end_ms=10, first_token_ms=12, inference_end_ms=10)
    flat = pytorch_observer.from_json(ms)
    assert (flat.load_ms, flat.time_to_first_token_ms, flat.total_ms) == (4.0, 2.0, 0.0)
    assert (flat.prefill_tokens_per_s, flat.decode_tokens_per_s) == (None, None)
    with pytest.raises(ValueError, match=r"^no 'PyTorchObserver \{\.\.\.\}' line$"):
        pytorch_observer.parse("Once upon a time\n")


def test_llama_main_keeps_the_rates_it_has_and_its_command_asks_for_greedy_text():
    """llama_main.txt by hand: 20 prompt tokens in 200 ms (100/s), 64 in 3.2 s (20/s), total 3400 ms; a stats line
    with no prefill time leaves that rate out rather than storing None.  The command, whole: greedy, --warmup only
    when asked, no --cpu_threads without a thread count.  supports: ExecuTorch LLM programs on XNNPACK or portable,
    on Android.  Survivors of `make mutants` this kills in llama_main: extras dropped or renamed, the None filter
    inverted, --warmup always or never passed, supports' conditions loosened."""
    from types import SimpleNamespace

    m = llama_main.parse((LOGS / "llama_main.txt").read_text())
    assert m.extra == {"total_ms": 3400.0, "prefill_tokens_per_s": pytest.approx(100.0),
                       "decode_tokens_per_s": pytest.approx(20.0), "prompt_tokens": 20, "generated_tokens": 64}
    no_prefill = _observer_line(prompt_tokens=4, generated_tokens=2, model_load_start_ms=0, model_load_end_ms=1,
                                inference_start_ms=10, prompt_eval_end_ms=10, first_token_ms=11, inference_end_ms=30)
    assert "prefill_tokens_per_s" not in llama_main.parse(no_prefill).extra
    assert llama_main.build_command("/r/llama_main", "/m/a.pte", "/m/tok", "hi", 16, warmup=True) == [
        "/r/llama_main", "--model_path", "/m/a.pte", "--tokenizer_path", "/m/tok", "--prompt", "hi", "--seq_len", "16",
        "--temperature", "0", "--warmup"]
    assert "--warmup" not in llama_main.build_command("r", "m", "t", "p", 8)
    art = lambda **kw: SimpleNamespace(**{"format": "pte", "stage": "llm", "backend": "xnnpack", **kw})  # noqa: E731
    assert llama_main.supports("android", art()) and llama_main.supports("android", art(backend="portable"))
    assert not any([llama_main.supports("ios", art()), llama_main.supports("android", art(format="onnx")),
                    llama_main.supports("android", art(stage="asr")), llama_main.supports("android", art(backend="qnn"))])


def test_executor_runner_totals_notes_and_warmups_by_hand():
    """The old runner's one total line: 10 executions in 250 ms, a mean of 25 said in a note; a run of 0 executions
    has no mean and no note.  In-process warm-ups: of 5 printed iterations the first 2 are warm-ups, the other 3 the
    samples, their total and mean recomputed (the runner's own total counts the warm-ups); no more iterations than
    warm-ups is a failure naming both counts.  supports: not LLM or bundled-ASR programs.  Survivors of `make
    mutants` this kills in executor_runner: the note's words, the zero-execution guard, the warm-up slice or counts."""
    from types import SimpleNamespace

    from harness.runners.base import Measurement

    old = executor_runner.parse((LOGS / "executor_runner_old.txt").read_text())
    assert old.extra == {"executions": 10, "total_ms": 250.0, "mean_ms": 25.0} and old.load_ms is None
    assert old.notes == ["this runner version prints only a total: 10 executions in 250.0 ms; each run's centre is "
                         "its mean, and there is no P95"]
    none = executor_runner.parse("Model executed successfully 0 time(s) in 0.000000 ms.")
    assert (none.extra["mean_ms"], none.notes, none.summary_ms) == (None, [], {})
    said = SimpleNamespace(log=lambda: "the runner's log")
    printed = Measurement(samples_ms=[30.0, 20.0, 10.0, 12.0, 14.0], load_ms=5.0, extra={"executions": 5},
                          notes=["n"])
    m = executor_runner._without_warmups(printed, 2, said)
    assert (m.samples_ms, m.warmup_ms, m.load_ms) == ([10.0, 12.0, 14.0], [30.0, 20.0], 5.0)
    assert m.extra == {"executions": 3, "total_ms": 36.0, "mean_ms": 12.0}
    assert m.notes == ["n", "the first 2 executions of the process were its warm-ups"]
    with pytest.raises(base.RunnerFailure, match="printed 2 iterations, not more than the 2 warm-ups"):
        executor_runner._without_warmups(Measurement(samples_ms=[1.0, 2.0]), 2, said)
    art = lambda stage: SimpleNamespace(format="pte", backend="xnnpack", stage=stage)  # noqa: E731
    assert executor_runner.supports("android", art("vad")) and not executor_runner.supports("ios", art("vad"))
    assert not executor_runner.supports("android", art("llm")) and not executor_runner.supports("android", art("asr"))
    assert executor_runner.build_command("r", "m.pte", 3, None, set()) == ["r", "--model_path", "m.pte",
                                                                          "--num_executions", "3"]


def test_qnn_executor_runner_output_notes_and_speed_file_edges():
    """The no-input-list line, by hand: 100 inferences, 512.3 ms, avg 5.123; its one note, whole; a blank
    inference_speed.txt adds nothing, one with more words gives its first.  The command, whole, for burst (2).
    Survivors of `make mutants` this kills in qnn_executor_runner: the note's words, the blank-file test, the
    first word of the speed file, argv order."""
    text = (LOGS / "qnn_executor_runner_no_input_list.txt").read_text()
    assert "inference_speed_txt_ms" not in qnn_executor_runner.parse(text, "  \n").extra
    assert qnn_executor_runner.parse(text, "5.2 ms\n").extra["inference_speed_txt_ms"] == 5.2
    assert qnn_executor_runner.parse(text).notes == [
        "qnn_executor_runner reports an average per invocation only: each run's centre is its mean, and there is no P95"]
    argv, _ = qnn_executor_runner.build_command("q", "m.pte", 10, 3, "/l")
    assert argv == ["q", "--model_path", "m.pte", "--iteration", "10", "--warm_up", "3", "--htp_performance_mode", "2"]
    from types import SimpleNamespace

    assert qnn_executor_runner.supports("android", SimpleNamespace(format="pte", backend="qnn"))
    assert not qnn_executor_runner.supports("android", SimpleNamespace(format="pte", backend="xnnpack"))
    assert not qnn_executor_runner.supports("ios", SimpleNamespace(format="pte", backend="qnn"))


def test_whisper_runner_records_notes_and_flags_by_hand():
    """asr_record by hand: 388.25 ms on 2 s of audio is a real-time factor of 0.194125; no token count stores 0.  A
    bundle starting at the runner's own token (50258) or saying none gets no note; one starting at 50257 gets the
    note with both tokens and the undecodable count summed over utterances (1 + 2).  --benchmark only when --help
    listed it.  An 'Inference time' line alone has no load and no tokens.  Survivors of `make mutants` this kills in
    whisper_runner: the rtf's units, the defaults of a record, the start-token test inverted, the note's numbers,
    wants_benchmark's None case, the parse error's words."""
    from types import SimpleNamespace

    from harness.runners.base import Measurement

    utt = SimpleNamespace(id="u1", text="a b")
    record = whisper_runner.asr_record(utt, "a b", Measurement(samples_ms=[388.25]), 2.0)
    assert record == {"id": "u1", "reference": "a b", "hypothesis": "a b", "tokens": 0, "undecodable_tokens": 0,
                      "mel_ms": None, "encoder_ms": None, "decoder_ms_per_token": None, "total_ms": 388.25,
                      "audio_s": 2.0, "rtf": pytest.approx(0.194125)}
    assert whisper_runner.asr_record(utt, "", Measurement(samples_ms=[1.0]), 0.0)["rtf"] is None
    bundle = lambda start: SimpleNamespace(recipe={"decoder_start_token_id": start})  # noqa: E731
    records = [{"undecodable_tokens": 1}, {"undecodable_tokens": 2}, {}]
    assert whisper_runner.start_token_notes(bundle(50258), records) == []
    assert whisper_runner.start_token_notes(SimpleNamespace(recipe=None), records) == []
    (note,) = whisper_runner.start_token_notes(bundle(50257), records)
    assert note.startswith("this bundle starts decoding at token 50257 (its decoder_start_token_id) but whisper_runner "
                           "always starts at 50258 (examples/models/whisper/main.cpp)")
    assert "(3 generated tokens the tokenizer could not decode)" in note
    assert whisper_runner.wants_benchmark({"benchmark", "model_path"}) and not whisper_runner.wants_benchmark(None)
    assert not whisper_runner.wants_benchmark({"model_path"})
    assert "--benchmark" not in whisper_runner.build_command("r", "m", "t", "p", "a", benchmark=False)
    bare = whisper_runner.parse("Inference time: 12.5 ms\n")
    assert (bare.samples_ms, bare.load_ms, bare.extra) == ([12.5], None, {})
    with pytest.raises(ValueError, match=r"^no 'Inference time: \.\.\. ms' line \(was --benchmark given\?\) and no "
                                         r"PyTorchObserver line$"):
        whisper_runner.parse("nothing\n")
    art = lambda **kw: SimpleNamespace(**{"format": "pte", "stage": "asr", **kw})  # noqa: E731
    assert whisper_runner.supports("android", art()) and not whisper_runner.supports("android", art(stage="llm"))
    assert not whisper_runner.supports("ios", art()) and not whisper_runner.supports("android", art(format="onnx"))


def test_onnxruntime_perf_test_every_figure_in_ms_and_the_command_and_environment_whole():
    """onnxruntime_perf_test.txt by hand: seconds times 1000 (53.2 ms session, 1234.5 ms total, P99 19 ms), ms kept;
    the summary is the tool's own P50, P95 and mean; a percentile printed in ms stays in ms.  The command for the CPU
    with staged test data (-s, not -I) and threads; the loader paths for ORT's and QNN's libraries, each alone and
    together.  Survivors of `make mutants` this kills in onnxruntime_perf_test: a field or unit dropped, the
    summary's keys, the -s/-I choice, -x, the library path order or separator, ADSP_LIBRARY_PATH without QNN."""
    m = onnxruntime_perf_test.parse((LOGS / "onnxruntime_perf_test.txt").read_text())
    assert m.extra == pytest.approx({
        "session_creation_ms": 53.2, "first_inference_ms": 14.0, "mean_ms": 12.345, "total_ms": 1234.5,
        "min_ms": 11.2, "max_ms": 20.1, "p50_ms": 12.1, "p90_ms": 13.5, "p95_ms": 14.2, "p99_ms": 19.0,
        "p999_ms": 20.1, "requests": 100})
    assert m.summary_ms == pytest.approx({"p50_ms": 12.1, "p95_ms": 14.2, "mean_ms": 12.345}) and m.samples_ms == []
    assert m.notes == ["onnxruntime_perf_test prints a summary, not iterations: P50/P95 are its own"]
    ms = onnxruntime_perf_test.parse("P50 Latency: 12.5 ms\n")
    assert (ms.summary_ms, ms.load_ms, ms.first_inference_ms, ms.peak_rss_mb) == ({"p50_ms": 12.5}, None, None, None)
    with pytest.raises(ValueError, match=r"^no 'P50 Latency' line \(run the tool with -I or -s so it prints"):
        onnxruntime_perf_test.parse("Average inference time cost: 12.345 ms\n")
    assert onnxruntime_perf_test.build_command("p", "m.onnx", 20, "xnnpack", threads=4, test_data=True) == [
        "p", "-e", "xnnpack", "-m", "times", "-r", "20", "-s", "-x", "4", "m.onnx"]
    with pytest.raises(ValueError, match="provider tpu: use one of cpu, qnn, xnnpack, nnapi"):
        onnxruntime_perf_test.build_command("p", "m.onnx", 20, "tpu")
    env = onnxruntime_perf_test.library_env
    assert env(None, None) is None and env("/o", None) == {"LD_LIBRARY_PATH": "/o"}
    assert env(None, "/q") == {"LD_LIBRARY_PATH": "/q", "ADSP_LIBRARY_PATH": "/q"}
    assert env("/o", "/q") == {"LD_LIBRARY_PATH": "/o:/q", "ADSP_LIBRARY_PATH": "/q"}
    from types import SimpleNamespace

    assert onnxruntime_perf_test.supports("android", SimpleNamespace(format="onnx", backend="ort-qnn"))
    assert not onnxruntime_perf_test.supports("android", SimpleNamespace(format="pte", backend="ort-cpu"))
    assert not onnxruntime_perf_test.supports("ios", SimpleNamespace(format="onnx", backend="ort-cpu"))
    assert not onnxruntime_perf_test.supports("android", SimpleNamespace(format="onnx", backend="xnnpack"))


def test_onnxruntime_perf_test_failures_keep_the_logcat_and_a_linker_line_of_a_run_that_worked_is_no_failure():
    """A QNN EP that refused the graph: the failure's log carries the logcat after a '[logcat]' header; a blank logcat
    adds nothing.  A linker complaint on a run that exited 0 is no failure (ORT found its libraries another way); a
    run killed on timeout is a timeout, whatever it printed.  Survivors of `make mutants` this kills in check_run and
    _logcat_part: the exit-code test dropped, the timeout test inverted, the logcat header or strip changed."""
    logcat = "  E onnxruntime: QNN SetupBackend failed\n"
    with pytest.raises(base.RunnerFailure) as failure:
        onnxruntime_perf_test.check_run(_perf_test_result(0, "P50 Latency: 1 s\n"), logcat)
    assert failure.value.log.endswith("\n[logcat]\nE onnxruntime: QNN SetupBackend failed")
    assert onnxruntime_perf_test._logcat_part("  \n") == ""
    linked = 'library "libonnxruntime.so" not found'
    onnxruntime_perf_test.check_run(_perf_test_result(0, (LOGS / "onnxruntime_perf_test.txt").read_text(), linked))
    from harness.devices.base import CommandResult

    slow = CommandResult(["onnxruntime_perf_test"], None, "", linked, 30.0, timed_out=True)
    with pytest.raises(base.RunnerFailure) as failure:
        onnxruntime_perf_test.check_run(slow)
    assert failure.value.status == "timeout"


def test_the_last_survivors_of_the_parsers_by_hand():
    """Whole commands, records, messages and statuses the tests above read only in part.  Survivors of `make
    mutants` this kills: whisper_runner's flag names, the token counts a record copies, the line join of a
    transcript; executor_runner's and qnn_executor_runner's error words, the print_output flag test, the portable
    backend, a failed warm-up run's status and log."""
    from types import SimpleNamespace

    from harness.runners.base import Measurement

    assert whisper_runner.build_command("r", "m", "t", "p", "a", benchmark=False) == [
        "r", "--model_path", "m", "--tokenizer_path", "t", "--processor_path", "p", "--audio_path", "a",
        "--temperature", "0"]
    timing = Measurement(samples_ms=[100.0], extra={"tokens": 14, "undecodable_tokens": 2})
    record = whisper_runner.asr_record(SimpleNamespace(id="u", text="a"), "a", timing, 1.0)
    assert (record["tokens"], record["undecodable_tokens"]) == (14, 2)
    assert whisper_runner.transcript_of("the birch\ncan use\n") == "the birch can use"
    with pytest.raises(ValueError, match=r"^no 'Model executed successfully' or 'Iteration i of n' line: did the "
                                         r"runner run\?$"):
        executor_runner.parse("Segmentation fault\n")
    assert "--print_output" in executor_runner.build_command("r", "m.pte", 3, None, {"model_path", "print_output"})
    assert executor_runner.supports("android", SimpleNamespace(format="pte", backend="portable", stage="vad"))
    with pytest.raises(base.RunnerFailure) as failure:
        executor_runner._without_warmups(Measurement(samples_ms=[1.0]), 1, SimpleNamespace(log=lambda: "its log"))
    assert (failure.value.status, failure.value.log) == ("failed", "its log")
    with pytest.raises(ValueError, match=r"^no 'N inferences took X ms, avg Y ms' \(or 'Total N inference took "
                                         r"\.\.\.'\) line$"):
        qnn_executor_runner.parse("nothing\n")
    assert qnn_executor_runner.parse((LOGS / "qnn_executor_runner.txt").read_text()).samples_ms == []


def test_onnxruntime_perf_test_failure_reasons_in_full():
    """check_run's reasons, whole: a library bionic could not link or ORT could not dlopen (either message alone)
    names the inventory key and the library; a QNN EP that failed to set up and was refused the CPU gives both
    lines, stripped and joined by one space; a timeout or a bare exit code is named after the tool.  Survivors of
    `make mutants` this kills in check_run: either library pattern dropped, the statuses, logs and words changed,
    the lines joined with something else, the tool's name in check_command."""
    from harness.devices.base import CommandResult

    dlopen = 'dlopen failed: library "libonnxruntime_providers_shared.so" not found'
    result = _perf_test_result(1, "", dlopen + "\n")
    with pytest.raises(base.RunnerFailure) as failure:
        onnxruntime_perf_test.check_run(result)
    assert (failure.value.status, failure.value.log) == ("failed", result.log())
    assert failure.value.reason == (
        f'onnxruntime_perf_test exited with code 1: library "libonnxruntime_providers_shared.so" not found; this build '
        "links ONNX Runtime as shared libraries: set tools.onnxruntime_libs to the folder of your Android build holding "
        "libonnxruntime_providers_shared.so")
    setup = "  E onnxruntime: QNN SetupBackend failed  "
    refused = "Run failed: fallback to CPU EP has been explicitly disabled by the user."
    with pytest.raises(base.RunnerFailure) as failure:
        onnxruntime_perf_test.check_run(_perf_test_result(255, refused + "\n", ""), setup + "\n")
    assert failure.value.status == "failed" and failure.value.reason == (
        "the QNN EP did not take the whole graph, and the CPU is not measured in its place: E onnxruntime: QNN "
        "SetupBackend failed Run failed: fallback to CPU EP has been explicitly disabled by the user.")
    slow = CommandResult(["onnxruntime_perf_test"], None, "", "", 30.0, timed_out=True)
    with pytest.raises(base.RunnerFailure, match="^onnxruntime_perf_test did not finish within 30 s"):
        onnxruntime_perf_test.check_run(slow)
    with pytest.raises(base.RunnerFailure, match="^onnxruntime_perf_test"):
        onnxruntime_perf_test.check_run(_perf_test_result(3, "", "bad model\n"))


def test_a_chain_part_on_qnn_is_refused_at_plan_load_without_the_qnn_libraries(tmp_path, model_dir):
    """Only latency cells were checked at load: a transcription chain whose model runs on qnn, on a phone without
    tools.qnn_sdk, was accepted and its cell failed once the night had started.  Each chain part counts."""
    from harness.errors import UserError
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan
    from tests.helpers import REPO, copy_model, qnn_sdk_layout, write

    # A QNN build: the fixture's delegate id rewritten (this machine has no QNN SDK to export one).
    pte = copy_model(model_dir, "tiny.pte", tmp_path / "builds", as_name="w.pte",
                     manifest={"model": "w", "stage": "asr", "backend": "qnn", "quantization": "fp32"})
    pte.write_bytes(pte.read_bytes().replace(b"XnnpackBackend", b"QnnBackend\0\0\0\0"))
    inventory = write(tmp_path / "devices.yaml", """
        devices:
          - id: phone
            platform: android
            serial: X
            soc: SM8650
            backends: [qnn]
            tools: {}
        """)
    plan = write(tmp_path / "plan.yaml", f"""
        name: x
        inventory: devices.yaml
        accuracy:
          corpus: {REPO / 'corpora' / 'harvard-hibari'}
          chains:
            - {{name: asr, model: builds/w.pte}}
        """)
    parsed, _, lines = load_plan(plan)
    with pytest.raises(UserError, match="has no tools.qnn_sdk") as err:
        expand_plan(parsed, plan, lines, load_inventory(inventory))
    assert "devices.yaml:7" in str(err.value) and "every qnn cell of device phone" in str(err.value), str(err.value)
    # With the SDK and ExecuTorch's QNN backend library, the chain's cell is planned.
    backend = write(tmp_path / "libqnn_executorch_backend.so", "stands in\n")
    inventory.write_text(inventory.read_text().replace(
        "tools: {}", f"tools: {{qnn_sdk: {qnn_sdk_layout(tmp_path / 'qairt')}, qnn_executorch_backend: {backend}}}"))
    cells, _ = expand_plan(parsed, plan, lines, load_inventory(inventory))
    assert [cell.task for cell in cells] == ["transcribe"]


class _PhoneWithAnotherLogger:
    """A phone whose log holds another process's (PID 4321) "QNN SetupBackend failed" line and nothing of the
    tool's (PID 777): `logcat` answers with the lines of the --pid it is given, and records what it was asked."""

    def __init__(self, summary: str) -> None:
        self.summary, self.asked = summary, []

    def run(self, argv, timeout_s, env=None):
        from harness.devices.base import CommandResult

        self.asked.append(list(argv))
        if argv[0] == "logcat":
            line = "12-07 18:00:00.000  4321  4321 E onnxruntime: QNN SetupBackend failed x\n"
            mine = "--pid=777" in argv
            return CommandResult(argv, 0, "" if mine else line, "", 0.1)
        return CommandResult(argv, 0, self.summary, "harness-runner-started=777 1796687619.710987\n", 1.0)


def test_an_ort_qnn_cell_reads_only_its_own_processes_logcat_and_leaves_the_phones_log_alone():
    """The code as it was cleared the whole phone's log (`logcat -c`) and read every process's onnxruntime lines:
    another process's "QNN SetupBackend failed" failed a cell that ran on the NPU."""
    from harness.runners.base import RunSettings

    phone = _PhoneWithAnotherLogger("P50 Latency: 0.001 s\n")
    tool = onnxruntime_perf_test.PerfTestOnPhone("/data/local/tmp/t/onnxruntime_perf_test", "qnn", None, "/q")
    argv = tool.command("/data/local/tmp/m.onnx", 3, RunSettings(1, 3, 60.0), test_data=False)
    result = tool.run(phone, argv, 60)
    assert result.argv == argv and "harness-runner-started" not in result.stderr
    assert ["logcat", "-c"] not in phone.asked
    # Its lines from its start on only (the phone's clock as the shell printed it, to the millisecond): an earlier
    # process with the same PID logged before it.
    assert any(a[0] == "logcat" and "--pid=777" in a and a[a.index("-t") + 1] == "1796687619.710"
               for a in phone.asked if "-t" in a), phone.asked


def test_an_ort_phone_cell_says_its_warm_up_was_the_tools_own_single_inference(monkeypatch):
    """The cell stored the plan's warmup_iterations (5) with nothing saying onnxruntime_perf_test ran only its own
    one warm-up inference (performance_runner.cc): the code as it was noted only the summary."""
    from harness.runners.base import RunSettings

    monkeypatch.setattr(onnxruntime_perf_test, "_run_tool",
                        lambda *a, **k: _perf_test_result(0, "P50 Latency: 0.002 s\nP95 Latency: 0.003 s\n"))
    measured = onnxruntime_perf_test.measure(None, "/m.onnx", None, RunSettings(5, 20, 60.0))
    (note,) = [n for n in measured.notes if n.startswith("warm-up:")]
    assert "single inference" in note and "warmup_iterations (5)" in note, measured.notes


def test_getprop_listing_reads_each_name_and_value():
    """`getprop` without a name, as a phone prints it ("[name]: [value]" per line, AOSP toolbox getprop): the phone's
    facts are read from one listing.  Catches: brackets inside a value cut it short, a value continued on the next
    line (a newline inside it) read as a property, an empty value dropped."""
    from harness.devices.android import parse_getprop_listing

    listing = ("[dalvik.vm.heapsize]: [512m]\n"
               "[persist.sys.timezone]: [Europe/London]\n"
               "[ro.build.fingerprint]: [samsung/e3qxeea/e3q:14/UP1A.231005.007/S928BXXU1AXBA:user/release-keys]\n"
               "[ro.build.version.release]: [14]\n"
               "[ro.product.model]: [SM-S928B]\n"
               "[ro.soc.model]: [SM8650]\n"
               "[sys.note]: [a [bracketed] value]\n"
               "[sys.multi]: [first\n"
               "second]\n"
               "[sys.empty]: []\n")
    props = parse_getprop_listing(listing)
    assert props["ro.product.model"] == "SM-S928B" and props["ro.soc.model"] == "SM8650"
    assert props["ro.build.version.release"] == "14" and props["sys.empty"] == ""
    assert props["sys.note"] == "a [bracketed] value"
    assert "sys.multi" not in props and len(props) == 8
