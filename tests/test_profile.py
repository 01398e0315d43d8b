"""Operator profiles on the host: the parsers on real profiler output, and a profiling run through the runner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.profile.ort import ort_run_totals, parse_ort_profile
from harness.profile.records import PORTABLE_CPU


def _ort_profile(model: Path, folder: Path, runs: int) -> str:
    """A real ONNX Runtime profile of ``runs`` session.run calls of ``model``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / "ort")
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {"x": np.ones((1, 256), dtype=np.float32)})
    return Path(session.end_profiling()).read_text()


def test_ort_profile_gives_every_node_once_per_kept_run(model_dir, tmp_path):
    import onnx

    text = _ort_profile(model_dir / "tiny.onnx", tmp_path, runs=4)
    records = parse_ort_profile(text, skip_runs=1)
    nodes = {node.name for node in onnx.load(str(model_dir / "tiny.onnx")).graph.node}
    # ORT fuses Gemm+Relu into one kernel ("fused /0/Gemm"): each record is a node of the graph, run 3 times.
    assert {r.name.removeprefix("fused ") for r in records} <= nodes and records
    assert all(r.calls == 3 and r.backend == "CPUExecutionProvider" and r.op_type for r in records)
    assert [r.total_ms for r in records] == sorted((r.total_ms for r in records), reverse=True)
    # The warm-up run is left out: counted, it would make 4 calls per node (a parser that ignores skip_runs).
    assert all(r.calls == 4 for r in parse_ort_profile(text, skip_runs=0))
    totals = ort_run_totals(text, skip_runs=1)
    assert len(totals) == 3 and sum(totals) == pytest.approx(sum(r.total_ms for r in records))


def test_ort_profile_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="not an ONNX Runtime profile"):
        parse_ort_profile("Traceback (most recent call last):")
    with pytest.raises(ValueError, match="not a list"):
        parse_ort_profile('{"traceEvents": 3}')


