"""Inputs that cannot hurt: the build cache deletes only what it wrote; one YAML loader with limits; one
validation for numbers; read-only commands create nothing.  (The end-to-end rows are in tests/hostile/.)"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.store.builds import MARKER, OBJECTS, BuildCache


# -- the build cache deletes only what it wrote ---------------------------------------------------------------

def _build(folder: Path, name: str, data: bytes = b"model bytes") -> SimpleNamespace:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    return SimpleNamespace(path=path, sha256=sha, companions={}, manifest_dict=lambda: {"model": name, "sha256": sha})


def test_prune_leaves_a_users_folders_and_files_beside_the_database(tmp_path):
    # Catches: prune removing every name that is not a kept sha256 (the user's exported models went).
    cache = BuildCache(tmp_path / "whisper.db")
    mine = cache.root / "my-exported-models"
    (mine / "model.onnx").parent.mkdir(parents=True)
    (mine / "model.onnx").write_bytes(b"precious")
    (cache.root / "notes.txt").write_text("precious too")
    (cache.root / ("ab" * 32 + ".txt")).write_text("a sha256 with a suffix the cache never writes")
    kept = cache.keep(_build(tmp_path / "b", "kept.pte", b"kept"))
    old = cache.keep(_build(tmp_path / "b", "old.pte", b"old"))
    stale = cache.root / ("cd" * 32 + ".partial")
    stale.mkdir()
    (stale / MARKER).write_text("a copy a crash cut short, as keep() starts one\n")
    assert cache.prune({kept.parent.name}) == 2
    assert not old.parent.exists() and not stale.exists(), "an unused build (or a stale .partial) stayed"
    assert kept.exists()
    assert (mine / "model.onnx").read_bytes() == b"precious"
    assert (cache.root / "notes.txt").exists() and (cache.root / ("ab" * 32 + ".txt")).exists()


def test_prune_leaves_a_users_folder_named_like_a_sha256(tmp_path):
    # Catches: prune deleting every 64-hex folder (the tester's 000...0 with notes.txt went); and a copy kept
    # before the marker existed (its model's sha256 is its name) must still be pruned.
    cache = BuildCache(tmp_path / "h.db")
    users = cache.root / ("0" * 64)
    users.mkdir(parents=True)
    (users / "notes.txt").write_text("mine")
    (cache.root / ("1" * 64 + ".partial")).mkdir()
    legacy = cache.keep(_build(tmp_path / "b", "legacy.pte", b"legacy"))
    (legacy.parent / MARKER).unlink()
    assert cache.prune(set()) == 1
    assert (users / "notes.txt").read_text() == "mine" and (cache.root / ("1" * 64 + ".partial")).is_dir()
    assert not legacy.parent.exists()


def test_the_same_bytes_under_two_names_are_kept_once(tmp_path):
    # Catches: the second name's copy renamed onto the first's folder ("Directory not empty", a .partial left).
    cache = BuildCache(tmp_path / "h.db")
    first = cache.keep(_build(tmp_path / "b", "a.pte"))
    second = cache.keep(_build(tmp_path / "b", "renamed.pte"))
    assert second == first and first.read_bytes() == b"model bytes"
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([first.parent.name, OBJECTS]), \
        "a .partial folder was left"


# -- one YAML loader with limits ---------------------------------------------------------------------------

from harness import yamlconf  # noqa: E402
from harness.errors import UserError  # noqa: E402


def _load(tmp_path: Path, text: str, name: str = "plan.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return yamlconf.load_data(path)


def _refused(tmp_path: Path, text: str, *words: str, line: int | None = None, name: str = "plan.yaml") -> str:
    with pytest.raises(UserError) as caught:
        _load(tmp_path, text, name)
    err = caught.value
    assert err.path == tmp_path / name and err.fix, err
    if line is not None:
        assert err.line == line, err
    for word in words:
        assert word in str(err), err
    return str(err)


def laughs(levels: int) -> str:
    """'A billion laughs': each level a list of nine aliases to the level before (9**levels values)."""
    rows = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(rows) + "\n"


def test_alias_expansion_is_bounded_by_values_and_names_the_key_that_explodes(tmp_path, monkeypatch):
    # Catches: aliases expanded without a count (a 392-byte plan took 68 s and 193 MB, one level more never ends).
    monkeypatch.setattr(yamlconf, "MAX_VALUES", 1000)
    assert len(_load(tmp_path, laughs(3))[0]["l2"]) == 9  # 9 + 81 + 729 values: under the limit, read whole
    _refused(tmp_path, laughs(4), "1000 values", "aliases", line=4)  # l3 holds 6561 values


def test_a_self_referencing_anchor_is_refused_with_its_line(tmp_path):
    # Catches: the walk following a cycle into RecursionError.
    _refused(tmp_path, "name: lab\nartifacts: &x [a, *x]\n", "refers to a value that contains it", line=2)
    _refused(tmp_path, "name: lab\nllm: &m {prompt: hi, more: *m}\n", "contains it", line=2)


def test_a_list_or_mapping_used_as_a_key_is_refused(tmp_path):
    # Catches: a list key reaching dict() as a TypeError (unhashable type: 'list').
    _refused(tmp_path, "name: lab\n[1, 2]: x\n", "key is a list or a mapping", line=2)
    _refused(tmp_path, "name: lab\n? {a: 1}\n: x\n", "key is a list or a mapping", line=2)


def test_a_key_given_twice_is_refused_naming_both_lines(tmp_path):
    # Catches: last-wins duplicate keys (a typo'd second 'iterations:' started a multi-hour run).
    _refused(tmp_path, "name: lab\niterations: 3\nruns: 2\niterations: 3000\n", "iterations", "line 2", line=4)
    _refused(tmp_path, "llm:\n  prompt: a\n  prompt: b\n", "llm.prompt", line=3)
    _refused(tmp_path, '{"model": "a",\n "model": "b"}', "'model'", "twice", line=2, name="x.manifest.json")


def test_json_without_nan_and_yaml_without_python_tags(tmp_path):
    # Catches: json.loads taking NaN/Infinity (not JSON), and a !!python tag reaching a traceback.
    _refused(tmp_path, '{"size_bytes": 5,\n "inputs": [{"value": Infinity}]}', "Infinity", line=2,
             name="x.manifest.json")
    _refused(tmp_path, "name: !!python/object/apply:os.system [ls]\n", "cannot read a value tagged", line=1)
    _refused(tmp_path, "name: !!python/name:os.system x\n", "cannot read this value", line=1)


def test_nesting_and_size_are_bounded(tmp_path, monkeypatch):
    # Catches: deep nesting ending in RecursionError, and a huge file read whole into memory.
    _refused(tmp_path, "a: " + "[" * 3000 + "]" * 3000 + "\n", "nested")
    monkeypatch.setattr(yamlconf, "MAX_FILE_BYTES", 1000)
    _refused(tmp_path, "name: lab\n" + "# padding\n" * 200, "larger than")


def test_merge_keys_still_work_and_a_written_key_wins(tmp_path):
    data, _ = _load(tmp_path, "base: &b {iterations: 3, runs: 2}\nother:\n  <<: *b\n  runs: 5\n")
    assert data["other"] == {"iterations": 3, "runs": 5}


# -- one validation for numbers -----------------------------------------------------------------------------

import json  # noqa: E402

from pydantic import ValidationError  # noqa: E402

from harness.artifacts.manifest import Manifest  # noqa: E402
from harness.accuracy.corpus import Utterance  # noqa: E402
from harness.inventory.models import load_inventory  # noqa: E402
from harness.plan.models import load_plan  # noqa: E402

PLAN = "name: lab\nartifacts: [builds/tiny.onnx]\ndescription: numbers\n"


@pytest.mark.parametrize("line, key", [
    ("iterations: true", "iterations"),  # YAML's true is not 1
    ("runs: '2'", "runs"),  # nor is a quoted "2"
    ("threads: 0", "threads"),
    ("threads: 1.5", "threads"),
    ("seed: -1", "seed"),
    ("seed: 99999999999", "seed"),
    ("timeout_s: .nan", "timeout_s"),
    ("timeout_s: -5", "timeout_s"),
    ("timeout_s: .inf", "timeout_s"),
    ("thermal_period_s: 0", "thermal_period_s"),
    ("budgets_p95_ms: {vad: .nan}", "budgets_p95_ms.vad"),  # a NaN budget passed every cell
    ("budgets_p95_ms: {asr: -10}", "budgets_p95_ms.asr"),
    ("budgets_p95_ms: {pipeline_memory_mb: .inf}", "budgets_p95_ms.pipeline_memory_mb"),
    ("cooldown: {max_temp_c: 1000}", "cooldown.max_temp_c"),
    ("cooldown: {timeout_s: .nan}", "cooldown.timeout_s"),
    ("llm: {seq_len: false}", "llm.seq_len"),
    # Absurdly small (each was taken): a timeout that ends every command, a period that samples back to back,
    # a budget of denormal size, a cooldown poll with no pause.
    ("timeout_s: 0.00001", "timeout_s"),
    ("timeout_s: 1.0e-300", "timeout_s"),
    ("thermal_period_s: 0.000001", "thermal_period_s"),
    ("budgets_p95_ms: {vad: 1.0e-320}", "budgets_p95_ms.vad"),
    ("budgets_p95_ms: {pipeline_memory_mb: 1.0e-9}", "budgets_p95_ms.pipeline_memory_mb"),
    ("cooldown: {max_temp_c: 40, poll_s: 0.001}", "cooldown.poll_s"),
])
def test_plan_numbers_must_be_finite_in_range_and_not_booleans_or_strings(tmp_path, line, key):
    # Catches: lax int/float fields (true -> 1, "2" -> 2, infinity and NaN budgets taken, negative seeds and
    # budgets, a 1000 °C cooldown); the threads/timeout/period/seq_len rows guard limits that held before.
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN + line + "\n")
    with pytest.raises(UserError) as caught:
        load_plan(path)
    assert caught.value.line == 4 and key in str(caught.value) and caught.value.fix, caught.value


def test_a_tiny_timeout_written_as_yaml_text_is_not_answered_with_a_number_refused_again(tmp_path):
    """Catches 'timeout_s: 1e-300' answered "write 1.0e-300", which was then taken (and every cell timed out)."""
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN + "timeout_s: 1e-300\n")
    with pytest.raises(UserError) as caught:
        load_plan(path)
    assert "1.0e-300" not in caught.value.fix and "0.01" in caught.value.fix, caught.value.fix


def test_a_phone_timeout_is_written_without_an_exponent():
    """Catches f'{timeout_s:g}' sending 'timeout ... 1e-05' to the phone (toybox: "Unknown suffix 'e-05'") and
    '1.23457e+06' for long timeouts."""
    from harness.devices.android import phone_command

    for timeout_s in (0.01, 0.00001, 1234567.0):
        words = phone_command(["true"], timeout_s, 5).split()
        given = words[words.index("--foreground") + 3]  # timeout --foreground -k KILL DURATION
        assert "e" not in given and abs(float(given) - timeout_s) < 0.001 and float(given) > 0, given  # 0: none


def test_plan_numbers_that_are_fine_still_load(tmp_path):
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN + "timeout_s: 30\nseed: 7\nthreads: 2\nwarmup_iterations: 0\n"
                    "budgets_p95_ms: {vad: 2.5, asr: null}\ncooldown: {max_temp_c: 40}\n")
    plan = load_plan(path)[0]
    assert (plan.timeout_s, plan.seed, plan.threads, plan.budgets_p95_ms.vad) == (30.0, 7, 2, 2.5)
    assert plan.budgets_p95_ms.asr is None and plan.warmup_iterations == 0


@pytest.mark.parametrize("port", ["70000", "0", "true", "'5037'"])
def test_inventory_ports_are_ports(tmp_path, port):
    # Catches: adb_port as a lax int (70000, true and "5037" were taken and failed at connect time).
    path = tmp_path / "devices.yaml"
    path.write_text(f"devices:\n  - id: phone\n    platform: android\n    serial: abc\n    adb_port: {port}\n")
    with pytest.raises(UserError) as caught:
        load_inventory(path)
    assert caught.value.line == 5 and "adb_port" in str(caught.value)


@pytest.mark.parametrize("fields, key", [
    ({"size_bytes": -1}, "size_bytes"),
    ({"size_bytes": True}, "size_bytes"),
    ({"inputs": [{"shape": [1, -3]}]}, "inputs"),
    ({"inputs": [{"shape": [100000, 100000, 100000]}]}, "inputs"),  # 10**15 elements: no phone allocates it
    ({"inputs": [{"shape": [1], "value": 1e999}]}, "inputs"),  # JSON's 1e999 is infinity
])
def test_manifest_numbers_and_shapes(tmp_path, fields, key):
    # Catches: negative or boolean sizes, negative dimensions, impossible shapes and infinite fill values.
    path = tmp_path / "m.onnx.manifest.json"
    path.write_text(json.dumps(fields).replace("Infinity", "1e999"))
    data, lines = yamlconf.load_data(path)
    with pytest.raises(UserError) as caught:
        yamlconf.validate(Manifest, data, path, lines)
    assert key in str(caught.value) and caught.value.fix


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0, True, "3"])
def test_a_corpus_duration_is_a_finite_length(duration):
    # Catches: duration_s as a lax float with only ge=0 (Infinity, true and "3" were taken).
    with pytest.raises(ValidationError):
        Utterance.model_validate({"id": "u1", "audio": "a.wav", "text": "hi", "duration_s": duration})


@pytest.mark.parametrize("argv", [
    ["nightly", "p.yaml", "--threshold", "nan"],
    ["nightly", "p.yaml", "--threshold", "-0.1"],
    ["nightly", "p.yaml", "--threshold", "5"],
    ["calibrate", "p.yaml", "--threshold", "inf"],
    ["site", "-o", "out", "--threshold", "nan"],
    ["runs", "--limit", "0"],
    ["runs", "--limit", "-3"],
    ["lab", "join", "--head", "--port", "70000"],
    ["sim", "android", "--port", "-1"],
    ["zoo", "build", "-j", "0"],
])
def test_numeric_options_are_checked_by_the_parser(argv, capsys):
    # Catches: type=float/int options (a NaN threshold called nothing, a negative limit listed everything).
    from harness.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and f"argument {argv[-2]}" in err and "expected one argument" not in err, err


def test_nightly_json_is_strict_json_when_a_figure_is_not_a_number(tmp_path):
    # Catches: json.dumps writing a NaN figure as bare NaN, which JSON parsers reject.
    from harness.nightly.outputs import write_summary

    check = SimpleNamespace(device_id="host", status="regression", failing=True, p95_ms=float("nan"),
                            change=float("inf"))
    out = write_summary([check], "run", None, tmp_path / "nightly.json")

    def refuse(word):
        raise AssertionError(f"{word} is not JSON")

    summary = json.loads(out.read_text(), parse_constant=refuse)
    assert summary["checks"][0]["p95_ms"] is None and summary["checks"][0]["change"] is None


def _pte_bytes(promised: int, have: int) -> bytes:
    """An ExecuTorch file's head: root offset, 'ET12', then the extended header promising ``promised`` bytes."""
    head = ((60).to_bytes(4, "little") + b"ET12" + b"eh00" + (32).to_bytes(4, "little")
            + promised.to_bytes(8, "little") + (0).to_bytes(8, "little") + (0).to_bytes(8, "little"))
    return head + b"\0" * (have - len(head))


