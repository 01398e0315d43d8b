"""Store and output faults, text encodings, corpora that are not what they claim, and output integrity:
each ends in one actionable line and exit 2 (or safe output), never a traceback.  The CLI's main() runs
in-process; the hostile table (tests/hostile/cases.py) drives the same faults through a subprocess."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UserError


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


# -- encodings: one text reader for every text file (harness/textfile.py) ------------------------------------

def _latin1_manifest(root: Path) -> Path:
    (root / "manifest.jsonl").write_bytes(
        b'{"id": "u1", "audio": "a.wav", "text": "hello", "duration_s": 1}\n'
        b'{"id": "u2", "audio": "b.wav", "text": "caf\xe9", "duration_s": 1}\n')
    return root / "manifest.jsonl"


def _kaldi(root: Path) -> Path:
    (root / "k").mkdir()
    (root / "k" / "wav.scp").write_text("u1 a.wav\nu2 b.wav\n")
    (root / "k" / "text").write_bytes(b"u1 hello\nu2 caf\xe9\n")
    return root / "k"


def _librispeech(root: Path) -> Path:
    chapter = root / "ls" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2.trans.txt").write_bytes(b"1-2-0001 HELLO\n1-2-0002 CAF\xc9\n")
    return root / "ls"


# Before the shared reader these raised UnicodeDecodeError tracebacks (read_text(encoding="utf-8")).
@pytest.mark.parametrize("argv, named", [
    (lambda r: ["corpus", "check", _latin1_manifest(r)], "manifest.jsonl:2:"),
    (lambda r: ["corpus", "import", "jsonl", _latin1_manifest(r), "-o", r / "out"], "manifest.jsonl:2:"),
    (lambda r: ["corpus", "import", "kaldi", _kaldi(r)], "text:2:"),
    (lambda r: ["corpus", "import", "librispeech", _librispeech(r)], "1-2.trans.txt:2:"),
], ids=["manifest", "jsonl import", "kaldi text", "librispeech trans.txt"])
def test_text_that_is_not_utf8_names_the_file_and_line(tmp_path, capsys, argv, named):
    code, _, err = run_main(capsys, *argv(tmp_path))
    assert code == 2
    assert named in err and ("0xe9" in err or "0xc9" in err) and "iconv" in err, err


# -- store and output faults: one line with what, where and the fix; nothing stored lost -------------------

def _lab(root: Path, extra: str = "") -> Path:
    from tests.hostile.cases import tiny_onnx

    root.mkdir(parents=True, exist_ok=True)
    (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
    tiny_onnx(root / "builds" / "tiny.onnx", "tiny")
    plan = root / "plan.yaml"
    plan.write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\nwarmup_iterations: 1\n"
                    "iterations: 3\nruns: 2\nthreads: 1\n" + extra)
    return plan


@pytest.fixture(scope="module")
def stored(tmp_path_factory) -> tuple[Path, Path, str]:
    """A lab and a database holding one complete run of its plan: (plan, database, run id)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("stored")
    plan = _lab(root / "lab")
    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", str(plan), "--db", str(root / "h.db"), "-q"]) == 0
    from harness.store import Store

    with Store(root / "h.db") as store:
        return plan, root / "h.db", store.runs(1)[0].run_id


def _copy_db(source: Path, target: Path) -> Path:
    import sqlite3

    con, copy = sqlite3.connect(source), sqlite3.connect(target)
    con.backup(copy)  # one self-contained file, whatever the source's WAL holds
    con.close()
    copy.close()
    return target


