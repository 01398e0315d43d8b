"""How a lab's wall time grows with its phones: the same plan on 1, 2 and 4 simulated phones.

Each phone is the simulated SM8650 behind Debian's real adb server, its runner "computing" on
the phone's own silicon (every inference waits --silicon-ms; the controller's CPU is not what a
lab of phones spends).  For each size the plan is measured three ways:

* serial:   one phone after another (what a one-device-at-a-time harness does);
* parallel: one `harness run` over every phone, one worker per phone;
* lab:      `harness run --lab` on a local Ray cluster of two nodes, phones split between them
            (skipped without the [lab] extra).

Prints wall times and each one's ratio to one phone (target: 4 phones in parallel <= 1.3x one).

    python benchmarks/lab_scaling.py [--runs 3] [--iterations 20] [--silicon-ms 80]

(20 inferences of 80 ms: a Whisper-encoder-sized run on a phone's CPU, about 2 s.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
SIZES = (1, 2, 4)


def _tiny_pte(out: Path) -> None:
    import torch

    from harness.zoo.export import export_pte_xnnpack

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    out.mkdir(parents=True, exist_ok=True)
    export_pte_xnnpack(net, (torch.randn(1, 64),), out / "tiny.pte")
    (out / "tiny.pte.manifest.json").write_text(json.dumps(
        {"model": "tiny", "stage": "vad", "backend": "xnnpack", "quantization": "fp32"}))


def _harness(*args: str) -> float:
    """Run the harness CLI; return its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", *args, "-q", "--json"], capture_output=True, text=True)
    took = time.perf_counter() - start
    summary = json.loads(proc.stdout) if proc.stdout.strip() else {}
    if proc.returncode != 0 or set(summary.get("cells", {})) != {"ok"}:
        raise SystemExit(f"harness {' '.join(args)} failed ({proc.returncode}): {proc.stdout}{proc.stderr[-2000:]}")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--silicon-ms", type=float, default=80.0)
    args = parser.parse_args()

    from harness.lab import device_resource
    from harness.sim.adb_server import private_adb_server
    from harness.sim.sandbox import stand_in

    with private_adb_server() as adb, tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _tiny_pte(root / "builds")
        (root / "executor_runner").write_text(stand_in())
        attached = [adb.attach(root / f"phone{i}") for i in range(max(SIZES))]
        for server, _ in attached:
            server.phone.silicon_ms = args.silicon_ms
        entries = [f"  - {{id: p{i}, platform: android, serial: '{serial}', adb_port: {adb.port}, backends: [xnnpack],"
                   f" tools: {{executor_runner: {root / 'executor_runner'}}}}}" for i, (_, serial) in enumerate(attached)]
        (root / "devices.yaml").write_text("devices:\n" + "\n".join(entries) + "\n")

        def plan(devices: list[str]) -> str:
            path = root / f"plan-{'-'.join(devices)}.yaml"
            path.write_text(textwrap.dedent(f"""\
                name: scaling
                inventory: devices.yaml
                devices: [{', '.join(devices)}]
                artifacts: [builds/tiny.pte]
                warmup_iterations: 1
                iterations: {args.iterations}
                runs: {args.runs}
                thermal_period_s: 1.0
                """))
            return str(path)

        cluster = _cluster(device_resource)
        rows = []
        try:
            for n in SIZES:
                phones = [f"p{i}" for i in range(n)]
                db = str(root / f"r{n}.db")
                serial_s = sum(_harness("run", plan([p]), "--db", db) for p in phones)
                parallel_s = _harness("run", plan(phones), "--db", db)
                lab_s = _harness("run", plan(phones), "--db", db, "--lab", cluster.address) if cluster else None
                rows.append((n, serial_s, parallel_s, lab_s))
                print(f"measured {n} phone(s)", file=sys.stderr)
        finally:
            if cluster is not None:
                cluster.shutdown()
            for server, serial in attached:
                adb.detach(server, serial)

    one = {"serial": rows[0][1], "parallel": rows[0][2], "lab": rows[0][3]}
    print(f"{args.runs} runs x ({args.iterations} iterations + 1 warm-up) of one build per phone, "
          f"{args.silicon_ms:g} ms per inference on the phone's silicon")
    print(f"{'phones':>6}  {'serial s':>9} {'x one':>6}  {'parallel s':>10} {'x one':>6}  {'lab s':>7} {'x one':>6}")
    for n, serial_s, parallel_s, lab_s in rows:
        lab = f"{lab_s:7.1f} {lab_s / one['lab']:6.2f}" if lab_s else f"{'-':>7} {'-':>6}"
        print(f"{n:>6}  {serial_s:9.1f} {serial_s / one['serial']:6.2f}  {parallel_s:10.1f} "
              f"{parallel_s / one['parallel']:6.2f}  {lab}")
    return 0


def _cluster(device_resource):
    """A local Ray cluster of two nodes: p0 and p2 on the head, p1 and p3 on the other (None without Ray)."""
    try:
        from ray.cluster_utils import Cluster
    except ImportError:
        print("Ray is not installed (pip install 'device-lab-harness[lab]'): the lab column is skipped", file=sys.stderr)
        return None
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {device_resource("p0"): 1, device_resource("p2"): 1}})
    cluster.add_node(num_cpus=1, resources={device_resource("p1"): 1, device_resource("p3"): 1})
    cluster.wait_for_nodes()
    return cluster


if __name__ == "__main__":
    raise SystemExit(main())
