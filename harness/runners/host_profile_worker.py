"""Child process for one profiling run of a build on the host: the runtime's own operator profiler on.

Run as ``python -m harness.runners.host_profile_worker`` with host_worker's arguments.  A profiling run is a
process of its own after a cell's measured runs, so the profiler's overhead never touches a latency sample.  It
is never forked from host_worker's fork server: that parent imports ExecuTorch's runtime without its exporter,
and reading an ETDump (``executorch.devtools.Inspector``) needs the exporter.  It prints one ``HARNESS_RESULT
{"profile": {...}}`` line at the end.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness.profile.records import PROFILE_ITERATIONS_MAX
from harness.runners.host_worker import onnx_runner, pte_inputs, arguments
from harness.runtime import ort_session, set_executorch_threads
from harness.wire import RESULT_PREFIX




def _profile_onnx(path: str, specs: list | None, threads: int | None, rng, notes, folder: Path):
    """An ORT session with its profiler on; returns (one inference, a function: runs to skip ->
    (operators, each inference's summed operator time))."""
    from harness.profile.ort import ort_run_totals, parse_ort_profile

    session = ort_session(path, threads, profile_prefix=str(folder / "ort"))
    run = onnx_runner(session, specs, rng, notes)

    def operators(skip_runs: int):
        text = Path(session.end_profiling()).read_text()
        return parse_ort_profile(text, skip_runs), ort_run_totals(text, skip_runs)

    return run, operators


def _profile_pte(path: str, specs: list | None, threads: int | None, rng, notes, folder: Path,
                 etrecord: str | None = None):
    """The program loaded with ExecuTorch's event tracer on; returns (one inference, runs to skip ->
    (operators, each inference's summed operator time))."""
    from executorch.extension.pybindings import portable_lib

    from harness.profile.etdump import read_etdump

    set_executorch_threads(threads)
    module = portable_lib._load_for_executorch(path, enable_etdump=True, debug_buffer_size=0)
    inputs = pte_inputs(module.method_meta("forward"), specs, rng, notes)
    etdump = folder / "run.etdp"

    def operators(skip_runs: int):
        module.write_etdump_result_to_file(str(etdump))
        return read_etdump(etdump, etrecord, skip_runs, notes)

    return (lambda: module.forward(inputs)), operators


PROFILERS = {"onnx": _profile_onnx, "pte": _profile_pte}


def profile(fmt: str, model: str, specs: list | None, warmup: int, iterations: int, threads: int | None, seed: int,
            etrecord: str | None = None) -> dict[str, Any]:
    """A profiling run: the runtime's operator profiler on, first inference and warm-ups left out of the operators,
    then up to PROFILE_ITERATIONS_MAX inferences each timed as a measured one is (so the operators' sum can be
    checked against the run's own latency)."""
    import dataclasses
    import tempfile

    notes: list[str] = []
    extra = {"etrecord": etrecord} if fmt == "pte" else {}
    with tempfile.TemporaryDirectory(prefix="harness-profile-") as folder:
        run, operators = PROFILERS[fmt](model, specs, threads, np.random.default_rng(seed), notes, Path(folder),
                                        **extra)
        for _ in range(1 + warmup):
            run()
        clock = time.perf_counter_ns
        latency_ms = []
        for _ in range(min(iterations, PROFILE_ITERATIONS_MAX)):
            t0 = clock()
            run()
            latency_ms.append((clock() - t0) / 1e6)
        records, operators_ms = operators(1 + warmup)
    return {"profile": {"iterations": len(latency_ms), "latency_ms": latency_ms, "operators_ms": operators_ms,
                        "operators": [dataclasses.asdict(r) for r in records], "notes": notes}}


def main(argv: list[str] | None = None) -> int:
    parser = arguments(__doc__)
    parser.add_argument("--etrecord", default=None, help="a .pte's ETRecord: the ATen ops behind each call")
    args = parser.parse_args(argv)
    result = profile(args.format, args.model, json.loads(args.inputs_json), args.warmup, args.iterations,
                     args.threads or None, args.seed, args.etrecord)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
