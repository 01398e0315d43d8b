"""Inputs that cannot hurt: the build cache deletes only what it wrote; one YAML loader with limits; one
validation for numbers; read-only commands create nothing.  (The end-to-end rows are in tests/hostile/.)"""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.store.builds import BuildCache


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
    assert cache.prune({kept.parent.name}) == 2
    assert not old.parent.exists() and not stale.exists(), "an unused build (or a stale .partial) stayed"
    assert kept.exists()
    assert (mine / "model.onnx").read_bytes() == b"precious"
    assert (cache.root / "notes.txt").exists() and (cache.root / ("ab" * 32 + ".txt")).exists()


def test_the_same_bytes_under_two_names_are_kept_once(tmp_path):
    # Catches: the second name's copy renamed onto the first's folder ("Directory not empty", a .partial left).
    cache = BuildCache(tmp_path / "h.db")
    first = cache.keep(_build(tmp_path / "b", "a.pte"))
    second = cache.keep(_build(tmp_path / "b", "renamed.pte"))
    assert second == first and first.read_bytes() == b"model bytes"
    assert [p.name for p in cache.root.iterdir()] == [first.parent.name], "a .partial folder was left"


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