def test_a_truncated_pte_is_refused_at_load_naming_the_file(tmp_path):
    # Catches: a .pte cut short (an interrupted copy) accepted at plan load and found only on the phone.
    from harness.artifacts import load_artifact

    whole = tmp_path / "whole.pte"
    whole.write_bytes(_pte_bytes(promised=400, have=400))
    assert load_artifact(whole).format == "pte"
    cut = tmp_path / "cut.pte"
    cut.write_bytes(_pte_bytes(promised=400, have=300))
    with pytest.raises(UserError) as caught:
        load_artifact(cut)
    assert caught.value.path == cut and "truncated" in str(caught.value) and "400" in str(caught.value)


# -- minor: read-only commands, the schema version, an inventory that is a list ------------------------------

from tests.helpers import run_cli  # noqa: E402


@pytest.mark.parametrize("argv", [
    ["runs", "--db", "typo.db"],
    ["runs", "--db", "a/b/c/h.db"],
    ["report", "latest", "--db", "typo.db", "-o", "out"],
    ["report", "20990101-000000-dead", "--db", "typo.db", "-o", "out"],
    ["export", "latest", "--db", "typo.db"],
])
def test_a_read_only_command_never_creates_a_database(tmp_path, argv):
    # Catches: Store() creating the file (and its folders) for 'runs' and 'report' with a mistyped --db.
    proc = run_cli(*argv, cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "no database at" in proc.stderr and "(given by --db)" in proc.stderr
    assert argv[argv.index("--db") + 1] in proc.stderr
    assert "Fix:" in proc.stderr
    assert list(tmp_path.iterdir()) == [], "the command created files"


def test_the_readme_states_the_schema_version_the_code_writes():
    # Catches: the README (now docs/) saying schema version 3 while the store writes (and its refusal names) version 4.
    import re

    from harness.store.db import SCHEMA_VERSION

    repo = Path(__file__).resolve().parent.parent
    docs = "\n".join(p.read_text() for p in [repo / "README.md", *sorted((repo / "docs").rglob("*.md"))])
    assert re.findall(r"schema version (\d+)", docs) == [str(SCHEMA_VERSION)]


def test_an_inventory_that_is_a_list_is_told_so_without_internal_names(tmp_path):
    # Catches: "Input should be a valid dictionary or instance of _File" (a class of the harness, not the user's).
    path = tmp_path / "devices.yaml"
    path.write_text("- id: host\n  platform: host\n")
    with pytest.raises(UserError) as caught:
        load_inventory(path)
    text = str(caught.value)
    assert "_File" not in text and "not a list" in text and "devices" in text and caught.value.line == 1


# -- chain roles against the builds' stages -------------------------------------------------------------------

def test_a_chain_role_must_name_a_build_of_its_stage(tmp_path):
    # Catches: any build accepted in any role (a VAD build as the encoder ran, and failed, hours later).
    from harness.plan.expand import _chain_part
    from tests.hostile.cases import tiny_onnx

    tiny_onnx(tmp_path / "builds" / "vad.onnx", "silero")  # its manifest says stage: vad
    plan = tmp_path / "plan.yaml"
    lines = {("accuracy", "chains", 0, "encoder"): 7}
    with pytest.raises(UserError) as caught:
        _chain_part(plan, lines, 0, "encoder", "builds/vad.onnx")
    err = caught.value
    assert err.line == 7 and "accuracy.chains[0].encoder" in str(err) and "asr-encoder" in str(err) and err.fix
    assert _chain_part(plan, lines, 0, "vad", "builds/vad.onnx").stage == "vad"  # the right role is taken


def test_the_zoo_clears_only_a_folder_build_it_made(tmp_path):
    # Catches: _build_one removing any folder that stands at a build's name (a user's folder went without a word).
    from harness.zoo import _remove_own_build

    users = tmp_path / "silero-vad.onnx"
    (users / "keep.txt").parent.mkdir()
    (users / "keep.txt").write_text("mine")
    with pytest.raises(UserError) as caught:
        _remove_own_build(users)
    assert caught.value.path == users and (users / "keep.txt").exists()
    ours = tmp_path / "old.mlpackage"
    ours.mkdir()
    (tmp_path / "old.mlpackage.manifest.json").write_text(json.dumps({"recipe": {"name": "old"}}))
    _remove_own_build(ours)
    assert not ours.exists()


def test_an_iphone_tunneld_address_needs_a_real_port(tmp_path):
    # Catches: tunneld's pattern alone (host:digits), which took port 99999 and failed at connect time.
    path = tmp_path / "devices.yaml"
    entry = "devices:\n  - id: ip\n    platform: ios\n    udid: u\n    app: a.ipa\n    bundle_id: b.c\n"
    path.write_text(entry + "    tunneld: 127.0.0.1:99999\n")
    with pytest.raises(UserError) as caught:
        load_inventory(path)
    assert caught.value.line == 7 and "tunneld" in str(caught.value)
    path.write_text(entry + "    tunneld: 127.0.0.1:49151\n")
    assert load_inventory(path).devices[0].tunneld == "127.0.0.1:49151"


# -- text inputs: one bounded reader (harness/textfile.py) -----------------------------------------------------

from harness import textfile  # noqa: E402


def test_text_inputs_refuse_devices_fifos_and_files_over_the_cap(tmp_path, monkeypatch):
    # Catches: read_utf8 reading /dev/zero (never ends, 9.6 GB RSS) or blocking on a FIFO's open, and a file
    # over the cap read whole (a sparse 2 GB file took 4.2 GB).
    fifo = tmp_path / "ref.fifo"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises(UserError, match="regular file|a folder") as info:
            textfile.read_utf8(path)
        assert info.value.fix and str(path) in str(info.value)
    monkeypatch.setattr(textfile, "MAX_TEXT_BYTES", 1000)
    big = tmp_path / "hyp.txt"
    big.write_text("word\n" * 201)
    with pytest.raises(UserError, match="larger than") as info:
        textfile.read_utf8(big)
    assert info.value.fix
    big.write_text("word\n" * 200)
    assert textfile.read_utf8(big) == "word\n" * 200


# -- JSON: one strict reader (harness/jsontext.py) and bounded counts -------------------------------------------

def test_a_corpus_manifest_line_with_a_key_twice_is_refused_at_its_line(tmp_path):
    # Catches: manifest.jsonl read with plain json.loads (the second "text" won silently; build manifests refused).
    from harness.accuracy.corpus import read_manifest

    (tmp_path / "manifest.jsonl").write_text(
        '{"id": "u1", "audio": "a.wav", "text": "hi", "duration_s": 1}\n'
        '{"id": "u2", "audio": "b.wav", "text": "yes", "text": "no", "duration_s": 1}\n')
    with pytest.raises(UserError, match="appears twice") as info:
        read_manifest(tmp_path)
    assert info.value.line == 2 and info.value.fix


def test_counts_are_bounded_in_the_parser():
    # Catches: 'runs --limit 99999999999999999999999' reaching SQLite (OverflowError traceback).
    import argparse

    from harness.validation import positive_int

    assert positive_int("20") == 20
    with pytest.raises(argparse.ArgumentTypeError, match="Fix"):
        positive_int("99999999999999999999999")


def test_a_control_character_is_given_its_line_and_an_exponent_without_a_dot_a_fix(tmp_path):
    # Catches: PyYAML's "position 69" passed on instead of a line; and '1e300' (a string to YAML 1.1) reported
    # as "should be a valid number" with no word on how to write it.
    message = _refused(tmp_path, 'name: lab\nartifacts: []\ndescription: "x\x01y"\n', "U+0001", line=3)
    assert "position" not in message

    from typing import Annotated

    from pydantic import Strict

    class Limits(yamlconf.StrictModel):  # as the plan's numbers: strict, a string is not a number
        timeout_s: Annotated[float, Strict()]

    (tmp_path / "limits.yaml").write_text("timeout_s: 1e300\n")
    with pytest.raises(UserError) as caught:
        yamlconf.load_model(Limits, tmp_path / "limits.yaml")
    assert "1.0e+300" in caught.value.fix and "YAML 1.1" in caught.value.fix and caught.value.line == 1
    (tmp_path / "limits.yaml").write_text("timeout_s: 1.0e+300\n")
    assert yamlconf.load_model(Limits, tmp_path / "limits.yaml").timeout_s == 1e300


def test_an_exponent_without_a_dot_is_never_answered_with_a_number_the_check_refuses(tmp_path):
    # Catches: 'timeout_s: 1e300' answered "write 1.0e+300", which is out of range too (at most a week), and
    # '1.25e3' answered "write 1.2e+03", another number (the suggestion was rounded to 2 digits).
    import re

    from harness.validation import WEEK_S, Seconds

    class Limits(yamlconf.StrictModel):  # as the plan's timeout_s
        timeout_s: Seconds

    plan = tmp_path / "limits.yaml"
    plan.write_text("timeout_s: 1e300\n")
    with pytest.raises(UserError) as caught:
        yamlconf.load_model(Limits, plan)
    assert "YAML 1.1" in caught.value.fix and f"less than or equal to {WEEK_S}" in caught.value.fix, caught.value
    assert "e+300" not in caught.value.fix, caught.value
    plan.write_text("timeout_s: 1.25e3\n")
    with pytest.raises(UserError) as caught:
        yamlconf.load_model(Limits, plan)
    suggested = re.search(r"write (\S+) or a plain number", caught.value.fix).group(1)
    plan.write_text(f"timeout_s: {suggested}\n")
    assert yamlconf.load_model(Limits, plan).timeout_s == 1250


def test_a_folder_given_as_the_plan_is_answered_with_the_yaml_files_inside(tmp_path):
    # Catches the generic "a folder; the harness reads text from regular files only ... (copy a stream to a file
    # first)" for 'harness run lab/': the fix now names the plan files to choose from.
    from harness.plan.models import load_plan

    lab, empty = tmp_path / "lab", tmp_path / "empty"
    lab.mkdir()
    empty.mkdir()
    for name in ("plan.yaml", "devices.yaml", "notes.txt"):
        (lab / name).write_text("name: x\n")
    with pytest.raises(UserError) as caught:
        load_plan(lab)
    assert caught.value.path == lab and "is a folder, not a plan file" in caught.value.message, caught.value
    assert f"{lab / 'devices.yaml'}, {lab / 'plan.yaml'}." in caught.value.fix, caught.value
    assert "notes.txt" not in caught.value.fix
    with pytest.raises(UserError) as caught:
        load_plan(empty)
    assert "holds none" in caught.value.fix and "plans/host-demo.yaml" in caught.value.fix, caught.value


def test_a_manifest_named_after_no_build_is_warned_of(tmp_path, capsys):
    # Catches: c.manifest.json beside c.onnx silently ignored (it must be c.onnx.manifest.json).
    from harness.plan.expand import _warn_of_stray_manifests

    for name in ("c.onnx", "c.manifest.json", "d.onnx", "d.onnx.manifest.json"):
        (tmp_path / name).write_text("{}")
    _warn_of_stray_manifests([tmp_path / "c.onnx", tmp_path / "d.onnx"])
    err = capsys.readouterr().err
    assert "c.manifest.json" in err and "rename it to c.onnx.manifest.json" in err, err
    assert "d.onnx.manifest.json" not in err, "a manifest with its build beside it was warned of"


def test_pages_show_control_characters_from_outside_as_escapes():
    # Catches: NUL, ESC and BEL from a build name written raw into index.html (escaped for HTML, but not clean).
    from markupsafe import Markup

    from harness.report.html import environment

    page = environment().from_string("<td>{{ name }}</td>{{ chart }}").render(
        name="tiny\x00\x1b[31m\x07<b>\tשלום\u200f", chart=Markup("<svg><text>ok</text></svg>"))
    assert not any(c in page for c in "\x00\x1b\x07"), repr(page)
    assert "tiny\\x00\\x1b[31m\\x07&lt;b&gt;\tשלום\u200f" in page and "<svg><text>ok</text></svg>" in page


def test_charts_and_pages_show_control_characters_and_undecodable_names_as_escapes(tmp_path):
    """The chart writer escaped markup but kept NUL, ESC and BEL raw in tooltips and labels (a build name went into
    the SVG as it came); and a name Python decoded from bytes that are not UTF-8 (a lone surrogate, such as
    '--db d\\xff.db' printed in the footer) made `harness report` die with UnicodeEncodeError.  Catches both."""
    from harness.outfile import write_text
    from harness.report.html import environment
    from harness.report.svg import esc

    assert esc("m\x00\x1b[31m\x07<x>") == "m\\x00\\x1b[31m\\x07&lt;x&gt;"
    page = environment().from_string("<p>{{ db }}</p>").render(db="d\udcff.db")
    assert "d\\udcff.db" in page
    write_text(tmp_path / "index.html", page)  # encodes as UTF-8: raised on the surrogate before


def test_a_manifest_that_is_not_a_regular_file_is_refused_not_ignored(tmp_path, model_dir):
    """A FIFO under a build's manifest name was skipped as if there were no manifest: the build was measured as
    'unknown' with exit 0.  Catches the manifest lookup that only asks is_file()."""
    import os

    from harness.artifacts.manifest import load_artifact
    from harness.errors import UserError
    from tests.helpers import copy_model

    build = copy_model(model_dir, "tiny.onnx", tmp_path / "b")
    os.mkfifo(tmp_path / "b" / "tiny.onnx.manifest.json")
    with pytest.raises(UserError, match="not a regular file") as err:
        load_artifact(build)
    assert "tiny.onnx.manifest.json" in str(err.value)


@pytest.mark.parametrize("text", ["nan", "inf", "abc", "1e400"])
def test_a_bad_threshold_is_answered_with_a_fix_the_option_accepts(text):
    """'--threshold nan' was told 'write digits, e.g. 5', which the option then refused (an outside probe)."""
    import argparse
    import re

    from harness.validation import fraction

    with pytest.raises(argparse.ArgumentTypeError) as err:
        fraction(text)
    suggested = re.search(r"e\.g\. ([0-9]+(?:\.[0-9]+)?)", str(err.value))
    assert suggested and 0 < fraction(suggested.group(1)) < 1, str(err.value)
