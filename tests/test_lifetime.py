"""Process lifetime as an invariant: what the harness starts ends with the run, whichever way the run ends; and a
stopped run is judged or resumed honestly.  The signals sent to the real CLI are rows of the hostile table
(tests/hostile/cases.py, "... while a model is measuring"); these are the parts underneath."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from harness.cli import main as cli_main
from harness.devices.host import Config, Device
from harness.devices.host_forks import SCRATCH_MARKER, SCRATCH_PREFIX, ForkServer, sweep_stale_scratch
from harness.errors import DeviceError, UserError
from harness.run.engine import run_plan
from harness.store import Store
from tests.hostile.cases import _slow_onnx, _tagged_processes, lab

GENEROUS_S = 60  # deadlines for "soon", never for "fast": a busy 2-core machine must pass


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + GENEROUS_S
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not _running(pid)


def _measuring_args(model: Path) -> list[str]:
    return ["--model", str(model), "--format", "onnx", "--inputs-json", "null", "--warmup", "0",
            "--iterations", "100000", "--threads", "1", "--seed", "0"]


@pytest.fixture
def server(tmp_path):
    fork_server = ForkServer("onnx")
    yield fork_server
    fork_server.close()


@pytest.mark.slow  # a fork server starts (imports a runtime)
def test_a_fork_servers_child_dies_with_the_server(server, tmp_path):
    """Catches: the forked child not asking for a parent-death signal (it is its own session, so nothing else
    reaches it when the server is SIGKILLed, as by the kernel's OOM killer)."""
    pid, _, _ = server.start(_measuring_args(_slow_onnx(tmp_path / "slow.onnx")))
    assert _running(pid)
    os.kill(server.proc.pid, signal.SIGKILL)
    assert _gone_soon(pid), "the measuring child outlived its fork server"


@pytest.mark.slow  # a fork server starts (imports a runtime)
def test_closing_a_fork_server_stops_the_child_it_measures(server, tmp_path):
    """Catches: a server that waits for its child whatever happens to its stdin (close() then had to SIGKILL the
    server, and a controller killed with SIGKILL, which only closes that stdin, left both measuring for minutes);
    also the scratch folder kept."""
    pid, _, _ = server.start(_measuring_args(_slow_onnx(tmp_path / "slow.onnx")))
    server.close()
    assert _gone_soon(pid), "the measuring child outlived close()"
    assert server.proc.returncode == 0, "the server did not end by itself once its stdin closed"
    assert not server.scratch.exists()


def test_a_child_that_cannot_create_its_output_file_is_reported_at_once(server, tmp_path):
    """Catches the output file opened in the forked child outside any handler: the child's exception took it
    back into the server's loop instead of os._exit, and it hung until timeout_s (stored as 'timeout', nothing
    about the disk).  A full TMPDIR fails the same open; here the file's name is taken by a folder."""
    from harness.devices.host_forks import OutputFileError
    from tests.hostile.cases import tiny_onnx

    model = tiny_onnx(tmp_path / "tiny.onnx")
    args = [*_measuring_args(model)]
    args[args.index("100000")] = "2"
    (server.scratch / "0.out").mkdir()
    with pytest.raises(OutputFileError, match=r"could not create the run's output file in .*: free space there"):
        server.run(["host_worker"], args, "first", timeout_s=GENEROUS_S)
    after = server.run(["host_worker"], args, "second", timeout_s=GENEROUS_S)  # the server still serves
    assert after.ok, after.log()


def _scratch_of_a_process(tmp_path: Path, stay: bool) -> tuple[subprocess.Popen, Path]:
    """A scratch folder made by another controller process, which ends at once or stays until its stdin closes."""
    code = "import sys; from harness.devices.host_forks import make_scratch; print(make_scratch()[0], flush=True)"
    proc = subprocess.Popen([sys.executable, "-c", code + ("; sys.stdin.read()" if stay else "")], text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**os.environ, "TMPDIR": str(tmp_path)})
    return proc, Path(proc.stdout.readline().strip())


