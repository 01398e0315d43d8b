"""iPhones through pymobiledevice3, tested at the library's service boundary (tests/ios_fakes.py)."""

from __future__ import annotations

import inspect
import json
from importlib import metadata

import pytest

from harness.cli import main as cli_main
from harness.devices import ios_pmd3
from harness.runners import ios_contract
from harness.store import Store
from tests.helpers import copy_model, write

# tests/ios_fakes.py is imported by the tests that use it: it imports pymobiledevice3 (1.7 s), which collecting
# this file made every pytest-xdist worker pay, for every selection.

EXAMPLES = ios_contract.HERE / "examples"


def _shape(fn) -> list[tuple]:
    """A signature without annotations: names, kinds and defaults, and whether it is a coroutine."""
    fn = inspect.unwrap(getattr(fn, "__func__", fn))
    params = [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]
    return [inspect.iscoroutinefunction(fn), *params]


@pytest.mark.slow  # pymobiledevice3 imported
def test_the_fakes_have_the_pinned_librarys_signatures(tmp_path):
    from tests import ios_fakes

    assert metadata.version("pymobiledevice3").split(".")[0] == str(ios_pmd3.PINNED_MAJOR)
    api = ios_fakes.build_api(ios_fakes.FakeIPhone(tmp_path))
    pairs = ios_fakes.signature_pairs(api)
    assert {name.split(".")[0] for name, *_ in pairs} >= {"usbmux", "lockdown", "InstallationProxyService",
                                                         "HouseArrestService", "ProcessControl", "DiagnosticsService"}
    drift = [name for name, fake, real in pairs if _shape(fake) != _shape(real)]
    assert not drift, f"pymobiledevice3 changed these signatures; update ios_pmd3 and the fakes: {drift}"
    # Every library entry point the harness uses has a fake.
    assert set(ios_pmd3.Api.__dataclass_fields__) == set(vars(api))


def test_contract_examples_are_valid_and_broken_results_are_named_precisely():
    jobs = {p.stem.split(".")[1]: json.loads(p.read_text()) for p in EXAMPLES.glob("job.*.json")}
    for job in jobs.values():
        ios_contract.validate_job(job)
    assert ios_contract.parse_result((EXAMPLES / "result.transcribe.json").read_text(), jobs["transcribe"])["status"] == "ok"
    latency = json.loads((EXAMPLES / "result.latency.json").read_text())
    # The example job asks for 50 iterations; a result with 5 is caught by the cross-check, not the schema.
    with pytest.raises(ios_contract.ContractError, match=r"\$.latency_ms: 5 values for 50 iterations"):
        ios_contract.parse_result(json.dumps(latency), jobs["latency"])
    assert ios_contract.parse_result((EXAMPLES / "result.failed.json").read_text(), jobs["latency"])["status"] == "failed"
    broken = dict(latency, load_ms="fast", thermal_state=[{"t_s": 0, "state": "toasty"}])
    del broken["latency_ms"]
    with pytest.raises(ios_contract.ContractError) as err:
        ios_contract.parse_result(json.dumps(broken), jobs["latency"])
    message = str(err.value)
    assert "$.load_ms: 'fast' is not of type 'number'" in message and "$.thermal_state[0].state" in message
    assert "'latency_ms' is a required property" in message
    with pytest.raises(ios_contract.ContractError, match="not valid JSON"):
        ios_contract.parse_result('{"schema": ', jobs["latency"])
    with pytest.raises(ios_contract.ContractError, match="compute_units"):
        ios_contract.validate_job(dict(jobs["latency"], compute_units="neuralEngineOnly"))


@pytest.fixture
def iphone(tmp_path):
    """A fake iPhone behind fake pymobiledevice3 services; the real library is restored afterwards."""
    from tests import ios_fakes

    phone = ios_fakes.FakeIPhone(tmp_path / "container")
    ios_pmd3.use_api(ios_fakes.build_api(phone))
    yield phone
    ios_pmd3.use_api(None)


def _setup(tmp_path, model_dir, phone, artifacts=("tiny.pte",), timeout_s=120):
    from tests import ios_fakes

    ipa = ios_fakes.make_ipa(tmp_path / "app" / "Bench.ipa")
    write(tmp_path / "devices.yaml", f"""
        devices:
          - id: iphone16pm
            platform: ios
            udid: "{phone.udid}"
            app: {ipa}
            bundle_id: {ios_fakes.BUNDLE_ID}
            compute_units: cpuAndNeuralEngine
            backends: [coreml, xnnpack]
        """)
    for name in artifacts:
        copy_model(model_dir, name, tmp_path / "builds")
    return write(tmp_path / "plan.yaml", f"""
        name: iphone
        inventory: devices.yaml
        artifacts: [{", ".join("builds/" + a for a in artifacts)}]
        warmup_iterations: 2
        iterations: 7
        runs: 1
        timeout_s: {timeout_s}
        thermal_period_s: 0.2
        """)


