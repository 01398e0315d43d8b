"""Processes the harness starts die with it, even when it is killed with SIGKILL.

Linux's ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill a process when its parent
*thread* (the one that forked it) ends.  So it is only set where the forking thread waits for the
child or outlives it: a command the host device runs and waits for, and a fork server's child (the
server's one thread forks it).  A fork server itself is not tied to the thread that started it (the
simulated phone's zygotes are shared between threads); it ends when the controller's end of its stdin
closes instead, which happens when the controller's process ends in any way.
"""

from __future__ import annotations

import ctypes
import os
import signal
from typing import Callable

PR_SET_PDEATHSIG = 1


def _load_prctl():
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: children are still killed by group on timeout and on stop
        return None


_PRCTL = _load_prctl()  # looked up once, here: a child between fork and exec must not import or load anything


def die_with_parent(parent_pid: int) -> None:
    """In a freshly forked child: be killed when the thread that forked it ends; if the parent already ended
    (it died between the fork and this call, and the child was re-parented), die now."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def dying_with_this_process() -> Callable[[], None]:
    """A ``preexec_fn`` for ``subprocess.Popen`` called by a thread that waits for the child."""
    parent_pid = os.getpid()
    return lambda: die_with_parent(parent_pid)
