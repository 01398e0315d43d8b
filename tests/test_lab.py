"""A lab of several controller hosts on Ray: a real local Ray cluster (a head and another node process), each
node advertising its own simulated phones behind the real adb server; a node killed mid-run, then --resume."""

from __future__ import annotations

import time

import pytest

from harness.sim.sandbox import stand_in
from harness.lab import device_resource, measurer
from harness.run.engine import run_plan
from harness.store import Store
from tests.helpers import copy_model, write

pytestmark = pytest.mark.slow
# Runs per device: the node dies after p2's first, so p2 keeps one and loses one.  The second run of p2 and of p3
# (the node's other phone) is still in flight when the node dies, however late the kill lands: their runners hang
# from their second measured run (_hang_from_second_run).  A third run per device only made each night longer.
RUNS = 2
ITERATIONS = 3


# Ray's own node health check, faster than its defaults (a first check after 5 s, then every 3 s): the killed node
# is declared dead, and the node added after it counted, seconds sooner (call 51 s -> 42-44 s).  A live node still
# has 2 s to answer each check, 4 misses in a row, so a busy machine does not lose one.
HEALTH_CHECK = {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500, "health_check_timeout_ms": 2000,
                "health_check_failure_threshold": 4}


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")  # the [lab] extra; `make test` installs it, so this never skips there
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "resources": {device_resource("p1"): 1},
                                                            "_system_config": HEALTH_CHECK})
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def _lab(tmp_path, adb_server, phones, model_dir, ids=("p1", "p2", "p3", "p4")):
    """Simulated phones whose runners wait on their own 'silicon' (20 ms an inference), one plan over them all;
    no operator-profile run (another runner process per device that nothing here reads).  Returns the plan and
    each device's simulated phone."""
    lines, sims = [], {}
    tool = write(tmp_path / "tools" / "executor_runner", stand_in())
    for device_id in ids:
        server, serial = phones()
        server.phone.silicon_ms = 20.0
        sims[device_id] = server.phone
        lines.append(f"  - {{id: {device_id}, platform: android, serial: '{serial}', adb_port: {adb_server.port}, "
                     f"backends: [xnnpack], tools: {{executor_runner: {tool}}}}}")
    write(tmp_path / "devices.yaml", "devices:\n" + "\n".join(lines) + "\n")
    copy_model(model_dir, "tiny.pte", tmp_path / "builds", manifest={"model": "tiny", "stage": "vad",
                                                                     "backend": "xnnpack", "quantization": "fp32"})
    return write(tmp_path / "plan.yaml", f"""
        name: lab
        inventory: devices.yaml
        artifacts: [builds/tiny.pte]
        warmup_iterations: 1
        iterations: {ITERATIONS}
        runs: {RUNS}
        thermal_period_s: 0.5
        timeout_s: 60
        profile_runs: 0
        """), sims


class _HangFromSecondRun(list):
    """A simulated phone's record of its binaries' invocations from now on (Phone.invocations, appended to just
    before the phone looks at its faults): from the second measured run on, the runner hangs until its process is
    killed (Faults.hang_runner), so that run is in flight when its node dies."""

    def __init__(self, phone):
        super().__init__()
        self.phone = phone

    def append(self, argv):
        super().append(argv)
        self.phone.faults.hang_runner = sum("--model_path" in a for a in self) >= 2


def _hang_from_second_run(phone) -> None:
    phone.faults.hang_runner = False
    phone.invocations = _HangFromSecondRun(phone)


def _by_device(db, run_id):
    with Store(db) as store:
        cells = {c.device_id: c for c in store.cells(run_id)}
        devices = {d["device_id"]: d for d in store.devices(run_id)}
    return cells, devices


class _KillNodeAfter:
    """Progress listener: once ``device`` has finished one run, kill the Ray node that holds it."""

    def __init__(self, cluster, node, device):
        self.cluster, self.node, self.device, self.killed_at = cluster, node, device, None

    def start(self, run_id, total, already_done): pass
    def device_ready(self, facts): pass
    def cell_started(self, spec): pass
    def profiling(self, spec, running): pass

    def cell_finished(self, spec, result):
        if spec.device.id == self.device and self.killed_at is None:
            self.killed_at = time.time()
            self.cluster.remove_node(self.node, allow_graceful=False)


def test_each_device_is_measured_on_the_node_that_holds_it_and_a_dead_node_resumes(
        tmp_path, adb_server, phones, model_dir, ray_cluster):
    plan, sims = _lab(tmp_path, adb_server, phones, model_dir)
    node = ray_cluster.add_node(num_cpus=1, resources={device_resource("p2"): 1, device_resource("p3"): 1})
    ray_cluster.wait_for_nodes()
    db = tmp_path / "lab.db"

    # One night across the lab: p1 on the head, p2 and p3 on the other node; p4 is advertised by no node.
    outcome = run_plan(plan, db, measure=measurer(ray_cluster.address))
    cells, devices = _by_device(db, outcome.run_id)
    assert {d: c.status for d, c in cells.items()} == {"p1": "ok", "p2": "ok", "p3": "ok", "p4": "failed"}
    assert "harness lab join" in cells["p4"].reason
    assert all(len(cells[d].runs) == RUNS and len(cells[d].samples_ms) == RUNS * ITERATIONS
               for d in ("p1", "p2", "p3"))
    controller = {d: devices[d]["facts"]["controller"] for d in ("p1", "p2", "p3")}
    assert controller["p2"] == controller["p3"] != controller["p1"]  # which node ran what, stored with the facts

    # The second node dies once p2 has finished one run: p2 and p3 lose what they had not finished, p1 goes on.
    for device_id in ("p2", "p3"):
        _hang_from_second_run(sims[device_id])
    killer = _KillNodeAfter(ray_cluster, node, "p2")
    outcome = run_plan(plan, db, progress=killer, measure=measurer(ray_cluster.address))
    cells, _ = _by_device(db, outcome.run_id)
    assert cells["p1"].status == "ok" and len(cells["p1"].runs) == RUNS
    assert cells["p2"].status == "lost" and cells["p3"].status == "lost"
    assert "controller node lost" in cells["p2"].reason
    # A run's identity: its index and its own median (a run measured again would not repeat it to the last bit).
    kept = {d: {(r["run_index"], r["p50_ms"]) for r in cells[d].runs if r["status"] == "ok"}
            for d in ("p1", "p2", "p3")}
    assert 1 <= len(kept["p2"]) < RUNS and len(kept["p1"]) == RUNS

    # The phones come back on another node: --resume measures only what is missing, there.
    for device_id in ("p2", "p3"):
        sims[device_id].faults.hang_runner = False
        sims[device_id].invocations = []
    ray_cluster.add_node(num_cpus=1, resources={device_resource("p2"): 1, device_resource("p3"): 1})
    ray_cluster.wait_for_nodes()
    resumed = run_plan(plan, db, resume=outcome.run_id, measure=measurer(ray_cluster.address))
    assert resumed.run_id == outcome.run_id
    cells, _ = _by_device(db, outcome.run_id)
    for d in ("p2", "p3"):
        assert cells[d].status == "ok" and sorted(r["run_index"] for r in cells[d].runs) == list(range(RUNS))
        assert all(r["status"] == "ok" for r in cells[d].runs)
    for d in ("p1", "p2", "p3"):  # the runs finished before the node died are the same rows, not measured again
        assert kept[d] <= {(r["run_index"], r["p50_ms"]) for r in cells[d].runs}
    assert {(r["run_index"], r["p50_ms"]) for r in cells["p1"].runs} == kept["p1"]
