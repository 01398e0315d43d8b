"""Property-based fuzzing of every file the harness reads: plans, inventories, build manifests, corpus
manifests and transcripts (Kaldi text and wav.scp, LibriSpeech trans.txt, NeMo/HF JSONL), reference and
hypothesis files, runner logs for every ``harness parse`` tool, iPhone result files, and the results database
itself with bytes changed.  Whatever the bytes,
the CLI answers exit 0 or 2, never a traceback, and the results database stays byte for byte as it was.

Each file type gets random bytes and structure-aware inputs (valid YAML or JSON with wrong values, a valid file
with one field replaced).  The CLI's main() runs in-process.  The tests take no pytest fixtures, so
benchmarks/hostile_summary.py runs the same functions and counts the cases (FUZZ_CASES, and CASES_TRIED).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main
from harness.commands.parse import parse_tools as _parse_tools

# Examples per file type, bounded so the file runs in well under a minute on a busy 2-core machine;
# HARNESS_FUZZ_SCALE=20 tries twenty times as many (a longer hunt, as before a release).
SCALE = int(os.environ.get("HARNESS_FUZZ_SCALE", "1"))
EXAMPLES = {kind: n * SCALE for kind, n in {
    "plan": 60, "inventory": 40, "build manifest": 40, "corpus manifest": 40, "kaldi": 25, "librispeech": 25,
    "jsonl import": 25, "wer": 20, "runner log": 12, "ios result": 40, "damaged database": 100,
    "impossible number": 40}.items()}
PARSE_TOOLS = sorted(_parse_tools())
FUZZ_CASES = sum(EXAMPLES.values()) + EXAMPLES["runner log"] * (len(PARSE_TOOLS) - 1)  # logs: per tool
CASES_TRIED = [0]  # examples actually run in this process (hostile_summary prints it)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "harness" / "runners" / "ios_contract" / "examples"
_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- a workspace with a stored run, made once per process -------------------------------------------------------

_WORKSPACE: list[Path] = []


def workspace() -> Path:
    """A folder with an inventory, a real ONNX build and a results database holding one run."""
    if not _WORKSPACE:
        from tests.hostile.cases import tiny_onnx

        root = Path(tempfile.mkdtemp(prefix="harness-fuzz-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)  # made here, removed here
        (root / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
        tiny_onnx(root / "builds" / "tiny.onnx", "tiny")
        (root / "plan.yaml").write_text("name: lab\ninventory: devices.yaml\nartifacts: [builds/tiny.onnx]\n"
                                        "warmup_iterations: 1\niterations: 2\nruns: 1\nthreads: 1\n")
        code, err = cli("run", root / "plan.yaml", "--db", root / "h.db", "-q")
        assert code == 0, err
        # Fuzzed builds run where no device offers their backend: a manifest that happens to be valid is
        # skipped, never measured.
        (root / "no-backend.yaml").write_text("devices:\n  - {id: host, platform: host, backends: [qnn]}\n")
        (root / "no-backend-plan.yaml").write_text("name: lab\nartifacts: [builds/tiny.onnx]\nruns: 1\n")
        _WORKSPACE.append(root)
    return _WORKSPACE[0]


def cli(*argv) -> tuple[int, str]:
    """main() in-process: (exit code, stderr).  An exception other than SystemExit propagates: a traceback."""
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse
            code = exc.code
    return code, err.getvalue()


def answers_cleanly(*argv, db: Path | None = None) -> None:
    CASES_TRIED[0] += 1
    before = db.read_bytes() if db is not None else None
    code, err = cli(*argv)
    assert code in (0, 2), f"exit {code}: {err[-1500:]}"
    assert "Traceback" not in err, err[-1500:]
    if db is not None:
        assert db.read_bytes() == before, "the results database changed"


def scratch() -> Path:
    """A fresh folder for one example, inside the workspace (the caller removes it)."""
    return Path(tempfile.mkdtemp(prefix="case-", dir=workspace()))


# -- strategies ---------------------------------------------------------------------------------------------------

# Values a YAML or JSON field may hold, most of them wrong for the field they land in.
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30),
    st.sampled_from(["", "*", "../../etc/passwd", "/dev/zero", "1e309", "0x10", "-0", ".nan", "~", "\x1b[31m",
                     "null", "yes", "NO", "1_000", "2026-12-07", "${HOME}", "$(touch pwned)", "a" * 300]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                      max_leaves=12)
YAML_TOKENS = st.sampled_from([
    "&a [*a]", "*undefined", "!!python/object/apply:os.system ['touch pwned']", "!!binary AAAA", "[", "{", "'",
    '"\\x', "? complex\n: key", "- - -", "|\n  block", ">-", "%YAML 1.1", "---\n---", ".inf", "-.inf", ".NaN",
    "0o17", "1:20", "<<: *a", "!!set {a, b}", "\t", "\x00", "\ufeff", "é", "[" * 200 + "]" * 200])

PLAN_KEYS = ["name", "description", "inventory", "devices", "artifacts", "warmup_iterations", "iterations", "runs",
             "threads", "timeout_s", "cooldown", "thermal_period_s", "budgets_p95_ms", "accuracy", "llm", "seed"]
VALID_PLAN = {"name": "lab", "devices": ["host"], "artifacts": ["builds/missing.onnx"], "warmup_iterations": 1,
              "iterations": 2, "runs": 1, "threads": 1}


def _yaml(data) -> bytes:
    return yaml.safe_dump(data, allow_unicode=True).encode("utf-8", "surrogatepass")


@st.composite
def yaml_documents(draw, valid: dict, keys: list[str]) -> bytes:
    """A valid document with fields replaced or added (any value), or one field's text a raw YAML token."""
    data = dict(valid)
    for key in draw(st.lists(st.sampled_from(keys) | st.text(max_size=12), min_size=1, max_size=3)):
        data[key] = draw(VALUES)
    if draw(st.booleans()):
        return _yaml(data)
    lines = _yaml(valid).decode().splitlines()
    at = draw(st.integers(0, len(lines) - 1))
    key = lines[at].split(":", 1)[0]
    lines[at] = f"{key}: {draw(YAML_TOKENS)}"
    return "\n".join(lines).encode("utf-8", "surrogatepass")