def _damage(db: Path) -> None:
    """Scribble over the first page of the samples table, as a failing disk or a copy cut short would."""
    import sqlite3

    con = sqlite3.connect(db)
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name='samples'").fetchone()
    (page_size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(db, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(bytes([13, 0, 0, 0, 5, 0, 9, 9, 9, 9, 9, 9]))


@pytest.mark.slow  # a real run into a damaged, full or limited store
def test_a_damaged_database_is_refused_before_anything_is_written(stored, tmp_path, capsys):
    plan, template, _ = stored
    db = _copy_db(template, tmp_path / "h.db")
    _damage(db)
    before = db.read_bytes()
    code, _, err = run_main(capsys, "run", plan, "--db", db, "-q")
    # Without the quick_check at open, the run's row was written and the first sample failed with a traceback.
    assert code == 2 and "damaged" in err and str(db) in err and ".recover" in err, err
    assert db.read_bytes() == before


def test_the_same_device_twice_in_a_plan_is_refused_at_load(stored, tmp_path, capsys):
    _, template, _ = stored
    plan = _lab(tmp_path / "lab")
    plan.write_text(plan.read_text().replace("name: lab\n", "name: lab\ndevices: [host, host]\n"))
    db = _copy_db(template, tmp_path / "h.db")
    before = db.read_bytes()
    code, _, err = run_main(capsys, "run", plan, "--db", db, "-q")
    # Was an IntegrityError traceback after the first run of the cell had been stored.
    assert code == 2 and "plan.yaml:2:" in err and "host listed more than once" in err, err
    assert db.read_bytes() == before


@pytest.mark.slow  # a real run into a damaged, full or limited store
def test_a_run_being_measured_cannot_be_resumed_at_the_same_time(stored, tmp_path, capsys):
    from harness.store import Store

    plan, template, run_id = stored
    db = _copy_db(template, tmp_path / "h.db")
    with Store(db) as other:  # as a second harness does while it measures the run
        other.claim_run(run_id)
        before = db.read_bytes()
        code, _, err = run_main(capsys, "run", plan, "--db", db, "--resume", run_id, "-q")
    # Unclaimed, both resumed and the second died on an IntegrityError (cell_runs twice).
    assert code == 2 and f"run {run_id} is being measured by another harness" in err, err
    assert db.read_bytes() == before
    assert not list(tmp_path.glob("*.lock")), "the lock file outlived the process that made it"
    code, _, err = run_main(capsys, "run", plan, "--db", db, "--resume", run_id, "-q")
    assert code == 0, err  # released with its store


def test_output_paths_of_the_wrong_kind_are_refused_before_writing(stored, tmp_path, capsys):
    _, db, run_id = stored
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "a-folder").mkdir()
    code, _, err = run_main(capsys, "report", run_id, "--db", db, "-o", tmp_path / "a-file")
    assert code == 2 and "a-file" in err and "folder" in err, err  # was FileExistsError from mkdir
    assert (tmp_path / "a-file").read_text() == "mine"
    for fmt in ("csv", "parquet", "et-v3"):
        code, _, err = run_main(capsys, "export", run_id, "--db", db, "--format", fmt, "-o", tmp_path / "a-folder")
        assert code == 2 and "a-folder" in err and "file name" in err, (fmt, err)  # was IsADirectoryError


def test_a_folder_fifo_or_device_given_as_db_is_named_as_such(stored, tmp_path, capsys):
    # Catches the old messages: a folder or FIFO read as "no results database here" by commands that only read,
    # and as "read-only or out of reach" / "disk I/O error ... free space" by run and migrate.
    import os

    plan, template, run_id = stored
    folder, fifo = tmp_path / "results", tmp_path / "pipe"
    folder.mkdir()
    (folder / "h.db").write_bytes(template.read_bytes())
    os.mkfifo(fifo)
    for argv in (["runs"], ["report", "latest", "-o", tmp_path / "rep"], ["export", "latest", "-o", tmp_path / "x.csv"],
                 ["migrate"], ["run", plan, "-q"]):
        for db, kind in ((folder, "is a folder"), (fifo, "is a named pipe"), (Path("/dev/null"), "is a device")):
            code, _, err = run_main(capsys, *argv, "--db", db)
            said = " ".join(err.split())
            assert code == 2 and f"{db}: this {kind}" in said and "not a SQLite database file" in said, (argv, said)
            assert said.count("error:") == 1, said
        assert f"Fix: give the database file inside it: --db {folder / 'h.db'}" in " ".join(
            run_main(capsys, *argv, "--db", folder)[2].split())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "results"], "something was written"
    assert sorted(p.name for p in folder.iterdir()) == ["h.db"]


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only file system (a tmpfs remounted read-only; root needs no permission bits)."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr.decode()[-300:]}"
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _remount_read_only(folder: Path) -> None:
    import subprocess

    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def test_read_only_store_and_outputs_are_one_line_each(stored, read_only_folder, capsys):
    plan, template, run_id = stored
    db = _copy_db(template, read_only_folder / "h.db")
    _remount_read_only(read_only_folder)
    code, _, err = run_main(capsys, "run", plan, "--db", db, "-q")
    assert code == 2 and str(db) in err and "read-only" in err, err  # was sqlite3.OperationalError
    code, _, err = run_main(capsys, "report", run_id, "--db", template, "-o", read_only_folder / "rep")
    assert code == 2 and "rep" in err and "Read-only file system" in err and "Fix:" in err, err  # was OSError
    code, _, err = run_main(capsys, "export", run_id, "--db", template, "-o", read_only_folder / "x.csv")
    assert code == 2 and "x.csv" in err and "Read-only file system" in err, err


