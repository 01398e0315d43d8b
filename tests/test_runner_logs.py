"""What a benchmark binary on the phone says reaches its own cell, and only its own: logcat lines of the runner's
own process from its start on, a --help that does not answer said in the cell, and nothing of it left running."""

from __future__ import annotations

import subprocess
import textwrap
import time

import pytest

from harness.sim.sandbox import phone_processes, stand_in
from harness.sim.vendor import log_entry
from tests.helpers import copy_model, measure, phone_inventory, until

# Lines an earlier process logged under the ExecuTorch tag: timings the cell must never take as its own.
OLD_LINES = ("Model loaded in 999.000000 ms.", "Iteration 1 of 1: 999.000000 ms")
OLD_PIDS = 20000  # every PID up to this one logged them; a run on a phone booted for the test uses far fewer


def _run_tiny_pte(tmp_path, model_dir, settings: str):
    if not (tmp_path / "builds" / "tiny.pte").exists():
        copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    return measure(tmp_path / "plan.yaml", tmp_path / "r.db", "name: phone\ninventory: devices.yaml\n"
                   "artifacts: [builds/tiny.pte]\nprofile_runs: 0\n" + textwrap.dedent(settings))


def _adb_shell(adb_server, serial: str, command: str) -> subprocess.CompletedProcess:
    return subprocess.run([adb_server.exe, "-P", str(adb_server.port), "-s", serial, "shell", command],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_a_runner_reads_no_lines_of_an_earlier_process_that_had_its_pid(tmp_path, adb_server, phones, model_dir):
    """PIDs wrap on a phone while logd keeps old lines: `logcat -d --pid=PID` alone read the lines of an earlier
    process with the runner's PID too (a restarted simulated phone: "the runner returned 7 measured iterations;
    the plan asked for 3", or a 999 ms sample).  Now only lines from the runner's start on (`-t` the phone's
    clock, printed by the shell that execs the runner).  Fails on `logcat --pid` without `-t`."""
    server, serial = phones()
    phone_inventory(tmp_path, serial, adb_server.port, stand_in("stands in for an arm64 build"))
    an_hour_ago_s = time.time() - 3600
    server.phone.logcat_file.write_text("".join(log_entry(pid, "I", "ExecuTorch", line, an_hour_ago_s)
                                                for pid in range(1, OLD_PIDS) for line in OLD_LINES))
    measured = _run_tiny_pte(tmp_path, model_dir, "warmup_iterations: 1\niterations: 3\nruns: 2\ntimeout_s: 120\n")
    (cell,) = measured.cells
    assert cell.status == "ok", (cell.reason, cell.log)
    assert len(cell.samples_ms) == 6 and 999.0 not in cell.samples_ms and cell.load_ms != 999.0, cell.samples_ms
    # The runners' PIDs were among those that logged before (the phone's PID namespace allocates them in order).
    last_pid = _adb_shell(adb_server, serial, "cat /proc/sys/kernel/ns_last_pid").stdout.strip()
    assert 0 < int(last_pid) < OLD_PIDS, last_pid
    # The phone's logcat reads -t as upstream's does: epoch seconds, and refuses what is no time.
    old = _adb_shell(adb_server, serial, f"logcat -d --pid=7 -t {an_hour_ago_s - 1:.3f} -s ExecuTorch:I").stdout
    assert old.count("ExecuTorch: Iteration 1 of 1: 999.000000 ms") == 1, old
    assert _adb_shell(adb_server, serial, f"logcat -d --pid=7 -t {an_hour_ago_s + 1:.3f}").stdout == ""
    refused = _adb_shell(adb_server, serial, "logcat -d -t 12:00")
    assert refused.returncode == 1 and "logcat: -t '12:00' not in time format." in refused.stderr, refused


def _runner_whose_help(does: str) -> str:
    """An executor_runner that is a script: ``does`` on --help, else the simulated binary (named by its path)."""
    return (f"#!/system/bin/sh\n# an arm64 executor_runner whose --help misbehaves\n"
            f'if [ "$1" = --help ]; then {does}; fi\nexec /system/bin/simulated-binary "$0" "$@"\n')


@pytest.mark.slow
def test_a_help_that_hangs_is_said_in_the_cell_and_leaves_nothing_running(tmp_path, adb_server, phones, model_dir):
    """A runner whose --help hangs in a child (`sleep 600`): the cells ran with the current release's flags and
    nothing said so (fails on a log without the line), and toybox `timeout --foreground` killed only the
    script, leaving `sleep 600` on the phone, reparented to its init (fails on phone_command without setsid
    and the group kill)."""
    server, serial = phones()
    phone_inventory(tmp_path, serial, adb_server.port, _runner_whose_help("sleep 600; exit 0"))
    measured = _run_tiny_pte(tmp_path, model_dir, "warmup_iterations: 1\niterations: 2\nruns: 1\ntimeout_s: 12\n")
    (cell,) = measured.cells
    assert cell.status == "ok", (cell.reason, cell.log)
    said = "executor_runner: its --help did not answer within 12 s; assumed the flags of v1.3.0 on (--print_output)"
    assert cell.log.count(said) == 1, cell.log
    assert until(lambda: not phone_processes(server.phone), 30), \
        f"still running on the phone: {phone_processes(server.phone)}"


@pytest.mark.slow
def test_a_refused_flag_after_a_help_that_crashed_names_the_assumption(tmp_path, adb_server, phones, model_dir):
    """An old release (v1.2: no --print_output) whose --help crashes: every cell failed "unknown command line
    flag 'print_output'" and nothing said that the harness had assumed the current release's flags because its
    --help told none.  Fails on a reason without the assumption."""
    server, serial = phones()
    server.phone.versions["executor_runner"] = "1.2"
    phone_inventory(tmp_path, serial, adb_server.port, _runner_whose_help("kill -SEGV $$"))
    measured = _run_tiny_pte(tmp_path, model_dir, "warmup_iterations: 0\niterations: 2\nruns: 1\ntimeout_s: 60\n")
    (cell,) = measured.cells
    assert cell.status == "failed", (cell.reason, cell.log)
    assert "unknown command line flag 'print_output'" in cell.reason, cell.reason
    assert ("its --help was killed by SIGSEGV (exit 139); assumed the flags of v1.3.0 on (--print_output)"
            in cell.reason), cell.reason
    assert "executor_runner: its --help was killed by SIGSEGV" in cell.log, cell.log


class _PhoneWhoseHelp:
    """A phone on which a binary's --help ends as ``result`` says (exit code None: killed at its time limit)."""

    def __init__(self, exit_code: int | None, stdout: str = "") -> None:
        self.exit_code, self.stdout = exit_code, stdout

    def run(self, argv, timeout_s, env=None):
        from harness.devices.base import CommandResult

        return CommandResult(argv, self.exit_code, self.stdout, "", timeout_s, timed_out=self.exit_code is None)


@pytest.mark.parametrize("exit_code, why", [
    (None, "did not answer within 60 s"),
    (139, "was killed by SIGSEGV (exit 139)"),
    (1, "listed no --model_path flag (exit 1)")])
def test_a_whisper_runner_whose_help_told_no_flags_says_what_was_assumed(monkeypatch, exit_code, why):
    """The Whisper runner's cells ran without --benchmark when its --help hung or crashed, and nothing said why
    (fails on a push_chain without the note); a --help that answers adds nothing."""
    from harness.runners import base, whisper_runner

    monkeypatch.setattr(base, "_ACCEPTED", {})  # asked once per binary: no answer of another test
    runner = "/data/local/tmp/harness/" + "ef" * 32 + "/whisper_runner"
    benchmark, notes = whisper_runner.benchmark_flag(_PhoneWhoseHelp(exit_code), runner, 120)
    assert not benchmark
    assert notes == (f"whisper_runner: its --help {why}; assumed the flags of the releases v1.1.0-v1.4.0 "
                     "(no --benchmark)",)
    listed = "  -model_path (Model.) type: string\n  -benchmark (Print timings.) type: bool\n"
    answered = whisper_runner.benchmark_flag(_PhoneWhoseHelp(1, listed), runner.replace("ef" * 32, "01" * 32), 120)
    assert answered == (True, ())
