"""What a run whose cells were lost says about them: the end-of-run summary names each device's real cause, and
every output agrees that such a run is incomplete until --resume measures them (`harness runs`, the report's
header, JSON, nightly --compare-only and the choice of a baseline)."""

from __future__ import annotations

import pytest

from harness.cli import main as cli_main
from harness.run.cell import CellResult
from harness.run.workers import measure_concurrently
from tests.helpers import copy_model, phone_inventory, write

THREE_PHONES = """
devices:
  - id: busy
    platform: host
  - id: typo
    platform: host
  - id: gone
    platform: host
"""


class _Phone:
    """A device as the worker sees it when it is opened: it answers, or says why not (and how)."""

    def __init__(self, why_not: str = "", busy: bool = False, absent: bool = False) -> None:
        self.why_not, self.busy, self.absent = why_not, busy, absent
        self.config = None

    def reachable(self):  # a busy phone answers; its lock, taken in prepare, is another controller's
        return (True, "") if self.busy else (not self.why_not, self.why_not)

    def prepare(self):
        return not self.why_not, self.why_not

    def make_room(self, needed) -> None:
        pass

    def facts(self):
        from harness.devices.base import DeviceFacts

        return DeviceFacts("gone", "android", True)

    def close(self) -> None:
        pass


def _three_fates(monkeypatch):
    """The measure function of a run on three phones: 'busy' held by another controller, 'typo' a serial adb does
    not know, 'gone' answers, then goes away during its first run and does not answer when asked again.  The
    worker (harness.run.workers) turns each into the lost cells it stores."""
    import harness.run.workers as workers

    asked: dict[str, int] = {}

    def opener(config):
        asked[config.id] = asked.get(config.id, 0) + 1
        if config.id == "busy":
            return _Phone("held by another controller (host lab2, pid 4242): --resume measures these cells",
                          busy=True, absent=True)
        if config.id == "typo":
            return _Phone("device '127.0.0.1:7399' not found", absent=True)
        return _Phone() if asked["gone"] == 1 else _Phone("adb lists no device 127.0.0.1:5555", absent=True)

    def went_away(spec, device, run_index):  # what execute_run gives when adb loses the phone mid-command
        return CellResult(key=spec.key, status="lost", reason="adb lost the device (connection reset by peer)")

    monkeypatch.setattr(workers, "execute_run", went_away)
    return lambda todo: measure_concurrently(todo, opener=opener)


def _plan(tmp_path, model_dir, inventory: str = THREE_PHONES):
    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")
    write(tmp_path / "devices.yaml", inventory)
    return write(tmp_path / "plan.yaml", "name: p\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\n"
                 "iterations: 3\nruns: 2\n")


def test_each_cause_of_lost_cells_has_its_own_line(tmp_path, model_dir, monkeypatch, capsys):
    """The stored reasons of a cell with several runs begin "run 1 of 2: ", so lost_by_cause's checks of how they
    begin never matched and the summary said "lost their device mid-run" of every lost cell, a busy phone's and a
    mistyped serial's too ("1 cell lost their device", "--resume" broken off before "measure them with:")."""
    import harness.run.engine as engine

    monkeypatch.setattr(engine, "measure_concurrently", _three_fates(monkeypatch))
    plan = _plan(tmp_path, model_dir)
    assert cli_main(["run", str(plan), "--db", str(tmp_path / "r.db"), "-q"]) == 1
    said = capsys.readouterr().err
    lines = said.splitlines()
    run_id = lines[0].split()[1].rstrip(":")
    assert "1 cell not measured: its phone is held by another controller; measure once it is free" in lines, said
    assert "1 cell not measured: its device never answered; check the serial and adb (adb devices)" in lines, said
    assert "1 cell lost its device mid-run; measure once it answers again (adb devices)" in lines, said
    assert lines[-2] == "measure them with:" and f"--resume {run_id} " in lines[-1] + " ", said


