"""The spine on the host device: run a plan of real exported models, store every sample, report, export."""

from __future__ import annotations

import os
import re
import sqlite3
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from harness.errors import UserError
from harness.report.html import write_report
from harness.run.engine import run_plan
from harness.store import Store
from harness.store.export import export_run
from tests.helpers import copy_model, write

WARMUP, ITERATIONS, RUNS = 3, 25, 2


@pytest.fixture
def plan(tmp_path, model_dir, host_inventory):
    return _plan(tmp_path, model_dir)


@pytest.fixture(scope="module")
def complete_run(tmp_path_factory, model_dir):
    """The plan run to the end once, for the tests that only read it or resume it (a run costs seconds of
    process starts): the plan, the database and the outcome."""
    tmp = tmp_path_factory.mktemp("complete")
    write(tmp / "devices.yaml", "devices:\n  - {id: host, platform: host, backends: [portable, xnnpack, ort-cpu]}\n")
    plan = _plan(tmp, model_dir)
    return plan, tmp / "results.db", run_plan(plan, tmp / "results.db")


def _plan(tmp_path, model_dir):
    """No profiling run: none of these tests reads one (test_profile.py does), and each cost a process more."""
    copy_model(model_dir, "tiny.pte", tmp_path / "builds", manifest={
        "model": "tiny", "stage": "vad", "backend": "xnnpack", "quantization": "fp32"})
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")  # no manifest: inferred
    return write(tmp_path / "plan.yaml", f"""
        name: tiny-host
        inventory: devices.yaml
        devices: [host]
        artifacts: [builds/*.pte, builds/tiny.onnx]
        warmup_iterations: {WARMUP}
        iterations: {ITERATIONS}
        runs: {RUNS}
        threads: 1
        timeout_s: 120
        profile_runs: 0
        budgets_p95_ms: {{vad: 1000}}
        """)


@pytest.mark.slow  # measured runs on the host
def test_run_stores_every_sample_and_reports(complete_run, tmp_path):
    _, db, outcome = complete_run
    assert outcome.statuses == {"ok": 2}

    with Store(db) as store:
        run = store.run(outcome.run_id)
        assert run.status == "complete" and run.plan_name == "tiny-host"
        cells = store.cells(outcome.run_id)
        assert {c.artifact["format"] for c in cells} == {"pte", "onnx"}
        for cell in cells:
            assert len(cell.samples_ms) == RUNS * ITERATIONS and len(cell.warmup_ms) == RUNS * WARMUP
            assert list(np.bincount(cell.samples_run)) == [ITERATIONS] * RUNS  # which run each sample came from
            assert np.all(cell.samples_ms > 0)
            assert cell.load_ms > 0 and cell.first_inference_ms > 0 and cell.peak_rss_mb > 10
            assert [r["run_index"] for r in cell.runs] == list(range(RUNS)) and cell.runs_done == RUNS
        # Every run of every cell was its own process, and the rounds interleave the cells (A B | B A).
        pids = [r["extra"]["pid"] for c in cells for r in c.runs]
        assert len(set(pids)) == len(pids) == 2 * RUNS
        # One fork server per format per round: the runs of a cell come from different exec'd parents, and
        # an ONNX run never comes from the parent that loaded torch for the .pte of its round.
        parents = {(c.cell_key, r["run_index"]): r["extra"]["ppid"] for c in cells for r in c.runs}
        for cell in cells:
            assert len({parents[(cell.cell_key, k)] for k in range(RUNS)}) == RUNS
        assert len(set(parents.values())) == 2 * RUNS
        assert os.getpid() not in parents.values()  # forked, not started by the controller itself
        starts = sorted((r["extra"]["measured_start_epoch_s"], c.cell_key, r["run_index"]) for c in cells for r in c.runs)
        order = [(key, run) for _, key, run in starts]
        assert [run for _, run in order] == [0, 0, 1, 1] and order[1][0] == order[2][0]
        (device,) = store.devices(outcome.run_id)
        assert device["facts"]["executorch"] != "not installed" and device["simulated"] == 0
        onnx_cell = next(c for c in cells if c.artifact["format"] == "onnx")
        assert "manifest" in onnx_cell.artifact["inferred"]

    # The raw rows are really there, independently of the store's reader.
    con = sqlite3.connect(db)
    counts = dict(con.execute("SELECT phase, COUNT(*) FROM samples GROUP BY phase").fetchall())
    assert counts == {"warmup": 2 * RUNS * WARMUP, "measured": 2 * RUNS * ITERATIONS}
    assert con.execute("SELECT COUNT(*) FROM cell_runs").fetchone()[0] == 2 * RUNS

    html = write_report(db, outcome.run_id, tmp_path / "report").read_text()
    assert "tiny-host" in html and "<table>" in html
    assert html.count('<svg class="plot"') == 2  # one distribution plot per cell (inline SVG)
    assert "http://" not in html and "https://" not in html  # self-contained
    assert "Inferred build facts" in html
    # Every P95 (numpy, from the raw rows) is far under the 1000 ms VAD budget, so the .pte VAD cell's tile must read
    # "pass"; the manifest-less ONNX has no stage, so no budget judges it (catches an inverted budget verdict; the old
    # `"pass" in html` matched the template's tile class).
    measured = [r[0] for r in con.execute("SELECT latency_ms FROM samples WHERE phase='measured'")]
    assert np.percentile(measured, 95) < 1000
    tiles = re.findall(r'<a class="tile verdict (\w+)"[^>]*><div class="n">([^<]+)</div>([^<]+)</a>', html)
    assert sorted(tiles) == [("flag", "no budget", "host · unknown"), ("pass", "pass", "host · vad")], tiles

    out, rows = export_run(db, outcome.run_id, "csv", tmp_path / "out.csv")
    frame = pd.read_csv(out)
    assert rows == len(frame) == 2 * RUNS * (WARMUP + ITERATIONS)
    measured = frame[frame.phase == "measured"]
    for _, group in measured.groupby("cell_key"):
        assert sorted(group.idx) == list(range(RUNS * ITERATIONS))
        assert sorted(group.run_index.unique()) == list(range(RUNS))
    out, rows = export_run(db, outcome.run_id, "parquet", tmp_path / "out.parquet")
    assert len(pd.read_parquet(out)) == rows