def _run(tmp_path, plan) -> tuple[int, list]:
    code = cli_main(["run", str(plan), "--db", str(tmp_path / "r.db"), "--quiet"])
    with Store(tmp_path / "r.db") as store:
        run = store.runs(1)[0]
        return code, store.cells(run.run_id), store.devices(run.run_id), run


@pytest.mark.slow  # two runs and a report
def test_harness_run_on_an_iphone_installs_pushes_launches_and_stores(tmp_path, model_dir, iphone):
    plan = _setup(tmp_path, model_dir, iphone)
    code, (cell,), (device,), run = _run(tmp_path, plan)
    assert code == 0 and cell.status == "ok" and cell.runner == "ios-benchmark-app", (cell.reason, cell.log)
    assert len(cell.samples_ms) == 7 and len(cell.warmup_ms) == 2 and cell.load_ms > 0 and cell.peak_rss_mb == 120.5
    assert device["platform"] == "ios" and device["facts"]["product_type"] == "iPhone17,2"
    assert device["facts"]["app_version"] == "1.4.0 (140)" and device["facts"]["developer_services"] == "tunneld"
    # The battery's raw IOPMPowerSource value is stored beside its conversion.
    battery = [t for t in cell.thermals if t["sensor"] == "battery"]
    raw = [t for t in cell.thermals if t["kind"] == "raw"]
    assert battery and battery[0]["value"] == pytest.approx(30.5) and raw[0]["value"] == 3050 and "/ 100" in raw[0]["unit"]
    assert [t["value"] for t in cell.thermals if t["sensor"] == "thermalState"] == [0, 0]
    # The app was launched on a job in its container, and the build sits there content-addressed.
    (launch,) = iphone.launched_with
    job_path = launch["environment"]["HARNESS_JOB"]
    assert launch["arguments"] == ["--harness-job", job_path]
    job = json.loads((iphone.root / job_path).read_text())
    assert job["compute_units"] == "cpuAndNeuralEngine" and job["iterations"] == 7
    assert (iphone.root / "Documents/harness" / cell.artifact["sha256"] / "tiny.pte").is_file()
    assert iphone.installs == 1
    # The report shows what the app said about itself, escaped.
    assert cli_main(["report", run.run_id, "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    assert "compute units cpuAndNeuralEngine" in html and "app 1.4.0" in html and "device iPhone17,2" in html
    # A second night: same app version, same build: nothing installed, nothing pushed.
    code, (cell2,), _, _ = _run(tmp_path, plan)
    assert code == 0 and iphone.installs == 1 and all(p["skipped"] for p in cell2.extra["pushes"]), cell2.extra["pushes"]


def test_a_new_app_version_is_installed(tmp_path, model_dir, iphone):
    from tests import ios_fakes

    plan = _setup(tmp_path, model_dir, iphone)
    iphone.apps[ios_fakes.BUNDLE_ID] = {"CFBundleIdentifier": ios_fakes.BUNDLE_ID,
                                        "CFBundleShortVersionString": "1.3.9", "CFBundleVersion": "139"}
    code, _, (device,), _ = _run(tmp_path, plan)
    assert code == 0 and iphone.installs == 1 and device["facts"]["app_version"] == "1.4.0 (140)"


@pytest.mark.slow
@pytest.mark.parametrize("fault, status, words, log_words", [
    ({"crash_app": 1}, "crashed", ["ended without writing its result file"], []),
    # The field at fault is named, and the offending file travels with the failure, in the log.
    ({"malformed_result": 1}, "failed", ["breaks the contract", "$.load_ms: 'fast' is not of type 'number'"],
     ['"load_ms": "fast"']),
    ({"hang_app": 1}, "timeout", ["did not finish"], []),
])
def test_app_faults_fail_their_cell_and_the_run_goes_on(tmp_path, model_dir, iphone, fault, status, words, log_words):
    for name, value in fault.items():
        setattr(iphone.faults, name, value)
    plan = _setup(tmp_path, model_dir, iphone, artifacts=("tiny.pte", "tiny-b.pte"), timeout_s=5)
    code, cells, _, run = _run(tmp_path, plan)
    first, second = sorted(cells, key=lambda c: c.cell_id)
    assert first.status == status and all(w in first.reason for w in words), (first.reason, first.log)
    assert all(w in first.log for w in log_words), first.log
    assert second.status == "ok" and len(second.samples_ms) == 7  # the next cell still ran
    assert run.status == "complete" and code == 1
    if status == "timeout":
        assert not any(t.is_alive() for t, _ in iphone.processes.values())  # the hung app was killed


def test_an_app_not_signed_for_development_is_named_as_the_reason(tmp_path, model_dir, iphone):
    """HouseArrest vends the whole container only of development-signed apps (get-task-allow)."""
    iphone.faults.distribution_signed = True
    code, (cell,), _, run = _run(tmp_path, _setup(tmp_path, model_dir, iphone))
    assert cell.status == "failed" and "development provisioning profile" in cell.reason, cell.reason
    assert iphone.launches == 0 and run.status == "complete"


@pytest.mark.parametrize("setup, words", [
    ({"no_tunneld": True}, "tunneld is not running"),
    ({"developer_mode_off": True}, "Developer Mode is off"),
    ({"ddi_missing": True}, "pymobiledevice3 mounter auto-mount"),
    ({"install_fails": True}, "check its signing and provisioning profile"),
])
def test_missing_prerequisites_are_named_with_their_fix(tmp_path, model_dir, iphone, setup, words):
    for name, value in setup.items():
        setattr(iphone.faults, name, value)
    code, (cell,), _, run = _run(tmp_path, _setup(tmp_path, model_dir, iphone))
    assert cell.status == "failed" and cell.reason.startswith("device unreachable") and words in cell.reason, cell.reason
    assert iphone.launches == 0 and run.status == "complete"


def test_without_tunneld_a_userspace_tunnel_is_opened_and_both_are_named_when_neither_works(
        tmp_path, model_dir, iphone):
    plan = _setup(tmp_path, model_dir, iphone)
    iphone.faults.no_tunneld = True
    code, (cell,), _, _ = _run(tmp_path, plan)
    assert "tunneld at 127.0.0.1:49151" in cell.reason and "userspace tunnel: " in cell.reason, cell.reason
    iphone.faults.userspace_tunnel = True
    code, (cell,), (device,), _ = _run(tmp_path, plan)
    assert cell.status == "ok" and device["facts"]["developer_services"] == "userspace tunnel"


def test_before_ios_17_no_tunnel_is_needed(tmp_path, model_dir, iphone):
    iphone.ios, iphone.faults.no_tunneld = "16.7", True
    code, (cell,), (device,), _ = _run(tmp_path, _setup(tmp_path, model_dir, iphone))
    assert cell.status == "ok" and device["facts"]["developer_services"] == "lockdown"


@pytest.mark.slow  # a run through the iPhone path
def test_iphone_unplugged_mid_run_fails_the_rest_with_a_reason(tmp_path, model_dir, iphone):
    plan = _setup(tmp_path, model_dir, iphone, artifacts=("tiny.pte", "tiny-b.pte"))
    iphone.faults.unplug_after_launches = 1
    code, cells, _, run = _run(tmp_path, plan)
    assert [c.status for c in cells] == ["lost", "lost"] and run.status == "complete"  # --resume measures them
    for cell in cells:
        assert any(w in cell.reason for w in ("went away mid-run", "not connected", "does not see")), cell.reason


def test_devices_lists_the_iphone_with_what_is_missing_and_installs_nothing(tmp_path, model_dir, iphone, capsys):
    _setup(tmp_path, model_dir, iphone)
    assert cli_main(["devices", "--inventory", str(tmp_path / "devices.yaml"), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["reachable"] and "iOS 18" in row["detail"] and iphone.installs == 0
    iphone.faults.no_tunneld = True  # a device that does not answer: exit 1, for a lab's morning check
    assert cli_main(["devices", "--inventory", str(tmp_path / "devices.yaml"), "--json"]) == 1
    (row,) = json.loads(capsys.readouterr().out)
    assert not row["reachable"] and "remote tunneld" in row["detail"]


@pytest.mark.slow  # the bundled Whisper build
def test_iphone_transcribes_a_corpus_through_the_app(tmp_path, model_dir, iphone, whisper_bundle):
    from tests.helpers import bundle_accuracy

    _setup(tmp_path, model_dir, iphone)
    plan = write(tmp_path / "asr.yaml", f"""
        name: iphone-asr
        inventory: devices.yaml
        timeout_s: 300
{bundle_accuracy(whisper_bundle / "whisper-tiny.en-asr-fp32-xnnpack.pte")}
        """)
    code, (cell,), _, _ = _run(tmp_path, plan)
    assert code == 0 and cell.task == "transcribe" and cell.runner == "ios-benchmark-app", (cell.reason, cell.log)
    assert [t["utt_id"] for t in cell.transcripts] == ["h01-01", "h01-02"]
    assert cell.transcripts[1]["hypothesis"] == "Glue the sheet to the dark blue background."
    (launch,) = iphone.launched_with
    job = json.loads((iphone.root / launch["environment"]["HARNESS_JOB"]).read_text())
    assert [m["role"] for m in job["models"]] == ["model", "processor", "tokenizer"]
    assert [a["id"] for a in job["audio"]] == ["h01-01", "h01-02"] and job["task"] == "transcribe"
    # The chain's pushes (bundle, companions, audio) are the cell's push time.
    assert cell.push_s == pytest.approx(sum(p["seconds"] for p in cell.extra["pushes"])) and cell.push_s > 0


def test_compiled_core_ml_folders_are_pushed_whole(tmp_path, model_dir, iphone):
    _setup(tmp_path, model_dir, iphone)
    compiled = tmp_path / "builds" / "encoder-int4.mlmodelc"
    for rel, data in (("coremldata.bin", b"\x01" * 64), ("model.mil", b"program(1.0)"),
                      ("weights/weight.bin", b"\x00" * 4096)):
        (compiled / rel).parent.mkdir(parents=True, exist_ok=True)
        (compiled / rel).write_bytes(data)
    plan = write(tmp_path / "c.yaml", """
        name: compiled
        inventory: devices.yaml
        artifacts: [builds/encoder-int4.mlmodelc]
        iterations: 4
        runs: 1
        """)
    code, (cell,), _, _ = _run(tmp_path, plan)
    assert cell.status == "ok" and cell.artifact["format"] == "mlmodelc" and len(cell.samples_ms) == 4, cell.reason
    there = iphone.root / "Documents/harness" / cell.artifact["sha256"] / "encoder-int4.mlmodelc"
    assert (there / "weights" / "weight.bin").read_bytes() == b"\x00" * 4096 and (there / "model.mil").is_file()
    assert not list((iphone.root / "Documents/harness").glob("*.partial"))  # renamed into place whole


def test_the_real_library_seam_loads_every_name_it_needs():
    # Calls pymobiledevice3 for real, no fakes: on Python 3.11 the seam once raised KeyError('list_devices'),
    # because locals() inside a comprehension did not see the function's imports.
    api = ios_pmd3.real_api()
    for name in ios_pmd3.Api.__dataclass_fields__:
        value = getattr(api, name)
        assert value.__name__ == name and value.__module__.startswith("pymobiledevice3."), name


def test_devices_without_usbmuxd_names_the_fix(tmp_path, monkeypatch, capsys):
    # The real seam against a usbmuxd socket that is not there (wherever the machine's own usbmuxd is).
    monkeypatch.setenv("USBMUXD_SOCKET_ADDRESS", str(tmp_path / "no-usbmuxd"))
    monkeypatch.setenv("COLUMNS", "200")
    ios_pmd3.use_api(None)
    (tmp_path / "bench.ipa").write_bytes(b"")
    inventory = write(tmp_path / "devices.yaml", f"""
        devices:
          - id: iphone
            platform: ios
            udid: 00008110-000A1D2E3F45801E
            app: {tmp_path / "bench.ipa"}
            bundle_id: org.example.harness.bench
        """)
    cli_main(["devices", "--inventory", str(inventory)])
    out = capsys.readouterr()
    text = " ".join((out.out + out.err).split())
    assert "usbmuxd is not running: start it" in text
    assert "KeyError" not in text and "Traceback" not in text


def test_the_apps_memory_footprint_is_optional_and_stored_as_the_peak_when_given():
    """An app that cannot read its footprint leaves peak_memory_mb out: before, the contract required it and such a
    result failed the cell; given, it is the cell's peak memory."""
    from harness.runners.ios_app import parse

    latency = json.loads((EXAMPLES / "result.latency.json").read_text())
    assert parse(json.dumps(latency)).peak_rss_mb == latency["peak_memory_mb"]
    del latency["peak_memory_mb"]
    measured = parse(json.dumps(latency))
    assert measured.peak_rss_mb is None and measured.samples_ms == latency["latency_ms"]