def test_a_scratch_folder_is_swept_only_when_no_controller_holds_it(tmp_path, monkeypatch):
    """Catches the sweep going by the pid in the name (the old rule): it removed a user's look-alike folder
    (harness-forks-999999-mine/keep.txt) and a live controller's folder whose pid it could not see (another PID
    namespace sharing /tmp: a container, a CI job), whose cells then failed and hung.  Also catches no sweep."""
    import tempfile

    from harness.devices.host_forks import make_scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended, dead = _scratch_of_a_process(tmp_path, stay=False)
    ended.wait()
    other_namespace, held = _scratch_of_a_process(tmp_path, stay=True)
    unseen = held.rename(tmp_path / f"{SCRATCH_PREFIX}{ended.pid}-elsewhere")  # its pid is not one we can see
    mine, lock = make_scratch()
    lookalike = tmp_path / f"{SCRATCH_PREFIX}999999-mine"
    lookalike.mkdir()
    (lookalike / "keep.txt").write_text("x")
    # A FIFO named like the marker: opening it to read blocked the sweep, and so every run, forever.
    fifo_folder = tmp_path / f"{SCRATCH_PREFIX}5-fifo"
    fifo_folder.mkdir()
    os.mkfifo(fifo_folder / SCRATCH_MARKER)
    sweep = threading.Thread(target=sweep_stale_scratch, daemon=True)
    try:
        sweep.start()
        sweep.join(10)  # a blocked open never returns; the sweep itself takes milliseconds
        assert not sweep.is_alive(), "the sweep blocked on a FIFO named like its marker"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([unseen.name, mine.name, lookalike.name,
                                                                     fifo_folder.name])
    finally:
        with contextlib.suppress(OSError):  # let a sweep blocked on the FIFO go
            os.close(os.open(fifo_folder / SCRATCH_MARKER, os.O_WRONLY | os.O_NONBLOCK))
        other_namespace.stdin.close()
        other_namespace.wait()
        os.close(lock)


def _sleeper(tag: str) -> list[str]:
    return [sys.executable, "-c", f"import time  # {tag}\ntime.sleep(600)"]


def _started(tag: str) -> list[int]:
    deadline = time.monotonic() + GENEROUS_S
    while time.monotonic() < deadline:
        found = [pid for pid in _tagged_processes(tag) if pid != os.getpid()]
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("the command never started")


def test_closing_the_host_device_kills_its_command_and_starts_nothing_after():
    """Catches: close() (a run being stopped, from the main thread) leaving a plain process to run to its timeout,
    and the worker then starting the next command anyway (seen as a new host_worker after Ctrl-C)."""
    device = Device(Config(id="host", platform="host"))
    tag = uuid.uuid4().hex
    results = []
    worker = threading.Thread(target=lambda: results.append(
        device.run(_sleeper(tag), timeout_s=600, env={"HARNESS_RUN_TAG": tag})), daemon=True)
    worker.start()
    (pid,) = _started(tag)
    device.close()
    worker.join(GENEROUS_S)
    assert not worker.is_alive() and results[0].exit_code == -signal.SIGKILL and not _running(pid)
    with pytest.raises(DeviceError) as stopped:
        device.run(_sleeper(tag), timeout_s=600)
    assert stopped.value.lost  # measured again by --resume, never counted as the build's failure