class _StopAfterFirstCell:
    """A progress listener that interrupts the run like Ctrl-C once one run of one cell is stored."""

    def __init__(self):
        self.run_id = None

    def start(self, run_id, total, already_done):
        self.run_id = run_id

    def device_ready(self, facts):
        pass

    def cell_started(self, spec):
        pass

    def profiling(self, spec, running):
        pass

    def cell_finished(self, spec, result):
        raise KeyboardInterrupt


@pytest.mark.slow  # measured runs on the host
def test_without_the_fork_server_every_run_is_a_fresh_interpreter(plan, tmp_path):
    (tmp_path / "devices.yaml").write_text("devices:\n  - {id: host, platform: host, no_fork_server: true}\n")
    outcome = run_plan(plan, tmp_path / "plain.db")
    assert outcome.statuses == {"ok": 2}
    with Store(tmp_path / "plain.db") as store:
        runs = [r for c in store.cells(outcome.run_id) for r in c.runs]
    assert len(runs) == 2 * RUNS and {r["extra"]["ppid"] for r in runs} == {os.getpid()}


@pytest.mark.slow  # measured runs on the host
def test_interrupted_run_keeps_finished_cells_and_resumes(plan, tmp_path):
    """Also: --resume with a changed plan is refused (on the same interrupted run: one interruption less)."""
    db = tmp_path / "results.db"
    stopper = _StopAfterFirstCell()
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, db, progress=stopper)
    with Store(db) as store:
        assert store.run(stopper.run_id).status == "interrupted"
        (first,) = store.cells(stopper.run_id)
        assert len(first.samples_ms) == ITERATIONS and first.runs_done == 1

    text = plan.read_text()
    plan.write_text(text.replace(f"iterations: {ITERATIONS}", "iterations: 7"))
    with pytest.raises(UserError, match="different version of this plan"):
        run_plan(plan, db, resume=stopper.run_id)
    plan.write_text(text)
    outcome = run_plan(plan, db, resume=stopper.run_id)
    assert outcome.resumed_cells == 0 and outcome.statuses == {"ok": 2}
    with Store(db) as store:
        cells = store.cells(stopper.run_id)
        assert len(cells) == 2 and store.run(stopper.run_id).status == "complete"
        assert all(c.runs_done == RUNS for c in cells)
        kept = next(c for c in cells if c.cell_key == first.cell_key)
        # The run stored before the interruption is kept as it was; only the missing run was measured.
        assert kept.cell_id == first.cell_id and np.array_equal(kept.samples_ms[:ITERATIONS], first.samples_ms)
        assert len(kept.samples_ms) == RUNS * ITERATIONS


@pytest.mark.slow  # measured runs on the host
def test_resuming_a_complete_run_measures_nothing_and_changes_nothing(complete_run, capsys):
    """Catches --resume of a finished run exiting 0 as if it had measured, with its finished_at rewritten."""
    from harness.cli import main as cli_main

    plan, db, outcome = complete_run
    run_id = outcome.run_id
    before = db.read_bytes()
    assert cli_main(["run", str(plan), "--db", str(db), "--resume", run_id]) == 0
    err = capsys.readouterr().err
    assert f"run {run_id} is complete" in err and "nothing to measure" in err, err
    assert db.read_bytes() == before, "the complete run's record was rewritten"


