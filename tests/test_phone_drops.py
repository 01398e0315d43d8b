"""An unattended night on a simulated phone (real adb) that drops off, comes back, or whose lock another controller
takes over: what is stored is what happened (lost for --resume, never a crash of the build, never two controllers
measuring one phone), and a brief drop costs only the cell it cut."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness.devices import android
from harness.devices.android import LOCK, Config, Device
from tests.helpers import copy_model, measure, write

pytestmark = pytest.mark.slow

STARTED = "data/local/tmp/runner-started"  # made on the phone by the runner below as its measured run begins


def runner_script(then: str = "") -> str:
    """An executor_runner that runs ``then`` on the phone when a measured run begins (after marking STARTED),
    and otherwise is the simulated one (its --help too)."""
    return ("#!/system/bin/sh\n"
            f"case \" $* \" in *' --help '*) ;; *) touch /{STARTED}; {then or ':'};; esac\n"
            'exec /system/bin/simulated-binary "$0" "$@"\n')


def night(tmp_path: Path, serial: str, adb_port: int, model_dir: Path, then: str = "", builds=("tiny.pte",)):
    """An inventory of the phone with that runner, and a plan over ``builds`` (one run each); the plan's path."""
    runner = write(tmp_path / "tools" / "executor_runner", runner_script(then))
    write(tmp_path / "devices.yaml", f"""
        devices:
          - {{id: sim, platform: android, serial: "{serial}", adb_port: {adb_port}, soc: SM8650,
              backends: [xnnpack], tools: {{executor_runner: {runner}}}}}
        """)
    for name in builds:
        copy_model(model_dir, name, tmp_path / "builds")
    return write(tmp_path / "plan.yaml", f"""
        name: night
        inventory: devices.yaml
        artifacts: [{", ".join(f"builds/{name}" for name in builds)}]
        iterations: 3
        runs: 1
        timeout_s: 60
        profile_runs: 0
        """)