ANY_BYTES = st.binary(max_size=3000)


# -- plans, inventories, build manifests --------------------------------------------------------------------------

@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["plan"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, yaml_documents(VALID_PLAN, PLAN_KEYS)))
def test_any_plan_file(data):
    # The plan names a build that does not exist, so none of these can start measuring.
    root = workspace()
    (root / "fuzz-plan.yaml").write_bytes(data)
    answers_cleanly("run", root / "fuzz-plan.yaml", "--inventory", root / "devices.yaml", "--db", root / "h.db",
                    "-q", db=root / "h.db")


DEVICE_KEYS = ["id", "platform", "serial", "adb_port", "backends", "labels", "soc", "tools", "udid", "app",
               "bundle_id", "binaries", "remote_dir", "max_temp_c"]


@st.composite
def inventories(draw) -> bytes:
    entries = []
    for _ in range(draw(st.integers(0, 3))):
        entry = {"id": draw(st.sampled_from(["host", "phone", "x"]) | st.text(max_size=8)),
                 "platform": draw(st.sampled_from(["host", "android", "ios"]) | st.text(max_size=8))}
        for key in draw(st.lists(st.sampled_from(DEVICE_KEYS), max_size=3)):
            value = draw(VALUES)
            entry[key] = value if value != "*" else "x"  # serial '*' asks adb for every phone: not a file's fault
        entries.append(entry)
    return _yaml({"devices": entries} if draw(st.integers(0, 9)) else entries)


@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["inventory"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, inventories()))
def test_any_inventory_file(data):
    root = workspace()
    (root / "fuzz-devices.yaml").write_bytes(data)
    (root / "inv-plan.yaml").write_text("name: lab\nartifacts: [builds/missing.onnx]\niterations: 2\nruns: 1\n")
    answers_cleanly("run", root / "inv-plan.yaml", "--inventory", root / "fuzz-devices.yaml", "--db", root / "h.db",
                    "-q", db=root / "h.db")


