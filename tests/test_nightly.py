"""Nightly: a real slowdown between two nights fails the night; the same build does not."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from tests.helpers import run_cli, write

MANIFEST = {"model": "kws", "stage": "vad", "backend": "ort-cpu", "quantization": "fp32"}


def _export(path, width):
    """An ONNX model whose cost grows with ``width``: the 'same build' grown heavier overnight."""
    import torch

    from harness.zoo.export import export_onnx

    torch.manual_seed(0)
    module = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)]).eval()
    export_onnx(module, (torch.randn(8, width),), path, ["x"], ["y"])
    path.with_name(path.name + ".manifest.json").write_text(json.dumps(MANIFEST))


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly")
    write(tmp / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    plan = write(tmp / "plan.yaml", """
        name: lab
        inventory: devices.yaml
        artifacts: [build/kws.onnx]
        warmup_iterations: 3
        iterations: 40
        threads: 1
        budgets_p95_ms: {vad: 1000}
        """)
    (tmp / "build").mkdir()
    db = tmp / "h.db"
    runs = []
    for night, width in enumerate((64, 64, 768)):  # night 3 ships a far heavier model under the same identity
        _export(tmp / "build" / "kws.onnx", width)
        proc = run_cli("nightly", str(plan), "--db", str(db), "-o", str(tmp / f"night{night}"), "--json", "-q",
                       "--threshold", "0.5")
        runs.append(proc)
    return tmp, db, runs


def test_first_night_has_no_baseline_and_passes(nights):
    _, _, runs = nights
    first = json.loads(runs[0].stdout)
    assert runs[0].returncode == 0 and first["baseline_run_id"] is None and first["passed"]


def test_unchanged_build_passes_against_last_night(nights):
    _, _, runs = nights
    second, first = json.loads(runs[1].stdout), json.loads(runs[0].stdout)
    assert runs[1].returncode == 0, runs[1].stderr
    assert second["baseline_run_id"] == first["run_id"]


def test_slowdown_fails_the_night_with_junit_and_summary(nights):
    tmp, _, runs = nights
    third, second = json.loads(runs[2].stdout), json.loads(runs[1].stdout)
    assert runs[2].returncode == 1 and third["baseline_run_id"] == second["run_id"]
    (failing,) = [c for c in third["failing"] if c["kind"] == "latency"]
    assert failing["status"] == "regression" and failing["data"]["median_ratio"] > 1.5
    suite = ET.parse(tmp / "night2" / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "host" and int(suite.get("failures")) >= 1
    assert any(case.find("failure") is not None for case in suite.iter("testcase"))
    summary = json.loads((tmp / "night2" / "nightly.json").read_text())
    assert summary["passed"] is False and summary["counts"]["regression"] >= 1
    html = (tmp / "night2" / "index.html").read_text()
    assert "Against baseline" in html and "regression" in html


def test_compare_only_rebuilds_the_verdict_from_the_store(nights, tmp_path):
    tmp, db, runs = nights
    third, first = json.loads(runs[2].stdout), json.loads(runs[0].stdout)
    proc = run_cli("nightly", "--compare-only", third["run_id"], "--baseline", first["run_id"], "--db", str(db),
                   "-o", str(tmp_path / "again"), "--json", "--threshold", "0.5")
    assert proc.returncode == 1 and json.loads(proc.stdout)["baseline_run_id"] == first["run_id"]
    missing = run_cli("nightly", "--db", str(db))
    assert missing.returncode == 2 and "no plan given" in missing.stderr
