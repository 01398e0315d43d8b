"""`harness compare A B` on stored runs, and `harness report RUN_ID` without -o.

A 20% slowdown is injected the way the nightly's history tests inject one (harness.nightly.synthetic, here as
new bytes of the same build); exit codes, matching and 'not comparable' are checked on real runs on the host.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import KWS_MANIFEST, cli_in_process, copy_model, export_kws, write


@pytest.fixture(scope="module")
def synthetic_db(tmp_path_factory):
    """Two nights of three builds (5 runs each); build 0 is rebuilt 20% slower on the second night."""
    from harness.nightly.synthetic import write_synthetic_history

    db = tmp_path_factory.mktemp("compare") / "h.db"
    write_synthetic_history(db, nights=2, devices=1, builds=3, samples=100, step=(1, 0, 1.2), step_new_bytes=True)
    return db


def test_a_twenty_percent_slower_build_is_called_and_fails(synthetic_db, tmp_path):
    proc = cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(synthetic_db), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    out = json.loads(proc.stdout)
    by_build = {c["subject"].split()[0]: c for c in out["checks"]}
    assert set(by_build) == {"synthetic-0", "synthetic-1", "synthetic-2"}
    slow = by_build["synthetic-0"]
    assert slow["status"] == "regression" and slow["data"]["ratio"] == pytest.approx(1.2, abs=0.05)
    low, high = slow["data"]["ratio_ci"]
    assert 1 < low < 1.2 < high and out["ci_level"] == pytest.approx(0.99) and out["slower"] == 1
    assert all(by_build[b]["status"] == "pass" for b in ("synthetic-1", "synthetic-2"))

    changed = cli_in_process("compare", "synthetic-0000", "latest", "--db", str(synthetic_db), "--only-changed")
    assert changed.returncode == 1
    lines = changed.stdout.splitlines()
    assert len(lines) == 2 and lines[1].split()[0] == "regression" and "synthetic-0 " in lines[1]

    page = tmp_path / "out" / "compare.html"
    html = cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(synthetic_db), "--format", "html",
                   "-o", str(page))
    assert html.returncode == 1 and html.stdout == ""
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "synthetic-0 vad fp32 xnnpack" in text and "regression" in text


def test_the_same_run_twice_calls_nothing_and_passes(synthetic_db):
    proc = cli_in_process("compare", "synthetic-0001", "synthetic-0001", "--db", str(synthetic_db), "--format", "json")
    assert proc.returncode == 0
    assert {c["status"] for c in json.loads(proc.stdout)["checks"]} == {"pass"}


def test_bad_input_is_one_message_and_exit_2(synthetic_db, tmp_path):
    # In this process (cli_in_process): a traceback would raise here and fail the test; four child processes cost
    # ~2 s and the console entry point is not the point (the hostile cases run it).
    unknown = cli_in_process("compare", "synthetic-0000", "nope", "--db", str(synthetic_db))
    assert unknown.returncode == 2 and "no run 'nope'" in unknown.stderr and "Traceback" not in unknown.stderr
    threshold = cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(synthetic_db), "--threshold", "5")
    assert threshold.returncode == 2 and "0.05 means 5%" in threshold.stderr
    ambiguous = cli_in_process("compare", "synthetic", "synthetic-0001", "--db", str(synthetic_db))
    assert ambiguous.returncode == 2 and "is the start of 2 run ids" in ambiguous.stderr
    nodb = cli_in_process("compare", "a", "b", "--db", str(tmp_path / "missing.db"))
    assert nodb.returncode == 2 and "no database at" in nodb.stderr and not (tmp_path / "missing.db").exists()


# -- real runs on the host -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def host_runs(tmp_path_factory):
    """Runs of one build identity on the host: twice the same bytes, once with other settings (one run: it is only
    ever refused as not comparable), once far heavier."""
    from harness.run.engine import run_plan

    tmp = tmp_path_factory.mktemp("compare-host")
    write(tmp / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    db = tmp / "reports" / "h.db"

    def run(width, iterations=20, runs=3):
        export_kws(tmp / "build" / "kws.onnx", width)
        plan = write(tmp / "plan.yaml", f"""
            name: lab
            inventory: devices.yaml
            artifacts: [build/kws.onnx]
            warmup_iterations: 2
            iterations: {iterations}
            runs: {runs}
            threads: 1
            """)
        return run_plan(plan, db).run_id

    (tmp / "build").mkdir()
    return db, {"first": run(64), "again": run(64), "fewer": run(64, iterations=10, runs=1), "heavy": run(768)}


@pytest.mark.slow
def test_the_same_build_twice_is_not_called_and_exits_0(host_runs):
    db, ids = host_runs
    proc = cli_in_process("compare", ids["first"], ids["again"], "--db", str(db), "--format", "json")
    assert proc.returncode == 0, proc.stderr
    (check,) = json.loads(proc.stdout)["checks"]
    # The same bytes, settings and device facts: a move the runs see is the machine's ("shift"), never "regression".
    assert check["kind"] == "latency" and check["status"] in ("pass", "shift")


@pytest.mark.slow
def test_a_far_heavier_build_exits_1_and_other_settings_are_not_comparable(host_runs):
    db, ids = host_runs
    heavy = cli_in_process("compare", ids["again"], ids["heavy"], "--db", str(db))
    # 768-wide layers against 64-wide: ~100x the arithmetic, far beyond any noise of a busy machine.
    assert heavy.returncode == 1 and heavy.stdout.splitlines()[1].split()[0] == "regression"
    other = cli_in_process("compare", ids["first"], ids["fewer"], "--db", str(db), "--format", "json")
    assert other.returncode == 0
    (check,) = json.loads(other.stdout)["checks"]
    assert check["status"] == "not comparable" and "iterations 20 -> 10" in check["detail"]


@pytest.mark.slow
def test_report_without_output_writes_beside_the_database(host_runs):
    """The command every report's footer prints, `harness report RUN_ID`, failed: -o was required.  Like every
    command that reads a run, it takes the start of a run id too."""
    db, ids = host_runs
    others = [i for key, i in ids.items() if key != "first"]
    prefix = next(ids["first"][:n] for n in range(1, 99) if not any(i.startswith(ids["first"][:n]) for i in others))
    proc = cli_in_process("report", prefix, "--db", str(db))
    assert proc.returncode == 0, proc.stderr
    page = db.parent / ids["first"] / "index.html"
    assert f"harness report {ids['first']}" in page.read_text()


def test_chains_are_compared_on_the_same_utterances_only():
    """WER in `harness compare`: a chain of the same name on the same utterances gets the paired bootstrap; on
    other utterances, or in one run only, it is not comparable, with the reason."""
    from types import SimpleNamespace

    from harness.accuracy.wer import score_corpus
    from harness.nightly.compare import chain_checks

    def chain(name, refs, hyps):
        score = score_corpus([str(i) for i in range(len(refs))], refs, hyps, normalise=False)
        return SimpleNamespace(cell=SimpleNamespace(device_id="host"), chain={"name": name}, score=score)

    def run(run_id, *chains):
        return SimpleNamespace(run=SimpleNamespace(run_id=run_id), chains=list(chains))

    refs = [f"w{i} x{i} y{i}" for i in range(25)]
    worse = [r if i % 2 else "z " + r.split(" ", 1)[1] for i, r in enumerate(refs)]  # 13 substitutions
    a = run("A", chain("int8", refs, refs), chain("fp32", refs, refs), chain("old", refs, refs))
    b = run("B", chain("int8", refs, worse), chain("fp32", refs[:3], refs[:3]), chain("new", refs, refs))
    checks = {c.subject: c for c in chain_checks(a, b)}
    assert checks["int8"].status == "regression" and checks["int8"].data["delta"] == pytest.approx(13 / 75)
    assert checks["fp32"].status == "not comparable" and "25 in A, 3 in B" in checks["fp32"].detail
    assert checks["old"].detail == "only in A" and checks["new"].detail == "only in B"


def test_an_interrupted_side_is_named_and_every_printed_command_names_the_database(synthetic_db, tmp_path):
    """An interrupted B compared as if finished, a report with normal tiles, follow-up commands without --db and
    nightly --baseline refusing 'latest'.  Catches compare_stored_runs without the incomplete note, a report without
    the INCOMPLETE headline, footers without db_option, and --baseline not through _resolve_run_id."""
    import shutil

    from harness.store import Store

    db = tmp_path / "lab" / "h.db"
    db.parent.mkdir()
    shutil.copy(synthetic_db, db)
    with Store(db) as store:
        store.set_run_status("synthetic-0001", "interrupted")
    proc = cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(db), "--format", "json")
    (note,) = json.loads(proc.stdout)["incomplete"]
    assert note.startswith("B synthetic-0001 is an incomplete run") and "interrupted" in note
    page = tmp_path / "c.html"
    cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(db), "--format", "html", "-o", str(page))
    assert f"harness compare synthetic-0000 synthetic-0001 --db {db} --format html" in page.read_text()

    report = cli_in_process("report", "synthetic-0001", "--db", str(db))
    assert report.returncode == 0, report.stderr
    html = (db.parent / "synthetic-0001" / "index.html").read_text()
    head = html.split("<h1>")[0]
    assert "<title>INCOMPLETE" in head and "the run is interrupted" in head and f"--resume synthetic-0001 --db {db}" in head
    assert f"harness report synthetic-0001 --db {db}</code>" in html

    # --baseline takes 'latest' as every other command does; the outputs go beside the database, as a report's
    with Store(db) as store:
        store.set_run_status("synthetic-0001", "complete")
    # ('latest' resolves, and a night is judged against an earlier one: the later run is refused as its baseline)
    later = cli_in_process("nightly", "--compare-only", "synthetic-0000", "--baseline", "latest", "--db", str(db))
    assert later.returncode == 2 and "--baseline synthetic-0001 started after" in later.stderr, later.stderr
    proc = cli_in_process("nightly", "--compare-only", "latest", "--baseline", "synthetic-0000", "--db", str(db), "--json")
    out = json.loads(proc.stdout)
    assert out["baseline_run_id"] == "synthetic-0000" and out["out_dir"] == str(db.parent / "synthetic-0001")


def test_the_compare_headline_counts_in_words_and_names_an_incomplete_side():
    """'1 checks' before counted(); catches the headline phrased by hand or dropping the incomplete note."""
    from harness.nightly.compare import RunComparison
    from harness.report.verdict import Check

    one = RunComparison("a", "b", 0.05, [Check("d", "s", "latency", "pass", "")], incomplete=["B b is an incomplete run"])
    assert one.headline() == "b against a: 1 check (1 pass); B b is an incomplete run"


def test_a_baseline_of_another_plan_is_refused_before_anything_is_measured(synthetic_db, model_dir, tmp_path):
    """'nightly plan --baseline latest' where latest is another plan's run measured the whole night, then exited 2
    (and the measured run became the next default baseline).  Catches the plan check left in compare_and_write
    only: the build below exists, so the old code measured it and stored a run."""
    import shutil

    from harness.store import Store

    db = tmp_path / "h.db"
    shutil.copy(synthetic_db, db)
    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    copy_model(model_dir, "tiny.onnx", tmp_path / "build", manifest=KWS_MANIFEST, as_name="kws.onnx")
    plan = write(tmp_path / "plan.yaml", """
        name: not-synthetic
        inventory: devices.yaml
        artifacts: [build/kws.onnx]
        warmup_iterations: 1
        iterations: 3
        runs: 1
        threads: 1
        """)
    with Store(db) as store:
        before = len(store.runs())
    proc = cli_in_process("nightly", str(plan), "--db", str(db), "--baseline", "latest", "-q")
    assert proc.returncode == 2 and "synthetic-0001 is a run of another plan" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    with Store(db) as store:
        assert len(store.runs()) == before


def test_the_default_baseline_is_the_newest_night_that_passed(tmp_path):
    """A build missing two nights running was reported once: night 3 was judged against night 2, which already
    lacked it, and passed.  The default baseline skips a night whose stored verdict failed, and falls back to the
    newest complete run when no night passed.  Catches compare_and_write defaulting to latest_complete_run."""
    from harness.nightly.synthetic import write_synthetic_history
    from harness.report.verdict import MISSING, Check
    from harness.store import Store

    db = tmp_path / "h.db"
    first, second, third = write_synthetic_history(db, nights=3, devices=1, builds=1, samples=30, runs=3)
    with Store(db) as store:
        store.record_checks(first, None, [Check("host", "b", "latency", "pass", "")])
        store.record_checks(second, first, [Check("host", "b", "latency", MISSING, "in the baseline, not tonight")])

    def judged_against() -> str:
        proc = cli_in_process("nightly", "--compare-only", third, "--db", str(db), "-o", str(tmp_path / "out"), "--json")
        assert proc.returncode in (0, 1), proc.stderr
        return json.loads(proc.stdout)["baseline_run_id"]

    assert judged_against() == first
    with Store(db) as store:  # no night passed: the newest complete one
        store.record_checks(first, None, [Check("host", "b", "latency", MISSING, "")])
    assert judged_against() == second


def test_the_nightly_banner_names_its_undecided_checks(tmp_path):
    """The terminal banner counted '3 undecided' and named none.  Two runs a night are too few to call a change:
    catches cmd_nightly printing the failing checks' reasons only."""
    from harness.nightly.synthetic import write_synthetic_history

    db = tmp_path / "h.db"
    first, second = write_synthetic_history(db, nights=2, devices=1, builds=3, samples=30, runs=2)
    proc = cli_in_process("nightly", "--compare-only", second, "--db", str(db), "-o", str(tmp_path / "out"))
    assert "3 undecided" in proc.stderr, proc.stderr
    named = [line for line in proc.stderr.splitlines() if line.startswith("  too few runs: ")]
    assert len(named) == 3 and all("set 'runs' in the plan to" in line for line in named), proc.stderr


