"""`harness site`: every stored run on one index, every series on its own page with E-Divisive change points."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.cli import main
from harness.nightly.changepoints import change_points
from harness.nightly.synthetic import SyntheticBuild, write_synthetic_history
from harness.run.cell import CellResult
from harness.runners.base import Measurement, RunSettings
from harness.site import write_site
from harness.site.model import slug
from harness.store import Store

EVIL = "<script>alert(1)</script>"


def _row(html: str, row_id: str) -> str:
    found = re.search(rf'<tr id="{re.escape(row_id)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {row_id}"
    return found.group(1)


def _hrefs(html: str) -> set[str]:
    return set(re.findall(r'href="([^"]+)"', html))


def _odd_run(db: Path, run_id: str, plan: str, model: str, when: str, status: str) -> None:
    """One run of one cell on 'bench-1', through the store's API: a build named ``model`` that ``status``."""
    settings = RunSettings(warmup_iterations=0, iterations=4, timeout_s=60, runs=1)
    with Store(db, durable=False) as store:
        build = SyntheticBuild("f" * 64, model, "llm", "int4")
        store.record_artifact(build)
        store.create_run(plan, Path("odd.yaml"), "0" * 64, {}, {}, run_id=run_id, plan_text="odd", started_at=when)
        device = SimpleNamespace(id="bench-1")
        from harness.devices.base import DeviceFacts

        store.record_device(run_id, DeviceFacts(device.id, "android", True, {}), {})
        spec = SimpleNamespace(key=f"bench-1/{build.sha256[:16]}/latency", device=device, artifact=build,
                               task="latency", runner="synthetic", settings=settings, chain=None)
        measured = Measurement(samples_ms=[30.0, 31.0, 29.5, 30.5]) if status == "ok" else None
        store.record_run(run_id, spec, 0, CellResult(key=spec.key, status=status, reason="runner crashed",
                                                     started_at=when, finished_at=when, measurement=measured))
        store.set_run_status(run_id, "complete")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """16 synthetic nights (2 phones x 2 builds, build 1 20% slower from night 10), one run of another plan
    whose only cell failed, and one whose plan and model names carry markup."""
    tmp = tmp_path_factory.mktemp("site")
    db = tmp / "h.db"
    nights = write_synthetic_history(db, nights=16, devices=2, builds=2, samples=20, step=(10, 1, 1.2))
    _odd_run(db, "odd-failed", "odd-plan", "crashy", "2025-12-20T01:00:00+00:00", "failed")
    _odd_run(db, "odd-evil", EVIL, EVIL, "2025-12-21T01:00:00+00:00", "ok")
    out = tmp / "site"
    assert main(["site", "-o", str(out), "--db", str(db)]) == 0
    return SimpleNamespace(db=db, out=out, nights=nights, index=(out / "index.html").read_text())


def test_index_lists_every_run_with_date_plan_devices_and_verdict(site):
    """Catches: a run left off the index, or its date, plan, devices or verdict not shown (or a failed cell
    not turning its run's verdict to failed)."""
    for night in site.nights:
        row = _row(site.index, f"run-{slug(night)}")
        day = 21 + int(night[-4:])  # write_synthetic_history starts on 2025-11-21, one night a day
        assert f"2025-{11 + (day > 30):02d}-{day - 30 * (day > 30):02d}" in row
        assert "synthetic-nightly" in row and "phone-0, phone-1" in row
        assert re.search(r'class="badge pass">pass(ed)?<', row)  # no cell misses a budget, none failed
    # Night 10: build 1 is 20% slower on both phones with the same bytes, which the nightly calls a shift of the
    # machine (not failing); the verdict's detail says so rather than "passed" alone.
    assert "none failing" in _row(site.index, f"run-{slug(site.nights[10])}")
    assert "2 shift" in _row(site.index, f"run-{slug(site.nights[10])}")
    failed = _row(site.index, f"run-{slug('odd-failed')}")
    assert "odd-plan" in failed and "bench-1" in failed and 'class="badge over">failed<' in failed
    assert len(re.findall(r'<tr id="run-', site.index)) == len(site.nights) + 2