class _LinearCumsum:
    """A linear layer XNNPACK takes, then a repeat and a cumsum it does not (left to ExecuTorch's portable kernels),
    big enough (512 x 256) that the portable part is most of the time, and a slice of one row out."""

    def __new__(cls):
        import torch

        class Module(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.linear = torch.nn.Linear(256, 256)

            def forward(self, x):
                return torch.cumsum(self.linear(x).repeat(512, 1), dim=0)[-1:]

        torch.manual_seed(0)
        return Module().eval()


@pytest.fixture(scope="module")
def partly_delegated(tmp_path_factory) -> Path:
    """A .pte (exported as the zoo exports, ETRecord beside it) whose linear runs in XNNPACK, its cumsum not
    (exported once and kept, under a fingerprint of this file: conftest's cached_export)."""
    from tests.conftest import cached_export

    def export(folder: Path) -> None:
        import torch

        from harness.zoo.export import export_pte_xnnpack

        export_pte_xnnpack(_LinearCumsum(), (torch.randn(1, 256),), folder / "partly.pte")

    return cached_export(tmp_path_factory, "partly", export, Path(__file__)) / "partly.pte"


def _etdump_events(pte: Path, folder: Path, runs: int, etrecord: Path | None):
    """A real ETDump of ``runs`` executions of ``pte``, read back by ExecuTorch's Inspector."""
    import torch
    from executorch.extension.pybindings import portable_lib

    from harness.profile.etdump import inspector_events
    from executorch.devtools import Inspector

    module = portable_lib._load_for_executorch(str(pte), enable_etdump=True, debug_buffer_size=0)
    for _ in range(runs):
        module.forward([torch.ones(1, 256)])
    module.write_etdump_result_to_file(str(folder / "run.etdp"))
    return inspector_events(Inspector(etdump_path=str(folder / "run.etdp"),
                                      etrecord=str(etrecord) if etrecord else None))


def test_zoo_export_writes_an_etrecord_beside_the_pte(partly_delegated):
    # Before, the zoo wrote the .pte alone: a profile could not name the ATen ops behind a delegate call.
    assert partly_delegated.with_suffix(".etrecord").is_file()


@pytest.mark.slow  # a .pte profiled through its ETDump
def test_etdump_gives_the_delegate_call_and_the_portable_kernel_apart(partly_delegated, tmp_path):
    from harness.profile.etdump import parse_et_events

    events = _etdump_events(partly_delegated, tmp_path, runs=4, etrecord=partly_delegated.with_suffix(".etrecord"))
    records = {r.name: r for r in parse_et_events(events, skip_runs=1)}
    assert {r.backend for r in records.values()} == {"XNNPACK", PORTABLE_CPU}
    assert "aten.linear.default" in {r.op_type for r in records.values() if r.backend == "XNNPACK"}
    assert records["cumsum.out"].backend == PORTABLE_CPU and records["cumsum.out"].op_type == "aten.cumsum.default"
    # XNNPACK's own per-op events lie inside its delegate call: counted too, the delegate's time would double.
    assert all(r.calls == 3 for r in records.values())


def test_same_kernel_twice_per_inference_is_told_apart_by_position():
    from harness.profile.etdump import EtEvent, et_run_totals, parse_et_events

    events = [EtEvent("native_call_add.out", None, ("aten.add.Tensor",), (1.0, 2.0)),
              EtEvent("DELEGATE_CALL", "XnnpackBackend", ("dq", "aten.linear.default", "dq"), (5.0, 7.0)),
              EtEvent("GEMM #1", "XnnpackBackend", (), (4.0, 6.0), delegated_op=True),
              EtEvent("native_call_add.out", None, ("aten.add.Tensor",), (3.0, 3.0))]
    records = {r.name: r for r in parse_et_events(events)}
    assert set(records) == {"add.out #1", "add.out #2", "XNNPACK delegate call"}
    assert records["add.out #1"].total_ms == 3.0 and records["XNNPACK delegate call"].median_ms == 6.0
    assert records["XNNPACK delegate call"].op_type == "dq, aten.linear.default"  # each kind named once
    # Per execution: the kernels and the delegate call, not the delegate's own inner event (GEMM #1).
    assert et_run_totals(events) == [9.0, 12.0] and et_run_totals(events, skip_runs=1) == [12.0]


def _host_device():
    from harness.devices import open_device
    from harness.devices.host import Config

    return open_device(Config(id="host", platform="host"))


@pytest.fixture(scope="module")
def pte_profiles(partly_delegated, heavier):
    """One profiling run on the host of the partly delegated build (``partly``) and one of the MLP's .pte (``mlp``:
    Linear, ReLU, Linear, all XNNPACK's), for the tests that only read them: a .pte's profiling run costs seconds,
    a process importing ExecuTorch's devtools.  Each test reading one takes this fixture first, which makes them
    one pytest-xdist group (tests/conftest.py): partly.pte was profiled on both workers, and tiny.pte once more
    for a full coverage alone."""
    from types import SimpleNamespace

    return SimpleNamespace(partly=_profiled(partly_delegated), mlp=_profiled(heavier / "mlp.pte"))


@pytest.mark.slow  # profiling runs on the host
@pytest.mark.parametrize("name", ["tiny.onnx", "partly.pte"])
def test_profiling_run_on_the_host_names_operators_and_times_itself(name, pte_profiles, model_dir):
    (result,) = _profiled(model_dir / name) if name.endswith(".onnx") else pte_profiles.partly
    assert result.iterations == 5 and len(result.latency_ms) == 5
    assert result.operators and all(r.calls % 5 == 0 for r in result.operators)
    backends = {r.backend for r in result.operators}
    assert backends == ({"CPUExecutionProvider"} if name.endswith(".onnx") else {"XNNPACK", PORTABLE_CPU})
    assert not result.notes  # the .pte's ETRecord was found beside it


def _plan_cells(tmp_path, model_dir, host_inventory, extra: str):
    from harness.inventory import load_inventory
    from harness.plan import expand_plan, load_plan
    from tests.helpers import copy_model, write

    copy_model(model_dir, "tiny.onnx", tmp_path / "builds")
    path = write(tmp_path / "plan.yaml", f"name: p\ninventory: devices.yaml\nartifacts: [builds/*]\n{extra}")
    plan, _, lines = load_plan(path)
    return expand_plan(plan, path, lines, load_inventory(host_inventory))[0]


def test_profile_runs_is_one_per_cell_unless_the_plan_says_otherwise(tmp_path, model_dir, host_inventory):
    # Before, the plan had no such key (refused as unknown) and cells carried no profiling runs.
    (cell,) = _plan_cells(tmp_path, model_dir, host_inventory, "")
    assert cell.settings.profile_runs == 1
    (cell,) = _plan_cells(tmp_path, model_dir, host_inventory, "profile_runs: 0\n")
    assert cell.settings.profile_runs == 0


def test_negative_profile_runs_is_refused_at_its_line(tmp_path, model_dir, host_inventory):
    from harness.errors import UserError

    with pytest.raises(UserError) as err:
        _plan_cells(tmp_path, model_dir, host_inventory, "profile_runs: -1\n")
    assert err.value.line == 4 and "profile_runs" in str(err.value)


def test_an_etrecord_beside_a_build_is_not_taken_for_a_build(tmp_path, model_dir, host_inventory):
    # builds/* matched tiny.etrecord too, and the plan refused it as a file of unknown format.
    (tmp_path / "builds").mkdir()
    (tmp_path / "builds" / "tiny.etrecord").write_bytes(b"PK\x03\x04 not a build")
    (cell,) = _plan_cells(tmp_path, model_dir, host_inventory, "")
    assert cell.artifact.path.name == "tiny.onnx"


def _run_tiny_plan(tmp_path, model_dir, host_inventory, partly_delegated, profile_runs: int, runs: int = 1):
    from harness.run.engine import run_plan
    from harness.store import Store
    from tests.helpers import copy_model, write

    import onnx

    model = onnx.load(str(model_dir / "tiny.onnx"))
    model.graph.node[-1].name = HOSTILE_NODE  # node names are the exporter's (or anyone's) text
    (tmp_path / "builds").mkdir()
    onnx.save(model, str(tmp_path / "builds" / "tiny.onnx"))
    copy_model(partly_delegated.parent, "partly.pte", tmp_path / "builds", manifest={
        "model": "partly", "stage": "vad", "backend": "xnnpack", "quantization": "fp32"})
    copy_model(partly_delegated.parent, "partly.etrecord", tmp_path / "builds")
    (tmp_path / "devices.yaml").write_text(host_inventory.read_text())
    plan = write(tmp_path / "plan.yaml", f"""
        name: profiled
        inventory: devices.yaml
        artifacts: [builds/*]
        warmup_iterations: 1
        iterations: 4
        runs: {runs}
        profile_runs: {profile_runs}
        threads: 1
        timeout_s: 120
        """)
    outcome = run_plan(plan, tmp_path / "h.db")
    with Store(tmp_path / "h.db") as store:
        return {c.artifact["format"]: c for c in store.cells(outcome.run_id)}, outcome.run_id


HOSTILE_NODE = "<img src=x onerror=alert(1)>"


@pytest.mark.slow  # profiling runs on the host
def test_a_run_stores_each_cells_profile_apart_from_its_samples(tmp_path, model_dir, host_inventory,
                                                               partly_delegated, capsys, monkeypatch):
    # Before, a cell had no profiling run and the store had nowhere to keep one.
    from harness.report.html import write_report

    # One measured run a cell (two before): the profiling run's four inferences would double the samples all the same.
    cells, run_id = _run_tiny_plan(tmp_path, model_dir, host_inventory, partly_delegated, profile_runs=1)
    for fmt, backends in (("onnx", {"CPUExecutionProvider"}), ("pte", {"XNNPACK", PORTABLE_CPU})):
        cell = cells[fmt]
        assert cell.status == "ok" and len(cell.samples_ms) == 1 * 4  # the profiling run adds no sample
        (profile,) = cell.profiles
        assert profile.iterations == 4 and len(profile.latency_ms) == 4
        assert {r.backend for r in profile.operators} == backends
        assert [r.total_ms for r in profile.operators] == sorted((r.total_ms for r in profile.operators), reverse=True)
    assert "aten.cumsum.default" in {r.op_type for r in cells["pte"].profiles[0].operators}
    assert HOSTILE_NODE in {r.name for r in cells["onnx"].profiles[0].operators}
    # The report shows each cell's slowest operators and its coverage; the partly delegated build is flagged.
    page = write_report(tmp_path / "h.db", run_id, tmp_path / "report").read_text()
    assert page.count("slowest operators") == 2 and "cumsum.out" in page
    assert "CPU fallback: " in page and "ran on portable CPU, not XNNPACK" in page
    assert "CPUExecutionProvider ran 100% of the profiled time" in page  # an ORT CPU build has no fallback
    assert HOSTILE_NODE not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    # The latency table's coverage column, the fallback as text (before: no such column, the flag in a hover only);
    # the delegate call's ATen ops as text under its name (before: in its title alone); what the profiled total is.
    import html
    import re

    from harness.report.model import PROFILED_TOTAL_MEANING

    rows = re.findall(r'<tr id="row-cell-\d+">(.*?)</tr>', page, re.S)
    assert any(">CPUExecutionProvider 100%</span>" in row for row in rows)
    assert any(re.search(r">XNNPACK \d+% ⚑ CPU fallback \d+%</span>", row) for row in rows)
    assert re.search(r'<small class="ops">[^<]*aten\.cumsum\.default', page)
    assert PROFILED_TOTAL_MEANING in html.unescape(page)
    # Every operator row exports beside the cell's identity (before, an export held samples alone).
    import pandas as pd

    from harness.cli import main

    # Through the command (a dropped --what would export the samples); et-v3 records hold no operators.
    monkeypatch.chdir(tmp_path)
    assert main(["export", run_id, "--db", str(tmp_path / "h.db"), "--what", "operators", "--format", "et-v3"]) == 2
    assert main(["export", run_id, "--db", str(tmp_path / "h.db"), "--what", "operators", "--json"]) == 0
    written = json.loads(capsys.readouterr().out)
    out, rows = tmp_path / Path(written["path"]), written["rows"]
    assert out.name == f"{run_id}-operators.csv"
    frame = pd.read_csv(out)
    assert rows == len(frame) == sum(len(c.profiles[0].operators) for c in cells.values())
    assert set(frame["ran_on"]) == {"CPUExecutionProvider", "XNNPACK", PORTABLE_CPU}
    assert set(frame.loc[frame["format"] == "pte", "backend"]) == {"xnnpack"}


@pytest.mark.slow  # profiling runs on the host
def test_profile_runs_zero_profiles_nothing(tmp_path, model_dir, host_inventory, partly_delegated):
    # One run a cell: how many runs are measured is not what profile_runs: 0 is about (one round less to wait for).
    cells, _ = _run_tiny_plan(tmp_path, model_dir, host_inventory, partly_delegated, profile_runs=0, runs=1)
    assert len(cells) == 2 and all(c.status == "ok" and c.profiles == [] for c in cells.values())
    # No profiling step was scheduled at all (an empty one left no profile but still cost a step and its notes).
    assert all("profiled" not in c.extra and "[profiling]" not in (c.log or "") for c in cells.values())


def _profiled(path: Path) -> list:
    from harness.artifacts import load_artifact
    from harness.runners import RunSettings
    from harness.runners.host_python import profile

    device = _host_device()
    try:
        return [profile(device, str(path), load_artifact(path),
                        RunSettings(warmup_iterations=2, iterations=5, timeout_s=120, threads=1))]
    finally:
        device.close()


@pytest.mark.slow  # profiling runs on the host
def test_a_build_the_delegate_took_only_partly_is_flagged_and_a_full_one_is_not(pte_profiles):
    from harness.profile.coverage import coverage, on_fallback
    from harness.profile.records import merged

    partly = pte_profiles.partly
    cover = coverage(partly, "xnnpack")
    # The 512 x 256 repeat and cumsum ran on the portable kernels: most of the time, far above the 10% line.
    assert cover.intended == "XNNPACK" and cover.flagged and cover.fallback_time_share > 0.5
    assert 0 < cover.operator_share < 1 and cover.time_share + cover.fallback_time_share == pytest.approx(1)
    assert {r.name for r in on_fallback(merged(partly), cover)} == {"repeat.out", "cumsum.out"}
    full = coverage(pte_profiles.mlp, "xnnpack")  # Linear, ReLU, Linear: all XNNPACK's
    assert not full.flagged and full.time_share == full.operator_share == 1.0


def test_coverage_of_an_ort_build_compares_with_its_execution_provider():
    from harness.profile.coverage import coverage
    from harness.profile.records import OperatorTime, Profile

    ops = [OperatorTime("conv", "QNNExecutionProvider", 2, 8.0, 4.0), OperatorTime("topk", "CPUExecutionProvider",
                                                                                  2, 2.0, 1.0)]
    cover = coverage([Profile(iterations=2, operators=ops)], "ort-qnn")
    assert cover.flagged and cover.fallback_time_share == pytest.approx(0.2) and cover.operator_share == 0.5
    # A CPU build has no fallback: all of it ran where it was meant to.
    assert not coverage([Profile(iterations=2, operators=ops[1:])], "ort-cpu").flagged
    assert coverage([], "xnnpack") is None


def _op(name: str, ms: float, backend: str = "XNNPACK"):
    from harness.profile.records import CellOperator

    return CellOperator(name=name, backend=backend, op_type="", calls_per_inference=1, per_inference_ms=ms,
                        median_ms=ms)


def test_a_heavier_layer_is_named_first_and_explains_its_share_of_the_change():
    from harness.profile.diff import operator_diff

    before = [_op("embed", 1.0), _op("layer1", 2.0), _op("layer2", 2.0), _op("layer3", 2.0), _op("head", 1.0)]
    # layer2 got 3 ms heavier (injected), the others a little: +0.1, +0.2, +0.05, +0.15 ms; the change is +3.5 ms.
    after = [_op("embed", 1.1), _op("layer1", 2.2), _op("layer2", 5.0), _op("layer3", 2.05), _op("head", 1.15)]
    diff = operator_diff(before, after)
    assert [c.name for c in diff.top] == ["layer2", "layer1", "head"]
    assert diff.change_ms == pytest.approx(3.5)
    assert diff.explained_share == pytest.approx((3.0 + 0.2 + 0.15) / 3.5)
    assert diff.reading() == ("top 3 operators explain 96% of the +3.5 ms sum of the operators' median changes: "
                              "layer2 (+3 ms), "
                              "layer1 (+0.2 ms), head (+0.15 ms); others +0.15 ms")


def test_an_operator_only_one_build_has_counts_whole_and_no_change_says_so():
    from harness.profile.diff import operator_diff

    diff = operator_diff([_op("gemm", 4.0)], [_op("gemm", 1.0), _op("dequant", 0.5, "portable CPU")])
    assert diff.change_ms == pytest.approx(-2.5) and [c.name for c in diff.top] == ["gemm"]
    # gemm alone moved -3 ms of a -2.5 ms change: before, "explain 120%"; now no share, and the added one is named.
    assert diff.explained_share is None and [c.name for c in diff.added] == ["dequant"]
    assert diff.reading() == ("gemm (-3 ms) moved more than the whole -2.5 ms sum of the operators' median "
                              "changes (other operators moved the other way); added: dequant (+0.5 ms)")
    assert operator_diff([_op("gemm", 4.0)], [_op("gemm", 4.0)]).reading() == "no change in profiled time"


def test_the_int4_against_int8_row_names_the_operators_that_explain_the_change():
    from types import SimpleNamespace

    from harness.report.quant import quant_pairs

    def view(quant: str, layer_ms: float, p50_ms: float):
        runs = [{"run_index": i, "status": "ok", "p50_ms": p50_ms * (1 + i / 100), "p95_ms": 2 * p50_ms}
                for i in range(3)]
        artifact = {"model": "m", "stage": "asr-encoder", "format": "pte", "backend": "xnnpack",
                    "quantization": quant, "size_bytes": 100}
        return SimpleNamespace(cell=SimpleNamespace(device_id="host", artifact=artifact, runs=runs, profiles=[]),
                               summary=SimpleNamespace(p50_ms=p50_ms),
                               role="", operators=[_op("layer", layer_ms), _op("head", 1.0)])

    data = SimpleNamespace(cells=[view("int8", 2.0, 3.0), view("int4", 5.0, 6.0)], comparisons=[])
    (pair,) = quant_pairs(data)
    # Before, the row had latency, WER and size only.
    assert pair.operators.reading() == ("top operator explains 100% of the +3 ms sum of the operators' median changes: "
                                       "layer (+3 ms)")


@pytest.fixture(scope="module")
def heavier(tmp_path_factory) -> Path:
    """An MLP big enough (64 x 512 -> 2048 -> 512) that a call's own Python overhead is a sliver of its time, as
    .onnx and as an XNNPACK .pte (exported once and kept: conftest's cached_export)."""
    from tests.conftest import cached_export

    def export(out: Path) -> None:
        import torch

        from harness.zoo.export import export_onnx, export_pte_xnnpack

        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 512)).eval()
        example = (torch.randn(64, 512),)
        export_onnx(module, example, out / "mlp.onnx", ["x"], ["y"])
        export_pte_xnnpack(module, example, out / "mlp.pte")

    return cached_export(tmp_path_factory, "heavier", export, Path(__file__))


