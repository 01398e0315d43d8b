"""Nightly on real builds: a far heavier build fails the night, and every verdict is exactly what the
run-level rule says of the stored runs, recomputed here with scipy.

Whether an *unchanged* build passes depends on the machine being steady between two nights, which a
test on a shared machine cannot promise; that rate is measured by benchmarks/false_alarms.py (docs/statistics.md),
and the decision rule itself is tested on generated runs in test_compare.py.
"""

from __future__ import annotations

import html
import json
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.helpers import KWS_MANIFEST, cli_in_process, export_kws, write

SLOW = pytest.mark.slow  # real nights measured on the host with real builds (the by-hand test is not)


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nightly")
    write(tmp / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    plan = write(tmp / "plan.yaml", """
        name: lab
        inventory: devices.yaml
        artifacts: [build/kws.onnx]
        warmup_iterations: 3
        iterations: 20
        runs: 3
        threads: 1
        profile_runs: 0
        budgets_p95_ms: {vad: 1000}
        """)  # no profiling run: only test_a_regression_names_the_operator_made_heavier_first reads one, its own
    (tmp / "build").mkdir()
    db = tmp / "h.db"
    runs = []
    for night, width in enumerate((64, 64, 768)):  # night 3 ships a far heavier model under the same identity
        export_kws(tmp / "build" / "kws.onnx", width)
        proc = cli_in_process("nightly", str(plan), "--db", str(db), "-o", str(tmp / f"night{night}"), "--json", "-q",
                       "--threshold", "0.5")
        runs.append(proc)
    return tmp, db, runs


@SLOW
def test_first_night_has_no_baseline_and_passes(nights):
    _, _, runs = nights
    first = json.loads(runs[0].stdout)
    assert runs[0].returncode == 0 and first["baseline_run_id"] is None and first["passed"]


def _run_medians(con, run_id, suffix=""):
    """Run medians of the run's cell whose key ends with ``suffix`` ('' for the plan's own cell)."""
    rows = con.execute("""SELECT c.cell_key, r.run_index, r.p50_ms FROM cell_runs r JOIN cells c ON c.cell_id = r.cell_id
                          WHERE c.run_id=? ORDER BY r.run_index""", (run_id,)).fetchall()
    return [v for key, _, v in rows if key.endswith("/latency" + suffix)]


def _run_p10s(con, run_id, suffix=""):
    """Each run's P10 of the run's cell whose key ends with ``suffix``, by scipy's own Harrell-Davis."""
    from scipy.stats.mstats import hdquantiles

    rows = con.execute("""SELECT c.cell_key, s.run_index, s.latency_ms FROM samples s JOIN cells c ON c.cell_id = s.cell_id
                          WHERE c.run_id=? AND s.phase='measured' ORDER BY s.run_index, s.idx""", (run_id,)).fetchall()
    runs: dict[int, list[float]] = {}
    for key, run_index, value in rows:
        if key.endswith("/latency" + suffix):
            runs.setdefault(run_index, []).append(value)
    return [float(hdquantiles(np.array(v), prob=[0.1])[0]) for _, v in sorted(runs.items())]


@SLOW
def test_every_latency_verdict_is_the_run_level_rule_recomputed_from_the_store(nights):
    """Whatever the machine did, each verdict follows from the stored runs, recomputed here with scipy:
    night 2 (same bytes) by Welch's t-test on log run medians against night 1; night 3 (new bytes) by a
    paired t-test on each run's P10 (scipy's Harrell-Davis) against night 2's bytes re-measured in the
    same rounds."""
    import math
    import sqlite3

    from scipy.stats import ttest_ind, ttest_rel

    tmp, db, runs = nights
    con = sqlite3.connect(db)
    for night in (1, 2):
        now, before = json.loads(runs[night].stdout), json.loads(runs[night - 1].stdout)
        assert now["baseline_run_id"] == before["run_id"]
        (check,) = [c for c in json.loads((tmp / f"night{night}" / "nightly.json").read_text())["checks"]
                    if c["kind"] == "latency"]
        b = _run_medians(con, now["run_id"])
        if night == 1:
            a = _run_medians(con, before["run_id"])
            assert _run_medians(con, now["run_id"], "/ref") == []  # unchanged bytes: nothing re-measured
            p = ttest_ind(np.log(b), np.log(a), equal_var=False).pvalue
        else:
            a, b = _run_p10s(con, now["run_id"], "/ref"), _run_p10s(con, now["run_id"])
            (ref_sha,) = con.execute("SELECT artifact_sha256 FROM cells WHERE run_id=? AND cell_key LIKE '%/ref'",
                                     (now["run_id"],)).fetchone()
            (old_sha,) = con.execute("SELECT artifact_sha256 FROM cells WHERE run_id=?", (before["run_id"],)).fetchone()
            assert ref_sha == old_sha and "re-measured tonight" in check["detail"]
            p = ttest_rel(np.log(b), np.log(a)).pvalue
        assert len(a) == len(b) == 3
        ratio = math.exp(np.log(b).mean() - np.log(a).mean())
        assert check["data"]["p_value"] == pytest.approx(p) and check["data"]["ratio"] == pytest.approx(ratio)
        floor = max(0.5, check["data"]["noise_floor"] or 0)
        called = p < 0.01 and (ratio > 1 + floor or ratio < 1 / (1 + floor))
        if night == 1:  # the same bytes: a significant move is the machine's, reported as a shift, never failing
            # Both ways: a call is a shift, and no call is never one (catches a same-bytes night labelled "shift"
            # at p >= 0.01, which the old `status == ("shift" if called else status)` let through).  A same-bytes
            # night too noisy to call is a pass (nothing of the build can have changed).
            assert (check["status"] == "shift") == called, (check["status"], p, ratio)
            assert check["status"] in ("pass", "shift") and runs[night].returncode == 0
        elif called:
            assert check["status"] == ("regression" if ratio > 1 else "improvement")
        else:  # at p >= 0.01 (the paired gate tests at 0.005 a look) nothing is called, either way
            assert check["status"] in ("pass", "too noisy"), (check["status"], p, ratio)


@SLOW
def test_slowdown_fails_the_night_with_junit_and_summary(nights):
    tmp, _, runs = nights
    third, second = json.loads(runs[2].stdout), json.loads(runs[1].stdout)
    assert runs[2].returncode == 1 and third["baseline_run_id"] == second["run_id"]
    (failing,) = [c for c in third["failing"] if c["kind"] == "latency"]
    # 768-wide layers against 64-wide: ~100x the arithmetic, far beyond any noise of a busy machine.
    assert failing["status"] == "regression" and failing["data"]["ratio"] > 3
    suite = ET.parse(tmp / "night2" / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "host" and int(suite.get("failures")) >= 1
    assert any(case.find("failure") is not None for case in suite.iter("testcase"))
    summary = json.loads((tmp / "night2" / "nightly.json").read_text())
    assert summary["passed"] is False and summary["counts"]["regression"] >= 1
    html = (tmp / "night2" / "index.html").read_text()
    assert "Against baseline" in html and "regression" in html


@SLOW
def test_compare_only_rebuilds_the_verdict_from_the_store(nights, tmp_path):
    tmp, db, runs = nights
    third, first = json.loads(runs[2].stdout), json.loads(runs[0].stdout)
    proc = cli_in_process("nightly", "--compare-only", third["run_id"], "--baseline", first["run_id"], "--db", str(db),
                   "-o", str(tmp_path / "again"), "--json", "--threshold", "0.5")
    assert proc.returncode == 1 and json.loads(proc.stdout)["baseline_run_id"] == first["run_id"]
    missing = cli_in_process("nightly", "--db", str(db))
    assert missing.returncode == 2 and "no plan given" in missing.stderr


@SLOW
def test_a_replay_never_rewrites_a_nights_stored_verdict_nor_judges_against_a_later_run(nights, tmp_path):
    """`--compare-only` against another baseline rewrote the night's stored verdict, so the report and the site
    then disagreed with that night's JUnit, nightly.json and exit code; a later run was accepted as baseline."""
    import shutil

    from harness.store import Store

    _, stored, runs = nights
    db = tmp_path / "h.db"
    shutil.copy(stored, db)
    third, first, second = (json.loads(runs[i].stdout) for i in (2, 0, 1))
    with Store(db) as store:
        before = store.stored_verdicts(third["run_id"])[third["run_id"]]
    other = first["run_id"] if before.baseline_run_id != first["run_id"] else second["run_id"]  # not its baseline
    replay = cli_in_process("nightly", "--compare-only", third["run_id"], "--baseline", other, "--db", str(db),
                     "-o", str(tmp_path / "again"), "--json")
    assert replay.returncode in (0, 1) and json.loads(replay.stdout)["baseline_run_id"] == other, replay.stderr
    with Store(db) as store:
        after = store.stored_verdicts(third["run_id"])[third["run_id"]]
    assert after.baseline_run_id == before.baseline_run_id != other
    assert [c.status for c in after.checks] == [c.status for c in before.checks]
    later = cli_in_process("nightly", "--compare-only", second["run_id"], "--baseline", third["run_id"], "--db", str(db))
    assert later.returncode == 2 and "started after" in later.stderr, later.stderr


@SLOW
def test_a_build_missing_tonight_fails_the_night_and_is_counted(nights, tmp_path):
    """A broken export whose glob matches nothing drops a build from tonight's plan: the night must fail on it,
    not pass on what is left.  Catches run_checks without missing_tonight (the night PASSED, the build unnamed)."""
    import shutil

    tmp, db, runs = nights
    shutil.copy(db, tmp_path / "h.db")
    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    (tmp_path / "build").mkdir()
    other = export_kws(tmp_path / "build" / "other.onnx", 32)  # other bytes than any night's kws: not kws renamed
    other.with_name("other.onnx.manifest.json").write_text(json.dumps({**KWS_MANIFEST, "model": "other"}))
    plan = write(tmp_path / "plan.yaml", """
        name: lab
        inventory: devices.yaml
        artifacts: [build/other.onnx]
        warmup_iterations: 1
        iterations: 5
        runs: 2
        threads: 1
        profile_runs: 0
        budgets_p95_ms: {vad: 1000}
        """)
    proc = cli_in_process("nightly", str(plan), "--db", str(tmp_path / "h.db"), "-o", str(tmp_path / "out"), "--json", "-q")
    summary = json.loads(proc.stdout)
    # night 3 failed (its heavier build), so the baseline is the newest night that passed: night 2
    assert proc.returncode == 1 and summary["baseline_run_id"] == json.loads(runs[1].stdout)["run_id"]
    (missing,) = [c for c in summary["failing"] if c["status"] == "missing tonight"]
    assert missing["subject"].startswith("kws") and summary["baseline_run_id"] in missing["detail"]
    page = (tmp_path / "out" / "index.html").read_text()
    assert "1 missing tonight" in page


def test_a_renamed_chain_is_missing_tonight_under_its_old_name():
    """Renaming a chain made its WER check vanish.  Catches missing_tonight matching cells only (no chain check)."""
    from types import SimpleNamespace as NS

    from harness.nightly.checks import missing_tonight

    def run(run_id, chain_name):
        cell = NS(device_id="pixel", label="whisper asr fp32 xnnpack")
        return NS(run=NS(run_id=run_id), cells=[], chains=[NS(cell=cell, chain={"name": chain_name})])

    (check,) = missing_tonight(run("tonight", "asr-new"), run("last", "asr-old"))
    assert (check.subject, check.kind, check.status, check.failing) == ("asr-old", "wer", "missing tonight", True)
    assert "baseline last" in check.detail and check.tile_group == "asr-chain"
    assert missing_tonight(run("tonight", "asr-old"), run("last", "asr-old")) == []


def _conv_stack(path, layer2_kernel: int) -> None:
    """Four 1-D convolutions named embed, layer1, layer2, head (32 channels over 256 steps, shape kept by padding);
    ``layer2_kernel`` makes layer2 alone heavier without renaming it or changing any shape."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for name in ("embed", "layer1", "layer2", "head"):
        kernel = layer2_kernel if name == "layer2" else 3
        w = numpy_helper.from_array((rng.standard_normal((32, 32, kernel)) * 0.05).astype(np.float32), f"{name}.w")
        out = "y" if name == "head" else f"{name}.out"
        nodes.append(helper.make_node("Conv", [previous, w.name], [out], name=name, pads=[kernel // 2] * 2))
        weights.append(w)
        previous = out
    graph = helper.make_graph(nodes, "stack", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 32, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 32, 256])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_name(path.name + ".manifest.json").write_text(json.dumps(KWS_MANIFEST))


@SLOW
def test_a_regression_names_the_operator_made_heavier_first(tmp_path):
    """One layer of the build made ~30x heavier overnight (kernel 3 -> 95), the others untouched: the latency
    regression's detail and data name that layer first among the operators that explain the change.  Before, the
    check said how much slower and never where (no operator in its detail or data)."""
    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    plan = write(tmp_path / "plan.yaml", """
        name: lab
        inventory: devices.yaml
        artifacts: [build/stack.onnx]
        warmup_iterations: 2
        iterations: 10
        runs: 3
        profile_runs: 1
        threads: 1
        """)
    (tmp_path / "build").mkdir()
    nights = []
    for night, kernel in enumerate((3, 95)):
        _conv_stack(tmp_path / "build" / "stack.onnx", kernel)
        nights.append(cli_in_process("nightly", str(plan), "--db", str(tmp_path / "h.db"), "-o", str(tmp_path / f"n{night}"),
                              "--json", "-q", "--threshold", "0.5"))
    assert nights[1].returncode == 1, nights[1].stderr
    (check,) = [c for c in json.loads((tmp_path / "n1" / "nightly.json").read_text())["checks"]
                if c["kind"] == "latency"]
    assert check["status"] == "regression"
    explained = check["data"]["operators"]
    assert explained["top"][0]["name"] == "layer2" and explained["change_ms"] > 0
    assert explained["top"][0]["delta_ms"] > sum(abs(c["delta_ms"]) for c in explained["top"][1:])
    # Named first either way the reading goes: "top 2 operators explain 97% of the +3.1 ms sum of the operators'
    # median changes: layer2 (+...",
    # or, when the other layers' noise went the other way, "layer2 (+3.4 ms) moved more than the whole ... change".
    first = re.compile(r"per operator \(profiling runs\): (top [^:]* changes?: )?layer2 \(\+")
    assert first.search(check["detail"]), check["detail"]
    assert first.search(html.unescape((tmp_path / "n1" / "index.html").read_text()))  # the nightly report shows it