MANIFEST_KEYS = ["model", "stage", "format", "backend", "quantization", "sha256", "size_bytes", "inputs",
                 "companions", "source", "recipe", "methods"]


@st.composite
def build_manifests(draw) -> bytes:
    data = {"model": "tiny", "stage": "vad", "backend": "ort-cpu", "quantization": "fp32"}
    for key in draw(st.lists(st.sampled_from(MANIFEST_KEYS) | st.text(max_size=8), min_size=1, max_size=3)):
        data[key] = draw(VALUES)
    text = json.dumps(data, allow_nan=True)
    if draw(st.booleans()):  # cut short, or a byte changed
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["", "NaN", "\x00", '"', "}", "\ud800"]))
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["build manifest"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, build_manifests()))
def test_any_build_manifest(data):
    root = workspace()
    (root / "builds" / "tiny.onnx.manifest.json").write_bytes(data)
    try:
        answers_cleanly("run", root / "no-backend-plan.yaml", "--inventory", root / "no-backend.yaml", "--db",
                        root / "h.db", "-q", db=root / "h.db")
    finally:
        (root / "builds" / "tiny.onnx.manifest.json").unlink()


# -- corpora and transcripts ---------------------------------------------------------------------------------------

UTTERANCE = {"id": "u1", "audio": "a.wav", "text": "hello there", "duration_s": 0.5}


@st.composite
def jsonl_lines(draw, keys: list[str]) -> bytes:
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        row = dict(UTTERANCE)
        for key in draw(st.lists(st.sampled_from(keys) | st.text(max_size=8), max_size=2)):
            row[key] = draw(VALUES)
        rows.append(json.dumps(row, allow_nan=True) if draw(st.integers(0, 5)) else json.dumps(draw(VALUES)))
    return "\n".join(rows).encode("utf-8", "surrogatepass")


def _corpus_folder() -> Path:
    from tests.hostile.cases import wav

    folder = workspace() / "corpus"
    if not folder.exists():
        wav(folder / "a.wav")
    return folder


@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["corpus manifest"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, jsonl_lines(["id", "audio", "text", "duration_s", "speaker"])))
def test_any_corpus_manifest(data):
    folder = _corpus_folder()
    (folder / "manifest.jsonl").write_bytes(data)
    answers_cleanly("corpus", "check", folder)


@st.composite
def transcript_lines(draw, id_pattern: str) -> bytes:
    """``<utt-id> <words>`` lines: ids and words from a wide alphabet, odd whitespace, bytes not UTF-8."""
    lines = []
    for i in range(draw(st.integers(0, 4))):
        utt = draw(st.sampled_from([id_pattern.format(i), "", " ", "../x", "a" * 200]) | st.text(max_size=12))
        words = draw(st.text(max_size=40))
        lines.append(f"{utt}{draw(st.sampled_from([' ', '  ', chr(9), '']))}{words}".encode("utf-8", "surrogatepass"))
    blob = b"\n".join(lines)
    return blob + draw(st.sampled_from([b"", b"\n", b"\xff\xfe", b"\r\n", b"\x00"]))


@settings(max_examples=EXAMPLES["kaldi"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, transcript_lines("u{}")), st.one_of(ANY_BYTES, transcript_lines("u{}")))
def test_any_kaldi_data_dir(text, wav_scp):
    source = scratch()
    try:
        (source / "text").write_bytes(text)
        (source / "wav.scp").write_bytes(wav_scp)
        answers_cleanly("corpus", "import", "kaldi", source)
    finally:
        shutil.rmtree(source)


@settings(max_examples=EXAMPLES["librispeech"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, transcript_lines("1-2-{:04d}")))
def test_any_librispeech_transcript(data):
    source = scratch()
    try:
        chapter = source / "1" / "2"
        chapter.mkdir(parents=True)
        (chapter / "1-2.trans.txt").write_bytes(data)
        answers_cleanly("corpus", "import", "librispeech", source)
    finally:
        shutil.rmtree(source)


