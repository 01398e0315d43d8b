"""Host programs standing in for the phone's benchmark binaries.

Each really runs the pushed model on the host CPU (ExecuTorch runtime / onnxruntime,
through the host worker) and prints what the real binary prints.  Run as
``python -m harness.sim.fake_runners NAME ARGS...``.
"""

from __future__ import annotations

import argparse
import sys

from harness.runners.host_worker import measure


def executor_runner(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model_path", required=True)
    p.add_argument("--num_executions", type=int, default=1)
    p.add_argument("--cpu_threads", type=int, default=0)
    p.add_argument("--print_output", default="none")
    a = p.parse_args(argv)
    print(f"Model file {a.model_path} is loaded.")
    r = measure("pte", a.model_path, None, 0, a.num_executions, a.cpu_threads or None, 0)
    print(f"Model loaded in {r['load_ms']:.6f} ms.")
    print("Using method forward")
    # The first inference is part of the real runner's loop; fold it in as iteration 1.
    samples = [r["first_inference_ms"]] + r["samples_ms"][1:]
    for i, ms in enumerate(samples, start=1):
        print(f"Iteration {i} of {len(samples)}: {ms:.6f} ms")
    print(f"Model executed successfully {len(samples)} time(s) in {sum(samples):.6f} ms.")
    return 0


def qnn_executor_runner(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model_path", required=True)
    p.add_argument("--iteration", type=int, default=1)
    p.add_argument("--warm_up", type=int, default=0)
    p.add_argument("--htp_performance_mode", type=int, default=0)
    p.add_argument("--output_folder_path", default=".")
    a = p.parse_args(argv)
    r = measure("pte", a.model_path, None, a.warm_up, a.iteration, None, 0)
    total = sum(r["samples_ms"])
    print(f"I 00:00:00.000000 executorch:qnn_executor_runner.cpp:421] Total {a.iteration} inference took "
          f"{total:.6f} ms, avg {total / a.iteration:.6f} ms")
    return 0


def onnxruntime_perf_test(argv: list[str]) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("-e", default="cpu")
    p.add_argument("-m", default="times")
    p.add_argument("-r", type=int, default=1000)
    p.add_argument("-x", type=int, default=0)
    p.add_argument("-I", action="store_true")
    p.add_argument("model")
    a = p.parse_args(argv)
    import numpy as np

    r = measure("onnx", a.model, None, 0, a.r, a.x or None, 0)
    s = np.asarray(r["samples_ms"]) / 1000
    print(f"Session creation time cost: {r['load_ms'] / 1000:.6f} s")
    print(f"First inference time cost: {int(r['first_inference_ms'])} ms")
    print(f"Total inference time cost: {s.sum():.6f} s")
    print(f"Total inference requests: {a.r}")
    print(f"Average inference time cost: {s.mean() * 1000:.6f} ms")
    print(f"Peak working set size: {int(r['peak_rss_mb'] * 2**20)} bytes")
    for label, q in (("Min", 0), ("Max", 100), ("P50", 50), ("P90", 90), ("P95", 95), ("P99", 99), ("P999", 99.9)):
        print(f"{label} Latency: {np.percentile(s, q):.6f} s")
    return 0


RUNNERS = {"executor_runner": executor_runner, "qnn_executor_runner": qnn_executor_runner,
           "onnxruntime_perf_test": onnxruntime_perf_test}

if __name__ == "__main__":
    sys.exit(RUNNERS[sys.argv[1]](sys.argv[2:]))