def until(condition, within_s: float = 60) -> bool:
    """Poll ``condition`` until it holds or ``within_s`` passes (never a fixed sleep)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def in_background(target) -> tuple[threading.Thread, dict]:
    result: dict = {}

    def run():
        try:
            result["value"] = target()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def controller(adb_port: int, serial: str, name: str) -> Device:
    return Device(Config(id=name, platform="android", serial=serial, adb_port=adb_port))


def by_build(cells) -> dict:
    return {Path(cell.artifact["path"]).name: cell for cell in cells}


def test_a_run_whose_lock_is_taken_over_stops_measuring_and_stores_the_rest_lost(tmp_path, adb_server, phones,
                                                                               model_dir):
    """Another controller takes the lock over while a cell is measured (as one would once the lock had expired):
    the cell in progress and the cells after it are lost (for --resume), naming the new holder; nothing is
    measured beside it.  On the code as it was, the run dropped its token check and both measured: every cell ok."""
    server, serial = phones()
    hold = write(server.phone.root / "data/local/tmp/hold", "")  # the measured run goes on while it is there
    plan = night(tmp_path, serial, adb_server.port, model_dir, "while [ -e /data/local/tmp/hold ]; do sleep 0.1; done",
                 builds=("tiny.pte", "tiny-b.pte"))
    run, result = in_background(lambda: measure(plan, tmp_path / "r.db"))
    lock = server.phone.root / LOCK.lstrip("/")
    assert until(lambda: (server.phone.root / STARTED).exists()), "the first measured run never began"
    other = controller(adb_server.port, serial, "other")
    try:
        def take_over() -> bool:
            (lock / "expires").write_text("1\n")  # stands in for the run's lock having expired
            return other.prepare()[0]

        assert until(take_over, 30), "the other controller never got the lock"
        assert until(lambda: not run.is_alive(), 30), "the run went on measuring"  # its runner waits for the hold
        hold.unlink()
        run.join(120)
        assert not run.is_alive() and "error" not in result, result
        cells = by_build(result["value"].cells)
        assert {name: cell.status for name, cell in cells.items()} == {"tiny.pte": "lost", "tiny-b.pte": "lost"}, \
            {name: cell.reason for name, cell in cells.items()}
        assert "took over this phone's lock" in cells["tiny.pte"].reason and "device other" in cells["tiny.pte"].reason
        assert "device other" in cells["tiny-b.pte"].reason, cells["tiny-b.pte"].reason
        assert (lock / "token").read_text().strip() == other.token  # the run left the other's lock alone
        assert any("its lock's expiry had passed" in note for note in other.notes), other.notes  # not "stopped"
    finally:
        hold.unlink(missing_ok=True)
        other.close()


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _own_namespace() -> str:
    return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")


def _start_ticks(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()[19]


def test_a_lock_is_taken_over_only_from_a_holder_known_gone_and_the_note_says_why(tmp_path, adb_server, phones):
    """A holder's pid means a process only in its own PID namespace and boot: a controller in another namespace of
    the same hostname (a container, `unshare --pid`) whose pid is free here was taken for dead, and two measured
    at once.  A pid reused since (another start time) is the holder gone.  The takeover note said "stopped
    without releasing it" even of a holder whose lock had only expired; it now says what was true."""
    import time as clock

    server, serial = phones()
    lock = server.phone.root / LOCK.lstrip("/")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process here
    host, boot, here, parent = socket.gethostname(), _boot_id(), _own_namespace(), os.getppid()
    cases = [  # (the holder's line, its lock's expiry from now, taken, what the note says)
        (f"pid {gone.pid}, device a, since T; boot {boot}, pidns 1{here}, start 5", 3600, False, ""),
        (f"pid {gone.pid}, device a, since T; boot other-boot, pidns {here}, start 5", 3600, False, ""),
        (f"pid {parent}, device a, since T; boot {boot}, pidns {here}, start {_start_ticks(parent)}", 3600, False, ""),
        (f"pid {parent}, device a, since T; boot {boot}, pidns {here}, start 1{_start_ticks(parent)}", 3600, True,
         f"its controller (pid {parent} on this host) is gone"),
        (f"pid {gone.pid}, device a, since T; boot {boot}, pidns {here}, start 5", 3600, True,
         f"its controller (pid {gone.pid} on this host) is gone"),
        (f"pid {parent}, device a, since T; boot {boot}, pidns {here}, start {_start_ticks(parent)}", -60, True,
         "its lock's expiry had passed (no command from its controller for 30 min, or the phone's clock jumped)"),
    ]
    # An expiry that is no number (empty, a word) is never past: mksh's [ -lt ] read it as 0, taken over at once.
    alive = f"pid {parent}, device a, since T; boot {boot}, pidns {here}, start {_start_ticks(parent)}"
    cases += [(alive, "", False, ""), (alive, "soon", False, "")]
    for holder, expires_in_s, taken, note in cases:
        write(lock / "token", "otherrun\n")
        write(lock / "owner", f"host {host}, {holder}\n")
        expires = expires_in_s if isinstance(expires_in_s, str) else int(clock.time()) + expires_in_s
        write(lock / "expires", f"{expires}\n")
        device = controller(adb_server.port, serial, "p")
        try:
            ok, why = device.prepare()
            assert ok == taken, (holder, why)
            if taken:
                assert any(note in n and "device a" in n for n in device.notes), (holder, device.notes)
        finally:
            device.close()