def test_a_command_dies_with_a_sigkilled_controller(tmp_path):
    """Catches: a plain child process without a parent-death signal (it is its own session: SIGKILL of the
    controller reached nothing, and the command ran on to its timeout)."""
    tag = uuid.uuid4().hex
    controller = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from harness.devices.host import Config, Device
        Device(Config(id="host", platform="host")).run({_sleeper(tag)!r}, timeout_s=600)
        """)], env={**os.environ, "HARNESS_RUN_TAG": tag})
    command = [pid for pid in _started(tag) if pid != controller.pid]
    while not command:  # the controller itself carries the tag too; wait for its child
        command = [pid for pid in _started(tag) if pid != controller.pid]
    controller.kill()
    controller.wait()
    assert all(_gone_soon(pid) for pid in command), "the command outlived its SIGKILLed controller"


class _StopAfterFirstRun:
    """Interrupts the run like Ctrl-C once its first run is stored."""

    run_id = None

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


def _interrupted_run(tmp_path: Path) -> tuple[Path, Path, str]:
    # Three runs: one stored, two missing (with one missing, a resume that measured only the first missing run
    # would have finished the cell as well as one that measured all of them).
    plan, db = lab(tmp_path, runs=3), tmp_path / "h.db"
    stopper = _StopAfterFirstRun()
    with pytest.raises(KeyboardInterrupt):
        run_plan(plan, db, progress=stopper)
    return plan, db, stopper.run_id


@pytest.mark.slow  # measured runs on the host
def test_compare_only_refuses_an_incomplete_run(tmp_path, capsys):
    """Catches: --compare-only judging 1 of 3 runs and printing passed: true with no word of the rest."""
    plan, db, run_id = _interrupted_run(tmp_path)
    code = cli_main(["nightly", "--compare-only", run_id, "--db", str(db), "-o", str(tmp_path / "night"), "--json"])
    err = capsys.readouterr().err
    assert code == 2 and "incomplete run: 1 of 3 runs stored" in err and f"--resume {run_id}" in err, err
    assert not (tmp_path / "night" / "nightly.json").exists()
    run_plan(plan, db, resume=run_id)
    with Store(db) as store:  # judged below on a run whose cell really has all its runs
        assert [c.runs_done for c in store.cells(run_id, with_samples=False)] == [3]
    assert cli_main(["nightly", "--compare-only", run_id, "--db", str(db), "-o", str(tmp_path / "night")]) == 0


def _rebuild(path: Path) -> None:
    """The same model built again, with other bytes (as a re-export with another exporter version makes)."""
    import onnx

    model = onnx.load(path)
    model.doc_string = "rebuilt"
    onnx.save(model, path)


@pytest.mark.slow  # measured runs on the host
def test_resume_after_a_rebuild_finishes_the_cell_with_the_bytes_it_began_with(tmp_path, capsys):
    """Catches: the rebuilt file measured as a new cell while the begun one stayed at 1 of 2 runs for good, in a
    run marked complete whose report still said "resume the run"."""
    plan, db, run_id = _interrupted_run(tmp_path)
    with Store(db) as store:
        (began,) = store.cells(run_id, with_samples=False)
    _rebuild(tmp_path / "builds" / "tiny.onnx")
    outcome = run_plan(plan, db, resume=run_id)
    assert "changed since run" in capsys.readouterr().err
    with Store(db) as store:
        (cell,) = store.cells(run_id)
        assert store.run(run_id).status == "complete"
    assert outcome.statuses == {"ok": 1}
    assert (cell.cell_key, cell.artifact["sha256"], cell.runs_done) == (began.cell_key, began.artifact["sha256"], 3)
    assert sorted(r["run_index"] for r in cell.runs) == [0, 1, 2]  # every missing run, not only the first


@pytest.mark.slow  # measured runs on the host
def test_resume_after_a_rebuild_refuses_when_the_old_bytes_are_gone(tmp_path):
    """Catches: the same, when the build cache no longer holds the bytes the run began with: the resume must say
    so (restore the file, or a new run) instead of leaving the cell short for good."""
    import shutil

    plan, db, run_id = _interrupted_run(tmp_path)
    _rebuild(tmp_path / "builds" / "tiny.onnx")
    for kept in tmp_path.glob("h-builds*"):
        shutil.rmtree(kept)
    with pytest.raises(UserError, match="restore the file"):
        run_plan(plan, db, resume=run_id)


def test_ctrl_c_in_any_command_exits_130_without_a_traceback(monkeypatch, tmp_path, capsys):
    """Catches: Ctrl-C in a command that measures nothing (a long report, an export) ending in a traceback."""
    import harness.commands.runs

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.commands.runs, "run", interrupted)
    try:
        code = cli_main(["runs", "--db", str(tmp_path / "h.db")])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the command line as a traceback")
    assert code == 130
    assert "interrupted" in capsys.readouterr().err


def test_ctrl_c_before_the_run_exists_prints_no_resume_command(monkeypatch, tmp_path, capsys):
    """Catches the interrupt message's placeholder: stopped while loading the plan, run printed 'continue with:
    harness run plan.yaml --resume RUN_ID', a run that does not exist."""
    import harness.run.engine

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(harness.run.engine, "run_plan", interrupted)
    with pytest.raises(SystemExit) as stopped:
        cli_main(["run", str(tmp_path / "plan.yaml"), "--db", str(tmp_path / "h.db")])
    err = capsys.readouterr().err
    assert stopped.value.code == 130 and "nothing was stored" in err, err
    assert "--resume" not in err, err