def test_one_check_and_one_regression_are_counted_in_words_on_the_compare_page_and_the_site():
    """compare --format html said '1 checks' and the site's night verdict '1 regressions'.  Catches the compare
    template or site _detail phrasing counts by hand."""
    from harness.nightly.compare import RunComparison, as_html
    from harness.report.verdict import Check, headline
    from harness.site.model import _detail

    page = as_html(RunComparison("a", "b", 0.05, [Check("d", "s", "latency", "pass", "")]), False)
    assert "1 check ·" in page and "1 checks" not in page
    checks = [Check("d", "s", "latency", "regression", "")]
    assert _detail(headline(checks), checks) == "1 regression"
    passing = [Check("d", "s", "latency", "pass", "")]
    assert _detail(headline(passing), passing) == "1 check, none failing"


def test_a_run_compared_with_itself_or_with_another_plans_run_says_so(synthetic_db, tmp_path):
    """Both gave a quiet comparison with no word about why (an outside tester): a run with itself cannot change,
    and two plans share only some cells."""
    import shutil
    import sqlite3

    same = cli_in_process("compare", "synthetic-0001", "synthetic-0001", "--db", str(synthetic_db), "--format", "json")
    assert any("same run" in note for note in json.loads(same.stdout)["notes"]), same.stdout
    db = tmp_path / "h.db"
    shutil.copy(synthetic_db, db)
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET plan_name='other' WHERE run_id='synthetic-0001'")
    two = cli_in_process("compare", "synthetic-0000", "synthetic-0001", "--db", str(db))
    assert "plan 'other'" in two.stdout + two.stderr, two.stdout + two.stderr