def test_a_runner_killed_as_the_phone_goes_away_is_lost_and_a_crash_on_a_phone_that_answers_is_not(
        tmp_path, adb_server, phones, model_dir):
    """A phone switched off while its runner runs (its processes killed, exit 137, before its connection goes)
    blamed the build: "crashed", which --resume never measures again.  The phone is asked whether it still
    answers; it does not, so the run is lost.  A runner killed on a phone that answers stays a crash."""
    server, serial = phones()
    plan = night(tmp_path, serial, adb_server.port, model_dir, "sleep 30")
    run, result = in_background(lambda: measure(plan, tmp_path / "r.db"))
    assert until(lambda: (server.phone.root / STARTED).exists()), "the measured run never began"
    server.shutdown()
    server.server_close()  # the phone's processes die (its shell reports the runner killed), and nothing more runs
    run.join(120)
    assert not run.is_alive() and "error" not in result, result
    (cell,) = result["value"].cells
    assert cell.status == "lost" and "137" in cell.reason, (cell.status, cell.reason)

    answering, serial = phones()
    plan = night(tmp_path / "crash", serial, adb_server.port, model_dir, "kill -9 $$")
    (cell,) = measure(plan, tmp_path / "crash.db").cells
    assert cell.status == "crashed" and "SIGKILL" in cell.reason, (cell.status, cell.reason)


def _two_cells_measuring(tmp_path, adb_server, phones, model_dir):
    """A night of two cells (tiny.pte, tiny-b.pte) on a new simulated phone, measuring in the background, returned
    once the first cell's measured run has begun (the next cell's runner then goes straight on): (server,
    serial, the thread, its result)."""
    server, serial = phones()
    hold = write(server.phone.root / "data/local/tmp/hold", "")  # the first measured run waits while it is there
    plan = night(tmp_path, serial, adb_server.port, model_dir, "[ ! -e /data/local/tmp/hold ] || sleep 30",
                 builds=("tiny.pte", "tiny-b.pte"))
    run, result = in_background(lambda: measure(plan, tmp_path / "r.db"))
    assert until((server.phone.root / STARTED).exists), "the measured run never began"
    hold.unlink()
    return server, serial, run, result


def test_a_phone_that_drops_for_a_second_mid_run_is_measured_on_and_left_clean(tmp_path, adb_server, phones,
                                                                             model_dir):
    """`adb disconnect` then `adb connect` a second later, during the first cell: the cell that was cut is lost,
    the next is measured once the phone is back ("device not found" meanwhile is a phone reconnecting), and the
    run leaves neither its lock nor its working folder.  On the code as it was, every remaining cell was lost at
    once and the lock stayed."""
    server, serial, run, result = _two_cells_measuring(tmp_path, adb_server, phones, model_dir)
    adb_server.adb("disconnect", serial)
    assert until(lambda: "not found" in adb_server.adb("-s", serial, "get-state").stderr, 10)
    assert "connected" in adb_server.adb("connect", serial).stdout
    run.join(180)
    assert not run.is_alive() and "error" not in result, result
    cells = by_build(result["value"].cells)
    assert cells["tiny.pte"].status == "lost", cells["tiny.pte"].reason
    assert cells["tiny-b.pte"].status == "ok", cells["tiny-b.pte"].reason
    harness_root = server.phone.root / android.REMOTE_ROOT.lstrip("/")
    assert not (harness_root / "lock").exists()
    assert not list((harness_root / "work").glob("*")), list((harness_root / "work").glob("*"))


def test_a_phone_whose_every_command_ends_at_once_for_a_moment_is_opened_again_and_measured_on(
        tmp_path, adb_server, phones, model_dir):
    """adbd dying mid-run: adb still lists the phone for a second or two, but every command on it ends at once
    (the simulated phone closes the connection on every command).  The cut cell is lost; the next cell's opening
    of the phone is tried again within the offline grace, and once the phone answers again it is measured.  On
    the code as it was, the reopening failed once and every remaining cell was lost about 2 s after the drop."""
    server, serial, run, result = _two_cells_measuring(tmp_path, adb_server, phones, model_dir)
    server.phone.faults.vanish_after_commands = 0  # every command from now on: the connection closes
    server.go_offline(0)  # and the one the runner is on closes now
    threading.Timer(3.0, setattr, (server.phone.faults, "vanish_after_commands", None)).start()
    run.join(180)
    assert not run.is_alive() and "error" not in result, result
    cells = by_build(result["value"].cells)
    assert cells["tiny.pte"].status == "lost", cells["tiny.pte"].reason
    assert cells["tiny-b.pte"].status == "ok", cells["tiny-b.pte"].reason


