"""The phone's vendor binaries, in Python: what a daemon on the simulated phone answers for
``/system/bin/simulated-binary`` (harness/sim/binary_client.py) over a Unix socket.

``getprop``, ``dumpsys battery|thermalservice``, ``logcat`` and ``log`` answer from the phone's state; the benchmark
binaries (``executor_runner``, ``qnn_executor_runner``, ``onnxruntime_perf_test``, ``llama_main``,
``whisper_runner``) run the pushed programs on this machine's CPU (harness/sim/fake_runners.py, forked from a
zygote) and print what the real ones print.  The client process is the binary to the phone's shell: when it
is killed (toybox ``timeout``, ``kill -9``) its socket closes and the work stops here too.

Frames to the client: kind (1 stdout, 2 stderr, 3 exit) as one byte, length as 4 bytes little-endian, data.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from harness.sim import zygote
from harness.sim.fake_runners import LOGCAT, TAGGED_LOGCAT_LINE
from harness.sim.phone import BATTERY_LEVEL_PERCENT, DEFAULT_VERSIONS, PROPS, Phone

_LOGGED = re.compile(re.escape(LOGCAT) + r"(.*)\n")
BENCHMARKS = ("executor_runner", "qnn_executor_runner", "onnxruntime_perf_test", "llama_main", "whisper_runner")
STDOUT, STDERR, EXIT = 1, 2, 3


class Result:
    def __init__(self, code: int = 0, out: str = "", err: str = "") -> None:
        self.code, self.out, self.err = code, out, err


def _battery(phone: Phone) -> str:
    status, _, voltage_uv = phone.battery()
    charging = status == "Charging"
    # BatteryManager's status codes: BATTERY_STATUS_CHARGING 2, BATTERY_STATUS_DISCHARGING 3; voltage in mV.
    return (f"Current Battery Service state:\n  AC powered: false\n  USB powered: {str(charging).lower()}\n"
            f"  status: {2 if charging else 3}\n  level: {BATTERY_LEVEL_PERCENT}\n  scale: 100\n"
            f"  voltage: {voltage_uv // 1000}\n  temperature: {int((phone.heat() - 8) * 10)}\n")


def _thermalservice(phone: Phone) -> str:
    status = phone.thermal_status()
    t = phone.heat()
    return (f"IsStatusOverride: false\nThermal Status: {status}\nHAL Ready: true\nCurrent temperatures from HAL:\n"
            f"\tTemperature{{mValue={t - 8:.1f}, mType=2, mName=battery, mStatus=0}}\n"
            f"\tTemperature{{mValue={t:.1f}, mType=0, mName=cpu-1-0, mStatus={status}}}\n"
            f"\tTemperature{{mValue={t - 6:.1f}, mType=3, mName=skin, mStatus=0}}\n"
            "Current cooling devices from HAL:\n")


# What the simulated logcat implements, as system/logging logcat/logcat.cpp does (AOSP, read at commit
# 496c367c1f7fb7293edcbb67a4e43167b4d3c71f of its mirror msft-mirror-aosp/platform.system.logging; the same
# parseTime since Android 7's system/core): -c, -d, -s TAG[:PRI]..., --pid=PID (or --pid PID), -t/-T TIME or
# -t/-T COUNT.  The phone's log keeps each entry's time as logd does (epoch seconds to the millisecond, a line
# "SECONDS PID TID P TAG: message"), and logcat prints it in its default format, threadtime.
_PRIORITIES = "VDIWEFS"  # S: silent, which no entry has
_ENTRY = re.compile(r"^(\d+\.\d{3}) +(\d+) +(\d+) ([VDIWEF]) (.*?): (.*)$")


def _logcat(phone: Phone, args: list[str]) -> Result:
    """``logcat -c``, or ``-d`` (``-t`` implies it) and filters: the lines logd keeps that pass them all.  A bad
    argument exits 1 with logcat's own message (``error(EXIT_FAILURE, 0, ...)``: "logcat: " and the text)."""
    if "-c" in args:
        phone.logcat_file.write_text("")
        return Result()
    pids = [a.split("=", 1)[1] for a in args if a.startswith("--pid=")]
    pids += [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--pid"]
    if len(pids) > 1:
        return Result(1, err="logcat: Only one --pid argument can be provided.\n")
    if pids and not (pids[0].isdigit() and int(pids[0]) >= 1):
        return Result(1, err=f"logcat: pid '{pids[0]}' out of range.\n")
    tail = [(a, args[i + 1]) for i, a in enumerate(args[:-1]) if a in ("-t", "-T")][-1:]
    since_s, count = None, None
    if tail:
        flag, value = tail[0]
        if value.isdigit():  # a count (logcat: "-t N invalid, setting to 1" for 0)
            count = max(int(value), 1)
        else:
            since_s = _parse_time(value)
            if since_s is None:
                return Result(1, err=f"logcat: {flag} '{value}' not in time format.\n")
    entries = [m.groups() for m in map(_ENTRY.match, _stored_lines(phone)) if m]
    if pids:
        entries = [e for e in entries if int(e[1]) == int(pids[0])]
    if "-s" in args:
        wanted = dict(_filter_rule(a) for a in args[args.index("-s") + 1:] if not a.startswith("-"))
        entries = [e for e in entries if e[4] in wanted
                   and _PRIORITIES.index(e[3]) >= _PRIORITIES.index(wanted[e[4]])]
    if since_s is not None:  # logd's tail time: entries logged at that time or later
        entries = [e for e in entries if float(e[0]) >= since_s]
    if count is not None:
        entries = entries[-count:]
    lines = "".join(_threadtime(*e) for e in entries)
    # PrintDividers: "--------- beginning of main" before the first line printed from the buffer, none without one.
    return Result(out=("--------- beginning of main\n" + lines) if lines else "")


def _stored_lines(phone: Phone) -> list[str]:
    return phone.logcat_file.read_text().splitlines() if phone.logcat_file.exists() else []


def _filter_rule(spec: str) -> tuple[str, str]:
    """A filterspec ``TAG[:PRIORITY]``: a tag by itself means TAG:V."""
    tag, _, priority = spec.partition(":")
    priority = priority[:1].upper()
    return tag, priority if priority and priority in _PRIORITIES else "V"


def _parse_time(text: str) -> float | None:
    """logcat.cpp's parseTime: 'MM-DD hh:mm:ss.mmm...' (this year), 'YYYY-MM-DD hh:mm:ss.mmm...' (both the
    phone's local time) or 'sssss.mmm...' (epoch seconds), as seconds since the epoch; None for anything else."""
    for fmt, text_of in (("%Y-%m-%d %H:%M:%S", lambda: f"{datetime.now().year}-{text}"),
                         ("%Y-%m-%d %H:%M:%S", lambda: text)):
        whole, _, fraction = text_of().partition(".")
        try:
            stamp = datetime.strptime(whole, fmt)
        except ValueError:
            continue
        if fraction.isdigit():
            return stamp.timestamp() + float(f"0.{fraction}")
    whole, _, fraction = text.partition(".")
    return float(f"{whole}.{fraction}") if whole.isdigit() and fraction.isdigit() else None


def _threadtime(seconds: str, pid: str, tid: str, priority: str, tag: str, message: str) -> str:
    """One entry in logcat's threadtime format (liblog's android_log_formatLogLine): local time, to the millisecond."""
    stamp = datetime.fromtimestamp(int(seconds.split(".")[0])).strftime("%m-%d %H:%M:%S")
    return f"{stamp}.{seconds.split('.')[1]} {int(pid):5d} {int(tid):5d} {priority} {tag}: {message}\n"


def log_entry(pid: int, priority: str, tag: str, message: str, time_s: float) -> str:
    """One entry of the phone's log as it is kept (what logd holds: the time to the millisecond, PID, TID)."""
    millis = int(time_s * 1000)
    return f"{millis // 1000}.{millis % 1000:03d} {pid:5d} {pid:5d} {priority} {tag}: {message}\n"


def _log(phone: Phone, pid: int, entries: list[tuple[str, str, str]]) -> None:
    """Add (priority, tag, message) entries of process ``pid`` to the phone's log, one write at a time (several
    processes log at once)."""
    now_s = time.time()
    text = "".join(log_entry(pid, priority, tag, message, now_s) for priority, tag, message in entries)
    with _LOG_LOCK, phone.logcat_file.open("a") as log:
        log.write(text)


_LOG_LOCK = threading.Lock()


def _log_tool(phone: Phone, args: list[str], pid: int) -> Result:
    """toybox's ``log [-p PRI] [-t TAG] MESSAGE...`` (toys/android/log.c): one INFO line tagged ``log`` unless
    told otherwise, the words of MESSAGE joined by spaces."""
    priority, tag, words = "I", "log", list(args)
    while len(words) >= 2 and words[0] in ("-p", "-t"):
        flag, value, words = words[0], words[1], words[2:]
        if flag == "-t":
            tag = value
        else:
            priority = value[:1].upper()
    _log(phone, pid, [(priority, tag, " ".join(words))])
    return Result()


class Session:
    """One vendor binary's invocation: ``kill`` is set when its process on the phone ended (killed by a signal,
    or its socket closed); ``emit(kind, bytes)`` streams output as it is printed; ``env`` is the environment
    the phone's shell gave it."""

    def __init__(self, env: dict[str, str], emit, binary: str = "", pid: int = 0) -> None:
        self.kill = threading.Event()
        self.emit = emit
        self.env = env
        self.binary = binary  # the path the phone's shell ran it by (a pushed stand-in's)
        self.pid = pid  # the binary's process on the phone (its pid there): what its log lines carry


# What the neighbour logs: lines the harness's ExecuTorch parsers read (a second runner's timings).
NEIGHBOUR_LINES = ("Model loaded in 999.000000 ms.", "Iteration 1 of 1: 999.000000 ms",
                   "Model executed successfully 1 time(s) in 999.000000 ms.")


def _neighbour_logs(phone: Phone) -> None:
    """Another process of the phone logs under the ExecuTorch tag now (the fault ``neighbour_logs``): a shell of
    the phone running its ``log`` tool, done before the binary goes on."""
    from harness.sim import sandbox

    command = "; ".join(f"log -t ExecuTorch {shlex.quote(line)}" for line in NEIGHBOUR_LINES)
    proc, _ = sandbox.spawn(phone, command)
    proc.communicate(timeout=60)


def _chatty(phone: Phone, session: Session) -> Result:
    """A runner stuck printing the same log line, as a runner caught in a retry loop does."""
    line = b"E 00:00:00.000001 executorch:method.cpp:1170] Retrying: backend returned Error::Internal\n" * 64
    while not session.kill.wait(0.002):
        try:
            session.emit(STDOUT, line)
        except OSError:  # its process is gone
            break
    return Result(137)


class _Plain:
    """A binary as a plain child process (the interface of :class:`zygote.Invocation`)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "harness.sim.fake_runners", name, *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        self.returncode = None

    def poll(self, wait_s: float) -> int | None:
        try:
            self.returncode = self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            pass
        return self.returncode

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)

    def output(self) -> tuple[str, str]:
        return self.proc.communicate()


def _benchmark(phone: Phone, name: str, args: list[str], session: Session, cwd: str = "/") -> Result:
    faults = phone.faults
    if faults.crash_runner:
        return Result(139, err="Segmentation fault\n")
    phone.invocations.append([name, *args])
    mapped = [str(phone.path(a)) if a.startswith("/data/") else a for a in args]
    with phone.lock:
        phone.busy += 1
    try:
        if faults.hang_runner:
            session.kill.wait()  # only the end of its process ends it
            return Result(137)
        if faults.chatty_runner:
            return _chatty(phone, session)
        if faults.neighbour_logs:
            _neighbour_logs(phone)
        env = {**os.environ, "HARNESS_SIM_VERSION": phone.versions.get(name, DEFAULT_VERSIONS[name]),
               "HARNESS_SIM_ROOT": str(phone.root), "HARNESS_SIM_SOC": PROPS.get("ro.soc.model", ""),
               "HARNESS_SIM_CWD": cwd,  # the binary's working folder on the phone (relative paths start there)
               "HARNESS_SIM_BINARY": session.binary,
               # The phone's own environment for the binary, kept apart from the host process's.
               **{f"HARNESS_SIM_ENV_{k}": v for k, v in session.env.items()}}
        if phone.silicon_ms is not None:
            env["HARNESS_SIM_SILICON_MS"] = str(phone.silicon_ms)
        try:
            proc = zygote.Invocation(name, mapped, env)
        except zygote.ForkServerError:  # the simulator's shortcut failed: a plain process, as before it
            proc = _Plain(name, mapped, env)
        while proc.poll(0.05) is None:
            if session.kill.is_set():
                proc.kill()
                proc.poll(30.0)
                proc.output()
                return Result(137)
        out, err = proc.output()
    finally:
        with phone.lock:
            phone.busy -= 1
    sandbox = str(phone.root.resolve())
    out, err = out.replace(sandbox, ""), err.replace(sandbox, "")  # paths as the phone would print them
    # ET_LOG lines go where the binary's logging backend sends them; the rest stays on stdout.
    # A log line may fall inside a line of stdout (the Whisper runner streams its transcript without newlines).
    tagged = [m.groups() for m in TAGGED_LOGCAT_LINE.finditer(out)]
    out = TAGGED_LOGCAT_LINE.sub("", out)
    logged = _LOGGED.findall(out)
    out = _LOGGED.sub("", out)
    if tagged:  # a library that logs to logcat in every build (ONNX Runtime's AndroidLogSink)
        _log(phone, session.pid, [(priority, tag, line) for tag, priority, line in tagged])
    if logged and phone.et_log == "logcat":
        _log(phone, session.pid, [("I", "ExecuTorch", line) for line in logged])
    elif logged and phone.et_log == "stderr":  # runtime/platform/default/posix.cpp's format
        err += "".join(f"I 00:00:{i * 0.001:09.6f} executorch:{name}.cpp:{300 + i}] {line}\n"
                       for i, line in enumerate(logged))
    return Result(proc.returncode, out, err)



def answer(phone: Phone, name: str, args: list[str], session: Session, cwd: str = "/") -> Result:
    """What the vendor binary ``name`` prints and exits with."""
    if name == "getprop":  # as toybox's toys/android/getprop.c (commit 10284119) prints: NAME [DEFAULT], or all sorted
        if args:
            return Result(out=phone.props.get(args[0], args[1] if len(args) > 1 else "") + "\n")
        return Result(out="".join(f"[{k}]: [{v}]\n" for k, v in sorted(phone.props.items())))
    if name == "logcat":
        return _logcat(phone, args)
    if name == "log":
        return _log_tool(phone, args, session.pid)
    if name == "dumpsys" and args[:1] == ["battery"]:
        return Result(out=_battery(phone))
    if name == "dumpsys" and args[:1] == ["thermalservice"]:
        return Result(out=_thermalservice(phone))
    if name == "dumpsys":
        return Result(out=f"Can't find service: {' '.join(args[:1])}\n")
    if name in BENCHMARKS:
        return _benchmark(phone, name, args, session, cwd)
    return Result(127, err=f"{name}: not a binary of this phone\n")


def _frame(kind: int, data: bytes) -> bytes:
    return struct.pack("<BI", kind, len(data)) + data


class Daemon:
    """The phone's daemon for vendor binaries: one thread per invocation, on a Unix socket of its own."""

    def __init__(self, phone: Phone) -> None:
        self.phone = phone
        self.folder = Path(tempfile.mkdtemp(prefix="hsim-"))  # short: a socket path has 107 bytes at most
        self.path = self.folder / "socket"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(64)
        self.sessions: set[Session] = set()
        threading.Thread(target=self._accept, name="sim-vendor", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        lock = threading.Lock()

        def emit(kind: int, data: bytes) -> None:
            with lock:
                conn.sendall(_frame(kind, data))

        with conn:
            try:
                request = json.loads(conn.makefile("rb").readline())
            except (OSError, ValueError):
                return
            session = Session({k: v for k, v in request["env"].items()}, emit, request.get("path", ""),
                              int(request.get("pid", 0)))
            self.sessions.add(session)
            threading.Thread(target=self._watch, args=(conn, session), daemon=True).start()
            try:
                result = answer(self.phone, request["name"], request["args"], session, request["cwd"])
                if result.out:
                    emit(STDOUT, result.out.encode())
                if result.err:
                    emit(STDERR, result.err.encode())
                emit(EXIT, str(result.code).encode())
            except OSError:
                pass  # its process is gone: nobody to answer
            finally:
                self.sessions.discard(session)
                session.kill.set()

    @staticmethod
    def _watch(conn: socket.socket, session: Session) -> None:
        """The client never writes after its request: end of input means its process ended."""
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass
        session.kill.set()

    def close(self) -> None:
        for session in list(self.sessions):
            session.kill.set()
        self.listener.close()
        self.path.unlink(missing_ok=True)
        self.folder.rmdir()