def test_every_series_page_exists_and_nights_and_series_link_both_ways(site):
    """Catches: a missing series page, a series page that does not link each of its nights, or a night page
    that does not link back to the series of its cells."""
    series_links = sorted(h for h in _hrefs(site.index) if h.startswith("series/"))
    assert len(series_links) == 2 * 2 + 1  # 2 phones x 2 builds, and the markup run's build (the failed has none)
    for href in series_links:
        page = (site.out / href).read_text()
        night_links = [h for h in _hrefs(page) if h.startswith("../nights/")]
        assert night_links, href
        for night_href in night_links:
            assert f"../{href}" in _hrefs((site.out / "series" / night_href).read_text())
    for night in site.nights:
        assert (site.out / "nights" / f"{slug(night)}.html").is_file()


def test_injected_step_is_a_change_point_at_its_night_and_flat_series_have_none(site):
    """Catches: E-Divisive not run on the series, or its change point put on the wrong night (off by one)."""
    for href in sorted(h for h in _hrefs(site.index) if h.startswith("series/")):
        page = (site.out / href).read_text()
        section = page.split('id="change-points"')[1].split("</section>")[0]
        if "synthetic-1" in page:
            assert f"../nights/{slug(site.nights[10])}.html" in _hrefs(section)
            assert "x1.2" in section
            assert len(re.findall("<tr>", section)) == 2  # the header and the one change point
        else:
            assert "None: no level moved" in section


def test_change_points_of_a_step_and_of_noise():
    """E-Divisive on its own: a 15% step at night 30 is found there and nowhere else; 120 nights of noise
    alone have none.  Catches a wrong index mapping (nights without a level) and a missing significance gate."""
    rng = np.random.default_rng(0)
    series = list(np.concatenate([20 * rng.lognormal(0, 0.02, 30), 23 * rng.lognormal(0, 0.02, 25)]))
    found = change_points(series)
    assert [cp.index for cp in found] == [30] and found[0].ratio == pytest.approx(1.15, abs=0.03)
    assert [cp.index for cp in change_points([float("nan")] * 3 + series)] == [33]
    assert change_points(list(20 * np.random.default_rng(1).lognormal(0, 0.03, 120))) == []


def test_outside_text_is_escaped_everywhere(site):
    """Catches: a template rendering a plan or model name as markup (autoescape off, or a |safe)."""
    pages = [site.index] + [p.read_text() for p in site.out.rglob("*.html")]
    assert all("<script>" not in page for page in pages)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in site.index


