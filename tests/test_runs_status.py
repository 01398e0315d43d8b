"""`harness runs` says what became of each run: one whose controller was killed is interrupted (not 'running'
forever), and one with lost cells is incomplete, with the command that finishes it."""

from __future__ import annotations

import json

from harness.cli import main as cli_main
from harness.run.cell import CellResult
from harness.run.engine import run_plan
from harness.run.workers import Event
from harness.store import Store
from tests.helpers import copy_model, write

HOST = """
devices:
  - id: host
    platform: host
"""


def _every_cell_lost(todo):
    """Measurement as a phone that went away gives it: every run lost (--resume measures it again)."""
    for spec, run_index in todo:
        yield Event("finished", spec.device.id, spec, run_index,
                    result=CellResult(key=spec.key, status="lost", reason="device unreachable: gone"))


def _runs(db, capsys) -> tuple[list[dict], str, str]:
    assert cli_main(["runs", "--db", str(db), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert cli_main(["runs", "--db", str(db)]) == 0
    said = capsys.readouterr()
    return rows, said.out, said.err


def test_a_killed_run_is_interrupted_and_one_with_lost_cells_incomplete(tmp_path, model_dir, capsys):
    """The code as it was showed a SIGKILLed run as 'running' for ever (nothing holds it any more), and a run
    whose every cell was lost as 'complete', with no word of --resume; the JSON said the same."""
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")
    write(tmp_path / "devices.yaml", HOST)
    plan = write(tmp_path / "plan.yaml", "name: p\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\n"
                 "iterations: 3\nruns: 1\n")
    db = tmp_path / "r.db"
    lost_run = run_plan(plan, db, measure=_every_cell_lost).run_id
    with Store(db) as writer:
        # A controller killed by SIGKILL: its run stays 'running' in the store, and no process holds its claim.
        killed = writer.create_run("p", plan, "0" * 64, {}, {}, started_at="2000-01-01T00:00:00Z")
        live = writer.create_run("p", plan, "0" * 64, {}, {}, started_at="2000-01-02T00:00:00Z")
        writer.claim_run(live)  # a controller measuring it now
        rows, table, hints = _runs(db, capsys)
    by_id = {r["run_id"]: r for r in rows}
    assert by_id[lost_run]["status"] == "incomplete" and by_id[lost_run]["lost_cells"] == 1, by_id[lost_run]
    assert f"--resume {lost_run}" in by_id[lost_run]["resume"]
    assert by_id[killed]["status"] == "interrupted" and f"--resume {killed}" in by_id[killed]["resume"]
    assert by_id[live]["status"] == "running" and by_id[live]["resume"] is None
    lines = {line.split()[0]: line for line in table.splitlines()}
    assert "incomplete (1 lost)" in lines[lost_run] and " interrupted " in lines[killed]
    assert " running " in lines[live]
    assert f"--resume {lost_run}" in hints and f"--resume {killed}" in hints and live not in hints
    rows, _, _ = _runs(db, capsys)  # the live controller has stopped (its claim released on close)
    assert {r["run_id"]: r["status"] for r in rows}[live] == "interrupted"