def _never_answers(todo):
    """A run on a phone that is off all night: the worker stores its cells as lost (for --resume), one run each
    (a run that is not ok ends its cell), so a cell planned for 2 runs holds one lost run and no measurement."""
    return measure_concurrently(todo, opener=lambda config: _Phone("adb lists no device 127.0.0.1:5555",
                                                                   absent=True))


HOST = "devices:\n  - id: host\n    platform: host\n"


def test_a_run_whose_cells_were_all_lost_is_incomplete_in_every_output(tmp_path, model_dir, monkeypatch, capsys):
    """`harness runs` said "incomplete (1 lost)" while the report's header and `harness run --json` said complete
    (the runs table does), `nightly --compare-only` judged the run (getting-started.md promises a refusal:
    "incomplete run: N of M runs stored", exit 2, with the --resume that finishes it), and the lost cell counted
    as "1 of 2 runs" done."""
    import json

    import harness.run.engine as engine
    from harness.store import Store

    monkeypatch.setattr(engine, "measure_concurrently", _never_answers)
    plan, db = _plan(tmp_path, model_dir, HOST), tmp_path / "r.db"
    assert cli_main(["run", str(plan), "--db", str(db), "-q", "--json"]) == 1
    said = json.loads(capsys.readouterr().out)
    run_id = said["run_id"]
    assert (said["status"], said["lost_cells"]) == ("incomplete", 1), said
    assert cli_main(["runs", "--db", str(db), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["status"], row["label"], row["lost_cells"]) == ("incomplete", "incomplete (1 lost)", 1), row
    assert cli_main(["report", run_id, "--db", str(db), "-o", str(tmp_path / "rep")]) == 0
    page = (tmp_path / "rep" / "index.html").read_text()
    assert f"run <b>{run_id}</b> · incomplete (1 lost) · started" in page
    assert "INCOMPLETE</b> · incomplete run: 0 of 2 runs stored (1 cell lost)" in page
    assert cli_main(["nightly", "--compare-only", run_id, "--db", str(db), "-o", str(tmp_path / "nt")]) == 2
    refused = capsys.readouterr().err
    assert "incomplete run: 0 of 2 runs stored (1 cell lost)" in refused, refused
    assert f"--resume {run_id}" in refused and "Traceback" not in refused, refused
    assert not (tmp_path / "nt").exists()
    with Store(db, read_only=True) as store:
        (cell,) = store.cells(run_id, with_samples=False)
    assert (cell.status, cell.runs_done, cell.runs_planned) == ("lost", 0, 2)


def _good_then_lost_then_good(tmp_path, model_dir, monkeypatch, capsys) -> tuple[str, str, str]:
    """Three runs of one plan into tmp_path/r.db: measured, then with its device off all night (every cell lost),
    then measured again; their run ids."""
    import json

    import harness.run.engine as engine

    measured = ["run", str(_plan(tmp_path, model_dir, HOST)), "--db", str(tmp_path / "r.db"), "-q", "--json"]
    assert cli_main(measured) == 0
    good = json.loads(capsys.readouterr().out)["run_id"]
    with monkeypatch.context() as phone_off:
        phone_off.setattr(engine, "measure_concurrently", _never_answers)
        assert cli_main(measured) == 1
        lost = json.loads(capsys.readouterr().out)["run_id"]
    assert cli_main(measured) == 0
    tonight = json.loads(capsys.readouterr().out)["run_id"]
    return good, lost, tonight


def test_a_run_whose_cells_were_all_lost_is_no_baseline(tmp_path, model_dir, monkeypatch, capsys):
    """--compare-only of a good night chose as its baseline the newest run stored 'complete', one whose every cell
    was lost (its cells then read as new or missing, and the night FAILED); a pinned --baseline of such a run is
    refused, as one that did not finish is."""
    import json

    db = tmp_path / "r.db"
    good, lost, tonight = _good_then_lost_then_good(tmp_path, model_dir, monkeypatch, capsys)
    assert len({good, lost, tonight}) == 3
    assert cli_main(["nightly", "--compare-only", tonight, "--db", str(db), "-o", str(tmp_path / "nt"), "--json"]) == 0
    judged = json.loads(capsys.readouterr().out)
    assert (judged["baseline_run_id"], judged["status"]) == (good, "complete"), judged
    assert cli_main(["nightly", "--compare-only", tonight, "--baseline", lost, "--db", str(db),
                     "-o", str(tmp_path / "nt2")]) == 2
    refused = capsys.readouterr().err
    assert f"--baseline {lost}: incomplete run: 0 of 2 runs stored (1 cell lost)" in refused, refused


def test_a_night_whose_cells_were_lost_is_judged_failed_and_says_it_is_incomplete(tmp_path, model_dir, monkeypatch,
                                                                                   capsys):
    """A night measured with its phone gone is still judged (its lost cell fails it, so cron sees exit 1 and its
    JUnit) rather than refused, and says how to measure what was lost; its page's header said "complete", as the
    runs table does, and nothing named the --resume that finishes it."""
    import json

    import harness.run.engine as engine

    monkeypatch.setattr(engine, "measure_concurrently", _never_answers)
    plan, out = _plan(tmp_path, model_dir, HOST), tmp_path / "night"
    assert cli_main(["nightly", str(plan), "--db", str(tmp_path / "r.db"), "-o", str(out), "-q"]) == 1
    said = capsys.readouterr().err
    verdict = json.loads((out / "nightly.json").read_text())
    run_id = verdict["run_id"]
    assert verdict["passed"] is False and [c["status"] for c in verdict["checks"]] == ["failed"], verdict
    assert (out / "junit.xml").is_file()
    page = (out / "index.html").read_text()
    assert f"run <b>{run_id}</b> · incomplete (1 lost) · started" in page
    # The night's page leads with how to finish it, and says what its verdict made of the lost cell.
    assert ("<b>INCOMPLETE</b> · incomplete run: 0 of 2 runs stored (1 cell lost); the verdict above counts its "
            "lost cells as failed") in page
    assert f"run {run_id} is incomplete (1 lost): once the devices answer, measure the 1 lost cell" in said, said
    assert f"harness nightly {plan} --resume {run_id}" in said, said


def test_a_cells_reason_names_the_run_that_failed_not_the_one_stored_last(tmp_path):
    """Both runs of a cell lost; --resume measures run 1 again while run 2 is still lost: the cell's reason is run
    2's ("run 2 of 2: ..."), not labelled with the run just stored.  Catches the label taken from the run being
    recorded (it read "run 1 of 2: device unreachable" over a run 1 that had just measured)."""
    from pathlib import Path
    from types import SimpleNamespace

    from harness.devices.base import DeviceFacts
    from harness.nightly.synthetic import SyntheticBuild
    from harness.runners.base import Measurement, RunSettings
    from harness.store import Store

    build = SyntheticBuild("b" * 64, "silero", "vad", "fp32")
    spec = SimpleNamespace(key="phone/b", device=SimpleNamespace(id="phone"), artifact=build, task="latency",
                           runner="android-ort", chain=None,
                           settings=RunSettings(warmup_iterations=0, iterations=3, timeout_s=60, runs=2, profile_runs=0))
    with Store(tmp_path / "h.db", durable=False) as store:
        store.record_artifact(build)
        run_id = store.create_run("p", Path("p.yaml"), "0" * 64, {}, {}, plan_text="p")
        store.record_device(run_id, DeviceFacts("phone", "android", True, {}), {})
        for index in range(2):
            store.record_run(run_id, spec, index, CellResult(spec.key, "lost", reason=f"device unreachable: gone {index}"))
        store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", measurement=Measurement(samples_ms=[1.0] * 3)))
        (cell,) = store.cells(run_id)
    assert cell.status == "lost" and cell.reason == "run 2 of 2: device unreachable: gone 1", cell.reason


@pytest.mark.slow
def test_a_lost_cell_measured_by_resume_is_profiled_too(tmp_path, adb_server, phones, model_dir, monkeypatch):
    """A profiled plan whose phone never answered (its cells lost), resumed once the phone is back: the cell is
    measured and then profiled, as it would have been.  Catches --resume skipping profiling because the runs
    table said "complete" (a run with lost cells is incomplete: harness.store.state)."""
    import harness.devices.android as android
    from harness.run.engine import run_plan
    from harness.store import Store

    server, serial = phones()
    phone_inventory(tmp_path, serial, adb_server.port)
    copy_model(model_dir, "tiny.pte", tmp_path / "builds")
    plan = write(tmp_path / "plan.yaml", """
        name: lost-then-profiled
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        iterations: 3
        runs: 1
        profile_runs: 1
        timeout_s: 60
        """)
    monkeypatch.setattr(android, "OFFLINE_GRACE_S", 0.5)
    server.go_offline(600)
    first = run_plan(plan, tmp_path / "r.db")
    assert first.statuses == {"lost": 1}, first.statuses
    server.phone.faults.offline_until = None
    adb_server.adb("-s", serial, "wait-for-device", timeout_s=60)
    again = run_plan(plan, tmp_path / "r.db", resume=first.run_id)
    assert again.statuses == {"ok": 1}, again.statuses
    with Store(tmp_path / "r.db") as store:
        (cell,) = store.cells(first.run_id)
        assert store.profiled_cells(first.run_id) == {cell.cell_key}


def test_the_history_site_calls_a_run_with_lost_cells_incomplete_and_judges_the_next_night_against_a_good_one(
        tmp_path, model_dir, monkeypatch, capsys):
    """The site read the runs table's 'complete': a run whose phone was off all night showed "complete" on its
    night page, and the next night was judged against it (its cells then had no baseline).  Catches either."""
    db = tmp_path / "r.db"
    good, lost, tonight = _good_then_lost_then_good(tmp_path, model_dir, monkeypatch, capsys)
    assert cli_main(["site", "--db", str(db), "-o", str(tmp_path / "site")]) == 0
    pages = {p.read_text().split("<title>", 1)[1].split("</title>", 1)[0]: p.read_text()
             for p in (tmp_path / "site" / "nights").glob("*.html")}
    lost_page = next(text for title, text in pages.items() if lost in title)
    tonight_page = next(text for title, text in pages.items() if tonight in title)
    assert " · incomplete (1 lost) · " in lost_page
    assert "judged against <a href=" in tonight_page and f">{good}</a>" in tonight_page, tonight_page[:2000]
    assert f">{lost}</a>" not in tonight_page.split("judged against", 1)[1].split("</p>", 1)[0]


def test_cells_lost_to_a_lock_taken_over_count_as_held_by_another_controller():
    """A phone whose lock another controller took over mid-run: its lost cells are summed up as held by another
    controller ("measure once it is free"), not as a device that went away.  Catches the takeover's reason (it
    begins "another controller took over this phone's lock", behind "run N of M: ") counted as "mid-run"."""
    from types import SimpleNamespace

    from harness.devices.android import LOCK_LOST
    from harness.run.workers import lost_by_cause

    taken = LOCK_LOST.removeprefix("harness: ") + " (host lab2, pid 4242, device other, since 2026-12-08T01:00:00Z)"
    cells = [SimpleNamespace(device_id="phone", status="ok", reason=""),
             SimpleNamespace(device_id="phone", status="lost", reason=f"run 2 of 2: {taken}"),
             SimpleNamespace(device_id="phone", status="lost", reason=taken),
             # met while the phone was being opened again for the next cell
             SimpleNamespace(device_id="phone", status="lost", reason=f"device unreachable: {taken}"),
             SimpleNamespace(device_id="other", status="lost", reason="adb lost the device (connection reset)")]
    assert lost_by_cause(cells) == {"busy": 3, "mid-run": 1}
