"""What a lab node needs besides Ray: the builds and corpora it measures, and the `ray start` that advertises its
phones.  No cluster here; tests/test_lab.py runs a real one."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harness.errors import UserError
from harness.lab import device_resource
from harness.artifacts.manifest import sha256_of
from harness.lab.files import FileServer, catalogue, fetch, localize
from harness.lab.node import join_env, node_config, ray_start_argv, resources_for
from harness.plan import expand_plan, load_plan
from harness.inventory import load_inventory
from tests.helpers import chain_parts, copy_model, write


def _corpus(root: Path) -> Path:
    (root / "audio" / "a").mkdir(parents=True)
    lines = []
    for i in range(2):
        sf.write(root / "audio" / "a" / f"u{i}.wav", np.full(1600, 0.01 * (i + 1), dtype=np.float32), 16000,
                 subtype="PCM_16")
        lines.append(json.dumps({"id": f"u{i}", "audio": f"audio/a/u{i}.wav", "text": "hello", "duration_s": 0.1}))
    return write(root / "manifest.jsonl", "\n".join(lines) + "\n")


@pytest.fixture
def specs(tmp_path, model_dir):
    """Real cells: a latency cell and a transcription chain on a corpus, expanded from a plan."""
    parts = chain_parts(model_dir, tmp_path / "b")
    copy_model(model_dir, "tiny.pte", tmp_path / "b", manifest={"model": "m", "stage": "vad",
                                                                "backend": "xnnpack", "quantization": "fp32"})
    _corpus(tmp_path / "corpus")
    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host, backends: [xnnpack, ort-cpu]}\n")
    plan = write(tmp_path / "plan.yaml", """
        name: p
        inventory: devices.yaml
        artifacts: [b/tiny.pte]
        accuracy: {corpus: corpus, chains: [{name: c, PARTS}]}
        """.replace("PARTS", parts))
    p, _, lines = load_plan(plan)
    cells, _ = expand_plan(p, plan, lines, load_inventory(tmp_path / "devices.yaml"))
    return cells


def _elsewhere(tmp_path, files):
    """A node on another host: the driver's paths do not exist there, its reads come over the wire."""
    served = {path: Path(path).read_bytes() for path in files}
    server = FileServer(files)
    for path in files:
        Path(path).unlink()

    def read(path, offset):
        assert path in served
        return served[path][offset:offset + 7]  # small chunks: the reassembly is exercised

    return server, read, served


def test_a_node_elsewhere_gets_every_file_a_cell_reads_checked_by_sha256(tmp_path, specs):
    files = catalogue(specs)
    # Digests by hashlib over each file's bytes, not by sha256_of (the function under test).
    originals = {path: hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in files}
    assert {ref.sha256 for ref in files.values()} == set(originals.values())  # the driver's catalogue is right
    _, read, _ = _elsewhere(tmp_path, files)
    cache = tmp_path / "node-cache"
    for spec in specs:
        local = localize(spec, files, read, cache)
        arts = [local.artifact] + (list(local.chain.parts.values()) if local.chain else [])
        for a in arts:
            assert a.path.is_file() and cache in a.path.parents
            assert hashlib.sha256(a.path.read_bytes()).hexdigest() == a.sha256 and a.sha256 in originals.values()
            assert a.path.name == spec.artifact.path.name or a.path.suffix == ".onnx"  # suffix kept for the runners
        if local.chain is not None:
            from harness.accuracy.corpus import read_manifest

            corpus = read_manifest(local.chain.corpus)  # laid out as on the driver: relative audio paths resolve
            assert cache in corpus.manifest.parents
            assert [float(corpus.load_audio(u)[0]) for u in corpus.utterances] == pytest.approx([0.01, 0.02], abs=1e-4)


