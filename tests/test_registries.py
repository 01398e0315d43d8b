"""The registries are the only lists: every registered module meets its contract, and a new platform is
one module plus one registry line (as Mobly's verify_controller_module checks controller modules)."""

from __future__ import annotations

import inspect
import sys
import types

import pytest

from harness.devices import PLATFORMS, platform_module
from harness.devices.base import BaseDevice, DeviceConfig
from harness.runners import RUNNERS, Measurement, runner_module
from tests.helpers import write


@pytest.mark.parametrize("name", sorted(PLATFORMS))
def test_every_platform_module_meets_the_device_contract(name):
    module = platform_module(name)
    assert issubclass(module.Config, DeviceConfig)
    assert issubclass(module.Device, BaseDevice)
    for method in ("reachable", "prepare", "facts", "push", "run", "sample_thermals", "close"):
        assert callable(getattr(module.Device, method)), method
    # run() takes a mandatory timeout: a hung runner becomes a failed cell, never a hung night.
    assert inspect.signature(module.Device.run).parameters["timeout_s"].default is inspect.Parameter.empty


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_every_runner_module_meets_the_runner_contract(name):
    module = runner_module(name)
    assert module.NAME == name
    tasks = getattr(module, "TASKS", (getattr(module, "TASK", None),))
    assert set(tasks) <= {"latency", "transcribe", "pipeline"} and tasks
    assert callable(module.supports) and callable(module.parse)
    # One result type for every runner's parser: what `harness parse` prints, and what measure() returns.
    assert inspect.signature(module.parse).return_annotation in ("Measurement", Measurement)
    assert isinstance(module.TOOL, str) and module.TOOL
    if "latency" in tasks:
        assert list(inspect.signature(module.measure).parameters) == ["device", "model_path", "artifact", "settings"]
    if "transcribe" in tasks or "pipeline" in tasks:
        assert list(inspect.signature(module.measure_chain).parameters) == ["device", "chain", "settings"]


def test_runner_tool_names_are_unique_and_harness_parse_offers_them_all():
    from harness.commands.parse import parse_tools as _parse_tools

    tools = [runner_module(name).TOOL for name in RUNNERS]
    assert len(tools) == len(set(tools))
    assert set(tools) <= set(_parse_tools())


def test_no_two_runners_claim_the_same_build_so_registry_order_never_decides():
    from itertools import product

    from harness.devices import PLATFORMS
    from harness.vocab import BACKENDS

    formats, stages = ("pte", "onnx", "mlpackage", "mlmodelc"), ("vad", "mel", "asr", "encoder", "decoder", "llm", "other")
    claimed = {}
    for platform, fmt, backend, stage, name in product(PLATFORMS, formats, BACKENDS, stages, RUNNERS):
        module = runner_module(name)
        artifact = types.SimpleNamespace(format=fmt, backend=backend, stage=stage)
        if module.supports(platform, artifact):
            for task in getattr(module, "TASKS", (getattr(module, "TASK", "latency"),)):
                claimed.setdefault((platform, fmt, backend, stage, task), []).append(name)
    overlaps = {k: v for k, v in claimed.items() if len(v) > 1}
    assert not overlaps, overlaps


def test_a_new_platform_is_one_module_and_one_registry_line(tmp_path, monkeypatch):
    """A throwaway 'watch' platform: its module defines Config and Device; registering it is one line."""
    module = types.ModuleType("harness_test_watch")

    class Config(DeviceConfig):
        strap: str = "sport"
        backends: list[str] = ["portable"]

    class WatchDevice(BaseDevice):
        def reachable(self):
            return True, "on the wrist"

    module.Config, module.Device = Config, WatchDevice
    monkeypatch.setitem(sys.modules, "harness_test_watch", module)

    from harness.errors import UserError
    from harness.inventory import load_inventory

    path = write(tmp_path / "devices.yaml", """
        devices:
          - {id: w1, platform: watch, strap: leather}
        """)
    with pytest.raises(UserError, match="unknown platform 'watch'"):  # not registered yet
        load_inventory(path)
    monkeypatch.setitem(PLATFORMS, "watch", "harness_test_watch")  # the one line
    inventory = load_inventory(path)
    (device,) = inventory.devices
    assert isinstance(device, Config) and device.strap == "leather" and device.platform == "watch"
    # Its own keys are checked like any platform's: an unknown one is named with its path.
    with pytest.raises(UserError, match=r"devices\[0\]\.buckle"):
        load_inventory(write(tmp_path / "bad.yaml", "devices:\n  - {id: w1, platform: watch, buckle: gold}\n"))
    watch = module.Device(device)
    assert watch.prepare() == (True, "nothing to prepare") and watch.reachable() == (True, "on the wrist")
    assert watch.pushes == [] and watch.drain_notes() == []


def test_the_iphone_result_parser_reads_the_contracts_own_example():
    import json
    from pathlib import Path

    from harness.runners import ios_app

    examples = Path(ios_app.__file__).parent / "ios_contract" / "examples"
    text = next(p for p in sorted(examples.glob("*.json")) if '"latency_ms"' in p.read_text()).read_text()
    m = ios_app.parse(text)
    assert m.samples_ms == json.loads(text)["latency_ms"] and m.load_ms == json.loads(text)["load_ms"]
    with pytest.raises(ValueError, match="not a benchmark app result"):
        ios_app.parse("{}")


def test_wildcard_entries_are_expanded_by_their_platform_everywhere_a_plan_names_devices(tmp_path, monkeypatch,
                                                                                          model_dir):
    """Android's Config owns `serial: '*'`: the latency devices and an accuracy section's own device list both
    see one device per attached phone, never a literal '*' sent to adb."""
    from harness.devices import android
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan
    from tests.helpers import chain_parts, copy_model

    monkeypatch.setattr(android, "attached_states", lambda port: {"127.0.0.1:7101": "device", "R5CT": "device"})
    write(tmp_path / "devices.yaml", """
        devices:
          - {id: host, platform: host}
          - {id: lab, platform: android, serial: '*', backends: [ort-cpu]}
        """)
    copy_model(model_dir, "tiny.onnx", tmp_path / "b", manifest={"model": "m", "stage": "vad", "backend": "ort-cpu",
                                                                 "quantization": "fp32"})
    import numpy as np
    import soundfile as sf

    write(tmp_path / "c" / "manifest.jsonl", '{"id": "u", "audio": "u.wav", "text": "x", "duration_s": 1}\n')
    sf.write(tmp_path / "c" / "u.wav", np.zeros(16000, dtype=np.float32), 16000, subtype="PCM_16")
    plan = write(tmp_path / "plan.yaml", """
        name: p
        inventory: devices.yaml
        devices: [lab]
        artifacts: [b/tiny.onnx]
        accuracy: {corpus: c, devices: [lab], chains: [{name: c, PARTS}]}
        """.replace("PARTS", chain_parts(model_dir, tmp_path / "parts")))
    p, _, lines = load_plan(plan)
    cells, skipped = expand_plan(p, plan, lines, load_inventory(tmp_path / "devices.yaml"))
    latency = {c.device.id for c in cells if c.task == "latency"}
    accuracy = {c.device.id for c in cells if c.task == "transcribe"} | {s.device_id for s in skipped}
    assert latency == {"lab-127.0.0.1-7101", "lab-R5CT"}
    assert accuracy == latency, (cells, skipped)
    assert all(c.device.serial != "*" for c in cells)
    host = load_inventory(tmp_path / "devices.yaml").get("host")
    assert host.expand() == [host]  # a platform without wildcards: itself
