"""The command line as a user meets it: help that teaches, errors without tracebacks, exit codes."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.helpers import copy_model, qnn_sdk_layout, run_cli, write


def _assert_user_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ")
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


@pytest.mark.slow  # every command's --help in a child process
def test_help_teaches_the_workflow():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("devices", "run", "report", "export", "zoo"):
        assert command in proc.stdout
    assert "harness run plans/host-demo.yaml" in proc.stdout
    run_help = run_cli("run", "--help").stdout
    assert "--resume" in run_help and "Exit status" in run_help


def test_devices_json_lists_the_shipped_host():
    proc = run_cli("devices", "--json")
    assert proc.returncode == 0, proc.stderr
    (host,) = json.loads(proc.stdout)
    assert host["id"] == "host" and host["reachable"] is True


HOST_ONLY = """
    devices:
      - {id: host, platform: host, backends: [portable, xnnpack, ort-cpu]}
    """


def _workspace(root, model_dir):
    """A folder with builds/tiny.onnx and devices.yaml (the host), for plans written into it."""
    copy_model(model_dir, "tiny.onnx", root / "builds")
    write(root / "devices.yaml", HOST_ONLY)
    return root


@pytest.fixture(scope="module")
def good_run(tmp_path_factory, model_dir):
    """A database holding one finished run, to prove bad input later never damages it (shared: every test
    here only reads it, or checks it is unchanged)."""
    root = _workspace(tmp_path_factory.mktemp("good"), model_dir)
    plan = write(root / "plan.yaml", """
        name: good
        inventory: devices.yaml
        artifacts: [builds/tiny.onnx]
        warmup_iterations: 1
        iterations: 5
        runs: 1
        """)
    db = root / "results.db"
    proc = run_cli("run", str(plan), "--db", str(db), "--json", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return db, json.loads(proc.stdout)["run_id"]


def _sample_count(db):
    return sqlite3.connect(db).execute("SELECT COUNT(*) FROM samples").fetchone()[0]


@pytest.mark.slow  # the real command line, measuring
@pytest.mark.parametrize("plan_text, needles", [
    ("name: x\nartifacts: [a.onnx\n", ["plan.yaml:", "not valid YAML"]),
    ("name: x\nartifacts: [builds/tiny.onnx]\ninventory: devices.yaml\ndevices: [pixel-9]\n",
     ["no device 'pixel-9'", "known: host"]),
    ("name: x\nartifacts: [builds/missing.onnx]\ninventory: devices.yaml\n",
     ["plan.yaml:2", "matches no file"]),
    ("name: x\nartifacts: [builds/liar.onnx]\ninventory: devices.yaml\n",
     ["liar.onnx", "content is a pte file", "rename it to liar.pte"]),
])
def test_bad_input_exits_2_and_keeps_stored_results(good_run, tmp_path, model_dir, plan_text, needles):
    db, _ = good_run
    _workspace(tmp_path, model_dir)
    (tmp_path / "builds" / "liar.onnx").write_bytes((model_dir / "tiny.pte").read_bytes())
    before = _sample_count(db)
    plan = write(tmp_path / "plan.yaml", plan_text)
    _assert_user_error(run_cli("run", str(plan), "--db", str(db)), *needles)
    assert _sample_count(db) == before


# An unknown plan key and a --db that is not SQLite are hostile rows (tests/hostile/cases.py), which assert all
# this file did (the key, its line, "unknown key"; the file named and left as it was) and more.
@pytest.mark.slow  # the real command line, measuring
def test_unknown_run_id_names_the_runs_there_are(good_run, tmp_path):
    db, run_id = good_run
    _assert_user_error(run_cli("report", "nope", "-o", str(tmp_path / "r"), "--db", str(db)), "no run 'nope'", run_id)


@pytest.mark.slow  # the real command line, measuring
def test_report_and_export_from_the_cli(good_run, tmp_path):
    db, run_id = good_run
    proc = run_cli("report", "latest", "-o", str(tmp_path / "rep"), "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    assert run_id in (tmp_path / "rep" / "index.html").read_text()
    proc = run_cli("export", run_id, "--format", "csv", "-o", str(tmp_path / "s.csv"), "--db", str(db), "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["rows"] == 6  # 1 warm-up + 5 measured
    runs = json.loads(run_cli("runs", "--db", str(db), "--json").stdout)
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["status"] == "complete"


@pytest.mark.slow  # a measured run exported
def test_export_executorch_v3_records(good_run, tmp_path):
    db, run_id = good_run
    proc = run_cli("export", run_id, "--format", "et-v3", "-o", str(tmp_path / "v3.json"), "--db", str(db), "--json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads((tmp_path / "v3.json").read_text())
    names = {r["metric"]["name"] for r in records}
    assert {"avg_inference_latency(ms)", "model_load_time(ms)", "p95_inference_latency(ms)"} <= names
    for r in records:
        assert set(r) == {"benchmark", "model", "metric", "runners"}
        assert isinstance(r["metric"]["benchmark_values"], list) and r["runners"][0]["name"]
    samples = sqlite3.connect(db).execute("SELECT latency_ms FROM samples WHERE phase='measured'").fetchall()
    avg = next(r for r in records if r["metric"]["name"] == "avg_inference_latency(ms)")["metric"]["benchmark_values"][0]
    assert avg == pytest.approx(sum(v for (v,) in samples) / len(samples))


def test_library_warnings_go_to_the_log_not_the_terminal(tmp_path, monkeypatch, capfd):
    import logging
    import warnings

    from harness.library_log import library_output_to_log

    monkeypatch.setenv("HARNESS_LOG", str(tmp_path / "h.log"))
    with library_output_to_log() as kept:
        warnings.warn("isinstance(treespec, LeafSpec) is deprecated", FutureWarning)
        logging.getLogger("onnxscript.converter").warning("graph break in forward")
        print("harness: 3 cells measured", file=sys.stderr)  # the harness's own words stay on the terminal
    err = capfd.readouterr().err
    assert "LeafSpec" not in err and "graph break" not in err and "3 cells measured" in err
    log = (tmp_path / "h.log").read_text()
    assert "LeafSpec" in log and "onnxscript.converter WARNING graph break in forward" in log and kept.count == 2
    # Outside the block, warnings behave as before.
    with pytest.warns(UserWarning):
        warnings.warn("after", UserWarning)


def test_loggers_with_their_own_terminal_handler_are_kept_out_too(tmp_path, monkeypatch, capfd):
    import logging

    from harness.library_log import library_output_to_log

    monkeypatch.setenv("HARNESS_LOG", str(tmp_path / "h.log"))
    # As torch._logging sets up its loggers: a stderr handler of their own, propagate off.
    own = logging.getLogger("tests.torch_like")
    own.propagate = False
    terminal = logging.StreamHandler(sys.stderr)
    own.addHandler(terminal)
    elsewhere = tmp_path / "app.log"
    to_file = logging.FileHandler(elsewhere)
    own.addHandler(to_file)
    try:
        with library_output_to_log() as kept:
            own.warning("recompiling forward")
        err = capfd.readouterr().err
        assert "recompiling" not in err
        assert "recompiling forward" in (tmp_path / "h.log").read_text() and kept.count == 1
        assert "recompiling forward" in elsewhere.read_text()  # a handler writing elsewhere is left alone
        own.warning("after the command")  # and the library's handler prints again
        assert "after the command" in capfd.readouterr().err
    finally:
        own.removeHandler(terminal)
        own.removeHandler(to_file)
        to_file.close()


@pytest.mark.parametrize("quiet", [True, False])
def test_library_progress_bars_are_switched_off_for_the_command(quiet):
    """Core ML tools draws tqdm bars; a command switches them off before any library is imported (tqdm reads
    its setting at import), in a fresh process as a command runs."""
    import os
    import subprocess

    code = ("from harness.library_log import quiet_progress_bars\n"
            + ("quiet_progress_bars()\n" if quiet else "")
            + "from tqdm import tqdm\nfor _ in tqdm(range(3), desc='Running MIL passes'): pass\n")
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stderr
    assert ("MIL passes" in err) is not quiet, err


def test_a_database_locked_past_the_wait_is_one_line_with_the_fix(tmp_path, capsys):
    """Store waits for another writer; past that wait the user gets the cause and the fix, exit 2."""
    import argparse

    from harness.cli import _dispatch

    def locked(_args):
        raise sqlite3.OperationalError("database is locked")

    db = tmp_path / "h.db"
    assert _dispatch(argparse.Namespace(func=locked, db=db)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {db}:") and "--db" in err and "Traceback" not in err

    def broken(_args):
        raise sqlite3.OperationalError("no such table: runs")  # a bug, not the user's: it must not be hidden

    with pytest.raises(sqlite3.OperationalError):
        _dispatch(argparse.Namespace(func=broken, db=db))


@pytest.mark.slow  # the real command line in a child process
def test_two_builds_with_the_same_bytes_but_other_manifests_are_refused(tmp_path, model_dir):
    """Cells are keyed by bytes: one would never be measured and the other inherit its history.  Catches
    resolve_artifacts deduplicating by sha256 alone (the run went ahead, measuring one of the two)."""
    _workspace(tmp_path, model_dir)
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds", manifest={"model": "tiny-b"}, as_name="tiny-b.onnx")
    plan = write(tmp_path / "plan.yaml", "name: x\ninventory: devices.yaml\n"
                                         "artifacts: [builds/tiny.onnx, builds/tiny.onnx, builds/tiny-b.onnx]\n")
    db = tmp_path / "h.db"
    _assert_user_error(run_cli("run", str(plan), "--db", str(db)),
                       "plan.yaml:3", "builds/tiny-b.onnx has the same bytes as builds/tiny.onnx")


@pytest.mark.parametrize("listing", ["list", "copies"])
def test_one_onnx_file_is_measured_on_each_backend_it_is_listed_for(tmp_path, model_dir, listing):
    """The same ONNX bytes as an ort-cpu and an ort-qnn cell were refused ("export the second build again") though
    ONNX Runtime runs one file under either; now each backend is a cell of its own, with a key of its own."""
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan

    builds = tmp_path / "builds"
    if listing == "list":
        copy_model(model_dir, "tiny.onnx", builds, manifest={"model": "tiny", "backend": ["ort-cpu", "ort-qnn"]})
        listed = "[builds/tiny.onnx]"
    else:  # two names, manifests differing in the backend alone
        copy_model(model_dir, "tiny.onnx", builds, manifest={"model": "tiny", "backend": "ort-cpu"})
        copy_model(model_dir, "tiny.onnx", builds, manifest={"model": "tiny", "backend": "ort-qnn"}, as_name="q.onnx")
        listed = "[builds/tiny.onnx, builds/q.onnx]"
    sdk = qnn_sdk_layout(tmp_path / "qairt")  # an ort-qnn cell needs the QNN libraries at plan load
    write(tmp_path / "devices.yaml", f"""
        devices:
          - {{id: phone, platform: android, serial: "X", soc: SM8650, backends: [ort-cpu, ort-qnn],
             tools: {{qnn_sdk: {sdk}}}}}
        """)
    plan = write(tmp_path / "plan.yaml", f"name: x\ninventory: devices.yaml\nartifacts: {listed}\n")
    parsed, _, lines = load_plan(plan)
    cells, skipped = expand_plan(parsed, plan, lines, load_inventory(tmp_path / "devices.yaml"))
    assert not skipped and sorted(c.artifact.backend for c in cells) == ["ort-cpu", "ort-qnn"]
    assert len({c.key for c in cells}) == 2 and len({c.artifact.sha256 for c in cells}) == 1


def test_a_list_of_backends_is_for_onnx_files_only(tmp_path, model_dir):
    from harness.artifacts import load_artifact
    from harness.errors import UserError

    path = copy_model(model_dir, "tiny.pte", tmp_path, manifest={"backend": ["xnnpack", "qnn"]})
    with pytest.raises(UserError, match="a list .* is for ONNX builds"):
        load_artifact(path)


@pytest.mark.slow  # the real command line in a child process
def test_resume_in_a_missing_database_creates_none(tmp_path, model_dir):
    """Run as printed without --db, a resume created an empty reports/harness.db and failed.  Catches --resume
    not going through _resolve_run_id (the database and its folder were created)."""
    _workspace(tmp_path, model_dir)
    plan = write(tmp_path / "plan.yaml", "name: x\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\n")
    db = tmp_path / "nowhere" / "h.db"
    for command in ("run", "nightly", "calibrate"):
        _assert_user_error(run_cli(command, str(plan), "--db", str(db), "--resume", "20261207-0000"),
                           "no database at")
    assert not db.parent.exists()


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path):
    """'harness runs | head -4' ended in a BrokenPipeError traceback.  The reader here closes the pipe before
    anything is written; catches main() without its BrokenPipeError handler (traceback, exit 1 or 120)."""
    import signal
    import subprocess

    from harness.nightly.synthetic import write_synthetic_history
    from tests.helpers import REPO

    db = tmp_path / "h.db"
    write_synthetic_history(db, nights=3, devices=1, builds=1, samples=30, runs=3)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "runs", "--db", str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 128 + signal.SIGPIPE and stderr == "", stderr


def test_the_printed_resume_command_keeps_the_inventory_it_was_started_with():
    """`harness run plan.yaml --inventory lab/inv.yaml` stopped by a signal printed a resume command without
    --inventory: pasted, it looked for ./devices.yaml and failed.  Catches the option dropped (or printed for the
    default inventory, where it is noise)."""
    import argparse
    from pathlib import Path

    from harness.cli import _interrupted_next

    args = argparse.Namespace(plan=Path("p.yaml"), db=Path("reports/harness.db"), inventory=Path("lab/my inv.yaml"))
    assert _interrupted_next("run", args, "20261207-010000-aaaa").endswith(
        "harness run p.yaml --resume 20261207-010000-aaaa --inventory 'lab/my inv.yaml'")
    args.inventory = Path("devices.yaml")
    assert _interrupted_next("nightly", args, "20261207-010000-aaaa").endswith(
        "harness nightly p.yaml --resume 20261207-010000-aaaa")


def test_devices_exits_1_naming_each_device_that_did_not_answer(tmp_path, capsys):
    """A lab's morning check: `harness devices && harness nightly ...` went on with a phone that did not answer
    (exit 0 whatever the table said)."""
    from harness.cli import main as cli_main
    from harness.sim.adb_server import free_port

    inventory = write(tmp_path / "devices.yaml", f"""
        devices:
          - {{id: host, platform: host}}
          - {{id: pixel, platform: android, serial: "emulator-5554", adb_port: {free_port()}}}
        """)
    assert cli_main(["devices", "--inventory", str(inventory)]) == 1
    err = capsys.readouterr().err
    assert "1 device of 2 did not answer: pixel" in err, err
    only_host = write(tmp_path / "host.yaml", "devices:\n  - {id: host, platform: host}\n")
    assert cli_main(["devices", "--inventory", str(only_host)]) == 0


def test_ctrl_c_while_the_libraries_load_prints_one_line_and_exits_130(tmp_path):
    """SIGINT in the first ~0.2 s of any command (while harness.cli imports its libraries) printed a
    KeyboardInterrupt traceback from the import and died by the signal (-2).  The signal is sent as soon as
    pydantic's compiled core is mapped, i.e. in the middle of the imports; catches the unguarded import."""
    import os
    import signal
    import subprocess
    import time

    from tests.helpers import REPO

    proc = subprocess.Popen([sys.executable, "-m", "harness", "runs", "--db", str(tmp_path / "h.db")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if "pydantic_core" in (Path(f"/proc/{proc.pid}/maps").read_text()):
                break
        except (FileNotFoundError, ProcessLookupError):
            pass
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert "Traceback" not in stderr and stderr.strip() == "interrupted.", stderr