def test_a_file_that_arrives_changed_is_refused_and_leaves_nothing(tmp_path, specs):
    files = catalogue([s for s in specs if s.task == "latency"])
    (path,) = files
    _, read, served = _elsewhere(tmp_path, files)
    served[path] = served[path][:-1] + b"\0"
    with pytest.raises(OSError, match="changed on the driver"):
        fetch(path, files, read, tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_folder_build_arrives_whole_and_a_changed_member_is_refused(tmp_path, specs):
    """Core ML packages are folders: each file travels on its own, and the folder is checked against the
    artifact's sha256 (the project's folder digest) before it is used."""
    from dataclasses import replace

    package = tmp_path / "enc.mlpackage"
    write(package / "Manifest.json", '{"fileFormatVersion": "1.0.0"}')
    (package / "Data" / "weights").mkdir(parents=True)
    (package / "Data" / "weights" / "weight.bin").write_bytes(bytes(range(256)) * 40)
    spec = next(s for s in specs if s.task == "latency")
    spec = replace(spec, artifact=replace(spec.artifact, path=package, sha256=sha256_of(package)))
    files = catalogue([spec])
    assert files[str(package)].members == ("Data/weights/weight.bin", "Manifest.json")
    original = sha256_of(package)
    served = {p: Path(p).read_bytes() for p, ref in files.items() if not ref.members}
    import shutil

    shutil.rmtree(package)
    read = lambda path, offset: served[path][offset:offset + 100]  # noqa: E731
    local = localize(spec, files, read, tmp_path / "cache").artifact.path
    assert local.is_dir() and local.name == "enc.mlpackage" and sha256_of(local) == original
    member = str(package / "Manifest.json")
    served[member] = b"{}"
    with pytest.raises(OSError, match="changed on the driver"):
        fetch(str(package), files, read, tmp_path / "other-cache")
    assert not [p for p in (tmp_path / "other-cache").rglob("*") if "mlpackage" in p.name]  # no folder, no partial
    with pytest.raises(PermissionError):
        FileServer(files).read(str(package), 0)  # a folder is never read as one file


def test_the_driver_serves_only_the_files_of_the_run(tmp_path, specs):
    server = FileServer(catalogue([s for s in specs if s.task == "latency"]))
    secret = write(tmp_path / "secret.txt", "x")
    with pytest.raises(PermissionError):
        server.read(str(secret), 0)
    (path,) = server.files
    assert server.read(path, 0) == Path(path).read_bytes()[:16 << 20]


def test_a_node_on_the_drivers_host_copies_nothing(tmp_path, specs):
    files = catalogue(specs)
    for spec in specs:
        local = localize(spec, files, lambda *_: pytest.fail("nothing should be read"), tmp_path / "cache")
        assert local.artifact.path == spec.artifact.path
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow  # Ray started
def test_ray_start_advertises_one_unit_per_device_with_flags_ray_knows(tmp_path):
    ray_scripts = pytest.importorskip("ray.scripts.scripts")
    known = {opt for param in ray_scripts.start.params for opt in param.opts}  # the installed Ray's own CLI
    head = ray_start_argv(None, resources_for(["pixel-8", "s24"]), port=6390)
    node = ray_start_argv("10.0.0.5:6379", resources_for(["s24"]))
    for argv in (head, node):
        assert argv[1] == "start" and {a.split("=")[0] for a in argv[2:]} <= known
    assert "--head" in head and "--port=6390" in head and "--address=10.0.0.5:6379" in node
    resources = json.loads(next(a for a in head if a.startswith("--resources=")).split("=", 1)[1])
    assert resources == {device_resource("pixel-8"): 1.0, device_resource("s24"): 1.0}
    assert shlex.split(shlex.join(head)) == head
    assert join_env(tmp_path / "devices.yaml")["HARNESS_LAB_INVENTORY"] == str((tmp_path / "devices.yaml").resolve())


def test_the_node_measures_with_its_own_inventory_entry(tmp_path, specs):
    spec = next(s for s in specs if s.task == "latency")
    write(tmp_path / "node.yaml", "devices:\n  - {id: host, platform: host, backends: [xnnpack], soc: node-local}\n")
    assert node_config(spec, None) is spec
    mine = node_config(spec, str(tmp_path / "node.yaml"))
    assert mine.device.soc == "node-local" and mine.artifact == spec.artifact
    write(tmp_path / "other.yaml", "devices:\n  - {id: elsewhere, platform: host}\n")
    assert node_config(spec, str(tmp_path / "other.yaml")).device == spec.device


def test_joining_needs_exactly_one_of_head_or_address(tmp_path, capsys):
    from harness.cli import main

    write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n")
    assert main(["lab", "join", "--inventory", str(tmp_path / "devices.yaml")]) == 2
    assert "--head" in capsys.readouterr().err
    assert main(["lab", "join", "--head", "--port", "6391", "--dry-run",
                 "--inventory", str(tmp_path / "devices.yaml")]) == 0
    out = capsys.readouterr()
    assert "advertise host" in out.err and device_resource("host") in out.out and "--port=6391" in out.out


def test_a_phone_that_moved_to_another_controller_is_still_comparable_night_to_night():
    from types import SimpleNamespace

    from harness.nightly.checks import _facts

    def night(controller):
        facts = {"soc": "SM8650", "android": "15", "controller": controller}
        return SimpleNamespace(devices=[{"device_id": "p1", "facts": facts}])

    assert _facts(night("host-a (ray node 1f2e)"), "p1") == _facts(night("host-b (ray node 9c0d)"), "p1")
    assert _facts(night("host-a"), "p1") == {"soc": "SM8650", "android": "15"}


def test_a_lab_night_ends_once_each_relay_has_passed_on_its_last_event():
    """The driver's loop (ray_lab.drain) yields every device's events and stops at the last relay's RELAY_ENDED,
    whatever the relay threads do next.  The code as it was waited until every relay thread had exited, looking
    every 0.5 s: a night waited up to half a second after its last event (there is no drain to import, nor an end
    marker a relay puts)."""
    import queue
    import threading

    from harness.lab.ray_lab import RELAY_ENDED, drain

    events: queue.Queue = queue.Queue()
    for item in ("p4 failed", "p1 run 0", RELAY_ENDED, "p2 run 0", "p2 run 1", RELAY_ENDED):
        events.put(item)
    drained: list = []
    # A drain that waited for anything more would never end here: nothing else is ever put.
    reader = threading.Thread(target=lambda: drained.extend(drain(events, relays=2)), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "drain waited past the last relay's end"
    assert drained == ["p4 failed", "p1 run 0", "p2 run 0", "p2 run 1"]
    # With no relay (every device advertised by no node), what is queued is passed on, and it ends.
    events.put("p4 failed")
    assert list(drain(events, relays=0)) == ["p4 failed"]