@settings(max_examples=EXAMPLES["jsonl import"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, jsonl_lines(["audio_filepath", "audio", "path", "text", "sentence", "duration",
                                         "speaker", "id"])))
def test_any_jsonl_import(data):
    source = scratch()
    try:
        (source / "nemo.jsonl").write_bytes(data)
        answers_cleanly("corpus", "import", "jsonl", source / "nemo.jsonl", "-o", source)
    finally:
        shutil.rmtree(source)


@settings(max_examples=EXAMPLES["wer"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, st.text().map(str.encode)), st.one_of(ANY_BYTES, st.text().map(str.encode)))
def test_any_reference_and_hypothesis_files(ref, hyp):
    root = workspace()
    (root / "ref.txt").write_bytes(ref)
    (root / "hyp.txt").write_bytes(hyp)
    answers_cleanly("wer", root / "ref.txt", root / "hyp.txt")


# -- runner logs and iPhone result files ---------------------------------------------------------------------------

def _log_lines() -> st.SearchStrategy[bytes]:
    """Lines that look like runner output: known words and numbers in odd shapes."""
    words = st.sampled_from(["Model loaded", "load_ms", "Average", "P50", "P95", "iteration", "ms", "time:",
                             "Latency", "us", "inference", "tokens", "prompt", "Prefill", "Decode", "PSS", "rss",
                             "Total", "=", ":", "nan", "inf", "-1", "1e400", "0", "{", "}", "[", "]", "\"", ","])
    line = st.lists(words | st.integers(-10**20, 10**20).map(str) | st.floats().map(str), max_size=8).map(" ".join)
    return st.lists(line, max_size=20).map(lambda ls: "\n".join(ls).encode())


def parses_to_possible_numbers(tool: str, path: Path) -> None:
    """answers_cleanly, and what 'harness parse' prints (exit 0) holds only measurements that can be: no null
    (a NaN or 1e309 printed as null), nothing negative."""
    CASES_TRIED[0] += 1
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["parse", tool, str(path)])
        except SystemExit as exc:
            code = exc.code
    assert code in (0, 2) and "Traceback" not in err.getvalue(), f"exit {code}: {err.getvalue()[-1500:]}"
    if code != 0 or not isinstance(record := json.loads(out.getvalue()), dict) or "samples_ms" not in record:
        return
    figures = record["samples_ms"] + record["warmup_ms"] + list(record["summary_ms"].values())
    figures += [record[k] for k in ("load_ms", "first_inference_ms") if record[k] is not None]
    assert all(isinstance(v, (int, float)) and 0 <= v for v in figures), f"impossible figures printed: {figures}"


@pytest.mark.parametrize("tool", PARSE_TOOLS)
@settings(max_examples=EXAMPLES["runner log"], **_SETTINGS)
@given(data=st.one_of(ANY_BYTES, _log_lines()))
def test_any_runner_log(tool, data):
    root = workspace()
    (root / f"{tool}.log").write_bytes(data)
    parses_to_possible_numbers(tool, root / f"{tool}.log")


# Real logs (tests/logs) of each tool, for the impossible-number cases: the tool's name starts the file name.
SHIPPED_LOGS = [(tool, log) for log in sorted((Path(__file__).resolve().parent / "logs").glob("*.txt"))
                for tool in PARSE_TOOLS if log.name.startswith(tool)]


@st.composite
def shipped_log_with_an_impossible_number(draw) -> tuple[str, str]:
    """A tool's real log with one of its numbers made negative, infinite, NaN or absurd (with check_measured
    left out of cmd_parse, the first example printed a load_ms of -1000)."""
    import re

    tool, log = draw(st.sampled_from(SHIPPED_LOGS))
    text = log.read_text()
    numbers = list(re.finditer(r"(?<![\w.])\d+(\.\d+)?(?![\w.])", text))
    m = numbers[draw(st.integers(0, len(numbers) - 1))]
    wrong = draw(st.sampled_from(["-1", "-0.0012", "1e309", "nan", "inf", "1e300", "-5e3"]))
    return tool, text[:m.start()] + wrong + text[m.end():]


