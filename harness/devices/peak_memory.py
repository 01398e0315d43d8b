"""A command's peak memory on an Android phone, from the phone's kernel: toybox ``time -v`` around the command.

Where the number comes from (not an estimate):

- toybox ``time`` (toys/posix/time.c, landley/toybox 0.8.9; Android ships it as /system/bin/toybox) runs the
  command with vfork + exec, reaps it with ``wait4(pid, &stat, 0, &ru)`` and with ``-v`` writes to stderr, after
  the command ended, ``Max RSS (KiB): %ld`` from ``ru.ru_maxrss`` among ten lines ("Real time (s): ..." to
  "Involuntary context switches: ...").
- The kernel fills that rusage with ``getrusage(p, RUSAGE_BOTH)`` of the reaped child (kernel/exit.c,
  wait_task_zombie): the larger of the child's own high-water RSS and its reaped children's (kernel/sys.c,
  getrusage: ``maxrss``/``cmaxrss``, set at exit from the mm's ``hiwater_rss``, the figure /proc/PID/status
  shows as VmHWM, Documentation/filesystems/proc.rst).  The child is toybox ``timeout`` (a few hundred KiB),
  which reaps the runner, so the figure is the runner's own peak resident set.
- The shell's ``time`` is mksh's reserved word (no ``-v``: "time: -v: unknown option"), so the applet is
  called through the ``toybox`` multiplexer by name.
"""

from __future__ import annotations

import re

# What the phone's shell runs in front of a command to have its peak memory reported.
TIME_V = ["toybox", "time", "-v"]
# toybox time -v's report: its ten lines at the very end of stderr (printed after the command ended).  The first
# may follow the command's own last line without a newline between them.
_REPORT = re.compile(r"Real time \(s\): [0-9.]+\nUser time \(s\): [0-9.]+\nSystem time \(s\): [0-9.]+\n"
                     r"Max RSS \(KiB\): (\d+)\n(?:[A-Za-z ]+: \d+\n){6}\Z")
KIB_PER_MB = 1024


def split_time_report(stderr: str) -> tuple[str, float | None]:
    """The command's own stderr without toybox ``time -v``'s report, and the peak RSS in MB it gives (None when
    the report is not there: ``time`` itself was killed with the command's process group)."""
    found = _REPORT.search(stderr)
    if found is None:
        return stderr, None
    return stderr[:found.start()], int(found.group(1)) / KIB_PER_MB


def reports_peak(stderr: str) -> bool:
    """Whether a phone's ``toybox time -v true`` printed the report (toybox 0.7.6 on; an older build has no -v)."""
    return split_time_report(stderr)[1] is not None
