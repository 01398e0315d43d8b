"""What operator profiling costs, and whether the operators account for the time: per build, measured runs with
the profiler off (as `harness run` measures a cell) beside profiling runs (as its ``profile_runs`` make them),
each a process of its own, printed side by side.

* on/off: the profiling runs' median latency over the measured runs' (1.00: the profiler costs nothing);
* ops/run: per profiled inference, the operators' summed time over that inference's own latency (the median over
  the run's inferences; 1.00: the operators account for every millisecond of the run).

    python benchmarks/profile_overhead.py [BUILD ...] [--runs 3] [--iterations 20] [--threads 1]

Without builds, the zoo's Whisper encoder and decoder (ONNX, FP32 and INT8, and the XNNPACK .pte encoder when
built) from builds/ or the tests' build cache (~/.cache/harness-test-builds/asr-*) are measured.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.artifacts import load_artifact  # noqa: E402
from harness.devices import open_device  # noqa: E402
from harness.devices.host import Config  # noqa: E402
from harness.profile.records import accounted_share  # noqa: E402
from harness.runners import RunSettings  # noqa: E402
from harness.runners import host_python  # noqa: E402

ZOO_NAMES = ["whisper-tiny.en-encoder-fp32.onnx", "whisper-tiny.en-decoder-fp32.onnx",
             "whisper-tiny.en-encoder-int8.onnx", "whisper-tiny.en-decoder-int8.onnx",
             "whisper-tiny.en-encoder-fp32-xnnpack.pte"]


def zoo_builds() -> list[Path]:
    from tests.conftest import BUILD_CACHE  # the tests' build cache: where it is, said once

    asr = sorted(BUILD_CACHE.glob("asr-*"), key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in (ROOT / "builds", *asr):
        found = [folder / name for name in ZOO_NAMES if (folder / name).is_file()]
        if found:
            return found
    return []


def side_by_side(device, path: Path, runs: int, settings: RunSettings) -> tuple[float, float, float]:
    """(measured P50, profiling-run P50, share of the profiled latency the operators account for), medians over
    ``runs`` of each kind."""
    artifact = load_artifact(path)
    measured, profiled, operators = [], [], []
    for _ in range(runs):  # alternated, so a neighbour's load falls on both kinds alike
        m = host_python.measure(device, str(path), artifact, settings)
        measured.append(statistics.median(m.samples_ms))
        p = host_python.profile(device, str(path), artifact, settings)
        profiled.append(statistics.median(p.latency_ms))
        operators.append(accounted_share(p))
    return statistics.median(measured), statistics.median(profiled), statistics.median(operators)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("builds", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    builds = args.builds or zoo_builds()
    if not builds:
        print("no builds given and none of the zoo's Whisper builds found: run 'harness zoo build' or name builds",
              file=sys.stderr)
        return 2
    settings = RunSettings(warmup_iterations=args.warmup, iterations=args.iterations, timeout_s=600,
                           threads=args.threads)
    device = open_device(Config(id="host", platform="host"))
    try:
        print(f"{'build':44} {'off P50 ms':>11} {'on P50 ms':>10} {'on/off':>7} {'ops/run':>8}")
        for path in builds:
            off_ms, on_ms, accounted = side_by_side(device, path, args.runs, settings)
            print(f"{path.name[:44]:44} {off_ms:11.3f} {on_ms:10.3f} {on_ms / off_ms:7.2f} {accounted:8.2f}", flush=True)
    finally:
        device.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
