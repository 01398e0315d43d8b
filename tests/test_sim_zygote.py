"""The simulated phone's binaries run forked from preloaded zygotes: each must still behave as a fresh process."""

from __future__ import annotations

import os
import re
import time

import pytest

from harness.sim import zygote

pytestmark = pytest.mark.slow  # each starts a zygote (torch and ExecuTorch imported: seconds) or waits on a binary

ITERATION = re.compile(r"Iteration \d+ of \d+: ([0-9.]+) ms")


def _finished(invocation, within_s: float = 120.0) -> int:
    deadline = time.monotonic() + within_s
    while invocation.poll(0.1) is None:
        assert time.monotonic() < deadline, "the binary did not end"
    return invocation.returncode


def _silicon_env(wait_ms: float) -> dict[str, str]:
    return {**os.environ, "HARNESS_SIM_SILICON_MS": str(wait_ms), "HARNESS_SIM_VERSION": "1.4"}


def test_each_invocation_draws_its_own_random_numbers_and_sees_its_own_environment():
    runs = []
    for _ in range(2):
        call = zygote.Invocation("executor_runner", ["--model_path", "/m.pte", "--num_executions", "5"],
                                 _silicon_env(2.0))
        assert _finished(call) == 0
        out, err = call.output()
        runs.append([float(ms) for ms in ITERATION.findall(out)])
    # The chip's +-5% jitter comes from `random`: a forked child must not replay its zygote's sequence.
    assert len(runs[0]) == len(runs[1]) == 5 and runs[0] != runs[1]
    assert all(1.9 <= ms <= 2.1 for ms in runs[0] + runs[1])  # HARNESS_SIM_SILICON_MS reached the child


def test_a_flag_error_exits_as_gflags_does_and_a_killed_binary_frees_its_zygote():
    bad = zygote.Invocation("executor_runner", ["--model_path", "/m.pte", "--no_such_flag", "1"], _silicon_env(1.0))
    assert _finished(bad) == 1
    assert "unknown command line flag 'no_such_flag'" in bad.output()[1]

    slow = zygote.Invocation("executor_runner", ["--model_path", "/m.pte", "--num_executions", "100000"],
                             _silicon_env(50.0))
    assert slow.poll(0.5) is None  # still running
    slow.kill()
    assert _finished(slow, within_s=30) == -9
    slow.output()
    again = zygote.Invocation("executor_runner", ["--model_path", "/m.pte"], _silicon_env(1.0))
    assert again.zygote is slow.zygote  # the pool took it back, and it serves the next binary
    assert _finished(again) == 0 and "executed successfully 1 time(s)" in again.output()[0]
