"""Preloaded parents for the simulated phone's binaries: each invocation is forked, not exec'd.

A binary on a real phone starts as a fresh process, and so does each simulated one: a child
forked from a zygote that already imported its runtime (onnxruntime for
``onnxruntime_perf_test``; torch and ExecuTorch's runtime for every other binary).  The child
takes the phone's environment, becomes its own session (so toybox ``timeout`` kills it and all
it started) and runs :mod:`harness.sim.fake_runners`.  What it spares is the simulator's own
cost: about 2 s of imports per invocation, hundreds of invocations in the test suite, none of
which a phone pays.  Zygotes are kept for the life of the controller process, one per runtime
per concurrent invocation; anything unexpected falls back to a plain process.

Run as ``python -m harness.sim.zygote RUNTIME`` (the protocol is host_forkserver's).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading

from harness.devices.host_forks import ForkServer, ForkServerError

RUNTIME_OF = {"onnxruntime_perf_test": "onnx"}  # every other binary runs ExecuTorch programs
# A binary the phone's "silicon" times (HARNESS_SIM_SILICON_MS) runs no model on this machine: its zygote preloads
# no runtime (about 0.2 s to start instead of 2 s of torch and ExecuTorch imports; a lab of phones started one
# each at once).  Should such a binary need a runtime after all, its child imports it, as a plain process would.
SILICON = "silicon"


def runtime_of(name: str, env: dict[str, str]) -> str:
    """The zygote pool that serves binary ``name`` run with ``env``."""
    return SILICON if "HARNESS_SIM_SILICON_MS" in env else RUNTIME_OF.get(name, "pte")

_idle: dict[str, list[ForkServer]] = {}
_lock = threading.Lock()


def _take(runtime: str) -> ForkServer:
    with _lock:
        while _idle.get(runtime):
            zygote = _idle[runtime].pop()
            if zygote.alive():
                return zygote
            zygote.close()
    return ForkServer(runtime, module="harness.sim.zygote")


def _give_back(runtime: str, zygote: ForkServer) -> None:
    with _lock:
        _idle.setdefault(runtime, []).append(zygote)


@atexit.register
def close_all() -> None:
    """Stop every idle zygote (one still serving is stopped by its user)."""
    with _lock:
        zygotes = [z for pool in _idle.values() for z in pool]
        _idle.clear()
    for zygote in zygotes:
        zygote.close()


class Invocation:
    """One binary running in a forked child: ``poll(wait_s)`` for its exit, ``kill()`` its session."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.runtime = runtime_of(name, env)
        self.zygote = _take(self.runtime)
        try:
            self.pid, self._out, self._err = self.zygote.start([name, *args], env=env, cwd=os.getcwd())
        except ForkServerError:
            self.zygote.close()
            raise
        self.returncode: int | None = None

    def poll(self, wait_s: float) -> int | None:
        if self.returncode is None:
            try:
                self.returncode = self.zygote.exit_code(wait_s)
            except ForkServerError:  # the zygote died under its child: the binary is lost, as in a crash
                self.zygote.close()
                self.returncode = -9
        return self.returncode

    def kill(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def output(self) -> tuple[str, str]:
        """Its stdout and stderr, once it ended; the zygote goes back to the pool."""
        texts = tuple(p.read_text(errors="replace") if p.exists() else "" for p in (self._out, self._err))
        for path in (self._out, self._err):
            path.unlink(missing_ok=True)
        if self.returncode is not None and self.zygote.alive():
            _give_back(self.runtime, self.zygote)
        else:  # its child never reported back: the zygote cannot serve another
            self.zygote.close()
        return texts


# -- the zygote's side ----------------------------------------------------------------------------------

def _binary(request: dict) -> int:
    # No reseeding: `random` reseeds itself in a forked child (os.register_at_fork), and the binaries draw
    # numpy's numbers from default_rng(), fresh entropy each time.
    from harness.runners.host_forkserver import child_session
    from harness.sim.fake_runners import RUNNERS

    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    return child_session(request, lambda args: RUNNERS[args[0]](args[1:]))


def serve(runtime: str) -> int:
    from harness.runners.host_forkserver import fork_loop, import_runtime

    if runtime != SILICON:
        import_runtime(runtime)
    import harness.sim.fake_runners  # noqa: F401

    return fork_loop(_binary)


if __name__ == "__main__":
    raise SystemExit(serve(sys.argv[1]))