@settings(max_examples=EXAMPLES["impossible number"], **_SETTINGS)
@given(shipped_log_with_an_impossible_number())
def test_a_shipped_log_with_an_impossible_number(case):
    tool, text = case
    root = workspace()
    (root / f"{tool}.log").write_text(text)
    parses_to_possible_numbers(tool, root / f"{tool}.log")


def _result_example() -> dict:
    return json.loads((EXAMPLES_DIR / "result.latency.json").read_text())


@st.composite
def ios_results(draw) -> bytes:
    """The contract's own latency example with fields replaced, removed or nested wrongly."""
    result = _result_example()
    for _ in range(draw(st.integers(1, 3))):
        path, node = [], result
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            path.append(key)
            parent, node = node, node[key]
        if not path:
            result[draw(st.text(max_size=8))] = draw(VALUES)
            continue
        if draw(st.integers(0, 4)):
            parent[path[-1]] = draw(VALUES)
        else:
            del parent[path[-1]]
    return json.dumps(result, allow_nan=True).encode("utf-8", "surrogatepass")


@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["ios result"], **_SETTINGS)
@given(st.one_of(ANY_BYTES, ios_results()))
def test_any_iphone_result_file(data):
    root = workspace()
    (root / "result.json").write_bytes(data)
    parses_to_possible_numbers("ios_result", root / "result.json")


def test_the_contract_example_itself_parses():
    """The structure-aware strategy starts from a result the parser takes (else it would fuzz only errors)."""
    root = workspace()
    (root / "result.json").write_text(json.dumps(_result_example()))
    code, err = cli("parse", "ios_result", root / "result.json")
    assert code == 0, err


# -- the results database itself, with bytes changed ---------------------------------------------------------------

_STORED: list[bytes] = []


def _stored_bytes() -> bytes:
    """The workspace's database as one file (its write-ahead log folded in)."""
    if not _STORED:
        import sqlite3

        copy = workspace() / "stored-copy.db"
        source, target = sqlite3.connect(workspace() / "h.db"), sqlite3.connect(copy)
        source.backup(target)
        source.close()
        target.close()
        _STORED.append(copy.read_bytes())
        copy.unlink()
    return _STORED[0]


@pytest.mark.slow  # hundreds of generated files through the real readers
@settings(max_examples=EXAMPLES["damaged database"], **_SETTINGS)
@given(st.lists(st.tuples(st.integers(100, 2**20), st.integers(0, 255)), min_size=1, max_size=8),
       st.sampled_from(["runs", "report", "export"]))
def test_any_damage_to_a_stored_database(flips, command):
    """A failing disk or a copy cut short: pages, schema text, names or JSON changed.  Never a traceback (the
    database may be repaired on open, e.g. its journal mode set again, so its bytes are not compared).  A broad
    net: the damage it found (schema text, non-UTF-8 cells, JSON) has targeted tests in test_faults.py, and
    HARNESS_FUZZ_SCALE=4 finds it again on the code before them."""
    data = bytearray(_stored_bytes())
    for position, value in flips:
        data[position % len(data)] = value
    folder = scratch()
    try:
        (folder / "h.db").write_bytes(bytes(data))
        extra = {"runs": (), "report": ("latest", "-o", folder / "rep"), "export": ("latest", "-o", folder / "x.csv")}
        answers_cleanly(command, *extra[command], "--db", folder / "h.db")
    finally:
        shutil.rmtree(folder)


FUZZ_TESTS = [test_any_plan_file, test_any_inventory_file, test_any_build_manifest, test_any_corpus_manifest,
              test_any_kaldi_data_dir, test_any_librispeech_transcript, test_any_jsonl_import,
              test_any_reference_and_hypothesis_files, test_any_iphone_result_file,
              test_any_damage_to_a_stored_database]  # and test_any_runner_log(tool), once per tool