@pytest.mark.slow  # a real run into a damaged, full or limited store
def test_a_file_size_limit_mid_run_names_the_resume_that_finishes_it(stored, tmp_path):
    """RLIMIT_FSIZE makes SQLite's writes fail (disk I/O error) after the run's row is stored."""
    import resource
    import subprocess
    import sys

    plan, template, _ = stored
    db = _copy_db(template, tmp_path / "h.db")
    limit = 32 * 1024  # the WAL index (h.db-shm) is 32 KB: the database opens, and its log fills within the run

    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "harness", "run", str(plan), "--db", str(db), "-q"],
                          capture_output=True, text=True, preexec_fn=limited, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert "ulimit -f" in proc.stderr and "--resume" in proc.stderr, proc.stderr
    run_id = proc.stderr.rsplit("--resume ", 1)[1].split()[0]
    again = subprocess.run([sys.executable, "-m", "harness", "run", str(plan), "--db", str(db), "--resume", run_id,
                            "-q"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]


# -- output integrity: outside text cannot steer the terminal or break junit.xml ------------------------------

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\x9b\u202e\x00\r"  # title, clear screen, colour, C1 CSI, RTL override


def test_junit_stays_well_formed_with_control_characters_in_names(tmp_path):
    from types import SimpleNamespace
    from xml.etree import ElementTree as ET

    from harness.nightly.outputs import write_junit

    check = SimpleNamespace(device_id=f"phone{ESCAPES}", subject=f"model{ESCAPES}\ud800", kind="latency",
                            status="regression", detail=f"slower{ESCAPES}", failing=True)
    out = write_junit([check], "20990101-000000-beef", tmp_path / "junit.xml")
    case = ET.parse(out).find(".//testcase")  # was ill-formed (raw \x1b), or a UnicodeEncodeError (\ud800)
    assert case.get("name").startswith("model\\x1b]0;pwned\\x07") and "\\ud800" in case.get("name"), case.attrib
    assert "\\x1b[31m" in case.find("failure").get("message")


def test_runs_prints_plan_names_without_terminal_escapes(stored, tmp_path, capsys):
    import sqlite3

    _, template, run_id = stored
    db = _copy_db(template, tmp_path / "h.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET plan_name=?", (f"lab{ESCAPES}",))
    con.commit()
    con.close()
    code, out, _ = run_main(capsys, "runs", "--db", db)
    assert code == 0 and f"lab\\x1b]0;pwned\\x07\\x1b[2J" in out, out  # was printed raw
    assert not any(c in out for c in "\x1b\x07\x9b\u202e\x00\r"), repr(out)


def test_error_lines_show_control_characters_escaped(tmp_path, capsys):
    code, _, err = run_main(capsys, "corpus", "check", tmp_path / f"corpus{ESCAPES}")
    assert code == 2 and "corpus\\x1b]0;pwned" in err, err  # the path came back raw
    assert not any(c in err for c in "\x1b\x07\x9b\u202e\x00\r"), repr(err)


def test_progress_lines_show_outside_text_escaped(capsys):
    from types import SimpleNamespace

    from harness.cli_progress import RichProgress

    progress = RichProgress()
    progress.start("20990101-000000-beef", total=1, already_done=0)
    spec = SimpleNamespace(device=SimpleNamespace(id=f"phone{ESCAPES}[red]"), chain=None,
                           artifact=SimpleNamespace(label=f"model{ESCAPES}"))
    progress.cell_started(spec)
    progress.cell_finished(spec, SimpleNamespace(status="failed", reason=f"runner said {ESCAPES}", measurement=None))
    progress.stop()
    err = capsys.readouterr().err.replace("\n", "")  # rich wraps long lines
    assert "phone\\x1b]0;pwned" in err and "runner said \\x1b" in err and "[red]" in err, err
    assert not any(c in err for c in "\x1b\x07\x9b\u202e\x00"), repr(err)


# -- audio and text that look valid but are not what they claim ----------------------------------------------

def _speechlike(seconds: float = 0.5) -> "np.ndarray":
    import numpy as np

    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)).astype("float32")