def test_a_side_without_a_profile_gets_one_line_saying_why_there_is_no_operator_comparison(tmp_path):
    """Run A profiled, run B measured with profile_runs: 0.  Before, compare said nothing about operators at all: a
    reader looking for the operators behind a change found no word why there were none."""
    from pathlib import Path
    from types import SimpleNamespace

    from harness.devices.base import DeviceFacts
    from harness.nightly.synthetic import SyntheticBuild
    from harness.profile.records import OperatorTime, Profile
    from harness.run.cell import CellResult
    from harness.runners.base import Measurement
    from harness.store import Store
    from tests.test_export_tables import _spec

    db = tmp_path / "h.db"
    build = SyntheticBuild("e" * 64, "silero", "vad", "fp32")
    with Store(db, durable=False) as store:
        store.record_artifact(build)
        for run_id, profile_runs in (("run-a", 1), ("run-b", 0)):
            store.create_run("cli", Path("t.yaml"), "0" * 64, {}, {"profile_runs": profile_runs, "runs": 1},
                             run_id=run_id, plan_text="t")
            store.record_device(run_id, DeviceFacts("phone-1", "android", True, {}), {})
            spec = _spec(build, runs=1)
            store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", started_at="t", finished_at="t",
                                                         measurement=Measurement(samples_ms=[10.0, 11.0, 12.0])))
            if profile_runs:
                profile = Profile(iterations=2, operators=[OperatorTime("gemm", "XNNPACK", 2, 2.0, 1.0)])
                store.record_profiles(run_id, spec.key, CellResult(spec.key, "ok", profiles=[profile]))
            store.set_run_status(run_id, "complete")
    proc = cli_in_process("compare", "run-a", "run-b", "--db", str(db))
    notes = [line for line in proc.stderr.splitlines() if "operator comparison" in line]
    assert notes == ["note: no operator comparison: run B (run-b) was not profiled (profile_runs: 0)."], proc.stderr
