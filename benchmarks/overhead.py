"""Overhead of the harness's measurement against a bare timing loop over the same runtime.

For each reference build, alternately (ABAB…, to cancel drift on a shared machine):
  A: `harness run` on the host device, median of the stored measured samples;
  B: a bare loop in a fresh Python process: load, warm up, time each call with perf_counter_ns.
Prints the ratio of medians (harness / bare) per build; the target is within 2% (0.98–1.02).

    python benchmarks/overhead.py [--rounds 3] [--iterations 200]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

BARE = textwrap.dedent("""
    import sys, time, json
    import numpy as np
    fmt, path, warmup, iterations = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    given = {spec["name"]: spec for spec in json.loads(sys.argv[5])}  # manifest inputs, e.g. Silero's sr=16000
    rng = np.random.default_rng(0)
    def array(name, shape):
        spec = given.get(name, {})
        shape, dtype = spec.get("shape", shape), spec.get("dtype", "float32")
        if spec.get("value") is not None:
            return np.full(shape, spec["value"], dtype=dtype)
        if spec.get("fill") == "zeros":
            return np.zeros(shape, dtype=dtype)
        return rng.standard_normal(shape).astype(dtype)
    if fmt == "onnx":
        import onnxruntime as ort
        opts = ort.SessionOptions(); opts.intra_op_num_threads = 1
        s = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        feeds = {i.name: array(i.name, [d if isinstance(d, int) else 1 for d in i.shape]) for i in s.get_inputs()}
        call = lambda: s.run(None, feeds)
    else:
        import torch
        from executorch.extension.pybindings import portable_lib
        portable_lib._unsafe_reset_threadpool(1)
        from executorch.runtime import Runtime
        m = Runtime.get().load_program(path).load_method("forward")
        meta = m.metadata
        inputs = [torch.from_numpy(rng.standard_normal(list(meta.input_tensor_meta(i).sizes())).astype(np.float32))
                  for i in range(meta.num_inputs())]
        call = lambda: m.execute(inputs)
    for _ in range(warmup + 1):
        call()
    out = []
    for _ in range(iterations):
        t0 = time.perf_counter_ns(); call(); out.append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(out))
""")


def bare_median(fmt: str, path: Path, warmup: int, iterations: int) -> float:
    import json

    manifest = path.with_name(path.name + ".manifest.json")
    inputs = json.loads(manifest.read_text()).get("inputs") or [] if manifest.exists() else []
    proc = subprocess.run([sys.executable, "-c", BARE, fmt, str(path), str(warmup), str(iterations), json.dumps(inputs)],
                          capture_output=True, text=True, check=True)
    return statistics.median(json.loads(proc.stdout.strip().splitlines()[-1]))


def harness_median(path: Path, warmup: int, iterations: int, work: Path) -> float:
    from harness.run.engine import run_plan
    from harness.store import Store

    plan = work / "plan.yaml"
    plan.write_text(f"name: overhead\ninventory: {REPO / 'devices.yaml'}\ndevices: [host]\nartifacts: [{path}]\n"
                    f"warmup_iterations: {warmup}\niterations: {iterations}\nruns: 1\nthreads: 1\n")
    outcome = run_plan(plan, work / "overhead.db")
    with Store(work / "overhead.db") as store:
        (cell,) = store.cells(outcome.run_id)
    return float(statistics.median(cell.samples_ms))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    from harness.zoo import build_all

    builds = {r.name: r.path for r in build_all(REPO / "builds")}
    targets = [("onnx", builds["whisper-logmel-fp32"]), ("pte", builds["whisper-logmel-fp32-xnnpack"]),
               ("onnx", builds["silero-vad-fp32"])]
    print(f"{'build':<34} {'harness P50 ms':>15} {'bare P50 ms':>12} {'ratio':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, path in targets:
            ours, bare = [], []
            for _ in range(args.rounds):
                ours.append(harness_median(path, args.warmup, args.iterations, Path(tmp)))
                bare.append(bare_median(fmt, path, args.warmup, args.iterations))
            h, b = statistics.median(ours), statistics.median(bare)
            print(f"{path.name:<34} {h:>15.3f} {b:>12.3f} {h / b:>7.3f}")
    print("ratio = harness median / bare-loop median (medians of per-round medians); target 0.98-1.02")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
