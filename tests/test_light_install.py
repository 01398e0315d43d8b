"""The light install: what a lab controller that only drives phones gets from `pip install harness`.

It must read builds, store, report and score WER without torch, ExecuTorch, ONNX Runtime, Core ML
tools or openai-whisper; asking it to measure on the host says which extra to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

# The light environment must see only what is installed in it, whatever the caller's PYTHONPATH says.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}

HEAVY = ("torch", "executorch", "onnxruntime", "coremltools", "whisper", "silero_vad")


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    """A fresh virtual environment with only the core installed (not editable: what a user gets)."""
    home = tmp_path_factory.mktemp("light")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True, timeout=300)
    source = home / "src"  # a copy, so the build leaves nothing behind in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", ".test-builds", "builds", "reports",
                                                                    "*.db*"))
    pip = subprocess.run([str(home / "venv" / "bin" / "pip"), "install", "-q", str(source)], capture_output=True,
                         text=True, timeout=1200, env=CLEAN_ENV)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return home


def _harness(light, *args, cwd):
    return subprocess.run([str(light / "venv" / "bin" / "harness"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=CLEAN_ENV)


def test_the_core_installs_without_the_heavy_runtimes(light):
    probe = "import importlib.util, json; print(json.dumps({m: importlib.util.find_spec(m) is not None for m in %r}))"
    out = subprocess.run([str(light / "venv" / "bin" / "python"), "-c", probe % (HEAVY,)], capture_output=True,
                         text=True, timeout=120, env=CLEAN_ENV)
    assert json.loads(out.stdout) == {m: False for m in HEAVY}, out.stdout + out.stderr


def test_wer_and_parse_work_in_the_light_install(light, tmp_path):
    (tmp_path / "ref.txt").write_text("The cat sat.\nHello world\n")
    (tmp_path / "hyp.txt").write_text("the cat sat down\nhello word\n")
    # 5 reference words after normalisation; 'down' inserted, 'world' -> 'word': 2 errors, 40%.
    proc = _harness(light, "wer", "ref.txt", "hyp.txt", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert json.loads(proc.stdout)["totals"]["wer"] == pytest.approx(0.4)
    proc = _harness(light, "parse", "executor_runner", str(REPO / "tests" / "logs" / "executor_runner_logcat.txt"),
                    cwd=tmp_path)
    assert proc.returncode == 0 and json.loads(proc.stdout)["load_ms"] == 41.25, proc.stderr[-1500:]


def test_a_host_cell_in_the_light_install_names_the_extra_to_install(light, tmp_path, model_dir):
    (tmp_path / "builds").mkdir()
    shutil.copy(model_dir / "tiny.onnx", tmp_path / "builds" / "tiny.onnx")
    (tmp_path / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    (tmp_path / "plan.yaml").write_text(textwrap.dedent("""
        name: light
        inventory: devices.yaml
        artifacts: [builds/tiny.onnx]
        iterations: 3
        runs: 1
        """))
    proc = _harness(light, "run", "plan.yaml", "--db", "h.db", "--json", "-q", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    report = _harness(light, "report", "latest", "--db", "h.db", "-o", "rep", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-1500:]
    assert "pip install &#39;harness[host]&#39;" in (tmp_path / "rep" / "index.html").read_text()


def test_the_installed_package_reads_its_own_data_not_the_checkout(light, tmp_path):
    # The Harvard sentences the corpora are spoken from travel with the package (harness/accuracy/data).
    probe = ("from harness.accuracy import synth; import harness; "
             "print(len(synth.harvard_sentences()), 'site-packages' in harness.__file__)")
    out = subprocess.run([str(light / "venv" / "bin" / "python"), "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=CLEAN_ENV)
    assert out.stdout.split() == ["100", "True"], out.stdout + out.stderr