def _one_utterance_corpus(root: Path, samples, *, name: str = "a.wav", text: str = "hello there",
                          duration_s: float = 0.5, **write_kwargs) -> Path:
    import soundfile as sf

    folder = root / "corpus"
    folder.mkdir(parents=True, exist_ok=True)
    sf.write(folder / name, samples, 16000, **write_kwargs)
    (folder / "manifest.jsonl").write_text(json.dumps(
        {"id": "u1", "audio": name, "text": text, "duration_s": duration_s}) + "\n")
    return folder


def _nan_samples():
    samples = _speechlike()
    samples[100:200] = float("nan")
    return samples


def _noise():
    import numpy as np

    return (0.2 * np.random.default_rng(3).standard_normal(8000)).astype("float32")


def _clipped():
    import numpy as np

    return np.clip(_speechlike() * 20, -1, 1)


# Each was scored as if it were fine before these checks (only the rate and channels were read).
REFUSED = {
    "FLAC named .wav": (dict(samples=_speechlike(), format="FLAC"), "FLAC inside"),
    "NaN float samples": (dict(samples=_nan_samples(), subtype="FLOAT"), "NaN"),
    "duration_s that disagrees": (dict(samples=_speechlike(), duration_s=3.0), "lasts 0.500 s"),
    "reference with no words": (dict(samples=_speechlike(), text="... !"), "no words once normalised"),
    "no samples at all": (dict(samples=_speechlike()[:0], duration_s=0.0), "holds no samples"),
}
SUSPECT = {
    "silence": (dict(samples=_speechlike() * 0), "is silent"),
    "white noise": (dict(samples=_noise()), "sounds like noise"),
    "clipped": (dict(samples=_clipped()), "clipped"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_audio_or_text_that_is_not_what_it_claims_is_refused(tmp_path, capsys, name):
    from harness.accuracy.corpus import load_checked

    kwargs, words = REFUSED[name]
    folder = _one_utterance_corpus(tmp_path, **kwargs)
    code, _, err = run_main(capsys, "corpus", "check", folder)
    assert code == 2 and "manifest.jsonl:1: u1:" in err and words in err, err
    with pytest.raises(UserError) as refused:  # the run's corpus load refuses it too
        load_checked(folder)
    assert words in str(refused.value)


@pytest.mark.parametrize("name", SUSPECT)
def test_suspect_audio_is_reported_not_scored_silently(tmp_path, capsys, name):
    from harness.accuracy.corpus import load_checked

    kwargs, words = SUSPECT[name]
    folder = _one_utterance_corpus(tmp_path, **kwargs)
    code, _, err = run_main(capsys, "corpus", "check", folder)
    # Scoreable (a corpus may hold silence on purpose), so exit 0, but never without a word.
    assert code == 0 and "manifest.jsonl:1: warning: u1:" in err and words in err and "1 warning" in err, err
    load_checked(folder)
    assert words in capsys.readouterr().err


def test_the_shipped_corpora_pass_every_check(capsys):
    for name in ("harvard-hibari", "harvard-espeak"):
        code, _, err = run_main(capsys, "corpus", "check", Path(__file__).parent.parent / "corpora" / name)
        assert code == 0 and "0 problems" in err and "warning" not in err, err


def test_compare_text_shows_device_names_escaped(stored, tmp_path, capsys):
    import sqlite3

    _, template, run_id = stored
    db = _copy_db(template, tmp_path / "h.db")
    con = sqlite3.connect(db)
    con.execute("UPDATE cells SET device_id=?", (f"host{ESCAPES}",))
    con.commit()
    con.close()
    code, out, _ = run_main(capsys, "compare", run_id, run_id, "--db", db, "--format", "text")
    assert code == 0 and "host\\x1b]0;pwned" in out, out  # the table printed the name raw
    assert not any(c in out for c in "\x1b\x07\x9b\u202e\x00\r"), repr(out)


def test_devices_table_shows_inventory_text_escaped(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # rich would cut the cell to fit 80 columns
    inventory = tmp_path / "devices.yaml"
    inventory.write_text('devices:\n  - {id: host, platform: host, soc: "x\\e]0;pwned\\a\\e[2J[red]y"}\n')
    code, out, _ = run_main(capsys, "devices", "--inventory", inventory)
    assert code == 0 and "x\\x1b]0;pwned\\x07\\x1b[2J[red]y" in out, out  # raw, and '[red]' taken as markup
    assert not any(c in out for c in "\x1b\x07"), repr(out)


@pytest.mark.parametrize("damage", [
    # A changed byte in the schema's text: quick_check passes, then every query of runs said 'no such column'.
    "PRAGMA writable_schema=ON; UPDATE sqlite_master SET sql=replace(sql, 'started_at', 'startxd_at') "
    "WHERE name='runs'",
    # A changed byte in a stored name: 'Could not decode to UTF-8 column plan_name' was a traceback.
    "UPDATE runs SET plan_name=CAST(x'ff6c6162' AS TEXT)",
    # A changed byte in a JSON column: a JSONDecodeError traceback.
    """UPDATE runs SET settings_json='{"warmup_iterations" 1}'""",
], ids=["schema text", "a text cell", "a JSON cell"])
def test_damage_that_quick_check_cannot_see_is_one_line_too(stored, tmp_path, capsys, damage):
    import sqlite3

    _, template, _ = stored
    db = _copy_db(template, tmp_path / "h.db")
    con = sqlite3.connect(db)
    con.executescript(damage)
    con.close()
    before = db.read_bytes()
    code, _, err = run_main(capsys, "runs", "--db", db)
    assert code == 2 and "damaged" in err and str(db) in err, err
    assert db.read_bytes() == before


# -- outputs are replaced whole or not at all (harness/outfile.py) ------------------------------------------


@pytest.fixture
def full_folder(tmp_path):
    """A 256 KB tmpfs holding the previous outputs (prev/x.csv, prev/rep/index.html...), then filled up."""
    import subprocess

    folder = tmp_path / "full"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)], capture_output=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs here: {mounted.stderr.decode()[-300:]}"
    try:
        for name in ("x.csv", "c.md", "rep/index.html", "site/index.html", "n/index.html", "n/nightly.json"):
            (folder / name).parent.mkdir(exist_ok=True)
            (folder / name).write_text(f"PREVIOUS {name}\n")
        with pytest.raises(OSError), open(folder / "filler", "wb") as filler:
            while True:
                filler.write(b"\0" * 4096)
                filler.flush()
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_leaves_every_previous_output_whole_and_names_it(stored, full_folder, tmp_path, capsys):
    # Catches: writing the output in place (a truncated x.csv, an empty index.html) and the error naming the
    # database with 'nothing stored was lost' only (the tester's 'ul2/h.db: No space left on device').
    _, template, run_id = stored
    db = _copy_db(template, tmp_path / "h.db")
    for argv, name in ((["export", run_id, "-o", full_folder / "x.csv"], "x.csv"),
                       (["report", run_id, "-o", full_folder / "rep"], "rep/index.html"),
                       (["site", "-o", full_folder / "site"], "site/index.html"),
                       (["compare", run_id, run_id, "--format", "json", "-o", full_folder / "c.md"], "c.md"),
                       (["nightly", "--compare-only", run_id, "-o", full_folder / "n"], "n/index.html")):
        code, _, err = run_main(capsys, *argv, "--db", db)
        assert code == 2 and "No space left on device" in err and str(full_folder) in err, (argv, err)
        assert str(db) not in err and "--resume" not in err, (argv, err)
        assert (full_folder / name).read_text() == f"PREVIOUS {name}\n", argv
    assert (full_folder / "n" / "nightly.json").read_text() == "PREVIOUS n/nightly.json\n"
    assert not [p for p in full_folder.rglob("*") if p.name.endswith(".tmp")], "a temporary file was left"


def test_outputs_on_a_full_disk_take_back_the_folders_they_made_and_only_those(stored, full_folder, tmp_path,
                                                                               capsys):
    # Catches: 'site -o DIR' failing on a full disk after making DIR/nights and DIR/series (and DIR and its
    # parents), left behind empty, as report, nightly, export and compare left their new -o folders; a folder
    # that was there before (the previous site, an empty one of the user's) must stay as it was.
    _, template, run_id = stored
    db = _copy_db(template, tmp_path / "h.db")
    (full_folder / "mine").mkdir()
    for argv in (["site", "-o", full_folder / "new" / "deeper" / "site"], ["site", "-o", full_folder / "site"],
                 ["site", "-o", full_folder / "mine"], ["report", run_id, "-o", full_folder / "new" / "rep"],
                 ["report", run_id, "-o", full_folder / "mine"],
                 ["nightly", "--compare-only", run_id, "-o", full_folder / "new" / "n"],
                 ["export", run_id, "-o", full_folder / "new" / "x" / "x.csv"],
                 ["compare", run_id, run_id, "-o", full_folder / "new" / "c" / "c.md"]):
        code, _, err = run_main(capsys, *argv, "--db", db)
        assert code == 2 and "No space left on device" in err, (argv, err)
        assert sorted(p.name for p in full_folder.iterdir()) == sorted(
            ["x.csv", "c.md", "rep", "site", "n", "filler", "mine"]), f"{argv[0]} left a folder it made behind"
    assert [p.name for p in (full_folder / "site").iterdir()] == ["index.html"]
    assert (full_folder / "site" / "index.html").read_text() == "PREVIOUS site/index.html\n"
    assert list((full_folder / "mine").iterdir()) == []


@pytest.mark.parametrize("where", ["/proc/x", "dangling"])
def test_an_output_that_cannot_exist_is_one_line(stored, tmp_path, capsys, where):
    # Catches: FileNotFoundError escaping as a traceback (-o /proc/x, -o a dangling symlink into no folder).
    _, db, run_id = stored
    out = Path(where)
    if where == "dangling":
        out = tmp_path / "dang"
        out.symlink_to(tmp_path / "no-such-folder" / "x.csv")
    code, _, err = run_main(capsys, "export", run_id, "--db", db, "-o", out)
    assert code == 2 and str(out) in err and "Fix:" in err, err
    code, _, err = run_main(capsys, "report", run_id, "--db", db, "-o", Path("/proc/x"))
    assert code == 2 and "/proc/x" in err and "Fix:" in err, err


def test_commands_that_only_read_open_the_database_read_only(stored, read_only_folder, tmp_path, capsys):
    # Catches: runs/report/export/compare opening the store for writing ('cannot open the results database for
    # writing' on a read-only disk), and 'runs' filling a 0-byte --db with the schema.
    _, template, run_id = stored
    db = _copy_db(template, read_only_folder / "h.db")
    _remount_read_only(read_only_folder)
    for argv in (["runs"], ["report", run_id, "-o", tmp_path / "rep"], ["export", run_id, "-o", tmp_path / "x.csv"],
                 ["compare", run_id, run_id, "--format", "json", "-o", tmp_path / "c.json"]):
        code, _, err = run_main(capsys, *argv, "--db", db)
        assert code in (0, 1) and "read-only" not in err, (argv, err)  # compare: 1 only for a slowdown
    assert (tmp_path / "rep" / "index.html").is_file() and (tmp_path / "x.csv").is_file()
    empty = tmp_path / "empty.db"
    empty.touch()
    for argv in (["runs"], ["report", "latest"], ["export", "latest"], ["site", "-o", tmp_path / "site"]):
        code, _, err = run_main(capsys, *argv, "--db", empty)
        assert code == 2 and str(empty) in err, (argv, err)
    assert "empty file" in run_main(capsys, "runs", "--db", empty)[2]
    assert empty.stat().st_size == 0 and [p.name for p in tmp_path.iterdir() if p.name.startswith("empty")] == [
        "empty.db"]


@pytest.mark.parametrize("name", ["build file", "manifest field", "plan file"])
def test_names_that_are_not_utf8_are_refused_before_a_run_row_exists(tmp_path, capsys, name):
    # Catches: UnicodeEncodeError tracebacks in record_artifact / create_run, each attempt leaving a run
    # 'running' with 0 cells (the store is written only after the run's row was made).
    import os
    import sqlite3

    plan = _lab(tmp_path / "lab")
    builds = tmp_path / "lab" / "builds"
    if name == "build file":
        os.rename(builds / "tiny.onnx", os.fsencode(builds) + b"/caf\xe9.onnx")
        plan.write_text(plan.read_text().replace("[builds/tiny.onnx]", '["builds/*.onnx"]'))
    elif name == "manifest field":
        manifest = builds / "tiny.onnx.manifest.json"
        manifest.write_text(manifest.read_text().replace('"tiny"', '"b\\ud800x"'))
    else:
        plan = Path(os.fsdecode(os.fsencode(tmp_path / "lab") + b"/pl\xff.yaml"))
        (tmp_path / "lab" / "plan.yaml").rename(plan)
    db = tmp_path / "h.db"
    for _ in range(2):
        code, _, err = run_main(capsys, "run", plan, "--db", db, "-q")
        assert code == 2 and "not UTF-8" in err and "rename" in err, err
    assert sqlite3.connect(db).execute("SELECT count(*) FROM runs").fetchone() == (0,)


@pytest.mark.slow  # every output command against devices and the database
def test_an_output_never_replaces_a_device_or_the_results_database(stored, tmp_path, capsys):
    """The atomic writer renamed its temporary over whatever -o named: `export -o /dev/null` (as root) replaced the
    system's /dev/null with a CSV, and `export -o h.db` (or a link to it) replaced every stored run.  Catches a
    writer that renames over a device, and one that does not look at what it replaces."""
    import os
    import stat

    _, db, run_id = stored
    copy = _copy_db(db, tmp_path / "h.db")
    before = copy.read_bytes()
    (tmp_path / "alias.csv").symlink_to("h.db")
    for target in (copy, tmp_path / "alias.csv"):
        code, _, err = run_main(capsys, "export", run_id, "--db", copy, "--format", "csv", "-o", target)
        assert code == 2 and "SQLite database" in err and "Traceback" not in err, err
        code, _, err = run_main(capsys, "compare", run_id, run_id, "--db", copy, "-o", target)
        assert code == 2 and "SQLite database" in err, err
    assert copy.read_bytes() == before and (tmp_path / "alias.csv").is_symlink()
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own (the tests run as root)
    for argv in (("export", run_id, "--db", db, "--format", "csv", "-o", null),
                 ("compare", run_id, run_id, "--db", db, "--format", "json", "-o", null)):
        code, _, err = run_main(capsys, *argv)
        assert code == 0, err
        assert stat.S_ISCHR(os.stat(null).st_mode), f"{argv[0]} -o replaced a device with a file"


def test_an_output_path_that_is_a_link_to_a_file_is_refused_and_the_file_is_untouched(stored, tmp_path, capsys):
    """`export -o link.csv` (a link to a user's file elsewhere) overwrote that file, and `corpus import --force`
    wrote a manifest through a link the same way (an outside probe).  Fails if outputs follow links again."""
    _, db, run_id = stored
    precious = tmp_path / "elsewhere" / "important.txt"
    precious.parent.mkdir()
    precious.write_text("IMPORTANT\n")
    link = tmp_path / "link.csv"
    link.symlink_to(precious)
    code, _, err = run_main(capsys, "export", run_id, "--db", db, "-o", link)
    assert code == 2 and "symbolic link" in err and "Fix:" in err, err
    assert precious.read_text() == "IMPORTANT\n" and link.is_symlink()


@pytest.mark.slow  # the real command line in a child process
def test_a_fifo_nothing_reads_is_refused_at_once_not_waited_on(stored, tmp_path):
    """`export -o myfifo` with no reader blocked forever (an outside probe)."""
    _, db, run_id = stored
    fifo = tmp_path / "myfifo"
    os.mkfifo(fifo)
    from tests.helpers import run_cli

    proc = run_cli("export", run_id, "--db", str(db), "-o", str(fifo), "--format", "csv")  # run_cli's own timeout ends a hang
    assert proc.returncode == 2 and "nothing reads" in proc.stderr, proc.stderr


@pytest.mark.slow  # the real command line in child processes
def test_a_closed_or_full_stdout_is_named_and_the_exit_code_stays_true(stored, tmp_path):
    """Started with stdout closed (`>&-`, as some job launchers do), a command ended in an AttributeError traceback
    with exit 1 (a nightly's false 'regression'), and the database could have taken descriptor 1; a full disk
    behind stdout (`> /dev/full`) was blamed on the database (an outside probe)."""
    import subprocess
    import sys

    _, db, _ = stored
    runs = [sys.executable, "-m", "harness", "runs", "--db", str(db)]
    closed = subprocess.run(runs, stdout=None, stderr=subprocess.PIPE, text=True, close_fds=True,
                            preexec_fn=lambda: os.close(1), timeout=120)
    assert closed.returncode == 0 and "Traceback" not in closed.stderr, closed.stderr
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*runs, "--json"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 2 and "standard output" in proc.stderr and str(db) not in proc.stderr, proc.stderr