def test_a_killed_harness_leaves_no_run_lock_file_behind_for_long(tmp_path):
    """Catches claim_run leaving the lock files of SIGKILLed harnesses in place (one more h.db.RUNID.lock per
    kill until that run was resumed), or a sweep that removes a lock someone holds or a file it did not make."""
    from harness.store import Store

    db = tmp_path / "h.db"
    Store(db).close()
    killed_run, held_run, new_run = "20261207-010000-aaaa", "20261207-010000-bbbb", "20261207-010000-cccc"
    claim = (f"from harness.store import Store; import os, signal, pathlib; "
             f"Store(pathlib.Path({str(db)!r})).claim_run({killed_run!r}); os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", claim], check=False)
    assert (tmp_path / f"h.db.{killed_run}.lock").exists()  # SIGKILL leaves it
    users = tmp_path / "h.db.notes.lock"
    users.write_text("mine")
    with Store(db) as holder, Store(db) as claimer:
        holder.claim_run(held_run)
        claimer.claim_run(new_run)
        left = sorted(p.name for p in tmp_path.glob("*.lock"))
    assert left == sorted([f"h.db.{held_run}.lock", f"h.db.{new_run}.lock", users.name])


def test_run_lock_sweep_and_claim_leave_files_the_harness_did_not_make(tmp_path):
    """Catches the sweep removing any unheld file named like a run lock (h.db.RUNID.lock) and claim_run taking
    over (then deleting on close) a user's file of its own run's name: both lost a file the harness never made.
    A FIFO of such a name must not block the claim either."""
    from harness.errors import UserError
    from harness.store import Store

    db = tmp_path / "h.db"
    Store(db).close()
    users_run, fifo_run, own_run = "20261207-010000-dddd", "20261207-010000-eeee", "20261207-010000-ffff"
    users = tmp_path / f"h.db.{users_run}.lock"
    users.write_text("my notes")
    os.mkfifo(tmp_path / f"h.db.{fifo_run}.lock")
    with Store(db) as store:
        store.claim_run(own_run)
        with pytest.raises(UserError) as refused:
            store.claim_run(users_run)
    assert users.read_text() == "my notes"
    assert str(users) in str(refused.value) and "did not make" in str(refused.value), refused.value
    assert (tmp_path / f"h.db.{fifo_run}.lock").exists()
    assert not (tmp_path / f"h.db.{own_run}.lock").exists()  # its own file is still removed on close
    assert sorted(p.name for p in tmp_path.iterdir() if ".lock" in p.name) == sorted(
        [users.name, f"h.db.{fifo_run}.lock"]), "a draft lock file was left behind"


def test_a_run_lock_is_taken_on_a_file_system_without_hard_links(tmp_path, monkeypatch):
    """Catches claim_run ending in a PermissionError traceback where os.link is refused (a database on FAT or
    some network shares): the lock file is then made in place, marked, and still removed on close."""
    import errno

    from harness.store import Store
    from harness.store.db import CLAIM_MARKER

    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    db, run_id = tmp_path / "h.db", "20261207-010000-abab"
    Store(db).close()
    monkeypatch.setattr(os, "link", refused)
    with Store(db) as store:
        store.claim_run(run_id)
        assert (tmp_path / f"h.db.{run_id}.lock").read_bytes() == CLAIM_MARKER
        assert [p.name for p in tmp_path.iterdir() if ".lock" in p.name] == [f"h.db.{run_id}.lock"]
    assert not (tmp_path / f"h.db.{run_id}.lock").exists()


