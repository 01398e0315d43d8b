"""False alarms and detection of the nightly, measured on this machine with real builds.

Night after night, `harness nightly` measures the same plan with the default settings
(3 warm-ups + 30 iterations per run, 1 thread, the default number of runs):

1. two A/A calibrations (`harness calibrate`), as docs/reports-nightly.md asks of a new lab;
2. ``--nights`` nights on which nothing that matters changed: the zoo builds keep their bytes
   (judged night against night), and the three MLPs are re-exported with new random weights
   every night (new bytes, the same work: judged against last night's bytes re-measured in
   the same rounds).  Every regression or improvement called is a false alarm; "shift" (the
   level of unchanged bytes moved: the machine, not the build) is counted apart;
3. then nights on which the MLPs are 10% or 20% heavier (same identity, more layers: more
   work), each followed by a night back at the base size: a heavier night not called a
   regression is a miss.

The builds: Silero VAD and Whisper's log-mel (ONNX), the log-mel as an XNNPACK .pte, and
three MLPs shaped like a decoder step (two ONNX, one .pte) whose depth sets their cost.
The slowdown a "10% heavier" build really has is measured too (interleaved, paired), so
the detection rate is stated against the effect that was there.

Measuring time is compared with the harness as it was before runs existed (``--before
REV``, default the last commit without them): the same plan, the same machine, old and new
nights alternating.

    python benchmarks/false_alarms.py [--nights 11] [--heavy-nights 4] [--before 5ef9e3c]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ZOO = ["silero-vad-fp32", "whisper-logmel-fp32", "whisper-logmel-fp32-xnnpack"]
# name -> (format, layers, width, batch): a decoder-step-like cost of a few ms on one thread
MLPS = {"mlp-onnx-a": ("onnx", 20, 512, 32), "mlp-onnx-b": ("onnx", 40, 384, 24), "mlp-pte": ("pte", 20, 512, 32)}
PLAN = """\
name: false-alarms
inventory: devices.yaml
artifacts: [builds/*.onnx, builds/*.pte]
warmup_iterations: 3
iterations: 30
threads: 1
"""


def export_mlp(out: Path, name: str, factor: float, seed: int = 0) -> None:
    """An MLP with round(layers * factor) layers, under the same manifest whatever the factor;
    ``seed`` changes the weights (the bytes) and nothing of the work."""
    import torch

    from harness.zoo.export import export_onnx, export_pte_xnnpack

    fmt, layers, width, batch = MLPS[name]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(round(layers * factor))]).eval()
    example = (torch.randn(batch, width),)
    path = out / f"{name}.{fmt}"
    if fmt == "onnx":
        export_onnx(model, example, path, ["x"], ["y"])
    else:
        export_pte_xnnpack(model, example, path)
    backend = "ort-cpu" if fmt == "onnx" else "xnnpack"
    path.with_name(path.name + ".manifest.json").write_text(json.dumps(
        {"model": name, "stage": "asr-decoder", "backend": backend, "quantization": "fp32"}))


def harness(*args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True, env=env)


def latency_calls(night_json: dict, out_dir: Path) -> list[dict]:
    """Every latency check of a night from its nightly.json (all checks, not only failing ones)."""
    summary = json.loads((out_dir / "nightly.json").read_text())
    return [c for c in summary["checks"] if c["kind"] == "latency"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nights", type=int, default=11, help="unchanged nights (default 11: 10 comparisons x 6)")
    parser.add_argument("--heavy-nights", type=int, default=4, help="nights at +10%% and at +20%% each (default 4)")
    parser.add_argument("--calibrations", type=int, default=2)
    parser.add_argument("--before", default="5ef9e3c", help="commit of the harness before runs, for measuring time")
    parser.add_argument("--timing-nights", type=int, default=3, help="old/new nights alternated for the time ratio")
    parser.add_argument("--keep", type=Path, help="keep the scratch folder here")
    args = parser.parse_args()

    from harness.zoo import build_all

    tmp = Path(tempfile.mkdtemp(prefix="false-alarms-"))
    try:
        (tmp / "devices.yaml").write_text("devices:\n  - {id: host, platform: host}\n")
        (tmp / "plan.yaml").write_text(PLAN)
        builds = tmp / "builds"
        builds.mkdir()
        zoo = tmp / "zoo"
        t0 = time.perf_counter()
        build_all(zoo, only=ZOO)
        for name in ZOO:
            for f in zoo.glob(f"{name}.*"):
                if f.is_file() and not f.name.endswith(".partial"):
                    shutil.copy(f, builds / f.name)
        for name in MLPS:
            export_mlp(builds, name, 1.0)
        print(f"builds ready in {time.perf_counter() - t0:.0f} s: {len(ZOO) + len(MLPS)} builds", file=sys.stderr)
        plan, db = str(tmp / "plan.yaml"), str(tmp / "h.db")

        timing(args, tmp, str(tmp / "plan.yaml"))
        for i in range(args.calibrations):
            proc = harness("calibrate", plan, "--db", db, "--json", "-q")
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return 1
            aa = json.loads(proc.stdout)["cells"]
            print(f"calibration {i + 1}: A/A ratios " + ", ".join(f"{c['aa_ratio']:.3f}" for c in aa), file=sys.stderr)

        def night(label: str) -> list[dict]:
            out = tmp / "nights" / label
            started = time.perf_counter()
            proc = harness("nightly", plan, "--db", db, "-o", str(out), "--json", "-q")
            if proc.returncode not in (0, 1):
                raise SystemExit(f"nightly {label} failed:\n{proc.stderr}")
            calls = latency_calls(json.loads(proc.stdout), out)
            print(f"night {label}: {time.perf_counter() - started:.0f} s; "
                  + ", ".join(f"{c['subject'].split()[0]} {c['status']}" for c in calls), file=sys.stderr)
            return calls

        unchanged = []
        seed = 0
        for n in range(args.nights):
            seed += 1
            if n:  # the first night has no baseline; from then on the MLPs get new bytes every night
                for name in MLPS:
                    export_mlp(builds, name, 1.0, seed)
            unchanged += [c for c in night(f"base-{n}") if c["status"] != "new"]
        detection: dict[float, list[dict]] = {1.1: [], 1.2: []}
        for n in range(args.heavy_nights):
            for factor in (1.1, 1.2):
                seed += 1
                for name in MLPS:
                    export_mlp(builds, name, factor, seed)
                detection[factor] += [c for c in night(f"x{factor}-{n}") if c["subject"].split()[0] in MLPS]
                for name in MLPS:
                    export_mlp(builds, name, 1.0, seed)
                unchanged += [c for c in night(f"back-{factor}-{n}") if c["subject"].split()[0] not in MLPS]

        alarms = [c for c in unchanged if c["status"] in ("regression", "improvement")]
        paired = [c for c in unchanged if "re-measured tonight" in c["detail"]]
        counts = {}
        for c in unchanged:
            counts[c["status"]] = counts.get(c["status"], 0) + 1
        print(f"\nunchanged comparisons: {len(unchanged)} ({len(paired)} new bytes of the same work, paired against "
              f"last night's re-measured; {len(unchanged) - len(paired)} identical bytes, night against night)")
        print(f"false alarms (regression or improvement called): {len(alarms)} ({len(alarms) / max(1, len(unchanged)):.1%}); "
              "verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for factor, calls in detection.items():
            found = [c for c in calls if c["status"] == "regression"]
            ratios = [c["data"]["ratio"] for c in calls]
            print(f"{factor - 1:.0%} heavier: detected {len(found)} of {len(calls)} "
                  f"({len(found) / max(1, len(calls)):.0%}); measured slowdowns (paired P10 ratios) "
                  f"{min(ratios) - 1:+.1%} .. {max(ratios) - 1:+.1%}" if calls else "")
    finally:
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def timing(args, tmp: Path, plan: str) -> None:
    """Wall time of one night of this plan, new harness against the one before runs, alternating."""
    if args.timing_nights < 1:
        return
    before = tmp / "before"
    made = subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), args.before],
                          capture_output=True, text=True)
    if made.returncode:
        print(f"measuring time: cannot check out {args.before} ({made.stderr.strip()})")
        return
    try:
        old_env = {**os.environ, "PYTHONPATH": str(before)}
        times = {"before": [], "now": []}
        for i in range(args.timing_nights):
            for label, env in (("before", old_env), ("now", None)):
                started = time.perf_counter()
                proc = harness("run", plan, "--db", str(tmp / f"time-{label}.db"), "-q", env=env)
                if proc.returncode:
                    print(f"measuring time: {label} run failed: {proc.stderr[-500:]}")
                    return
                times[label].append(time.perf_counter() - started)
        old, new = sorted(times["before"])[len(times["before"]) // 2], sorted(times["now"])[len(times["now"]) // 2]
        print(f"measuring time per night (median of {args.timing_nights}, alternating): before runs {old:.1f} s "
              f"(one process per cell), now {new:.1f} s (default runs): ratio {new / old:.2f} (target <= 1.5)",
              flush=True)
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], capture_output=True)


if __name__ == "__main__":
    raise SystemExit(main())
