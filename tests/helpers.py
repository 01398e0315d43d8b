"""Helpers for tests: copying fixture models, writing files, running the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_model(model_dir: Path, name: str, dest: Path, manifest: dict | None = None, as_name: str | None = None) -> Path:
    """Copy a fixture model into ``dest`` (as ``as_name``, optionally with a manifest) and return its path."""
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / (as_name or name)
    target.write_bytes((model_dir / name).read_bytes())
    if manifest is not None:
        (dest / f"{target.name}.manifest.json").write_text(json.dumps(manifest))
    return target


def chain_parts(model_dir: Path, dest: Path, backend: str = "ort-cpu") -> str:
    """mel.onnx, enc.onnx and dec.onnx in ``dest`` (the tiny ONNX model, each with its chain role's stage), and the
    plan's chain entry naming them relative to ``dest``'s parent: for tests where what a chain computes is not
    the point (the plan refuses a chain whose parts are of the wrong stage)."""
    for name, stage in (("mel.onnx", "mel"), ("enc.onnx", "asr-encoder"), ("dec.onnx", "asr-decoder")):
        copy_model(model_dir, "tiny.onnx", dest, as_name=name,
                   manifest={"model": "m", "stage": stage, "backend": backend, "quantization": "fp32"})
    return f"mel: {dest.name}/mel.onnx, encoder: {dest.name}/enc.onnx, decoder: {dest.name}/dec.onnx"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


# Three ways the tests run the command line, each for its own reason:
# - run_cli: the console entry point in a child process, as a user runs it (the entry point, the environment and
#   the process's exit are the point);
# - cli_in_process: harness.cli.main in the test's process (what a command computes and prints is the point; a
#   child's imports cost 1-3 s);
# - tests/hostile/cases.py's cli: a child process forked from a server that has imported the command line once
#   (each hostile row must run as its own process, as a user's would; forking skips the ~1 s of imports), falling
#   back to harness_process when its server is busy (its harness_popen likewise, for the rows that signal one).
# run_cli and the hostile cli's fallback share harness_process; every test that starts the harness itself (to
# signal it, say) starts harness_argv.

def harness_argv(*args) -> list[str]:
    """The command line of ``python -m harness ARGS`` with this interpreter (and so this checkout's code)."""
    return [sys.executable, "-m", "harness", *map(str, args)]


def harness_process(args, cwd: Path, timeout_s: float, env: dict | None = None,
                    stdin=None) -> subprocess.CompletedProcess:
    """``python -m harness ARGS`` in ``cwd`` as a process of its own, its output read whole as text."""
    return subprocess.run(harness_argv(*args), cwd=cwd, env=env, stdin=stdin, capture_output=True, text=True,
                          timeout=timeout_s)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a child process, as a user would."""
    return harness_process(args, cwd or REPO, timeout_s=600, env={**os.environ, "COLUMNS": "200"})


def cli_in_process(*args: str) -> subprocess.CompletedProcess:
    """``harness.cli.main`` in this process, as :func:`run_cli` answers (exit code, stdout, stderr): for tests whose
    point is what a command computes and prints, not the console entry point itself (a child process costs 1-3 s
    of imports).  An exception other than SystemExit propagates, so a would-be traceback fails the test."""
    import io
    from contextlib import redirect_stderr, redirect_stdout
    from unittest import mock

    from harness.cli import main

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.dict(os.environ, {"COLUMNS": "200"}), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse
            code = exc.code
    return subprocess.CompletedProcess(["harness", *args], code, out.getvalue(), err.getvalue())


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, out_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """Open a local page in Debian's headless Chromium; stderr carries its console messages."""
    import shutil

    exe = shutil.which("chromium")
    assert exe, "chromium is missing: run 'make test' (it installs Debian's chromium) or scripts/install-system-deps.sh"
    profile = out_dir / "chromium-profile"
    return subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120, cwd=out_dir)


def bundle_accuracy(bundle: Path, limit: int | str = 2, indent: int = 8) -> str:
    """A plan's accuracy section transcribing the first ``limit`` Harvard utterances with one bundled program."""
    lines = ["accuracy:", f"  corpus: {REPO / 'corpora' / 'harvard-hibari'}", f"  limit: {limit}", "  chains:",
             f"    - {{name: bundle, model: {bundle}}}"]
    return "\n".join(" " * indent + line for line in lines)


def measure(plan: Path | str, db: Path, plan_text: str | None = None, **run_kwargs):
    """Write a plan (when ``plan_text`` is given, dedented), run it into ``db``, and read back what was stored:
    a namespace with ``outcome``, ``cells``, ``skipped`` and ``devices`` (by device id)."""
    from types import SimpleNamespace

    from harness.run.engine import run_plan
    from harness.store import Store

    plan = Path(plan)
    if plan_text is not None:
        write(plan, plan_text)
    outcome = run_plan(plan, db, **run_kwargs)
    with Store(db) as store:
        return SimpleNamespace(outcome=outcome, cells=store.cells(outcome.run_id), skipped=store.skipped(outcome.run_id),
                               devices={d["device_id"]: d for d in store.devices(outcome.run_id)})


def eager_tiny_llm_tokens(prompt_ids: list[int], new_tokens: int) -> list[int]:
    """Greedy decoding written here, independently of any runner, on the eager model the zoo's tiny LLM
    recipe seeds (torch.manual_seed(0), output projection tied to the embedding): the new token ids."""
    import torch
    from executorch.examples.models.llama.llama_transformer import construct_transformer
    from executorch.examples.models.llama.model_args import ModelArgs

    from harness.zoo.llm import QWEN2_TINY

    torch.manual_seed(0)
    model = construct_transformer(ModelArgs(**QWEN2_TINY)).eval()
    model.output.weight = model.tok_embeddings.weight
    ids = list(prompt_ids)
    with torch.no_grad():
        for _ in range(new_tokens):
            logits = model(torch.tensor([ids]))
            ids.append(int(logits.reshape(-1, QWEN2_TINY["vocab_size"])[-1].argmax()))
    return ids[len(prompt_ids):]


KWS_MANIFEST = {"model": "kws", "stage": "vad", "backend": "ort-cpu", "quantization": "fp32"}


def export_kws(path: Path, width: int) -> Path:
    """An ONNX model whose cost grows with ``width``, with one build identity whatever the width: the 'same build'
    grown heavier overnight, for nightly and comparison tests.  Each width is exported once and kept in the tests'
    build cache (tests/conftest.py's kept_export, under a fingerprint of this file): an export cost a process
    torch's imports and a second or two each."""
    import shutil

    from tests.conftest import kept_export

    kept = kept_export(f"kws-{width}", lambda folder: _export_kws(folder / "kws.onnx", width), Path(__file__))
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(kept / "kws.onnx", path)
    path.with_name(path.name + ".manifest.json").write_text(json.dumps(KWS_MANIFEST))
    return path


def _export_kws(path: Path, width: int) -> None:
    import torch

    from harness.zoo.export import export_onnx

    torch.manual_seed(0)
    module = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)]).eval()
    export_onnx(module, (torch.randn(8, width),), path, ["x"], ["y"])