def test_no_adb_server_is_one_message_and_the_harness_starts_none(tmp_path, monkeypatch, capsys):
    """Catches a client left to start a server (adbutils ran 'adb start-server' on 5037 whatever adb_port said, left
    it running after the harness, and still ended in an AdbConnectionError traceback, exit 1)."""
    import socket
    import subprocess

    started = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # every process the harness starts, whatever module starts it
        def __init__(self, args, *a, **kw):
            started.append(args)
            super().__init__(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: '*', "
                                           f"adb_port: {port}}}\n")
    (tmp_path / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [m.onnx]\n")
    from tests.hostile.cases import tiny_onnx

    tiny_onnx(tmp_path / "m.onnx")
    code = cli_main(["run", str(tmp_path / "plan.yaml"), "--db", str(tmp_path / "h.db")])
    err = capsys.readouterr().err
    assert code == 2 and f"no adb server on 127.0.0.1:{port} (start it with: adb -P {port} start-server)" in err, err
    assert not [argv for argv in started if "start-server" in str(argv)], f"an adb server was started: {started}"


def test_no_adb_server_leaves_no_library_warning_beside_the_one_line(tmp_path, monkeypatch):
    """Catches adbutils' connect leaving its socket to the garbage collector when nothing listens: the
    ResourceWarning ('unclosed socket') was kept in harness.log and 'harness devices' ended with '(1 library
    warning(s) kept in ...)' under the harness's own 'no adb server' line."""
    import socket

    from tests.hostile.cases import cli

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: '*', "
                                           f"adb_port: {port}}}\n")
    monkeypatch.setenv("HARNESS_LOG", str(tmp_path / "harness.log"))
    monkeypatch.setenv("COLUMNS", "250")  # the devices table on one line a row
    proc = cli("devices", "--inventory", "devices.yaml", cwd=tmp_path, timeout_s=GENEROUS_S)
    assert proc.returncode == 1 and f"no adb server on 127.0.0.1:{port}" in proc.stdout, proc.stdout + proc.stderr
    assert "library warning" not in proc.stderr, proc.stderr
    log = tmp_path / "harness.log"
    assert not log.exists() or "ResourceWarning" not in log.read_text(), log.read_text()


@pytest.mark.slow  # three idle limits waited out
def test_an_adb_server_that_accepts_and_never_answers_is_given_up_on(tmp_path, monkeypatch, capsys):
    """A wedged adb server (it accepts, then says nothing) hung `harness devices` and `harness run` forever:
    adbutils gives a request no timeout or its own ten minutes.  Catches a connection without the idle limit (the
    test's thread deadline then passes) and a traceback instead of one line with the fix."""
    import socket

    from harness.devices import android
    from tests.hostile.cases import tiny_onnx

    monkeypatch.setattr(android, "ADB_IDLE_TIMEOUT_S", 0.25)  # never answered: any limit is waited out
    monkeypatch.setenv("COLUMNS", "250")  # the devices table on one line a row
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel's backlog) and never answers
    port = silent.getsockname()[1]
    tiny_onnx(tmp_path / "m.onnx")
    (tmp_path / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [m.onnx]\n")

    def within_deadline(argv: list[str]) -> tuple[int, str]:
        outcome = {}
        worker = threading.Thread(daemon=True, target=lambda: outcome.update(code=cli_main(argv)))
        worker.start()
        worker.join(GENEROUS_S)
        assert not worker.is_alive(), f"{argv[0]} hung on a silent adb server"
        out = capsys.readouterr()
        text = " ".join((out.out + out.err).split())
        assert "Traceback" not in text, text
        return outcome["code"], text

    try:
        for serial in ("'*'", "R5CT"):
            (tmp_path / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: {serial}, "
                                                   f"adb_port: {port}}}\n")
            code, text = within_deadline(["devices", "--inventory", str(tmp_path / "devices.yaml")])
            assert "did not answer" in text and "kill-server" in text, text
        (tmp_path / "devices.yaml").write_text(f"devices:\n  - {{id: phone, platform: android, serial: '*', "
                                               f"adb_port: {port}}}\n")
        code, text = within_deadline(["run", str(tmp_path / "plan.yaml"), "--db", str(tmp_path / "h.db")])
        assert code == 2 and f"adb -P {port} kill-server" in text, text
    finally:
        silent.close()
