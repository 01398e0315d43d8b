"""Every row of the hostile table (tests/hostile/cases.py): bad input, injection and faults."""

from __future__ import annotations

import pytest

from tests.hostile.cases import CASES, cli_server_and_stored_db


# Rows with seconds of real work each (a night measured on the simulated phone, a process killed mid-run, a
# report rendered, a 100 000-key plan parsed): `-m "not slow"` skips them.  The rest take ~0.1-0.5 s each.
SLOW = frozenset((
    "bad input: --db a folder or a FIFO (read as 'no database here', a permission or a disk fault)",
    "bad input: nightly --baseline an unfinished run (PASSED, every check 'new')",
    'bad input: plan: 101,000 plain keys (no aliases) is refused without blaming aliases',
    "bad input: run beside a user's file named like a run lock (h.db.RUNID.lock: the lock sweep deleted it)",
    'bad input: run: a folder named like a cached build (64 zeros) beside the database (the prune deleted it)',
    'bad input: runs on a 0-byte file and on a database on a read-only mount (wrote a schema / refused to read)',
    'bad input: wer: a 2 GB sparse reference file (read whole, 4.2 GB RSS)',
    'fault: Ctrl-C mid-run: exit 130, then --resume',
    'fault: Ctrl-C while a cell is profiling: its last measured run is stored, --resume profiles it only',
    'fault: Ctrl-C while a model is measuring: nothing it started keeps running, exit 130',
    'fault: Ctrl-C while a phone cell is profiling: its measured runs are stored, --resume measures none again',
    'fault: SIGKILL while a model is measuring: nothing it started keeps running, and --resume picks up',
    'fault: SIGKILL while a runner hangs on the phone: nothing it started keeps running there',
    'fault: SIGTERM to harness calibrate while a model is measuring: nothing keeps running, exit 143',
    'fault: SIGTERM to harness nightly while a model is measuring: nothing keeps running, exit 143',
    'fault: SIGTERM while a model is measuring: nothing it started keeps running, exit 143',
    'fault: SIGTERM while a runner hangs on the phone: nothing it started keeps running there',
    'fault: a build rebuilt between Ctrl-C and --resume: its cell is finished with the bytes it began with',
    'fault: a damaged .etrecord beside a .pte: measured and profiled, operators unmapped, the log says why',
    'fault: a file-size limit (ulimit -f) reached mid-run, then the --resume it names',
    'fault: a phone on its charger (energy not measured)',
    "fault: a phone pipeline's ort-qnn VAD with another chip's QNN libraries: a failed cell, not CPU latency",
    'fault: a phone that vanishes mid-run and comes back, then --resume',
    'fault: a phone whose toybox has no time applet (no peak memory)',
    'fault: a push cut mid-way, then --resume once the phone is back',
    'fault: a runner that crashes on the phone (SIGSEGV)',
    'fault: a runner that hangs on the phone',
    'fault: a runner that prints forever on the phone',
    'fault: a second run on a phone another run is measuring: refused, naming it; --resume once it is done',
    "fault: a user's folder inside the build cache beside --db survives the cache's pruning",
    "fault: a user's folder named like a scratch folder (tmp/harness-forks-999999-mine/keep.txt) is kept",
    'fault: an executor_runner built without the event tracer (no operator profile on the phone)',
    'fault: another process on the phone logging ExecuTorch lines during the run',
    'fault: export, report and nightly -o onto a full disk (cut the previous file, blamed the database)',
    'fault: harness killed with SIGKILL mid-run, then --resume',
    'fault: harness nightly killed with SIGKILL mid-run, then --resume',
    'fault: nightly --compare-only of a run stopped mid-way: refused (N of M runs), judged once resumed',
    'fault: onnxruntime_perf_test from a shared-library build with its libraries left behind',
    "fault: ort-qnn with another chip's QNN libraries: the CPU fallback is a failed cell, not NPU latency",
    "fault: run with TMPDIR on a full disk (the measuring child hung until timeout_s, stored as 'timeout')",
    'fault: site, report, nightly, export, compare -o into new folders on a full disk (left them behind, empty)',
    'fault: the disk fills up while results are written',
    'fault: the same bytes measured under a second name are kept once, with no .partial left',
    'fault: thermal runaway on the phone',
    'fault: two harness runs on the same database at once',
    'injection: HTML in build and plan names reaches the report and JUnit escaped',
    'injection: an iPhone result file naming paths outside its folder',
    'injection: control characters in a model name reach junit.xml, which stays well-formed',
    "injection: export --what cells: a model named '=HYPERLINK(...)' and a formula in the cell's failure reason",
    "injection: export: a model named '=HYPERLINK(...)' reaches the CSV as a formula",
    'injection: operators: a 5000-character node name with a bidi override (U+202E) in the report and the CSV',
    "injection: shell metacharacters in a build's name, pushed and run on the simulated phone",
))


def _id(case) -> str:
    return f"{case.kind}: {case.name}"


def _param(c):
    return pytest.param(c, marks=pytest.mark.slow) if _id(c) in SLOW else c


@pytest.fixture(scope="session", autouse=True)  # session, not module: conftest would put the whole table on one
def _warm():                                       # xdist worker to share a module fixture; this one is per worker
    """The fork server and the stored database every bad-input row copies, started once here (~3 s), not by
    whichever row happens to come first."""
    cli_server_and_stored_db()


@pytest.mark.parametrize("case", [_param(c) for c in CASES], ids=[_id(c) for c in CASES])
def test_hostile(case, tmp_path):
    case.check(tmp_path)


def test_slow_rows_are_rows():
    # Catches: a row renamed in cases.py and left in SLOW under its old name (run in the quick lane, unmarked).
    assert SLOW <= {_id(c) for c in CASES}, sorted(SLOW - {_id(c) for c in CASES})


@pytest.mark.slow
def test_forked_cli_answers_as_python_m_harness(tmp_path):
    # Catches: the rows' fork server (tests/hostile/cli_server.py) answering a command otherwise than a new
    # `python -m harness` in the same folder does: its exit code, stdout or stderr (relative paths, the message).
    import subprocess

    from tests.helpers import harness_process
    from tests.hostile import cases

    (tmp_path / "plan.yaml").write_text("name: lab\niterations: lots\n")
    for argv in (("run", "plan.yaml", "--db", "h.db"), ("runs", "--db", "h.db"), ("--version",)):
        forked = cases.cli(*argv, cwd=tmp_path)
        fresh = harness_process(argv, tmp_path, 300, stdin=subprocess.DEVNULL)
        assert (forked.returncode, forked.stdout, forked.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert forked.returncode == 0 and "harness" in forked.stdout


def test_made_once_is_made_once_a_session_and_again_after_a_failure(monkeypatch, tmp_path):
    # Catches: the rows' shared folders (the clean phone night, the stored database) made by every xdist worker of
    # a session again (~8 s each), or a folder a failed make left half made taken as made by the next worker.
    import tempfile
    import threading

    from tests.hostile.cases import made_once

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where made_once keeps a session's folders
    monkeypatch.setenv("PYTEST_XDIST_TESTRUNUID", "probe")
    made = []

    def failing(folder):
        (folder / "half").touch()
        raise RuntimeError("the make failed")

    def make(folder):
        made.append(folder)
        (folder / "night").write_text("measured")

    try:
        made_once("probe", failing)
    except RuntimeError:
        pass
    folders = []
    workers = [threading.Thread(target=lambda: folders.append(made_once("probe", make))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(made) == 1 and folders == [made[0], made[0]], (made, folders)
    assert (made[0] / "night").read_text() == "measured" and not (made[0] / "half").exists()