@pytest.mark.slow  # profiling runs on the host
@pytest.mark.parametrize("name", ["mlp.onnx", "mlp.pte"])
def test_the_operators_account_for_the_profiling_runs_own_latency(name, pte_profiles, heavier):
    from harness.profile.records import accounted_share, merged

    (profile,) = _profiled(heavier / name) if name.endswith(".onnx") else pte_profiles.mlp
    assert len(profile.operators_ms) == len(profile.latency_ms) == profile.iterations
    # Within 10%, inference by inference: the operators are where the time went, not a fraction of it (a parser
    # that skipped a kind of event, or counted XNNPACK's inner events besides its delegate call, would be far off).
    assert accounted_share(profile) == pytest.approx(1, abs=0.10)
    # The records add up to the same time as the per-inference sums (the same events, aggregated another way).
    assert sum(r.per_inference_ms for r in merged([profile])) == pytest.approx(
        sum(profile.operators_ms) / profile.iterations)


def test_without_an_etrecord_a_delegate_call_is_unnamed_and_counts_as_the_builds_delegate(partly_delegated,
                                                                                        tmp_path):
    from harness.profile.coverage import coverage
    from harness.profile.etdump import parse_et_events
    from harness.profile.records import UNNAMED_DELEGATE, Profile

    # Without the ETRecord the Inspector names no backend for a delegate call: stored as None it broke the run.
    records = parse_et_events(_etdump_events(partly_delegated, tmp_path, runs=3, etrecord=None), skip_runs=1)
    assert {r.backend for r in records} == {UNNAMED_DELEGATE, PORTABLE_CPU}
    cover = coverage([Profile(iterations=2, operators=records)], "xnnpack")
    assert cover.time_share + cover.fallback_time_share == pytest.approx(1) and cover.time_share > 0


