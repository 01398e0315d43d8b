"""Inventory and plan files: good ones load, bad ones fail with the file, the line and a fix."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import UserError
from harness.inventory import load_inventory
from harness.plan import load_plan
from tests.helpers import REPO, write


def test_shipped_inventory_has_a_working_host_device():
    inventory = load_inventory(REPO / "devices.yaml")
    host = inventory.get("host")
    assert host.platform == "host"
    assert {"xnnpack", "ort-cpu"} <= set(host.backends)


def test_shipped_plan_is_valid():
    plan, sha, _ = load_plan(REPO / "plans" / "host-demo.yaml")
    assert plan.devices == ["host"]
    assert plan.budgets_p95_ms.vad == 10 and plan.budgets_p95_ms.asr == 150
    assert plan.budgets_p95_ms.llm_npu == 200 and plan.budgets_p95_ms.llm_cpu == 500
    assert plan.budgets_p95_ms.pipeline == 350 and plan.budgets_p95_ms.pipeline_memory_mb == 1024
    assert len(sha) == 64


def test_every_shipped_plan_is_valid_and_the_pipeline_plan_covers_fp32_int8_and_int4():
    plans = {p.name: load_plan(p)[0] for p in sorted((REPO / "plans").glob("*.yaml"))}
    assert {"host-demo.yaml", "host-accuracy.yaml", "host-pipeline.yaml"} <= set(plans)
    chains = plans["host-pipeline.yaml"].accuracy.chains
    assert all(c.is_pipeline for c in chains)
    assert [c.llm.split("-")[-2] for c in chains] == ["fp32", "int8", "int4"]
    assert [c.encoder.split("-")[-1].split(".")[0] for c in chains] == ["fp32", "int8", "int4"]  # ASR at the same precision


def test_a_pipeline_needs_both_its_vad_and_its_llm(tmp_path):
    plan = write(tmp_path / "plan.yaml", """
        name: half
        accuracy:
          corpus: c
          chains:
            - {name: p, mel: m.onnx, encoder: e.onnx, decoder: d.onnx, vad: v.onnx}
        """)
    with pytest.raises(UserError, match="both 'vad' and 'llm'"):
        load_plan(plan)


# An unknown inventory key (named with its path, line and the allowed keys): hostile row "inventory: unknown key".


def test_malformed_yaml_reports_its_line(tmp_path):
    path = write(tmp_path / "plan.yaml", """
        name: x
        artifacts: [a.onnx
        iterations: 3
        """)
    with pytest.raises(UserError) as err:
        load_plan(path)
    assert f"{path}:" in str(err.value) and "not valid YAML" in str(err.value)
    assert err.value.line in (3, 4)


def test_unknown_backend_is_rejected(tmp_path):
    path = write(tmp_path / "devices.yaml", """
        devices:
          - id: host
            platform: host
            backends: [xnnpak]
        """)
    with pytest.raises(UserError) as err:
        load_inventory(path)
    assert "devices[0].backends[0]" in str(err.value) and err.value.line == 4


def test_unknown_platform_is_rejected(tmp_path):
    path = write(tmp_path / "devices.yaml", """
        devices:
          - id: watch
            platform: wearos
        """)
    with pytest.raises(UserError) as err:
        load_inventory(path)
    assert "devices[0].platform" in str(err.value) and err.value.line == 3


def test_duplicate_device_ids_are_rejected(tmp_path):
    path = write(tmp_path / "devices.yaml", """
        devices:
          - {id: host, platform: host}
          - {id: host, platform: host}
        """)
    with pytest.raises(UserError, match="used twice"):
        load_inventory(path)


def test_plan_values_are_checked(tmp_path):
    path = write(tmp_path / "plan.yaml", """
        name: p
        artifacts: [a.onnx]
        iterations: 0
        """)
    with pytest.raises(UserError) as err:
        load_plan(path)
    assert "iterations" in str(err.value) and err.value.line == 3


def test_missing_required_key(tmp_path):
    path = write(tmp_path / "plan.yaml", "artifacts: [a.onnx]\niterations: 3\n")
    with pytest.raises(UserError) as err:
        load_plan(path)
    assert "name: Field required" in str(err.value) and "Fix: add it." in str(err.value)


def test_unknown_device_in_inventory_lookup(tmp_path):
    inventory = load_inventory(write(tmp_path / "devices.yaml", "devices:\n  - {id: host, platform: host}\n"))
    with pytest.raises(UserError, match="no device 'pixel'.*known: host"):
        inventory.get("pixel")


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_inventory(Path(tmp_path / "nope.yaml"))


def test_the_htp_performance_mode_is_a_named_mode_recorded_on_qnn_cells_only(tmp_path):
    """One HTP power mode for both QNN paths, from the plan (default burst); a typo is refused with the known
    modes, and only QNN cells carry it, so a change makes their nights "not comparable" and no one else's."""
    from harness.nightly.checks import not_comparable
    from harness.runners import RunSettings
    from harness.plan.expand import _for_backend

    write(tmp_path / "devices.yaml", "devices:\n  - id: host\n    platform: host\n")
    bad = write(tmp_path / "bad.yaml", "name: x\ninventory: devices.yaml\nartifacts: [a.onnx]\n"
                                       "htp_performance_mode: turbo\n")
    with pytest.raises(UserError) as err:
        load_plan(bad)
    assert "htp_performance_mode" in str(err.value) and "sustained_high_performance" in str(err.value)
    plan = load_plan(write(tmp_path / "ok.yaml", "name: x\ninventory: devices.yaml\nartifacts: [a.onnx]\n"))[0]
    base = RunSettings(warmup_iterations=1, iterations=2, timeout_s=10)
    assert _for_backend(base, plan, "ort-qnn").htp_performance_mode == "burst"
    assert _for_backend(base, plan, "xnnpack").htp_performance_mode is None

    def view(mode):
        return SimpleNamespace(cell=SimpleNamespace(settings={"htp_performance_mode": mode}, runner="r", extra={}))

    assert not_comparable(view("burst"), view("balanced"), {}, {}) == "htp_performance_mode burst -> balanced"


def test_a_tool_path_that_is_not_there_is_refused_when_the_inventory_is_read(tmp_path):
    """Catches a missing tools: path accepted at load and failing every night's cell with FileNotFoundError."""
    write(tmp_path / "devices.yaml", "devices:\n  - id: phone\n    platform: android\n    serial: abc\n"
                                     f"    tools: {{onnxruntime_perf_test: {tmp_path / 'nowhere'}}}\n")
    with pytest.raises(UserError) as err:
        load_inventory(tmp_path / "devices.yaml")
    assert err.value.line == 5 and "devices[0].tools.onnxruntime_perf_test" in str(err.value)
    assert "not there" in str(err.value) and err.value.fix


def test_a_folder_tool_must_be_a_folder_and_a_binary_tool_a_file(tmp_path):
    """Catches qnn_sdk (a folder key) given a file, and a binary key given a folder, passing the load."""
    binary = write(tmp_path / "onnxruntime_perf_test", "stand-in\n")
    for tools, key in ((f"{{qnn_sdk: {binary}}}", "qnn_sdk"), (f"{{executor_runner: {tmp_path}}}", "executor_runner")):
        write(tmp_path / "devices.yaml", "devices:\n  - id: phone\n    platform: android\n    serial: abc\n"
                                         f"    tools: {tools}\n")
        with pytest.raises(UserError, match=f"devices\\[0\\].tools.{key}: .* not a (folder|regular file)"):
            load_inventory(tmp_path / "devices.yaml")
    (tmp_path / "qairt").mkdir()
    write(tmp_path / "devices.yaml", "devices:\n  - id: phone\n    platform: android\n    serial: abc\n"
                                     f"    tools: {{qnn_sdk: {tmp_path / 'qairt'}, onnxruntime_perf_test: {binary}}}\n")
    assert load_inventory(tmp_path / "devices.yaml").devices[0].tools.get("qnn_sdk") == tmp_path / "qairt"


def test_a_value_yaml_reads_as_true_is_quoted_as_written(tmp_path):
    """Catches 'runs: on' answered with '(now True)', a word the user never wrote."""
    write(tmp_path / "plan.yaml", "name: p\nartifacts: [a.onnx]\nruns: on\n")
    with pytest.raises(UserError) as err:
        load_plan(tmp_path / "plan.yaml")
    assert "(now 'on', which YAML reads as true)" in err.value.fix, err.value.fix


def test_a_device_listed_twice_is_not_answered_with_a_type_name(tmp_path):
    """Catches 'change devices (now list)': the harness's own check says what is wrong, not pydantic's type."""
    write(tmp_path / "plan.yaml", "name: p\nartifacts: [a.onnx]\ndevices: [host, host]\n")
    with pytest.raises(UserError) as err:
        load_plan(tmp_path / "plan.yaml")
    assert "host listed more than once" in err.value.message and "now list" not in str(err.value)
    assert "Value error" not in str(err.value)


@pytest.mark.parametrize("name, text, key", [
    ("devices.yaml", 'devices:\n  - {id: ip, platform: ios, udid: x, app: "a\\0.ipa", bundle_id: a.b}\n', "devices[0].app"),
    ("devices.yaml", 'devices:\n  - {id: p, platform: android, serial: s, tools: {llama_main: "l\\0"}}\n',
     "devices[0].tools.llama_main"),
    ("plan.yaml", 'name: p\nartifacts: [a.onnx]\ninventory: "d\\0.yaml"\n', "inventory"),
    ("plan.yaml", 'name: p\naccuracy: {corpus: "c\\0", chains: [{name: c, model: m.pte}]}\n', "accuracy.corpus"),
    ("plan.yaml", 'name: p\naccuracy: {corpus: c, chains: [{name: c, model: "m\\0.pte"}]}\n', "accuracy.chains[0].model"),
])
def test_a_path_holding_a_nul_is_refused_with_its_key(tmp_path, name, text, key):
    """Catches a NUL in a path taken at load and ending later in 'ValueError: embedded null byte' (a traceback)."""
    write(tmp_path / name, text)
    with pytest.raises(UserError) as err:
        (load_inventory if name == "devices.yaml" else load_plan)(tmp_path / name)
    assert key in str(err.value) and "NUL" in str(err.value) and err.value.line is not None, err.value