@pytest.mark.parametrize("kind", ["missing", "zero bytes", "no runs"])
def test_no_database_or_no_runs_is_a_clear_error_and_creates_nothing(tmp_path, capsys, kind):
    """Catches: a site command that creates the database it was pointed at (Store creates on open), or that
    renders an empty site instead of saying there is nothing to show."""
    db = tmp_path / "reports" / "h.db"
    if kind == "zero bytes":
        db.parent.mkdir()
        db.touch()
    elif kind == "no runs":
        Store(db).close()
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert main(["site", "-o", str(tmp_path / "site"), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert str(db) in err and "Fix:" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    if kind == "zero bytes":
        assert db.stat().st_size == 0
        # The same words as 'harness runs' (the site said "no results database here" of an existing empty file).
        assert "not a harness results database (an empty file)" in err
        assert main(["runs", "--db", str(db)]) == 2
        assert capsys.readouterr().err == err


def test_without_otava_the_change_points_say_how_to_install_it(monkeypatch):
    """Catches: a bare ImportError (a traceback) when Apache Otava is not installed."""
    from harness.errors import UserError

    monkeypatch.setitem(__import__("sys").modules, "otava", None)  # import otava now raises ImportError
    with pytest.raises(UserError, match="pip install --no-deps 'apache-otava==0.8.0'"):
        change_points([1.0] * 10)


def test_nights_judged_in_worker_processes_match_one_process(site, monkeypatch):
    """Catches: a worker's first night judged without the baseline and floors the nights before its share
    set (every share must replay the plan's earlier runs)."""
    from harness.site import model

    runs = len(site.nights) + 2
    alone = model.judge_nights(site.db, 0.05, 0, runs)
    monkeypatch.setattr(model, "PARALLEL_RUNS", 1)
    monkeypatch.setattr("os.cpu_count", lambda: 3)  # three shares, whatever this machine has
    shared = model.judge_all(site.db, runs, 0.05)
    assert [(j.run_id, j.verdict, j.detail, j.baseline_run_id) for j in shared] == \
        [(j.run_id, j.verdict, j.detail, j.baseline_run_id) for j in alone]
    assert sum(j.baseline_run_id is not None for j in alone) == len(site.nights) - 1  # each night but the first


@pytest.mark.slow  # Chromium
def test_pages_render_in_chromium_without_console_errors(site, tmp_path):
    """Catches: a page that loads something from outside, breaks its markup or leaves out its history chart."""
    from tests.helpers import chromium

    series = sorted(h for h in _hrefs(site.index) if h.startswith("series/") and "synthetic-1" in h)[0]
    for page in (site.out / "index.html", site.out / series):
        dom = chromium(page, tmp_path, "--dump-dom")
        assert dom.returncode == 0 and "CONSOLE" not in dom.stderr and "Failed to load resource" not in dom.stderr
        assert ("<svg" in dom.stdout) == (page.name != "index.html")
        assert "none failing" in dom.stdout or page.name != "index.html"


def test_a_night_shows_the_verdict_its_nightly_gave_history_check_included(tmp_path):
    """The tester's contradiction: the nightly failed a night on its history check (exit 1) and the site called it
    passed.  The site now shows the stored verdict; nights no nightly judged say they were judged by the site.
    Fails with the site replaying every night (the stored verdicts ignored) or with the nightly storing none."""
    from harness.nightly.run import compare_and_write
    from harness.nightly.synthetic import write_synthetic_history
    from harness.site.model import REPLAYED, build_site_data

    db = tmp_path / "h.db"
    runs = write_synthetic_history(db, nights=12, devices=1, builds=1, samples=20, step=(6, 0, 1.65))
    outcome = compare_and_write(db, runs[-1], None, tmp_path / "out", threshold=0.05)
    assert not outcome.passed and [c.kind for c in outcome.checks if c.failing] == ["history"]
    with Store(db) as store:
        data = build_site_data(store)
    night = {n.run.run_id: n for n in data.nights}
    assert night[runs[-1]].verdict == "failed" and [c.kind for c in night[runs[-1]].failing] == ["history"]
    assert night[runs[-1]].baseline_run_id == outcome.baseline_id and REPLAYED not in night[runs[-1]].detail
    assert REPLAYED in night[runs[-2]].detail
    # 'harness report' of the judged night shows the same verdict (fails with write_report ignoring it).
    from harness.report.html import write_report

    html = write_report(db, runs[-1], tmp_path / "rebuilt").read_text()
    assert "first detectable" in html and "history" in html


def test_a_cell_a_nightly_found_regressed_is_not_shown_as_a_pass_on_its_night(tmp_path):
    """The tester's contradiction: the night's checks said 'latency regression' for a cell and the Cells table
    right below said 'pass' (its budget verdict, headed 'verdict').  The table now shows the worst of the night's
    checks of each cell, and the budget verdict under its own heading.  Fails with the budget verdict alone."""
    from harness.nightly.run import compare_and_write

    db = tmp_path / "h.db"
    runs = write_synthetic_history(db, nights=12, devices=1, builds=1, samples=20, step=(6, 0, 1.65))
    outcome = compare_and_write(db, runs[-1], None, tmp_path / "out", threshold=0.05)
    (failing,) = [c for c in outcome.checks if c.failing]
    assert failing.status == "regression"
    write_site(db, tmp_path / "site")
    night = (tmp_path / "site" / "nights" / f"{slug(runs[-1])}.html").read_text()
    cells = night.split('<section id="cells">')[1].split("</section>")[0]
    head = _cells(cells.split("</thead>")[0].replace("<th", "<td").replace("</th>", "</td>"))
    (row,) = [r for r in re.findall(r"<tr>(.*?)</tr>", cells.split("</thead>")[1], re.S) if failing.subject in r]
    shown = dict(zip(head, _cells(row)))
    assert shown["night's verdict"] == "regression" and 'class="badge over">regression<' in row
    assert shown["budget (P95)"] == "pass"  # the tester's row: within budget, regressed against the baseline


def test_a_store_without_latency_series_says_so_instead_of_an_empty_series_table(tmp_path):
    """A store whose runs have no finished latency cell (as a chains-only plan's) showed 'Series (0)' over an
    empty table (fails with the old heading)."""
    from harness.site import write_site

    db = tmp_path / "h.db"
    _odd_run(db, "only-failed", "odd-plan", "crashy", "2025-12-20T01:00:00+00:00", "failed")
    html = write_site(db, tmp_path / "site").read_text()
    assert "Series (0)" not in html and "No series" in html and "ASR chain or voice pipeline that finished" in html
    assert "get no series here yet" not in html  # chains and pipelines have series of their own now


# --- ASR chains and voice pipelines: two real nights of one plan, measured on the host ---------------------

CHAIN = "asr-int8 <b>"  # markup in a chain name: escaped on every page


@pytest.fixture(scope="module")
def chain_site(tmp_path_factory):
    """Two nights of 'harness nightly' (the real CLI) on a plan with an ASR chain and the same chain as a voice
    pipeline (VAD + ASR + the tiny LLM), two utterances each; the asr budget far above what is measured, the
    pipeline budget far below (a budget miss every night); then 'harness site'."""
    from tests.conftest import ASR_BUILDS, TINY_LLM, reference_builds
    from tests.helpers import REPO, cli_in_process, write

    tmp = tmp_path_factory.mktemp("chains")
    asr = reference_builds(tmp_path_factory, "asr", ASR_BUILDS)
    llm = reference_builds(tmp_path_factory, "llm", TINY_LLM, jobs=2)
    write(tmp / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    parts = (f"mel: {asr / 'whisper-logmel-fp32.onnx'}, encoder: {asr / 'whisper-tiny.en-encoder-int8.onnx'}, "
             f"decoder: {asr / 'whisper-tiny.en-decoder-int8.onnx'}")
    plan = write(tmp / "plan.yaml", f"""
        name: voice
        inventory: devices.yaml
        devices: [host]
        threads: 1
        budgets_p95_ms: {{asr: 60000, pipeline: 0.5, pipeline_memory_mb: null}}  # latency is the point here
        accuracy:
          corpus: {REPO / 'corpora' / 'harvard-hibari'}
          limit: 2
          chains:
            - {{name: "{CHAIN}", {parts}}}
            - {{name: voice-int8, vad: {asr / 'silero-vad-int8.onnx'}, {parts}, llm: {llm / TINY_LLM[1]}.pte}}
        """)
    db = tmp / "h.db"
    nights = [cli_in_process("nightly", str(plan), "--db", str(db), "-o", str(tmp / f"night{i}"), "--json", "-q")
              for i in range(2)]
    out = tmp / "site"
    assert main(["site", "-o", str(out), "--db", str(db)]) == 0
    index = (out / "index.html").read_text()
    return SimpleNamespace(tmp=tmp, db=db, out=out, nights=nights, index=index)


def _cells(row: str) -> list[str]:
    """A table row's cells as text (tags dropped)."""
    return [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]


def _chain_hrefs(site) -> list[str]:
    section = site.index.split('<section id="chains">')[1].split("</section>")[0]
    return sorted(h for h in _hrefs(section) if h.startswith("series/"))


def _night_run_ids(site) -> list[str]:
    import json

    return [json.loads(proc.stdout)["run_id"] for proc in site.nights]


def _report_row(html: str, anchor_prefix: str, name: str) -> list[str]:
    """The report's row (``row-chain-N`` or ``row-pipeline-N``) of the chain or pipeline named ``name``."""
    from html import escape

    rows = re.findall(rf'<tr id="{anchor_prefix}\d+">(.*?)</tr>', html, re.S)
    (row,) = [r for r in rows if _cells(r)[1] == escape(name)]
    return _cells(row)


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_each_chain_and_pipeline_has_a_series_page_with_each_nights_p95_and_wer_as_the_nightly_report(chain_site):
    """Catches: an ASR chain or voice pipeline without a series page (the site before: none), a night missing
    from it, its P95 or WER computed another way than the night's report (or taken from another chain), or the
    budget it is held to not stated."""
    from html import escape

    run_ids = _night_run_ids(chain_site)
    with Store(chain_site.db, read_only=True) as store:
        dates = [store.run(run_id).started_at[:10] for run_id in run_ids]
    pages = {(chain_site.out / href).read_text().split("<title>")[1].split("</title>")[0]: (chain_site.out / href)
             for href in _chain_hrefs(chain_site)}
    assert sorted(pages) == sorted(f"host · {what} · harness history" for what in (
        f"ASR chain {escape(CHAIN)}", "ASR chain voice-int8", "voice pipeline voice-int8"))
    for title, path in pages.items():
        page = path.read_text()
        pipeline = "voice pipeline" in title
        name = "voice-int8" if "voice-int8" in title else CHAIN
        assert ("pipeline budget 0.5 ms at P95" if pipeline else "asr budget 60000 ms at P95") in page
        assert page.count('<svg') == 2  # the per-utterance P50 and P95 histories
        for night, (run_id, date) in enumerate(zip(run_ids, dates)):
            site_row = _cells(_row(page, f"night-{slug(run_id)}"))
            assert date in site_row[0] and run_id == site_row[1] and site_row[2] == "2"  # two utterances
            report = (chain_site.tmp / f"night{night}" / "index.html").read_text()
            # the site's columns 6 and 7: the night's verdict (worst check), then the budget verdict alone
            if pipeline:  # the report's pipeline table: P50, P95 (bold), then its budget verdict
                ours = _report_row(report, "row-pipeline-", name)
                assert site_row[3:5] == ours[3:5] and "budget miss" in site_row[6] and "budget miss" in site_row[7]
            else:  # the report's accuracy table: WER is column 5, per-utterance P50 and P95 are 11 and 12
                ours = _report_row(report, "row-chain-", name)
                assert [site_row[3], site_row[4], site_row[8]] == [ours[11], ours[12], ours[5]]
                # its budget passes; the night's worst check is the WER two utterances cannot decide
                assert site_row[6] in ("pass", "too few utterances") and "pass" in site_row[7], site_row


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_chain_series_and_nights_link_both_ways_and_a_pipeline_links_its_asr_chain(chain_site):
    """Catches: a chain series page not linking its nights, a night page not linking back to the series of its
    chains and pipelines, or the index claiming chains get no series."""
    hrefs = _chain_hrefs(chain_site)
    assert len(hrefs) == 3 and "get no series here yet" not in chain_site.index
    for href in hrefs:
        page = (chain_site.out / href).read_text()
        nights = sorted(h for h in _hrefs(page) if h.startswith("../nights/"))
        assert nights == sorted(f"../nights/{slug(r)}.html" for r in _night_run_ids(chain_site))
        for night in nights:
            night_page = (chain_site.out / "series" / night).read_text()
            assert f"../{href}" in _hrefs(night_page)
            assert "Cells (0)" not in night_page  # a night of chains only: no empty cells table above them
    pipeline, chain = [(chain_site.out / h) for h in hrefs if "voice-int8" in h and "pipeline" in h] + \
        [(chain_site.out / h) for h in hrefs if "voice-int8" in h and "ASR-chain" in h]
    assert f"../series/{chain.name}" in _hrefs(pipeline.read_text())
    assert f"../series/{pipeline.name}" in _hrefs(chain.read_text())


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_a_chain_name_with_markup_is_escaped_on_every_page(chain_site):
    """Catches: a chain name rendered as markup on the index, a night page or a chain's series page."""
    pages = [p.read_text() for p in chain_site.out.rglob("*.html")]
    assert all(CHAIN not in page for page in pages)
    assert "asr-int8 &lt;b&gt;" in chain_site.index


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_a_measured_voice_pipeline_over_its_budget_is_a_budget_miss_and_fails_the_nightly(chain_site):
    """A voice pipeline measured end to end (VAD + ASR + LLM) whose P95 is over the plan's pipeline budget: the
    report's pipeline row and tile say budget miss and 'harness nightly' exits 1 (the ASR chains pass theirs).
    Catches: a pipeline judged against the asr budget or not judged at all, or a miss that does not fail the night."""
    import json

    for night, proc in enumerate(chain_site.nights):
        assert proc.returncode == 1, proc.stderr
        summary = json.loads((chain_site.tmp / f"night{night}" / "nightly.json").read_text())
        failing = [(c["subject"], c["kind"], c["status"]) for c in summary["checks"]
                   if c["status"] in ("budget miss", "failed", "regression", "missing tonight")]
        assert failing == [("pipeline voice-int8", "budget", "budget miss")]
        report = (chain_site.tmp / f"night{night}" / "index.html").read_text()
        assert "budget miss" in _report_row(report, "row-pipeline-", "voice-int8")[6]
        tile = re.search(r'<a class="tile verdict (\w+)" href="#row-pipeline-\d+"[^>]*>(.*?)</a>', report, re.S)
        assert tile and tile.group(1) == "over" and "budget miss" in tile.group(2) and "pipeline" in tile.group(2)
        # The chains pass their budget; their tile is the worst of their rows, here the WER checks that two
        # utterances cannot decide (undecided, flagged), never a miss.
        chain_tile = re.search(r'<a class="tile verdict (\w+)" href="#(?:row-chain|check)-\d+" title="([^"]*)"', report)
        assert chain_tile and chain_tile.group(1) in ("pass", "flag") and "budget miss" not in chain_tile.group(2)


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_chain_pages_render_in_chromium_with_both_history_charts(chain_site, tmp_path):
    """Catches: a chain page whose markup breaks, loads something from outside or leaves out a chart."""
    from tests.helpers import chromium

    for href in _chain_hrefs(chain_site):
        dom = chromium(chain_site.out / href, tmp_path, "--dump-dom")
        assert dom.returncode == 0 and "CONSOLE" not in dom.stderr and "Failed to load resource" not in dom.stderr
        assert dom.stdout.count("<svg") == 2 and "nightly P95" in dom.stdout


def _chain_night(db: Path, night: int, level_ms: float, spread=(0.9, 0.95, 1.0, 1.05, 1.1), plan: str = "chains",
                 name: str = "int8") -> str:
    """One stored night of one ASR chain ``name`` on 'bench-1' (through the store's API, as a transcription runner
    stores it): an utterance for each factor of ``spread``, its time ``level_ms`` times that factor."""
    from harness.devices.base import DeviceFacts

    run_id, when = f"chain-night-{night:02d}", f"2025-12-{night + 1:02d}T01:00:00+00:00"
    art = SimpleNamespace(sha256=f"{night:064x}", model="whisper", stage="asr-decoder", format="onnx",
                          backend="ort-cpu", quantization="int8", size_bytes=1, path=Path("dec.onnx"), inferred=[],
                          manifest_dict=lambda: {})
    chain = SimpleNamespace(name=name, corpus=Path("harvard"), limit=5,
                            parts={"mel": art, "encoder": art, "decoder": art})
    with Store(db, durable=False) as store:
        store.record_artifact(art)
        store.create_run(plan, Path("c.yaml"), "0" * 64, {"asr": 1000.0}, {}, run_id=run_id, plan_text="c",
                         started_at=when)
        store.record_device(run_id, DeviceFacts("bench-1", "android", True, {}), {})
        spec = SimpleNamespace(key="bench-1/int8/transcribe", device=SimpleNamespace(id="bench-1"), artifact=art,
                               task="transcribe", runner="host-transcribe", chain=chain,
                               settings=RunSettings(warmup_iterations=0, iterations=1, timeout_s=60))
        utts = [{"id": f"u{i}", "reference": "glue the sheet", "hypothesis": "glue the sheet", "tokens": 3,
                 "mel_ms": 1.0, "encoder_ms": 2.0, "decoder_ms_per_token": 1.0, "total_ms": level_ms * f,
                 "audio_s": 2.0, "rtf": 0.1} for i, f in enumerate(spread)]
        store.record_run(run_id, spec, 0, CellResult(spec.key, "ok", started_at=when, finished_at=when,
                                                     measurement=Measurement(samples_ms=[u["total_ms"] for u in utts],
                                                                             transcripts=utts)))
        store.set_run_status(run_id, "complete")
    return run_id


def test_a_step_in_a_chains_per_utterance_latency_is_a_change_point_at_its_night(tmp_path):
    """Eight nights of one chain, 30% slower per utterance from night 4: its series page has a change point of
    the P50 and of the P95 at night 4 (linked), and night 4's page lists it with a link to the chain's page.
    Catches: change points not run on chain series, put on the wrong night, or not linked from the night."""
    db = tmp_path / "h.db"
    runs = [_chain_night(db, night, 100.0 if night < 4 else 130.0) for night in range(8)]
    index = write_site(db, tmp_path / "site").read_text()
    (href,) = [h for h in _hrefs(index) if h.startswith("series/")]
    page = (tmp_path / "site" / href).read_text()
    for level in ("p50", "p95"):
        section = page.split(f'id="change-points-{level}"')[1].split("</section>")[0]
        assert _hrefs(section) == {f"../nights/{slug(runs[4])}.html"} and "x1.300" in section
    night = (tmp_path / "site" / "nights" / f"{slug(runs[4])}.html").read_text()
    assert f"../{href}" in _hrefs(night.split('id="change-points"')[1].split("</section>")[0])
    assert "asr budget 1000 ms at P95" in page and "100.00%" not in page and "0.00%" in page  # WER 0 each night


@pytest.mark.slow  # two nights measured on the host with real builds (about 25 s)
def test_a_pipeline_page_and_a_chains_night_fit_1024_px(chain_site, tmp_path):
    """The pipeline page's nights table (stage shares, five builds' sha256) and a night's chains table: at 1,024 px
    nothing runs off the page, and a table wider than its box scrolls in a box of its own.  Catches a chain table
    outside a scrolling box, or a cell that clips its text."""
    from tests.test_report import fit_at

    (pipeline,) = [h for h in _chain_hrefs(chain_site) if "pipeline" in h]
    night = chain_site.out / "nights" / f"{slug(_night_run_ids(chain_site)[-1])}.html"
    for page in (chain_site.out / pipeline, night):
        seen = fit_at(page, tmp_path, 1024)
        assert not seen["page_overflows"] and seen["wide_tables"] == [] and seen["clipped"] == [], (page, seen)


def test_a_chain_night_without_utterances_is_listed_and_left_out_of_the_charts(tmp_path):
    """A chain whose first night stored no utterance (no P50, no P95): the night is in the table with 'no P95',
    and the charts start from the first night that has a value.  Catches NaN coordinates in the SVG (a chart
    measured from a night without a value draws nothing)."""
    db = tmp_path / "h.db"
    runs = [_chain_night(db, night, 100.0, () if night == 0 else (0.9, 1.0, 1.1)) for night in range(3)]
    index = write_site(db, tmp_path / "site").read_text()
    (href,) = [h for h in _hrefs(index) if h.startswith("series/")]
    page = (tmp_path / "site" / href).read_text()
    assert "nan" not in page.lower()
    assert "no P95" in _row(page, f"night-{slug(runs[0])}") and "pass" in _row(page, f"night-{slug(runs[1])}")
    assert page.count('class="night"') == 4  # two nights with a value, in each of the two charts
    assert "ms on 2025-12-02" in page  # the change is measured from the first night with a value


# The outside tester's names: the index was 1,391 px wide at a 1,024 px window with them.
LONG_PLAN = "lab_sm8650_whisper_tiny_en_int8_xnnpack_qnn_htp_v75_release_candidate_2026q4"
LONG_CHAIN = "whisper_tiny_en_int8_ort_encoder_decoder_chain_with_logmel_fp32_v2"


@pytest.mark.slow  # Chromium
def test_every_site_page_fits_1024_px_with_long_plan_and_chain_names(tmp_path):
    """A plan and a chain named as a real lab names them (one word each, no space to break at): at 1,024 px no page
    runs off the side and no cell clips, a table wider than its box scrolling in a box of its own.  Fails with the
    old site: index, night and series pages 1,391 px wide ('last verdict (P95)' and 'change points' off-screen)."""
    from tests.test_report import fit_at

    db = tmp_path / "h.db"
    runs = [_chain_night(db, night, 100.0, plan=LONG_PLAN, name=LONG_CHAIN) for night in range(3)]
    _odd_run(db, "cell-night", LONG_PLAN, LONG_CHAIN, "2025-12-20T01:00:00+00:00", "ok")
    index = write_site(db, tmp_path / "site")
    series = sorted((tmp_path / "site" / "series").glob("*.html"))
    assert len(series) == 2  # the chain's and the cell's
    pages = [index, tmp_path / "site" / "nights" / f"{slug(runs[-1])}.html",
             tmp_path / "site" / "nights" / f"{slug('cell-night')}.html", *series]
    for page in pages:
        assert LONG_PLAN in page.read_text() or LONG_CHAIN in page.read_text()
        seen = fit_at(page, tmp_path, 1024)
        assert not seen["page_overflows"] and seen["wide_tables"] == [] and seen["clipped"] == [], (page.name, seen)


def test_a_one_night_chain_says_1_night_and_its_charts_say_why_a_night_has_no_band(tmp_path):
    """A chain's first night: its page said "1 nights", and each chart's tooltip "(no interval: too few runs, or
    too spread)" though a chain is one pass a night and its P95's interval needs 72 utterances (5 here).  Fails
    with the old words (a hard-coded plural; the cell's reason in the chain's charts)."""
    run = _chain_night(tmp_path / "h.db", 0, 100.0)
    index = write_site(tmp_path / "h.db", tmp_path / "site")
    (href,) = [h for h in _hrefs(index.read_text()) if h.startswith("series/")]
    page = (tmp_path / "site" / href).read_text()
    assert "1 night," in page and "1 nights" not in page
    night = (tmp_path / "site" / "nights" / f"{slug(run)}.html").read_text()
    assert "history (1 night)" in night
    p50, p95 = re.findall(r"<title>([^<]*no interval[^<]*)</title>", page)
    assert "(no interval: fewer than 72 utterances)" in p95 and "P95" in p95
    assert "too few runs" not in p50 + p95 and "per-utterance P50" in p50