def test_a_profile_with_a_mistyped_operator_is_refused_before_the_store():
    from harness.runners.host_python import parse_profile
    from harness.wire import RESULT_PREFIX

    broken = {"profile": {"iterations": 1, "latency_ms": [1.0], "operators_ms": [1.0], "operators": [
        {"name": "x", "backend": None, "calls": 1, "total_ms": 1.0, "median_ms": 1.0, "op_type": ""}]}}
    import json

    with pytest.raises(ValueError, match="mistyped"):
        parse_profile(RESULT_PREFIX + json.dumps(broken))


def _matmul_chain(path: Path, widths: list[int]) -> Path:
    """A real ONNX chain of MatMuls named as torch's exporter names them (/linear_<i>/MatMul), x (64, widths[0])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    nodes, weights, previous = [], [], "x"
    for i, (rows, cols) in enumerate(zip(widths, widths[1:])):
        weights.append(numpy_helper.from_array(rng.random((rows, cols), dtype=np.float32), f"w{i}"))
        nodes.append(helper.make_node("MatMul", [previous, f"w{i}"], [f"y{i}"], name=f"/linear_{i}/MatMul"))
        previous = f"y{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, widths[0]])],
                              [helper.make_tensor_value_info(previous, TensorProto.FLOAT, [64, widths[-1]])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _profiled_ort(model: Path, folder: Path, shape: tuple[int, ...], runs: int = 6):
    """A real ORT profiling run of ``model`` as a stored Profile (the first call a warm-up)."""
    import onnxruntime as ort

    from harness.profile.records import Profile

    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(folder / model.stem)
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    for _ in range(runs):
        session.run(None, {session.get_inputs()[0].name: np.ones(shape, dtype=np.float32)})
    text = Path(session.end_profiling()).read_text()
    return Profile(iterations=runs - 1, operators=parse_ort_profile(text, 1), operators_ms=ort_run_totals(text, 1))


def test_operators_pair_across_a_dynamic_quantized_and_a_float_build(tmp_path):
    # The tester's case: INT8 names its layer /linear_2/MatMul_quant (DynamicQuantizeMatMul), the float build
    # /linear_2/MatMul.  Matched by name, nothing paired: each side's operators counted whole, the top 3 "explained"
    # far over 100% of the change.
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from harness.profile.diff import operator_diff
    from harness.profile.records import merged, profile_noise_ms

    quantize_dynamic(str(_matmul_chain(tmp_path / "base.onnx", [256, 256, 256, 256])), str(tmp_path / "int8.onnx"),
                     weight_type=QuantType.QInt8)
    heavier = _matmul_chain(tmp_path / "float.onnx", [256, 256, 256, 16384])  # its last layer 64x heavier
    a = _profiled_ort(tmp_path / "int8.onnx", tmp_path, (64, 256))
    b = _profiled_ort(heavier, tmp_path, (64, 256))
    assert "DynamicQuantizeMatMul" in {r.op_type for r in a.operators}  # really two different graphs
    diff = operator_diff(merged([a]), merged([b]), noise_ms=max(profile_noise_ms([a]), profile_noise_ms([b])))
    first = diff.top[0]
    assert (first.a_name, first.b_name) == ("/linear_2/MatMul_quant", "/linear_2/MatMul")
    # A share is 0-1, "a little over 1 within noise_ms" (OperatorDiff): the top operator carrying all of the change
    # read 1.0000000000000002 once, and `<= 1` failed on float rounding.
    assert 0 < diff.explained_share <= 1 + diff.noise_ms / abs(diff.change_ms) and not diff.added and not diff.removed
    assert diff.reading().startswith("top ") and "(was /linear_2/MatMul_quant)" in diff.reading()


def test_pairing_key_takes_off_quantizer_exporter_and_fusion_marks():
    from harness.profile.diff import pairing_key

    # The tester's INT8/INT4 names, and ORT's fused names, each pair with the plain layer's.
    assert pairing_key("node_linear_32_MatMul_quant") == pairing_key("node_linear_32") == "node_linear_32"
    assert pairing_key("fused /enc/Gemm") == pairing_key("/enc/Gemm")
    assert pairing_key("/enc/Gather_1/GatherSliceToSplitFusion") == pairing_key("/enc/Gather_1")
    assert pairing_key("/enc/MatMul_Q4") == pairing_key("/enc/MatMul")
    assert pairing_key("/linear_1/MatMul") != pairing_key("/linear_10/MatMul")


def test_a_change_within_the_profiles_noise_is_not_put_on_operators():
    from harness.profile.diff import operator_diff

    diff = operator_diff([_op("a", 1.0), _op("b", 1.0)], [_op("a", 1.2), _op("b", 0.9)], noise_ms=0.2)
    # +0.1 ms against a spread of 0.2 ms: before, "top operator explains 200%" of a change that is noise.
    assert diff.explained_share is None and not diff.top
    assert diff.reading() == ("the operators do not explain this change (+0.1 ms profiled, within the profiles' "
                              "own spread of ±0.2 ms)")


def test_an_operator_only_one_build_has_is_listed_as_added_or_removed():
    from harness.profile.diff import operator_diff

    a = [_op("layer", 2.0), _op("old_norm", 0.3)]
    b = [_op("layer_quant", 3.0), _op("dequant", 0.5, "portable CPU")]
    diff = operator_diff(a, b)
    # Before, neither list existed: an operator one side lacked was only a delta among the others.
    assert [c.name for c in diff.added] == ["dequant"] and [c.name for c in diff.removed] == ["old_norm"]
    assert [c.label() for c in diff.top] == ["layer_quant (was layer)"]
    assert diff.reading().endswith("; added: dequant (+0.5 ms); removed: old_norm (-0.3 ms)")


def _if_model(path: Path) -> Path:
    """The tester's model: ReduceSum -> Greater -> If, whose then-branch is a 512x512 MatMul named heavy_matmul."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).random((512, 512), dtype=np.float32), "w")
    out = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, None)  # noqa: E731
    then = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="heavy_matmul")], "then", [],
                             [out("y")])
    other = helper.make_graph([helper.make_node("Identity", ["x"], ["z"], name="light")], "else", [], [out("z")])
    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], name="sum", keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"], name="positive"),
             helper.make_node("If", ["c"], ["out"], name="branch", then_branch=then, else_branch=other)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 512])],
                              [out("out")], [weight, numpy_helper.from_array(np.array(0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_subgraphs_nodes_are_nested_under_their_if_and_counted_once(tmp_path):
    from harness.profile.coverage import coverage
    from harness.profile.records import merged, top_level
    from harness.report.model import operator_rows

    profile = _profiled_ort(_if_model(tmp_path / "if.onnx"), tmp_path, (1, 512))
    names = {r.name for r in profile.operators}
    # Before, heavy_matmul was a top-level operator beside its If, whose time already holds it: counted twice.
    assert names == {"sum", "positive", "branch", "branch › heavy_matmul"}
    by_name = {r.name: r for r in profile.operators}
    assert by_name["branch › heavy_matmul"].total_ms <= by_name["branch"].total_ms
    operators = merged([profile])
    top_ms = sum(r.per_inference_ms for r in top_level(operators))
    assert top_ms == pytest.approx(sum(profile.operators_ms) / profile.iterations)  # totals: top level only
    assert sum(profile.operators_ms) / profile.iterations < sum(r.per_inference_ms for r in operators)
    rows = operator_rows(operators)
    assert sum(share for r, share in rows if not r.nested) == pytest.approx(1)
    # The subgraph's node comes right after its If in the table.
    order = [r.name for r, _ in rows]
    assert order.index("branch › heavy_matmul") == order.index("branch") + 1
    assert coverage([profile], "ort-cpu").operator_share == 1  # of the 3 top-level operators


def test_an_operator_card_reads_the_median_inference_and_the_profiled_total_beside_the_p50():
    from types import SimpleNamespace

    from harness.profile.records import OperatorTime, Profile
    from harness.report.model import CellView

    # Four profiled inferences of one operator: a 10 ms first call, then 1 ms each.  total/calls read 3.25 ms per
    # inference (before: the table's only figure); the median inference is 1 ms.
    slow_first = Profile(iterations=4, operators_ms=[10.0, 1.0, 1.0, 1.0],
                         operators=[OperatorTime("gemm", "CPUExecutionProvider", 4, 13.0, 1.0, "Gemm"),
                                    OperatorTime("tiny", "CPUExecutionProvider", 4, 0.016, 0.004, "Add")])
    view = CellView(cell=SimpleNamespace(profiles=[slow_first]), summary=SimpleNamespace(p50_ms=0.9))
    (gemm, _), (tiny, tiny_share) = view.top_operators
    assert gemm.median_per_inference_ms == pytest.approx(1.0) and gemm.per_inference_ms == pytest.approx(3.25)
    assert view.profiled_against_p50 == "profiled total 1.00 ms vs cell P50 0.900 ms"
    # A sub-0.01 ms operator reads to 3 significant figures, not "0.00" beside its share.
    from harness.report.model import op_ms

    assert op_ms(tiny.median_per_inference_ms) == "0.00400" and tiny_share > 0


def test_a_long_or_bidi_laden_node_name_is_cut_and_escaped():
    from harness.profile.records import SHOWN_NAME_MAX_CHARS, shown_name

    shown = shown_name("evil\u202e" + "x" * 5000)
    # Before, the 5000 characters and the raw U+202E (which reverses what follows on screen) went into the table.
    assert len(shown) == SHOWN_NAME_MAX_CHARS and shown.endswith("…") and shown.startswith("evil\\u202e")
    assert shown_name("/enc/Gemm") == "/enc/Gemm"


class _PhoneFiles:
    """A phone's shell as read_back uses it: stat gives the file's size, base64 its (possibly cut) contents."""

    def __init__(self, size_bytes: int, data: bytes) -> None:
        self.size_bytes, self.data = size_bytes, data

    def run(self, argv, timeout_s, env=None):
        import base64

        from harness.devices.base import CommandResult

        out = str(self.size_bytes) if argv[0] == "stat" else base64.encodebytes(self.data).decode()
        return CommandResult(argv, 0, out, "", 0.01)


def test_a_profile_file_read_back_from_a_phone_is_whole_or_refused_with_its_reason():
    from harness.runners.base import RunnerFailure
    from harness.runners.phone_files import read_back

    data = bytes(range(256)) * 40
    assert read_back(_PhoneFiles(len(data), data), "p/run.etdump", "the ETDump") == data
    # Output cut on its way back (the controller keeps 16 MiB of a stream): a cut file is never parsed as a whole.
    with pytest.raises(RunnerFailure, match=r"did not come back whole from the phone \(5120 of 10240 bytes\)"):
        read_back(_PhoneFiles(len(data), data[: len(data) // 2]), "p/run.etdump", "the ETDump")
    # Too big to come back through the shell at all: said before any of it is read, with what to lower.
    with pytest.raises(RunnerFailure, match=r"the ETDump on the phone is 13\.0 MiB.*plan key iterations"):
        read_back(_PhoneFiles(13 * 2**20, b""), "p/run.etdump", "the ETDump")


def test_a_called_change_names_its_operators_even_when_one_moved_more_than_the_whole_change():
    """A regression whose heavier layer moved more than the whole change (the other layers' noise went the other
    way) lost its operators altogether: the nightly's check said how much slower and never where.  Now the layer
    is named, without a share over 100%; a change within the profiles' own noise still names none."""
    from types import SimpleNamespace

    from harness.nightly.checks import _explained
    from harness.report.verdict import Check

    def view(ops):
        return SimpleNamespace(operators=ops, cell=SimpleNamespace(profiles=[]), summary=None)

    check = _explained(Check("host", "enc", "latency", "regression", "P95 +3.4 ms", {}),
                       view([_op("layer2", 1.0), _op("layer1", 2.0)]), view([_op("layer2", 4.4), _op("layer1", 1.6)]))
    assert check.data["operators"]["explained_share"] is None
    assert [t["name"] for t in check.data["operators"]["top"]] == ["layer2"]
    assert check.detail.startswith("P95 +3.4 ms; per operator (profiling runs): layer2 (+3.4 ms) moved more than")
    quiet = _explained(Check("host", "enc", "latency", "regression", "P95 +3.4 ms", {}),
                       view([_op("layer2", 1.0)]), view([_op("layer2", 1.0)]))
    assert "operators" not in quiet.data and quiet.detail == "P95 +3.4 ms"
