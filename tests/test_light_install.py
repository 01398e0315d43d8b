"""The light install: what a lab controller that only drives Android phones gets from `pip install
device-lab-harness`.

It must drive phones, store, report, score WER and parse runner logs in under 150 MB and 40 distributions,
without torch, ExecuTorch, ONNX Runtime, Core ML tools, openai-whisper, scipy, pandas or pymobiledevice3;
asking it for what an extra brings (the host's runtimes, iPhones, export, .onnx builds) says which extra.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import REPO

pytestmark = pytest.mark.slow

# The light environment must see only what is installed in it, whatever the caller's PYTHONPATH says.
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}

HEAVY = ("torch", "executorch", "onnxruntime", "coremltools", "whisper", "silero_vad", "scipy", "pandas", "pyarrow",
         "pymobiledevice3", "onnx", "matplotlib", "PIL")
MAX_INSTALLED_MB, MAX_DISTRIBUTIONS = 150, 40

# Every distribution in the environment and the bytes of its files (its RECORD), as JSON.
MEASURE = """
import json, os
from importlib import metadata
sizes = {}
for dist in metadata.distributions():
    files = [dist.locate_file(f) for f in dist.files or []]
    sizes[dist.metadata["Name"]] = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
print(json.dumps(sizes))
"""


def _distributions(light) -> dict[str, int]:
    # -I: the caller's folder is not on sys.path (a checkout's device_lab_harness.egg-info there counted the project
    # as installed before pip ran, so it was missing from what pip added).
    out = subprocess.run([str(light / "venv" / "bin" / "python"), "-I", "-c", MEASURE], capture_output=True,
                         text=True, timeout=120, env=CLEAN_ENV)
    assert out.returncode == 0, out.stderr[-1500:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def light(tmp_path_factory):
    """A fresh virtual environment with only the core installed (not editable: what a user gets)."""
    home = tmp_path_factory.mktemp("light")
    subprocess.run([sys.executable, "-m", "venv", str(home / "venv")], check=True, timeout=300)
    (home / "before.json").write_text(json.dumps(_distributions(home)))  # pip (and setuptools): not ours
    source = home / "src"  # a copy, so the build leaves nothing behind in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", ".test-builds", "builds", "reports",
                                                                    "*.db*", "mutants", "site", "corpora", ".hypothesis"))
    pip = subprocess.run([str(home / "venv" / "bin" / "pip"), "install", "-q", str(source)], capture_output=True,
                         text=True, timeout=1200, env=CLEAN_ENV)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return home


def _harness(light, *args, cwd):
    return subprocess.run([str(light / "venv" / "bin" / "harness"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=CLEAN_ENV)


def test_the_light_install_is_under_150_mb_and_40_distributions(light):
    """Catches a heavy dependency back in the core (scipy alone was 143 MB; pymobiledevice3 brought 70
    distributions): what `pip install` added to a fresh environment, the project itself included."""
    before = json.loads((light / "before.json").read_text())
    added = {name: size for name, size in _distributions(light).items() if name not in before}
    total_mb = sum(added.values()) / 1e6
    heaviest = ", ".join(f"{n} {s / 1e6:.1f}" for n, s in sorted(added.items(), key=lambda kv: -kv[1])[:8])
    print(f"\nlight install: {total_mb:.1f} MB in {len(added)} distributions (heaviest, MB: {heaviest})")
    # Compared as the package index does (PEP 503): newer setuptools write the name as device_lab_harness.
    assert "device-lab-harness" in {re.sub(r"[-_.]+", "-", name).lower() for name in added}, sorted(added)
    assert total_mb < MAX_INSTALLED_MB and len(added) < MAX_DISTRIBUTIONS, sorted(added)


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


def _host_plan(folder, build):
    (folder / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    (folder / "plan.yaml").write_text(textwrap.dedent(f"""
        name: light
        inventory: devices.yaml
        artifacts: [builds/{build}]
        iterations: 3
        runs: 1
        """))


def test_a_host_cell_in_the_light_install_names_the_extra_to_install(light, tmp_path, model_dir):
    (tmp_path / "builds").mkdir()
    shutil.copy(model_dir / "tiny.pte", tmp_path / "builds" / "tiny.pte")
    _host_plan(tmp_path, "tiny.pte")
    proc = _harness(light, "run", "plan.yaml", "--db", "h.db", "--json", "-q", cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    report = _harness(light, "report", "latest", "--db", "h.db", "-o", "rep", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-1500:]
    assert "pip install &#39;device-lab-harness[host]&#39;" in (tmp_path / "rep" / "index.html").read_text()
    # Export of the stored run: pandas is the [export] extra (an ImportError traceback before).
    export = _harness(light, "export", "latest", "--db", "h.db", cwd=tmp_path)
    assert export.returncode == 2 and "Traceback" not in export.stderr, export.stderr[-1500:]
    assert "pip install 'device-lab-harness[export]'" in export.stderr, export.stderr


def test_an_onnx_build_in_the_light_install_names_the_onnx_extra(light, tmp_path, model_dir):
    """Catches an .onnx build read without the onnx package: 'not a model file this harness can read'."""
    (tmp_path / "builds").mkdir()
    shutil.copy(model_dir / "tiny.onnx", tmp_path / "builds" / "tiny.onnx")
    _host_plan(tmp_path, "tiny.onnx")
    proc = _harness(light, "run", "plan.yaml", "--db", "h.db", "-q", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert "pip install 'device-lab-harness[onnx]'" in proc.stderr, proc.stderr


def test_harness_devices_in_the_light_install_reaches_for_android_and_names_the_ios_extra(light, tmp_path):
    """The core drives Android phones (its adb client is the harness's own: no adbutils, Pillow, requests):
    with no adb server, the one-line 'no adb server' with its fix, no traceback.  An iPhone entry names the
    [ios] extra (pymobiledevice3 is not in the core)."""
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "app.ipa").write_bytes(b"PK")
    (tmp_path / "devices.yaml").write_text(textwrap.dedent(f"""
        devices:
          - {{id: phone, platform: android, serial: R5CT, adb_port: {port}}}
          - {{id: iphone, platform: ios, udid: 00008120-0001, app: app.ipa, bundle_id: com.example.bench}}
        """))
    env_columns = {**CLEAN_ENV, "COLUMNS": "250"}
    proc = subprocess.run([str(light / "venv" / "bin" / "harness"), "devices", "--inventory", "devices.yaml"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env_columns)
    shown = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in shown, shown[-3000:]
    assert f"no adb server on 127.0.0.1:{port} (start it with: adb -P {port} start-server)" in shown, shown
    assert "pip install 'device-lab-harness[ios]'" in shown, shown


def test_the_installed_package_reads_its_own_data_not_the_checkout(light, tmp_path):
    # The Harvard sentences the corpora are spoken from travel with the package (harness/accuracy/data).
    probe = ("from harness.accuracy import synth; import harness; "
             "print(len(synth.harvard_sentences()), 'site-packages' in harness.__file__)")
    out = subprocess.run([str(light / "venv" / "bin" / "python"), "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120, env=CLEAN_ENV)
    assert out.stdout.split() == ["100", "True"], out.stdout + out.stderr