def qnn_sdk_layout(root: Path) -> Path:
    """A QNN SDK laid out as Qualcomm ships it (files stand in for the libraries), for an SM8650 (V75)."""
    for rel in ("lib/aarch64-android/libQnnHtp.so", "lib/aarch64-android/libQnnHtpV75Stub.so",
                "lib/aarch64-android/libQnnHtpPrepare.so", "lib/aarch64-android/libQnnSystem.so",
                "lib/hexagon-v75/unsigned/libQnnHtpV75Skel.so"):
        write(root / rel, f"stands in for {rel}\n")
    return root


def until(condition, limit_s: float) -> bool:
    """Whether ``condition()`` became true within ``limit_s`` (asked every 0.1 s, and once more at the end): a wait
    with a deadline, never a fixed sleep, so a busy machine only makes it slower."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def phone_inventory(tmp_path, serial: str, adb_port: int, runner_text: str | None = None) -> Path:
    """tmp_path/devices.yaml with one simulated SM8650 phone ("sim-s24") whose executor_runner is
    tmp_path/tools/executor_runner: ``runner_text``, or the simulated phone's stand-in for an arm64 build."""
    from harness.sim.sandbox import stand_in

    runner = write(tmp_path / "tools" / "executor_runner",
                   runner_text if runner_text is not None else stand_in("stands in for an arm64 build"))
    return write(tmp_path / "devices.yaml", f"""
        devices:
          - id: sim-s24
            platform: android
            serial: "{serial}"
            adb_port: {adb_port}
            soc: SM8650
            backends: [xnnpack]
            tools: {{executor_runner: {runner}}}
        """)