def test_a_stopped_run_ends_its_wait_for_an_offline_phone_at_once(tmp_path, adb_server, phones, monkeypatch):
    """Ctrl-C or SIGTERM while a worker waited for a phone adb lists offline took the whole grace (the worker
    never saw the run's stop).  The stop comes as the device is made, so the worker is in its wait; with the grace
    made ten minutes, the worker ends long before."""
    import queue

    from harness.devices import open_device
    from harness.run.workers import DeviceWorker

    monkeypatch.setattr(android, "OFFLINE_GRACE_S", 600.0)
    server, serial = phones()
    server.go_offline(600)
    config = Config(id="sim", platform="android", serial=serial, adb_port=adb_server.port)
    stop = threading.Event()

    def open_then_stop(device_config):
        device = open_device(device_config)
        stop.set()  # Ctrl-C, as the worker asks the phone
        return device

    worker = DeviceWorker("sim", [(_Spec(config), 0)], queue.Queue(), stop, open_then_stop)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the worker waited out the offline grace after the run was stopped"


class _Spec:
    """What a worker reads of a cell before it opens the device: the device's config, its key, its build."""

    def __init__(self, config) -> None:
        self.device, self.key, self.chain = config, "cell", None
        self.artifact = type("Artifact", (), {"sha256": "0" * 64})()


def test_wildcard_serial_waits_for_a_phone_adb_lists_offline_and_says_so_when_none_comes(
        tmp_path, adb_server, phones, monkeypatch):
    """serial '*' while the only phone was reconnecting: the run was refused at once as bad input, "adb sees no
    phone online", though adb listed it offline.  It is waited for as a named serial is; one that stays offline
    past the grace is named as offline."""
    from harness.errors import UserError

    server, serial = phones()
    entry = Config(id="lab", platform="android", serial="*", adb_port=adb_server.port)
    server.go_offline(3)
    assert until(lambda: "offline" in adb_server.adb("devices").stdout, 10)
    assert [device.serial for device in entry.expand()] == [serial]

    monkeypatch.setattr(android, "OFFLINE_GRACE_S", 0.5)
    server.go_offline(600)
    assert until(lambda: "offline" in adb_server.adb("devices").stdout, 10)
    # The module's adb server may still list an earlier test's phone offline too: counted as adb lists them.
    offline = sum(line.split()[1:2] == ["offline"] for line in adb_server.adb("devices").stdout.splitlines())
    listed = f"{offline} phone{'' if offline == 1 else 's'}"
    with pytest.raises(UserError, match=f"adb lists {listed} offline and none online"):
        entry.expand()


def test_a_command_sent_while_the_phone_is_away_for_a_moment_waits_for_it(tmp_path, adb_server, phones):
    """A phone dropped between two commands (`adb disconnect`, then back): the next command failed at once with
    "device not found", and its cell was lost though nothing had run.  It now waits for the phone, as a run does
    at its start, and runs once the phone is back."""
    server, serial = phones()
    device = controller(adb_server.port, serial, "p")
    try:
        assert device.reachable()[0] and device.prepare()[0]
        asked = threading.Event()
        coming_back = getattr(device, "_coming_back", lambda exc: False)

        def noted(exc):  # the command met the phone away: now bring it back
            asked.set()
            return coming_back(exc)

        device._coming_back = noted
        adb_server.adb("disconnect", serial)
        command, result = in_background(lambda: device.run(["echo", "hi"], 30))
        assert until(lambda: asked.is_set() or not command.is_alive(), 30)
        assert "connected" in adb_server.adb("connect", serial).stdout
        command.join(60)
        assert "error" not in result, result
        assert result["value"].exit_code == 0 and result["value"].stdout == "hi\n", vars(result["value"])
    finally:
        device.close()