@pytest.mark.slow
def test_hanging_model_times_out_and_run_continues(tmp_path, model_dir, host_inventory):
    """A real ONNX model whose Loop never ends in practice: the cell is killed, the next one runs."""
    import onnx
    from onnx import TensorProto, helper

    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["acc_in", "one"], ["acc_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("acc_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("acc_out", TensorProto.FLOAT, [1])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body)], "spin",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("trip", TensorProto.INT64, [], [10**15]), helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )
    builds = tmp_path / "builds"
    builds.mkdir()
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), builds / "spin.onnx")
    copy_model(model_dir, "tiny.onnx", builds)
    plan = write(tmp_path / "plan.yaml", """
        name: hang
        inventory: devices.yaml
        artifacts: [builds/spin.onnx, builds/tiny.onnx]
        warmup_iterations: 0
        iterations: 5
        runs: 2
        timeout_s: 4
        profile_runs: 0
        """)
    db = tmp_path / "results.db"
    # In a daemon thread with a generous deadline, so a harness that waited for ever fails this test instead of
    # hanging the suite.
    import threading

    done: list = []
    worker = threading.Thread(target=lambda: done.append(run_plan(plan, db)), daemon=True)
    worker.start()
    worker.join(timeout=600)
    assert done, "the run did not end: the hanging cell was never killed"
    (outcome,) = done
    assert outcome.statuses == {"timeout": 1, "ok": 1}
    with Store(db) as store:
        by_model = {c.artifact["model"]: c for c in store.cells(outcome.run_id)}
    assert by_model["spin"].status == "timeout" and "killed" in by_model["spin"].reason
    # Killed at its timeout, not before (a busy machine only makes the cell longer).
    spun_s = (datetime.fromisoformat(by_model["spin"].finished_at)
              - datetime.fromisoformat(by_model["spin"].started_at)).total_seconds()
    assert spun_s >= 4, spun_s
    assert len(by_model["spin"].samples_ms) == 0 and len(by_model["tiny"].samples_ms) == 2 * 5
    # A run that hung ends its cell: the second run is not attempted (it would hang as long again).
    assert by_model["spin"].runs_done == 1 and by_model["spin"].reason.startswith("run 1 of 2")


@pytest.mark.slow  # measured runs on the host
def test_model_that_fails_to_load_is_a_failed_cell_with_its_log(tmp_path, model_dir, host_inventory):
    builds = tmp_path / "builds"
    builds.mkdir()
    data = (model_dir / "tiny.pte").read_bytes()
    # Header and size intact (a truncated file is refused at plan load), the program's flatbuffer zeroed.
    (builds / "broken.pte").write_bytes(data[:40] + bytes(len(data) - 40))
    plan = write(tmp_path / "plan.yaml", """
        name: broken
        inventory: devices.yaml
        artifacts: [builds/broken.pte]
        iterations: 3
        runs: 2
        timeout_s: 60
        profile_runs: 0
        """)
    outcome = run_plan(plan, tmp_path / "results.db")
    assert outcome.statuses == {"failed": 1}
    with Store(tmp_path / "results.db") as store:
        (cell,) = store.cells(outcome.run_id)
    assert "exited with code" in cell.reason and "host_worker" in cell.log
    # The reason carries the cause from the log (was only "exited with code 1"): ExecuTorch's load error.
    assert "Failed to load program" in cell.reason


@pytest.mark.slow  # measured runs on the host
def test_device_without_the_backend_is_skipped_with_a_reason(tmp_path, model_dir):
    write(tmp_path / "devices.yaml", """
        devices:
          - {id: onnx-only, platform: host, backends: [ort-cpu]}
        """)
    copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: skip
        inventory: devices.yaml
        artifacts: [builds/tiny.pte, builds/tiny.onnx]
        iterations: 3
        runs: 2
        profile_runs: 0
        """)
    outcome = run_plan(plan, tmp_path / "results.db")
    assert outcome.statuses == {"ok": 1} and outcome.skipped == 1
    with Store(tmp_path / "results.db") as store:
        (skipped,) = store.skipped(outcome.run_id)
    assert skipped["backend"] == "xnnpack" and "needs xnnpack" in skipped["reason"]


def test_latest_run_is_the_last_created_even_within_one_second(tmp_path):
    from harness.store import Store

    (tmp_path / "p.yaml").write_text("name: p\n")
    with Store(tmp_path / "r.db") as store:
        # Random run-id suffixes used to break the tie between runs started in the same second.
        ids = [store.create_run("p", tmp_path / "p.yaml", "0" * 64, {}, {}, run_id=f"20261121-101010-{s}")
               for s in ("ffff", "0000", "8888")]
        store.db.execute("UPDATE runs SET started_at = '2026-11-21T10:10:10+00:00'")
        assert store.runs(1)[0].run_id == ids[-1]
